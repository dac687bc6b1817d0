//! Dashboard state and what each key does to it. Side effects that need a worker (classify,
//! cancel) are returned as `Effect`s for the runtime; file operations on the user's data go
//! through the library's journal (atomic, reversible, logged). No terminal here.

use std::path::{Path, PathBuf};
use std::time::Instant;

use osteoai_core::journal::Journal;
use osteoai_core::labels::ClassSpec;
use osteoai_core::marks::Marks;
use osteoai_core::metrics::{Confusion, Metrics};
use osteoai_core::scan::Entry;

use super::audit_view::AuditState;
use super::fit_view::{FitInfo, Source};
use super::review::{Item, Tags, View, matrix, visible};

/// What the runtime must do after a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Quit,
    /// Stop the running job and drop the queued work.
    Cancel,
    /// Hand this task to the worker.
    Run(Task),
}

/// Long work the worker runs for the dashboard, as job `run` (results of an older run are
/// stale and dropped). The worker's orders carry the same type.
#[derive(Debug, Clone, PartialEq)]
pub enum Task {
    /// Score these items (index, path); `replace` drops the queued work first.
    Classify {
        run: u64,
        items: Vec<(usize, PathBuf)>,
        replace: bool,
    },
    /// Audit the folder's scanned images.
    Audit {
        run: u64,
        root: PathBuf,
        entries: Vec<Entry>,
        classes: ClassSpec,
        patients: osteoai_core::audit::patients::PatientOptions,
    },
    /// Fit the folder's own labels: `groups` (path -> group of copies) are label evidence,
    /// `units` (copies and one patient's films) stay in one fold.
    Fit {
        run: u64,
        root: PathBuf,
        files: Vec<PathBuf>,
        groups: std::collections::HashMap<PathBuf, usize>,
        units: std::collections::HashMap<PathBuf, usize>,
    },
    /// Fine-tune the CNN on the folder's train/ and val/, then load the result.
    Train {
        run: u64,
        root: PathBuf,
        overrides: osteoai_core::finetune::Overrides,
        patients: osteoai_core::audit::patients::PatientOptions,
    },
}

/// An audit or fit running on the worker.
#[derive(Debug, Clone)]
pub struct BgJob {
    pub kind: &'static str,
    pub run: u64,
    pub stage: String,
    pub done: usize,
    pub total: usize,
    pub started: Instant,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Normal,
    /// Typing a name search.
    Search(String),
    /// Choosing a matrix cell (row: actual, col: predicted; 0 = positive).
    Matrix {
        row: usize,
        col: usize,
    },
    /// Waiting for y/n to move `index` into class `target`.
    ConfirmRelabel {
        index: usize,
        target: usize,
    },
    Help,
    /// Window/level keys on the preview (`w`).
    Window,
    /// Waiting for y/n to start fine-tuning.
    ConfirmTrain,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    List,
    Grid,
    Roc,
    /// The audit's findings, a pair side by side.
    Audit,
}

/// The model as the dashboard shows it (filled in once the engine has loaded).
#[derive(Debug, Clone)]
pub struct ModelInfo {
    pub name: String,
    pub device: String,
    pub threshold: f64,
}

/// A classification run in progress.
#[derive(Debug, Clone)]
pub struct Job {
    pub run: u64,
    pub total: usize,
    pub done: usize,
    /// Images actually computed (not read from the cache), for the throughput.
    pub computed: usize,
    pub started: Instant,
}

pub struct App {
    pub root: PathBuf,
    pub classes: ClassSpec,
    pub positive: usize,
    pub items: Vec<Item>,
    pub scanning: bool,
    pub scan_issues: Vec<(PathBuf, String)>,
    pub model: Option<ModelInfo>,
    pub model_error: Option<String>,
    pub threshold: f64,
    pub view: View,
    pub layout: Layout,
    pub mode: Mode,
    /// Position of the selection in `visible`.
    pub selected: usize,
    pub visible: Vec<usize>,
    pub confusion: Confusion,
    pub metrics: Option<Metrics>,
    pub job: Option<Job>,
    /// The last finished or cancelled run: done, total, throughput (images/s) when computed.
    pub last_run: Option<(usize, usize, Option<f64>)>,
    pub run: u64,
    pub status: Option<String>,
    pub grid_columns: usize,
    pub page: usize,
    /// The model's classes (`classes` is the fit's in the out-of-fold view).
    pub model_classes: ClassSpec,
    pub audit: Option<AuditState>,
    pub fit: Option<FitInfo>,
    pub source: Source,
    /// The audit or fit in progress.
    pub bg: Option<BgJob>,
    /// Counter of audit and fit jobs (stale results are dropped).
    pub bg_run: u64,
    /// Clickable areas of the last frame (see `mouse`).
    pub hits: Vec<(ratatui::layout::Rect, super::mouse::Hit)>,
    /// The preview fills the body (`z` or a click on it).
    pub zoom: bool,
    /// Threshold step of `+ - ] [` (`{ }` step five times as far); from the configuration.
    pub threshold_step: f64,
    /// Grid cell size in columns and rows; from the configuration.
    pub thumbnail: (u16, u16),
    /// Rebound keys of the main views: pressed → default (None: does nothing).
    pub keymap: Vec<(char, Option<char>)>,
    /// Fit once the audit that `O` started has finished.
    pub pending_fit: bool,
    /// The fine-tuning panel (shown in place of the preview while it is there).
    pub train: Option<super::train_view::TrainPanel>,
    /// The recipe's settings from the configuration file (`[finetune]`).
    pub finetune: osteoai_core::finetune::Overrides,
    /// Where the audit and fit learn which films belong to one patient (`--groups`,
    /// `--group-dir`, DICOM).
    pub patients: osteoai_core::audit::patients::PatientOptions,
    /// Window/level of the preview and the metadata panel.
    pub wl: super::window_level::WindowLevel,
    /// The heatmap overlay on the preview (`e`).
    pub explain: super::explain_view::ExplainState,
    pub(super) journal: Option<Journal>,
    pub(super) marks: Marks,
    pub(super) dirty: bool,
}

pub(super) fn name_of(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

impl App {
    pub fn new(root: PathBuf, classes: ClassSpec, threshold: f64) -> App {
        let positive = classes.positive_index().unwrap_or(0);
        let marks = Marks::open(&root);
        let status = marks.damaged.clone();
        App {
            journal: None,
            marks,
            root,
            model_classes: classes.clone(),
            audit: None,
            fit: None,
            source: Source::Model,
            bg: None,
            bg_run: 0,
            pending_fit: false,
            train: None,
            finetune: Default::default(),
            patients: Default::default(),
            classes,
            positive,
            items: Vec::new(),
            scanning: true,
            scan_issues: Vec::new(),
            model: None,
            model_error: None,
            threshold,
            view: View::default(),
            layout: Layout::List,
            mode: Mode::Normal,
            selected: 0,
            visible: Vec::new(),
            confusion: Confusion::default(),
            metrics: None,
            job: None,
            last_run: None,
            run: 0,
            status,
            grid_columns: 4,
            page: 10,
            dirty: true,
            hits: Vec::new(),
            zoom: false,
            threshold_step: 0.01,
            thumbnail: (18, 9),
            keymap: Vec::new(),
            wl: Default::default(),
            explain: Default::default(),
        }
    }

    /// Adds scanned images (marks read from the sidecar).
    pub fn add_entries(&mut self, entries: Vec<Entry>) {
        for e in entries {
            let mark = self.marks.get(&e.path);
            self.items.push(Item {
                name: name_of(&self.root, &e.path),
                path: e.path,
                split: e.split,
                label: e.label,
                score: None,
                error: None,
                mark,
                model_score: None,
                tags: Tags::default(),
                oof: None,
            });
        }
        self.dirty = true;
    }

    /// A score (or error) for item `index`, from job `run`. Results of an older job than the
    /// current one, or for a file that has since moved, are dropped.
    pub fn apply_score(
        &mut self,
        run: u64,
        index: usize,
        path: &Path,
        result: Result<f64, String>,
        computed: bool,
    ) -> bool {
        if run != self.run {
            return false;
        }
        let Some(item) = self.items.get_mut(index) else {
            return false;
        };
        if item.path != path {
            return false;
        }
        let shown = self.source == Source::Model;
        match result {
            Ok(p) => {
                item.model_score = Some(p);
                if shown {
                    item.score = Some(p);
                }
                item.error = None;
            }
            Err(e) => {
                item.model_score = None;
                if shown {
                    item.score = None;
                }
                item.error = Some(e);
            }
        }
        if let Some(j) = &mut self.job
            && j.run == run
        {
            j.done += 1;
            j.computed += computed as usize;
        }
        self.dirty = true;
        true
    }

    /// A cached score found without running the model (any job): applied when still unscored.
    pub fn apply_cached(&mut self, index: usize, path: &Path, p: f64) {
        if let Some(item) = self.items.get_mut(index)
            && item.path == path
            && item.model_score.is_none()
        {
            item.model_score = Some(p);
            if self.source == Source::Model {
                item.score = Some(p);
            }
            self.dirty = true;
        }
    }

    pub fn job_finished(&mut self, run: u64) {
        if let Some(j) = &self.job
            && j.run == run
        {
            self.last_run = Some((j.done, j.total, self.rate()));
            self.job = None;
            self.dirty = true;
        }
    }

    /// Images per second of the current job (computed images only).
    pub fn rate(&self) -> Option<f64> {
        let j = self.job.as_ref()?;
        let s = j.started.elapsed().as_secs_f64();
        (j.computed > 0 && s > 0.0).then(|| j.computed as f64 / s)
    }

    /// Recomputes the visible list and the matrix when something changed.
    pub fn refresh(&mut self) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        let keep_path = self.selected_item().map(|i| i.path.clone());
        self.visible = visible(&self.items, &self.view, self.positive, self.threshold);
        let (c, m) = matrix(&self.items, self.positive, self.threshold);
        self.confusion = c;
        self.metrics = m;
        // Keep the same image selected when it is still shown.
        if let Some(p) = keep_path
            && let Some(pos) = self.visible.iter().position(|&i| self.items[i].path == p)
        {
            self.selected = pos;
        }
        self.selected = self.selected.min(self.visible.len().saturating_sub(1));
    }

    pub fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    /// Recomputes the list now with the cursor on its first row: for a new view (a matrix cell,
    /// a fit's label issues), where `refresh` alone would keep the image selected before.
    pub(super) fn show_from_top(&mut self) {
        self.dirty = true;
        self.refresh();
        self.selected = 0;
    }

    pub fn selected_index(&self) -> Option<usize> {
        self.visible.get(self.selected).copied()
    }

    /// The heatmap the preview wants now: the selected image as shown, when the overlay is on.
    pub fn explain_wanted(&self) -> Option<super::explain_view::MapKey> {
        if !self.explain.on {
            return None;
        }
        let it = self.selected_item().filter(|i| i.error.is_none())?;
        let (view, frame) = self.wl.for_path(&it.path);
        Some(self.explain.key(
            it.path.clone(),
            view.map(|v| super::images::ViewKey::of(&v)),
            frame,
        ))
    }

    pub fn selected_item(&self) -> Option<&Item> {
        self.selected_index().map(|i| &self.items[i])
    }

    pub fn has_labels(&self) -> bool {
        self.items.iter().any(|i| i.label.is_some())
    }

    pub(super) fn say(&mut self, s: impl Into<String>) {
        self.status = Some(s.into());
    }

    pub(super) fn move_by(&mut self, delta: isize) {
        let n = self.visible.len();
        if n == 0 {
            return;
        }
        let cur = self.selected as isize + delta;
        self.selected = cur.clamp(0, n as isize - 1) as usize;
    }

    pub(super) fn start_job(&mut self, items: Vec<(usize, PathBuf)>) -> Vec<Effect> {
        if self.model.is_none() {
            self.say(match &self.model_error {
                Some(e) => format!("no model: {e}"),
                None => "the model is still loading".into(),
            });
            return vec![];
        }
        if items.is_empty() {
            self.say("nothing to classify");
            return vec![];
        }
        self.run += 1;
        self.job = Some(Job {
            run: self.run,
            total: items.len(),
            done: 0,
            computed: 0,
            started: Instant::now(),
        });
        vec![Effect::Run(Task::Classify {
            run: self.run,
            items,
            replace: true,
        })]
    }

    pub(super) fn set_threshold(&mut self, t: f64) {
        self.threshold = (t * 1000.0).round().clamp(0.0, 1000.0) / 1000.0;
        self.dirty = true;
        self.say(format!("threshold {:.3}", self.threshold));
    }

    /// Hint for the status bar: the keys that matter now.
    pub fn key_hints(&self) -> &'static str {
        match self.mode {
            Mode::Search(_) => "type to search · Enter keep · Esc clear",
            Mode::Matrix { .. } => "←↑↓→ cell · Enter show its images · Esc back",
            Mode::ConfirmRelabel { .. } => "y move the file · any other key cancels",
            Mode::ConfirmTrain => {
                "y fine-tune the CNN on train/ (selected on val/): minutes on a GPU, longer on a CPU · any other key cancels"
            }
            Mode::Help => "any key closes help",
            Mode::Window => super::window_level::HINT,
            Mode::Normal if self.bg.is_some() => "Esc cancel the job · j/k move · ? help",
            Mode::Normal if self.layout == Layout::Audit => {
                "Tab kind · j/k walk · y copies · n not copies · 1/2 side · R relabel · A back · ? help"
            }
            Mode::Normal if self.job.is_some() => {
                "Esc cancel · j/k move · +/- threshold · f filter · ? help"
            }
            Mode::Normal if self.fit.is_some() => {
                "o model/out-of-fold · f filter · s sort · R relabel · u undo · A audit · ? help · q quit"
            }
            Mode::Normal => {
                "a classify all · c this · m matrix · f filter · A audit · O fit · R relabel · ? help · q quit"
            }
        }
    }

    /// The other class of a relabel, by name (for the confirmation).
    pub fn class_name(&self, c: Option<usize>) -> &str {
        c.and_then(|c| self.classes.names.get(c))
            .map(String::as_str)
            .unwrap_or("unlabelled")
    }
}
