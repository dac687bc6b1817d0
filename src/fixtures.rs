//! The demo and test fixtures, generated (never copied): synthetic radiograph-like images in a
//! small labelled tree, odd-but-valid formats, and broken files. `osteoai make-fixtures DIR`
//! writes them; a test checks that the committed `fixtures/` equals a fresh generation.
//!
//! The synthetic images are drawings (a bone shaft in soft tissue; "fracture" ones have a
//! displaced break). They show how the tool works; the model's scores on them mean nothing.

use std::path::{Path, PathBuf};

use image::{DynamicImage, GrayImage, ImageBuffer, Luma, Rgba};

/// Deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
    fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit()
    }
}

/// A synthetic radiograph: dark background, soft tissue, one long bone with a cortex; with a
/// displaced, jagged break when `fracture`.
pub fn radiograph(seed: u64, fracture: bool, w: u32, h: u32) -> GrayImage {
    let mut r = Rng(seed.wrapping_mul(7919).wrapping_add(17));
    let angle = r.range(-0.5, 0.5);
    let (ca, sa) = (angle.cos(), angle.sin());
    let (cx, cy) = (
        w as f32 * r.range(0.42, 0.58),
        h as f32 * r.range(0.42, 0.58),
    );
    let radius = h.min(w) as f32 * r.range(0.07, 0.11);
    let tissue = h.min(w) as f32 * r.range(0.28, 0.38);
    let break_at = r.range(-0.2, 0.2) * h as f32;
    let shift = if fracture {
        radius * r.range(0.35, 0.7)
    } else {
        0.0
    };
    let gap = if fracture { r.range(1.5, 3.5) } else { 0.0 };
    let phase = r.range(0.0, std::f32::consts::TAU);
    let mut noise = Rng(seed ^ 0xA5A5);
    ImageBuffer::from_fn(w, h, |x, y| {
        let (dx, dy) = (x as f32 - cx, y as f32 - cy);
        // Along (u) and across (v) the bone.
        let u = dx * sa + dy * ca;
        let mut v = dx * ca - dy * sa;
        let mut val = 18.0 + 10.0 * noise.unit();
        if v.abs() < tissue {
            val += 55.0 * (1.0 - (v / tissue).powi(2));
        }
        let crack = break_at + 4.0 * (u * 0.0 + v * 0.35 + phase).sin() + 3.0 * (v * 0.9).sin();
        if u > crack {
            v += shift;
        }
        let in_gap = fracture && (u - crack).abs() < gap;
        if v.abs() < radius && !in_gap {
            let t = v.abs() / radius;
            // Bright cortex at the edges, dimmer marrow in the middle.
            val += 120.0 + 70.0 * t.powi(4) - 25.0 * (1.0 - t);
        }
        Luma([val.clamp(0.0, 255.0) as u8])
    })
}

fn jpeg(img: &GrayImage, quality: u8) -> Vec<u8> {
    let mut v = Vec::new();
    let enc = jpeg_encoder::Encoder::new(&mut v, quality);
    enc.encode(
        img.as_raw(),
        img.width() as u16,
        img.height() as u16,
        jpeg_encoder::ColorType::Luma,
    )
    .expect("in-memory JPEG");
    v
}

fn png(img: &DynamicImage) -> Vec<u8> {
    let mut v = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut v), image::ImageFormat::Png)
        .expect("in-memory PNG");
    v
}

fn encode(img: &DynamicImage, format: image::ImageFormat) -> Vec<u8> {
    let mut v = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut v), format)
        .expect("in-memory image");
    v
}

/// CRC-32 (PNG chunks).
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A PNG signature and header claiming `w` x `h` pixels, and no pixel data.
pub fn png_header_only(w: u32, h: u32) -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 0, 0, 0, 0]);
    v.extend(13u32.to_be_bytes());
    v.extend(&ihdr);
    v.extend(crc32(&ihdr).to_be_bytes());
    v
}

/// A JPEG with an EXIF APP1 segment carrying `orientation` (1..=8).
pub fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = b"II*\0".to_vec();
    tiff.extend(8u32.to_le_bytes()); // first IFD offset
    tiff.extend(1u16.to_le_bytes()); // one entry
    tiff.extend(0x0112u16.to_le_bytes()); // Orientation
    tiff.extend(3u16.to_le_bytes()); // SHORT
    tiff.extend(1u32.to_le_bytes()); // count
    tiff.extend(orientation.to_le_bytes());
    tiff.extend([0, 0]);
    tiff.extend(0u32.to_le_bytes()); // no next IFD
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend(tiff);
    let mut out = jpeg[..2].to_vec(); // SOI
    out.extend([0xFF, 0xE1]);
    out.extend(((app1.len() + 2) as u16).to_be_bytes());
    out.extend(app1);
    out.extend(&jpeg[2..]);
    out
}

/// Every fixture file: relative path and bytes.
pub fn all() -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    // The labelled demo tree: val/ and test/, fracture/ and nofracture/.
    let mut seed = 1u64;
    for (split, per_class) in [("val", 3), ("test", 5)] {
        for (class, fracture) in [("fracture", true), ("nofracture", false)] {
            for i in 0..per_class {
                let img = radiograph(seed, fracture, 320, 256);
                let name = format!("demo/{split}/{class}/{class}_{split}_{i:02}.jpg");
                files.push((PathBuf::from(name), jpeg(&img, 85)));
                seed += 1;
            }
        }
    }
    // Odd but valid: formats, bit depths, colour models, orientation, names.
    let base = radiograph(101, true, 192, 160);
    let odd = |name: &str| PathBuf::from(format!("odd/fracture/{name}"));
    let g16 = ImageBuffer::<Luma<u16>, _>::from_fn(192, 160, |x, y| {
        Luma([base.get_pixel(x, y).0[0] as u16 * 257])
    });
    files.push((odd("gray16.png"), png(&DynamicImage::ImageLuma16(g16))));
    let rgba = ImageBuffer::from_fn(192, 160, |x, y| {
        let g = base.get_pixel(x, y).0[0];
        Rgba([g, g, g, if x < 8 { 0 } else { 255 }])
    });
    files.push((odd("rgba.png"), png(&DynamicImage::ImageRgba8(rgba))));
    files.push((
        odd("röntgen ünïcode name.bmp"),
        encode(
            &DynamicImage::ImageLuma8(base.clone()).to_rgb8().into(),
            image::ImageFormat::Bmp,
        ),
    ));
    files.push((
        odd("scan with spaces.tif"),
        encode(
            &DynamicImage::ImageLuma8(base.clone()),
            image::ImageFormat::Tiff,
        ),
    ));
    files.push((
        odd("lossless.webp"),
        encode(
            &DynamicImage::ImageLuma8(base.clone()).to_rgb8().into(),
            image::ImageFormat::WebP,
        ),
    ));
    // CMYK JPEG (Adobe): inverted gray in K only.
    let mut cmyk = Vec::new();
    for p in base.pixels() {
        cmyk.extend([0u8, 0, 0, 255 - p.0[0]]);
    }
    let mut cmyk_jpeg = Vec::new();
    jpeg_encoder::Encoder::new(&mut cmyk_jpeg, 90)
        .encode(&cmyk, 192, 160, jpeg_encoder::ColorType::Cmyk)
        .expect("in-memory CMYK JPEG");
    files.push((odd("cmyk.jpg"), cmyk_jpeg));
    // Stored sideways, upright once its EXIF orientation (6: rotate 90 clockwise) is applied.
    let sideways = image::imageops::rotate270(&radiograph(102, false, 192, 160));
    files.push((
        PathBuf::from("odd/nofracture/exif-rotated.jpg"),
        with_exif_orientation(&jpeg(&sideways, 85), 6),
    ));
    // Broken files.
    let good = jpeg(&radiograph(103, false, 192, 160), 85);
    files.push((
        PathBuf::from("bad/nofracture/truncated.jpg"),
        good[..good.len() / 2].to_vec(),
    ));
    files.push((PathBuf::from("bad/nofracture/empty.png"), Vec::new()));
    files.push((
        PathBuf::from("bad/nofracture/not-an-image.png"),
        b"This is a text file named like a PNG.\n".to_vec(),
    ));
    files.push((
        PathBuf::from("bad/fracture/huge-header.png"),
        png_header_only(100_000, 100_000),
    ));
    files
}

/// Writes every fixture under `dir`, atomically per file. Returns the paths written.
pub fn write_all(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (rel, bytes) in all() {
        let path = dir.join(&rel);
        std::fs::create_dir_all(path.parent().expect("relative path has a parent"))?;
        let tmp = path.with_extension("part");
        std::fs::write(&tmp, &bytes)?;
        std::fs::rename(&tmp, &path)?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::{decode, decode_bytes};

    #[test]
    fn generation_is_deterministic_and_classes_differ() {
        assert_eq!(radiograph(5, true, 64, 48), radiograph(5, true, 64, 48));
        assert_ne!(radiograph(5, true, 64, 48), radiograph(5, false, 64, 48));
    }

    #[test]
    fn odd_formats_decode_and_bad_ones_fail_with_a_reason() {
        for (rel, bytes) in all() {
            let r = decode_bytes(&bytes);
            let name = rel.to_string_lossy();
            if name.starts_with("bad/") {
                assert!(r.is_err(), "{name} should fail");
            } else {
                let img = r.unwrap_or_else(|e| panic!("{name}: {e}"));
                assert!(img.width() > 0, "{name}");
            }
        }
    }

    #[test]
    fn exif_orientation_is_applied() {
        let t = tempfile::tempdir().unwrap();
        write_all(t.path()).unwrap();
        let img = decode(&t.path().join("odd/nofracture/exif-rotated.jpg")).unwrap();
        assert_eq!((img.width(), img.height()), (192, 160));
    }

    #[test]
    fn huge_header_is_refused() {
        let e = decode_bytes(&png_header_only(100_000, 100_000)).unwrap_err();
        assert!(e.0.contains("refused") || e.0.contains("limit"), "{e}");
    }
}

#[cfg(test)]
mod cmyk_tests {
    use super::*;

    /// The CMYK JPEG holds the same drawing as `gray16.png` (inverted gray in K): decoded to RGB
    /// it must look like the original, as PIL sees it.
    #[test]
    fn cmyk_jpeg_decodes_to_its_gray_original() {
        let files = all();
        let get = |n: &str| {
            files
                .iter()
                .find(|(p, _)| p.ends_with(n))
                .map(|(_, b)| crate::imaging::decode_bytes(b).unwrap())
                .unwrap()
        };
        let (cmyk, gray) = (get("cmyk.jpg").to_luma8(), get("gray16.png").to_luma8());
        let mean_abs: f64 = cmyk
            .pixels()
            .zip(gray.pixels())
            .map(|(a, b)| (a.0[0] as f64 - b.0[0] as f64).abs())
            .sum::<f64>()
            / (cmyk.len() as f64);
        assert!(mean_abs < 4.0, "mean |cmyk - gray| = {mean_abs}");
    }
}
