//! Heatmaps for an engine: decode, preprocess exactly as classification does, then the method.

use std::path::Path;

use image::DynamicImage;

use super::maps::{cell_rows, tap_maps};
use super::{HeadKind, Heatmap, Method};
use crate::decode::imaging::{Decoded, decode_full, read_limited};
use crate::engine::Engine;
use crate::model::effnet::Pool;

/// Occlusion: positions per side (the grid), and the square's side in grid cells.
const OCCLUSION_GRID: usize = 8;
const OCCLUSION_CELLS: usize = 2;

/// What to explain and how; `class: None` is the positive class (or the predicted one when
/// the model has none).
#[derive(Clone, Copy)]
pub struct Explainer<'a> {
    pub engine: &'a Engine,
    pub method: Method,
    pub class: Option<usize>,
}

impl<'a> Explainer<'a> {
    /// The model's default method, the positive class.
    pub fn new(engine: &'a Engine) -> Explainer<'a> {
        Explainer {
            engine,
            method: Method::default_for(HeadKind::of(&engine.bundle.head)),
            class: None,
        }
    }

    /// Whether the model can be explained by `method`, and why not.
    pub fn check(&self) -> Result<(), String> {
        let kind = HeadKind::of(&self.engine.bundle.head);
        if !self.method.supports(kind) {
            let head = match kind {
                HeadKind::Linear => "a linear head",
                HeadKind::LightGbmBinary => "a binary LightGBM head",
                HeadKind::LightGbmMulti => "a multi-class LightGBM head",
            };
            let ok: Vec<&str> = Method::supported(kind).iter().map(|m| m.name()).collect();
            return Err(format!(
                "{} does not apply to this model ({head}): use {}",
                self.method,
                ok.join(", ")
            ));
        }
        if let Some(c) = self.class
            && c >= self.engine.manifest().classes.names.len()
        {
            return Err(format!("class {c} does not exist"));
        }
        Ok(())
    }

    /// The heatmap of one preprocessed image (`[3, s, s]`) whose original is `w x h` pixels.
    pub fn input(&self, input: &[f32], (w, h): (u32, u32)) -> Result<Heatmap, String> {
        self.check()?;
        let e = self.engine;
        let spec = &e.backbone.features;
        let views = if spec.flip_average { 2 } else { 1 };
        let maps = (0..views)
            .map(|v| tap_maps(&e.backbone, input, v == 1))
            .collect::<Result<Vec<_>, _>>()?;
        let pooled = pooled(spec, &maps);
        let probs = e
            .bundle
            .head
            .predict_probs(&pooled)
            .map_err(|e| e.to_string())?
            .pop()
            .ok_or("the head returned nothing")?;
        let class = self.class.unwrap_or_else(|| {
            let m = e.manifest();
            m.classes
                .positive_index()
                .unwrap_or_else(|| crate::engine::predicted_of(m, &probs))
        });
        let (grid_w, grid_h, values) = match self.method {
            Method::Cam | Method::HeadMap => {
                let (gw, gh, rows) = cell_rows(spec, &maps);
                let values = match (self.method, e.bundle.head.linear_head()) {
                    (Method::Cam, Some(lin)) => rows
                        .chunks_exact(spec.dim())
                        .map(|r| centred_logit(lin, r, class))
                        .collect(),
                    _ => e
                        .bundle
                        .head
                        .predict_probs(&rows)
                        .map_err(|e| e.to_string())?
                        .iter()
                        .map(|p| p[class] as f32)
                        .collect(),
                };
                (gw, gh, values)
            }
            Method::ShapCam => {
                let (gw, gh, rows) = cell_rows(spec, &maps);
                let phi = e.bundle.head.contributions(&pooled)?;
                let sign = if class == e.manifest().classes.positive_index().unwrap_or(0) {
                    1.0
                } else {
                    -1.0
                };
                (gw, gh, shap_cam(spec, &rows, &phi, sign))
            }
            Method::FeatureOcclusion => {
                let base = probs[class];
                let (gw, gh, _) = cell_rows(spec, &maps);
                let rows = without_regions(spec, &maps, gw, gh);
                let values = e
                    .bundle
                    .head
                    .predict_probs(&rows)
                    .map_err(|e| e.to_string())?
                    .iter()
                    .map(|p| (base - p[class]) as f32)
                    .collect();
                (gw, gh, values)
            }
            Method::GradCam => {
                let lin = e.bundle.head.linear_head().ok_or("no linear head")?;
                super::gradcam::grad_cam(&e.backbone, lin, input, class)?
            }
            Method::Occlusion => {
                let base = probs[class];
                let drops = occlusion(e, input, class)?;
                let values = drops.iter().map(|p| (base - p) as f32).collect();
                (OCCLUSION_GRID, OCCLUSION_GRID, values)
            }
        };
        Ok(Heatmap {
            method: self.method,
            class,
            probs,
            grid_w,
            grid_h,
            values,
            image_w: w,
            image_h: h,
        })
    }

    /// The heatmap of an image as the model would see it (e.g. the dashboard's window).
    pub fn image(&self, img: &DynamicImage) -> Result<Heatmap, String> {
        let input = self.engine.backbone.preprocess.apply(img);
        self.input(&input, (img.width(), img.height()))
    }
}

/// Reads, decodes and explains one file: the same input as `classify` (its probability is the
/// score `classify` gives), and the decoded image (for overlays).
pub fn explain_path(ex: &Explainer, path: &Path) -> Result<(Heatmap, Decoded), String> {
    let bytes = read_limited(path).map_err(|e| e.0)?;
    let decoded = decode_full(&bytes, 0).map_err(|e| e.0)?;
    let input = ex
        .engine
        .backbone
        .preprocess
        .load_bytes(&bytes)
        .map_err(|e| e.0)?;
    let dims = (decoded.image.width(), decoded.image.height());
    Ok((ex.input(&input, dims)?, decoded))
}

/// Explains an already decoded image (the dashboard's preview, DICOM windowed as shown).
pub fn explain_decoded(ex: &Explainer, d: &Decoded) -> Result<Heatmap, String> {
    ex.image(&d.image)
}

/// The class's logit minus the mean logit, at one location's features.
fn centred_logit(h: &crate::model::linear::LinearHead, row: &[f32], class: usize) -> f32 {
    let logits = h.logits(row);
    let mean = logits.iter().sum::<f64>() / logits.len().max(1) as f64;
    (logits[class] - mean) as f32
}

/// The spec's pooled features from the views' maps (the mean of the views).
fn pooled(
    spec: &crate::model::effnet::FeatureSpec,
    views: &[Vec<osteoai_kernels::net::TapMap>],
) -> Vec<f32> {
    let mut out = vec![0f32; spec.dim()];
    for maps in views {
        let mut o = 0;
        for m in maps {
            let px = (m.h * m.w).max(1);
            for p in &spec.pools {
                for ch in 0..m.c {
                    let it = m.data.iter().skip(ch).step_by(m.c);
                    let v = match p {
                        Pool::Avg => (it.map(|v| *v as f64).sum::<f64>() / px as f64) as f32,
                        Pool::Max => it.copied().fold(f32::NEG_INFINITY, f32::max),
                    };
                    out[o + ch] += v / views.len() as f32;
                }
                o += m.c;
            }
        }
    }
    out
}

/// TreeSHAP contributions of the pooled features spread over the locations: feature `j`'s
/// contribution goes to each cell in proportion to the feature's value there (the pooled
/// value is their mean), to the hottest cell for a max pool. The cells' mean is the image's
/// log-odds minus the head's expected value; for a linear head with a zero baseline this is
/// the class activation map.
fn shap_cam(
    spec: &crate::model::effnet::FeatureSpec,
    rows: &[f32],
    phi: &[f64],
    sign: f64,
) -> Vec<f32> {
    let dim = spec.dim();
    let cells = rows.len() / dim.max(1);
    let mut out = vec![0f64; cells];
    // Which pool each feature came from (tap by tap, pool by pool).
    let mut is_max = vec![false; dim];
    let mut o = 0;
    for t in &spec.taps {
        let c = crate::model::effnet::tap_channels(*t);
        for p in &spec.pools {
            is_max[o..o + c].fill(*p == Pool::Max);
            o += c;
        }
    }
    for j in 0..dim.min(phi.len()) {
        let col = rows.iter().skip(j).step_by(dim);
        if is_max[j] {
            let (best, _) =
                col.enumerate().fold(
                    (0, f32::NEG_INFINITY),
                    |b, (i, v)| {
                        if *v > b.1 { (i, *v) } else { b }
                    },
                );
            out[best] += sign * phi[j] * cells as f64;
            continue;
        }
        let total: f64 = col.clone().map(|v| *v as f64).sum();
        if total.abs() < 1e-12 {
            // Absent everywhere: spread evenly (a constant, no change to the map's shape).
            out.iter_mut().for_each(|o| *o += sign * phi[j]);
            continue;
        }
        for (i, v) in col.enumerate() {
            out[i] += sign * phi[j] * cells as f64 * *v as f64 / total;
        }
    }
    out.into_iter().map(|v| v as f32).collect()
}

/// Side of the region dropped from the pool by `feature-occlusion`, as a fraction of the image.
const DROP_SIDE: f32 = 3.0 / 14.0;

/// For each cell of the `gw x gh` grid, the spec's pooled features with the locations of every
/// tap inside a square (side `DROP_SIDE`) centred on the cell left out of the pool (mirrored
/// for the mirrored view), as if that part of the image had not been there.
fn without_regions(
    spec: &crate::model::effnet::FeatureSpec,
    views: &[Vec<osteoai_kernels::net::TapMap>],
    gw: usize,
    gh: usize,
) -> Vec<f32> {
    let dim = spec.dim();
    let mut rows = vec![0f32; gw * gh * dim];
    let half = DROP_SIDE / 2.0;
    for cy in 0..gh {
        for cx in 0..gw {
            let (fx, fy) = ((cx as f32 + 0.5) / gw as f32, (cy as f32 + 0.5) / gh as f32);
            let row = &mut rows[(cy * gw + cx) * dim..][..dim];
            for (v, maps) in views.iter().enumerate() {
                let fx = if v == 1 { 1.0 - fx } else { fx };
                let mut o = 0;
                for m in maps {
                    let keep: Vec<bool> = (0..m.h * m.w)
                        .map(|p| {
                            let x = ((p % m.w) as f32 + 0.5) / m.w as f32;
                            let y = ((p / m.w) as f32 + 0.5) / m.h as f32;
                            (x - fx).abs() > half || (y - fy).abs() > half
                        })
                        .collect();
                    let kept = keep.iter().filter(|k| **k).count().max(1);
                    for pool in &spec.pools {
                        for ch in 0..m.c {
                            let vals = m
                                .data
                                .iter()
                                .skip(ch)
                                .step_by(m.c)
                                .zip(&keep)
                                .filter(|(_, k)| **k)
                                .map(|(v, _)| *v);
                            let val = match pool {
                                Pool::Avg => {
                                    vals.map(|v| v as f64).sum::<f64>() as f32 / kept as f32
                                }
                                Pool::Max => vals.fold(f32::NEG_INFINITY, f32::max),
                            };
                            row[o + ch] += val / views.len() as f32;
                        }
                        o += m.c;
                    }
                }
            }
        }
    }
    rows
}

/// P(class) with a square greyed out (0 after normalisation: the data set's mean colour)
/// centred on each cell of an 8 x 8 grid, row-major.
fn occlusion(e: &Engine, input: &[f32], class: usize) -> Result<Vec<f64>, String> {
    let s = e.backbone.preprocess.size as usize;
    let cell = s as f64 / OCCLUSION_GRID as f64;
    let half = cell * OCCLUSION_CELLS as f64 / 2.0;
    let mut probs = Vec::with_capacity(OCCLUSION_GRID * OCCLUSION_GRID);
    let positions: Vec<(usize, usize)> = (0..OCCLUSION_GRID)
        .flat_map(|y| (0..OCCLUSION_GRID).map(move |x| (x, y)))
        .collect();
    for chunk in positions.chunks(16) {
        let mut batch = Vec::with_capacity(chunk.len() * input.len());
        for &(gx, gy) in chunk {
            let (cx, cy) = ((gx as f64 + 0.5) * cell, (gy as f64 + 0.5) * cell);
            let (x0, x1) = ((cx - half).max(0.0) as usize, ((cx + half) as usize).min(s));
            let (y0, y1) = ((cy - half).max(0.0) as usize, ((cy + half) as usize).min(s));
            let start = batch.len();
            batch.extend_from_slice(input);
            let img = &mut batch[start..];
            for ch in 0..3 {
                for y in y0..y1 {
                    img[ch * s * s + y * s + x0..ch * s * s + y * s + x1].fill(0.0);
                }
            }
        }
        let feats = e.backbone.features_of_inputs(batch, chunk.len())?;
        let p = e
            .bundle
            .head
            .predict_probs(&feats)
            .map_err(|e| e.to_string())?;
        probs.extend(p.iter().map(|p| p[class]));
    }
    Ok(probs)
}
