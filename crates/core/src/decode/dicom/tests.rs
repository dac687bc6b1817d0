//! The generated DICOM fixtures decode to the values they were written with, after the
//! documented transform (`crate::decode::window`).

use super::*;
use crate::decode::imaging::decode_full;
use crate::decode::model_input::Preprocess;
use crate::fixtures::dicom::{PHI_VALUES, files, stored};

fn bytes(name: &str) -> Vec<u8> {
    files()
        .into_iter()
        .find(|(p, _)| p.to_string_lossy().ends_with(name))
        .unwrap_or_else(|| panic!("no fixture {name}"))
        .1
}

fn gray(name: &str) -> DeepGray {
    match decode(&bytes(name), 0)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .pixels
    {
        Pixels::Gray(g) => g,
        Pixels::Color(_) => panic!("{name} is gray"),
    }
}

fn f32s(v: impl IntoIterator<Item = f64>) -> Vec<f32> {
    v.into_iter().map(|x| x as f32).collect()
}

#[test]
fn gray_fixtures_decode_to_the_values_written_after_the_modality_transform() {
    let frac: Vec<f64> = stored(201, true).iter().map(|&v| v as f64).collect();
    let nof: Vec<f64> = stored(202, false).iter().map(|&v| v as f64).collect();
    // Junk above the high bit is masked off.
    assert_eq!(gray("mono2-12bit-windows.dcm").values, f32s(frac.clone()));
    assert_eq!(
        gray("mono1-12bit-windows.dcm").values,
        f32s(frac.iter().map(|v| 4095.0 - v))
    );
    assert_eq!(
        gray("signed16-rescale.dcm").values,
        f32s(frac.iter().map(|v| (v - 2048.0) * 2.0 - 1000.0))
    );
    assert_eq!(
        gray("1.2.826.0.1.3680043.10.1234.6").values,
        f32s(frac.iter().map(|v| v * 16.0)),
        "deflated"
    );
    assert_eq!(gray("rle-12bit.dcm").values, f32s(frac.clone()), "RLE");
    assert_eq!(
        gray("jpeg-lossless-12bit.dcm").values,
        f32s(frac.clone()),
        "JPEG lossless SV1"
    );
    assert_eq!(
        gray("jpegls-lossless-12bit.dcm").values,
        f32s(frac.clone()),
        "JPEG-LS lossless"
    );
    let j12 = gray("jpeg-extended-12bit.dcm").values;
    let (worst, mean) = j12.iter().zip(&frac).fold((0.0f64, 0.0), |(w, m), (a, b)| {
        let d = (*a as f64 - b).abs();
        (w.max(d), m + d / frac.len() as f64)
    });
    assert!(
        worst <= 64.0 && mean < 6.0,
        "12-bit JPEG q95: worst {worst}, mean {mean}"
    );
    let near = gray("jpegls-near-lossless-12bit.dcm").values;
    let worst = near
        .iter()
        .zip(&nof)
        .map(|(a, b)| (*a as f64 - b).abs())
        .fold(0.0, f64::max);
    assert!(worst <= 25.0, "JPEG-LS near-lossless (NEAR 25): {worst}");
    assert_eq!(
        gray("modality-lut.dcm").values,
        f32s(nof.iter().map(|v| v * 8.0 + 1000.0))
    );
    let padded = gray("pixel-padding.dcm");
    assert!(padded.values[0].is_nan() && !padded.values[20 * 128 + 20].is_nan());
    assert_eq!(padded.render(&padded.default_view()).as_raw()[0], 0);
}

#[test]
fn windows_luts_and_eight_bit_data_render_as_documented() {
    let g = gray("mono2-12bit-windows.dcm");
    assert_eq!(g.vois.len(), 2);
    assert_eq!(g.vois[0].describe(), "W 2201 L 1500 BONE");
    // LINEAR: y = ((x - (c - 0.5)) / (w - 1) + 0.5), clamped.
    let r = g.render(&g.default_view());
    for (x, &y) in g.values.iter().zip(r.as_raw()).take(500) {
        let t = ((*x as f64 - 1499.5) / 2200.0 + 0.5).clamp(0.0, 1.0);
        assert_eq!(y, (t * 255.0).round() as u8);
    }
    let lut = gray("voi-lut.dcm");
    let r = lut.render(&lut.default_view());
    for (x, &y) in lut.values.iter().zip(r.as_raw()).take(500) {
        let want = ((*x as f64 / 4095.0).powf(0.6) * 255.0).round() as u8;
        assert_eq!(y, want);
    }
    let e = gray("mono2-8bit-implicit.dcm");
    assert!(e.eight_bit && e.vois.is_empty());
    let r = e.render(&e.default_view());
    assert!(e.values.iter().zip(r.as_raw()).all(|(v, &y)| *v as u8 == y));
}

#[test]
fn monochrome1_twins_give_the_same_model_input() {
    let p = Preprocess::imagenet(224);
    for (m2, m1) in [
        ("mono2-12bit-windows.dcm", "mono1-12bit-windows.dcm"),
        ("mono2-12bit-auto.dcm", "mono1-12bit-auto.dcm"),
    ] {
        let a = decode_full(&bytes(m2), 0).unwrap();
        let b = decode_full(&bytes(m1), 0).unwrap();
        assert_eq!(a.image, b.image, "{m1}");
        assert_eq!(p.apply(&a.image), p.apply(&b.image), "{m1}");
    }
}

#[test]
fn frames_colour_and_compressed_eight_bit() {
    let m = decode(&bytes("multiframe-3.dcm"), 1).unwrap();
    assert_eq!((m.frames, m.frame), (3, 1));
    let Pixels::Gray(g) = m.pixels else { panic!() };
    assert_eq!(g.values, f32s(stored(211, true).iter().map(|&v| v as f64)));
    assert!(
        decode(&bytes("multiframe-3.dcm"), 3)
            .unwrap_err()
            .0
            .contains("frame 4")
    );
    let rgb = decode(&bytes("rgb-secondary-capture.dcm"), 0).unwrap();
    assert!(matches!(rgb.pixels, Pixels::Color(ref c) if c.width() == 128));
    let j = gray("jpeg-baseline-8bit.dcm");
    let e = gray("mono2-8bit-implicit.dcm");
    let mean: f64 = j
        .values
        .iter()
        .zip(&e.values)
        .map(|(a, b)| (a - b).abs() as f64)
        .sum::<f64>()
        / j.values.len() as f64;
    assert!(mean < 3.0, "JPEG baseline q95 mean error {mean}");
}

#[test]
fn broken_files_are_errors_that_name_the_cause() {
    let e = decode(&bytes("broken-header.dcm"), 0).unwrap_err().0;
    assert!(e.contains("not a readable DICOM file"), "{e}");
    let e = decode(&bytes("report-no-pixels.dcm"), 0).unwrap_err().0;
    assert!(
        e.contains("without pixel data") && e.contains("1.2.840.10008.5.1.4.1.1.88.11"),
        "{e}"
    );
    let e = decode_full(&bytes("truncated-pixels.dcm"), 0)
        .unwrap_err()
        .0;
    assert!(e.contains("DICOM"), "{e}");
    assert!(decode(b"DICM", 0).is_err());
    // Every prefix of a good file fails cleanly (no panic).
    let good = bytes("mono2-12bit-windows.dcm");
    for cut in (0..good.len()).step_by(997) {
        let _ = decode_full(&good[..cut], 0);
    }
}

#[test]
fn patient_data_stays_out_of_meta_and_phi_reads_it_only_on_request() {
    let b = bytes("phi-invented.dcm");
    let meta = read_meta(&b).unwrap();
    let shown = format!("{meta:?}{:?}", meta.rows_for_panel());
    for v in PHI_VALUES {
        assert!(!shown.contains(v), "{v} in {shown}");
    }
    assert_eq!(meta.modality.as_deref(), Some("DX"));
    assert_eq!(meta.body_part.as_deref(), Some("HAND"));
    let phi = phi(&b);
    assert!(
        phi.iter()
            .any(|(k, v)| *k == "Patient name" && v == PHI_VALUES[0])
    );
    assert!(phi.iter().any(|(_, v)| v == PHI_VALUES[5]));
    assert_eq!(
        transfer_syntax_name("1.2.840.10008.1.2.5\0"),
        Some("RLE Lossless")
    );
}
