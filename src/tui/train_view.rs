//! Fine-tuning the open folder from the dashboard: `T` asks, `y` starts it on the worker (it
//! owns the engine), the training panel shows the epoch, ETA and learning curves live; Esc stops
//! it after the current step (the checkpoint and the best model so far are kept); when it ends
//! the worker loads the new bundle and every image is scored again with it.

use std::path::PathBuf;

use osteoai_core::finetune::EpochStats;

use super::app::{App, Effect, Mode, Task};

/// What the worker reports while training: the library's own progress events.
pub use osteoai_core::finetune::Event as TrainUpdate;

/// The training panel's state.
#[derive(Debug, Clone, Default)]
pub struct TrainPanel {
    pub run: u64,
    pub epoch: usize,
    pub epochs: usize,
    pub batch: usize,
    pub batches: usize,
    pub loss: f64,
    pub img_s: f64,
    pub eta_s: f64,
    pub evaluating: bool,
    pub history: Vec<EpochStats>,
    /// Set when the run has ended: what happened.
    pub finished: Option<String>,
    /// What the audit before the run found (copies of train in val/test, a re-split).
    pub notes: Vec<String>,
}

impl App {
    /// `T`: ask before a long job.
    pub fn ask_train(&mut self) -> Vec<Effect> {
        if self.model.is_none() {
            self.say(match &self.model_error {
                Some(e) => format!("no model to fine-tune: {e}"),
                None => "the model is still loading".to_string(),
            });
            return vec![];
        }
        if self.bg.is_some() {
            self.say("a job is running (Esc cancels it)");
            return vec![];
        }
        self.mode = Mode::ConfirmTrain;
        vec![]
    }

    /// The answer to `ask_train`.
    pub fn confirm_train(&mut self, yes: bool) -> Vec<Effect> {
        self.mode = Mode::Normal;
        if !yes {
            self.say("fine-tuning not started");
            return vec![];
        }
        self.begin_job("fine-tune");
        self.train = Some(TrainPanel {
            run: self.bg_run,
            ..TrainPanel::default()
        });
        vec![Effect::Run(Task::Train {
            run: self.bg_run,
            root: self.root.clone(),
            overrides: self.finetune.clone(),
            patients: self.patients.clone(),
        })]
    }

    pub fn train_update(&mut self, run: u64, u: TrainUpdate) {
        let Some(p) = self.train.as_mut().filter(|p| p.run == run) else {
            return;
        };
        match u {
            TrainUpdate::Step {
                epoch,
                epochs,
                batch,
                batches,
                loss,
                img_s,
                eta_s,
            } => {
                p.epoch = epoch;
                p.epochs = epochs;
                p.batch = batch;
                p.batches = batches;
                p.loss = loss;
                p.img_s = img_s;
                p.eta_s = eta_s;
                p.evaluating = false;
            }
            TrainUpdate::Evaluating { epoch } => {
                p.epoch = epoch;
                p.evaluating = true;
            }
            TrainUpdate::Epoch(s) => {
                p.evaluating = false;
                p.history.push(s);
            }
            TrainUpdate::Resumed { .. } | TrainUpdate::Checkpoint { .. } => return,
        }
        if let Some(b) = self.bg.as_mut().filter(|b| b.run == run) {
            b.stage = format!("epoch {}/{}", p.epoch, p.epochs.max(p.epoch));
            b.done = p.batch;
            b.total = p.batches;
        }
        self.mark_dirty();
    }

    /// A finding of the audit before the run, kept on the panel.
    pub fn train_note(&mut self, run: u64, text: String) {
        if let Some(p) = self.train.as_mut().filter(|p| p.run == run) {
            p.notes.push(text);
            self.mark_dirty();
        }
    }

    /// Drops the old model's scores (the matrix follows).
    fn clear_model_scores(&mut self) {
        let shown = self.source == super::fit_view::Source::Model;
        for it in &mut self.items {
            it.model_score = None;
            if shown {
                it.score = None;
                it.error = None;
            }
        }
        self.refresh();
    }

    /// The end of a run (finished, stopped or failed). With a bundle, the worker has already
    /// loaded it: every image is scored again.
    pub fn train_done(&mut self, run: u64, result: Result<PathBuf, String>) -> Vec<Effect> {
        if self.bg.as_ref().is_some_and(|b| b.run == run) {
            self.bg = None;
        }
        let Some(p) = self.train.as_mut().filter(|p| p.run == run) else {
            return vec![];
        };
        match result {
            Ok(bundle) => {
                // Maps of the previous model are stale.
                self.explain.clear();
                let msg = format!(
                    "fine-tuned model in {}: scoring every image with it",
                    bundle.display()
                );
                p.finished = Some(msg.clone());
                self.say(msg);
                let items: Vec<(usize, PathBuf)> = self
                    .items
                    .iter()
                    .enumerate()
                    .map(|(i, it)| (i, it.path.clone()))
                    .collect();
                self.clear_model_scores();
                self.start_job(items)
            }
            Err(e) => {
                p.finished = Some(format!("fine-tuning ended: {e}"));
                self.say(format!("fine-tuning ended: {e}"));
                vec![]
            }
        }
    }
}
