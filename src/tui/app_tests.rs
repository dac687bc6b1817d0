//! Unit tests of the dashboard state: keys, matrix, relabel and undo, marks and export.

use super::app::*;
use super::review::{CellKind, Filter, Item};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use osteoai_core::labels::ClassSpec;
use std::path::{Path, PathBuf};

use crate::tui::review::Sort;

fn key(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

fn app_with(items: Vec<Item>) -> App {
    let mut a = App::new(
        PathBuf::from("/nonexistent-osteoai-root"),
        ClassSpec::fracture_default(),
        0.5,
    );
    a.items = items;
    a.model = Some(ModelInfo {
        name: "m".into(),
        device: "cpu".into(),
        threshold: 0.5,
    });
    a.mark_dirty();
    a.refresh();
    a
}

#[test]
fn threshold_keys_rebin_the_matrix() {
    let mut a = app_with(super::review::tests::sample());
    assert_eq!((a.confusion.tp, a.confusion.fp), (1, 2));
    for _ in 0..10 {
        a.on_key(key(KeyCode::Char('+')));
    }
    assert!((a.threshold - 0.6).abs() < 1e-9);
    assert_eq!((a.confusion.tp, a.confusion.fp), (1, 1));
    a.on_key(key(KeyCode::Char('0')));
    assert_eq!(a.threshold, 0.5);
}

#[test]
fn matrix_cell_selection_filters_the_list() {
    let mut a = app_with(super::review::tests::sample());
    a.on_key(key(KeyCode::Char('m')));
    a.on_key(key(KeyCode::Down)); // actual negative
    a.on_key(key(KeyCode::Enter)); // predicted positive: false positives
    assert_eq!(a.view.cell, Some(CellKind::FalsePositive));
    assert_eq!(a.visible.len(), a.confusion.fp);
    let names: Vec<_> = a
        .visible
        .iter()
        .map(|&i| a.items[i].name.as_str())
        .collect();
    assert_eq!(names, ["c", "e"]);
    a.on_key(key(KeyCode::Esc));
    assert_eq!(a.visible.len(), 7);
}

/// Twelve images "a".."l", two classes alternating, and a fit of them whose held-out
/// probability of each image's own class is `own(name)`.
fn twelve_images_and_their_fit(
    own: impl Fn(&str) -> f64,
) -> (App, osteoai_core::fit::FitReport, Vec<String>) {
    use osteoai_core::fit::{FitParams, Sample, oof::fit_oof};
    use std::sync::atomic::AtomicBool;
    let names: Vec<String> = ('a'..='l').map(String::from).collect();
    let label = |i: usize| i % 2;
    let items = (0..12)
        .map(|i| super::review::tests::item(&names[i], Some(label(i)), Some(0.5)))
        .collect();
    let samples: Vec<Sample> = (0..12)
        .map(|i| Sample {
            path: PathBuf::from(&names[i]),
            label: label(i),
            group: None,
            unit: None,
        })
        .collect();
    let report = fit_oof(
        &samples,
        &ClassSpec::fracture_default().names,
        0,
        &FitParams::default(),
        &AtomicBool::new(false),
        |_, _, held_out| {
            Ok(held_out
                .iter()
                .map(|&i| {
                    let p = own(&names[i]);
                    if label(i) == 0 {
                        vec![p, 1.0 - p]
                    } else {
                        vec![1.0 - p, p]
                    }
                })
                .collect())
        },
    )
    .unwrap();
    (app_with(items), report, names)
}

/// The worker's answer to a fit started now.
fn fit_finishes(a: &mut App, report: osteoai_core::fit::FitReport) {
    a.begin_job("fit");
    let run = a.bg_run;
    a.fit_done(
        run,
        Ok(Box::new(osteoai_core::fit::folder::FitRun {
            report,
            spec: ClassSpec::fracture_default(),
            bundle: PathBuf::from("/nonexistent-osteoai-root/fit"),
        })),
    );
    a.refresh();
}

#[test]
fn a_finished_fit_opens_its_label_issues_at_the_top_one_not_the_image_selected_before() {
    // Held out, "a" (the first by name) looks like the other class and "k" even more so: both
    // are label issues, "k" the top one.
    let (mut a, report, names) = twelve_images_and_their_fit(|n| match n {
        "a" => 0.2,
        "k" => 0.02,
        _ => 0.7,
    });
    assert_eq!(a.selected_item().unwrap().name, "a");
    let issues: Vec<&str> = report
        .ranked_issues()
        .iter()
        .map(|&i| names[i].as_str())
        .collect();
    assert_eq!(issues.first(), Some(&"k"), "{issues:?}");
    assert!(issues.contains(&"a"), "{issues:?}");
    fit_finishes(&mut a, report);
    assert_eq!(a.view.filter, Filter::LabelIssues);
    assert_eq!(a.visible.len(), issues.len());
    assert_eq!(a.selected_item().unwrap().name, "k", "the top label issue");
}

#[test]
fn a_fit_without_label_issues_keeps_every_image_and_says_so() {
    let (mut a, report, _) = twelve_images_and_their_fit(|n| if n == "f" { 0.6 } else { 0.9 });
    assert!(report.ranked_issues().is_empty());
    fit_finishes(&mut a, report);
    assert_eq!(a.view.filter, Filter::All);
    assert_eq!(a.view.sort, Sort::IssueScore);
    assert_eq!(a.visible.len(), 12);
    assert_eq!(
        a.selected_item().unwrap().name,
        "f",
        "the least sure of its label first"
    );
    let status = a.status.clone().unwrap_or_default();
    assert!(status.contains("no likely label errors"), "{status}");
}

#[test]
fn navigation_search_and_sort() {
    let mut a = app_with(super::review::tests::sample());
    a.on_key(key(KeyCode::Char('j')));
    a.on_key(key(KeyCode::Down));
    assert_eq!(a.selected_item().unwrap().name, "c");
    a.on_key(key(KeyCode::Char('G')));
    assert_eq!(a.selected_item().unwrap().name, "g");
    a.on_key(key(KeyCode::Char('/')));
    for c in "d".chars() {
        a.on_key(key(KeyCode::Char(c)));
    }
    a.on_key(key(KeyCode::Enter));
    assert_eq!(a.visible.len(), 1);
    a.on_key(key(KeyCode::Esc));
    a.on_key(key(KeyCode::Char('s')));
    assert_eq!(a.view.sort, Sort::ScoreDesc);
    assert_eq!(
        a.selected_item().unwrap().name,
        "d",
        "selection follows the image"
    );
}

#[test]
fn classify_all_then_cancel_drops_stale_results() {
    let mut a = app_with(super::review::tests::sample());
    let fx = a.on_key(key(KeyCode::Char('a')));
    let Effect::Run(Task::Classify {
        run,
        items,
        replace,
    }) = &fx[0]
    else {
        panic!("{fx:?}")
    };
    assert!(*replace);
    assert_eq!(items.len(), 7);
    let run = *run;
    assert!(a.apply_score(run, 6, Path::new("g"), Ok(0.7), true));
    assert_eq!(a.items[6].score, Some(0.7));
    assert_eq!(a.on_key(key(KeyCode::Esc)), vec![Effect::Cancel]);
    assert!(a.job.is_none());
    // A result of the cancelled run arriving late is ignored.
    assert!(!a.apply_score(run, 0, Path::new("a"), Ok(0.01), true));
    assert_eq!(a.items[0].score, Some(0.9));
}

#[test]
fn classify_selected_jumps_the_queue_of_a_running_job() {
    let mut a = app_with(super::review::tests::sample());
    a.on_key(key(KeyCode::Char('a')));
    let fx = a.on_key(key(KeyCode::Char('c')));
    assert!(
        matches!(&fx[0], Effect::Run(Task::Classify { replace: false, items, .. }) if items.len() == 1)
    );
}

#[test]
fn help_and_quit() {
    let mut a = app_with(vec![]);
    a.on_key(key(KeyCode::Char('?')));
    assert_eq!(a.mode, Mode::Help);
    a.on_key(key(KeyCode::Char('x')));
    assert_eq!(a.mode, Mode::Normal);
    assert!(a.on_key(key(KeyCode::Char('q'))).contains(&Effect::Quit));
}

#[test]
fn relabel_moves_the_file_after_confirmation_and_undo_brings_it_back() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().to_path_buf();
    std::fs::create_dir_all(root.join("test/fracture")).unwrap();
    std::fs::create_dir_all(root.join("test/nofracture")).unwrap();
    std::fs::write(root.join("test/fracture/a.jpg"), b"A").unwrap();
    std::fs::write(root.join("test/nofracture/a.jpg"), b"clash").unwrap();
    let classes = ClassSpec::fracture_default();
    let mut a = App::new(root.clone(), classes.clone(), 0.5);
    a.add_entries(osteoai_core::scan::scan(&root, &classes).entries);
    a.refresh();
    assert_eq!(a.selected_item().unwrap().name, "test/fracture/a.jpg");
    // Anything but y cancels.
    a.on_key(key(KeyCode::Char('R')));
    a.on_key(key(KeyCode::Char('n')));
    assert!(root.join("test/fracture/a.jpg").exists());
    a.on_key(key(KeyCode::Char('R')));
    assert!(matches!(a.mode, Mode::ConfirmRelabel { target: 1, .. }));
    a.on_key(key(KeyCode::Char('y')));
    let moved = root.join("test/nofracture/a (relabelled 1).jpg");
    assert_eq!(std::fs::read(&moved).unwrap(), b"A");
    assert_eq!(
        std::fs::read(root.join("test/nofracture/a.jpg")).unwrap(),
        b"clash"
    );
    assert!(!root.join("test/fracture/a.jpg").exists());
    assert!(
        a.items
            .iter()
            .any(|i| i.path == moved && i.label == Some(1))
    );
    // Undo, from a fresh session (the journal survives a restart).
    let mut b = App::new(root.clone(), classes.clone(), 0.5);
    b.add_entries(osteoai_core::scan::scan(&root, &classes).entries);
    b.refresh();
    b.on_key(key(KeyCode::Char('u')));
    assert_eq!(
        std::fs::read(root.join("test/fracture/a.jpg")).unwrap(),
        b"A"
    );
    assert!(!moved.exists());
    assert!(
        b.items
            .iter()
            .any(|i| i.path == root.join("test/fracture/a.jpg") && i.label == Some(0))
    );
    b.on_key(key(KeyCode::Char('u')));
    assert_eq!(b.status.as_deref(), Some("nothing to undo"));
}

#[test]
fn review_marks_persist_and_export_writes_the_visible_rows() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().to_path_buf();
    std::fs::create_dir_all(root.join("fracture")).unwrap();
    std::fs::write(root.join("fracture/a.jpg"), b"A").unwrap();
    std::fs::write(root.join("fracture/b.jpg"), b"B").unwrap();
    let classes = ClassSpec::fracture_default();
    let mut a = App::new(root.clone(), classes.clone(), 0.5);
    a.add_entries(osteoai_core::scan::scan(&root, &classes).entries);
    a.refresh();
    a.on_key(key(KeyCode::Char(' ')));
    a.on_key(key(KeyCode::Char('j')));
    a.on_key(key(KeyCode::Char('x')));
    let mut b = App::new(root.clone(), classes.clone(), 0.5);
    b.add_entries(osteoai_core::scan::scan(&root, &classes).entries);
    assert!(b.items[0].mark.reviewed && !b.items[0].mark.flagged);
    assert!(b.items[1].mark.flagged);
    b.view.filter = Filter::Unreviewed;
    b.mark_dirty();
    b.refresh();
    b.on_key(key(KeyCode::Char('E')));
    let exported: Vec<_> = std::fs::read_dir(root.join(".osteoai"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("export-"))
        .collect();
    assert_eq!(exported.len(), 1);
    let text = std::fs::read_to_string(exported[0].path()).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.lines().nth(1).unwrap().contains("b.jpg"));
}
