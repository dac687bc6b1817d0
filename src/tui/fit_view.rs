//! The dashboard's fit: `O` fits a head to the open folder's own labels (grouped K-fold,
//! out-of-fold scores, likely label errors) on the worker, `o` switches the list and the matrix
//! between the loaded model's scores and the out-of-fold ones. No terminal here.

use std::path::PathBuf;

use osteoai_core::fit::folder::FitRun;
use osteoai_core::labels::ClassSpec;

use super::app::{App, Effect, Mode, Task};
use super::review::{Filter, Oof, Sort, View};

/// Whose scores the list and the matrix show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Model,
    OutOfFold,
}

/// The last fit of the folder, as the dashboard shows it.
#[derive(Clone, Debug)]
pub struct FitInfo {
    pub spec: ClassSpec,
    pub threshold: f64,
    pub folds: usize,
    pub grouped: bool,
    pub roc_auc: Option<f64>,
    pub auc_spread: Option<(f64, f64)>,
    pub issues: usize,
}

impl App {
    /// Starts a fit of the folder; without an audit yet, the audit runs first (its groups keep
    /// copies in one fold).
    pub fn start_fit(&mut self) -> Vec<Effect> {
        if self.model.is_none() {
            self.status = Some(match &self.model_error {
                Some(e) => format!("no model (its backbone gives the features): {e}"),
                None => "the model is still loading".into(),
            });
            return vec![];
        }
        if self.bg.is_some() {
            self.status = Some("a job is running (Esc cancels it)".into());
            return vec![];
        }
        let Some(a) = &self.audit else {
            self.pending_fit = true;
            return self.start_audit();
        };
        let (groups, units) = (a.report.groups_by_path(), a.report.units_by_path());
        let files: Vec<PathBuf> = self.items.iter().map(|i| i.path.clone()).collect();
        self.pending_fit = false;
        self.begin_job("fit");
        vec![Effect::Run(Task::Fit {
            run: self.bg_run,
            root: self.root.clone(),
            files,
            groups,
            units,
        })]
    }

    /// A finished fit: out-of-fold results onto the items, then the out-of-fold view.
    pub fn fit_done(&mut self, run: u64, result: Result<Box<FitRun>, String>) {
        if self.bg.as_ref().is_none_or(|b| b.run != run) {
            return;
        }
        self.bg = None;
        let f = match result {
            Ok(f) => f,
            Err(e) => {
                self.status = Some(format!("fit failed: {e}"));
                return;
            }
        };
        let r = &f.report;
        let by_path: std::collections::HashMap<&PathBuf, usize> = r
            .images
            .iter()
            .enumerate()
            .map(|(k, im)| (&im.path, k))
            .collect();
        for it in &mut self.items {
            it.oof = by_path.get(&it.path).map(|&k| {
                let im = &r.images[k];
                Oof {
                    label: im.label,
                    probs: im.oof.clone(),
                    suggested: im.verdict.suggested,
                    issue_score: im.verdict.issue_score,
                    is_issue: im.verdict.is_issue,
                    reason: im.verdict.reason.clone(),
                }
            });
        }
        let issues = r.ranked_issues().len();
        self.fit = Some(FitInfo {
            spec: f.spec.clone(),
            threshold: r.threshold,
            folds: r.params.folds,
            grouped: r.grouped,
            roc_auc: r.oof.roc_auc,
            auc_spread: r.auc_spread,
            issues,
        });
        self.set_source(Source::OutOfFold);
        // The likely label errors, worst first; with none, every image by issue score.
        self.view.filter = if issues > 0 {
            Filter::LabelIssues
        } else {
            Filter::All
        };
        self.view.sort = Sort::IssueScore;
        self.show_from_top();
        let found = match issues {
            0 => "no likely label errors (all images, by issue score)".to_string(),
            n => format!("{n} likely label errors (filter: label issues)"),
        };
        self.status = Some(format!(
            "fitted: out-of-fold accuracy {:.3}, {found}; bundle in {}",
            r.oof.accuracy,
            f.bundle.display()
        ));
    }

    /// Switches the scores (and, for a fit with other classes, the labels) the view shows.
    pub fn set_source(&mut self, source: Source) {
        let Some(fit) = self.fit.clone() else {
            self.status = Some("no fit yet: O fits the folder".into());
            return;
        };
        self.source = source;
        match source {
            Source::OutOfFold => {
                self.classes = fit.spec.clone();
                self.positive = fit.spec.positive_index().unwrap_or(0);
                self.view.multiclass = fit.spec.names.len() > 2;
                let t = fit.threshold;
                for it in &mut self.items {
                    match &it.oof {
                        Some(o) => {
                            it.label = Some(o.label);
                            it.score = o.probs.get(self.positive).copied();
                        }
                        None => {
                            it.label = None;
                            it.score = None;
                        }
                    }
                }
                self.threshold = t;
            }
            Source::Model => {
                self.classes = self.model_classes.clone();
                self.positive = self.classes.positive_index().unwrap_or(0);
                self.view.multiclass = false;
                for it in &mut self.items {
                    it.label = self.classes.label_of(&self.root, &it.path);
                    it.score = it.model_score;
                }
                self.threshold = self.model.as_ref().map(|m| m.threshold).unwrap_or(0.5);
            }
        }
        self.view.cell = None;
        self.view.cell_n = None;
        self.view.label = None;
        if self.mode != Mode::Normal {
            self.mode = Mode::Normal;
        }
        self.mark_dirty();
    }

    pub fn toggle_source(&mut self) {
        let next = match self.source {
            Source::Model => Source::OutOfFold,
            Source::OutOfFold => Source::Model,
        };
        self.set_source(next);
        if self.fit.is_some() {
            self.status = Some(match next {
                Source::Model => "scores: the loaded model's".into(),
                Source::OutOfFold => "scores: out of fold (the folder's own labels)".into(),
            });
            if next == Source::Model && self.view.filter == Filter::LabelIssues {
                self.view = View {
                    sort: Sort::Name,
                    ..View::default()
                };
            }
        }
    }

    /// Words for the header: which scores are shown.
    pub fn source_name(&self) -> String {
        match (&self.fit, self.source) {
            (Some(f), Source::OutOfFold) => format!(
                "scores: out of fold ({}-fold{})",
                f.folds,
                if f.grouped { ", grouped by copies" } else { "" }
            ),
            _ => "scores: model".into(),
        }
    }
}
