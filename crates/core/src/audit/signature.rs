//! What the audit knows of one file, computed from one decode and cached by file identity:
//! hashes of the bytes and of the decoded pixels, a perceptual hash (as it is and mirrored),
//! quality statistics, and the keypoints and thumbnail that geometric verification needs.

use std::path::Path;

use image::DynamicImage;
use sha2::{Digest, Sha256};

use crate::cache::{DiskCache, Fnv, file_key};
use osteoai_vision::gray::Gray;
use osteoai_vision::orb::{Features, OrbParams, detect};
use osteoai_vision::verify::Views;

/// Side (pixels) of the image keypoints are found on.
pub const WORK_SIDE: usize = 320;
/// Side of the thumbnail the pixel check compares.
pub const THUMB_SIDE: usize = 96;
/// Bumped whenever what a signature holds or how it is computed changes (cache salt).
const VERSION: u8 = 1;

/// Image statistics behind the quality flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Stats {
    pub width: u32,
    pub height: u32,
    /// Mean grey level, 0..1.
    pub brightness: f32,
    /// Shannon entropy of the grey histogram, bits (0..8).
    pub entropy: f32,
    /// Variance of the Laplacian over the variance of the image, on a 256-pixel version
    /// (contrast-invariant sharpness).
    pub sharpness: f32,
    /// Mean absolute difference between colour channels, 0..1 (0 for grey).
    pub colorfulness: f32,
}

/// Everything the audit needs of one readable file.
#[derive(Clone, Debug, PartialEq)]
pub struct Signature {
    pub bytes_hash: [u8; 16],
    pub pixels_hash: [u8; 16],
    pub stats: Stats,
    pub phash: u64,
    pub phash_mirrored: u64,
    pub views: Views,
}

fn sha128(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    let d = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    out
}

/// Grey (luma) version of any image.
pub fn gray_of(img: &DynamicImage) -> Gray {
    let l = img.to_luma8();
    Gray::new(l.width() as usize, l.height() as usize, l.into_raw())
}

/// 64-bit DCT hash of a 32x32 version: bit k set when the k-th low-frequency coefficient (8x8
/// block, DC included, row-major) is above their median.
pub fn phash(g: &Gray) -> u64 {
    let s = g.resize(32, 32);
    let px: Vec<f32> = s.px.iter().map(|&v| v as f32).collect();
    // Separable DCT-II of the first 8 frequencies.
    let cos: Vec<f32> = (0..8)
        .flat_map(|u| {
            (0..32)
                .map(move |x| (std::f32::consts::PI * (2 * x + 1) as f32 * u as f32 / 64.0).cos())
        })
        .collect();
    let mut rows = [[0f32; 8]; 32];
    for (y, row) in rows.iter_mut().enumerate() {
        for (u, r) in row.iter_mut().enumerate() {
            *r = (0..32).map(|x| px[y * 32 + x] * cos[u * 32 + x]).sum();
        }
    }
    let mut c = [0f32; 64];
    for v in 0..8 {
        for u in 0..8 {
            c[v * 8 + u] = (0..32).map(|y| rows[y][u] * cos[v * 32 + y]).sum();
        }
    }
    let mut sorted = c[1..].to_vec();
    sorted.sort_by(f32::total_cmp);
    let median = sorted[sorted.len() / 2];
    c.iter()
        .enumerate()
        .fold(0u64, |h, (k, &v)| if v > median { h | 1 << k } else { h })
}

/// `small`: `g` at most 256 pixels a side (the sharpness is measured on it).
fn stats(img: &DynamicImage, g: &Gray, small: &Gray) -> Stats {
    let tone = g.tone(small);
    let colorfulness = match img {
        DynamicImage::ImageLuma8(_)
        | DynamicImage::ImageLuma16(_)
        | DynamicImage::ImageLumaA8(_)
        | DynamicImage::ImageLumaA16(_) => 0.0,
        _ => {
            let rgb = img.thumbnail(128, 128).to_rgb8();
            let mut s = 0f64;
            for p in rgb.pixels() {
                let [r, g, b] = p.0.map(|v| v as f64);
                s += ((r - g).abs() + (g - b).abs() + (r - b).abs()) / 3.0;
            }
            s / (rgb.width() * rgb.height()).max(1) as f64 / 255.0
        }
    };
    Stats {
        width: img.width(),
        height: img.height(),
        brightness: tone.brightness as f32,
        entropy: tone.entropy as f32,
        sharpness: tone.sharpness as f32,
        colorfulness: colorfulness as f32,
    }
}

/// Keypoint views of a grey image: a contrast-stretched working copy (as it is and mirrored)
/// and a thumbnail.
pub fn views_of(g: &Gray) -> Views {
    let work = g.fit(WORK_SIDE);
    let stretched = work.stretched();
    let p = OrbParams::default();
    Views {
        work_w: work.w as u32,
        work_h: work.h as u32,
        features: detect(&stretched, &p),
        mirrored: detect(&stretched.mirrored(), &p),
        thumb: Some(g.fit(THUMB_SIDE)),
    }
}

/// The signature of a decoded image whose file held `bytes`.
pub fn signature_of(bytes: &[u8], img: &DynamicImage) -> Signature {
    let g = gray_of(img);
    // The pixel hash reads RGB bytes: an RGB image's own (no copy of a large film), others'
    // converted.
    let converted;
    let rgb: &[u8] = match img.as_rgb8() {
        Some(b) => b.as_raw(),
        None => {
            converted = img.to_rgb8();
            converted.as_raw()
        }
    };
    let dims = [img.width().to_le_bytes(), img.height().to_le_bytes()].concat();
    let small = g.fit(256);
    let stretched = small.stretched();
    Signature {
        bytes_hash: sha128(&[bytes]),
        pixels_hash: sha128(&[&dims, rgb]),
        stats: stats(img, &g, &small),
        phash: phash(&stretched),
        phash_mirrored: phash(&stretched.mirrored()),
        views: views_of(&g),
    }
}

/// Reads, decodes (with the usual limits) and signs a file.
pub fn compute(path: &Path) -> Result<Signature, String> {
    let bytes = crate::decode::imaging::read_limited(path).map_err(|e| e.0)?;
    let img = crate::decode::imaging::decode_bytes(&bytes).map_err(|e| e.0)?;
    Ok(signature_of(&bytes, &img))
}

/// Signature or the reason the file is unusable, from the cache or computed (and cached).
pub fn cached(path: &Path, cache: Option<&DiskCache>) -> Result<Signature, String> {
    let mut salt = Fnv::new();
    salt.write(b"audit-signature");
    salt.write(&[VERSION]);
    let key = cache.and_then(|_| file_key(path, salt.finish()));
    if let (Some(c), Some(k)) = (cache, key)
        && let Some(b) = c.get_bytes(k)
        && let Some(r) = decode_entry(&b)
    {
        return r;
    }
    let r = compute(path);
    if let (Some(c), Some(k)) = (cache, key) {
        c.put_bytes(k, &encode_entry(&r));
    }
    r
}

// Binary cache entry: tag 1 = signature, 2 = error text.

struct W(Vec<u8>);
impl W {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend(v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend(v.to_le_bytes());
    }
    fn f32(&mut self, v: f32) {
        self.0.extend(v.to_le_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.0.extend(b);
    }
    fn features(&mut self, f: &Features) {
        self.u32(f.points.len() as u32);
        for (p, d) in f.points.iter().zip(&f.desc) {
            self.f32(p[0]);
            self.f32(p[1]);
            for w in d {
                self.u64(*w);
            }
        }
    }
}

struct R<'a>(&'a [u8]);
impl R<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn f32(&mut self) -> Option<f32> {
        Some(f32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<Vec<u8>> {
        let n = self.u32()? as usize;
        Some(self.take(n)?.to_vec())
    }
    fn features(&mut self) -> Option<Features> {
        let n = self.u32()? as usize;
        if n > 100_000 {
            return None;
        }
        let mut f = Features::default();
        for _ in 0..n {
            f.points.push([self.f32()?, self.f32()?]);
            f.desc
                .push([self.u64()?, self.u64()?, self.u64()?, self.u64()?]);
        }
        Some(f)
    }
}

fn encode_entry(r: &Result<Signature, String>) -> Vec<u8> {
    let mut w = W(Vec::new());
    w.u8(VERSION);
    match r {
        Err(e) => {
            w.u8(2);
            w.bytes(e.as_bytes());
        }
        Ok(s) => {
            w.u8(1);
            w.0.extend(s.bytes_hash);
            w.0.extend(s.pixels_hash);
            let st = &s.stats;
            w.u32(st.width);
            w.u32(st.height);
            for v in [st.brightness, st.entropy, st.sharpness, st.colorfulness] {
                w.f32(v);
            }
            w.u64(s.phash);
            w.u64(s.phash_mirrored);
            w.u32(s.views.work_w);
            w.u32(s.views.work_h);
            w.features(&s.views.features);
            w.features(&s.views.mirrored);
            match &s.views.thumb {
                Some(t) => {
                    w.u32(t.w as u32);
                    w.u32(t.h as u32);
                    w.bytes(&t.px);
                }
                None => {
                    w.u32(0);
                    w.u32(0);
                    w.bytes(&[]);
                }
            }
        }
    }
    w.0
}

fn decode_entry(b: &[u8]) -> Option<Result<Signature, String>> {
    let mut r = R(b);
    if r.u8()? != VERSION {
        return None;
    }
    let out = match r.u8()? {
        2 => Err(String::from_utf8(r.bytes()?).ok()?),
        1 => {
            let bytes_hash: [u8; 16] = r.take(16)?.try_into().ok()?;
            let pixels_hash: [u8; 16] = r.take(16)?.try_into().ok()?;
            let (width, height) = (r.u32()?, r.u32()?);
            let stats = Stats {
                width,
                height,
                brightness: r.f32()?,
                entropy: r.f32()?,
                sharpness: r.f32()?,
                colorfulness: r.f32()?,
            };
            let (phash, phash_mirrored) = (r.u64()?, r.u64()?);
            let (work_w, work_h) = (r.u32()?, r.u32()?);
            let features = r.features()?;
            let mirrored = r.features()?;
            let (tw, th) = (r.u32()? as usize, r.u32()? as usize);
            let px = r.bytes()?;
            let thumb = if tw * th == 0 {
                None
            } else if px.len() == tw * th {
                Some(Gray::new(tw, th, px))
            } else {
                return None;
            };
            Ok(Signature {
                bytes_hash,
                pixels_hash,
                stats,
                phash,
                phash_mirrored,
                views: Views {
                    work_w,
                    work_h,
                    features,
                    mirrored,
                    thumb,
                },
            })
        }
        _ => return None,
    };
    r.0.is_empty().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma};

    fn drawing(seed: u32) -> DynamicImage {
        DynamicImage::ImageLuma8(GrayImage::from_fn(180, 220, |x, y| {
            let v = ((x * (3 + seed) + y * 7) % 97) as u8
                + if (x / 20 + y / 30 + seed).is_multiple_of(3) {
                    120
                } else {
                    20
                };
            Luma([v])
        }))
    }

    #[test]
    fn cache_round_trip_and_errors_are_cached_too() {
        let img = drawing(1);
        let s = signature_of(b"abc", &img);
        assert_eq!(
            decode_entry(&encode_entry(&Ok(s.clone()))),
            Some(Ok(s.clone()))
        );
        let e: Result<Signature, String> = Err("truncated JPEG".into());
        assert_eq!(decode_entry(&encode_entry(&e)), Some(e));
        let mut b = encode_entry(&Ok(s));
        b.pop();
        assert_eq!(decode_entry(&b), None, "a short entry is a miss");
    }

    #[test]
    fn same_pixels_different_bytes() {
        let img = drawing(2);
        let a = signature_of(b"file one", &img);
        let b = signature_of(b"file two", &img);
        assert_ne!(a.bytes_hash, b.bytes_hash);
        assert_eq!(a.pixels_hash, b.pixels_hash);
        assert_eq!(a.phash, b.phash);
        let c = signature_of(b"file one", &drawing(5));
        assert_ne!(a.pixels_hash, c.pixels_hash);
        // An RGB image is hashed from its own bytes, others converted: the same pixels as
        // RGB, opaque RGBA and grey give one hash.
        let rgb = DynamicImage::ImageRgb8(img.to_rgb8());
        let rgba = DynamicImage::ImageRgba8(img.to_rgba8());
        let grey = DynamicImage::ImageLuma8(img.to_luma8());
        let grey_rgb = DynamicImage::ImageRgb8(grey.to_rgb8());
        assert_eq!(signature_of(b"", &rgb).pixels_hash, a.pixels_hash);
        assert_eq!(signature_of(b"", &rgba).pixels_hash, a.pixels_hash);
        assert_eq!(
            signature_of(b"", &grey).pixels_hash,
            signature_of(b"", &grey_rgb).pixels_hash
        );
    }

    #[test]
    fn phash_survives_exposure_and_mirroring_is_its_own_hash() {
        let img = drawing(3);
        let g = gray_of(&img);
        let brighter = Gray::new(
            g.w,
            g.h,
            g.px.iter()
                .map(|&v| (v as u16 * 5 / 4).min(255) as u8)
                .collect(),
        );
        let d = (phash(&g.stretched()) ^ phash(&brighter.stretched())).count_ones();
        assert!(
            d <= crate::audit::AuditParams::default().phash_distance,
            "{d}"
        );
        let m = (phash(&g.mirrored()) ^ phash(&g)).count_ones();
        assert!(m > 8, "{m}");
    }
}
