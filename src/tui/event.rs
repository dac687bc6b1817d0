//! The one event type of the dashboard: input, scan results, scores, images, ticks.

use std::path::PathBuf;

use crossterm::event::KeyEvent;
use osteoai_core::scan::Entry;

use super::app::ModelInfo;
use super::images::{ImgEntry, ImgKey};

pub enum Event {
    /// A key and when it arrived (latency measurement).
    Key(KeyEvent, std::time::Instant),
    Mouse(crossterm::event::MouseEvent),
    Resize,
    Tick,
    /// Images found by the scan, in order.
    Scanned(Vec<Entry>),
    ScanIssue(PathBuf, String),
    ScanDone,
    EngineReady(Result<ModelInfo, String>),
    /// A line for the status bar from a worker.
    Note(String),
    /// A score of job `run`; `computed` is false when it came from a cache (the score's, or the
    /// features': only the head ran), so that the throughput is the model's.
    Score {
        run: u64,
        index: usize,
        path: PathBuf,
        result: Result<f64, String>,
        computed: bool,
    },
    /// A cached score found by a lookup (no job).
    Cached {
        index: usize,
        path: PathBuf,
        p: f64,
    },
    JobDone {
        run: u64,
    },
    /// Progress of the audit or fit job `run`.
    JobProgress {
        run: u64,
        stage: String,
        done: usize,
        total: usize,
    },
    AuditDone {
        run: u64,
        result: Result<Box<osteoai_core::audit::report::Report>, String>,
    },
    FitDone {
        run: u64,
        result: Result<Box<osteoai_core::fit::folder::FitRun>, String>,
    },
    /// Progress of the fine-tuning job `run`.
    Train {
        run: u64,
        update: super::train_view::TrainUpdate,
    },
    /// A line for the training panel (what the audit before the fine-tune found).
    TrainNote {
        run: u64,
        text: String,
    },
    /// The fine-tuning job `run` ended: the bundle it wrote (already loaded by the worker), or
    /// why there is none.
    TrainDone {
        run: u64,
        result: Result<PathBuf, String>,
    },
    /// A heatmap for the preview (or why there is none), with the methods the model supports.
    Heatmap {
        key: super::explain_view::MapKey,
        result: Result<(std::sync::Arc<osteoai_core::explain::Heatmap>, bool), String>,
        methods: Vec<osteoai_core::explain::Method>,
    },
    /// A prepared image, for the picker of that generation.
    Image(ImgKey, ImgEntry, u64),
    /// An answer of the terminal to the capability query (raw control sequence).
    Reply(Vec<u8>),
    /// SIGTERM, SIGHUP, SIGINT or SIGQUIT: restore the terminal and exit.
    Signal(i32),
}
