//! DICOM end to end, through the real binary: the generated fixtures classify (every one read,
//! the DICOMDIR skipped, broken files named with their cause); no output format, log or
//! dashboard screen carries the invented patient data unless `--show-phi`; public sample files
//! from pydicom's test data (CR radiographs, JPEG 2000, JPEG lossless, JPEG-LS, RLE, LUTs)
//! decode, and lossless encodings give the same pixels as their uncompressed twins; the
//! dashboard windows a DICOM preview and shows its metadata in tmux.

mod common;

use std::path::{Path, PathBuf};

use common::tmux::{Tmux, have_tmux, quit};
use common::{osteoai, root, run};
use osteoai_core::fixtures::dicom::PHI_VALUES;

fn jsonl(s: &str) -> Vec<serde_json::Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

fn assert_no_phi(what: &str, text: &str) {
    for v in PHI_VALUES {
        assert!(!text.contains(v), "{what} leaks {v:?}:\n{text}");
    }
}

/// Every file under `dir`, read as text (lossy), for grepping.
fn all_text(dir: &Path) -> String {
    let mut s = String::new();
    for e in walkdir::WalkDir::new(dir).into_iter().flatten() {
        if e.file_type().is_file() {
            s.push_str(&String::from_utf8_lossy(
                &std::fs::read(e.path()).unwrap_or_default(),
            ));
        }
    }
    s
}

/// `osteoai classify DIR --device cpu` with more arguments.
fn classify(cache: &Path, dir: &str, more: &[&str]) -> (i32, String, String) {
    run(osteoai(cache)
        .args(["classify", dir, "--device", "cpu"])
        .args(more))
}

#[test]
fn classify_reads_every_dicom_fixture_and_names_the_broken_ones() {
    let cache = tempfile::tempdir().unwrap();
    let (code, out, err) = classify(cache.path(), "fixtures/dicom", &["--format", "jsonl"]);
    assert_eq!(code, 0, "{err}");
    let rows = jsonl(&out);
    assert_eq!(rows.len(), 19, "every fixture but the DICOMDIR:\n{out}");
    for r in &rows {
        assert!(r["error"].is_null(), "{r}");
        assert!(r["p_fracture"].as_f64().is_some(), "{r}");
        assert!(!r["path"].as_str().unwrap().ends_with("DICOMDIR"));
        assert!(r["label"].is_string(), "labels from folder names: {r}");
    }
    assert!(
        rows.iter().any(|r| r["path"]
            .as_str()
            .unwrap()
            .ends_with("1.2.826.0.1.3680043.10.1234.6")),
        "a DICOM file with no extension is found by content"
    );
    // The MONOCHROME1 twins score exactly like their MONOCHROME2 originals.
    let p = |n: &str| {
        rows.iter()
            .find(|r| r["path"].as_str().unwrap().ends_with(n))
            .unwrap()["p_fracture"]
            .as_f64()
            .unwrap()
    };
    assert_eq!(p("mono1-12bit-windows.dcm"), p("mono2-12bit-windows.dcm"));
    assert_eq!(p("mono1-12bit-auto.dcm"), p("mono2-12bit-auto.dcm"));

    let (code, out, err) = classify(cache.path(), "fixtures/dicom-bad", &["--format", "jsonl"]);
    assert_eq!(code, 0, "{err}");
    let rows = jsonl(&out);
    assert_eq!(rows.len(), 3, "{out}");
    let error = |n: &str| {
        rows.iter()
            .find(|r| r["path"].as_str().unwrap().ends_with(n))
            .unwrap()["error"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(
        error("broken-header.dcm").contains("not a readable DICOM file"),
        "{out}"
    );
    assert!(
        error("report-no-pixels.dcm").contains("without pixel data"),
        "{out}"
    );
    assert!(error("truncated-pixels.dcm").contains("DICOM"), "{out}");
}

#[test]
fn no_output_carries_patient_data_without_show_phi() {
    let cache = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let mut all = String::new();
    for (format, ext) in [("table", "txt"), ("csv", "csv"), ("jsonl", "jsonl")] {
        let (code, out, err) = classify(cache.path(), "fixtures/dicom", &["--format", format]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("phi-invented.dcm"), "{out}");
        all += &out;
        all += &err;
        let file = out_dir.path().join(format!("scores.{ext}"));
        let (code, _, err) = classify(
            cache.path(),
            "fixtures/dicom",
            &["--format", format, "--output", file.to_str().unwrap()],
        );
        assert_eq!(code, 0, "{err}");
        all += &err;
    }
    let parquet = out_dir.path().join("scores.parquet");
    let (code, _, err) = classify(
        cache.path(),
        "fixtures/dicom",
        &["--output", parquet.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    all += &err;
    for args in [
        vec!["eval", "fixtures/dicom", "--device", "cpu"],
        vec![
            "eval",
            "fixtures/dicom",
            "--device",
            "cpu",
            "--format",
            "json",
        ],
        vec!["inspect", "fixtures/dicom"],
        vec!["inspect", "fixtures/dicom", "--format", "jsonl"],
    ] {
        let (code, out, err) = run(osteoai(cache.path()).args(&args));
        assert_eq!(code, 0, "{args:?}: {err}");
        all += &out;
        all += &err;
    }
    // The audit, on a copy (it keeps its decisions beside the data), in every format and with
    // its report folder.
    let copy = tempfile::tempdir().unwrap();
    common::copy_tree(&root().join("fixtures/dicom"), copy.path());
    let reports = out_dir.path().join("audit");
    for format in ["table", "csv", "json"] {
        let (code, out, err) = run(osteoai(cache.path()).args([
            "audit",
            copy.path().to_str().unwrap(),
            "--device",
            "cpu",
            "--format",
            format,
            "--out",
            reports.to_str().unwrap(),
        ]));
        assert_eq!(code, 0, "audit {format}: {err}");
        assert!(
            out.contains("identical pixels") || out.contains("exact"),
            "{out}"
        );
        all += &out;
        all += &err;
    }
    assert!(reports.join("findings.csv").is_file());
    // Whatever the audit keeps beside the data (not the data: the DICOM file holds the values).
    all += &all_text(&copy.path().join(".osteoai"));
    assert!(all.contains("Transfer syntax") || all.contains("transfer_syntax"));
    all += &all_text(out_dir.path());
    // Logs and caches (the state and cache folders of these runs).
    all += &all_text(cache.path());
    assert_no_phi("classify/eval/inspect/audit outputs, logs and caches", &all);

    // The flag shows them, so the test above can fail.
    let (code, out, err) = run(osteoai(cache.path()).args([
        "inspect",
        "fixtures/dicom/nofracture/phi-invented.dcm",
        "--show-phi",
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(PHI_VALUES[0]) && out.contains(PHI_VALUES[5]),
        "{out}"
    );
}

/// The public samples (scripts/fetch-dicom-samples.sh), or None with a message; required in CI.
fn samples() -> Option<PathBuf> {
    osteoai_core::fixtures::public_dicom_samples()
}

/// How many values differ, and the largest difference (no 2-million-value dump on failure).
fn differences(a: &[f32], b: &[f32]) -> (usize, f32) {
    assert_eq!(a.len(), b.len(), "sizes differ");
    a.iter()
        .zip(b)
        .filter(|(x, y)| x != y)
        .fold((0, 0f32), |(n, m), (x, y)| (n + 1, m.max((x - y).abs())))
}

fn deep_values(path: &Path) -> Vec<f32> {
    let d = osteoai_core::decode::imaging::decode_path_full(path, 0)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    d.deep.expect("gray, deeper than 8 bits").values
}

#[test]
fn public_sample_files_decode_and_lossless_codecs_match_their_uncompressed_twins() {
    let Some(dir) = samples() else {
        return;
    };
    let cache = tempfile::tempdir().unwrap();
    let (code, out, err) =
        run(osteoai(cache.path()).args(["inspect", dir.to_str().unwrap(), "--format", "jsonl"]));
    let rows = jsonl(&out);
    let row = |n: &str| {
        rows.iter()
            .find(|r| r["path"].as_str().unwrap().ends_with(n))
            .unwrap_or_else(|| panic!("{n} not inspected:\n{out}"))
            .clone()
    };
    // Known failures, named per file: an RT plan with no pixels, a data set with no header.
    for r in &rows {
        let name = r["path"].as_str().unwrap();
        let expected_failure =
            name.ends_with("rtplan.dcm") || name.ends_with("ExplVR_LitEndNoMeta.dcm");
        assert_eq!(r["error"].is_string(), expected_failure, "{r}");
    }
    assert_eq!(code, 1, "two known failures: {err}");
    assert!(
        row("ExplVR_LitEndNoMeta.dcm")["error"]
            .as_str()
            .unwrap()
            .contains("without its Part 10 header")
    );
    // Uncompressed YBR_FULL_422 (two bytes a pixel) and YBR_FULL: the RGB pydicom 3.0.2 gives
    // (sum 3,832,000; (125, 130, 255) at (50, 50)).
    let rgb = |n: &str| {
        osteoai_core::decode::imaging::decode_path_full(&dir.join(n), 0)
            .unwrap()
            .image
            .to_rgb8()
    };
    let (a, b) = (
        rgb("SC_ybr_full_422_uncompressed.dcm"),
        rgb("SC_ybr_full_uncompressed.dcm"),
    );
    for img in [&a, &b] {
        let sum: u64 = img.as_raw().iter().map(|&v| v as u64).sum();
        assert_eq!(sum, 3_832_000);
        assert_eq!(img.get_pixel(50, 50).0, [125, 130, 255]);
    }
    assert!(
        row("rtplan.dcm")["error"]
            .as_str()
            .unwrap()
            .contains("without pixel data")
    );
    // CR radiographs, MONOCHROME1, 15 and 10 bits, windowed by the file.
    let rg1 = row("RG1_J2KI.dcm");
    assert_eq!(rg1["dicom"]["modality"], "CR");
    assert_eq!(rg1["dicom"]["photometric"], "MONOCHROME1");
    assert_eq!(rg1["width"], 1841);
    assert!(
        rg1["window"]
            .as_str()
            .unwrap()
            .starts_with("W 30000 L 15000")
    );
    assert!(row("mlut_18.dcm")["error"].is_null());
    assert!(
        row("vlut_04.dcm")["window"]
            .as_str()
            .unwrap()
            .contains("VOI LUT")
    );

    // Against another decoder: min, max and sum of the pixels as pydicom 3.0.2 with
    // pylibjpeg-libjpeg 2.5.0 decodes them (recorded once, by hand).
    for (name, min, max, sum) in [
        ("JPEG-LL.dcm", 0.0, 278.0, 3_596_452.0),
        ("JPGLosslessP14SV1_1s_1f_8b.dcm", 0.0, 255.0, 13_572_107.0),
        ("JPEGLSNearLossless_16.dcm", 0.0, 65535.0, 6_007_250.0),
    ] {
        let v = deep_values(&dir.join(name));
        let lo = v.iter().copied().fold(f32::MAX, f32::min) as f64;
        let hi = v.iter().copied().fold(f32::MIN, f32::max) as f64;
        let total: f64 = v.iter().map(|&x| x as f64).sum();
        assert_eq!((lo, hi, total), (min, max, sum), "{name}");
    }
    // 12-bit JPEG Extended, lossy: libjpeg (pylibjpeg) and libjpeg-turbo (here) use different
    // inverse DCTs, so the sums agree to 0.2% (3,770,427 there), the range exactly.
    let v = deep_values(&dir.join("JPGExtended.dcm"));
    let total: f64 = v.iter().map(|&x| x as f64).sum();
    assert!((total / 3_770_427.0 - 1.0).abs() < 0.002, "sum {total}");
    let hi = v.iter().copied().fold(f32::MIN, f32::max);
    let lo = v.iter().copied().fold(f32::MAX, f32::min);
    assert_eq!((lo, hi), (0.0, 264.0));
    // Lossless: identical modality values.
    for (coded, plain) in [
        ("RG1_J2KR.dcm", "RG1_UNCR.dcm"),
        ("RG3_J2KR.dcm", "RG3_UNCR.dcm"),
        ("MR2_J2KR.dcm", "MR2_UNCR.dcm"),
        ("emri_small_RLE.dcm", "emri_small.dcm"),
        ("emri_small_jpeg_ls_lossless.dcm", "emri_small.dcm"),
        ("emri_small_jpeg_2k_lossless.dcm", "emri_small.dcm"),
        ("emri_small_big_endian.dcm", "emri_small.dcm"),
        ("MR_small_RLE.dcm", "MR_small.dcm"),
        ("MR_small_jpeg_ls_lossless.dcm", "MR_small.dcm"),
        ("MR_small_jp2klossless.dcm", "MR_small.dcm"),
        ("MR_small_implicit.dcm", "MR_small.dcm"),
        ("MR_small_bigendian.dcm", "MR_small.dcm"),
    ] {
        let (n, worst) = differences(
            &deep_values(&dir.join(coded)),
            &deep_values(&dir.join(plain)),
        );
        assert_eq!(
            n, 0,
            "{coded} vs {plain}: {n} values differ, by up to {worst}"
        );
    }
    // Lossy: the archive's "UNCI" files are the decompressed lossy images.
    for (coded, plain) in [
        ("RG1_J2KI.dcm", "RG1_UNCI.dcm"),
        ("RG3_J2KI.dcm", "RG3_UNCI.dcm"),
        ("MR2_J2KI.dcm", "MR2_UNCI.dcm"),
        ("JPEG2000.dcm", "JPEG2000_UNC.dcm"),
    ] {
        let (_, worst) = differences(
            &deep_values(&dir.join(coded)),
            &deep_values(&dir.join(plain)),
        );
        assert!(worst <= 2.0, "{coded} vs {plain}: worst difference {worst}");
    }
}

fn start(name: &str, dir: &Path, cache: &Path, extra: &str) -> Tmux {
    let t = common::tmux::dashboard(name, dir, cache, extra);
    t.wait_for("the first frame", |s| s.contains("mono1-12bit-auto.dcm"));
    t
}

#[test]
fn dashboard_in_tmux_windows_a_dicom_preview_and_shows_metadata_without_phi() {
    if !have_tmux() {
        return;
    }
    let cache = tempfile::tempdir().unwrap();
    let dir = root().join("fixtures/dicom");
    let t = start("dicom", &dir, cache.path(), "");
    // The first file (fracture/1.2.826…6, deflated 16-bit) is selected: its window in the title.
    let s = t.wait_for("the window in the preview title", |s| s.contains("· auto"));
    assert!(s.contains("W "), "{s}");
    t.keys(&["w", "Right"]);
    let s = t.wait_for("a manual window", |s| s.contains("· manual"));
    assert!(s.contains("window/level"), "{s}");
    t.keys(&["i"]);
    t.wait_for("the inverted view", |s| s.contains("· inverted"));
    t.keys(&["r"]);
    t.wait_for("the rule's window again", |s| {
        s.contains("· auto") && !s.contains("· manual")
    });
    t.keys(&["Escape", "i"]);
    let s = t.wait_for("the metadata panel", |s| s.contains("Transfer syntax"));
    assert!(s.contains("Deflated Explicit VR Little Endian"), "{s}");
    assert!(s.contains("patient data hidden"), "{s}");
    // Walk to the file with invented patient data: the panel never shows it.
    t.keys(&["/"]);
    t.literal("phi-invented");
    t.keys(&["Enter"]);
    let s = t.wait_for("the PHI fixture's metadata", |s| {
        s.contains("phi-invented.dcm")
            && s.contains("Explicit VR Little Endian")
            && s.contains("HAND")
    });
    assert_no_phi("the dashboard", &s);
    quit(&t);
    assert_no_phi("the dashboard's logs and caches", &all_text(cache.path()));

    // With --show-phi, the same panel shows it.
    let t = start("dicom-phi", &dir, cache.path(), "--show-phi");
    t.keys(&["i", "/"]);
    t.literal("phi-invented");
    t.keys(&["Enter"]);
    t.wait_for("the patient name with --show-phi", |s| {
        s.contains(PHI_VALUES[0])
    });
    quit(&t);
}
