//! Training-time augmentation in Rust, seeded and reproducible: one random draw per (seed,
//! epoch, image), so a resumed run sees exactly the images an uninterrupted one would.
//!
//! What real radiograph collections differ by: framing (random resized crop), side (horizontal
//! flip), positioning (rotation, shear), exposure and detector response (brightness, contrast,
//! gamma), sharpness (blur) and quantum noise. One inverse affine map samples the crop, flip,
//! rotation and shear straight into the model's input size (bilinear, zero outside the film);
//! the intensity changes follow on [0, 1] values; the ImageNet normalisation last.

use crate::decode::model_input::Pixels;
use crate::decode::model_input::Preprocess;

/// SplitMix64: a small, fast, well-mixed generator (enough for augmentation and shuffling).
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    /// The generator for one (seed, epoch, item): independent streams, no shared state.
    pub fn for_item(seed: u64, epoch: usize, item: usize) -> Rng {
        let mut r =
            Rng(seed ^ 0x0005_EED0_F057_E0A1_u64.wrapping_mul((epoch as u64).wrapping_add(1)));
        r.0 =
            r.0.wrapping_add((item as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
        r.next_u64();
        r
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    pub fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit()
    }
    pub fn chance(&mut self, p: f32) -> bool {
        self.unit() < p
    }
    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f32 {
        let u = self.unit().max(1e-7);
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
    }
    /// A seeded Fisher-Yates shuffle of `0..n`.
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut v: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
        v
    }
}

/// The augmentation's ranges (recorded in the bundle's recipe).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Augment {
    /// Area of the crop as a fraction of the image, [lo, hi].
    pub crop_scale: [f32; 2],
    /// Aspect ratio of the crop, [lo, hi].
    pub crop_ratio: [f32; 2],
    pub flip: bool,
    /// Rotation, degrees either way.
    pub rotate_deg: f32,
    /// Shear, degrees either way.
    pub shear_deg: f32,
    /// Brightness shift and contrast factor, either way (0.2 = +-20%).
    pub brightness: f32,
    pub contrast: f32,
    /// Gamma in [1/(1+g), 1+g].
    pub gamma: f32,
    /// Probability of a 3x3 binomial blur.
    pub blur_p: f32,
    /// Gaussian noise, standard deviation drawn in [0, noise] (on [0, 1] values).
    pub noise: f32,
}

impl Default for Augment {
    fn default() -> Self {
        Augment {
            crop_scale: [0.70, 1.0],
            crop_ratio: [0.85, 1.18],
            flip: true,
            rotate_deg: 10.0,
            shear_deg: 5.0,
            brightness: 0.1,
            contrast: 0.2,
            gamma: 0.25,
            blur_p: 0.2,
            noise: 0.03,
        }
    }
}

impl Augment {
    /// No augmentation at all (the image resized as for inference, through the same sampler).
    pub fn none() -> Augment {
        Augment {
            crop_scale: [1.0, 1.0],
            crop_ratio: [1.0, 1.0],
            flip: false,
            rotate_deg: 0.0,
            shear_deg: 0.0,
            brightness: 0.0,
            contrast: 0.0,
            gamma: 0.0,
            blur_p: 0.0,
            noise: 0.0,
        }
    }

    /// One augmented model input (`[3, size, size]`, normalised as `pre` says) from a decoded
    /// image of any size.
    pub fn apply(&self, px: &Pixels, pre: &Preprocess, rng: &mut Rng) -> Vec<f32> {
        let s = pre.size as usize;
        let (w, h, c) = (px.width as f32, px.height as f32, px.channels);
        // The crop, in source pixels.
        let area = rng.range(self.crop_scale[0], self.crop_scale[1]);
        let ratio = rng
            .range(self.crop_ratio[0].ln(), self.crop_ratio[1].ln())
            .exp();
        let cw = (w * (area * ratio).sqrt()).min(w);
        let ch = (h * (area / ratio).sqrt()).min(h);
        let cx = rng.range(cw / 2.0, w - cw / 2.0 + f32::EPSILON);
        let cy = rng.range(ch / 2.0, h - ch / 2.0 + f32::EPSILON);
        let flip = self.flip && rng.chance(0.5);
        let rot = rng.range(-self.rotate_deg, self.rotate_deg).to_radians();
        let shear = rng
            .range(-self.shear_deg, self.shear_deg)
            .to_radians()
            .tan();
        let (sin, cos) = rot.sin_cos();
        // Output (u, v) in [-0.5, 0.5]^2 -> rotate and shear -> scale to the crop -> source.
        let step = 1.0 / s as f32;
        let mut vals = vec![0f32; c * s * s];
        for oy in 0..s {
            for ox in 0..s {
                let mut u = (ox as f32 + 0.5) * step - 0.5;
                let v = (oy as f32 + 0.5) * step - 0.5;
                if flip {
                    u = -u;
                }
                let u2 = cos * u - sin * v + shear * v;
                let v2 = sin * u + cos * v;
                let sx = cx + u2 * cw - 0.5;
                let sy = cy + v2 * ch - 0.5;
                sample(px, sx, sy, &mut vals[(oy * s + ox) * c..][..c]);
            }
        }
        // Exposure and detector response.
        let gamma = if self.gamma > 0.0 {
            rng.range(-(1.0 + self.gamma).ln(), (1.0 + self.gamma).ln())
                .exp()
        } else {
            1.0
        };
        let contrast = 1.0 + rng.range(-self.contrast, self.contrast);
        let brightness = rng.range(-self.brightness, self.brightness);
        for x in vals.iter_mut() {
            let g = if gamma != 1.0 {
                x.max(0.0).powf(gamma)
            } else {
                *x
            };
            *x = ((g - 0.5) * contrast + 0.5 + brightness).clamp(0.0, 1.0);
        }
        if self.blur_p > 0.0 && rng.chance(self.blur_p) {
            blur3(&mut vals, s, c);
        }
        if self.noise > 0.0 {
            let sigma = rng.range(0.0, self.noise);
            for x in vals.iter_mut() {
                *x = (*x + sigma * rng.normal()).clamp(0.0, 1.0);
            }
        }
        // HWC (1 or 3 channels) -> normalised CHW, gray repeated.
        let mut out = vec![0f32; 3 * s * s];
        for ch in 0..3 {
            let src = if c == 1 { 0 } else { ch };
            let (m, sd) = (pre.mean[ch], pre.std[ch]);
            for p in 0..s * s {
                out[ch * s * s + p] = (vals[p * c + src] - m) / sd;
            }
        }
        out
    }
}

/// Bilinear sample of all channels at (x, y) in pixel-centre coordinates, as [0, 1] values;
/// zero outside the image.
fn sample(px: &Pixels, x: f32, y: f32, out: &mut [f32]) {
    let (w, h, c) = (px.width as i64, px.height as i64, px.channels);
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let (x0, y0) = (x0 as i64, y0 as i64);
    for (k, o) in out.iter_mut().enumerate() {
        let at = |xx: i64, yy: i64| -> f32 {
            if xx < 0 || yy < 0 || xx >= w || yy >= h {
                0.0
            } else {
                px.data[((yy * w + xx) as usize) * c + k] as f32
            }
        };
        let top = at(x0, y0) * (1.0 - fx) + at(x0 + 1, y0) * fx;
        let bottom = at(x0, y0 + 1) * (1.0 - fx) + at(x0 + 1, y0 + 1) * fx;
        *o = (top * (1.0 - fy) + bottom * fy) / 255.0;
    }
}

/// A 3x3 binomial blur (1 2 1 / 2 4 2 / 1 2 1, edges clamped) of an HWC image.
fn blur3(vals: &mut [f32], s: usize, c: usize) {
    let src = vals.to_vec();
    let at = |x: isize, y: isize, k: usize| -> f32 {
        let x = x.clamp(0, s as isize - 1) as usize;
        let y = y.clamp(0, s as isize - 1) as usize;
        src[(y * s + x) * c + k]
    };
    for y in 0..s as isize {
        for x in 0..s as isize {
            for k in 0..c {
                let mut acc = 0.0;
                for (dy, wy) in [(-1, 1.0), (0, 2.0), (1, 1.0)] {
                    for (dx, wx) in [(-1, 1.0), (0, 2.0), (1, 1.0)] {
                        acc += wy * wx * at(x + dx, y + dy, k);
                    }
                }
                vals[(y as usize * s + x as usize) * c + k] = acc / 16.0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: u32, h: u32) -> Pixels {
        let data = (0..h)
            .flat_map(|y| (0..w).map(move |x| ((x * 255) / (w - 1)) as u8 / 2 + (y % 2) as u8))
            .collect();
        Pixels {
            width: w,
            height: h,
            channels: 1,
            data,
        }
    }

    #[test]
    fn same_seed_same_image_other_seed_other_image() {
        let px = gradient(300, 260);
        let pre = Preprocess::imagenet(64);
        let a = Augment::default();
        let x = a.apply(&px, &pre, &mut Rng::for_item(1, 0, 5));
        let y = a.apply(&px, &pre, &mut Rng::for_item(1, 0, 5));
        let z = a.apply(&px, &pre, &mut Rng::for_item(1, 1, 5));
        assert_eq!(x.len(), 3 * 64 * 64);
        assert_eq!(x, y);
        assert_ne!(x, z);
    }

    #[test]
    fn no_augmentation_is_a_plain_resize() {
        // A left-to-right ramp stays a ramp: monotone along x, normalised as ImageNet says.
        let px = gradient(128, 128);
        let pre = Preprocess::imagenet(32);
        let x = Augment::none().apply(&px, &pre, &mut Rng(0));
        let row: Vec<f32> = (0..32).map(|i| x[5 * 32 + i]).collect();
        assert!(row.windows(2).all(|p| p[1] >= p[0] - 1e-6), "{row:?}");
        let v = (row[16] * pre.std[0] + pre.mean[0]) * 255.0;
        assert!((v - 64.0).abs() < 4.0, "{v}");
        // Gray is repeated into the three channels before normalisation.
        let g = (x[32 * 32 + 5 * 32 + 16] * pre.std[1] + pre.mean[1]) * 255.0;
        assert!((g - v).abs() < 0.01);
    }

    #[test]
    fn flip_mirrors_the_image() {
        let px = gradient(100, 100);
        let pre = Preprocess::imagenet(20);
        let mut a = Augment::none();
        a.flip = true;
        // Find a draw that flips and one that does not: their rows are mirror images.
        let rows: Vec<Vec<f32>> = (0..8)
            .map(|i| a.apply(&px, &pre, &mut Rng::for_item(3, 0, i))[..20].to_vec())
            .collect();
        let first = &rows[0];
        let mirrored: Vec<f32> = first.iter().rev().copied().collect();
        assert!(
            rows.iter()
                .any(|r| r.iter().zip(&mirrored).all(|(p, q)| (p - q).abs() < 1e-4))
        );
    }

    #[test]
    fn permutation_is_a_permutation() {
        let mut p = Rng(9).permutation(100);
        p.sort();
        assert_eq!(p, (0..100).collect::<Vec<_>>());
    }
}
