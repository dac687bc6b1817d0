//! From a decoded DICOM frame to modality values: stored bits masked and sign-extended, pixel
//! padding set aside, then the Modality LUT Sequence or rescale slope/intercept; the file's VOI
//! transforms are collected for the windowing rule (`crate::decode::window`).

use dicom_dictionary_std::tags;
use dicom_object::DefaultDicomObject;
use dicom_object::mem::InMemDicomObject;
use dicom_pixeldata::{DecodedPixelData, PhotometricInterpretation, PixelRepresentation};
use image::RgbImage;

use super::meta::{Meta, int, text};
use super::{Pixels, chain};
use crate::decode::limits::DecodeError;
use crate::decode::window::{DeepGray, Voi, VoiFunction, VoiLut, Window};

pub(super) fn to_pixels(
    obj: &DefaultDicomObject,
    d: &DecodedPixelData<'_>,
    meta: &Meta,
) -> Result<Pixels, DecodeError> {
    let pi = d.photometric_interpretation();
    match (d.samples_per_pixel(), pi) {
        (1, PhotometricInterpretation::Monochrome1 | PhotometricInterpretation::Monochrome2) => {
            gray(obj, d, *pi == PhotometricInterpretation::Monochrome1).map(Pixels::Gray)
        }
        (3, _) => d
            .to_dynamic_image(0)
            .map(|img| Pixels::Color(img.to_rgb8()))
            .map_err(|e| DecodeError(format!("cannot convert {pi} pixels: {}", chain(&e)))),
        (n, pi) => Err(DecodeError(format!(
            "DICOM photometric interpretation {pi} with {n} sample(s) per pixel is not supported \
             ({})",
            meta.photometric.as_deref().unwrap_or("?")
        ))),
    }
}

/// Uncompressed YBR_FULL (Y Cb Cr a pixel, or three planes) and YBR_FULL_422 (Y1 Y2 Cb Cr for
/// each pair of pixels), full-range YCbCr to RGB (PS3.3 C.7.6.3.1.2).
pub(super) fn ybr_native(
    obj: &DefaultDicomObject,
    (cols, rows): (u16, u16),
    frame: u32,
    subsampled: bool,
    planar: bool,
) -> Result<RgbImage, DecodeError> {
    let (w, h) = (cols as usize, rows as usize);
    let size = w * h * if subsampled { 2 } else { 3 };
    let bytes = obj
        .element(tags::PIXEL_DATA)
        .ok()
        .and_then(|e| e.to_bytes().ok())
        .ok_or_else(|| DecodeError("cannot read the YBR pixel data".into()))?;
    let data = bytes
        .get(frame as usize * size..(frame as usize + 1) * size)
        .filter(|_| !subsampled || w % 2 == 0)
        .ok_or_else(|| {
            DecodeError(format!(
                "YBR pixel data too short or odd width ({} bytes for {w}x{h})",
                bytes.len()
            ))
        })?;
    let rgb = |y: u8, cb: u8, cr: u8| {
        let (y, cb, cr) = (y as f32, cb as f32 - 128.0, cr as f32 - 128.0);
        let c = |v: f32| v.round().clamp(0.0, 255.0) as u8;
        [
            c(y + 1.402 * cr),
            c(y - 0.344_136 * cb - 0.714_136 * cr),
            c(y + 1.772 * cb),
        ]
    };
    let mut px = Vec::with_capacity(w * h * 3);
    if subsampled {
        for q in data.chunks_exact(4) {
            px.extend(rgb(q[0], q[2], q[3]));
            px.extend(rgb(q[1], q[2], q[3]));
        }
    } else if planar {
        let n = w * h;
        for i in 0..n {
            px.extend(rgb(data[i], data[n + i], data[2 * n + i]));
        }
    } else {
        for p in data.chunks_exact(3) {
            px.extend(rgb(p[0], p[1], p[2]));
        }
    }
    RgbImage::from_raw(w as u32, h as u32, px)
        .ok_or_else(|| DecodeError("YBR pixel data of the wrong size".into()))
}

fn gray(
    obj: &DefaultDicomObject,
    d: &DecodedPixelData<'_>,
    monochrome1: bool,
) -> Result<DeepGray, DecodeError> {
    let (w, h) = (d.columns(), d.rows());
    let n = w as usize * h as usize;
    let signed = d.pixel_representation() == PixelRepresentation::Signed;
    let stored = stored_values(
        d.frame_data(0)
            .map_err(|e| DecodeError(format!("no pixels in the first frame: {}", chain(&e))))?,
        n,
        d.bits_allocated(),
        d.bits_stored(),
        d.high_bit(),
        signed,
    )?;
    let eight_bit = d.bits_stored() <= 8 && !signed;
    Ok(gray_from_stored(
        obj,
        Some(d),
        stored,
        (w, h),
        eight_bit,
        monochrome1,
    ))
}

/// 12-bit JPEG Extended (process 4) frame `frame`, decoded by libjpeg-turbo-rs.
pub(super) fn jpeg12(
    obj: &DefaultDicomObject,
    meta: &Meta,
    frame: u32,
) -> Result<DeepGray, DecodeError> {
    let frags = obj
        .element(tags::PIXEL_DATA)
        .ok()
        .and_then(|e| e.fragments())
        .ok_or_else(|| DecodeError("12-bit JPEG: the pixel data is not encapsulated".into()))?;
    let frames = meta.frames.max(1) as usize;
    let jpeg: Vec<u8> = if frames == 1 {
        frags.iter().flatten().copied().collect()
    } else if frags.len() == frames {
        frags[frame as usize].clone()
    } else {
        return Err(DecodeError(format!(
            "12-bit JPEG: {} fragments for {frames} frames",
            frags.len()
        )));
    };
    let img = libjpeg_turbo_rs::decompress_12bit(&jpeg)
        .map_err(|e| DecodeError(format!("cannot decode the 12-bit JPEG: {e}")))?;
    let (w, h) = (
        meta.columns.unwrap_or(0) as u32,
        meta.rows.unwrap_or(0) as u32,
    );
    if img.num_components != 1 || (img.width as u32, img.height as u32) != (w, h) {
        return Err(DecodeError(format!(
            "12-bit JPEG of {}x{}x{} in a {w}x{h} gray image",
            img.width, img.height, img.num_components
        )));
    }
    let data: Vec<u8> = img
        .data
        .iter()
        .flat_map(|&v| (v as u16).to_le_bytes())
        .collect();
    let bits = meta.bits_stored.unwrap_or(12).clamp(1, 16);
    let signed = meta.pixel_representation == Some(1);
    let stored = stored_values(&data, img.data.len(), 16, bits, bits - 1, signed)?;
    let monochrome1 = meta.photometric.as_deref() == Some("MONOCHROME1");
    Ok(gray_from_stored(
        obj,
        None,
        stored,
        (w, h),
        false,
        monochrome1,
    ))
}

/// Stored values to a `DeepGray`: padding, the modality transform, the file's VOIs.
fn gray_from_stored(
    obj: &DefaultDicomObject,
    d: Option<&DecodedPixelData<'_>>,
    stored: Vec<i64>,
    (w, h): (u32, u32),
    eight_bit: bool,
    monochrome1: bool,
) -> DeepGray {
    let o: &InMemDicomObject = obj;
    let padding = padding_range(o);
    let modality = ModalityTransform::read(o, d);
    let identity = matches!(modality, ModalityTransform::Rescale(1.0, 0.0));
    let values: Vec<f32> = stored
        .iter()
        .map(|&s| {
            if padding.is_some_and(|(a, b)| s >= a && s <= b) {
                f32::NAN
            } else {
                modality.apply(s) as f32
            }
        })
        .collect();
    DeepGray {
        width: w,
        height: h,
        values,
        vois: vois(o, d),
        monochrome1,
        eight_bit: identity && eight_bit,
    }
}

/// The stored values of one frame: `bits_stored` bits at `high_bit`, sign-extended when signed.
pub(super) fn stored_values(
    data: &[u8],
    n: usize,
    bits_allocated: u16,
    bits_stored: u16,
    high_bit: u16,
    signed: bool,
) -> Result<Vec<i64>, DecodeError> {
    let need = match bits_allocated {
        1 => n.div_ceil(8),
        8 | 16 | 32 => n * (bits_allocated as usize / 8),
        b => {
            return Err(DecodeError(format!(
                "DICOM bits allocated {b} is not supported (1, 8, 16 or 32)"
            )));
        }
    };
    if data.len() < need {
        return Err(DecodeError(format!(
            "DICOM pixel data too short: {} bytes for {n} pixels of {bits_allocated} bits",
            data.len()
        )));
    }
    if bits_allocated == 1 {
        return Ok((0..n)
            .map(|i| ((data[i / 8] >> (i % 8)) & 1) as i64)
            .collect());
    }
    let bits = bits_stored.clamp(1, bits_allocated) as u32;
    let shift = (high_bit as u32 + 1).saturating_sub(bits);
    let mask: u64 = if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let raw = |i: usize| -> u64 {
        match bits_allocated {
            8 => data[i] as u64,
            16 => u16::from_le_bytes([data[2 * i], data[2 * i + 1]]) as u64,
            _ => u32::from_le_bytes([
                data[4 * i],
                data[4 * i + 1],
                data[4 * i + 2],
                data[4 * i + 3],
            ]) as u64,
        }
    };
    Ok((0..n)
        .map(|i| {
            let v = (raw(i) >> shift) & mask;
            if signed && bits < 64 && v >> (bits - 1) & 1 == 1 {
                v as i64 - (1i64 << bits)
            } else {
                v as i64
            }
        })
        .collect())
}

/// Pixel Padding Value, with Pixel Padding Range Limit when given, in stored values.
fn padding_range(o: &InMemDicomObject) -> Option<(i64, i64)> {
    let a: i64 = int(o, tags::PIXEL_PADDING_VALUE)?;
    let b: i64 = int(o, tags::PIXEL_PADDING_RANGE_LIMIT).unwrap_or(a);
    Some((a.min(b), a.max(b)))
}

/// Stored values to modality values.
#[derive(Debug, PartialEq)]
enum ModalityTransform {
    /// slope, intercept
    Rescale(f64, f64),
    /// first value mapped, table
    Lut(i64, Vec<f64>),
}

impl ModalityTransform {
    fn read(o: &InMemDicomObject, d: Option<&DecodedPixelData<'_>>) -> ModalityTransform {
        if let Some(item) = o
            .element_opt(tags::MODALITY_LUT_SEQUENCE)
            .ok()
            .flatten()
            .and_then(|e| e.items())
            .and_then(|items| items.first())
            && let Some((first, _, data)) = lut_item(item)
        {
            return ModalityTransform::Lut(first, data);
        }
        let float = |tag| {
            o.element_opt(tag)
                .ok()
                .flatten()
                .and_then(|e| e.to_float64().ok())
        };
        let r = match d {
            Some(d) => d
                .rescale()
                .ok()
                .and_then(|r| r.first().map(|r| (r.slope, r.intercept))),
            None => Some((
                float(tags::RESCALE_SLOPE).unwrap_or(1.0),
                float(tags::RESCALE_INTERCEPT).unwrap_or(0.0),
            )),
        };
        match r {
            Some((m, b)) if m.is_finite() && b.is_finite() && m != 0.0 => {
                ModalityTransform::Rescale(m, b)
            }
            _ => ModalityTransform::Rescale(1.0, 0.0),
        }
    }

    fn apply(&self, s: i64) -> f64 {
        match self {
            ModalityTransform::Rescale(m, b) => s as f64 * m + b,
            ModalityTransform::Lut(first, data) => {
                let i = (s - first).clamp(0, data.len() as i64 - 1) as usize;
                data[i]
            }
        }
    }
}

/// A LUT item: first value mapped, bits per entry, entries (LUT Descriptor + LUT Data).
fn lut_item(item: &InMemDicomObject) -> Option<(i64, u32, Vec<f64>)> {
    let desc = item
        .element_opt(tags::LUT_DESCRIPTOR)
        .ok()??
        .to_multi_int::<i64>()
        .ok()?;
    let [n, first, bits] = desc[..] else {
        return None;
    };
    let n = if n <= 0 { 65536 } else { n as usize };
    let el = item.element_opt(tags::LUT_DATA).ok()??;
    let data: Vec<f64> = match el.uint16_slice() {
        Ok(s) => s.iter().map(|&v| v as f64).collect(),
        Err(_) => match el.to_multi_int::<i64>() {
            Ok(v) => v.into_iter().map(|v| v as f64).collect(),
            Err(_) => {
                let b = el.to_bytes().ok()?;
                b.chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]) as f64)
                    .collect()
            }
        },
    };
    if data.is_empty() {
        return None;
    }
    let data = if data.len() > n {
        data[..n].to_vec()
    } else {
        data
    };
    Some((first, bits.clamp(1, 16) as u32, data))
}

/// The file's VOI transforms: VOI LUT Sequence items, then each window centre/width.
fn vois(o: &InMemDicomObject, d: Option<&DecodedPixelData<'_>>) -> Vec<Voi> {
    let mut out = Vec::new();
    let items = o
        .element_opt(tags::VOILUT_SEQUENCE)
        .ok()
        .flatten()
        .and_then(|e| e.items())
        .unwrap_or_default();
    for item in items {
        if let Some((first, bits, data)) = lut_item(item) {
            out.push(Voi::Lut(
                VoiLut {
                    first: first as f64,
                    max: ((1u32 << bits) - 1) as f64,
                    data,
                },
                text(item, tags::LUT_EXPLANATION),
            ));
        }
    }
    // Every window of the data set (dicom-pixeldata keeps one per frame); the per-frame
    // functional groups of enhanced objects when the data set has none.
    let floats = |tag| {
        o.element_opt(tag)
            .ok()
            .flatten()
            .and_then(|e| e.to_multi_float64().ok())
            .unwrap_or_default()
    };
    let (centers, widths) = (floats(tags::WINDOW_CENTER), floats(tags::WINDOW_WIDTH));
    let windows: Vec<dicom_pixeldata::WindowLevel> = if !centers.is_empty() {
        centers
            .iter()
            .zip(&widths)
            .map(|(&center, &width)| dicom_pixeldata::WindowLevel { center, width })
            .collect()
    } else {
        d.and_then(|d| d.window().ok().flatten().map(<[_]>::to_vec))
            .unwrap_or_default()
    };
    let functions: Vec<VoiFunction> = match text(o, tags::VOILUT_FUNCTION) {
        Some(s) => s.split('\\').filter_map(VoiFunction::parse).collect(),
        None => d
            .and_then(|d| d.voi_lut_function().ok().flatten())
            .unwrap_or_default()
            .iter()
            .map(|f| match f {
                dicom_pixeldata::VoiLutFunction::LinearExact => VoiFunction::LinearExact,
                dicom_pixeldata::VoiLutFunction::Sigmoid => VoiFunction::Sigmoid,
                _ => VoiFunction::Linear,
            })
            .collect(),
    };
    let explanations: Vec<String> = text(o, tags::WINDOW_CENTER_WIDTH_EXPLANATION)
        .map(|s| s.split('\\').map(|p| p.trim().to_string()).collect())
        .unwrap_or_default();
    for (i, wl) in windows.iter().enumerate() {
        if !(wl.width.is_finite() && wl.center.is_finite()) || wl.width <= 0.0 {
            continue;
        }
        let function = functions
            .get(i)
            .or(functions.first())
            .copied()
            .unwrap_or(VoiFunction::Linear);
        // LINEAR needs a width of at least 1.
        let width = if function == VoiFunction::Linear {
            wl.width.max(1.0)
        } else {
            wl.width
        };
        out.push(Voi::Window(
            Window {
                center: wl.center,
                width,
                function,
            },
            explanations.get(i).filter(|e| !e.is_empty()).cloned(),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_bits_are_masked_and_sign_extended() {
        // 12 bits stored in 16, high bit 11: the top nibble is overlay junk.
        let v: Vec<u8> = [0xF800u16, 0x0FFF, 0x0800, 0x07FF]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let u = stored_values(&v, 4, 16, 12, 11, false).unwrap();
        assert_eq!(u, [0x800, 0xFFF, 0x800, 0x7FF]);
        let s = stored_values(&v, 4, 16, 12, 11, true).unwrap();
        assert_eq!(s, [-2048, -1, -2048, 2047]);
        let bits = stored_values(&[0b0000_0101], 3, 1, 1, 0, false).unwrap();
        assert_eq!(bits, [1, 0, 1]);
        assert!(stored_values(&v, 40, 16, 12, 11, false).is_err());
        assert!(stored_values(&v, 1, 12, 12, 11, false).is_err());
    }
}
