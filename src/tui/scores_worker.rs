//! The worker behind `osteoai --scores FILE DIR`: no model, only the scores a run wrote
//! (`classify --output`, `merge`), answered by path the way the model worker answers from its
//! cache, so that the list, the live matrix, filters and review work unchanged — compute on
//! the cluster, review anywhere.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{Receiver, Sender};

use super::app::{ModelInfo, Task};
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
    let input =
        osteoai_core::scores::input::load(file, root, &|| crate::options::model_dir(model))?;
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
            Order::Run(Task::Classify { run, items, .. }) => {
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
            Order::Run(Task::Audit { run, .. }) => {
                let _ = events.send(Event::AuditDone {
                    run,
                    result: Err(none("the audit")),
                });
            }
            Order::Run(Task::Fit { run, .. }) => {
                let _ = events.send(Event::FitDone {
                    run,
                    result: Err(none("fitting")),
                });
            }
            Order::Run(Task::Train { run, .. }) => {
                let _ = events.send(Event::TrainDone {
                    run,
                    result: Err(none("fine-tuning")),
                });
            }
            Order::Explain { key, .. } => {
                let _ = events.send(Event::Heatmap {
                    key,
                    result: Err(none("a heatmap")),
                    methods: Vec::new(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::app::{Effect, Task};
    use osteoai_core::labels::ClassSpec;
    use osteoai_core::scores::{Format, Meta, ScoreRow, writer::write_all};
    use std::time::Duration;

    #[test]
    fn answers_from_the_file_and_refuses_model_work() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        let classes = ClassSpec::fracture_default();
        let mut paths = Vec::new();
        for (i, class) in ["fracture", "nofracture", "fracture"].iter().enumerate() {
            let p = root.join(class).join(format!("{i}.png"));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            image::GrayImage::from_pixel(8, 8, image::Luma([9 * i as u8]))
                .save(&p)
                .unwrap();
            paths.push(p);
        }
        // Scored elsewhere: the rows carry another mount's prefix; the third image has none.
        let rows = vec![
            ScoreRow {
                path: "/cluster/data/fracture/0.png".into(),
                p: Some(0.75),
                ..Default::default()
            },
            ScoreRow {
                path: "/cluster/data/nofracture/1.png".into(),
                error: Some("truncated".into()),
                ..Default::default()
            },
        ];
        let file = dir.path().join("s.jsonl");
        write_all(&file, Format::Jsonl, "fracture", &[], &rows).unwrap();
        Meta {
            osteoai: "t".into(),
            roots: vec!["/cluster/data".into()],
            shard: None,
            images: 3,
            rows: 2,
            complete: true,
            model: "m".into(),
            model_fingerprint: "1".into(),
            classes,
            threshold: 0.6,
            format: Format::Jsonl,
        }
        .write(&file)
        .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let w = Worker::start_scores(file, root.clone(), Some("/nonexistent".into()), tx);
        // The notes (here: one image without a score) go to the status bar; skipped.
        let next = || loop {
            match rx.recv_timeout(Duration::from_secs(10)).unwrap() {
                Event::Note(n) => assert!(n.contains("1 of 3 images"), "{n}"),
                e => return e,
            }
        };
        match next() {
            Event::EngineReady(Ok(info)) => {
                assert_eq!(info.threshold, 0.6);
                assert!(info.device.contains("s.jsonl"));
            }
            _ => panic!("ready first"),
        }
        let items: Vec<(usize, PathBuf)> = paths.iter().cloned().enumerate().collect();
        w.lookup(items.clone());
        match next() {
            Event::Cached { index, p, .. } => assert_eq!((index, p), (0, 0.75)),
            _ => panic!("one cached score"),
        }
        w.apply(&Effect::Run(Task::Classify {
            run: 3,
            items,
            replace: true,
        }));
        let mut results = Vec::new();
        loop {
            match next() {
                Event::Score { index, result, .. } => results.push((index, result)),
                Event::JobDone { run } => {
                    assert_eq!(run, 3);
                    break;
                }
                _ => panic!("scores then done"),
            }
        }
        assert_eq!(results[0], (0, Ok(0.75)));
        assert_eq!(results[1], (1, Err("truncated".to_string())));
        assert!(results[2].1.as_ref().unwrap_err().contains("no score"));
        w.apply(&Effect::Run(Task::Audit {
            run: 4,
            root,
            entries: Vec::new(),
            classes: ClassSpec::fracture_default(),
            patients: Default::default(),
        }));
        match next() {
            Event::AuditDone { run: 4, result } => {
                assert!(result.err().unwrap().contains("needs a model"))
            }
            _ => panic!("the audit is refused"),
        }
    }
}
