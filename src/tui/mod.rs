//! The dashboard: `osteoai [DIR]`. One event channel feeds the UI thread (input, scan results,
//! scores, prepared images, ticks); it only updates state and draws. Scanning, classification
//! and image preparation run on their own threads. The terminal is restored on every exit path
//! on panic (ratatui's init installs the hook) and on SIGTERM, SIGHUP, SIGINT and SIGQUIT
//! (`terminal`). Input is read from the terminal by one thread that also takes the answers to
//! the image-capability query, written after the first frame (`input`).

pub mod app;
mod app_actions;
mod app_keys;
#[cfg(test)]
mod app_tests;
pub mod audit_ui;
pub mod audit_view;
pub mod bench;
pub mod event;
pub mod explain_ui;
pub mod explain_view;
mod explain_worker;
pub mod fit_view;
mod help_ui;
pub mod images;
pub mod input;
mod list_ui;
pub mod matrix_ui;
pub mod meta_panel;
pub mod mouse;
mod preview_ui;
pub mod review;
pub mod scores_worker;
pub mod terminal;
pub mod theme;
pub mod train_ui;
pub mod train_view;
mod train_worker;
pub mod ui;
pub mod window_level;
pub mod worker;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use osteoai_core::labels::ClassSpec;
use osteoai_core::model::Bundle;
use ratatui::Terminal;
use ratatui::backend::Backend;
use ratatui_image::picker::Picker;

use crate::options::{DashboardArgs, Protocol, model_dir};
use app::{App, Effect};
use event::Event;
use images::Images;
use theme::Theme;
use worker::Worker;

/// Streams the scan of `root` to the UI in chunks, so the first frame does not wait for it.
pub fn spawn_scan(root: PathBuf, classes: ClassSpec, tx: Sender<Event>) {
    let _ = std::thread::Builder::new()
        .name("scan".into())
        .spawn(move || {
            let mut chunk = Vec::new();
            let mut last = Instant::now();
            for item in osteoai_core::scan::scan_iter(&root, &classes) {
                match item {
                    osteoai_core::scan::ScanItem::Image(e) => chunk.push(e),
                    osteoai_core::scan::ScanItem::Issue(i) => {
                        let _ = tx.send(Event::ScanIssue(i.path, i.message));
                    }
                }
                if chunk.len() >= 4096
                    || (!chunk.is_empty() && last.elapsed() > Duration::from_millis(30))
                {
                    if tx.send(Event::Scanned(std::mem::take(&mut chunk))).is_err() {
                        return;
                    }
                    last = Instant::now();
                }
            }
            let _ = tx.send(Event::Scanned(chunk));
            let _ = tx.send(Event::ScanDone);
        });
}

/// The picker the first frame uses: halfblocks, or the protocol the user named (its cell size
/// comes with the terminal's answer to the query, written after the first frame).
fn first_picker(protocol: Protocol) -> Picker {
    let mut picker = Picker::halfblocks();
    if let Some(p) = terminal::picker_from(&terminal::Answers::default(), protocol) {
        picker = p;
    }
    picker
}

/// Statistics a benchmark reads from the loop.
#[derive(Default, Debug, Clone)]
pub struct LoopStats {
    pub first_frame: Option<Duration>,
    /// Time from a key's arrival to the end of the frame that shows its effect.
    pub key_latencies: Vec<Duration>,
    pub frames: usize,
}

/// The link to a real terminal: the capability query still to write, and its answers so far.
pub struct TermLink {
    pub query: Option<String>,
    pub answers: terminal::Answers,
    pub protocol: Protocol,
}

/// Applies one event to the state; returns the exit status when the session ends.
fn handle(
    app: &mut App,
    ev: Event,
    worker: &Worker,
    images: &mut Images,
    link: &mut Option<TermLink>,
    pending_keys: &mut Vec<Instant>,
) -> Option<i32> {
    match ev {
        Event::Key(k, at) => {
            pending_keys.push(at);
            debug_panic_trigger(&k);
            let effects = app.on_key(k);
            for e in &effects {
                worker.apply(e);
            }
            return effects.contains(&Effect::Quit).then_some(0);
        }
        Event::Mouse(m) => {
            let effects = app.on_mouse(m);
            for e in &effects {
                worker.apply(e);
            }
            app.mark_dirty();
            return effects.contains(&Effect::Quit).then_some(0);
        }
        Event::Reply(r) => {
            if let Some(l) = link
                && l.answers.push(&r)
                && let Some(p) = terminal::picker_from(&l.answers, l.protocol)
            {
                images.set_picker(p);
                app.mark_dirty();
            }
        }
        // The journal and the review marks are written by each action as it happens, so every
        // completed relabel is already on disk; nothing is half-done between two events.
        Event::Signal(sig) => return Some(128 + sig),
        Event::Resize | Event::Tick => {}
        Event::Scanned(entries) => {
            let start = app.items.len();
            let lookups: Vec<(usize, PathBuf)> = entries
                .iter()
                .enumerate()
                .map(|(k, e)| (start + k, e.path.clone()))
                .collect();
            app.add_entries(entries);
            worker.lookup(lookups);
        }
        Event::ScanIssue(p, m) => app.scan_issues.push((p, m)),
        Event::ScanDone => {
            app.scanning = false;
            app.mark_dirty();
        }
        Event::EngineReady(Ok(info)) => {
            app.threshold = info.threshold;
            app.model = Some(info);
            app.mark_dirty();
        }
        Event::EngineReady(Err(e)) => app.model_error = Some(e),
        Event::Note(n) => {
            app.status = Some(n);
            app.mark_dirty();
        }
        Event::Score {
            run,
            index,
            path,
            result,
            computed,
        } => {
            app.apply_score(run, index, &path, result, computed);
        }
        Event::Cached { index, path, p } => app.apply_cached(index, &path, p),
        Event::JobDone { run } => app.job_finished(run),
        Event::JobProgress {
            run,
            stage,
            done,
            total,
        } => app.job_progress(run, stage, done, total),
        Event::AuditDone { run, result } => {
            for e in app.audit_done(run, result) {
                worker.apply(&e);
            }
        }
        Event::FitDone { run, result } => app.fit_done(run, result),
        Event::Train { run, update } => app.train_update(run, update),
        Event::TrainNote { run, text } => app.train_note(run, text),
        Event::TrainDone { run, result } => {
            for e in app.train_done(run, result) {
                worker.apply(&e);
            }
            app.mark_dirty();
        }
        Event::Heatmap {
            key,
            result,
            methods,
        } => {
            use explain_view::MapEntry;
            let entry = match result {
                Ok((map, refining)) => MapEntry::Ready { map, refining },
                Err(e) => MapEntry::Failed(e),
            };
            app.explain.insert(key, entry, methods);
            app.mark_dirty();
        }
        Event::Image(key, entry, generation) => {
            if let images::ImgEntry::Ready(_, Some(info)) = &entry
                && app.selected_item().is_some_and(|i| i.path == key.path)
            {
                app.wl.follow(&key.path);
                app.wl.observe(&key.path, info.clone());
            }
            images.insert(key, entry, generation)
        }
    }
    None
}

/// Debug builds only: `OSTEOAI_DEBUG_PANIC=<key>` panics on that key, so a test can check for
/// real that a panic restores the terminal.
fn debug_panic_trigger(k: &crossterm::event::KeyEvent) {
    #[cfg(debug_assertions)]
    if let Ok(c) = std::env::var("OSTEOAI_DEBUG_PANIC")
        && k.code == crossterm::event::KeyCode::Char(c.chars().next().unwrap_or('\0'))
    {
        panic!("OSTEOAI_DEBUG_PANIC: deliberate panic on key {c:?}");
    }
    let _ = k;
}

/// The UI loop: wait for an event, apply it and everything else already queued (bounded), draw
/// once, tell the image workers what is wanted now.
pub fn event_loop<B: Backend>(
    terminal: &mut Terminal<B>,
    s: &mut Session,
    theme: Theme,
    started: Instant,
    stats: &mut LoopStats,
) -> Result<i32, String> {
    let Session {
        app,
        rx,
        worker,
        images,
        link,
        ..
    } = s;
    let mut pending_keys = Vec::new();
    loop {
        let mut wanted = Vec::new();
        terminal
            .draw(|f| wanted = ui::draw(f, app, images, theme))
            .map_err(|e| format!("cannot draw: {e}"))?;
        let now = Instant::now();
        stats.frames += 1;
        if stats.first_frame.is_none() {
            stats.first_frame = Some(now - started);
            // Ask the terminal what it can draw only now: its answer (or silence) never delays
            // the first frame, and it arrives through the input thread like any key.
            if let Some(q) = link.as_mut().and_then(|l| l.query.take()) {
                let mut out = std::io::stdout();
                let _ = out.write_all(q.as_bytes()).and_then(|_| out.flush());
            }
        }
        stats
            .key_latencies
            .extend(pending_keys.drain(..).map(|t| now - t));
        images.want(wanted);
        if let Some(k) = app.explain_wanted()
            && app.explain.request(&k)
        {
            worker.explain(k);
        }
        let first = match rx.recv_timeout(Duration::from_millis(250)) {
            Ok(ev) => ev,
            Err(RecvTimeoutError::Timeout) => Event::Tick,
            Err(RecvTimeoutError::Disconnected) => return Ok(0),
        };
        if let Some(code) = handle(app, first, worker, images, link, &mut pending_keys) {
            return Ok(code);
        }
        // Drain what else is queued, but redraw at least every 8 ms.
        let budget = Instant::now() + Duration::from_millis(8);
        while Instant::now() < budget {
            match rx.try_recv() {
                Ok(ev) => {
                    if let Some(code) = handle(app, ev, worker, images, link, &mut pending_keys) {
                        return Ok(code);
                    }
                }
                Err(_) => break,
            }
        }
    }
}

/// Everything the dashboard needs, started: state, channel, workers.
pub struct Session {
    pub app: App,
    pub tx: Sender<Event>,
    pub rx: Receiver<Event>,
    pub worker: Worker,
    pub images: Images,
    /// Set for a real terminal (None under TestBackend).
    pub link: Option<TermLink>,
}

pub fn start_session(
    root: &Path,
    model: &Option<PathBuf>,
    device: osteoai_core::device::DeviceChoice,
    picker: Picker,
) -> Session {
    // A failure to unpack the built-in model shows as the worker's "no model" message.
    let dir = model_dir(model).unwrap_or_else(|_| PathBuf::from("models/default"));
    // Classes and threshold from the manifest (no weights yet) so the scan labels at once.
    let (classes, threshold) = match Bundle::read_manifest(&dir) {
        Ok(m) => (m.classes, m.threshold),
        Err(_) => (ClassSpec::fracture_default(), 0.5),
    };
    let (tx, rx) = mpsc::channel();
    let worker = Worker::start(dir, device, tx.clone());
    begin(root, classes, threshold, picker, tx, rx, worker)
}

/// A session over the scores in `file` (`--scores`): no model is loaded. Fails at once when
/// the file cannot be read; its rows are read and matched on the worker.
pub fn start_scores_session(
    root: &Path,
    file: &Path,
    model: &Option<PathBuf>,
    picker: Picker,
) -> Result<Session, String> {
    let (classes, threshold, _, _) =
        osteoai_core::scores::input::classes_of(file, &|| model_dir(model))?;
    let (tx, rx) = mpsc::channel();
    let worker = Worker::start_scores(
        file.to_path_buf(),
        root.to_path_buf(),
        model.clone(),
        tx.clone(),
    );
    Ok(begin(root, classes, threshold, picker, tx, rx, worker))
}

fn begin(
    root: &Path,
    classes: ClassSpec,
    threshold: f64,
    picker: Picker,
    tx: Sender<Event>,
    rx: Receiver<Event>,
    worker: Worker,
) -> Session {
    let app = App::new(root.to_path_buf(), classes.clone(), threshold);
    spawn_scan(root.to_path_buf(), classes, tx.clone());
    let images = Images::start(picker, 2, tx.clone(), 512);
    Session {
        app,
        tx,
        rx,
        worker,
        images,
        link: None,
    }
}

/// When the process started (set first thing in `main`): the first frame is timed from here.
pub static PROCESS_START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

pub fn run(args: DashboardArgs, settings: &crate::options::config::Config) -> Result<i32, String> {
    let started = *PROCESS_START.get_or_init(Instant::now);
    crate::options::return_memory_at_once();
    let root = args.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    if !root.exists() {
        return Err(format!("{} does not exist", root.display()));
    }
    if !std::io::stdout().is_terminal() {
        return Err(
            "the dashboard needs a terminal; for scripts use `osteoai classify` or `osteoai eval`"
                .into(),
        );
    }
    let root = std::fs::canonicalize(&root).unwrap_or(root);
    let picker = first_picker(args.protocol);
    // Before the terminal is taken, so that a bad --scores file is a plain error.
    let mut s = match &args.scores {
        Some(file) => start_scores_session(&root, file, &args.model.model, picker)?,
        None => start_session(&root, &args.model.model, args.model.device, picker),
    };
    let mut terminal =
        ratatui::try_init().map_err(|e| format!("cannot set up the terminal: {e}"))?;
    terminal::install_panic_restore();
    if !args.no_mouse
        && std::env::var_os("OSTEOAI_NO_MOUSE").is_none_or(|v| v.is_empty() || v == "0")
    {
        terminal::enable_mouse();
    }
    s.app.threshold_step = settings.threshold_step;
    s.app.thumbnail = settings.thumbnail;
    s.app.keymap = settings.keymap.clone();
    s.app.finetune = settings.finetune.clone();
    s.app.wl.show_phi = args.show_phi;
    s.app.patients = osteoai_core::audit::patients::PatientOptions {
        groups_file: args.groups.clone(),
        group_dir: args.group_dir,
        dicom: true,
    };
    s.images.set_show_phi(args.show_phi);
    s.link = Some(TermLink {
        query: terminal::query(args.protocol),
        answers: terminal::Answers::default(),
        protocol: args.protocol,
    });
    terminal::spawn_signals(s.tx.clone());
    terminal::spawn_input(s.tx.clone());
    let mut stats = LoopStats::default();
    let result = event_loop(
        &mut terminal,
        &mut s,
        Theme::from_env().with_colors(&settings.colors),
        started,
        &mut stats,
    );
    terminal::restore();
    s.images.stop();
    if let Some(path) = std::env::var_os("OSTEOAI_STATS_FILE") {
        let first = stats.first_frame.map_or(-1.0, |d| d.as_secs_f64() * 1000.0);
        let _ = std::fs::write(
            path,
            format!(
                "{{\"first_frame_ms\":{first:.3},\"frames\":{}}}\n",
                stats.frames
            ),
        );
    }
    result
}

#[cfg(test)]
mod snapshots;
#[cfg(test)]
mod snapshots_audit;
#[cfg(test)]
mod snapshots_dicom;
#[cfg(test)]
mod snapshots_explain;
#[cfg(test)]
mod snapshots_train;
