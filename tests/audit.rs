//! `osteoai audit` and `osteoai split` through the real binary on the generated audit fixture,
//! whose answers are known (`osteoai_core::fixtures::audit::EXPECTED`): augmented copies (rotated,
//! sheared, mirrored, re-exposed) found, different drawings that share a marker not flagged,
//! leaks and conflicts reported, quality flags raised, the CI gate, decisions honoured, a
//! leak-free re-split, and the same answers with every file renamed.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::{osteoai, root, run, tree};
use osteoai_core::fixtures::audit::EXPECTED;

/// A private copy of the audit fixture (tests may write decisions into it).
fn fixture_copy(dir: &Path) -> PathBuf {
    let dest = dir.join("audit");
    for (rel, bytes) in osteoai_core::fixtures::audit::files() {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    dest
}

fn audit_json(cache: &Path, dir: &Path, extra: &[&str]) -> serde_json::Value {
    let (code, out, err) = run(osteoai(cache)
        .arg("audit")
        .arg(dir)
        .args(["--format", "json", "--device", "cpu"])
        .args(extra));
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).expect("JSON report")
}

fn rel(dir: &Path, p: &str) -> String {
    Path::new(p)
        .strip_prefix(dir)
        .unwrap_or(Path::new(p))
        .to_string_lossy()
        .into_owned()
}

/// Counted pairs as sorted relative path pairs.
fn copies(v: &serde_json::Value, dir: &Path) -> BTreeSet<(String, String)> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "near_duplicate" || f["kind"] == "exact_duplicate")
        .map(|f| {
            let (a, b) = (
                rel(dir, f["path"].as_str().unwrap()),
                rel(dir, f["other"].as_str().unwrap()),
            );
            if a < b { (a, b) } else { (b, a) }
        })
        .collect()
}

fn expected_copies() -> BTreeSet<(String, String)> {
    EXPECTED
        .copies
        .iter()
        .map(|(a, b)| {
            if a < b {
                (a.to_string(), b.to_string())
            } else {
                (b.to_string(), a.to_string())
            }
        })
        .collect()
}

fn kinds(v: &serde_json::Value, kind: &str, dir: &Path) -> BTreeSet<String> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == kind)
        .map(|f| rel(dir, f["path"].as_str().unwrap()))
        .collect()
}

#[test]
fn audit_finds_the_known_copies_leaks_conflicts_and_quality_problems() {
    let work = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let dir = fixture_copy(work.path());
    let v = audit_json(cache.path(), &dir, &[]);
    assert_eq!(
        copies(&v, &dir),
        expected_copies(),
        "exactly the copies, no drawing mistaken for another"
    );
    let leaked = kinds(&v, "leak", &dir);
    let want: BTreeSet<String> = EXPECTED.leaked.iter().map(|s| s.to_string()).collect();
    assert_eq!(leaked, want);
    let conflicts = kinds(&v, "label_conflict", &dir);
    assert_eq!(conflicts.len(), EXPECTED.conflicts.len());
    for (a, b) in EXPECTED.conflicts {
        assert!(
            conflicts.contains(*a) || conflicts.contains(*b),
            "{a} / {b}: {conflicts:?}"
        );
    }
    for (kind, path) in EXPECTED.quality {
        assert!(kinds(&v, kind, &dir).contains(*path), "{kind} {path}");
    }
    // No quality flag on an ordinary drawing.
    let ordinary = [
        "train/fracture/f0.jpg",
        "val/nofracture/v1.jpg",
        "test/fracture/t0.jpg",
    ];
    for q in [
        "dark",
        "bright",
        "blurry",
        "low_information",
        "odd_size",
        "odd_aspect",
        "color",
    ] {
        for o in ordinary {
            assert!(!kinds(&v, q, &dir).contains(o), "{q} on {o}");
        }
    }
    // Leakage per split pair, and the model's metrics with and without the leaked images.
    let leakage = v["leakage"].as_array().unwrap();
    let share = |h: &str, into: &str| {
        leakage
            .iter()
            .find(|l| l["split"] == h && l["into"] == into)
            .map(|l| (l["leaked"].as_u64().unwrap(), l["of"].as_u64().unwrap()))
            .unwrap()
    };
    assert_eq!(share("val", "train"), (1, 4));
    assert_eq!(share("test", "train"), (3, 6));
    assert_eq!(share("test", "val"), (0, 6));
    let inf = v["inflation"].as_array().unwrap();
    assert_eq!(inf.len(), 2);
    assert_eq!(inf[1]["leaked_only"]["n"], 3);
    assert_eq!(v["balance"]["all"]["fracture"], 12);
}

/// A cold audit embeds with one forward of each image (half the classifier's CNN work: it
/// also averages each image with its mirror) and says so; once `eval` has cached the
/// classifier's features the audit uses them: the same copies and leaks, no note, and
/// inflation figures equal to eval's own metrics.
#[test]
fn a_cold_audit_takes_one_forward_then_the_classifiers_features_once_cached() {
    let work = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let dir = fixture_copy(work.path());
    let one_forward = |v: &serde_json::Value| {
        v["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains("one forward"))
    };
    let cold = audit_json(cache.path(), &dir, &[]);
    assert!(one_forward(&cold), "{}", cold["notes"]);
    assert_eq!(copies(&cold, &dir), expected_copies());
    let (code, out, err) = run(osteoai(cache.path())
        .arg("eval")
        .arg(&dir)
        .args(["--format", "json", "--device", "cpu"]));
    assert_eq!(code, 0, "{err}");
    let eval: serde_json::Value = serde_json::from_str(&out).unwrap();
    let warm = audit_json(cache.path(), &dir, &[]);
    assert!(!one_forward(&warm), "{}", warm["notes"]);
    assert_eq!(copies(&warm, &dir), copies(&cold, &dir));
    assert_eq!(kinds(&warm, "leak", &dir), kinds(&cold, "leak", &dir));
    for inf in warm["inflation"].as_array().unwrap() {
        let split = inf["split"].as_str().unwrap();
        let (a, b) = (
            inf["all"]["roc_auc"].as_f64().unwrap(),
            eval["sets"][split]["roc_auc"].as_f64().unwrap(),
        );
        assert!((a - b).abs() < 1e-9, "{split}: audit {a}, eval {b}");
    }
}

#[test]
fn csv_is_one_row_per_finding_and_max_leakage_is_a_gate() {
    let cache = tempfile::tempdir().unwrap();
    let dir = root().join("fixtures/audit");
    let (code, out, err) = run(osteoai(cache.path()).arg("audit").arg(&dir).args([
        "--format",
        "csv",
        "--device",
        "cpu",
        "--max-leakage",
        "0.9",
    ]));
    assert_eq!(code, 0, "{err}");
    let mut lines = out.lines();
    assert_eq!(lines.next().unwrap(), "kind,path,other,score,detail");
    let known = [
        "unreadable",
        "exact_duplicate",
        "near_duplicate",
        "leak",
        "label_conflict",
        "dark",
        "bright",
        "low_information",
        "blurry",
        "odd_size",
        "odd_aspect",
        "color",
    ];
    let mut leaks = 0;
    for l in lines {
        let kind = l.split(',').next().unwrap();
        assert!(known.contains(&kind), "{l}");
        if kind == "leak" {
            leaks += 1;
            let cols: Vec<&str> = l.splitn(5, ',').collect();
            assert!(
                cols[1].contains("/val/") || cols[1].contains("/test/"),
                "{l}"
            );
            assert!(cols[2].contains("/train/"), "the copy in train: {l}");
        }
    }
    assert_eq!(leaks, EXPECTED.leaked.len());
    // 50% of test/ leaks: a gate at 40% fails with status 1 and says why.
    let (code, _, err) = run(osteoai(cache.path()).arg("audit").arg(&dir).args([
        "--format",
        "csv",
        "--device",
        "cpu",
        "--max-leakage",
        "0.4",
    ]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("exceeds --max-leakage"), "{err}");
    // The table: a summary first.
    let (code, table, _) = run(osteoai(cache.path())
        .arg("audit")
        .arg(&dir)
        .args(["--device", "cpu"]));
    assert_eq!(code, 0);
    assert!(table.starts_with("audit of"), "{table}");
    assert!(table.contains("test -> train"), "{table}");
}

#[test]
fn a_dismissed_pair_no_longer_counts_and_a_confirmed_one_does() {
    let work = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let dir = fixture_copy(work.path());
    let (a, b) = ("train/fracture/f1.jpg", "val/fracture/f1-rotated.jpg");
    // Two different drawings, confirmed by a person as the same radiograph.
    let (c, d) = ("train/fracture/f0.jpg", "val/nofracture/v2.jpg");
    std::fs::create_dir_all(dir.join(".osteoai")).unwrap();
    std::fs::write(
        dir.join(".osteoai/audit.json"),
        serde_json::json!({"version": 1, "pairs": [
            {"a": a, "b": b, "decision": "dismissed", "at": "2026-11-27T00:00:00Z"},
            {"a": c, "b": d, "decision": "confirmed", "at": "2026-11-27T00:00:00Z"},
        ]})
        .to_string(),
    )
    .unwrap();
    let v = audit_json(cache.path(), &dir, &[]);
    let leaked = kinds(&v, "leak", &dir);
    assert!(!leaked.contains(b), "dismissed: {leaked:?}");
    assert!(leaked.contains(d), "confirmed: {leaked:?}");
    assert!(
        kinds(&v, "label_conflict", &dir)
            .iter()
            .any(|p| p == c || p == d),
        "f0 and v2 differ in label"
    );
    // A damaged decisions file is an error, never silently replaced.
    std::fs::write(dir.join(".osteoai/audit.json"), "{ oops").unwrap();
    let (code, _, err) = run(osteoai(cache.path())
        .arg("audit")
        .arg(&dir)
        .args(["--device", "cpu"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("damaged"), "{err}");
}

#[test]
fn renamed_files_give_the_same_answers() {
    // Content, not names: every file gets a meaningless name in its folder.
    let work = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let dir = work.path().join("renamed");
    let mut names = std::collections::BTreeMap::new();
    for (k, (rel, bytes)) in osteoai_core::fixtures::audit::files()
        .into_iter()
        .enumerate()
    {
        let rel = rel.strip_prefix("audit").unwrap().to_path_buf();
        let ext = rel.extension().unwrap().to_string_lossy().into_owned();
        let new = rel.parent().unwrap().join(format!(
            "{:08x}.{ext}",
            (k as u64 + 7) * 2654435761 % 4294967291
        ));
        std::fs::create_dir_all(dir.join(new.parent().unwrap())).unwrap();
        std::fs::write(dir.join(&new), bytes).unwrap();
        names.insert(
            new.to_string_lossy().into_owned(),
            rel.to_string_lossy().into_owned(),
        );
    }
    let v = audit_json(cache.path(), &dir, &[]);
    let back: BTreeSet<String> = kinds(&v, "leak", &dir)
        .iter()
        .map(|p| names[p].clone())
        .collect();
    let want: BTreeSet<String> = EXPECTED.leaked.iter().map(|s| s.to_string()).collect();
    assert_eq!(back, want);
}

#[test]
fn split_keeps_copies_together_never_touches_the_source_and_audits_clean() {
    let work = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let dir = fixture_copy(work.path());
    let before = tree(&dir);
    let out = work.path().join("resplit");
    // Dry run: the plan, nothing written.
    let (code, plan, err) = run(osteoai(cache.path())
        .arg("split")
        .arg(&dir)
        .arg("--out")
        .arg(&out)
        .args([
            "--ratios",
            "0.5,0.25,0.25",
            "--seed",
            "3",
            "--dry-run",
            "--device",
            "cpu",
        ]));
    assert_eq!(code, 0, "{err}");
    assert!(plan.contains("4 before, 0 after"), "{plan}");
    assert!(!out.exists());
    let (code, _, err) = run(osteoai(cache.path())
        .arg("split")
        .arg(&dir)
        .arg("--out")
        .arg(&out)
        .args([
            "--ratios",
            "0.5,0.25,0.25",
            "--seed",
            "3",
            "--device",
            "cpu",
        ]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(tree(&dir), before, "the source folder is unchanged");
    let manifest = std::fs::read_to_string(out.join("split-manifest.csv")).unwrap();
    assert_eq!(manifest.lines().count(), 1 + before.len());
    // The same seed gives the same split.
    let out2 = work.path().join("resplit2");
    let (code, _, _) = run(osteoai(cache.path())
        .arg("split")
        .arg(&dir)
        .arg("--out")
        .arg(&out2)
        .args([
            "--ratios",
            "0.5,0.25,0.25",
            "--seed",
            "3",
            "--device",
            "cpu",
        ]));
    assert_eq!(code, 0);
    assert_eq!(tree(&out2), tree(&out));
    // Auditing the new split: no copy crosses a split.
    let v = audit_json(cache.path(), &out, &[]);
    for l in v["leakage"].as_array().unwrap() {
        assert_eq!(l["leaked"], 0, "{l}");
    }
    assert_eq!(
        copies(&v, &out).len(),
        expected_copies().len(),
        "the copies are still there, in one split each"
    );
    // Refuses to write over a folder that has files.
    let (code, _, err) = run(osteoai(cache.path())
        .arg("split")
        .arg(&dir)
        .arg("--out")
        .arg(&out)
        .args(["--device", "cpu"]));
    assert_eq!(code, 2);
    assert!(err.contains("not empty"), "{err}");
    // The recorded split rebuilt from its manifest for a copy of the folder elsewhere, with no
    // audit: the same files in the same places (only the manifest's sources differ).
    let moved = fixture_copy(&work.path().join("elsewhere"));
    let out3 = work.path().join("rebuilt");
    let (code, said, err) = run(osteoai(cache.path())
        .arg("split")
        .arg(&moved)
        .arg("--from")
        .arg(out.join("split-manifest.csv"))
        .arg("--out")
        .arg(&out3));
    assert_eq!(code, 0, "{err}");
    assert!(
        said.contains("recorded files not found, 0 files not in the record")
            && said.contains(" 0 recorded files not found"),
        "{said}"
    );
    let files = |t: Vec<(PathBuf, Vec<u8>)>| -> Vec<(PathBuf, Vec<u8>)> {
        t.into_iter()
            .filter(|(p, _)| p != Path::new("split-manifest.csv"))
            .collect()
    };
    assert_eq!(files(tree(&out3)), files(tree(&out)));
    // A folder the record does not name is refused.
    let other = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(other.path().join("train/fracture")).unwrap();
    std::fs::copy(
        root()
            .join("fixtures/demo/test/fracture")
            .read_dir()
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path(),
        other.path().join("train/fracture/unrelated.jpg"),
    )
    .unwrap();
    let (code, _, err) = run(osteoai(cache.path())
        .arg("split")
        .arg(other.path())
        .arg("--from")
        .arg(out.join("split-manifest.csv"))
        .arg("--out")
        .arg(work.path().join("none")));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no file of"), "{err}");
}
