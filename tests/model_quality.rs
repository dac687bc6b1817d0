//! The committed default model, re-evaluated on the reference test split: its ROC AUC must not
//! fall more than 0.01 below the figure recorded in its manifest (and must beat the reference
//! project's 0.874). Needs `OSTEOAI_DATA`.

mod common;

use common::{data, osteoai, root, run};

#[test]
fn default_model_reproduces_its_recorded_test_metrics() {
    let Some(data) = data() else { return };
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("models/default/manifest.json")).unwrap(),
    )
    .unwrap();
    let recorded = &manifest["metrics"]["test"];
    let recorded_auc = recorded["roc_auc"]
        .as_f64()
        .expect("manifest records test roc_auc");
    // A fresh cache: the whole pipeline (decode, preprocess, backbone, head) runs, so a change
    // anywhere in it shows here.
    let cache = tempfile::tempdir().unwrap();
    let (code, out, err) = run(osteoai(cache.path())
        .args(["eval", "--format", "json", "--device", "cpu"])
        .arg(data.join("test")));
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let all = &v["sets"]["all"];
    let auc = all["roc_auc"].as_f64().unwrap();
    let acc = all["accuracy"].as_f64().unwrap();
    println!(
        "test split: n={} roc_auc={auc:.4} (recorded {recorded_auc:.4}) accuracy={acc:.4}",
        all["n"]
    );
    assert_eq!(all["n"], 767);
    assert!(
        v["errors"].as_array().unwrap().is_empty(),
        "{}",
        v["errors"]
    );
    assert!(
        auc >= recorded_auc - 0.01,
        "AUC {auc} fell more than 0.01 below the recorded {recorded_auc}"
    );
    assert!(
        auc > 0.874 && acc > 0.797,
        "must beat the reference (AUC 0.874, accuracy 0.797): {auc} {acc}"
    );
}
