//! `osteoai train --finetune` end to end through the real binary on generated radiographs: run
//! outside the checkout with no `--base` (the built-in model is the base, as for every other
//! command), a bundle with a linear head, the recipe and learning curves, loaded by `classify`
//! with the same scores from the CPU kernels and from burn.

mod common;

use std::path::Path;

use common::{osteoai, run};

fn make_dataset(dir: &Path) {
    let mut seed = 9000;
    for (split, n) in [("train", 20), ("val", 8), ("test", 6)] {
        for (class, fracture) in [("fracture", true), ("nofracture", false)] {
            let d = dir.join(split).join(class);
            std::fs::create_dir_all(&d).unwrap();
            for i in 0..n {
                let img = image::DynamicImage::ImageLuma8(osteoai_core::fixtures::radiograph(
                    seed, fracture, 96, 96,
                ));
                img.save(d.join(format!("{class}_{i}.png"))).unwrap();
                seed += 1;
            }
        }
    }
}

fn scores(out: &str) -> Vec<(String, f64)> {
    out.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|r| {
            (
                r["path"].as_str().unwrap().to_string(),
                r["p_fracture"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn finetune_writes_a_bundle_every_command_loads() {
    let data = tempfile::tempdir().unwrap();
    make_dataset(data.path());
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let bundle = out.path().join("m");
    // From a folder that is not the checkout, without --base.
    let (code, stdout, err) = run(osteoai(cache.path())
        .current_dir(out.path())
        .arg("train")
        .arg(data.path())
        .arg("--finetune")
        .arg("--out")
        .arg(&bundle)
        .args([
            "--epochs",
            "3",
            "--size",
            "64",
            "--batch",
            "8",
            "--accum",
            "1",
            "--lr",
            "1e-3",
            "--head-lr",
            "3e-3",
            "--frozen-blocks",
            "10",
            "--seed",
            "3",
            "--device",
            "cpu",
        ]));
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("fine-tuned"), "{stdout}");
    assert!(err.contains("epoch 3"), "{err}");
    // The audit ran on the folder's splits: no copies across them here.
    assert!(err.contains("0 of 16 val images"), "{err}");
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bundle.join("manifest.json")).unwrap())
            .unwrap();
    // Both heads were tried; the one with the higher val ROC AUC is the bundle's.
    let heads = &m["training"]["heads"];
    let (lin, lgb) = (
        heads["linear"]["val_auc"].as_f64().unwrap(),
        heads["lightgbm"]["val_auc"].as_f64().unwrap(),
    );
    let chosen = if lgb > lin { "lightgbm" } else { "linear" };
    assert_eq!(heads["chosen"], chosen, "{heads}");
    assert_eq!(m["head"]["kind"], chosen);
    assert!(
        bundle
            .join(if lgb > lin { "head.txt" } else { "head.json" })
            .is_file()
    );
    assert!(!bundle.join(".lightgbm-head").exists());
    let png = image::open(bundle.join("curves.png")).unwrap();
    assert_eq!((png.width(), png.height()), (960, 400));
    assert_eq!(m["preprocess"]["size"], 64);
    assert_eq!(m["training"]["recipe"]["frozen_blocks"], 10);
    assert_eq!(m["training"]["history"].as_array().unwrap().len(), 3);
    assert!(
        m["metrics"]["test"]["roc_auc"].is_number(),
        "{}",
        m["metrics"]
    );
    let curves = std::fs::read_to_string(bundle.join("curves.csv")).unwrap();
    assert_eq!(curves.lines().count(), 4, "{curves}");
    assert!(bundle.join("WEIGHTS-LICENSE.md").is_file());
    assert!(out.path().join("m.checkpoint/state.json").is_file());

    classify_agrees_with_the_bundle(cache.path(), data.path(), &bundle, &m);
}

/// `classify` loads the bundle; the CPU kernels and burn-flex agree within 1e-4, and the
/// bundle's own test metrics are those classify's scores give.
fn classify_agrees_with_the_bundle(
    cache: &Path,
    data: &Path,
    bundle: &Path,
    m: &serde_json::Value,
) {
    let classify = |device: &str| {
        let (code, stdout, err) = run(osteoai(cache)
            .arg("classify")
            .arg(data.join("test"))
            .arg("--model")
            .arg(bundle)
            .args(["--format", "jsonl", "--device", device]));
        assert_eq!(code, 0, "{err}");
        scores(&stdout)
    };
    let a = classify("cpu");
    let b = classify("flex");
    assert_eq!(a.len(), 12);
    for ((pa, sa), (pb, sb)) in a.iter().zip(&b) {
        assert_eq!(pa, pb);
        assert!((sa - sb).abs() < 1e-4, "{pa}: kernels {sa} vs burn {sb}");
    }
    let pos: Vec<bool> = a.iter().map(|(p, _)| p.contains("/fracture/")).collect();
    let s: Vec<f64> = a.iter().map(|x| x.1).collect();
    let auc = osteoai_core::metrics::roc_auc(&pos, &s).unwrap();
    let want = m["metrics"]["test"]["roc_auc"].as_f64().unwrap();
    assert!(
        (auc - want).abs() < 1e-6,
        "classify AUC {auc} vs manifest {want}"
    );
}

/// `--batch-norm train`: the recipe and the manifest say so, the bundle's backbone is folded
/// again (the CPU kernels run it and agree with burn), and its test metrics are what
/// `classify` gives; a mode that does not exist is refused before any work.
#[test]
fn train_mode_batch_norms_fold_back_into_a_bundle_classify_runs() {
    let data = tempfile::tempdir().unwrap();
    make_dataset(data.path());
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let bundle = out.path().join("bn");
    let train = |mode: &str| {
        run(osteoai(cache.path())
            .arg("train")
            .arg(data.path())
            .args(["--finetune", "--no-audit", "--head", "linear", "--out"])
            .arg(&bundle)
            .args([
                "--epochs",
                "2",
                "--size",
                "64",
                "--batch",
                "8",
                "--accum",
                "1",
                "--lr",
                "1e-3",
                "--frozen-blocks",
                "10",
                "--seed",
                "4",
                "--device",
                "cpu",
                "--batch-norm",
                mode,
            ]))
    };
    let (code, _, err) = train("folded");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("frozen or train"), "{err}");
    assert!(!bundle.exists());
    let (code, _, err) = train("train");
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("batch norms train"), "{err}");
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bundle.join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(m["training"]["recipe"]["batch_norm"], "train");
    assert!(
        m["training"]["batch_norm"]
            .as_str()
            .unwrap()
            .starts_with("train mode"),
        "{}",
        m["training"]
    );
    assert_eq!(m["backbone"]["folded"], true);
    classify_agrees_with_the_bundle(cache.path(), data.path(), &bundle, &m);

    // `bench --train` times that recipe on the bundle's input size and says so in its JSON
    // line, the one scripts read.
    let (code, stdout, err) = run(osteoai(cache.path())
        .arg("bench")
        .arg(data.path().join("val"))
        .arg("--model")
        .arg(&bundle)
        .args([
            "--train",
            "--batch-sizes",
            "2",
            "--steps",
            "1",
            "--frozen-blocks",
            "10",
        ])
        .args(["--batch-norm", "train", "--device", "cpu", "--json"]));
    assert_eq!(code, 0, "{err}");
    assert!(
        stdout.contains("10 of 16 blocks frozen, batch norms train, 64 px"),
        "{stdout}"
    );
    let line = stdout.lines().last().unwrap();
    let j: serde_json::Value = serde_json::from_str(line).unwrap();
    assert!(j["train_img_s"].as_f64().unwrap() > 0.0, "{line}");
    assert_eq!(j["train_img_s_2"], j["train_img_s"]);
    assert_eq!(j["batch_norm"], "train");
    assert_eq!(j["frozen_blocks"], 10);
    assert_eq!(j["size"], 64);
}

#[test]
fn fit_finetune_gives_out_of_fold_scores_in_fit_columns() {
    let data = tempfile::tempdir().unwrap();
    let mut seed = 7000;
    for (class, fracture) in [("fracture", true), ("nofracture", false)] {
        let d = data.path().join(class);
        std::fs::create_dir_all(&d).unwrap();
        for i in 0..12 {
            image::DynamicImage::ImageLuma8(osteoai_core::fixtures::radiograph(
                seed, fracture, 80, 80,
            ))
            .save(d.join(format!("{i}.png")))
            .unwrap();
            seed += 1;
        }
    }
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let (code, stdout, err) = run(osteoai(cache.path())
        .arg("fit")
        .arg(data.path())
        .arg("--finetune")
        .arg("--out")
        .arg(out.path().join("m"))
        .args([
            "--folds",
            "3",
            "--groups",
            "none",
            "--epochs",
            "2",
            "--size",
            "64",
            "--batch",
            "8",
            "--frozen-blocks",
            "12",
            "--format",
            "csv",
            "--device",
            "cpu",
        ]));
    assert_eq!(code, 0, "{err}");
    let header = stdout.lines().next().unwrap();
    assert!(
        header.starts_with(
            "path,label,suggested,issue_score,is_issue,oof_p_fracture,oof_p_nofracture"
        ),
        "{header}"
    );
    assert_eq!(stdout.lines().count(), 25, "{stdout}");
    for fold in 1..=3 {
        assert!(err.contains(&format!("fold {fold}: fine-tuning")), "{err}");
    }
    assert!(err.contains("final model"), "{err}");
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("m/manifest.json")).unwrap())
            .unwrap();
    assert_eq!(m["head"]["kind"], "linear");
    assert!(m["metrics"]["out_of_fold"]["roc_auc"].is_number());
    assert!(out.path().join("m/oof.csv").is_file());
}

#[test]
fn regroup_counts_val_copies_of_train_and_resplits_in_memory() {
    let data = tempfile::tempdir().unwrap();
    make_dataset(data.path());
    // Six val images are byte copies of training images (a leak the audit must see).
    for i in 0..3 {
        for class in ["fracture", "nofracture"] {
            std::fs::copy(
                data.path().join(format!("train/{class}/{class}_{i}.png")),
                data.path().join(format!("val/{class}/copy_{i}.png")),
            )
            .unwrap();
        }
    }
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let train = |extra: &[&str]| {
        run(osteoai(cache.path())
            .arg("train")
            .arg(data.path())
            .arg("--finetune")
            .arg("--out")
            .arg(out.path().join("m"))
            .args([
                "--epochs", "1", "--size", "64", "--batch", "8", "--accum", "1", "--head",
                "linear", "--seed", "3", "--device", "cpu",
            ])
            .args(extra))
    };
    let (code, _, err) = train(&[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("6 of 22 val images (27.3%)"), "{err}");
    assert!(err.contains("--regroup re-splits in memory"), "{err}");
    let (code, _, err) = train(&["--regroup"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("--regroup: "), "{err}");
    assert!(err.contains("grouped re-split held in memory"), "{err}");
    // "--regroup: A train, B val, C test in memory": all 74 images, each copy with its original.
    let line = err.lines().find(|l| l.contains("--regroup: ")).unwrap();
    let counts: Vec<usize> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(counts.iter().sum::<usize>(), 74, "{line}");
    // Nothing moved: every file is where it was.
    assert_eq!(
        walkdir::WalkDir::new(data.path().join("val"))
            .into_iter()
            .filter(|e| e.as_ref().unwrap().file_type().is_file())
            .count(),
        22
    );
}
