//! The binary on CPUs without AVX-512: `osteoai classify` runs under `qemu-x86_64` emulating a
//! Haswell (AVX2 + FMA, no AVX-512) and a plain x86-64 (`qemu64`: SSE2 only), and gives the same
//! probabilities as on this machine; `osteoai audit` gives the same verdicts. osteoai's kernels,
//! the `gemm` crate and the audit's keypoint matching choose their code at run time from CPUID,
//! which qemu answers for the emulated CPU; so this runs the fallback paths for real, not by a
//! switch.

mod common;

use std::process::Command;

/// The binary with the tests' environment, run directly (`wrapper` empty) or under a wrapper
/// (`qemu-x86_64 -cpu …`).
fn osteoai_under(wrapper: &[&str], cache: &std::path::Path) -> Command {
    let exe = env!("CARGO_BIN_EXE_osteoai");
    let base = common::osteoai(cache);
    match wrapper {
        [] => base,
        [prog, args @ ..] => {
            let mut c = Command::new(prog);
            c.args(args).arg(exe).current_dir(common::root());
            for (k, v) in base.get_envs() {
                match v {
                    Some(v) => c.env(k, v),
                    None => c.env_remove(k),
                };
            }
            c
        }
    }
}

/// `(device line, [(path, probability)])` of one classify run.
fn classify(wrapper: &[&str]) -> (String, Vec<(String, f64)>) {
    let cache = tempfile::tempdir().unwrap();
    let mut cmd = osteoai_under(wrapper, cache.path());
    cmd.args([
        "classify",
        "fixtures/demo/test/fracture/fracture_test_00.jpg",
        "fixtures/demo/test/fracture/fracture_test_01.jpg",
        "fixtures/demo/test/nofracture/nofracture_test_00.jpg",
        "fixtures/demo/test/nofracture/nofracture_test_01.jpg",
        "--device",
        "cpu",
        "--format",
        "csv",
    ]);
    let (code, out, err) = common::run(&mut cmd);
    assert_eq!(code, 0, "{wrapper:?}: {err}");
    let device = err
        .lines()
        .find(|l| l.contains("device"))
        .unwrap_or_default()
        .to_string();
    let mut rd = csv::Reader::from_reader(out.as_bytes());
    let rows = rd
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].to_string(), r[3].parse::<f64>().unwrap())
        })
        .collect();
    (device, rows)
}

/// Whether qemu-user is installed (required in CI; otherwise the test says it is skipped).
fn have_qemu() -> bool {
    if Command::new("qemu-x86_64")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "qemu-x86_64 is required in CI (scripts/setup.sh installs qemu-user)"
        );
        eprintln!("SKIPPED: qemu-x86_64 is not installed (apt-get install qemu-user)");
        return false;
    }
    true
}

#[test]
fn classify_gives_the_same_scores_without_avx512_and_without_avx() {
    if !have_qemu() {
        return;
    }
    let (_, native) = classify(&[]);
    assert!(native.len() >= 4, "{native:?}");
    for (cpu, level) in [("Haswell", "AVX2"), ("qemu64", "baseline")] {
        let (device, rows) = classify(&["qemu-x86_64", "-cpu", cpu]);
        assert!(
            device.contains(&format!("osteoai kernels, {level},")),
            "{cpu}: {device}"
        );
        assert_eq!(rows.len(), native.len(), "{cpu}");
        for ((p, a), (q, b)) in native.iter().zip(&rows) {
            assert_eq!(p, q);
            assert!(
                (a - b).abs() < 1e-4,
                "{cpu}: {p}: {a} natively, {b} emulated"
            );
        }
        println!(
            "{cpu}: {} images, same probabilities ({device})",
            rows.len()
        );
    }
}

/// A folder of drawings and copies close enough for the perceptual hash to propose them (so
/// that an audit without a model verifies them): slightly rotated and re-exposed, mirrored,
/// blurred; plus unrelated drawings.
fn copies_folder() -> tempfile::TempDir {
    use osteoai_core::fixtures::audit::{augment, blur, drawing};
    let t = tempfile::tempdir().unwrap();
    for d in ["train/fracture", "test/fracture"] {
        std::fs::create_dir_all(t.path().join(d)).unwrap();
    }
    for seed in 1..7u64 {
        let a = drawing(seed, true, seed % 2 == 0, 256, 224);
        let save = |img: &image::GrayImage, rel: String| img.save(t.path().join(rel)).unwrap();
        save(&a, format!("train/fracture/d{seed}.png"));
        let copy = match seed % 3 {
            0 => augment(&a, 1.5, 0.0, 1.05, false, 1.3),
            1 => augment(&a, 0.0, 0.0, 1.0, true, 1.0),
            _ => blur(&a, 1),
        };
        save(&copy, format!("test/fracture/d{seed}-copy.png"));
    }
    t
}

/// The audit's pairs (no model: keypoints, matching and verification only), as `(a, b, kind,
/// verified, matches, inliers, mirrored)` and the verdicts' correlations.
fn audit_pairs(wrapper: &[&str], dir: &std::path::Path) -> Vec<(String, Vec<f64>)> {
    let cache = tempfile::tempdir().unwrap();
    let mut cmd = osteoai_under(wrapper, cache.path());
    cmd.arg("audit")
        .arg(dir)
        .args(["--no-model", "--format", "json"]);
    let (code, out, err) = common::run(&mut cmd);
    assert_eq!(code, 0, "{wrapper:?}: {err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let pairs = report["pairs"].as_array().expect("pairs").clone();
    pairs
        .iter()
        .map(|p| {
            let v = &p["verification"];
            let key = format!(
                "{}-{} {} verified={} matches={} inliers={} mirrored={}",
                p["a"], p["b"], p["kind"], v["verified"], v["matches"], v["inliers"], v["mirrored"]
            );
            let values = ["score", "pearson", "detail", "overlap", "spread"]
                .iter()
                .map(|k| v[*k].as_f64().unwrap_or(f64::NAN))
                .collect();
            (key, values)
        })
        .collect()
}

/// The audit's keypoint matching has three builds chosen from CPUID (AVX-512 VPOPCNTDQ,
/// POPCNT, plain): on a Haswell (POPCNT, no AVX-512) and on a plain x86-64 (no POPCNT) the
/// audit reports the same pairs with the same verdicts as on this CPU.
#[test]
fn the_audit_gives_the_same_verdicts_without_avx512_and_without_popcnt() {
    if !have_qemu() {
        return;
    }
    let dir = copies_folder();
    let native = audit_pairs(&[], dir.path());
    assert!(
        native
            .iter()
            .filter(|(k, _)| k.contains("verified=true"))
            .count()
            >= 3,
        "{native:?}"
    );
    for cpu in ["Haswell", "qemu64"] {
        let emulated = audit_pairs(&["qemu-x86_64", "-cpu", cpu], dir.path());
        assert_eq!(emulated.len(), native.len(), "{cpu}");
        for ((k, a), (l, b)) in native.iter().zip(&emulated) {
            assert_eq!(k, l, "{cpu}");
            for (x, y) in a.iter().zip(b) {
                assert!(
                    (x - y).abs() < 1e-4 || (x.is_nan() && y.is_nan()),
                    "{cpu}: {k}: {a:?} natively, {b:?} emulated"
                );
            }
        }
        println!("{cpu}: {} pairs, the same verdicts", native.len());
    }
}
