//! The headless commands, driven through the real binary on the generated fixtures.

mod common;

use common::{osteoai, root, run};
use std::path::Path;

fn jsonl(s: &str) -> Vec<serde_json::Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

#[test]
fn classify_reports_every_file_and_keeps_going_past_bad_ones() {
    let cache = tempfile::tempdir().unwrap();
    let (code, out, err) = run(osteoai(cache.path()).args([
        "classify",
        "fixtures/demo",
        "fixtures/odd",
        "fixtures/bad",
        "--format",
        "jsonl",
        "--device",
        "cpu",
    ]));
    assert_eq!(code, 0, "{err}");
    let rows = jsonl(&out);
    assert_eq!(rows.len(), 27, "16 demo + 7 odd + 4 bad images:\n{out}");
    for r in &rows {
        let path = r["path"].as_str().unwrap();
        if path.contains("/bad/") {
            assert!(r["p_fracture"].is_null(), "{r}");
            assert!(r["error"].as_str().unwrap().len() > 5, "{r}");
        } else {
            let p = r["p_fracture"]
                .as_f64()
                .unwrap_or_else(|| panic!("no score: {r}"));
            assert!((0.0..=1.0).contains(&p));
            assert!(r["error"].is_null());
            assert!(["fracture", "nofracture"].contains(&r["predicted"].as_str().unwrap()));
        }
    }
    let by_name = |n: &str| {
        rows.iter()
            .find(|r| r["path"].as_str().unwrap().ends_with(n))
            .unwrap()
            .clone()
    };
    assert!(
        by_name("empty.png")["error"]
            .as_str()
            .unwrap()
            .contains("empty")
    );
    assert!(
        by_name("huge-header.png")["error"]
            .as_str()
            .unwrap()
            .contains("refused")
    );
    assert!(
        by_name("not-an-image.png")["error"]
            .as_str()
            .unwrap()
            .contains("not an image")
    );
    assert_eq!(by_name("fracture_test_00.jpg")["label"], "fracture");
    assert_eq!(by_name("fracture_test_00.jpg")["split"], "test");
    assert!(err.contains("Not for clinical use"), "{err}");
}

#[test]
fn csv_output_goes_to_a_file_and_matches_the_table() {
    let cache = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let csv = out_dir.path().join("scores.csv");
    let (code, _, err) = run(osteoai(cache.path())
        .args([
            "classify",
            "fixtures/demo",
            "--format",
            "csv",
            "--device",
            "cpu",
            "-o",
        ])
        .arg(&csv));
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "path,split,label,p_fracture,predicted,error"
    );
    assert_eq!(lines.count(), 16);
    let (code, table, _) = run(osteoai(cache.path()).args([
        "classify",
        "fixtures/demo/test/fracture",
        "--device",
        "cpu",
    ]));
    assert_eq!(code, 0);
    assert!(table.starts_with("path"), "{table}");
    assert_eq!(table.lines().count(), 6);
}

#[test]
fn eval_agrees_with_classify_and_gates_on_auc() {
    let cache = tempfile::tempdir().unwrap();
    let (code, out, err) = run(osteoai(cache.path()).args([
        "eval",
        "fixtures/demo",
        "--format",
        "json",
        "--device",
        "cpu",
    ]));
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let all = &v["sets"]["all"];
    assert_eq!(all["n"], 16);
    assert_eq!(v["sets"]["test"]["n"], 10);
    assert_eq!(v["sets"]["val"]["n"], 6);
    // Recount the matrix from classify's rows at the same threshold.
    let t = v["threshold"].as_f64().unwrap();
    let (_, rows, _) = run(osteoai(cache.path()).args([
        "classify",
        "fixtures/demo",
        "--format",
        "jsonl",
        "--device",
        "cpu",
    ]));
    let (mut tp, mut fp, mut tn, mut fn_) = (0, 0, 0, 0);
    for r in jsonl(&rows) {
        let pos = r["label"] == "fracture";
        match (pos, r["p_fracture"].as_f64().unwrap() >= t) {
            (true, true) => tp += 1,
            (true, false) => fn_ += 1,
            (false, true) => fp += 1,
            (false, false) => tn += 1,
        }
    }
    let c = &all["confusion"];
    assert_eq!(
        (
            c["tp"].as_u64(),
            c["fp"].as_u64(),
            c["tn"].as_u64(),
            c["fn"].as_u64()
        ),
        (Some(tp), Some(fp), Some(tn), Some(fn_))
    );

    let (code, _, err) = run(osteoai(cache.path()).args([
        "eval",
        "fixtures/demo",
        "--min-auc",
        "1.01",
        "--device",
        "cpu",
    ]));
    assert_eq!(code, 1, "an AUC can never reach 1.01: {err}");
    assert!(err.contains("below --min-auc"));
    let (code, table, _) = run(osteoai(cache.path()).args([
        "eval",
        "fixtures/demo",
        "--min-auc",
        "0",
        "--device",
        "cpu",
    ]));
    assert_eq!(code, 0);
    assert!(
        table.contains("roc_auc") && table.contains("confusion (all)"),
        "{table}"
    );
}

#[test]
fn a_missing_or_broken_model_is_explained() {
    let cache = tempfile::tempdir().unwrap();
    let (code, _, err) =
        run(osteoai(cache.path()).args(["classify", "fixtures/demo", "--model", "/no/such/model"]));
    assert_eq!(code, 2);
    assert!(
        err.contains("/no/such/model") && err.contains("does not exist"),
        "{err}"
    );

    // The shipped default (linear head) and the frozen LightGBM bundle, each damaged in turn.
    for (dir, head) in [
        ("models/default", "head.json"),
        ("models/lite0", "head.txt"),
    ] {
        let broken = tempfile::tempdir().unwrap();
        for f in ["backbone.bpk", head] {
            std::fs::copy(root().join(dir).join(f), broken.path().join(f)).unwrap();
        }
        let manifest = std::fs::read_to_string(root().join(dir).join("manifest.json")).unwrap();
        let mut m: serde_json::Value = serde_json::from_str(&manifest).unwrap();
        m["head"]["num_features"] = serde_json::json!(7);
        std::fs::write(broken.path().join("manifest.json"), m.to_string()).unwrap();
        let (code, _, err) = run(osteoai(cache.path())
            .args(["classify", "fixtures/demo", "--model"])
            .arg(broken.path()));
        assert_eq!(code, 2, "{dir}");
        assert!(err.contains("head expects 7 features"), "{dir}: {err}");

        std::fs::remove_file(broken.path().join(head)).unwrap();
        std::fs::write(broken.path().join("manifest.json"), &manifest).unwrap();
        let (code, _, err) = run(osteoai(cache.path())
            .args(["classify", "fixtures/demo", "--model"])
            .arg(broken.path()));
        assert_eq!(code, 2, "{dir}");
        assert!(
            err.contains("head file") && err.contains("missing"),
            "{dir}: {err}"
        );
    }
}

#[test]
fn committed_fixtures_are_what_the_generator_makes() {
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let (code, _, err) = run(osteoai(cache.path()).arg("make-fixtures").arg(out.path()));
    assert_eq!(code, 0, "{err}");
    let mut n = 0;
    for e in walkdir::WalkDir::new(out.path())
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
    {
        let rel = e.path().strip_prefix(out.path()).unwrap();
        let committed = root().join("fixtures").join(rel);
        assert_eq!(
            std::fs::read(e.path()).unwrap(),
            std::fs::read(&committed).unwrap_or_default(),
            "{} differs from a fresh generation",
            rel.display()
        );
        n += 1;
    }
    assert_eq!(n, osteoai_core::fixtures::all().len());
}

#[cfg(unix)]
#[test]
fn a_symlink_loop_is_reported_not_followed_forever() {
    let cache = tempfile::tempdir().unwrap();
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("fracture");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        root().join("fixtures/demo/test/fracture/fracture_test_00.jpg"),
        dir.join("a.jpg"),
    )
    .unwrap();
    std::os::unix::fs::symlink(t.path(), dir.join("loop")).unwrap();
    let (code, out, err) = run(osteoai(cache.path())
        .args(["classify", "--format", "csv", "--device", "cpu"])
        .arg(t.path()));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(err.contains("loop"), "{err}");
    assert!(Path::new(&t.path().join("fracture/a.jpg")).exists());
}

#[test]
fn completions_and_man_page_come_from_the_real_command_line() {
    let cache = tempfile::tempdir().unwrap();
    let subcommands = [
        "classify", "eval", "audit", "fit", "split", "train", "bench",
    ];
    // bash: the script loads and registers a completion for osteoai.
    let (code, script, err) = run(osteoai(cache.path()).args(["completions", "bash"]));
    assert_eq!(code, 0, "{err}");
    let file = cache.path().join("osteoai.bash");
    std::fs::write(&file, &script).unwrap();
    let o = std::process::Command::new("bash")
        .args(["--norc", "-c"])
        .arg(format!("source {} && complete -p osteoai", file.display()))
        .output()
        .unwrap();
    assert!(
        o.status.success() && String::from_utf8_lossy(&o.stdout).contains("osteoai"),
        "bash completion loads: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    for s in subcommands {
        assert!(script.contains(s), "bash completes {s}");
    }
    assert!(script.contains("--no-mouse") && script.contains("--max-leakage"));
    for (shell, marker) in [("zsh", "#compdef osteoai"), ("fish", "complete -c osteoai")] {
        let (code, out, err) = run(osteoai(cache.path()).args(["completions", shell]));
        assert_eq!(code, 0, "{err}");
        assert!(
            out.contains(marker),
            "{shell}:\n{}",
            &out[..out.len().min(300)]
        );
    }
    let (code, man, err) = run(osteoai(cache.path()).arg("man"));
    assert_eq!(code, 0, "{err}");
    assert!(
        man.starts_with(".ie") || man.contains(".TH osteoai 1"),
        "{man}"
    );
    assert!(man.contains("NOT FOR CLINICAL USE"));
    for s in subcommands {
        assert!(man.contains(&format!("osteoai\\-{s}")), "man lists {s}");
    }
    // An unknown shell is refused with the list of known ones.
    let (code, _, err) = run(osteoai(cache.path()).args(["completions", "tcsh"]));
    assert_ne!(code, 0);
    assert!(err.contains("bash") && err.contains("fish"), "{err}");
}

#[test]
fn the_configuration_file_is_checked_and_a_bad_one_names_its_line() {
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().join("config/osteoai");
    std::fs::create_dir_all(&dir).unwrap();
    let (code, default, err) = run(osteoai(cache.path()).args(["config", "--default"]));
    assert_eq!(code, 0, "{err}");
    assert!(default.contains("[keys]") && default.contains("threshold_step"));
    // Absent, then the printed default, then a typo: the typo's line is named and every
    // command refuses to run with it.
    let (code, out, _) = run(osteoai(cache.path()).arg("config"));
    assert_eq!(code, 0);
    assert!(out.contains("absent"), "{out}");
    std::fs::write(dir.join("config.toml"), &default).unwrap();
    let (code, out, err) = run(osteoai(cache.path()).arg("config"));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(": ok"), "{out}");
    let typo = default.replace("mouse = true", "mouse = true\nmoose = 1");
    let line = typo.lines().position(|l| l.starts_with("moose")).unwrap() + 1;
    std::fs::write(dir.join("config.toml"), &typo).unwrap();
    for args in [vec!["config"], vec!["classify", "fixtures/demo"]] {
        let (code, _, err) = run(osteoai(cache.path()).args(&args));
        assert_eq!(code, 2, "{args:?}");
        assert!(
            err.contains(&format!("line {line}")) && err.contains("moose"),
            "{err}"
        );
    }
    // A configured device is used by the commands (here: the CPU, said on stderr).
    std::fs::write(dir.join("config.toml"), "[model]\ndevice = \"ndarray\"\n").unwrap();
    let (code, _, err) =
        run(osteoai(cache.path()).args(["classify", "fixtures/demo/test/fracture"]));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("ndarray"), "{err}");
}

/// A reader that goes away (`osteoai classify … | head -0`) ends the run quietly: no panic, no
/// crash report, as for any Unix tool.
#[cfg(unix)]
#[test]
fn a_closed_pipe_ends_the_run_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let cache = tempfile::tempdir().unwrap();
    let mut child = osteoai(cache.path())
        .args(["classify", "fixtures/demo", "--device", "cpu"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Closed before the first row is written (the model takes far longer to load).
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("panicked") && !err.contains("crashed"),
        "{err}"
    );
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGPIPE),
        "{:?} {err}",
        out.status
    );
}
