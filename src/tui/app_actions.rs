//! What the dashboard does to the user's files and jobs: relabel and undo through the
//! journal (atomic, reversible, logged), review marks, export, and the audit's start and end.

use super::app::{App, BgJob, Effect, Mode, Task, name_of};
use super::audit_view::AuditState;
use super::fit_view::Source;
use super::review::{CellKind, cell_of};
use osteoai_core::journal::Journal;
use osteoai_core::marks::Mark;
use osteoai_core::scan::Entry;
use std::path::Path;
use std::time::Instant;

impl App {
    /// Asks to move image `i` into another class folder: the fit's suggestion in the out-of-fold
    /// view, else the next class.
    pub fn begin_relabel(&mut self, i: usize) {
        let current = self.items[i].label;
        let suggested = self.items[i]
            .oof
            .as_ref()
            .filter(|_| self.source == Source::OutOfFold)
            .map(|o| o.suggested)
            .filter(|s| Some(*s) != current);
        let target = match (suggested, current) {
            (Some(s), _) => s,
            (None, Some(c)) => (c + 1) % self.classes.names.len(),
            (None, None) => self.positive,
        };
        self.mode = Mode::ConfirmRelabel { index: i, target };
    }

    /// Starts an audit of the folder on the worker.
    pub fn start_audit(&mut self) -> Vec<Effect> {
        if self.model.is_none() {
            self.say(match &self.model_error {
                Some(e) => format!("no model (its backbone gives the embeddings): {e}"),
                None => "the model is still loading".into(),
            });
            return vec![];
        }
        if self.bg.is_some() {
            self.say("a job is running (Esc cancels it)");
            return vec![];
        }
        let classes = self.model_classes.clone();
        let entries: Vec<Entry> = self
            .items
            .iter()
            .map(|it| Entry {
                path: it.path.clone(),
                label: classes.label_of(&self.root, &it.path),
                split: it.split,
            })
            .collect();
        self.begin_job("audit");
        vec![Effect::Run(Task::Audit {
            run: self.bg_run,
            root: self.root.clone(),
            entries,
            classes,
            patients: self.patients.clone(),
        })]
    }

    pub(super) fn begin_job(&mut self, kind: &'static str) {
        self.bg_run += 1;
        self.bg = Some(BgJob {
            kind,
            run: self.bg_run,
            stage: "starting".into(),
            done: 0,
            total: 0,
            started: Instant::now(),
        });
    }

    pub(super) fn cancel_bg(&mut self) {
        if let Some(b) = self.bg.take() {
            self.say(format!("{} cancelled", b.kind));
        }
        self.bg_run += 1;
        self.pending_fit = false;
    }

    pub fn job_progress(&mut self, run: u64, stage: String, done: usize, total: usize) {
        if let Some(b) = self.bg.as_mut().filter(|b| b.run == run) {
            b.stage = stage;
            b.done = done;
            b.total = total;
        }
    }

    /// A finished audit: the Audit view gets it, the items their tags; a fit waiting for it starts.
    pub fn audit_done(
        &mut self,
        run: u64,
        result: Result<Box<osteoai_core::audit::report::Report>, String>,
    ) -> Vec<Effect> {
        if self.bg.as_ref().is_none_or(|b| b.run != run) {
            return vec![];
        }
        self.bg = None;
        match result.and_then(|r| AuditState::new(*r, &self.root)) {
            Ok(a) => {
                let n = a.findings.len();
                self.audit = Some(a);
                self.apply_audit_tags();
                self.say(format!("audit done: {n} findings"));
                if self.pending_fit {
                    return self.start_fit();
                }
            }
            Err(e) => {
                self.pending_fit = false;
                self.say(format!("audit failed: {e}"));
            }
        }
        vec![]
    }

    pub(super) fn toggle_mark(&mut self, f: impl Fn(&mut Mark)) {
        let Some(i) = self.selected_index() else {
            return;
        };
        let mut m = self.items[i].mark;
        f(&mut m);
        match self.marks.set(&self.items[i].path, m) {
            Ok(()) => {
                self.items[i].mark = m;
                self.dirty = true;
            }
            Err(e) => self.say(format!("cannot save review mark: {e}")),
        }
    }

    pub(super) fn journal(&mut self) -> Result<&mut Journal, String> {
        if self.journal.is_none() {
            let j = Journal::open(&self.root)?;
            if let Some(last) = j.recovered.last() {
                self.say(format!(
                    "journal: settled {} interrupted move(s); last: {last}",
                    j.recovered.len()
                ));
            }
            self.journal = Some(j);
        }
        Ok(self.journal.as_mut().expect("just opened"))
    }

    pub(super) fn relabel(&mut self, index: usize, target: usize) {
        let from = self.items[index].path.clone();
        let root = self.root.clone();
        let classes = self.classes.clone();
        let result = self
            .journal()
            .and_then(|j| Ok(j.relabel(&root, &classes, &from, target)?));
        match result {
            Ok(m) => {
                let _ = self.marks.rename(&m.from, &m.to);
                let item = &mut self.items[index];
                item.path = m.to.clone();
                item.name = name_of(&root, &m.to);
                item.label = Some(target);
                if let (Some(o), Source::OutOfFold) = (item.oof.as_mut(), self.source) {
                    o.label = target;
                }
                self.follow_move(&m.from, &m.to);
                self.dirty = true;
                self.say(format!("moved to {} (u: undo)", name_of(&root, &m.to)));
            }
            Err(e) => self.say(format!("relabel refused: {e}")),
        }
    }

    /// The audit's report follows a moved file (its label from the model's classes).
    pub(super) fn follow_move(&mut self, from: &Path, to: &Path) {
        let label = self
            .model_classes
            .label_of(&self.root, to)
            .map(|l| self.model_classes.names[l].clone());
        if let Some(a) = self.audit.as_mut() {
            a.moved(from, to, label);
            self.apply_audit_tags();
        }
    }

    pub fn undo(&mut self) {
        let root = self.root.clone();
        match self.journal().and_then(|j| Ok(j.undo_last()?)) {
            Ok(Some(m)) => {
                let _ = self.marks.rename(&m.to, &m.from);
                self.follow_move(&m.to, &m.from);
                if let Some(item) = self.items.iter_mut().find(|i| i.path == m.to) {
                    item.path = m.from.clone();
                    item.name = name_of(&root, &m.from);
                    item.label = self.classes.label_of(&root, &m.from);
                    if let (Some(o), Some(l), Source::OutOfFold) =
                        (item.oof.as_mut(), item.label, self.source)
                    {
                        o.label = l;
                    }
                }
                self.dirty = true;
                self.say(format!("restored {}", name_of(&root, &m.from)));
            }
            Ok(None) => self.say("nothing to undo"),
            Err(e) => self.say(e),
        }
    }

    /// Writes the visible list with scores and marks to `.osteoai/export-<time>.csv`.
    pub fn export(&mut self) {
        let mut csv = format!(
            "path,split,label,p_{},predicted,correct,reviewed,flagged,error\n",
            self.classes.positive
        );
        for &i in &self.visible {
            let it = &self.items[i];
            let cell = cell_of(it, self.positive, self.threshold);
            let predicted = it.score.map(|p| {
                osteoai_core::engine::predicted_class_at(&self.classes, self.threshold, p)
                    .to_string()
            });
            let q = osteoai_core::text::csv_field;
            csv.push_str(&format!(
                "{},{},{},{},{},{},{},{},{}\n",
                q(&it.path.display().to_string()),
                it.split.map(|s| s.to_string()).unwrap_or_default(),
                it.label
                    .map(|l| self.classes.names[l].clone())
                    .unwrap_or_default(),
                it.score.map(|p| format!("{p:.6}")).unwrap_or_default(),
                predicted.unwrap_or_default(),
                match cell {
                    Some(CellKind::TruePositive | CellKind::TrueNegative) => "yes",
                    Some(_) => "no",
                    None => "",
                },
                it.mark.reviewed,
                it.mark.flagged,
                q(it.error.as_deref().unwrap_or(""))
            ));
        }
        let dir = self.root.join(osteoai_core::journal::SIDECAR);
        let stamp = osteoai_core::timefmt::now_rfc3339().replace(':', "");
        let path = dir.join(format!("export-{stamp}.csv"));
        let r = std::fs::create_dir_all(&dir)
            .map_err(|e| e.to_string())
            .and_then(|_| osteoai_core::train::atomic_write(&path, csv.as_bytes()));
        match r {
            Ok(()) => self.say(format!(
                "exported {} rows to {}",
                self.visible.len(),
                path.display()
            )),
            Err(e) => self.say(format!("export failed: {e}")),
        }
    }
}
