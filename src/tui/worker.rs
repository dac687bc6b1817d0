//! The classification worker: owns the engine (and through it the LightGBM owner thread),
//! loads it off the UI thread, and works through a queue of images a few batches at a time
//! (the engine's pipeline decodes ahead), checking for new orders between groups. Scores are
//! cached on disk per file identity and model.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError};

use osteoai_core::cache::{DiskCache, cache_root, file_key};
use osteoai_core::device::DeviceChoice;
use osteoai_core::engine::Engine;

use super::app::{Effect, ModelInfo, Task};
use super::event::Event;
use super::explain_view::MapKey;

pub enum Order {
    /// A task of the dashboard's (`Effect::Run`).
    Run(Task),
    /// Look up cached scores only (no model run).
    Lookup(Vec<(usize, PathBuf)>),
    Cancel,
    /// A heatmap for the preview; request `generation` (older ones are stale once a newer one
    /// is asked for).
    Explain {
        key: MapKey,
        generation: u64,
    },
}

/// Batches handed to the engine's pipeline at once: enough for its decoding to run ahead
/// of the backbone, few enough that a new order waits well under a second.
const LOOKAHEAD_BATCHES: usize = 4;

/// Handle used by the runtime.
pub struct Worker {
    tx: Sender<Order>,
    /// Set to stop the batch in flight (cancel or replace).
    cancel: Arc<AtomicBool>,
    /// The generation of the latest heatmap asked for.
    explain: Arc<AtomicU64>,
}

impl Worker {
    pub fn start(model_dir: PathBuf, device: DeviceChoice, events: Sender<Event>) -> Worker {
        let (tx, rx) = std::sync::mpsc::channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let c = cancel.clone();
        let explain = Arc::new(AtomicU64::new(0));
        let latest = explain.clone();
        let _ = std::thread::Builder::new()
            .name("classifier".into())
            .spawn(move || serve(model_dir, device, rx, events, c, latest));
        Worker {
            tx,
            cancel,
            explain,
        }
    }

    pub(super) fn from_parts(tx: Sender<Order>, cancel: Arc<AtomicBool>) -> Worker {
        Worker {
            tx,
            cancel,
            explain: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Asks for a heatmap; any asked for before it is stale from now on.
    pub fn explain(&self, key: MapKey) {
        let generation = self.explain.fetch_add(1, Ordering::SeqCst) + 1;
        let _ = self.tx.send(Order::Explain { key, generation });
    }

    pub fn apply(&self, effect: &Effect) {
        match effect {
            Effect::Run(task) => {
                if let Task::Classify { replace: true, .. } = task {
                    self.cancel.store(true, Ordering::SeqCst);
                }
                let _ = self.tx.send(Order::Run(task.clone()));
            }
            Effect::Cancel => {
                self.cancel.store(true, Ordering::SeqCst);
                let _ = self.tx.send(Order::Cancel);
            }
            Effect::Quit => {}
        }
    }

    pub fn lookup(&self, items: Vec<(usize, PathBuf)>) {
        let _ = self.tx.send(Order::Lookup(items));
    }
}

fn serve(
    model_dir: PathBuf,
    choice: DeviceChoice,
    rx: Receiver<Order>,
    events: Sender<Event>,
    cancel: Arc<AtomicBool>,
    latest_explain: Arc<AtomicU64>,
) {
    let loaded = osteoai_core::device::select(choice).and_then(|d| Engine::load(&model_dir, d));
    let mut engine = match loaded {
        Ok(mut e) => {
            // The batch size is the device's (`engine::default_batch`), as for `classify`.
            e.features_cache = Some(osteoai_core::features::default_cache());
            let info = ModelInfo {
                name: e.bundle.name().to_string(),
                device: e.backbone.device.description.clone(),
                threshold: e.manifest().threshold,
            };
            tracing::info!(model = %info.name, device = %info.device, "dashboard engine ready");
            let _ = events.send(Event::EngineReady(Ok(info)));
            e
        }
        Err(err) => {
            tracing::error!(error = %err, "dashboard: no model");
            let _ = events.send(Event::EngineReady(Err(err.to_string())));
            // Keep answering lookups and orders with nothing, until the UI goes away.
            for order in rx {
                match &order {
                    Order::Run(Task::Audit { run, .. }) => {
                        let _ = events.send(Event::AuditDone {
                            run: *run,
                            result: Err("no model loaded".into()),
                        });
                    }
                    Order::Run(Task::Fit { run, .. }) => {
                        let _ = events.send(Event::FitDone {
                            run: *run,
                            result: Err("no model loaded".into()),
                        });
                    }
                    Order::Run(Task::Train { run, .. }) => {
                        let _ = events.send(Event::TrainDone {
                            run: *run,
                            result: Err("no model loaded".into()),
                        });
                    }
                    Order::Explain { key, .. } => {
                        let _ = events.send(Event::Heatmap {
                            key: key.clone(),
                            result: Err("no model loaded: no heatmap".into()),
                            methods: Vec::new(),
                        });
                    }
                    _ => {}
                }
                if let Order::Run(Task::Classify { run, items, .. }) = order {
                    for (index, path) in items {
                        let _ = events.send(Event::Score {
                            run,
                            index,
                            path,
                            result: Err("no model loaded".into()),
                            computed: false,
                        });
                    }
                    let _ = events.send(Event::JobDone { run });
                }
            }
            return;
        }
    };
    let scores = DiskCache::new(cache_root().join("scores"));
    let mut queue: VecDeque<(usize, PathBuf)> = VecDeque::new();
    let mut jobs: VecDeque<Order> = VecDeque::new();
    let mut explain: Option<(MapKey, u64)> = None;
    let mut run = 0u64;
    // When the current classification began and how many images it had, for the log.
    let mut job_start: Option<(std::time::Instant, usize)> = None;
    loop {
        // The model's identity in the score cache (it changes when a fine-tune loads a new one).
        let salt = engine.bundle.fingerprint;
        // Take every pending order; block only when there is nothing to do.
        let mut orders = Vec::new();
        if queue.is_empty() && jobs.is_empty() && explain.is_none() {
            match rx.recv() {
                Ok(o) => orders.push(o),
                Err(_) => return,
            }
        }
        loop {
            match rx.try_recv() {
                Ok(o) => orders.push(o),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return,
            }
        }
        for o in orders {
            match o {
                Order::Run(Task::Classify {
                    run: g,
                    items,
                    replace,
                }) => {
                    if replace {
                        queue = items.into();
                        run = g;
                        job_start = Some((std::time::Instant::now(), queue.len()));
                    } else if g == run {
                        for it in items.into_iter().rev() {
                            queue.push_front(it);
                        }
                    }
                    cancel.store(false, Ordering::SeqCst);
                }
                Order::Cancel => {
                    queue.clear();
                    jobs.clear();
                    cancel.store(false, Ordering::SeqCst);
                }
                job @ (Order::Run(Task::Audit { .. })
                | Order::Run(Task::Fit { .. })
                | Order::Run(Task::Train { .. })) => {
                    cancel.store(false, Ordering::SeqCst);
                    jobs.push_back(job);
                }
                // Only the latest map is worth making.
                Order::Explain { key, generation } => explain = Some((key, generation)),
                Order::Lookup(items) => {
                    for (index, path) in items {
                        if let Some(p) = file_key(&path, salt)
                            .and_then(|k| scores.get_f32(k))
                            .and_then(|v| v.first().copied())
                        {
                            let _ = events.send(Event::Cached {
                                index,
                                path,
                                p: p as f64,
                            });
                        }
                    }
                }
            }
        }
        // A heatmap first: a person is looking at that image now.
        if let Some((key, generation)) = explain.take() {
            super::explain_worker::explain_job(&engine, key, generation, &latest_explain, &events);
            continue;
        }
        if let Some(job) = jobs.pop_front() {
            if let Order::Run(Task::Train {
                run,
                root,
                overrides,
                patients,
            }) = job
            {
                let job = super::train_worker::TrainJob {
                    run,
                    root: &root,
                    overrides: &overrides,
                    patients,
                };
                super::train_worker::train_job(&mut engine, job, &events, &cancel);
            } else {
                run_job(&engine, job, &events, &cancel);
            }
            cancel.store(false, Ordering::SeqCst);
            continue;
        }
        if queue.is_empty() {
            continue;
        }
        // A few batches: cached scores answer at once, the rest go through the model's pipeline,
        // which decodes the next batch while the backbone runs this one (`cancel` still stops
        // it between batches; other orders wait for the group).
        let mut batch: Vec<(usize, PathBuf)> = Vec::new();
        while batch.len() < engine.backbone.batch_size * LOOKAHEAD_BATCHES
            && let Some((index, path)) = queue.pop_front()
        {
            let key = file_key(&path, salt);
            match key
                .and_then(|k| scores.get_f32(k))
                .and_then(|v| v.first().copied())
            {
                Some(p) => {
                    let _ = events.send(Event::Score {
                        run,
                        index,
                        path,
                        result: Ok(p as f64),
                        computed: false,
                    });
                }
                None => batch.push((index, path)),
            }
        }
        let paths: Vec<PathBuf> = batch.iter().map(|b| b.1.clone()).collect();
        // Features read from the cache run only the head: not counted in the throughput.
        let cached: Vec<bool> = paths
            .iter()
            .map(|p| engine.has_cached_features(p))
            .collect();
        engine.classify_stream(&paths, &cancel, |k, result| {
            let (index, path) = batch[k].clone();
            if let (Ok(p), Some(key)) = (&result, file_key(&path, salt)) {
                scores.put_f32(key, &[*p as f32]);
            }
            if let Err(e) = &result {
                tracing::warn!(path = %path.display(), error = %e, "not scored");
            }
            let _ = events.send(Event::Score {
                run,
                index,
                path,
                result,
                computed: !cached[k],
            });
        });
        if queue.is_empty() && !cancel.load(Ordering::SeqCst) {
            if let Some((t, n)) = job_start.take() {
                let secs = t.elapsed().as_secs_f64();
                tracing::info!(run, images = n, secs, "classification done");
            }
            let _ = events.send(Event::JobDone { run });
        }
    }
}

/// An audit or a fit, on this thread (it owns the engine); progress and the outcome as events.
fn run_job(engine: &Engine, job: Order, events: &Sender<Event>, cancel: &AtomicBool) {
    match job {
        Order::Run(Task::Audit {
            run,
            root,
            entries,
            classes,
            patients,
        }) => {
            let progress = |stage: osteoai_core::audit::Stage, done: usize, total: usize| {
                let _ = events.send(Event::JobProgress {
                    run,
                    stage: stage.name().to_string(),
                    done,
                    total,
                });
            };
            // `Sender` is not `Sync`: a mutex makes the callback shareable across the audit's
            // worker threads.
            let progress = std::sync::Mutex::new(progress);
            let t = std::time::Instant::now();
            let result = osteoai_core::audit::audit_folder(
                &root,
                &entries,
                Vec::new(),
                Some(engine),
                &classes,
                &osteoai_core::audit::AuditParams {
                    patients,
                    ..Default::default()
                },
                cancel,
                &|s, d, t| (progress.lock().unwrap_or_else(|p| p.into_inner()))(s, d, t),
            );
            match &result {
                Ok(_) => {
                    tracing::info!(root = %root.display(), secs = t.elapsed().as_secs_f64(), "audit done")
                }
                Err(e) => tracing::warn!(root = %root.display(), error = %e, "audit failed"),
            }
            let _ = events.send(Event::AuditDone {
                run,
                result: result.map(Box::new).map_err(String::from),
            });
        }
        Order::Run(Task::Fit {
            run,
            root,
            files,
            groups,
            units,
        }) => {
            let t = std::time::Instant::now();
            let result = osteoai_core::fit::folder::fit_folder(
                &root,
                &files,
                engine,
                &osteoai_core::fit::FitParams::default(),
                &groups,
                &units,
                None,
                None,
                "osteoai dashboard: O (fit the folder)",
                cancel,
                |done, total| {
                    let _ = events.send(Event::JobProgress {
                        run,
                        stage: "features for the fit".into(),
                        done,
                        total,
                    });
                },
            );
            match &result {
                Ok(_) => {
                    tracing::info!(root = %root.display(), secs = t.elapsed().as_secs_f64(), "fit done")
                }
                Err(e) => tracing::warn!(root = %root.display(), error = %e, "fit failed"),
            }
            let _ = events.send(Event::FitDone {
                run,
                result: result.map(Box::new).map_err(String::from),
            });
        }
        _ => {}
    }
}

#[cfg(test)]
#[path = "worker_tests.rs"]
mod tests;
