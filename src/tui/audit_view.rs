//! The dashboard's Audit view, as state and keys: the audit's findings grouped by kind, one
//! finding at a time (a pair side by side, or one image), a person's verdict on each pair kept in
//! `DIR/.osteoai/audit.json`, and the audit's tags on the main list's items. No terminal here.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crossterm::event::{KeyCode, KeyEvent};
use osteoai_core::audit::decisions::{Decision, Decisions};
use osteoai_core::audit::report::{Finding, PairKind, Report, analyse};

use super::app::{App, Effect, Layout, Mode};
use super::review::Tags;

/// Kinds in the order the view lists them; `possible` and `dismissed` are review queues of pairs
/// that do not count (yet).
pub const KINDS: &[&str] = &[
    "leak",
    "label_conflict",
    "exact_duplicate",
    "near_duplicate",
    "possible",
    "dismissed",
    "unreadable",
    "dark",
    "bright",
    "low_information",
    "blurry",
    "odd_size",
    "odd_aspect",
    "color",
];

/// The last audit and where the person is in it.
pub struct AuditState {
    pub report: Report,
    pub findings: Vec<Finding>,
    /// (kind, count) for the kinds with findings, in `KINDS` order.
    pub kinds: Vec<(&'static str, usize)>,
    pub kind: usize,
    /// Position within the selected kind.
    pub pos: usize,
    /// Which image of a pair `R` and `Enter` act on (0: path, 1: other).
    pub side: usize,
    pub decisions: Decisions,
}

impl AuditState {
    pub fn new(report: Report, root: &Path) -> Result<AuditState, String> {
        let decisions = Decisions::open(root)?;
        let mut s = AuditState {
            report,
            findings: Vec::new(),
            kinds: Vec::new(),
            kind: 0,
            pos: 0,
            side: 0,
            decisions,
        };
        s.rebuild();
        Ok(s)
    }

    /// Findings of the report plus the review queues, and the kind counts.
    pub fn rebuild(&mut self) {
        let mut f = self.report.findings();
        for (k, p) in self.report.pairs.iter().enumerate() {
            let kind = match (p.kind, p.decision) {
                (_, Some(Decision::Dismissed)) => "dismissed",
                (PairKind::Possible, None) => "possible",
                _ => continue,
            };
            let v = p.verification;
            f.push(Finding {
                kind,
                path: self.report.images[p.a].path.clone(),
                other: self.report.images[p.b].path.clone(),
                score: Some(p.score()),
                detail: v
                    .map(|v| {
                        format!(
                            "{} inliers, aligned rank correlation {:.3}, detail {:.2}",
                            v.inliers, v.score, v.detail
                        )
                    })
                    .unwrap_or_default(),
                pair: Some(k),
            });
        }
        // Review queues: most similar first.
        f.sort_by(|a, b| {
            let ka = KINDS
                .iter()
                .position(|k| *k == a.kind)
                .unwrap_or(KINDS.len());
            let kb = KINDS
                .iter()
                .position(|k| *k == b.kind)
                .unwrap_or(KINDS.len());
            ka.cmp(&kb).then_with(|| match a.kind {
                "possible" | "dismissed" => {
                    b.score.unwrap_or(0.0).total_cmp(&a.score.unwrap_or(0.0))
                }
                _ => std::cmp::Ordering::Equal,
            })
        });
        self.findings = f;
        self.kinds = KINDS
            .iter()
            .map(|k| (*k, self.findings.iter().filter(|f| f.kind == *k).count()))
            .filter(|(_, n)| *n > 0)
            .collect();
        self.kind = self.kind.min(self.kinds.len().saturating_sub(1));
        self.pos = self.pos.min(self.of_kind().len().saturating_sub(1));
    }

    /// Indices (into `findings`) of the selected kind.
    pub fn of_kind(&self) -> Vec<usize> {
        let Some((kind, _)) = self.kinds.get(self.kind) else {
            return Vec::new();
        };
        (0..self.findings.len())
            .filter(|&i| self.findings[i].kind == *kind)
            .collect()
    }

    pub fn current(&self) -> Option<&Finding> {
        self.of_kind().get(self.pos).map(|&i| &self.findings[i])
    }

    /// The image `R` and `Enter` act on.
    pub fn current_path(&self) -> Option<PathBuf> {
        let f = self.current()?;
        let p = if self.side == 1 && !f.other.is_empty() {
            &f.other
        } else {
            &f.path
        };
        Some(PathBuf::from(p))
    }

    /// Records a person's verdict on the current pair and recounts groups and leaks.
    pub fn decide(&mut self, d: Option<Decision>) -> Result<String, String> {
        let Some(k) = self.current().and_then(|f| f.pair) else {
            return Err("not a pair: nothing to confirm or dismiss".into());
        };
        let (a, b) = {
            let p = &self.report.pairs[k];
            (
                PathBuf::from(&self.report.images[p.a].path),
                PathBuf::from(&self.report.images[p.b].path),
            )
        };
        self.decisions.set(&a, &b, d)?;
        self.report.pairs[k].decision = d;
        analyse(&mut self.report);
        self.rebuild();
        Ok(match d {
            Some(Decision::Confirmed) => {
                "pair confirmed as copies (saved in .osteoai/audit.json)".into()
            }
            Some(Decision::Dismissed) => {
                "pair dismissed: not copies (saved in .osteoai/audit.json)".into()
            }
            None => "decision cleared".into(),
        })
    }

    /// A file moved by a relabel (or its undo): the report follows it, with its new label, and
    /// conflicts are recounted.
    pub fn moved(&mut self, from: &Path, to: &Path, label: Option<String>) {
        let (from, to) = (from.display().to_string(), to.display().to_string());
        let mut changed = false;
        for im in self.report.images.iter_mut().filter(|im| im.path == from) {
            im.path = to.clone();
            im.label = label.clone();
            changed = true;
        }
        if changed {
            analyse(&mut self.report);
            self.rebuild();
        }
    }

    /// Tags per image path, for the main list's filters.
    pub fn tags(&self) -> HashMap<PathBuf, Tags> {
        let mut t: HashMap<PathBuf, Tags> = HashMap::new();
        let mut tag = |p: &str, f: &dyn Fn(&mut Tags)| f(t.entry(PathBuf::from(p)).or_default());
        for f in &self.findings {
            match f.kind {
                "leak" => tag(&f.path, &|t| t.leaked = true),
                "exact_duplicate" | "near_duplicate" => {
                    tag(&f.path, &|t| t.duplicate = true);
                    tag(&f.other, &|t| t.duplicate = true);
                }
                "label_conflict" => {
                    tag(&f.path, &|t| t.conflict = true);
                    tag(&f.other, &|t| t.conflict = true);
                }
                "dark" | "bright" | "low_information" | "blurry" | "odd_size" | "odd_aspect"
                | "color" => tag(&f.path, &|t| t.quality = true),
                _ => {}
            }
        }
        t
    }
}

impl App {
    /// Opens the Audit view; starts an audit when there is none yet.
    pub fn open_audit(&mut self) -> Vec<Effect> {
        self.layout = Layout::Audit;
        if self.audit.is_some() || self.bg.is_some() {
            return vec![];
        }
        self.start_audit()
    }

    /// Re-reads tags into the items after the audit changed.
    pub fn apply_audit_tags(&mut self) {
        let tags = self.audit.as_ref().map(|a| a.tags()).unwrap_or_default();
        for it in &mut self.items {
            it.tags = tags.get(&it.path).copied().unwrap_or_default();
        }
        self.mark_dirty();
    }

    pub fn on_audit_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let Some(a) = self.audit.as_mut() else {
            return match key.code {
                KeyCode::Esc | KeyCode::Char('A') => {
                    self.layout = Layout::List;
                    vec![]
                }
                KeyCode::Char('q') => vec![Effect::Cancel, Effect::Quit],
                KeyCode::Char('?') => {
                    self.mode = Mode::Help;
                    vec![]
                }
                _ => vec![],
            };
        };
        let n = a.of_kind().len();
        let mut said: Option<String> = None;
        match key.code {
            KeyCode::Char('j') | KeyCode::Down => a.pos = (a.pos + 1).min(n.saturating_sub(1)),
            KeyCode::Char('k') | KeyCode::Up => a.pos = a.pos.saturating_sub(1),
            KeyCode::Char('g') | KeyCode::Home => a.pos = 0,
            KeyCode::Char('G') | KeyCode::End => a.pos = n.saturating_sub(1),
            KeyCode::Tab | KeyCode::Char(']') | KeyCode::Right | KeyCode::Char('l') => {
                a.kind = (a.kind + 1) % a.kinds.len().max(1);
                a.pos = 0;
            }
            KeyCode::BackTab | KeyCode::Char('[') | KeyCode::Left | KeyCode::Char('h') => {
                a.kind = (a.kind + a.kinds.len().max(1) - 1) % a.kinds.len().max(1);
                a.pos = 0;
            }
            KeyCode::Char('1') => a.side = 0,
            KeyCode::Char('2') => a.side = 1,
            KeyCode::Char('y') => {
                said = Some(a.decide(Some(Decision::Confirmed)).unwrap_or_else(|e| e))
            }
            KeyCode::Char('n') => {
                said = Some(a.decide(Some(Decision::Dismissed)).unwrap_or_else(|e| e))
            }
            KeyCode::Backspace => said = Some(a.decide(None).unwrap_or_else(|e| e)),
            KeyCode::Enter => {
                if let Some(p) = a.current_path() {
                    self.layout = Layout::List;
                    self.view = super::review::View {
                        sort: self.view.sort,
                        multiclass: self.view.multiclass,
                        ..super::review::View::default()
                    };
                    self.mark_dirty();
                    self.refresh();
                    if let Some(pos) = self.visible.iter().position(|&i| self.items[i].path == p) {
                        self.selected = pos;
                    }
                }
                return vec![];
            }
            KeyCode::Char('R') => {
                if let Some(p) = a.current_path()
                    && let Some(i) = self.items.iter().position(|it| it.path == p)
                {
                    self.begin_relabel(i);
                }
                return vec![];
            }
            KeyCode::Char('u') => {
                self.undo();
                return vec![];
            }
            KeyCode::Char('r') => return self.start_audit(),
            KeyCode::Esc | KeyCode::Char('A') => self.layout = Layout::List,
            KeyCode::Char('?') => self.mode = Mode::Help,
            KeyCode::Char('q') => return vec![Effect::Cancel, Effect::Quit],
            _ => {}
        }
        if let Some(s) = said {
            self.apply_audit_tags();
            self.status = Some(s);
        }
        vec![]
    }
}

#[cfg(test)]
mod tests {

    use crossterm::event::KeyModifiers;
    use osteoai_core::audit::report::{Image, Pair};
    use osteoai_core::labels::ClassSpec;

    use super::*;
    use crate::tui::app::ModelInfo;

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    #[test]
    fn a_relabel_from_the_audit_view_moves_the_file_and_the_report_follows() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        for rel in ["train/fracture/a.jpg", "test/fracture/a-copy.jpg"] {
            std::fs::create_dir_all(root.join(rel).parent().unwrap()).unwrap();
            std::fs::write(root.join(rel), rel.as_bytes()).unwrap();
        }
        std::fs::create_dir_all(root.join("test/nofracture")).unwrap();
        let classes = ClassSpec::fracture_default();
        let scan = osteoai_core::scan::scan(root, &classes);
        let images: Vec<Image> = scan
            .entries
            .iter()
            .map(|e| Image::of_entry(e, &classes))
            .collect();
        let mut report = Report {
            root: root.display().to_string(),
            images,
            pairs: vec![Pair {
                a: 0,
                b: 1,
                kind: PairKind::Near,
                similarity: None,
                phash_distance: 9,
                verification: None,
                decision: None,
            }],
            ..Report::default()
        };
        analyse(&mut report);
        let mut app = App::new(root.to_path_buf(), classes, 0.5);
        app.add_entries(scan.entries);
        app.model = Some(ModelInfo {
            name: "m".into(),
            device: "cpu".into(),
            threshold: 0.5,
        });
        app.audit = Some(AuditState::new(report, root).unwrap());
        app.layout = Layout::Audit;
        app.refresh();
        assert_eq!(app.audit.as_ref().unwrap().report.conflicts.len(), 0);
        // The leak's held-out image (side 1 = path), relabelled to nofracture.
        let leaked = app.audit.as_ref().unwrap().current_path().unwrap();
        assert!(leaked.ends_with("test/fracture/a-copy.jpg"), "{leaked:?}");
        app.on_key(key(KeyCode::Char('R')));
        app.on_key(key(KeyCode::Char('y')));
        let moved = root.join("test/nofracture/a-copy.jpg");
        assert!(moved.exists() && !leaked.exists());
        let r = &app.audit.as_ref().unwrap().report;
        assert!(
            r.images
                .iter()
                .any(|im| im.path == moved.display().to_string())
        );
        assert_eq!(
            r.conflicts.len(),
            1,
            "the copies now carry different labels"
        );
        app.on_key(key(KeyCode::Char('u')));
        assert!(leaked.exists());
        assert_eq!(app.audit.as_ref().unwrap().report.conflicts.len(), 0);
    }
}
