//! The fine-tuning job on the worker thread (it owns the engine): first the audit's check of
//! the folder's splits (how many val/test images have a copy or the same patient in train; a
//! grouped re-split in memory when the configuration asks), then the fine-tune, then the new
//! bundle loaded in place of the old model.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;

use osteoai_core::audit::patients::PatientOptions;
use osteoai_core::audit::{AuditParams, Stage};
use osteoai_core::engine::Engine;
use osteoai_core::finetune::regroup::{check, leak_line, leaked, needs_check};
use osteoai_core::finetune::{Overrides, folder};
use osteoai_core::train::Splits;

use super::app::ModelInfo;
use super::event::Event;

/// One fine-tuning order.
pub struct TrainJob<'a> {
    pub run: u64,
    pub root: &'a Path,
    pub overrides: &'a Overrides,
    pub patients: PatientOptions,
}

/// The audit before the fine-tune, its findings as notes on the panel. `Ok(None)`: train on
/// the folder's own splits; `Err`: stop (cancelled, or the re-split that was asked for failed).
fn check_splits(
    engine: &Engine,
    job: &TrainJob,
    seed: u64,
    events: &Sender<Event>,
    cancel: &AtomicBool,
) -> Result<Option<Splits>, String> {
    let run = job.run;
    let note = |text: String| {
        let _ = events.send(Event::TrainNote { run, text });
    };
    let classes = engine.manifest().classes.clone();
    if !needs_check(job.root, &classes, job.overrides.regroup) {
        return Ok(None);
    }
    let progress = |stage: Stage, done: usize, total: usize| {
        let _ = events.send(Event::JobProgress {
            run,
            stage: format!("audit: {}", stage.name()),
            done,
            total,
        });
    };
    // `Sender` is not `Sync`: the audit's threads share the callback through a mutex.
    let progress = Mutex::new(progress);
    let params = AuditParams {
        patients: job.patients.clone(),
        ..Default::default()
    };
    let found = check(
        job.root,
        Some(engine),
        &classes,
        &params,
        job.overrides.regroup,
        seed,
        cancel,
        &|s, d, t| (progress.lock().unwrap_or_else(|p| p.into_inner()))(s, d, t),
    );
    let found = match found {
        Ok(f) => f,
        Err(e) if cancel.load(Ordering::SeqCst) => {
            return Err(format!("stopped during the audit ({e})"));
        }
        Err(e) if job.overrides.regroup => return Err(format!("the grouped re-split failed: {e}")),
        Err(e) => {
            note(format!(
                "the audit of the splits failed ({e}); training on them as they are"
            ));
            return Ok(None);
        }
    };
    // The panel is small: only the splits that do hold copies.
    for l in found.leakage.iter().filter(|l| l.leaked > 0) {
        note(leak_line(l));
    }
    match found.splits {
        Some(splits) => {
            let n = |s| splits.values().filter(|v| **v == s).count();
            use osteoai_core::labels::Split::{Test, Train, Val};
            note(format!(
                "regrouped in memory: {} train, {} val, {} test, no copy or patient across them",
                n(Train),
                n(Val),
                n(Test)
            ));
            Ok(Some(splits))
        }
        None => {
            if leaked(&found.leakage) > 0 {
                note("so val ROC AUC is optimistic: `regroup = true` in the configuration's [finetune] re-splits in memory".into());
            }
            Ok(None)
        }
    }
}

/// Fine-tunes on `root` into `root/.osteoai/models/finetuned` (resuming its checkpoint when
/// one of the same recipe is there), then loads the new bundle in place of `engine`.
pub fn train_job(engine: &mut Engine, job: TrainJob, events: &Sender<Event>, cancel: &AtomicBool) {
    // The dashboard's small-memory setting returns when the fine-tune ends.
    let _memory = crate::options::keep_freed_memory();
    let run = job.run;
    let out = job
        .root
        .join(osteoai_core::journal::SIDECAR)
        .join("models")
        .join("finetuned");
    let device = engine.backbone.device.clone();
    let recipe = job.overrides.recipe(device.is_gpu);
    let splits = match check_splits(engine, &job, recipe.seed, events, cancel) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "fine-tune not started");
            let _ = events.send(Event::TrainDone {
                run,
                result: Err(e),
            });
            return;
        }
    };
    let cfg = folder::FolderConfig {
        data: job.root.to_path_buf(),
        out: out.clone(),
        recipe,
        checkpoint: None,
        resume: true,
        command: "osteoai dashboard: T (fine-tune the folder)".into(),
        head: Default::default(),
        splits,
    };
    let result = folder::finetune_folder(
        &engine.bundle.dir.clone(),
        &engine.manifest().clone(),
        &device,
        &cfg,
        cancel,
        |update| {
            let _ = events.send(Event::Train { run, update });
        },
        |m| tracing::info!(message = m, "fine-tune"),
    );
    let result = match result {
        Ok(r) if r.manifest.is_some() => Engine::load(&out, device)
            .map(|mut e| {
                e.features_cache = Some(osteoai_core::features::default_cache());
                let info = ModelInfo {
                    name: e.bundle.name().to_string(),
                    device: e.backbone.device.description.clone(),
                    threshold: e.manifest().threshold,
                };
                *engine = e;
                let _ = events.send(Event::EngineReady(Ok(info)));
                out.clone()
            })
            .map_err(|e| format!("the new model does not load: {e}")),
        Ok(_) => Err("stopped before the first epoch ended (no model written)".into()),
        Err(e) => Err(e),
    };
    match &result {
        Ok(p) => tracing::info!(bundle = %p.display(), "fine-tune done"),
        Err(e) => tracing::warn!(error = %e, "fine-tune failed"),
    }
    let _ = events.send(Event::TrainDone { run, result });
}
