//! Snapshot tests of the Audit view (findings list, a pair side by side, a decision) and of the
//! fit's out-of-fold views (two classes with the label-issue list; three classes with the N x N
//! matrix), rendered with `TestBackend`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use osteoai_core::audit::report::{Image, Pair, PairKind, Report, Verification, analyse};
use osteoai_core::labels::{ClassSpec, Split};
use osteoai_core::marks::Mark;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui_image::picker::Picker;

use super::app::{App, Layout, ModelInfo};
use super::audit_view::AuditState;
use super::fit_view::{FitInfo, Source};
use super::images::Images;
use super::review::{Item, Oof, Tags};
use super::theme::Theme;
use super::ui::draw;

const ROOT: &str = "/data/wrist";

fn key(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

fn render(app: &mut App, w: u16, h: u16) -> String {
    let mut images = Images::offline(Picker::halfblocks());
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| {
        draw(f, app, &mut images, Theme::new(false));
    })
    .unwrap();
    t.backend().to_string()
}

fn item(name: &str, label: Option<usize>, split: Split) -> Item {
    Item {
        path: PathBuf::from(ROOT).join(name),
        name: name.into(),
        split: Some(split),
        label,
        score: None,
        error: None,
        mark: Mark::default(),
        model_score: None,
        tags: Tags::default(),
        oof: None,
    }
}

fn app(items: Vec<Item>) -> App {
    let mut a = App::new(PathBuf::from(ROOT), ClassSpec::fracture_default(), 0.5);
    a.scanning = false;
    a.model = Some(ModelInfo {
        name: "efficientnet-lite0-lightgbm".into(),
        device: "CPU (burn-flex, 2 threads)".into(),
        threshold: 0.5,
    });
    a.items = items;
    a.mark_dirty();
    a
}

fn verified(score: f32, inliers: u32) -> Option<Verification> {
    Some(Verification {
        matches: inliers + 8,
        inliers,
        spread: 0.3,
        score,
        pearson: score - 0.05,
        detail: 0.8,
        overlap: 0.9,
        mirrored: false,
        verified: true,
    })
}

/// A small audit: a leak (augmented copy), an exact duplicate with a label conflict, a possible
/// pair to review, a dark image.
fn audited(decisions: &std::path::Path) -> App {
    let names = [
        ("train/fracture/a.jpg", Some(0), Split::Train),
        ("test/fracture/a-rotated.jpg", Some(0), Split::Test),
        ("train/nofracture/b.jpg", Some(1), Split::Train),
        ("val/fracture/b-copy.jpg", Some(0), Split::Val),
        ("test/nofracture/c.jpg", Some(1), Split::Test),
        ("train/nofracture/d.jpg", Some(1), Split::Train),
    ];
    let images: Vec<Image> = names
        .iter()
        .map(|(n, l, s)| Image {
            path: format!("{ROOT}/{n}"),
            split: Some(*s),
            label: l.map(|l| ["fracture", "nofracture"][l].to_string()),
            group: None,
            patient: None,
        })
        .collect();
    let pair = |a, b, kind, v| Pair {
        a,
        b,
        kind,
        similarity: Some(0.91),
        phash_distance: 12,
        verification: v,
        decision: None,
    };
    let mut r = Report {
        root: ROOT.into(),
        images,
        scan_issues: vec![],
        unreadable: vec![],
        pairs: vec![
            pair(0, 1, PairKind::Near, verified(0.987, 41)),
            pair(2, 3, PairKind::ExactBytes, None),
            pair(4, 5, PairKind::Possible, {
                let mut v = verified(0.81, 7);
                if let Some(v) = v.as_mut() {
                    v.verified = false;
                    v.detail = 0.31;
                }
                v
            }),
        ],
        groups: vec![],
        leakage: vec![],
        leaks: vec![],
        patient_leakage: vec![],
        patient_leaks: vec![],
        conflicts: vec![],
        quality: vec![osteoai_core::audit::quality::QualityFlag {
            index: 5,
            kind: osteoai_core::audit::quality::QualityKind::Dark,
            score: 6.2,
            detail: "log mean grey level -4.2, folder median -1.5, robust z -6.2".into(),
        }],
        balance: BTreeMap::new(),
        inflation: None,
        model: Some("efficientnet-lite0-lightgbm".into()),
        candidates: BTreeMap::new(),
        timing: BTreeMap::new(),
        notes: vec![],
        examined: vec![],
    };
    analyse(&mut r);
    let items = names.iter().map(|(n, l, s)| item(n, *l, *s)).collect();
    let mut a = app(items);
    // Decisions are read from (and written to) a folder's sidecar: a temporary one here.
    a.audit = Some(AuditState::new(r, decisions).unwrap());
    a.apply_audit_tags();
    a.layout = Layout::Audit;
    a
}

#[test]
fn audit_findings_and_a_leaked_pair_side_by_side() {
    let t = tempfile::tempdir().unwrap();
    let mut a = audited(t.path());
    insta::assert_snapshot!("audit_leak_pair", render(&mut a, 120, 30));
    // The next kind: the label conflict of the identical files.
    a.on_key(key(KeyCode::Tab));
    insta::assert_snapshot!("audit_conflict_pair", render(&mut a, 120, 30));
}

#[test]
fn audit_review_queue_and_a_dismissal() {
    let t = tempfile::tempdir().unwrap();
    let mut a = audited(t.path());
    // leak -> conflict -> exact -> near -> possible
    for _ in 0..4 {
        a.on_key(key(KeyCode::Tab));
    }
    insta::assert_snapshot!("audit_possible_pair", render(&mut a, 120, 30));
    a.on_key(key(KeyCode::Char('n')));
    insta::assert_snapshot!("audit_after_dismissal", render(&mut a, 120, 30));
    // The decision is in the folder's audit.json, and read back by a new view.
    let text = std::fs::read_to_string(t.path().join(".osteoai/audit.json")).unwrap();
    assert!(
        text.contains("dismissed") && text.contains("c.jpg"),
        "{text}"
    );
    let again = audited(t.path());
    let d = again.audit.as_ref().unwrap().decisions.all();
    assert_eq!(d.len(), 1);
}

fn oof(label: usize, probs: Vec<f64>, issue: bool) -> Option<Oof> {
    let suggested = (0..probs.len())
        .max_by(|&a, &b| probs[a].total_cmp(&probs[b]))
        .unwrap();
    Some(Oof {
        label,
        issue_score: 1.0 - probs[label],
        is_issue: issue,
        reason: if issue {
            format!(
                "margin rank 1 of the 1 estimated label errors (P {:.2})",
                probs[suggested]
            )
        } else {
            "the prediction agrees with the label".into()
        },
        probs,
        suggested,
    })
}

#[test]
fn out_of_fold_view_walks_the_label_issues() {
    let mut items = vec![
        item("train/fracture/f1.jpg", Some(0), Split::Train),
        item("train/fracture/f2.jpg", Some(0), Split::Train),
        item("train/nofracture/n1.jpg", Some(1), Split::Train),
        item("train/nofracture/n2.jpg", Some(1), Split::Train),
        item("train/nofracture/n3-mislabelled.jpg", Some(1), Split::Train),
    ];
    items[0].oof = oof(0, vec![0.92, 0.08], false);
    items[1].oof = oof(0, vec![0.61, 0.39], false);
    items[2].oof = oof(1, vec![0.10, 0.90], false);
    items[3].oof = oof(1, vec![0.45, 0.55], false);
    items[4].oof = oof(1, vec![0.97, 0.03], true);
    for (it, s) in items.iter_mut().zip([0.9, 0.7, 0.2, 0.4, 0.8]) {
        it.model_score = Some(s);
        it.score = Some(s);
    }
    let mut a = app(items);
    a.fit = Some(FitInfo {
        spec: ClassSpec::fracture_default(),
        threshold: 0.5,
        folds: 5,
        grouped: true,
        roc_auc: Some(0.833),
        auc_spread: Some((0.83, 0.014)),
        issues: 1,
    });
    a.set_source(Source::OutOfFold);
    a.view.filter = super::review::Filter::LabelIssues;
    a.view.sort = super::review::Sort::IssueScore;
    insta::assert_snapshot!("oof_label_issues", render(&mut a, 110, 26));
    a.on_key(key(KeyCode::Char('o')));
    insta::assert_snapshot!("oof_back_to_model_scores", render(&mut a, 110, 26));
}

#[test]
fn out_of_fold_view_of_three_classes_has_a_3x3_matrix() {
    let spec = ClassSpec {
        names: vec!["elbow".into(), "hand".into(), "shoulder".into()],
        positive: "hand".into(),
        aliases: BTreeMap::new(),
    };
    let mut items = vec![
        item("elbow/e1.jpg", None, Split::Train),
        item("elbow/e2.jpg", None, Split::Train),
        item("hand/h1.jpg", None, Split::Train),
        item("hand/h2-mislabelled.jpg", None, Split::Train),
        item("shoulder/s1.jpg", None, Split::Train),
    ];
    items[0].oof = oof(0, vec![0.8, 0.1, 0.1], false);
    items[1].oof = oof(0, vec![0.5, 0.2, 0.3], false);
    items[2].oof = oof(1, vec![0.1, 0.85, 0.05], false);
    items[3].oof = oof(1, vec![0.05, 0.05, 0.9], true);
    items[4].oof = oof(2, vec![0.2, 0.1, 0.7], false);
    let mut a = app(items);
    a.fit = Some(FitInfo {
        spec,
        threshold: 0.5,
        folds: 5,
        grouped: false,
        roc_auc: Some(0.91),
        auc_spread: Some((0.9, 0.05)),
        issues: 1,
    });
    a.set_source(Source::OutOfFold);
    a.view.sort = super::review::Sort::IssueScore;
    insta::assert_snapshot!("oof_three_classes", render(&mut a, 110, 26));
    // The matrix cell (label hand, predicted shoulder) holds exactly the mislabelled image.
    a.on_key(key(KeyCode::Char('m')));
    a.on_key(key(KeyCode::Down));
    a.on_key(key(KeyCode::Right));
    a.on_key(key(KeyCode::Right));
    a.on_key(key(KeyCode::Enter));
    a.refresh();
    assert_eq!(a.visible.len(), 1);
    assert_eq!(a.items[a.visible[0]].name, "hand/h2-mislabelled.jpg");
}
