//! Unpooled feature maps of one image at the requested taps: what class activation maps and
//! "head over the map" explanations read (the pooled features are their averages).

use super::{Net, NetError, SCRATCH, Tap, mirror, take};
use crate::isa::Isa;
use crate::pointwise::Act;

/// One tap's map: `h * w` pixels of `c` channels, pixel-major (NHWC without the N).
#[derive(Clone, Debug, PartialEq)]
pub struct TapMap {
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub data: Vec<f32>,
}

impl TapMap {
    /// The `c` channels at pixel `(y, x)`.
    pub fn at(&self, y: usize, x: usize) -> &[f32] {
        &self.data[(y * self.w + x) * self.c..][..self.c]
    }
}

impl Net {
    /// The maps at `taps` (in the order given) of one CHW image (`[cin, h, w]`), or of its
    /// left-right mirror when `mirrored`. `parallel` spreads each layer over the threads (one
    /// image at a time); without it the call stays on this thread (many images in parallel).
    pub fn maps(
        &self,
        isa: Isa,
        image: &[f32],
        (h, w): (usize, usize),
        taps: &[Tap],
        mirrored: bool,
        parallel: bool,
    ) -> Result<Vec<TapMap>, NetError> {
        if image.len() != self.stem_cin * h * w {
            return Err(NetError(format!(
                "{} input values for an image of {}x{h}x{w}",
                image.len(),
                self.stem_cin
            )));
        }
        if let Some(t) = taps.iter().find(|t| self.tap_channels(**t) == 0) {
            return Err(NetError(format!("no tap {t:?} in this network")));
        }
        let flipped;
        let img = if mirrored {
            flipped = mirror(image, self.stem_cin, h, w);
            &flipped[..]
        } else {
            image
        };
        let mut found: Vec<Option<TapMap>> = vec![None; taps.len()];
        let keep = |found: &mut Vec<Option<TapMap>>, tap: Tap, x: &[f32], (h, w, c)| {
            for (slot, t) in found.iter_mut().zip(taps) {
                if *t == tap {
                    *slot = Some(TapMap {
                        h,
                        w,
                        c,
                        data: x[..h * w * c].to_vec(),
                    });
                }
            }
        };
        let mut s = SCRATCH.take().unwrap_or_default();
        let mut shape = self.stem(isa, img, (h, w), &mut s, parallel);
        let last = taps
            .iter()
            .map(|t| match t {
                Tap::Block(i) => *i + 1,
                Tap::Head => self.blocks.len(),
            })
            .max()
            .unwrap_or(0);
        for i in 0..last {
            shape = self.block(isa, i, &mut s, 1, shape, parallel);
            keep(&mut found, Tap::Block(i), &s.x, shape);
        }
        if taps.contains(&Tap::Head) {
            let (hh, ww, c) = shape;
            let y = take(&mut s.y, hh * ww * self.head.cout);
            self.head.run(
                isa,
                &s.x[..hh * ww * c],
                y,
                hh * ww,
                Act::Relu6,
                None,
                parallel,
            );
            keep(&mut found, Tap::Head, &s.y, (hh, ww, self.head.cout));
        }
        SCRATCH.set(Some(s));
        Ok(found
            .into_iter()
            .map(|m| m.expect("every tap was checked"))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::Pool;

    /// The average of each map is the pooled feature the classifier reads, for the image and
    /// for its mirror (flip averaging).
    #[test]
    fn maps_average_to_the_pooled_features() {
        let (stem, blocks, head) = crate::synthetic::lite0(&mut crate::synthetic::Lcg(5));
        let net = Net::new(&stem, &blocks, &head).unwrap();
        let (h, w) = (64, 96);
        let img: Vec<f32> = (0..3 * h * w)
            .map(|i| ((i * 7919 % 997) as f32 / 498.0) - 1.0)
            .collect();
        let isa = crate::isa::active();
        let taps = [Tap::Head, Tap::Block(10), Tap::Block(3)];
        for mirrored in [false, true] {
            let maps = net.maps(isa, &img, (h, w), &taps, mirrored, true).unwrap();
            let input = if mirrored {
                mirror(&img, 3, h, w)
            } else {
                img.clone()
            };
            let pooled = net
                .features(isa, &input, 1, h, w, &taps, &[Pool::Avg], false)
                .unwrap();
            let mut o = 0;
            for m in &maps {
                assert_eq!(m.data.len(), m.h * m.w * m.c);
                for ch in 0..m.c {
                    let mean = m
                        .data
                        .iter()
                        .skip(ch)
                        .step_by(m.c)
                        .map(|v| *v as f64)
                        .sum::<f64>()
                        / (m.h * m.w) as f64;
                    let want = pooled[o + ch] as f64;
                    assert!(
                        (mean - want).abs() <= 1e-4 * want.abs().max(1.0),
                        "{mean} vs {want}"
                    );
                }
                o += m.c;
            }
            assert_eq!(o, pooled.len());
        }
        assert_eq!((maps_shape(&net, &img, h, w)), (2, 3, 1280));
        assert!(
            net.maps(isa, &img[1..], (h, w), &taps, false, true)
                .is_err()
        );
        assert!(
            net.maps(isa, &img, (h, w), &[Tap::Block(99)], false, true)
                .is_err()
        );
    }

    fn maps_shape(net: &Net, img: &[f32], h: usize, w: usize) -> (usize, usize, usize) {
        let m = net
            .maps(
                crate::isa::active(),
                img,
                (h, w),
                &[Tap::Head],
                false,
                false,
            )
            .unwrap()
            .remove(0);
        (m.h, m.w, m.c)
    }
}
