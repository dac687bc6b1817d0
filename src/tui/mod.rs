//! The dashboard: `osteoai [DIR]`. One event channel feeds the UI thread (input, scan results,
//! scores, prepared images, ticks); it only updates state and draws. Scanning, classification
//! and image preparation run on their own threads. The terminal is restored on every exit path
//! and on panic (ratatui's init installs the hook).

pub mod app;
pub mod audit_ui;
pub mod audit_view;
pub mod bench;
pub mod event;
pub mod fit_view;
pub mod images;
pub mod matrix_ui;
pub mod review;
pub mod theme;
pub mod ui;
pub mod worker;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use crossterm::event::{Event as CtEvent, KeyEventKind};
use osteoai::labels::ClassSpec;
use osteoai::model::Bundle;
use ratatui::Terminal;
use ratatui::backend::Backend;
use ratatui_image::picker::{Picker, ProtocolType};

use crate::cli::{DashboardArgs, Protocol, model_dir};
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
            for item in osteoai::scan::scan_iter(&root, &classes) {
                match item {
                    osteoai::scan::ScanItem::Image(e) => chunk.push(e),
                    osteoai::scan::ScanItem::Issue(i) => {
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

/// Reads terminal input on its own thread.
fn spawn_input(tx: Sender<Event>) {
    let _ = std::thread::Builder::new()
        .name("input".into())
        .spawn(move || {
            loop {
                let ev = match crossterm::event::read() {
                    Ok(CtEvent::Key(k)) if k.kind != KeyEventKind::Release => {
                        Event::Key(k, Instant::now())
                    }
                    Ok(CtEvent::Resize(_, _)) => Event::Resize,
                    Ok(_) => continue,
                    Err(_) => return,
                };
                if tx.send(ev).is_err() {
                    return;
                }
            }
        });
}

fn picker_for(protocol: Protocol) -> Picker {
    let mut picker = if protocol == Protocol::Halfblocks
        || !std::io::stdout().is_terminal()
        || !std::io::stdin().is_terminal()
    {
        Picker::halfblocks()
    } else {
        // Asks the terminal; a silent one answers nothing within 2 s and gets halfblocks.
        Picker::from_query_stdio().unwrap_or_else(|_| Picker::halfblocks())
    };
    match protocol {
        Protocol::Kitty => picker.set_protocol_type(ProtocolType::Kitty),
        Protocol::Sixel => picker.set_protocol_type(ProtocolType::Sixel),
        Protocol::Iterm2 => picker.set_protocol_type(ProtocolType::Iterm2),
        Protocol::Halfblocks => picker.set_protocol_type(ProtocolType::Halfblocks),
        Protocol::Auto => {}
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

/// Applies one event to the state; returns true to quit.
fn handle(
    app: &mut App,
    ev: Event,
    worker: &Worker,
    images: &mut Images,
    pending_keys: &mut Vec<Instant>,
) -> bool {
    match ev {
        Event::Key(k, at) => {
            pending_keys.push(at);
            let effects = app.on_key(k);
            for e in &effects {
                worker.apply(e);
            }
            return effects.contains(&Effect::Quit);
        }
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
        Event::Image(key, entry) => images.insert(key, entry),
    }
    false
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
        stats.first_frame.get_or_insert(now - started);
        stats
            .key_latencies
            .extend(pending_keys.drain(..).map(|t| now - t));
        images.want(wanted);
        let first = match rx.recv_timeout(Duration::from_millis(250)) {
            Ok(ev) => ev,
            Err(RecvTimeoutError::Timeout) => Event::Tick,
            Err(RecvTimeoutError::Disconnected) => return Ok(0),
        };
        if handle(app, first, worker, images, &mut pending_keys) {
            return Ok(0);
        }
        // Drain what else is queued, but redraw at least every 8 ms.
        let budget = Instant::now() + Duration::from_millis(8);
        while Instant::now() < budget {
            match rx.try_recv() {
                Ok(ev) => {
                    if handle(app, ev, worker, images, &mut pending_keys) {
                        return Ok(0);
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
}

pub fn start_session(
    root: &Path,
    model: &Option<PathBuf>,
    device: osteoai::device::DeviceChoice,
    picker: Picker,
) -> Session {
    let dir = model_dir(model);
    // Classes and threshold from the manifest (no weights yet) so the scan labels at once.
    let (classes, threshold) = match Bundle::read_manifest(&dir) {
        Ok(m) => (m.classes, m.threshold),
        Err(_) => (ClassSpec::fracture_default(), 0.5),
    };
    let app = App::new(root.to_path_buf(), classes.clone(), threshold);
    let (tx, rx) = mpsc::channel();
    spawn_scan(root.to_path_buf(), classes, tx.clone());
    let worker = Worker::start(dir, device, tx.clone());
    let images = Images::start(picker, 2, tx.clone(), 512);
    Session {
        app,
        tx,
        rx,
        worker,
        images,
    }
}

pub fn run(args: DashboardArgs) -> Result<i32, String> {
    let started = Instant::now();
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
    let mut terminal =
        ratatui::try_init().map_err(|e| format!("cannot set up the terminal: {e}"))?;
    let picker = picker_for(args.protocol);
    let mut s = start_session(&root, &args.model.model, args.model.device, picker);
    spawn_input(s.tx.clone());
    let mut stats = LoopStats::default();
    let result = event_loop(
        &mut terminal,
        &mut s,
        Theme::from_env(),
        started,
        &mut stats,
    );
    ratatui::restore();
    s.images.stop();
    result
}

#[cfg(test)]
mod snapshots;
#[cfg(test)]
mod snapshots_audit;
