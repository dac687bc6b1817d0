//! LightGBM heads trained in Python (`scripts/python_heads.py`, lightgbm 4.x) load through
//! osteoai's head and give Python's probabilities: binary, and 2-class multiclass like the
//! reference OsteoAI model.

use std::path::Path;

use osteoai_core::model::head::{Head, HeadOutput};

#[test]
fn python_trained_heads_give_pythons_probabilities() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("py_heads.json")).unwrap()).unwrap();
    let rows: Vec<f32> = r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
        })
        .collect();

    let binary = Head::load(&dir.join("py_binary.txt"), HeadOutput::Binary, 1).unwrap();
    let want: Vec<f64> = r["binary"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let got = binary.predict(&rows).unwrap();
    let worst = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    println!(
        "binary: max |rust - python| = {worst:.1e} over {} rows",
        want.len()
    );
    assert!(worst < 1e-9, "{worst}");

    // Multiclass: P(class 1) is the second column of Python's output.
    let multi = Head::load(&dir.join("py_multiclass.txt"), HeadOutput::Multiclass, 1).unwrap();
    assert_eq!(multi.num_classes, 2);
    let want: Vec<f64> = r["multiclass"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row[1].as_f64().unwrap())
        .collect();
    let got = multi.predict(&rows).unwrap();
    let worst = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    println!("multiclass: max |rust - python| = {worst:.1e}");
    assert!(worst < 1e-9, "{worst}");
}
