//! `osteoai explain` through the real binary: the pointing game on generated radiographs whose
//! breaks the generator knows (a model fitted on generated folders: a linear head on the
//! frozen backbone, `train --finetune` with head-only epochs), overlays and tables on the demo
//! with the frozen LightGBM bundle and the built-in fine-tuned model, and clear errors.

mod common;

use std::path::Path;

use common::{osteoai, run};

fn json_lines(s: &str) -> Vec<serde_json::Value> {
    s.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn make_set(cache: &Path, dir: &Path, n: usize, seed: u64) {
    let (code, _, err) = run(osteoai(cache).arg("make-fixtures").arg(dir).args([
        "--pointing",
        &n.to_string(),
        "--seed",
        &seed.to_string(),
    ]));
    assert_eq!(code, 0, "{err}");
}

const FIRST: &str = "fixtures/demo/test/fracture/fracture_test_00.jpg";

/// The row of `file` carries the probability `classify` (the same command's model) gives it.
fn same_p_as_classify(mut cmd: std::process::Command, rows: &[serde_json::Value], file: &str) {
    let (_, cls, _) = run(cmd.args(["classify", file, "--format", "jsonl", "--device", "cpu"]));
    let want = json_lines(&cls)[0]["p_fracture"].as_f64().unwrap();
    let name = Path::new(file).file_name().unwrap().to_str().unwrap();
    let got = rows
        .iter()
        .find(|r| r["path"].as_str().unwrap().ends_with(name))
        .unwrap_or_else(|| panic!("no row for {file}"));
    assert!(
        (got["p"].as_f64().unwrap() - want).abs() < 1e-3,
        "{got} vs {want}"
    );
}

/// The frozen bundle (`models/lite0`, a LightGBM head: shap-cam and occlusion apply).
fn frozen(cache: &Path) -> std::process::Command {
    let mut c = osteoai(cache);
    c.env("OSTEOAI_MODEL", common::root().join("models/lite0"));
    c
}

/// The map's peak falls in the (5%-padded) box of the drawn break for at least 90% of the
/// generated fracture images with Grad-CAM (the default for linear heads), well above the
/// image-centre baseline; every method is reported.
#[test]
fn pointing_game_on_generated_breaks() {
    let cache = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    make_set(cache.path(), &d.join("train"), 60, 20_000);
    make_set(cache.path(), &d.join("val"), 20, 30_000);
    let held_out = d.join("held-out");
    make_set(cache.path(), &held_out, 40, 10_000);
    let model = d.join("model");
    let (code, _, err) = run(osteoai(cache.path())
        .arg("train")
        .arg(d)
        .arg("--finetune")
        .arg("--out")
        .arg(&model)
        .args(["--epochs", "3", "--freeze-epochs", "3", "--device", "cpu"]));
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(osteoai(cache.path())
        .arg("explain")
        .arg(&held_out)
        .arg("--boxes")
        .arg(held_out.join("boxes.csv"))
        .arg("--model")
        .arg(&model)
        .args(["--method", "all", "--format", "json", "--device", "cpu"]));
    assert_eq!(code, 0, "{err}");
    let rows = json_lines(&out);
    let by = |m: &str| {
        rows.iter()
            .find(|r| r["method"] == m)
            .unwrap_or_else(|| panic!("no {m} in {out}"))
    };
    eprintln!("{out}");
    let g = by("grad-cam");
    assert_eq!(g["images"], 40, "only fracture images have boxes");
    let hit = g["pointing"].as_f64().unwrap();
    let centre = g["centre"].as_f64().unwrap();
    assert!(hit >= 0.9, "grad-cam pointing {hit} < 0.9");
    assert!(hit > centre + 0.2, "grad-cam {hit} vs centre {centre}");
    // Its mass sits on the breaks far more than a flat map's would.
    assert!(g["mass_in_boxes"].as_f64().unwrap() > 5.0 * g["area_of_boxes"].as_f64().unwrap());
    for m in ["cam", "head-map", "feature-occlusion", "occlusion"] {
        assert!(by(m)["pointing"].as_f64().is_some());
    }
}

/// On the demo with the frozen LightGBM bundle: one row and one readable overlay PNG per image
/// and method, peaks and boxes inside the image, CSV and JSON, bad files as per-file errors;
/// then the built-in fine-tuned model's default method.
#[test]
fn explain_writes_overlays_and_rows() {
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let pngs = out.path().join("maps");
    let (code, stdout, err) = run(frozen(cache.path())
        .args([
            "explain",
            "fixtures/demo/test",
            "--method",
            "shap-cam,occlusion",
        ])
        .arg("--out")
        .arg(&pngs)
        .args(["--format", "json", "--device", "cpu"]));
    assert_eq!(code, 0, "{err}");
    let rows = json_lines(&stdout);
    assert_eq!(rows.len(), 20, "10 images x 2 methods");
    for r in &rows {
        let path = r["path"].as_str().unwrap();
        let (w, h) = image::image_dimensions(common::root().join(path)).unwrap();
        let (px, py) = (r["peak_x"].as_f64().unwrap(), r["peak_y"].as_f64().unwrap());
        assert!(
            px > 0.0 && px < w as f64 && py > 0.0 && py < h as f64,
            "{r}"
        );
        let (bx, by, bw, bh) = (
            r["box_x"].as_f64().unwrap(),
            r["box_y"].as_f64().unwrap(),
            r["box_w"].as_f64().unwrap(),
            r["box_h"].as_f64().unwrap(),
        );
        assert!(bx >= 0.0 && by >= 0.0 && bw > 0.0 && bh > 0.0, "{r}");
        assert!(
            bx + bw <= w as f64 + 0.5 && by + bh <= h as f64 + 0.5,
            "{r}"
        );
        assert!(
            bx <= px && px <= bx + bw && by <= py && py <= by + bh,
            "peak in its box: {r}"
        );
        assert_eq!(r["class"], "fracture");
        let png = r["overlay"].as_str().unwrap();
        let (fw, fh) = image::image_dimensions(png).unwrap();
        assert_eq!(fw, 2 * w + 8, "original and overlay side by side: {png}");
        assert!(
            fh > h + 40,
            "colour bar and caption under the panels: {png}"
        );
    }
    assert!(
        pngs.join("fracture/fracture_test_00.jpg.shap-cam.png")
            .is_file()
    );
    // The probability is the one classify gives.
    same_p_as_classify(frozen(cache.path()), &rows, FIRST);

    // DICOM: the map of the windowed image the model scores (same probability as classify).
    let dcm = "fixtures/dicom/fracture/mono1-12bit-windows.dcm";
    let (code, ex, err) = run(frozen(cache.path())
        .args([
            "explain", dcm, "--method", "shap-cam", "--format", "json", "--device", "cpu",
        ])
        .arg("--out")
        .arg(&pngs));
    assert_eq!(code, 0, "{err}");
    let (_, cls, _) =
        run(frozen(cache.path()).args(["classify", dcm, "--format", "jsonl", "--device", "cpu"]));
    let want = json_lines(&cls)[0]["p_fracture"].as_f64().unwrap();
    let got = &json_lines(&ex)[0];
    assert!(
        (got["p"].as_f64().unwrap() - want).abs() < 1e-3,
        "{got} vs {want}"
    );
    assert!(Path::new(got["overlay"].as_str().unwrap()).is_file());

    // CSV without images; bad files are rows with an error and exit status 1.
    let (code, stdout, err) = run(frozen(cache.path())
        .args(["explain", "fixtures/bad", "--no-images", "--format", "csv"])
        .args(["--method", "shap-cam", "--device", "cpu"]));
    assert_eq!(code, 1, "{stdout}{err}");
    assert!(stdout.starts_with("path,class,p,method,peak_x,peak_y,box_x,box_y,box_w,box_h"));
    assert!(
        stdout.contains("truncated.jpg") && err.contains("truncated.jpg"),
        "{stdout}"
    );
    assert_eq!(
        stdout.lines().count(),
        5,
        "header and four bad files: {stdout}"
    );

    // A method the model cannot take is refused before any work, naming those it can.
    refuses(frozen(cache.path()), "grad-cam", "occlusion");
    // The built-in model (fine-tuned, a linear head): grad-cam by default, with classify's
    // probability; shap-cam (LightGBM's) refused with the methods it can take.
    let (code, stdout, err) = run(osteoai(cache.path())
        .args([
            "explain",
            "fixtures/demo/test",
            "--no-images",
            "--format",
            "json",
        ])
        .args(["--device", "cpu"]));
    assert_eq!(code, 0, "{err}");
    let rows = json_lines(&stdout);
    assert_eq!(rows.len(), 10);
    assert!(rows.iter().all(|r| r["method"] == "grad-cam"), "{stdout}");
    same_p_as_classify(osteoai(cache.path()), &rows, FIRST);
    refuses(osteoai(cache.path()), "shap-cam", "grad-cam");
}

/// `explain --method M` on the demo is refused (exit 2) before any work, naming `other` among
/// the methods the command's model takes.
fn refuses(mut cmd: std::process::Command, method: &str, other: &str) {
    let (code, _, err) = run(cmd
        .args(["explain", "fixtures/demo/test", "--method", method])
        .args(["--no-images", "--device", "cpu"]));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("{method} does not apply")) && err.contains(other),
        "{err}"
    );
}
