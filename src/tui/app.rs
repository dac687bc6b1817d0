//! Dashboard state and what each key does to it. Side effects that need a worker (classify,
//! cancel) are returned as `Effect`s for the runtime; file operations on the user's data go
//! through the library's journal (atomic, reversible, logged). No terminal here.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use osteoai_core::journal::Journal;
use osteoai_core::labels::{ClassSpec, Split};
use osteoai_core::marks::{Mark, Marks};
use osteoai_core::metrics::{Confusion, Metrics};
use osteoai_core::scan::Entry;

use super::audit_view::AuditState;
use super::fit_view::{FitInfo, Source};
use super::review::{CellKind, Filter, Item, Tags, View, cell_of, matrix, visible};

/// What the runtime must do after a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Quit,
    /// Score these items (index, path) as job `run`; `replace` drops the queued work first.
    Classify {
        run: u64,
        items: Vec<(usize, PathBuf)>,
        replace: bool,
    },
    Cancel,
    /// Audit the folder (job `run`).
    Audit {
        run: u64,
        root: PathBuf,
        entries: Vec<Entry>,
        classes: ClassSpec,
    },
    /// Fit the folder's own labels (job `run`), folds grouped by the audit's groups.
    Fit {
        run: u64,
        root: PathBuf,
        files: Vec<PathBuf>,
        groups: std::collections::HashMap<PathBuf, usize>,
    },
    /// Fine-tune the CNN on the folder's train/ and val/ (job `run`), then load the result.
    Train {
        run: u64,
        root: PathBuf,
        overrides: osteoai_core::finetune::Overrides,
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
    /// Window/level of the preview and the metadata panel.
    pub wl: super::window_level::WindowLevel,
    /// The heatmap overlay on the preview (`e`).
    pub explain: super::explain_view::ExplainState,
    journal: Option<Journal>,
    pub(super) marks: Marks,
    dirty: bool,
}

fn name_of(root: &Path, path: &Path) -> String {
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

    fn move_by(&mut self, delta: isize) {
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
        vec![Effect::Classify {
            run: self.run,
            items,
            replace: true,
        }]
    }

    fn set_threshold(&mut self, t: f64) {
        self.threshold = (t * 1000.0).round().clamp(0.0, 1000.0) / 1000.0;
        self.dirty = true;
        self.say(format!("threshold {:.3}", self.threshold));
    }

    /// Handles one key; returns what the runtime must do.
    pub fn on_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        self.status = None;
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return vec![Effect::Cancel, Effect::Quit];
        }
        let effects = match self.mode.clone() {
            Mode::Help => {
                self.mode = Mode::Normal;
                vec![]
            }
            Mode::Window => {
                if let Some(p) = self.selected_item().map(|i| i.path.clone()) {
                    self.wl.follow(&p);
                }
                let (stay, say) = self.wl.on_key(key);
                if !stay {
                    self.mode = Mode::Normal;
                }
                if let Some(m) = say {
                    self.say(m);
                }
                vec![]
            }
            Mode::Search(mut s) => {
                match key.code {
                    KeyCode::Esc => {
                        self.view.search.clear();
                        self.mode = Mode::Normal;
                    }
                    KeyCode::Enter => self.mode = Mode::Normal,
                    KeyCode::Backspace => {
                        s.pop();
                        self.view.search = s.clone();
                        self.mode = Mode::Search(s);
                    }
                    KeyCode::Char(c) => {
                        s.push(c);
                        self.view.search = s.clone();
                        self.mode = Mode::Search(s);
                    }
                    _ => {}
                }
                self.dirty = true;
                vec![]
            }
            Mode::Matrix { row, col } => {
                let last = if self.view.multiclass {
                    self.classes.names.len() - 1
                } else {
                    1
                };
                match key.code {
                    KeyCode::Esc | KeyCode::Char('m') => self.mode = Mode::Normal,
                    KeyCode::Up | KeyCode::Char('k') => {
                        self.mode = Mode::Matrix {
                            row: row.saturating_sub(1),
                            col,
                        }
                    }
                    KeyCode::Down | KeyCode::Char('j') => {
                        self.mode = Mode::Matrix {
                            row: (row + 1).min(last),
                            col,
                        }
                    }
                    KeyCode::Left | KeyCode::Char('h') => {
                        self.mode = Mode::Matrix {
                            row,
                            col: col.saturating_sub(1),
                        }
                    }
                    KeyCode::Right | KeyCode::Char('l') => {
                        self.mode = Mode::Matrix {
                            row,
                            col: (col + 1).min(last),
                        }
                    }
                    KeyCode::Enter if self.view.multiclass => {
                        self.view.cell_n = Some((row, col));
                        self.view.filter = Filter::All;
                        self.mode = Mode::Normal;
                        self.selected = 0;
                        self.dirty = true;
                        let n = &self.classes.names;
                        self.say(format!(
                            "showing label {} predicted {} (C: clear)",
                            n[row], n[col]
                        ));
                    }
                    KeyCode::Enter => {
                        let cell = CellKind::at(row, col);
                        self.view.cell = Some(cell);
                        self.view.filter = Filter::All;
                        self.mode = Mode::Normal;
                        self.selected = 0;
                        self.dirty = true;
                        self.say(format!("showing {} (c: clear)", cell.name()));
                    }
                    _ => {}
                }
                vec![]
            }
            Mode::ConfirmTrain => {
                self.confirm_train(matches!(key.code, KeyCode::Char('y') | KeyCode::Char('Y')))
            }
            Mode::ConfirmRelabel { index, target } => {
                self.mode = Mode::Normal;
                if matches!(key.code, KeyCode::Char('y') | KeyCode::Char('Y')) {
                    self.relabel(index, target);
                } else {
                    self.say("relabel cancelled");
                }
                vec![]
            }
            Mode::Normal if self.layout == Layout::Audit => self.on_audit_key(key),
            Mode::Normal => match self.rebind(key) {
                Some(k) => self.on_normal_key(k),
                None => vec![],
            },
        };
        self.refresh();
        effects
    }

    /// The configured key map: a rebound character becomes its action's default one.
    fn rebind(&self, mut key: KeyEvent) -> Option<KeyEvent> {
        let KeyCode::Char(c) = key.code else {
            return Some(key);
        };
        if key
            .modifiers
            .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
        {
            return Some(key);
        }
        match self.keymap.iter().find(|(from, _)| *from == c) {
            None => Some(key),
            Some((_, None)) => None,
            Some((_, Some(to))) => {
                key.code = KeyCode::Char(*to);
                key.modifiers = if to.is_ascii_uppercase() {
                    KeyModifiers::SHIFT
                } else {
                    KeyModifiers::NONE
                };
                Some(key)
            }
        }
    }

    fn on_normal_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let shift = key.modifiers.contains(KeyModifiers::SHIFT);
        let step = if self.layout == Layout::Grid {
            self.grid_columns.max(1) as isize
        } else {
            1
        };
        match key.code {
            KeyCode::Char('q') => return vec![Effect::Cancel, Effect::Quit],
            KeyCode::Char('?') => self.mode = Mode::Help,
            KeyCode::Down | KeyCode::Char('j') => self.move_by(step),
            KeyCode::Up | KeyCode::Char('k') => self.move_by(-step),
            KeyCode::Right | KeyCode::Char('l') if self.layout == Layout::Grid => self.move_by(1),
            KeyCode::Left | KeyCode::Char('h') if self.layout == Layout::Grid => self.move_by(-1),
            KeyCode::PageDown => self.move_by(self.page as isize),
            KeyCode::PageUp => self.move_by(-(self.page as isize)),
            KeyCode::Char('d') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                self.move_by(self.page as isize / 2)
            }
            KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                self.move_by(-(self.page as isize) / 2)
            }
            KeyCode::Home | KeyCode::Char('g') => self.selected = 0,
            KeyCode::End | KeyCode::Char('G') => {
                self.selected = self.visible.len().saturating_sub(1)
            }
            KeyCode::Enter | KeyCode::Char('c') => {
                if let Some(i) = self.selected_index() {
                    let item = (i, self.items[i].path.clone());
                    return match &self.job {
                        // Jump the queue of the running job.
                        Some(j) => vec![Effect::Classify {
                            run: j.run,
                            items: vec![item],
                            replace: false,
                        }],
                        None => self.start_job(vec![item]),
                    };
                }
            }
            KeyCode::Char('a') => {
                let all: Vec<(usize, PathBuf)> = self
                    .items
                    .iter()
                    .enumerate()
                    .map(|(i, it)| (i, it.path.clone()))
                    .collect();
                return self.start_job(all);
            }
            KeyCode::Esc if self.explain.on => {
                self.explain.on = false;
                self.say("heatmap off");
            }
            KeyCode::Esc if self.bg.is_some() => {
                self.cancel_bg();
                return vec![Effect::Cancel];
            }
            KeyCode::Char('A') => return self.open_audit(),
            KeyCode::Char('O') => return self.start_fit(),
            KeyCode::Char('T') => return self.ask_train(),
            KeyCode::Esc if self.train.as_ref().is_some_and(|t| t.finished.is_some()) => {
                self.train = None;
            }
            KeyCode::Char('o') => self.toggle_source(),
            KeyCode::Esc => {
                if self.job.is_some() {
                    self.run += 1; // results still in flight are now stale
                    self.last_run = self.job.as_ref().map(|j| (j.done, j.total, self.rate()));
                    self.job = None;
                    self.say("classification cancelled");
                    return vec![Effect::Cancel];
                }
                if self.view != View::default() {
                    let sort = self.view.sort;
                    self.view = View {
                        sort,
                        ..View::default()
                    };
                    self.dirty = true;
                    self.say("filters cleared");
                }
            }
            KeyCode::Char('+') | KeyCode::Char('=') | KeyCode::Char(']') => self.set_threshold(
                self.threshold + self.threshold_step * if shift { 5.0 } else { 1.0 },
            ),
            KeyCode::Char('-') | KeyCode::Char('[') => {
                self.set_threshold(self.threshold - self.threshold_step)
            }
            KeyCode::Char('_') | KeyCode::Char('{') => {
                self.set_threshold(self.threshold - 5.0 * self.threshold_step)
            }
            KeyCode::Char('}') => self.set_threshold(self.threshold + 5.0 * self.threshold_step),
            KeyCode::Char('0') => {
                let t = self.model.as_ref().map(|m| m.threshold).unwrap_or(0.5);
                self.set_threshold(t);
            }
            KeyCode::Char('f') => {
                self.view.filter = self.view.filter.step(true);
                self.dirty = true;
                self.say(format!("filter: {}", self.view.filter.name()));
            }
            KeyCode::Char('F') => {
                self.view.filter = self.view.filter.step(false);
                self.dirty = true;
                self.say(format!("filter: {}", self.view.filter.name()));
            }
            KeyCode::Char('b') => {
                let n = self.classes.names.len();
                // any -> each class -> unlabelled -> any
                self.view.label = match self.view.label {
                    None => Some(Some(0)),
                    Some(Some(c)) if c + 1 < n => Some(Some(c + 1)),
                    Some(Some(_)) => Some(None),
                    Some(None) => None,
                };
                self.dirty = true;
                let label = match self.view.label {
                    None => "any".to_string(),
                    Some(None) => "unlabelled".to_string(),
                    Some(Some(c)) => self.classes.names[c].clone(),
                };
                self.say(format!("label: {label}"));
            }
            KeyCode::Char('p') => {
                self.view.split = match self.view.split {
                    None => Some(Some(Split::Train)),
                    Some(Some(Split::Train)) => Some(Some(Split::Val)),
                    Some(Some(Split::Val)) => Some(Some(Split::Test)),
                    Some(Some(Split::Test)) => Some(None),
                    Some(None) => None,
                };
                self.dirty = true;
                let split = match self.view.split {
                    None => "any".to_string(),
                    Some(None) => "none".to_string(),
                    Some(Some(s)) => s.to_string(),
                };
                self.say(format!("split: {split}"));
            }
            KeyCode::Char('s') => {
                self.view.sort = self.view.sort.next();
                self.dirty = true;
                self.say(format!("sort: {}", self.view.sort.name()));
            }
            KeyCode::Char('/') => self.mode = Mode::Search(self.view.search.clone()),
            KeyCode::Char('m') => {
                if self.has_labels() {
                    self.mode = Mode::Matrix { row: 0, col: 0 };
                } else {
                    self.say("no labelled images: no confusion matrix");
                }
            }
            KeyCode::Char('C') => {
                self.view.cell = None;
                self.view.cell_n = None;
                self.dirty = true;
            }
            KeyCode::Char('z') => self.zoom = !self.zoom,
            KeyCode::Char('w') if self.selected_item().is_some() => {
                if let Some(p) = self.selected_item().map(|i| i.path.clone()) {
                    self.wl.follow(&p);
                }
                self.mode = Mode::Window;
            }
            KeyCode::Char('i') => self.wl.show_meta = !self.wl.show_meta,
            KeyCode::Char('v') | KeyCode::Tab => {
                self.layout = match self.layout {
                    Layout::List => Layout::Grid,
                    Layout::Grid if !self.view.multiclass => Layout::Roc,
                    _ => Layout::List,
                }
            }
            KeyCode::Char(' ') => self.toggle_mark(|m| m.reviewed = !m.reviewed),
            KeyCode::Char('x') => self.toggle_mark(|m| m.flagged = !m.flagged),
            KeyCode::Char('R') => {
                if let Some(i) = self.selected_index() {
                    self.begin_relabel(i);
                }
            }
            KeyCode::Char('u') => self.undo(),
            KeyCode::Char('E') => self.export(),
            KeyCode::Char('e') => {
                let m = self.explain.toggle();
                self.say(m);
            }
            KeyCode::Char('M') => {
                let m = self.explain.next_method();
                self.say(m);
            }
            KeyCode::Char('>') => {
                let m = self.explain.next_class(&self.model_classes.names);
                self.say(m);
            }
            _ => {}
        }
        vec![]
    }

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
        vec![Effect::Audit {
            run: self.bg_run,
            root: self.root.clone(),
            entries,
            classes,
        }]
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

    fn cancel_bg(&mut self) {
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

    fn toggle_mark(&mut self, f: impl Fn(&mut Mark)) {
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

    fn journal(&mut self) -> Result<&mut Journal, String> {
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

    fn relabel(&mut self, index: usize, target: usize) {
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
    fn follow_move(&mut self, from: &Path, to: &Path) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::review::Sort;

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    fn app_with(items: Vec<Item>) -> App {
        let mut a = App::new(
            PathBuf::from("/nonexistent-osteoai-root"),
            ClassSpec::fracture_default(),
            0.5,
        );
        a.items = items;
        a.model = Some(ModelInfo {
            name: "m".into(),
            device: "cpu".into(),
            threshold: 0.5,
        });
        a.mark_dirty();
        a.refresh();
        a
    }

    #[test]
    fn threshold_keys_rebin_the_matrix() {
        let mut a = app_with(super::super::review::tests::sample());
        assert_eq!((a.confusion.tp, a.confusion.fp), (1, 2));
        for _ in 0..10 {
            a.on_key(key(KeyCode::Char('+')));
        }
        assert!((a.threshold - 0.6).abs() < 1e-9);
        assert_eq!((a.confusion.tp, a.confusion.fp), (1, 1));
        a.on_key(key(KeyCode::Char('0')));
        assert_eq!(a.threshold, 0.5);
    }

    #[test]
    fn matrix_cell_selection_filters_the_list() {
        let mut a = app_with(super::super::review::tests::sample());
        a.on_key(key(KeyCode::Char('m')));
        a.on_key(key(KeyCode::Down)); // actual negative
        a.on_key(key(KeyCode::Enter)); // predicted positive: false positives
        assert_eq!(a.view.cell, Some(CellKind::FalsePositive));
        assert_eq!(a.visible.len(), a.confusion.fp);
        let names: Vec<_> = a
            .visible
            .iter()
            .map(|&i| a.items[i].name.as_str())
            .collect();
        assert_eq!(names, ["c", "e"]);
        a.on_key(key(KeyCode::Esc));
        assert_eq!(a.visible.len(), 7);
    }

    #[test]
    fn navigation_search_and_sort() {
        let mut a = app_with(super::super::review::tests::sample());
        a.on_key(key(KeyCode::Char('j')));
        a.on_key(key(KeyCode::Down));
        assert_eq!(a.selected_item().unwrap().name, "c");
        a.on_key(key(KeyCode::Char('G')));
        assert_eq!(a.selected_item().unwrap().name, "g");
        a.on_key(key(KeyCode::Char('/')));
        for c in "d".chars() {
            a.on_key(key(KeyCode::Char(c)));
        }
        a.on_key(key(KeyCode::Enter));
        assert_eq!(a.visible.len(), 1);
        a.on_key(key(KeyCode::Esc));
        a.on_key(key(KeyCode::Char('s')));
        assert_eq!(a.view.sort, Sort::ScoreDesc);
        assert_eq!(
            a.selected_item().unwrap().name,
            "d",
            "selection follows the image"
        );
    }

    #[test]
    fn classify_all_then_cancel_drops_stale_results() {
        let mut a = app_with(super::super::review::tests::sample());
        let fx = a.on_key(key(KeyCode::Char('a')));
        let Effect::Classify {
            run,
            items,
            replace,
        } = &fx[0]
        else {
            panic!("{fx:?}")
        };
        assert!(*replace);
        assert_eq!(items.len(), 7);
        let run = *run;
        assert!(a.apply_score(run, 6, Path::new("g"), Ok(0.7), true));
        assert_eq!(a.items[6].score, Some(0.7));
        assert_eq!(a.on_key(key(KeyCode::Esc)), vec![Effect::Cancel]);
        assert!(a.job.is_none());
        // A result of the cancelled run arriving late is ignored.
        assert!(!a.apply_score(run, 0, Path::new("a"), Ok(0.01), true));
        assert_eq!(a.items[0].score, Some(0.9));
    }

    #[test]
    fn classify_selected_jumps_the_queue_of_a_running_job() {
        let mut a = app_with(super::super::review::tests::sample());
        a.on_key(key(KeyCode::Char('a')));
        let fx = a.on_key(key(KeyCode::Char('c')));
        assert!(
            matches!(&fx[0], Effect::Classify { replace: false, items, .. } if items.len() == 1)
        );
    }

    #[test]
    fn help_and_quit() {
        let mut a = app_with(vec![]);
        a.on_key(key(KeyCode::Char('?')));
        assert_eq!(a.mode, Mode::Help);
        a.on_key(key(KeyCode::Char('x')));
        assert_eq!(a.mode, Mode::Normal);
        assert!(a.on_key(key(KeyCode::Char('q'))).contains(&Effect::Quit));
    }

    #[test]
    fn relabel_moves_the_file_after_confirmation_and_undo_brings_it_back() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().to_path_buf();
        std::fs::create_dir_all(root.join("test/fracture")).unwrap();
        std::fs::create_dir_all(root.join("test/nofracture")).unwrap();
        std::fs::write(root.join("test/fracture/a.jpg"), b"A").unwrap();
        std::fs::write(root.join("test/nofracture/a.jpg"), b"clash").unwrap();
        let classes = ClassSpec::fracture_default();
        let mut a = App::new(root.clone(), classes.clone(), 0.5);
        a.add_entries(osteoai_core::scan::scan(&root, &classes).entries);
        a.refresh();
        assert_eq!(a.selected_item().unwrap().name, "test/fracture/a.jpg");
        // Anything but y cancels.
        a.on_key(key(KeyCode::Char('R')));
        a.on_key(key(KeyCode::Char('n')));
        assert!(root.join("test/fracture/a.jpg").exists());
        a.on_key(key(KeyCode::Char('R')));
        assert!(matches!(a.mode, Mode::ConfirmRelabel { target: 1, .. }));
        a.on_key(key(KeyCode::Char('y')));
        let moved = root.join("test/nofracture/a (relabelled 1).jpg");
        assert_eq!(std::fs::read(&moved).unwrap(), b"A");
        assert_eq!(
            std::fs::read(root.join("test/nofracture/a.jpg")).unwrap(),
            b"clash"
        );
        assert!(!root.join("test/fracture/a.jpg").exists());
        assert!(
            a.items
                .iter()
                .any(|i| i.path == moved && i.label == Some(1))
        );
        // Undo, from a fresh session (the journal survives a restart).
        let mut b = App::new(root.clone(), classes.clone(), 0.5);
        b.add_entries(osteoai_core::scan::scan(&root, &classes).entries);
        b.refresh();
        b.on_key(key(KeyCode::Char('u')));
        assert_eq!(
            std::fs::read(root.join("test/fracture/a.jpg")).unwrap(),
            b"A"
        );
        assert!(!moved.exists());
        assert!(
            b.items
                .iter()
                .any(|i| i.path == root.join("test/fracture/a.jpg") && i.label == Some(0))
        );
        b.on_key(key(KeyCode::Char('u')));
        assert_eq!(b.status.as_deref(), Some("nothing to undo"));
    }

    #[test]
    fn review_marks_persist_and_export_writes_the_visible_rows() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().to_path_buf();
        std::fs::create_dir_all(root.join("fracture")).unwrap();
        std::fs::write(root.join("fracture/a.jpg"), b"A").unwrap();
        std::fs::write(root.join("fracture/b.jpg"), b"B").unwrap();
        let classes = ClassSpec::fracture_default();
        let mut a = App::new(root.clone(), classes.clone(), 0.5);
        a.add_entries(osteoai_core::scan::scan(&root, &classes).entries);
        a.refresh();
        a.on_key(key(KeyCode::Char(' ')));
        a.on_key(key(KeyCode::Char('j')));
        a.on_key(key(KeyCode::Char('x')));
        let mut b = App::new(root.clone(), classes.clone(), 0.5);
        b.add_entries(osteoai_core::scan::scan(&root, &classes).entries);
        assert!(b.items[0].mark.reviewed && !b.items[0].mark.flagged);
        assert!(b.items[1].mark.flagged);
        b.view.filter = Filter::Unreviewed;
        b.mark_dirty();
        b.refresh();
        b.on_key(key(KeyCode::Char('E')));
        let exported: Vec<_> = std::fs::read_dir(root.join(".osteoai"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("export-"))
            .collect();
        assert_eq!(exported.len(), 1);
        let text = std::fs::read_to_string(exported[0].path()).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.lines().nth(1).unwrap().contains("b.jpg"));
    }
}
