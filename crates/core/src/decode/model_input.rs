//! Turning a file into the model's input fast, the one way training and inference both use:
//! JPEGs decoded at reduced size in the DCT domain when they are much larger than the input
//! (libjpeg-turbo's scaled IDCT, as PIL's `draft`), the bilinear resize with SIMD
//! (fast_image_resize, Pillow-SIMD's convolution), and normalisation into channel-first floats
//! in one pass. Anything else (PNG, TIFF, DICOM, 12-bit or CMYK JPEG) is decoded in full by
//! `imaging::decode_full`, then resized and normalised the same way.

use fast_image_resize as fr;
use image::DynamicImage;

use serde::{Deserialize, Serialize};
use std::path::Path;

use super::imaging::{decode_full, jpeg_is_complete, read_limited};
use super::limits::{DecodeError, MAX_SIDE};

/// Names the input pipeline in feature-cache keys (change it when the pixels it gives change).
pub const VERSION: &str = "input 2: DCT-scaled JPEG (margin 2), fast_image_resize";

/// A JPEG is decoded at 1/2, 1/4 or 1/8 scale only while both sides stay at least this many
/// times the model's input side: the bilinear resize after it still averages over two or more
/// source pixels, so the DCT scaling only removes resolution the resize would discard.
pub const DCT_MARGIN: u32 = 2;

/// 8-bit pixels ready for the resize: gray (1 byte) or RGB (3 bytes).
pub struct Pixels {
    pub width: u32,
    pub height: u32,
    pub channels: usize,
    pub data: Vec<u8>,
}

impl Pixels {
    /// From any decoded image: gray stays gray (it is repeated into RGB at the end, which is
    /// what converting it to RGB first would give); everything else becomes 8-bit RGB.
    pub fn from_image(img: &DynamicImage) -> Pixels {
        let (width, height) = (img.width(), img.height());
        match img {
            DynamicImage::ImageLuma8(g) => Pixels {
                width,
                height,
                channels: 1,
                data: g.as_raw().clone(),
            },
            _ => Pixels {
                width,
                height,
                channels: 3,
                data: img.to_rgb8().into_raw(),
            },
        }
    }
}

/// The DCT scale `1/d` (d in 1, 2, 4, 8) for a `w` x `h` JPEG and a model input of `size`.
pub fn dct_denominator(w: u32, h: u32, size: u32) -> u32 {
    let need = size.saturating_mul(DCT_MARGIN).max(1);
    let mut d = 1;
    while d < 8 && w / (d * 2) >= need && h / (d * 2) >= need {
        d *= 2;
    }
    d
}

/// Decodes a baseline or progressive 8-bit gray or YCbCr JPEG at the scale `dct_denominator`
/// picks, with its EXIF orientation applied. `None` when this JPEG is not one of those (the
/// caller decodes it in full instead); an error for a broken one.
pub fn scaled_jpeg(bytes: &[u8], size: u32) -> Option<Result<Pixels, DecodeError>> {
    use libjpeg_turbo_rs as lj;
    let info = lj::probe(bytes).ok()?;
    if info.precision != 8 || info.lossless || !matches!(info.components, 1 | 3) {
        return None;
    }
    if info.width == 0 || info.height == 0 {
        return Some(Err(DecodeError(format!(
            "image has no pixels ({}x{})",
            info.width, info.height
        ))));
    }
    if info.width > MAX_SIDE as usize || info.height > MAX_SIDE as usize {
        return None; // the full decoder refuses it with the limit in its message
    }
    let d = dct_denominator(info.width as u32, info.height as u32, size);
    let gray = info.components == 1;
    let run = || -> Result<lj::Image, lj::JpegError> {
        let mut dec = lj::StreamingDecoder::new(bytes)?;
        dec.set_output_format(if gray {
            lj::PixelFormat::Grayscale
        } else {
            lj::PixelFormat::Rgb
        });
        if d > 1 {
            dec.set_scale(lj::ScalingFactor::try_new(1, d)?);
        }
        dec.decode()
    };
    let img = match std::panic::catch_unwind(run) {
        Ok(Ok(img)) => img,
        Ok(Err(_)) | Err(_) => return None, // the full decoder says what is wrong
    };
    let channels = if gray { 1 } else { 3 };
    if img.data.len() != img.width * img.height * channels {
        return None;
    }
    let px = Pixels {
        width: img.width as u32,
        height: img.height as u32,
        channels,
        data: img.data,
    };
    Some(Ok(match info.exif_orientation {
        Some(o) if o > 1 => orient(px, o),
        _ => px,
    }))
}

/// Applies an EXIF orientation (2-8) through the image crate's implementation.
fn orient(px: Pixels, o: u8) -> Pixels {
    let Some(orientation) = image::metadata::Orientation::from_exif(o) else {
        return px;
    };
    let mut img = if px.channels == 1 {
        image::GrayImage::from_raw(px.width, px.height, px.data).map(DynamicImage::ImageLuma8)
    } else {
        image::RgbImage::from_raw(px.width, px.height, px.data).map(DynamicImage::ImageRgb8)
    }
    .expect("sizes checked");
    img.apply_orientation(orientation);
    Pixels::from_image(&img)
}

/// How pixels are resized to the model's input.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ResizeFilter {
    Nearest,
    /// Bilinear with antialiasing on downscale (like PIL's BILINEAR).
    Bilinear,
    Bicubic,
    Lanczos3,
}

/// Model input: RGB, `size` x `size`, scaled to [0, 1], then `(x - mean) / std` per channel.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Preprocess {
    pub size: u32,
    pub filter: ResizeFilter,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Preprocess {
    /// ImageNet statistics at 224 x 224, bilinear: what EfficientNet-Lite0 was trained with.
    pub fn imagenet(size: u32) -> Self {
        Preprocess {
            size,
            filter: ResizeFilter::Bilinear,
            mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225],
        }
    }

    /// Number of f32 values one image becomes.
    pub fn len(&self) -> usize {
        3 * (self.size as usize) * (self.size as usize)
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Channel-first (CHW) input for one image. Gray, 16-bit, palette and alpha images are
    /// converted to 8-bit RGB first (alpha dropped), as the backbone expects.
    pub fn apply(&self, img: &DynamicImage) -> Vec<f32> {
        self.apply_pixels(&Pixels::from_image(img))
    }

    /// Decode and preprocess one file.
    pub fn load(&self, path: &Path) -> Result<Vec<f32>, DecodeError> {
        self.load_bytes(&read_limited(path)?)
    }

    /// Decoded pixels of one file's bytes, before resizing (large JPEGs already reduced in the
    /// DCT domain while staying at least twice `size`): fine-tuning augments from these.
    pub fn decode_pixels(&self, bytes: &[u8]) -> Result<Pixels, DecodeError> {
        if bytes.starts_with(&[0xFF, 0xD8])
            && jpeg_is_complete(bytes)
            && let Some(px) = scaled_jpeg(bytes, self.size)
        {
            return px;
        }
        decode_full(bytes, 0).map(|d| Pixels::from_image(&d.image))
    }

    /// Decode and preprocess one file's bytes: a large 8-bit JPEG at reduced size in the DCT
    /// domain (`model_input`), anything else decoded in full by the rule of `decode_full`.
    pub fn load_bytes(&self, bytes: &[u8]) -> Result<Vec<f32>, DecodeError> {
        if bytes.starts_with(&[0xFF, 0xD8])
            && jpeg_is_complete(bytes)
            && let Some(px) = scaled_jpeg(bytes, self.size)
        {
            return px.map(|px| self.apply_pixels(&px));
        }
        decode_full(bytes, 0).map(|d| self.apply(&d.image))
    }
}

impl Preprocess {
    /// Resizes and normalises decoded pixels into the model's `[3, size, size]` input.
    pub fn apply_pixels(&self, px: &Pixels) -> Vec<f32> {
        let s = self.size;
        let resized;
        let data: &[u8] = if (px.width, px.height) == (s, s) {
            &px.data
        } else {
            resized = resize(px, s, self.filter);
            &resized
        };
        let mut out = vec![0f32; self.len()];
        let scale: [f32; 3] = std::array::from_fn(|c| 1.0 / (255.0 * self.std[c]));
        let shift: [f32; 3] = std::array::from_fn(|c| self.mean[c] / self.std[c]);
        osteoai_kernels::layout::to_chw(data, px.channels, scale, shift, &mut out);
        out
    }
}

/// Resizes decoded pixels to `s` x `s` (the aspect is not kept, as in the model input).
pub fn resize(px: &Pixels, s: u32, filter: ResizeFilter) -> Vec<u8> {
    use ResizeFilter as F;
    let kind = if px.channels == 1 {
        fr::PixelType::U8
    } else {
        fr::PixelType::U8x3
    };
    let src = fr::images::ImageRef::new(px.width, px.height, &px.data, kind)
        .expect("buffer size matches");
    let mut dst = fr::images::Image::new(s, s, kind);
    let alg = match filter {
        F::Nearest => fr::ResizeAlg::Nearest,
        F::Bilinear => fr::ResizeAlg::Convolution(fr::FilterType::Bilinear),
        F::Bicubic => fr::ResizeAlg::Convolution(fr::FilterType::CatmullRom),
        F::Lanczos3 => fr::ResizeAlg::Convolution(fr::FilterType::Lanczos3),
    };
    fr::Resizer::new()
        .resize(&src, &mut dst, &fr::ResizeOptions::new().resize_alg(alg))
        .expect("same pixel type");
    dst.into_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma, Rgb, RgbImage};

    fn jpeg(img: &DynamicImage) -> Vec<u8> {
        let mut v = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut v), image::ImageFormat::Jpeg)
            .unwrap();
        v
    }

    #[test]
    fn dct_scale_keeps_twice_the_input() {
        assert_eq!(dct_denominator(300, 300, 224), 1);
        assert_eq!(dct_denominator(896, 900, 224), 2);
        assert_eq!(dct_denominator(895, 2000, 224), 1);
        assert_eq!(dct_denominator(2000, 2500, 224), 4);
        assert_eq!(dct_denominator(8000, 8000, 224), 8);
    }

    #[test]
    fn gray_as_gray_equals_gray_as_rgb() {
        let g = GrayImage::from_fn(301, 257, |x, y| Luma([((x * 7 + y * 3) % 251) as u8]));
        let p = Preprocess::imagenet(224);
        let a = p.apply_pixels(&Pixels::from_image(&DynamicImage::ImageLuma8(g.clone())));
        let b = p.apply_pixels(&Pixels::from_image(&DynamicImage::ImageRgb8(
            DynamicImage::ImageLuma8(g).to_rgb8(),
        )));
        assert_eq!(a, b);
    }

    #[test]
    fn scaled_jpeg_is_close_to_the_full_decode() {
        // A smooth 1000 x 1100 image: decoded at 1/2 (500 x 550), then resized to 224.
        let rgb = RgbImage::from_fn(1000, 1100, |x, y| {
            let v = (((x as f32 / 40.0).sin() + (y as f32 / 55.0).cos()) * 60.0 + 128.0) as u8;
            Rgb([v, v / 2 + 20, 255 - v])
        });
        let bytes = jpeg(&DynamicImage::ImageRgb8(rgb));
        let p = Preprocess::imagenet(224);
        let scaled = scaled_jpeg(&bytes, 224).unwrap().unwrap();
        assert_eq!((scaled.width, scaled.height), (500, 550));
        let full = Pixels::from_image(&crate::decode::imaging::decode_bytes(&bytes).unwrap());
        let (a, b) = (p.apply_pixels(&scaled), p.apply_pixels(&full));
        let max = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        // One 8-bit level is ~0.017 after normalisation: a few levels at most.
        assert!(max < 0.1, "max {max}");
        // Small JPEGs are decoded at full size.
        let small = jpeg(&DynamicImage::ImageLuma8(GrayImage::from_pixel(
            300,
            200,
            Luma([90]),
        )));
        let px = scaled_jpeg(&small, 224).unwrap().unwrap();
        assert_eq!((px.width, px.height, px.channels), (300, 200, 1));
    }

    #[test]
    fn orientation_is_applied() {
        let rgb = RgbImage::from_fn(40, 20, |x, _| Rgb([(x * 6) as u8, 0, 0]));
        let px = orient(Pixels::from_image(&DynamicImage::ImageRgb8(rgb)), 6);
        assert_eq!((px.width, px.height), (20, 40));
    }
}
