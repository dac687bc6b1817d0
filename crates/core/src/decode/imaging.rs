//! Decoding radiographs safely: size, allocation and file limits, EXIF orientation, DICOM
//! and deep gray images windowed by one rule (`decode_full`).

use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageReader, Limits};

use crate::decode::window::DeepGray;

pub use super::limits::{DecodeError, MAX_ALLOC, MAX_FILE_BYTES, MAX_SIDE};

/// Decodes an image with size and allocation limits, and applies its EXIF orientation.
pub fn decode(path: &Path) -> Result<DynamicImage, DecodeError> {
    decode_bytes(&read_limited(path)?)
}

/// Reads a whole file, refusing empty files and files over `MAX_FILE_BYTES`.
pub fn read_limited(path: &Path) -> Result<Vec<u8>, DecodeError> {
    let meta = std::fs::metadata(path).map_err(|e| DecodeError(format!("cannot read: {e}")))?;
    if meta.len() == 0 {
        return Err(DecodeError("empty file (0 bytes)".into()));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(DecodeError(format!(
            "file too large ({} MiB > {} MiB)",
            meta.len() >> 20,
            MAX_FILE_BYTES >> 20
        )));
    }
    std::fs::read(path).map_err(|e| DecodeError(format!("cannot read: {e}")))
}

/// Decodes from memory with the same limits (used by tests and fuzzing). A panic inside a
/// decoder (hostile bytes) becomes this file's error, never the process's end.
pub fn decode_bytes(bytes: &[u8]) -> Result<DynamicImage, DecodeError> {
    decode_full(bytes, 0).map(|d| d.image)
}

/// A decoded image as shown and scored, and what it came from when it can be shown again
/// differently (deeper than 8 bits: windowing; DICOM: frames and metadata).
#[derive(Clone, Debug)]
pub struct Decoded {
    /// The image after the windowing rule of `crate::decode::window` (what the model sees).
    pub image: DynamicImage,
    /// Modality values, for another window (DICOM gray, 16-bit gray PNG/TIFF).
    pub deep: Option<DeepGray>,
    pub dicom: Option<DicomInfo>,
}

/// What the preview needs of a DICOM file besides its pixels.
#[derive(Clone, Debug)]
pub struct DicomInfo {
    pub meta: crate::decode::dicom::Meta,
    pub frames: u32,
    pub frame: u32,
}

/// Decodes frame `frame` (DICOM; other formats have one) with the limits and the panic guard.
pub fn decode_full(bytes: &[u8], frame: u32) -> Result<Decoded, DecodeError> {
    match std::panic::catch_unwind(|| decode_full_unguarded(bytes, frame)) {
        Ok(r) => r,
        Err(p) => {
            let why = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(DecodeError(format!(
                "the decoder failed on this file: {why}"
            )))
        }
    }
}

/// Reads and decodes one file at full depth (the dashboard's preview).
pub fn decode_path_full(path: &Path, frame: u32) -> Result<Decoded, DecodeError> {
    decode_full(&read_limited(path)?, frame)
}

fn decode_full_unguarded(bytes: &[u8], frame: u32) -> Result<Decoded, DecodeError> {
    if crate::decode::dicom::is_dicom(bytes) {
        let d = crate::decode::dicom::decode(bytes, frame)?;
        let info = Some(DicomInfo {
            meta: d.meta,
            frames: d.frames,
            frame: d.frame,
        });
        return Ok(match d.pixels {
            crate::decode::dicom::Pixels::Gray(g) => Decoded {
                image: DynamicImage::ImageLuma8(g.render(&g.default_view())),
                deep: Some(g),
                dicom: info,
            },
            crate::decode::dicom::Pixels::Color(rgb) => Decoded {
                image: DynamicImage::ImageRgb8(rgb),
                deep: None,
                dicom: info,
            },
        });
    }
    let img = decode_bytes_unguarded(bytes)?;
    let deep = match &img {
        DynamicImage::ImageLuma16(g) => Some(deep_gray(g.width(), g.height(), g.as_raw())),
        DynamicImage::ImageLumaA16(g) => {
            let v: Vec<u16> = g.as_raw().chunks_exact(2).map(|p| p[0]).collect();
            Some(deep_gray(g.width(), g.height(), &v))
        }
        _ => None,
    };
    Ok(match deep {
        Some(g) => Decoded {
            image: DynamicImage::ImageLuma8(g.render(&g.default_view())),
            deep: Some(g),
            dicom: None,
        },
        None => Decoded {
            image: img,
            deep: None,
            dicom: None,
        },
    })
}

/// 16-bit gray from a PNG or TIFF: values as stored, no VOI of its own (so the robust window).
fn deep_gray(width: u32, height: u32, v: &[u16]) -> DeepGray {
    DeepGray {
        width,
        height,
        values: v.iter().map(|&x| x as f32).collect(),
        vois: Vec::new(),
        monochrome1: false,
        eight_bit: false,
    }
}

fn decode_bytes_unguarded(bytes: &[u8]) -> Result<DynamicImage, DecodeError> {
    if bytes.starts_with(&[0xFF, 0xD8]) && !jpeg_is_complete(bytes) {
        // Decoders fill a cut-off JPEG with grey and call it fine; a model must not score that.
        return Err(DecodeError(
            "truncated JPEG (no end-of-image marker after the image data)".into(),
        ));
    }
    let reader = ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| DecodeError(format!("cannot read: {e}")))?;
    if reader.format().is_none() && crate::decode::dicom::looks_like_headerless_dicom(bytes) {
        return Err(DecodeError(
            "looks like a DICOM data set without its Part 10 header (no DICM at byte 128): \
             not read; rewrite it with a header (e.g. dcmconv +F)"
                .into(),
        ));
    }
    decode_reader(reader)
}

/// A JPEG's last scan (SOS, FF DA) must be followed by an end-of-image marker (FF D9). Inside
/// entropy-coded data 0xFF is always followed by 0x00 or a restart marker, so FF D9 there is EOI.
pub(super) fn jpeg_is_complete(b: &[u8]) -> bool {
    let Some(sos) = b.windows(2).rposition(|w| w == [0xFF, 0xDA]) else {
        return false;
    };
    b[sos..].windows(2).any(|w| w == [0xFF, 0xD9])
}

fn decode_reader<R: std::io::BufRead + std::io::Seek>(
    mut reader: ImageReader<R>,
) -> Result<DynamicImage, DecodeError> {
    if reader.format().is_none() {
        return Err(DecodeError("not an image (unrecognised content)".into()));
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(describe)?;
    let orientation = decoder.orientation().ok();
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 {
        return Err(DecodeError(format!("image has no pixels ({w}x{h})")));
    }
    let mut img = DynamicImage::from_decoder(decoder).map_err(describe)?;
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    Ok(img)
}

fn describe(e: image::ImageError) -> DecodeError {
    use image::ImageError::*;
    DecodeError(match e {
        Limits(l) => format!(
            "refused: {l} (limit {MAX_SIDE} px a side, {} MiB)",
            MAX_ALLOC >> 20
        ),
        Unsupported(u) => format!("unsupported image: {u}"),
        Decoding(d) => format!("corrupt or truncated image: {d}"),
        IoError(io) => format!("read error: {io}"),
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::model_input::Preprocess;
    use image::{ImageBuffer, Luma, Rgb};

    fn png(img: &DynamicImage) -> Vec<u8> {
        let mut v = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut v), image::ImageFormat::Png)
            .unwrap();
        v
    }

    #[test]
    fn normalises_with_mean_and_std_in_chw_order() {
        let p = Preprocess::imagenet(2);
        let img = DynamicImage::ImageRgb8(ImageBuffer::from_fn(2, 2, |x, _| {
            if x == 0 {
                Rgb([255, 0, 0])
            } else {
                Rgb([0, 0, 255])
            }
        }));
        let v = p.apply(&img);
        assert_eq!(v.len(), 12);
        let r_hi = (1.0 - 0.485) / 0.229;
        let r_lo = (0.0 - 0.485) / 0.229;
        assert!((v[0] - r_hi).abs() < 1e-5 && (v[1] - r_lo).abs() < 1e-5);
        let b_hi = (1.0 - 0.406) / 0.225;
        assert!((v[8 + 1] - b_hi).abs() < 1e-5);
    }

    #[test]
    fn sixteen_bit_gray_is_windowed_by_the_rule() {
        // 12-bit data in a 16-bit PNG: a fixed 16-to-8-bit rule would show it nearly black;
        // the robust window spreads its range over the 8 bits.
        let g16 = DynamicImage::ImageLuma16(ImageBuffer::from_fn(64, 64, |x, y| {
            Luma([((x * 64 + y) % 4096) as u16])
        }));
        let d = decode_full(&png(&g16), 0).unwrap();
        let deep = d.deep.as_ref().expect("kept at full depth");
        assert_eq!(
            d.image,
            DynamicImage::ImageLuma8(deep.render(&deep.default_view()))
        );
        let g = d.image.to_luma8();
        let (lo, hi) = g
            .pixels()
            .fold((255u8, 0u8), |(a, b), p| (a.min(p[0]), b.max(p[0])));
        assert_eq!((lo, hi), (0, 255));
        // An 8-bit image is used as stored.
        let g8 = DynamicImage::ImageLuma8(ImageBuffer::from_fn(8, 8, |x, y| {
            Luma([(x * 30 + y) as u8])
        }));
        let d8 = decode_full(&png(&g8), 0).unwrap();
        assert!(d8.deep.is_none());
        assert_eq!(d8.image.to_luma8(), g8.to_luma8());
    }

    #[test]
    fn bad_bytes_are_errors_not_panics() {
        assert!(decode_bytes(b"").unwrap_err().0.contains("not an image"));
        assert!(
            decode_bytes(b"hello, this is text")
                .unwrap_err()
                .0
                .contains("not an image")
        );
        let mut good = png(&DynamicImage::ImageLuma8(ImageBuffer::from_pixel(
            64,
            64,
            Luma([9]),
        )));
        good.truncate(good.len() / 2);
        assert!(decode_bytes(&good).is_err());
    }
}
