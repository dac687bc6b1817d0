//! Window/level on the preview and the DICOM metadata panel: the viewer's choice for the
//! selected image (reset when the selection moves), the keys of the window mode (`w`), and what
//! the image workers learned about the file (`PreviewInfo`). Changing the window changes only
//! what is shown; scores always use the documented rule (`osteoai_core::decode::window`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crossterm::event::{KeyCode, KeyEvent};
use osteoai_core::decode::window::{Choice, View};

/// What a prepared preview says about its file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PreviewInfo {
    /// The view shown, described ("W 400 L 40 · file 1/2"); None for 8-bit images.
    pub title: Option<String>,
    /// The file's own VOI transforms as (centre, width); None for a lookup table.
    pub file_windows: Vec<Option<(f64, f64)>>,
    /// The robust percentile window and the full range (None for 8-bit images).
    pub auto: Option<(f64, f64)>,
    pub full: Option<(f64, f64)>,
    pub frames: u32,
    pub frame: u32,
    /// DICOM technical attributes (never patient data).
    pub meta: Option<Vec<(&'static str, String)>>,
    /// Patient-identifying attributes: filled only with `--show-phi`.
    pub phi: Vec<(&'static str, String)>,
    /// Image size and bit depth for files that are not DICOM.
    pub plain: Option<String>,
}

/// The viewer's window/level state for the selected image.
#[derive(Debug, Default)]
pub struct WindowLevel {
    path: Option<PathBuf>,
    view: Option<View>,
    frame: u32,
    info: Option<Arc<PreviewInfo>>,
    /// The metadata panel is open (`i`).
    pub show_meta: bool,
    /// `--show-phi`: patient data may be shown in the panel.
    pub show_phi: bool,
}

impl WindowLevel {
    /// The view and frame to prepare for `path` (defaults when it is not the one adjusted).
    pub fn for_path(&self, path: &Path) -> (Option<View>, u32) {
        if self.path.as_deref() == Some(path) {
            (self.view, self.frame)
        } else {
            (None, 0)
        }
    }

    /// What the workers said about `path`, when it is the selected file.
    pub fn info(&self, path: &Path) -> Option<&PreviewInfo> {
        (self.path.as_deref() == Some(path))
            .then_some(self.info.as_deref())
            .flatten()
    }

    /// Keeps the state for `path`, starting afresh when the selection moved.
    pub fn follow(&mut self, path: &Path) {
        if self.path.as_deref() != Some(path) {
            self.path = Some(path.to_path_buf());
            self.view = None;
            self.frame = 0;
            self.info = None;
        }
    }

    /// A worker prepared `path` as the selected preview: remember what it found (the title
    /// goes with the image last drawn; the windows are the file's, whatever the view).
    pub fn observe(&mut self, path: &Path, info: Arc<PreviewInfo>) {
        if self.path.as_deref() == Some(path) {
            self.info = Some(info);
        }
    }

    /// The window a choice amounts to for the selected file, from what the workers found.
    fn window_of(info: &PreviewInfo, choice: Choice) -> Option<(f64, f64)> {
        match choice {
            Choice::File(i) => info.file_windows.get(i).copied().flatten().or(info.auto),
            Choice::Auto => info.auto,
            Choice::Full => info.full,
            Choice::Manual { center, width } => Some((center, width)),
        }
    }

    /// One key of the window mode. Returns a status line when it has something to say, and
    /// whether the mode goes on.
    pub fn on_key(&mut self, key: KeyEvent) -> (bool, Option<String>) {
        let info = self.info.clone().unwrap_or_default();
        let file_vois = info.file_windows.len();
        let deep = info.auto.is_some() || file_vois > 0;
        let current = self.view.unwrap_or(View {
            choice: if file_vois > 0 {
                Choice::File(0)
            } else {
                Choice::Auto
            },
            invert: false,
        });
        let manual = |c: f64, w: f64| Choice::Manual {
            center: c,
            width: w.max(1.0),
        };
        let (c, w) = Self::window_of(&info, current.choice).unwrap_or((0.0, 1.0));
        let mut say = None;
        let next = match key.code {
            KeyCode::Esc | KeyCode::Char('w') | KeyCode::Char('q') | KeyCode::Enter => {
                return (false, None);
            }
            KeyCode::Char('[') | KeyCode::Char(']') if info.frames > 1 => {
                let n = info.frames as i64;
                let d = if key.code == KeyCode::Char(']') {
                    1
                } else {
                    -1
                };
                self.frame = ((self.frame as i64 + d).rem_euclid(n)) as u32;
                say = Some(format!("frame {} of {}", self.frame + 1, info.frames));
                None
            }
            _ if !deep => {
                say = Some("this image has 8 bits: nothing to window".into());
                None
            }
            KeyCode::Right | KeyCode::Char('l') => Some(manual(c, w * 1.25)),
            KeyCode::Left | KeyCode::Char('h') => Some(manual(c, w / 1.25)),
            KeyCode::Up | KeyCode::Char('k') => Some(manual(c + w * 0.05, w)),
            KeyCode::Down | KeyCode::Char('j') => Some(manual(c - w * 0.05, w)),
            KeyCode::Char('r') => {
                self.view = None;
                say = Some("window: the file's own (the rule scores with)".into());
                None
            }
            KeyCode::Char('a') => Some(Choice::Auto),
            KeyCode::Char('f') => Some(Choice::Full),
            KeyCode::Char('n') if file_vois > 1 => {
                let i = match current.choice {
                    Choice::File(i) => (i + 1) % file_vois,
                    _ => 0,
                };
                Some(Choice::File(i))
            }
            KeyCode::Char('i') => {
                self.view = Some(View {
                    invert: !current.invert,
                    ..current
                });
                None
            }
            _ => None,
        };
        if let Some(choice) = next {
            self.view = Some(View { choice, ..current });
        }
        (true, say)
    }
}

/// The window mode's key hint.
pub const HINT: &str =
    "←→ width  ↑↓ level  r file's  a auto  f full  i invert  n next window  [ ] frame  Esc done";

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::KeyModifiers;

    fn k(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    #[test]
    fn keys_adjust_from_the_window_shown_and_reset_on_a_new_selection() {
        let mut wl = WindowLevel::default();
        let p = Path::new("/x/a.dcm");
        wl.follow(p);
        let info = Arc::new(PreviewInfo {
            file_windows: vec![Some((1000.0, 400.0)), Some((40.0, 80.0))],
            auto: Some((500.0, 1000.0)),
            full: Some((2048.0, 4096.0)),
            frames: 3,
            ..Default::default()
        });
        wl.observe(p, info);
        assert!(wl.on_key(k(KeyCode::Right)).0);
        let (v, _) = wl.for_path(p);
        assert_eq!(
            v.unwrap().choice,
            Choice::Manual {
                center: 1000.0,
                width: 500.0
            }
        );
        // Keys faster than the previews: each starts from the last one's window.
        wl.on_key(k(KeyCode::Up));
        assert_eq!(
            wl.for_path(p).0.unwrap().choice,
            Choice::Manual {
                center: 1025.0,
                width: 500.0
            }
        );
        wl.on_key(k(KeyCode::Char('n')));
        assert_eq!(wl.for_path(p).0.unwrap().choice, Choice::File(0));
        wl.on_key(k(KeyCode::Char('n')));
        wl.on_key(k(KeyCode::Left));
        assert_eq!(
            wl.for_path(p).0.unwrap().choice,
            Choice::Manual {
                center: 40.0,
                width: 64.0
            },
            "from the second file window at once"
        );
        wl.on_key(k(KeyCode::Char('f')));
        wl.on_key(k(KeyCode::Down));
        assert_eq!(
            wl.for_path(p).0.unwrap().choice,
            Choice::Manual {
                center: 2048.0 - 204.8,
                width: 4096.0
            }
        );
        wl.on_key(k(KeyCode::Char('i')));
        assert!(wl.for_path(p).0.unwrap().invert);
        wl.on_key(k(KeyCode::Char('[')));
        assert_eq!(wl.for_path(p).1, 2, "frames wrap around");
        wl.on_key(k(KeyCode::Char('r')));
        assert_eq!(wl.for_path(p).0, None);
        assert!(!wl.on_key(k(KeyCode::Esc)).0);
        let q = Path::new("/x/b.dcm");
        wl.follow(q);
        assert_eq!(wl.for_path(q), (None, 0));
        assert_eq!(wl.for_path(p), (None, 0));
    }

    #[test]
    fn eight_bit_images_are_not_windowed() {
        let mut wl = WindowLevel::default();
        let p = Path::new("/x/a.jpg");
        wl.follow(p);
        wl.observe(p, Arc::new(PreviewInfo::default()));
        let (on, say) = wl.on_key(k(KeyCode::Right));
        assert!(on && say.unwrap().contains("8 bits"));
        assert_eq!(wl.for_path(p).0, None);
    }
}
