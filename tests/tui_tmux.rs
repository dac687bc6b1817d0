//! End to end, in a real terminal: tmux runs the dashboard on a copy of the demo fixtures;
//! keys classify the folder, open a matrix cell, relabel a file and undo it, and quit. What a
//! person would see is read back with capture-pane: the matrix equals `osteoai eval` on the same
//! folder, and every file is where it started.

mod common;

use std::path::Path;

use common::tmux::{Tmux, have_tmux, quit};
use common::{copy_tree, osteoai, root, run, tree};

/// The two rows of the confusion matrix as drawn: [[tp, fn], [fp, tn]].
fn matrix(screen: &str) -> [[u64; 2]; 2] {
    let lines: Vec<&str> = screen.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains("actual\\pred"))
        .unwrap_or_else(|| panic!("no matrix on screen:\n{screen}"));
    let nums = |l: &str| -> Vec<u64> {
        // The matrix sits in the right panel: take the numbers after the last "│ " border.
        let panel = l.rsplit_once("│ ").map(|(_, r)| r).unwrap_or(l);
        panel
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .filter_map(|s| s.parse().ok())
            .collect()
    };
    let (a, b) = (nums(lines[at + 1]), nums(lines[at + 2]));
    assert!(
        a.len() >= 2 && b.len() >= 2,
        "cannot read the matrix:\n{}\n{}",
        lines[at + 1],
        lines[at + 2]
    );
    [
        [a[a.len() - 2], a[a.len() - 1]],
        [b[b.len() - 2], b[b.len() - 1]],
    ]
}

/// The dashboard on `dir` in a new tmux session of 120x40.
fn start(name: &str, dir: &Path, cache: &Path) -> Tmux {
    let t = common::tmux::dashboard(name, dir, cache, "");
    t.wait_for("the model", |s| s.contains("CPU (osteoai kernels"));
    t
}

#[test]
fn audit_view_in_tmux_walks_a_finding_dismisses_it_and_remembers_after_a_restart() {
    if !have_tmux() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    for (rel, bytes) in osteoai_core::fixtures::audit::files() {
        let p = work.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    let dir = work.path().join("audit");
    let cache = tempfile::tempdir().unwrap();
    let t = start("audit", &dir, cache.path());
    t.keys(&["A"]);
    let s = t.wait_for("the audit", |s| s.contains("audit done"));
    assert!(s.contains("leaks (held-out with a copy in train)"), "{s}");
    // The first leak, then the second: a pair side by side with its evidence.
    t.keys(&["j"]);
    let s = t.wait_for("the pair", |s| s.contains("2 of 4"));
    assert!(s.contains("▶1") && s.contains("train"), "{s}");
    t.keys(&["n"]);
    t.wait_for("the dismissal", |s| s.contains("pair dismissed"));
    let saved = std::fs::read_to_string(dir.join(".osteoai/audit.json")).unwrap();
    assert!(saved.contains("\"dismissed\""), "{saved}");
    quit(&t);
    // A new session finds the decision: one leak fewer, the pair under "dismissed by you".
    let t = start("audit2", &dir, cache.path());
    t.keys(&["A"]);
    let s = t.wait_for("the audit again", |s| s.contains("audit done"));
    assert!(s.contains("dismissed by you"), "{s}");
    assert!(s.contains("3  leaks"), "{s}");
    quit(&t);
}

#[test]
fn fit_in_tmux_walks_the_top_label_issue_relabels_and_undoes() {
    if !have_tmux() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let wrong = common::make_three_class_folder(work.path());
    let before = tree(work.path());
    let cache = tempfile::tempdir().unwrap();
    let t = start("fit", work.path(), cache.path());
    t.keys(&["O"]);
    let s = t.wait_for("the fit", |s| s.contains("fitted:"));
    assert!(s.contains("scores: out of fold"), "{s}");
    assert!(s.contains("label issues (fit)"), "{s}");
    // The top of the label-issue list is the injected error, with the fit's suggestion, and the
    // cursor is on it: the preview's title names it (not the image selected before the fit).
    let first = s
        .lines()
        .find(|l| l.starts_with('│') && l.contains(".png"))
        .unwrap_or_else(|| panic!("no list:\n{s}"));
    assert!(first.contains("mislabelled.png"), "{s}");
    let preview = s
        .lines()
        .find(|l| l.starts_with('┌'))
        .and_then(|l| l.rsplit_once('┌'))
        .map(|(_, title)| title)
        .unwrap_or_else(|| panic!("no preview:\n{s}"));
    assert!(preview.contains("mislabelled.png"), "{s}");
    assert!(s.contains("lab\\pred"), "a 3x3 matrix:\n{s}");
    t.keys(&["R"]);
    let s = t.wait_for("the confirmation", |s| s.contains("y: move"));
    assert!(s.contains("to class rings"), "{s}");
    t.keys(&["y"]);
    t.wait_for("the move", |s| s.contains("moved to"));
    assert!(!Path::new(&wrong).exists());
    assert!(work.path().join("rings/mislabelled.png").exists());
    t.keys(&["u"]);
    t.wait_for("the undo", |s| s.contains("restored"));
    assert_eq!(tree(work.path()), before, "every file is back");
    quit(&t);
}

#[test]
fn dashboard_in_tmux_classifies_filters_relabels_and_undoes() {
    if !have_tmux() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let demo = work.path().join("demo");
    copy_tree(&root().join("fixtures/demo"), &demo);
    let before = tree(&demo);
    let cache = tempfile::tempdir().unwrap();
    let t = start("e2e", &demo, cache.path());
    t.wait_for("the 16 images", |s| s.contains("16 images"));
    assert!(t.screen().contains("NOT FOR CLINICAL USE"));
    t.keys(&["a"]);
    let s = t.wait_for("the run to finish", |s| s.contains("last run"));
    let shown = matrix(&s);

    // The same folder through the headless evaluation (same cache, same model).
    let (code, out, err) = run(osteoai(cache.path())
        .args(["eval", "--format", "json", "--device", "cpu"])
        .arg(&demo));
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let c = &v["sets"]["all"]["confusion"];
    let expected = [
        [c["tp"].as_u64().unwrap(), c["fn"].as_u64().unwrap()],
        [c["fp"].as_u64().unwrap(), c["tn"].as_u64().unwrap()],
    ];
    assert_eq!(shown, expected, "dashboard matrix vs osteoai eval:\n{s}");

    // Open the first non-empty matrix cell: the list shows exactly its images.
    let cells = [
        ("true positives", 0, 0),
        ("false negatives", 0, 1),
        ("false positives", 1, 0),
        ("true negatives", 1, 1),
    ];
    let (name, row, col) = cells
        .into_iter()
        .find(|(_, r, c)| shown[*r][*c] > 0)
        .unwrap();
    t.keys(&["m"]);
    if row == 1 {
        t.keys(&["Down"]);
    }
    if col == 1 {
        t.keys(&["Right"]);
    }
    t.keys(&["Enter"]);
    let want = format!("{} of 16", shown[row][col]);
    t.wait_for(&format!("the {name} cell ({want})"), |s| {
        s.contains(&want) && s.contains(name)
    });

    // Relabel the selected image, then undo.
    t.keys(&["R"]);
    t.wait_for("the confirmation", |s| s.contains("y: move"));
    t.keys(&["y"]);
    t.wait_for("the move", |s| s.contains("moved to"));
    assert_ne!(tree(&demo), before, "the relabel moved a file");
    t.keys(&["u"]);
    t.wait_for("the undo", |s| s.contains("restored"));
    assert_eq!(tree(&demo), before, "every file is back where it started");
    quit(&t);
}

#[test]
fn finetune_in_tmux_shows_an_epoch_stops_on_esc_and_loads_the_best_model() {
    if !have_tmux() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let mut seed = 3000;
    for (split, n) in [("train", 24), ("val", 8)] {
        for (class, fracture) in [("fracture", true), ("nofracture", false)] {
            let d = work.path().join(split).join(class);
            std::fs::create_dir_all(&d).unwrap();
            for i in 0..n {
                osteoai_core::fixtures::radiograph(seed, fracture, 96, 96)
                    .save(d.join(format!("{i}.png")))
                    .unwrap();
                seed += 1;
            }
        }
    }
    let cache = tempfile::tempdir().unwrap();
    let conf = cache.path().join("config/osteoai");
    std::fs::create_dir_all(&conf).unwrap();
    // Small and slow enough to stop in the middle: every layer learns, at 64 px.
    std::fs::write(
        conf.join("config.toml"),
        "[finetune]\nepochs = 30\nsize = 64\nbatch = 4\nfrozen_blocks = 0\n",
    )
    .unwrap();
    let t = start("finetune", work.path(), cache.path());
    t.keys(&["T"]);
    t.wait_for("the confirmation", |s| s.contains("y: start"));
    t.keys(&["y"]);
    let s = t.wait_for("an epoch", |s| s.contains("best val ROC AUC"));
    assert!(s.contains("fine-tuning the CNN"), "{s}");
    t.keys(&["Escape"]);
    // The built-in model is a fine-tuned one too: the status line names the new bundle.
    let s = t.wait_for("the new model", |s| s.contains("fine-tuned model in"));
    assert!(!s.contains("fine-tuning ended"), "{s}");
    let bundle = work.path().join(".osteoai/models/finetuned");
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bundle.join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(m["training"]["interrupted"], true, "{}", m["training"]);
    let epochs = m["training"]["history"].as_array().unwrap().len();
    assert!((1..30).contains(&epochs), "{epochs} epochs");
    // The folder is scored again with the new model: the matrix fills.
    let s = t.wait_for("scores of the new model", |s| s.contains("actual\\pred"));
    eprintln!("{s}");
    quit(&t);
}
