//! An 8-bit grey image and the few operations the audit needs of one: area resize, mirror,
//! bilinear sampling, contrast stretch, tone statistics.

/// `v.round().clamp(0.0, 255.0) as u8` for every `v`, without `round`: in the baseline x86-64
/// build that is a libm call, and this runs for every pixel the audit resizes.
#[inline(always)]
pub fn to_u8(v: f32) -> u8 {
    if v.is_nan() || v <= 0.0 {
        return 0; // NaN, zero and negatives (rounded, then clamped to 0)
    }
    if v >= 255.0 {
        return 255;
    }
    // 0 < v < 255: `v - t` is exact, and rounding is half away from zero.
    let t = v as u32;
    t as u8 + (v - t as f32 >= 0.5) as u8
}

/// For each of `n_out` positions along one axis (input step `s` >= 1), the input pixels it
/// covers and their weights (the covered length of each), `k` per position: shorter spans are
/// padded with weight 0 on their last pixel (adding `0 * v` to a sum that starts at +0 changes
/// nothing, and a fixed length makes the inner loop cheap).
struct Spans {
    k: usize,
    idx: Vec<usize>,
    wt: Vec<f32>,
}

fn spans(n_in: usize, n_out: usize, s: f32) -> Spans {
    let lists: Vec<Vec<(usize, f32)>> = (0..n_out)
        .map(|o| {
            let a = o as f32 * s;
            let b = a + s;
            let mut v = Vec::with_capacity(s as usize + 2);
            let mut i = a as usize; // a >= 0: the floor
            while (i as f32) < b && i < n_in {
                v.push((i, (b.min(i as f32 + 1.0) - a.max(i as f32)).max(0.0)));
                i += 1;
            }
            v
        })
        .collect();
    let k = lists.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let (mut idx, mut wt) = (Vec::with_capacity(n_out * k), Vec::with_capacity(n_out * k));
    for l in &lists {
        let last = l.last().map_or(0, |p| p.0);
        for j in 0..k {
            let (i, w) = l.get(j).copied().unwrap_or((last, 0.0));
            idx.push(i);
            wt.push(w);
        }
    }
    Spans { k, idx, wt }
}

/// An 8-bit grey image, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Gray {
    pub w: usize,
    pub h: usize,
    pub px: Vec<u8>,
}

impl Gray {
    pub fn new(w: usize, h: usize, px: Vec<u8>) -> Gray {
        assert_eq!(px.len(), w * h, "pixel count");
        Gray { w, h, px }
    }

    #[inline]
    pub fn at(&self, x: usize, y: usize) -> u8 {
        self.px[y * self.w + x]
    }

    /// Area-averaging resize (each output pixel is the mean of the input it covers).
    pub fn resize(&self, w: usize, h: usize) -> Gray {
        let (w, h) = (w.max(1), h.max(1));
        if (w, h) == (self.w, self.h) {
            return self.clone();
        }
        let sx = self.w as f32 / w as f32;
        let sy = self.h as f32 / h as f32;
        let mut out = vec![0u8; w * h];
        if sx < 1.0 || sy < 1.0 {
            // Upscale (rare: tiny images): bilinear.
            for y in 0..h {
                for x in 0..w {
                    let v = self.bilinear((x as f32 + 0.5) * sx - 0.5, (y as f32 + 0.5) * sy - 0.5);
                    out[y * w + x] = to_u8(v);
                }
            }
            return Gray::new(w, h, out);
        }
        let (xs, ys) = (spans(self.w, w, sx), spans(self.h, h, sy));
        for (y, row_out) in out.chunks_mut(w).enumerate() {
            let yr = y * ys.k..(y + 1) * ys.k;
            for (x, o) in row_out.iter_mut().enumerate() {
                let xr = x * xs.k..(x + 1) * xs.k;
                let (mut sum, mut area) = (0f32, 0f32);
                for (&yy, &wy) in ys.idx[yr.clone()].iter().zip(&ys.wt[yr.clone()]) {
                    let row = &self.px[yy * self.w..(yy + 1) * self.w];
                    for (&xx, &wx) in xs.idx[xr.clone()].iter().zip(&xs.wt[xr.clone()]) {
                        sum += wx * wy * row[xx] as f32;
                        area += wx * wy;
                    }
                }
                *o = to_u8(sum / area.max(1e-6));
            }
        }
        Gray::new(w, h, out)
    }

    /// Scaled so that the longer side is `side` (never enlarged past `side`).
    pub fn fit(&self, side: usize) -> Gray {
        let s = side as f32 / self.w.max(self.h) as f32;
        self.resize(
            ((self.w as f32 * s).round() as usize).max(1),
            ((self.h as f32 * s).round() as usize).max(1),
        )
    }

    /// Mirror image (left-right).
    pub fn mirrored(&self) -> Gray {
        let mut px = Vec::with_capacity(self.px.len());
        for row in self.px.chunks(self.w) {
            px.extend(row.iter().rev());
        }
        Gray::new(self.w, self.h, px)
    }

    /// Bilinear sample; outside the image reads as `None` through `sample`.
    #[inline]
    pub fn bilinear(&self, x: f32, y: f32) -> f32 {
        let x = x.clamp(0.0, (self.w - 1) as f32);
        let y = y.clamp(0.0, (self.h - 1) as f32);
        // Both are at least 0 here: the cast is the floor (without a libm call).
        let (x0, y0) = (x as usize, y as usize);
        let (x1, y1) = ((x0 + 1).min(self.w - 1), (y0 + 1).min(self.h - 1));
        let (fx, fy) = (x - x0 as f32, y - y0 as f32);
        let a = self.at(x0, y0) as f32 * (1.0 - fx) + self.at(x1, y0) as f32 * fx;
        let b = self.at(x0, y1) as f32 * (1.0 - fx) + self.at(x1, y1) as f32 * fx;
        a * (1.0 - fy) + b * fy
    }

    /// Linear contrast stretch of the 1st..99th percentile to 0..255 (re-exposed copies then
    /// look alike to a fixed FAST threshold).
    pub fn stretched(&self) -> Gray {
        let mut hist = [0usize; 256];
        for &v in &self.px {
            hist[v as usize] += 1;
        }
        let n = self.px.len();
        let pct = |q: f64| {
            let target = (q * n as f64) as usize;
            let mut acc = 0;
            for (v, &c) in hist.iter().enumerate() {
                acc += c;
                if acc > target {
                    return v;
                }
            }
            255
        };
        let (lo, hi) = (pct(0.01), pct(0.99));
        if hi <= lo + 8 {
            return self.clone();
        }
        let scale = 255.0 / (hi - lo) as f32;
        let lut: Vec<u8> = (0..256)
            .map(|v| ((v as f32 - lo as f32) * scale).round().clamp(0.0, 255.0) as u8)
            .collect();
        Gray::new(
            self.w,
            self.h,
            self.px.iter().map(|&v| lut[v as usize]).collect(),
        )
    }
}

/// Tone statistics of a grey image: what the audit's quality flags (dark, bright, low
/// information, blurry) are computed from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tone {
    /// Mean grey level, 0..1.
    pub brightness: f64,
    /// Shannon entropy of the grey histogram, bits (0..8).
    pub entropy: f64,
    /// Variance of the Laplacian over the variance of the image (contrast-invariant
    /// sharpness), on a reduced version.
    pub sharpness: f64,
}

impl Gray {
    /// Brightness and entropy of this image; sharpness of `small`, this image reduced (the
    /// audit passes it at most 256 pixels a side, so that the measure does not depend on the
    /// file's resolution).
    pub fn tone(&self, small: &Gray) -> Tone {
        let mut hist = [0usize; 256];
        for &v in &self.px {
            hist[v as usize] += 1;
        }
        let n = self.px.len().max(1) as f64;
        let brightness = self.px.iter().map(|&v| v as f64).sum::<f64>() / n / 255.0;
        let entropy = hist
            .iter()
            .filter(|&&c| c > 0)
            .map(|&c| {
                let p = c as f64 / n;
                -p * p.log2()
            })
            .sum::<f64>();
        let (w, h) = (small.w, small.h);
        let (mut lap, mut lap2, mut m, mut m2, mut k) = (0f64, 0f64, 0f64, 0f64, 0f64);
        for y in 1..h.saturating_sub(1) {
            for x in 1..w.saturating_sub(1) {
                let c = small.at(x, y) as f64;
                let l = small.at(x - 1, y) as f64
                    + small.at(x + 1, y) as f64
                    + small.at(x, y - 1) as f64
                    + small.at(x, y + 1) as f64
                    - 4.0 * c;
                lap += l;
                lap2 += l * l;
                m += c;
                m2 += c * c;
                k += 1.0;
            }
        }
        let sharpness = if k > 0.0 {
            let vl = lap2 / k - (lap / k).powi(2);
            let vi = m2 / k - (m / k).powi(2);
            if vi > 1e-9 { vl / vi } else { 0.0 }
        } else {
            0.0
        };
        Tone {
            brightness,
            entropy,
            sharpness,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_u8_is_round_then_clamp() {
        let mut cases = vec![
            0.0,
            -0.0,
            -0.4,
            -0.5,
            -3.7,
            0.499_999_97,
            0.5,
            0.500_000_06,
            1.5,
            2.5,
            127.499_99,
            254.5,
            254.499_98,
            254.999_98,
            255.0,
            255.4,
            255.5,
            1e9,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            f32::MIN_POSITIVE,
        ];
        cases.extend((0..200_000).map(|k| k as f32 * 0.001_37 - 20.0));
        for v in cases {
            assert_eq!(to_u8(v), v.round().clamp(0.0, 255.0) as u8, "{v}");
        }
    }

    /// The area resize as it was first written (per pixel, no tables): the tables must give
    /// the very same pixels, since keypoints and cached signatures depend on them.
    fn resize_reference(g: &Gray, w: usize, h: usize) -> Vec<u8> {
        let sx = g.w as f32 / w as f32;
        let sy = g.h as f32 / h as f32;
        let mut out = vec![0u8; w * h];
        for y in 0..h {
            let y0 = y as f32 * sy;
            let y1 = y0 + sy;
            for x in 0..w {
                let x0 = x as f32 * sx;
                let x1 = x0 + sx;
                let (mut sum, mut area) = (0f32, 0f32);
                let mut yy = y0.floor() as usize;
                while (yy as f32) < y1 && yy < g.h {
                    let wy = (y1.min(yy as f32 + 1.0) - y0.max(yy as f32)).max(0.0);
                    let mut xx = x0.floor() as usize;
                    while (xx as f32) < x1 && xx < g.w {
                        let wx = (x1.min(xx as f32 + 1.0) - x0.max(xx as f32)).max(0.0);
                        sum += wx * wy * g.at(xx, yy) as f32;
                        area += wx * wy;
                        xx += 1;
                    }
                    yy += 1;
                }
                out[y * w + x] = (sum / area.max(1e-6)).round().clamp(0.0, 255.0) as u8;
            }
        }
        out
    }

    #[test]
    fn the_resize_tables_give_the_reference_pixels() {
        let px = (0..457 * 512).map(|i| ((i * 7919 + i / 457 * 31) % 251) as u8);
        let g = Gray::new(457, 512, px.collect());
        for (w, h) in [
            (280, 320),
            (225, 256),
            (84, 96),
            (32, 32),
            (179, 205),
            (457, 300),
        ] {
            assert_eq!(g.resize(w, h).px, resize_reference(&g, w, h), "{w}x{h}");
        }
    }

    #[test]
    fn tone_of_a_flat_and_a_checkered_image() {
        let flat = Gray::new(64, 64, vec![51; 64 * 64]);
        let t = flat.tone(&flat);
        assert!((t.brightness - 0.2).abs() < 1e-9 && t.entropy == 0.0 && t.sharpness == 0.0);
        let px = (0..64 * 64).map(|i| if (i % 64 + i / 64) % 2 == 0 { 0 } else { 255 });
        let checks = Gray::new(64, 64, px.collect());
        let t = checks.tone(&checks);
        assert!((t.entropy - 1.0).abs() < 1e-9, "{t:?}");
        // Every interior pixel is an extreme of its neighbours: a very sharp image.
        assert!(t.sharpness > 10.0, "{t:?}");
    }
}
