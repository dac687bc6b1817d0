//! The binary on CPUs without AVX-512: `osteoai classify` runs under `qemu-x86_64` emulating a
//! Haswell (AVX2 + FMA, no AVX-512) and a plain x86-64 (`qemu64`: SSE2 only), and gives the same
//! probabilities as on this machine. Both osteoai's kernels and the `gemm` crate choose their
//! code at run time from CPUID, which qemu answers for the emulated CPU; so this runs the
//! fallback paths for real, not by a switch.

mod common;

use std::process::Command;

/// `(device line, [(path, probability)])` of one classify run.
fn classify(wrapper: &[&str]) -> (String, Vec<(String, f64)>) {
    let cache = tempfile::tempdir().unwrap();
    let exe = env!("CARGO_BIN_EXE_osteoai");
    let base = common::osteoai(cache.path());
    let mut cmd = match wrapper {
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
    };
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

#[test]
fn classify_gives_the_same_scores_without_avx512_and_without_avx() {
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
