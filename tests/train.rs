//! `osteoai train` end to end on a small generated data set: a bundle with metrics and
//! provenance that `classify` can load, and the same head twice for the same seed.

mod common;

use std::path::Path;

use common::{osteoai, root, run};

fn make_dataset(dir: &Path) {
    let mut seed = 500;
    for (split, n) in [("train", 30), ("val", 8), ("test", 8)] {
        for (class, fracture) in [("fracture", true), ("nofracture", false)] {
            let d = dir.join(split).join(class);
            std::fs::create_dir_all(&d).unwrap();
            for i in 0..n {
                let img = image::DynamicImage::ImageLuma8(osteoai_core::fixtures::radiograph(
                    seed, fracture, 96, 80,
                ));
                img.save(d.join(format!("{class}_{i}.png"))).unwrap();
                seed += 1;
            }
        }
    }
}

#[test]
fn train_writes_a_loadable_bundle_deterministically() {
    let data = tempfile::tempdir().unwrap();
    make_dataset(data.path());
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let train = |name: &str| {
        let dest = out.path().join(name);
        let (code, stdout, err) = run(osteoai(cache.path())
            .arg("train")
            .arg(data.path())
            .arg("--out")
            .arg(&dest)
            .args([
                "--base",
                "models/default",
                "--seed",
                "7",
                "--max-rounds",
                "60",
                "--early-stopping",
                "20",
                "--device",
                "cpu",
            ]));
        assert_eq!(code, 0, "{err}");
        assert!(stdout.contains("test"), "{stdout}");
        dest
    };
    let a = train("a");
    let b = train("b"); // features come from the cache the first run filled
    let head_a = std::fs::read_to_string(a.join("head.txt")).unwrap();
    assert_eq!(
        head_a,
        std::fs::read_to_string(b.join("head.txt")).unwrap(),
        "same seed, same head"
    );
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("manifest.json")).unwrap()).unwrap();
    for set in ["train", "val", "test"] {
        assert!(
            m["metrics"][set]["roc_auc"].is_number(),
            "{set}: {}",
            m["metrics"]
        );
    }
    // No `.rf.` names, so no notion of a source: no unseen-source metrics.
    assert!(m["metrics"]["test_unseen_sources"].is_null());
    assert_eq!(m["metrics"]["val"]["n"], 16);
    assert_eq!(m["provenance"]["seed"], 7);
    assert!(
        m["provenance"]["command"]
            .as_str()
            .unwrap()
            .contains("train")
    );
    // The bundle is complete: weights and licence copied beside the new head.
    assert_eq!(
        std::fs::read(a.join("backbone.bpk")).unwrap(),
        std::fs::read(root().join("models/default/backbone.bpk")).unwrap()
    );
    assert!(a.join("WEIGHTS-LICENSE.md").is_file());
    let (code, out, err) = run(osteoai(cache.path())
        .args([
            "classify", "--format", "jsonl", "--device", "cpu", "--model",
        ])
        .arg(&a)
        .arg(data.path().join("test")));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 16);
}

#[test]
fn train_without_val_is_refused_with_a_reason() {
    let data = tempfile::tempdir().unwrap();
    make_dataset(data.path());
    std::fs::remove_dir_all(data.path().join("val")).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let (code, _, err) = run(osteoai(cache.path())
        .arg("train")
        .arg(data.path())
        .arg("--out")
        .arg(out.path().join("m"))
        .args(["--base", "models/default", "--device", "cpu"]));
    assert_eq!(code, 2);
    assert!(err.contains("needs train/ and val/"), "{err}");
}

#[test]
fn a_backbone_that_is_not_imported_is_refused_with_the_command_that_imports_it() {
    let data = tempfile::tempdir().unwrap();
    make_dataset(data.path());
    let cache = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let (code, _, err) = common::run(
        common::osteoai(cache.path())
            .current_dir(cwd.path())
            .arg("train")
            .arg(data.path())
            .args(["--out", "m", "--backbone", "lite2", "--device", "cpu"]),
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("no efficientnet_lite2 weights in models/lite2")
            && err.contains("scripts/import-weights.sh lite2"),
        "{err}"
    );
    let (code, _, err) = common::run(
        common::osteoai(cache.path())
            .arg("train")
            .arg(data.path())
            .args(["--out", "m", "--backbone", "resnet50"]),
    );
    assert_ne!(code, 0);
    assert!(err.contains("unknown backbone"), "{err}");
}
