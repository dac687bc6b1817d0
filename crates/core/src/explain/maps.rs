//! Unpooled feature maps of one preprocessed image on an engine's backbone (the CPU kernels
//! when it runs on them, burn otherwise), and the per-location feature rows read from them.

use burn::tensor::{Tensor, TensorData};
use osteoai_kernels::net::TapMap;

use crate::engine::Backbone;
use crate::model::effnet::{FeatureSpec, Tap};

/// The maps at the spec's taps (in its order) of the image, or of its mirror.
pub fn tap_maps(b: &Backbone, input: &[f32], mirrored: bool) -> Result<Vec<TapMap>, String> {
    let s = b.preprocess.size as usize;
    let taps = &b.features.taps;
    if let Some(native) = &b.native {
        let ktaps: Vec<osteoai_kernels::Tap> = taps.iter().map(|t| ktap(*t)).collect();
        return native
            .maps(
                osteoai_kernels::isa::active(),
                input,
                (s, s),
                &ktaps,
                mirrored,
                // Inside a parallel loop over images each image keeps to its thread.
                rayon::current_thread_index().is_none(),
            )
            .map_err(|e| e.to_string());
    }
    let device = &b.device.device;
    let mut x = Tensor::<4>::from_data(TensorData::new(input.to_vec(), [1, 3, s, s]), device);
    if mirrored {
        x = x.flip([3]);
    }
    b.net
        .maps(x, taps)
        .into_iter()
        .map(|m| {
            let [_, c, h, w] = m.dims();
            let chw = m
                .into_data()
                .try_to_vec::<f32>()
                .map_err(|e| format!("cannot read a feature map back: {e:?}"))?;
            let mut data = vec![0f32; c * h * w];
            for ch in 0..c {
                for p in 0..h * w {
                    data[p * c + ch] = chw[ch * h * w + p];
                }
            }
            Ok(TapMap { h, w, c, data })
        })
        .collect()
}

pub fn ktap(t: Tap) -> osteoai_kernels::Tap {
    match t {
        Tap::Head => osteoai_kernels::Tap::Head,
        Tap::Block(i) => osteoai_kernels::Tap::Block(i),
    }
}

/// One feature row per cell of the finest tap's grid, laid out as the spec's pooled features
/// (tap by tap, pool by pool: at one location the average and the maximum are that value).
/// Coarser taps are resampled bilinearly between cell centres. With two views (the image and
/// its mirror) the mirror's maps are mirrored back and the two rows averaged, as the pooled
/// features of a flip-averaged model are.
pub fn cell_rows(spec: &FeatureSpec, views: &[Vec<TapMap>]) -> (usize, usize, Vec<f32>) {
    let Some(first) = views.first() else {
        return (0, 0, Vec::new());
    };
    let (gw, gh) = first
        .iter()
        .map(|m| (m.w, m.h))
        .max_by_key(|(w, h)| w * h)
        .unwrap_or((0, 0));
    let dim = spec.dim();
    let mut rows = vec![0f32; gw * gh * dim];
    let weight = 1.0 / views.len() as f32;
    for (v, maps) in views.iter().enumerate() {
        let mirrored = v == 1;
        let mut o = 0;
        for m in maps {
            for y in 0..gh {
                for x in 0..gw {
                    // The view's own coordinates of this cell of the image.
                    let xv = if mirrored { gw - 1 - x } else { x };
                    let vals = sample(m, xv, y, gw, gh);
                    let row = &mut rows[(y * gw + x) * dim..][..dim];
                    for p in 0..spec.pools.len() {
                        for (d, s) in row[o + p * m.c..][..m.c].iter_mut().zip(&vals) {
                            *d += s * weight;
                        }
                    }
                }
            }
            o += m.c * spec.pools.len();
        }
    }
    (gw, gh, rows)
}

/// The channels of `m` at cell `(x, y)` of a `gw x gh` grid over the same image.
fn sample(m: &TapMap, x: usize, y: usize, gw: usize, gh: usize) -> Vec<f32> {
    if m.w == gw && m.h == gh {
        return m.at(y, x).to_vec();
    }
    let coord = |i: usize, n: usize, g: usize| -> (usize, usize, f32) {
        let f = ((i as f32 + 0.5) * g as f32 / n as f32 - 0.5).clamp(0.0, (g - 1) as f32);
        let a = f.floor() as usize;
        (a, (a + 1).min(g - 1), f - a as f32)
    };
    let (x0, x1, fx) = coord(x, gw, m.w);
    let (y0, y1, fy) = coord(y, gh, m.h);
    let (a, b, c, d) = (m.at(y0, x0), m.at(y0, x1), m.at(y1, x0), m.at(y1, x1));
    (0..m.c)
        .map(|k| {
            (a[k] * (1.0 - fx) + b[k] * fx) * (1.0 - fy) + (c[k] * (1.0 - fx) + d[k] * fx) * fy
        })
        .collect()
}
