//! What each key does to the dashboard state, mode by mode (normal, search, matrix, help,
//! confirmations, the Audit and fit views): `App::on_key` returns the `Effect`s the runtime runs.

use super::app::{App, Effect, Layout, Mode, Task};
use super::review::{CellKind, Filter, View};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use osteoai_core::labels::Split;
use std::path::PathBuf;

impl App {
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
                        self.show_from_top();
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
                        self.show_from_top();
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
    pub(super) fn rebind(&self, mut key: KeyEvent) -> Option<KeyEvent> {
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

    pub(super) fn on_normal_key(&mut self, key: KeyEvent) -> Vec<Effect> {
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
                        Some(j) => vec![Effect::Run(Task::Classify {
                            run: j.run,
                            items: vec![item],
                            replace: false,
                        })],
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
}
