//! DICOM files: recognised by content (the `DICM` magic after the 128-byte preamble), parsed
//! and decoded with dicom-rs, turned into modality values (`pixels`) that the windowing rule of
//! `crate::decode::window` shows and scores, with a metadata summary that never carries
//! patient-identifying attributes unless asked to (`meta`).

mod meta;
mod pixels;

pub use meta::{Meta, PHI_TAGS, TRANSFER_SYNTAXES, patient_identity, phi, transfer_syntax_name};

use dicom_object::file::ReadPreamble;
use dicom_object::{DefaultDicomObject, OpenFileOptions};
use dicom_pixeldata::PixelDecoder;
use image::RgbImage;

use crate::decode::limits::{DecodeError, MAX_SIDE};
use crate::decode::window::DeepGray;

/// The transfer syntaxes whose pixel data is stored as is.
const NATIVE: &[&str] = &[
    "1.2.840.10008.1.2",
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2.1.99",
    "1.2.840.10008.1.2.2",
];

/// Whether `bytes` start like a DICOM Part 10 file.
pub fn is_dicom(bytes: &[u8]) -> bool {
    bytes.len() >= 132 && &bytes[128..132] == b"DICM"
}

/// Whether `bytes` look like a DICOM data set written without its Part 10 header (no preamble,
/// no `DICM`): little-endian group 0x0002 or 0x0008 first, as old archives have them.
pub fn looks_like_headerless_dicom(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && matches!(bytes[..2], [0x02, 0x00] | [0x08, 0x00]) && bytes[3] == 0x00
}

/// A file named DICOMDIR: the index of a DICOM medium, not an image. The scan skips it; the
/// images it lists are found by walking the folder.
pub fn is_dicomdir_name(name: &std::ffi::OsStr) -> bool {
    name.to_str()
        .is_some_and(|n| n.eq_ignore_ascii_case("DICOMDIR"))
}

/// The pixels of one frame.
#[derive(Clone, Debug)]
pub enum Pixels {
    Gray(DeepGray),
    Color(RgbImage),
}

/// One decoded frame of a DICOM file and what the file says about itself.
#[derive(Clone, Debug)]
pub struct DicomImage {
    pub pixels: Pixels,
    /// Frames in the file; `frame` is the one decoded (0 = the first, the one scored).
    pub frames: u32,
    pub frame: u32,
    pub meta: Meta,
}

/// Parses a DICOM file held in memory (with its preamble) and decodes frame `frame`.
pub fn decode(bytes: &[u8], frame: u32) -> Result<DicomImage, DecodeError> {
    let obj = open(bytes)?;
    let meta = Meta::read(&obj);
    if obj
        .element_opt(dicom_dictionary_std::tags::PIXEL_DATA)
        .ok()
        .flatten()
        .is_none()
    {
        let what = meta
            .sop_class
            .as_deref()
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
        return Err(DecodeError(format!(
            "DICOM file without pixel data{what}: nothing to show or score"
        )));
    }
    if !meta.transfer_syntax_supported {
        return Err(DecodeError(format!(
            "DICOM transfer syntax not supported: {} ({})",
            meta.transfer_syntax_label(),
            meta.transfer_syntax
        )));
    }
    let (rows, cols) = (meta.rows.unwrap_or(0), meta.columns.unwrap_or(0));
    if rows == 0 || cols == 0 {
        return Err(DecodeError(format!(
            "DICOM image has no pixels ({cols}x{rows})"
        )));
    }
    if rows as u32 > MAX_SIDE || cols as u32 > MAX_SIDE {
        return Err(DecodeError(format!(
            "refused: DICOM image of {cols}x{rows} (limit {MAX_SIDE} px a side)"
        )));
    }
    let frames = meta.frames.max(1);
    if frame >= frames {
        return Err(DecodeError(format!(
            "frame {} asked of a file with {frames}",
            frame + 1
        )));
    }
    if meta.transfer_syntax == "1.2.840.10008.1.2.4.51"
        && meta.bits_stored.unwrap_or(8) > 8
        && meta.samples_per_pixel.unwrap_or(1) == 1
    {
        // Process 4 (12-bit), which the generic JPEG decoder does not read.
        let gray = pixels::jpeg12(&obj, &meta, frame)?;
        return Ok(DicomImage {
            pixels: Pixels::Gray(gray),
            frames,
            frame,
            meta,
        });
    }
    let ybr = meta.photometric.as_deref();
    if matches!(ybr, Some("YBR_FULL" | "YBR_FULL_422"))
        && meta.bits_allocated == Some(8)
        && NATIVE.contains(&meta.transfer_syntax.as_str())
    {
        // Uncompressed YBR: converted here (dicom-pixeldata sizes 4:2:2 as three bytes a
        // pixel, and its YBR_FULL conversion differs from the standard's full-range one).
        let planar =
            meta::int::<u16>(&obj, dicom_dictionary_std::tags::PLANAR_CONFIGURATION) == Some(1);
        let subsampled = ybr == Some("YBR_FULL_422");
        return Ok(DicomImage {
            pixels: Pixels::Color(pixels::ybr_native(
                &obj,
                (cols, rows),
                frame,
                subsampled,
                planar,
            )?),
            frames,
            frame,
            meta,
        });
    }
    let decoded = obj.decode_pixel_data_frame(frame).map_err(|e| {
        DecodeError(format!(
            "cannot decode DICOM pixel data ({}): {}",
            meta.transfer_syntax_label(),
            chain(&e)
        ))
    })?;
    let pixels = pixels::to_pixels(&obj, &decoded, &meta)?;
    Ok(DicomImage {
        pixels,
        frames,
        frame,
        meta,
    })
}

/// Reads only the header (the metadata panel, `inspect`): stops before the pixel data.
pub fn read_meta(bytes: &[u8]) -> Result<Meta, DecodeError> {
    let obj = OpenFileOptions::new()
        .read_preamble(ReadPreamble::Never)
        .read_until(dicom_dictionary_std::tags::PIXEL_DATA)
        .from_reader(bytes.get(128..).unwrap_or_default())
        .map_err(|e| DecodeError(format!("not a readable DICOM file: {}", chain(&e))))?;
    Ok(Meta::read(&obj))
}

fn open(bytes: &[u8]) -> Result<DefaultDicomObject, DecodeError> {
    if !is_dicom(bytes) {
        return Err(DecodeError(
            "not a DICOM file (no DICM magic at byte 128)".into(),
        ));
    }
    OpenFileOptions::new()
        .read_preamble(ReadPreamble::Never)
        .from_reader(&bytes[128..])
        .map_err(|e| DecodeError(format!("not a readable DICOM file: {}", chain(&e))))
}

/// An error with its causes, outermost first.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests;
