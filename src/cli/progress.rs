//! A progress bar on stderr (indicatif: drawn only when stderr is a terminal, at most 10 times
//! a second), in images per second.

use std::sync::Mutex;
use std::sync::atomic::AtomicBool;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use osteoai_core::audit::Stage;

pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    pub fn new(label: &str, total: usize) -> Self {
        let bar = ProgressBar::with_draw_target(
            Some(total as u64),
            ProgressDrawTarget::stderr_with_hz(10),
        );
        let style =
            ProgressStyle::with_template("{prefix} {wide_bar} {pos}/{len} {per_sec:.1} {eta} left")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("█▉░");
        bar.set_style(style.with_key(
            "per_sec",
            |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.1} img/s", s.per_sec());
            },
        ));
        bar.set_prefix(label.to_string());
        Progress { bar }
    }

    /// Changes the total (when it is known only once work starts).
    pub fn total_is(&mut self, total: usize) {
        self.bar.set_length(total as u64);
    }

    pub fn set(&mut self, done: usize) {
        self.bar.set_position(done as u64);
    }

    pub fn finish(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// Progress of the stages on stderr.
#[derive(Default)]
struct StageBar(Mutex<Option<(Stage, Progress)>>);

impl StageBar {
    fn update(&self, stage: Stage, done: usize, total: usize) {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if g.as_ref().is_none_or(|(s, _)| *s != stage) {
            if let Some((_, p)) = g.as_mut() {
                p.finish();
            }
            *g = Some((stage, Progress::new(stage.name(), total)));
        }
        if let Some((_, p)) = g.as_mut() {
            p.set(done);
        }
    }
    fn finish(&self) {
        if let Some((_, p)) = self.0.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            p.finish();
        }
    }
}

/// Runs `work` (never cancelled) with its stages' progress drawn on stderr.
pub fn with_stages<T>(
    work: impl FnOnce(&AtomicBool, &(dyn Fn(Stage, usize, usize) + Sync)) -> T,
) -> T {
    let bar = StageBar::default();
    let never = AtomicBool::new(false);
    let r = work(&never, &|s, d, t| bar.update(s, d, t));
    bar.finish();
    r
}
