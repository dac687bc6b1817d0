//! The mouse: a click selects a list row, a grid cell or a matrix cell; the wheel scrolls; a
//! click on the preview toggles zoom. Every draw records where those things are (`App::hits`),
//! so a click acts on exactly what was on screen. `--no-mouse` (or `OSTEOAI_NO_MOUSE=1`) leaves
//! the mouse to the terminal (its own selection and copy).

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::{Position, Rect};

use super::app::{App, Effect, Layout, Mode};

/// What a screen area stands for, recorded at draw time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hit {
    /// A row of the list or a cell of the grid: a position in `App::visible`.
    Item(usize),
    /// A cell of the confusion matrix (label row, predicted column).
    Matrix(usize, usize),
    Preview,
}

/// Rows moved by one notch of the wheel.
const WHEEL_STEP: usize = 3;

impl App {
    /// Records an area for the next mouse event (called while drawing).
    pub fn hit(&mut self, area: Rect, what: Hit) {
        if area.width > 0 && area.height > 0 {
            self.hits.push((area, what));
        }
    }

    /// Handles one mouse event; returns what the runtime must do.
    pub fn on_mouse(&mut self, m: MouseEvent) -> Vec<Effect> {
        let at = Position::new(m.column, m.row);
        let press = |code| KeyEvent::new(code, KeyModifiers::NONE);
        match m.kind {
            MouseEventKind::ScrollDown | MouseEventKind::ScrollUp => {
                let code = if m.kind == MouseEventKind::ScrollDown {
                    KeyCode::Down
                } else {
                    KeyCode::Up
                };
                if !matches!(self.mode, Mode::Normal) {
                    return vec![];
                }
                let mut effects = Vec::new();
                for _ in 0..WHEEL_STEP {
                    effects.extend(self.on_key(press(code)));
                }
                effects
            }
            MouseEventKind::Down(MouseButton::Left) => {
                if matches!(self.mode, Mode::Help) {
                    self.mode = Mode::Normal;
                    return vec![];
                }
                // The last recorded area on top wins (overlays are drawn last).
                let Some(&(_, hit)) = self.hits.iter().rev().find(|(r, _)| r.contains(at)) else {
                    return vec![];
                };
                match (hit, &self.mode) {
                    (Hit::Item(pos), Mode::Normal) if self.layout != Layout::Audit => {
                        if pos < self.visible.len() {
                            self.selected = pos;
                            self.mark_dirty();
                        }
                        vec![]
                    }
                    (Hit::Matrix(row, col), Mode::Normal | Mode::Matrix { .. }) => {
                        self.mode = Mode::Matrix { row, col };
                        self.on_key(press(KeyCode::Enter))
                    }
                    (Hit::Preview, Mode::Normal) => {
                        self.zoom = !self.zoom;
                        self.mark_dirty();
                        vec![]
                    }
                    _ => vec![],
                }
            }
            _ => vec![],
        }
    }
}
