//! The worker behind `osteoai --scores FILE DIR`: no model, only the scores a run wrote
//! (`classify --output`, `merge`), answered by path the way the model worker answers from its
//! cache, so that the list, the live matrix, filters and review work unchanged — compute on
//! the cluster, review anywhere.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{Receiver, Sender};

use super::app::ModelInfo;
use super::event::Event;
use super::worker::{Order, Worker};

/// What each scanned file scored (or why it did not).
pub type Scores = HashMap<PathBuf, Result<f64, String>>;

impl Worker {
    /// Reads `file` and matches its rows to `root`'s images on its own thread.
    pub fn start_scores(
        file: PathBuf,
        root: PathBuf,
        model: Option<PathBuf>,
        events: Sender<Event>,
    ) -> Worker {
        let (tx, rx) = std::sync::mpsc::channel();
        let _ = std::thread::Builder::new()
            .name("scores".into())
            .spawn(move || match load(&file, &root, &model) {
                Ok((scores, info, notes)) => {
                    let _ = events.send(Event::EngineReady(Ok(info)));
                    for n in notes {
                        tracing::warn!(note = %n, "scores");
                        let _ = events.send(Event::Note(n));
                    }
                    serve(scores, &file, rx, events)
                }
                Err(e) => {
                    let _ = events.send(Event::EngineReady(Err(e)));
                }
            });
        Worker::from_parts(tx, Arc::new(AtomicBool::new(false)))
    }
}

fn load(
    file: &Path,
    root: &Path,
    model: &Option<PathBuf>,
) -> Result<(Scores, ModelInfo, Vec<String>), String> {
    let input = crate::cli::scores_input::load(file, root, model)?;
    let scores: Scores = input
        .rows
        .iter()
        .map(|r| {
            let result = match (r.p, &r.error) {
                (Some(p), _) => Ok(p),
                (None, Some(e)) => Err(e.clone()),
                (None, None) => Err("no score in the scores file".to_string()),
            };
            (PathBuf::from(&r.path), result)
        })
        .collect();
    let info = ModelInfo {
        name: format!("model {}, not loaded", input.model),
        device: format!(
            "scores from {}",
            file.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        ),
        threshold: input.threshold,
    };
    Ok((scores, info, input.notes))
}

fn serve(scores: Scores, file: &Path, rx: Receiver<Order>, events: Sender<Event>) {
    let file = file.display();
    let none =
        |what: &str| format!("{what} needs a model; this dashboard shows the scores of {file}");
    for order in rx {
        match order {
            Order::Lookup(items) => {
                for (index, path) in items {
                    if let Some(Ok(p)) = scores.get(&path) {
                        let p = *p;
                        let _ = events.send(Event::Cached { index, path, p });
                    }
                }
            }
            Order::Classify { run, items, .. } => {
                for (index, path) in items {
                    let result = match scores.get(&path) {
                        Some(r) => r.clone(),
                        None => Err("no score in the scores file".into()),
                    };
                    let _ = events.send(Event::Score {
                        run,
                        index,
                        path,
                        result,
                        computed: false,
                    });
                }
                let _ = events.send(Event::JobDone { run });
            }
            Order::Cancel => {}
            Order::Audit { run, .. } => {
                let _ = events.send(Event::AuditDone {
                    run,
                    result: Err(none("the audit")),
                });
            }
            Order::Fit { run, .. } => {
                let _ = events.send(Event::FitDone {
                    run,
                    result: Err(none("fitting")),
                });
            }
        }
    }
}
