//! The committed models, re-evaluated on the reference data through the whole pipeline (decode,
//! preprocess, backbone, head; a fresh cache). Needs `OSTEOAI_DATA`.
//!
//! - `models/default`, fine-tuned on the train images of the grouped re-split
//!   recorded in `tests/data/resplit_seed0.csv` (`osteoai split --seed 0` of 2026-12-02), on that
//!   split's 575 test images (`split --from` rebuilds it; no copy of theirs in train):
//!   its ROC AUC must not fall more than 0.01 below the figure in its manifest, and must stay
//!   ahead of the frozen recipe (0.8136) and the PyTorch fine-tuning peer (0.806) on that split.
//! - `models/lite0`, the frozen bundle that was the default before, on the published test split:
//!   within 0.01 of its manifest and ahead of the reference project (AUC 0.874, accuracy 0.797).

mod common;

use std::path::Path;

use common::{data, osteoai, root, run};

fn recorded_test_auc(bundle: &str) -> f64 {
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join(bundle).join("manifest.json")).unwrap(),
    )
    .unwrap();
    manifest["metrics"]["test"]["roc_auc"]
        .as_f64()
        .expect("manifest records test roc_auc")
}

/// `osteoai eval DIR --model BUNDLE` with a fresh cache: (n, roc_auc, accuracy).
fn eval(bundle: &str, dir: &Path) -> (u64, f64, f64) {
    let cache = tempfile::tempdir().unwrap();
    let (code, out, err) = run(osteoai(cache.path())
        .args([
            "eval", "--format", "json", "--device", "cpu", "--model", bundle,
        ])
        .arg(dir));
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        v["errors"].as_array().unwrap().is_empty(),
        "{}",
        v["errors"]
    );
    let all = &v["sets"]["all"];
    (
        all["n"].as_u64().unwrap(),
        all["roc_auc"].as_f64().unwrap(),
        all["accuracy"].as_f64().unwrap(),
    )
}

#[test]
fn default_model_reproduces_its_metrics_on_the_grouped_test_split() {
    let Some(data) = data() else { return };
    // The split the model was trained on, rebuilt from its record (hard links or copies in a
    // temporary folder; the data set is only read).
    let split = tempfile::tempdir().unwrap();
    let out = split.path().join("resplit");
    let cache = tempfile::tempdir().unwrap();
    let (code, stdout, err) = run(osteoai(cache.path())
        .arg("split")
        .arg(&data)
        .arg("--from")
        .arg(root().join("tests/data/resplit_seed0.csv"))
        .arg("--out")
        .arg(&out));
    assert_eq!(code, 0, "{err}");
    assert!(
        stdout.contains(
            "3837 files placed as recorded, 0 recorded files not found, 0 files not in the record"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("earlier split: 0"), "{stdout}");
    let recorded = recorded_test_auc("models/default");
    let (n, auc, acc) = eval("models/default", &out.join("test"));
    println!(
        "grouped test split: n={n} roc_auc={auc:.4} (recorded {recorded:.4}) accuracy={acc:.4}"
    );
    assert_eq!(n, 575);
    assert!(
        auc >= recorded - 0.01,
        "AUC {auc} fell more than 0.01 below the recorded {recorded}"
    );
    assert!(
        auc > 0.8136_f64.max(0.806),
        "must beat the frozen recipe (0.8136) and the PyTorch peer (0.806) on this split: {auc}"
    );
}

#[test]
fn frozen_bundle_reproduces_its_recorded_test_metrics() {
    let Some(data) = data() else { return };
    let recorded = recorded_test_auc("models/lite0");
    let (n, auc, acc) = eval("models/lite0", &data.join("test"));
    println!(
        "published test split: n={n} roc_auc={auc:.4} (recorded {recorded:.4}) accuracy={acc:.4}"
    );
    assert_eq!(n, 767);
    assert!(
        auc >= recorded - 0.01,
        "AUC {auc} fell more than 0.01 below the recorded {recorded}"
    );
    assert!(
        auc > 0.874 && acc > 0.797,
        "must beat the reference (AUC 0.874, accuracy 0.797): {auc} {acc}"
    );
}
