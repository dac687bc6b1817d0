//! `osteoai fit` on generated folders: three classes with one injected label error (ranked
//! first, with the right suggestion, a 3x3 out-of-fold matrix, a bundle `classify` loads), and
//! the CSV contract.

mod common;

use common::{make_three_class_folder as make_folder, osteoai, rings, run};

#[test]
fn three_classes_fit_and_the_injected_label_error_ranks_first() {
    let data = tempfile::tempdir().unwrap();
    let wrong = make_folder(data.path());
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let bundle = out.path().join("bundle");
    let csv = out.path().join("oof.csv");
    let (code, _, err) = run(osteoai(cache.path())
        .arg("fit")
        .arg(data.path())
        .arg("--out")
        .arg(&bundle)
        .args(["--format", "csv", "--device", "cpu", "--rounds", "60", "-o"])
        .arg(&csv));
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(
        &header[..5],
        ["path", "label", "suggested", "issue_score", "is_issue"]
    );
    for c in ["elbow", "rings", "shaft"] {
        assert!(
            header.contains(&format!("oof_p_{c}").as_str()),
            "{header:?}"
        );
    }
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let rows: Vec<Vec<String>> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    assert_eq!(rows.len(), 37);
    let top = rows
        .iter()
        .max_by(|a, b| {
            a[col("issue_score")]
                .parse::<f64>()
                .unwrap()
                .total_cmp(&b[col("issue_score")].parse::<f64>().unwrap())
        })
        .unwrap();
    assert_eq!(top[0], wrong, "the injected error ranks first");
    assert_eq!(top[col("label")], "shaft");
    assert_eq!(top[col("suggested")], "rings");
    assert_eq!(top[col("is_issue")], "true");
    // Probabilities are probabilities.
    for r in &rows {
        let s: f64 = ["oof_p_elbow", "oof_p_rings", "oof_p_shaft"]
            .iter()
            .map(|c| r[col(c)].parse::<f64>().unwrap())
            .sum();
        assert!((s - 1.0).abs() < 1e-4, "{r:?}");
    }
    // The table shows the 3x3 matrix; JSON holds it.
    let (code, json, err) = run(osteoai(cache.path())
        .arg("fit")
        .arg(data.path())
        .arg("--out")
        .arg(&bundle)
        .args(["--format", "json", "--device", "cpu", "--rounds", "60"]));
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let m = v["confusion"].as_array().unwrap();
    assert_eq!(m.len(), 3);
    assert!(m.iter().all(|r| r.as_array().unwrap().len() == 3));
    let total: u64 = m
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|x| x.as_u64().unwrap())
        .sum();
    assert_eq!(total, 37);
    // Three kinds of drawing, 12 of each: far above chance (1/3) out of fold.
    assert!(v["oof"]["accuracy"].as_f64().unwrap() > 0.6, "{}", v["oof"]);
    assert_eq!(v["folds"].as_array().unwrap().len(), 5);
    // The bundle loads: classify predicts one of the three classes with every probability.
    let (code, out, err) = run(osteoai(cache.path())
        .arg("classify")
        .arg(data.path().join("rings"))
        .arg("--model")
        .arg(&bundle)
        .args(["--format", "csv", "--device", "cpu"]));
    assert_eq!(code, 0, "{err}");
    let mut l = out.lines();
    let h = l.next().unwrap();
    assert!(
        h.contains("p_elbow") && h.contains("p_rings") && h.contains("p_shaft"),
        "{h}"
    );
    let rings_predicted = l.filter(|r| r.split(',').nth(4) == Some("rings")).count();
    assert!(rings_predicted >= 10, "{out}");
}

#[test]
fn fit_refuses_a_folder_with_one_class() {
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(data.path().join("only")).unwrap();
    for i in 0..6 {
        rings(i, 64, 64)
            .save(data.path().join(format!("only/{i}.png")))
            .unwrap();
    }
    let cache = tempfile::tempdir().unwrap();
    let (code, _, err) = run(osteoai(cache.path())
        .arg("fit")
        .arg(data.path())
        .args(["--device", "cpu"]));
    assert_eq!(code, 2);
    assert!(err.contains("at least two class folders"), "{err}");
}
