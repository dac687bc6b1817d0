//! `osteoai classify PATH...`: one row per image. With `--output FILE` (CSV or JSON lines) the
//! rows are appended batch by batch and flushed, so a run can be sharded (`--shard I/N`),
//! stopped (SIGTERM/SIGINT finish the batch in flight, flush and exit with status 75) and
//! resumed (`--resume`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use clap::{Args, ValueEnum};
use osteoai_core::engine::Engine;
use osteoai_core::scan::ScanIssue;
use osteoai_core::scores::run::score_scope;
use osteoai_core::scores::writer::{ScoreWriter, render};
use osteoai_core::scores::{self, Meta, ScoreRow};
use osteoai_core::shard::Shard;
use osteoai_core::shard::{Scope, scope};

use super::output::{emit, table};
use super::progress::Progress;
use super::sharding::ShardArgs;
use super::{ModelArgs, model_dir, select_device};

/// Exit status of a run stopped by SIGTERM or SIGINT after flushing its rows (EX_TEMPFAIL:
/// run it again with `--resume`).
pub const EXIT_STOPPED: i32 = 75;

#[derive(Args, Debug)]
pub struct ClassifyArgs {
    /// Images or folders (searched recursively).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Output format [default: by the --output extension (.csv, .jsonl), else table].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Write to this file instead of stdout: CSV and JSON lines are appended batch by batch
    /// (with a `.meta.json` sidecar), a table atomically at the end. `{shard}` in the name
    /// becomes the shard's index (`all` without sharding).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Images per backbone batch [default: 32 on a GPU, 8 on the CPU].
    #[arg(long)]
    pub batch: Option<usize>,
    #[command(flatten)]
    pub shard: ShardArgs,
    /// Keep the rows already in --output and score only the images not there yet (after a
    /// preemption, a time limit or a crash).
    #[arg(long, requires = "output")]
    pub resume: bool,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Jsonl,
    /// Written at the end of the run (not appended to: no --resume).
    Parquet,
}

/// `score_scope` with a progress line on stderr.
fn scored(
    engine: &Engine,
    sc: &Scope,
    skip: &HashSet<String>,
    batch: usize,
    cancel: &AtomicBool,
    flush: impl FnMut(&[ScoreRow]) -> Result<(), String>,
) -> Result<(Vec<ScoreRow>, bool), String> {
    let mut bar: Option<Progress> = None;
    let r = score_scope(engine, sc, skip, batch, cancel, flush, |done, total| {
        bar.get_or_insert_with(|| Progress::new("classifying", total))
            .set(done)
    });
    if let Some(b) = bar.as_mut() {
        b.finish();
    }
    r
}

/// Loads the model, scans `paths` and scores every image, with a progress line.
pub fn score(
    paths: &[PathBuf],
    model: &ModelArgs,
    batch: Option<usize>,
) -> Result<(Engine, Vec<ScoreRow>, Vec<ScanIssue>), String> {
    let engine = load(model, batch)?;
    let sc = scope(paths, &engine.manifest().classes, None)?;
    let never = AtomicBool::new(false);
    let batch = engine.backbone.batch_size;
    let (rows, _) = scored(&engine, &sc, &HashSet::new(), batch, &never, |_| Ok(()))?;
    Ok((engine, rows, sc.issues))
}

/// Loads the engine; without `batch`, the device's batch size (`engine::default_batch`).
fn load(model: &ModelArgs, batch: Option<usize>) -> Result<Engine, String> {
    let dir = model_dir(&model.model)?;
    let device = select_device(model.device)?;
    let mut engine = Engine::load(&dir, device).map_err(|e| e.to_string())?;
    engine.backbone.batch_size = batch.unwrap_or(engine.backbone.batch_size).max(1);
    engine.features_cache = Some(osteoai_core::features::default_cache());
    Ok(engine)
}

/// SIGTERM and SIGINT set `cancel` (the batch in flight finishes) and record which signal came;
/// a second one ends the process at once.
pub fn stop_on_signals(cancel: &Arc<AtomicBool>) -> Arc<AtomicUsize> {
    let which = Arc::new(AtomicUsize::new(0));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        let _ = signal_hook::flag::register_conditional_shutdown(sig, 128 + sig, cancel.clone());
        let _ = signal_hook::flag::register_usize(sig, which.clone(), sig as usize);
        let _ = signal_hook::flag::register(sig, cancel.clone());
    }
    which
}

pub fn signal_name(sig: usize) -> &'static str {
    match sig as i32 {
        signal_hook::consts::SIGTERM => "SIGTERM",
        signal_hook::consts::SIGINT => "SIGINT",
        _ => "a signal",
    }
}

fn output_format(a: &ClassifyArgs) -> Format {
    a.format.unwrap_or_else(
        || match a.output.as_deref().and_then(scores::Format::of_path) {
            Some(scores::Format::Csv) => Format::Csv,
            Some(scores::Format::Jsonl) => Format::Jsonl,
            Some(scores::Format::Parquet) => Format::Parquet,
            None => Format::Table,
        },
    )
}

fn file_format(f: Format) -> Option<scores::Format> {
    match f {
        Format::Csv => Some(scores::Format::Csv),
        Format::Jsonl => Some(scores::Format::Jsonl),
        Format::Table | Format::Parquet => None,
    }
}

/// `{shard}` in an output path becomes the shard's index (`all` when unsharded).
pub fn expand_shard(path: &Path, shard: Option<Shard>) -> PathBuf {
    let s = path.to_string_lossy();
    if !s.contains("{shard}") {
        return path.to_path_buf();
    }
    let i = shard.map_or("all".to_string(), |s| s.index.to_string());
    PathBuf::from(s.replace("{shard}", &i))
}

pub fn run(mut a: ClassifyArgs) -> Result<i32, String> {
    let shard = a.shard.resolve()?;
    a.output = a.output.map(|p| expand_shard(&p, shard));
    let format = output_format(&a);
    let streamed = a.output.as_deref().zip(file_format(format));
    if a.resume && format == Format::Parquet {
        return Err(
            "--resume needs a .jsonl or .csv output (Parquet cannot be appended to; \
                    merge the parts into .parquet)"
                .into(),
        );
    }
    if a.resume && streamed.is_none() {
        return Err("--resume needs --output FILE in CSV or JSON lines".into());
    }
    if format == Format::Parquet && a.output.is_none() {
        return Err("Parquet goes to a file: --output FILE.parquet".into());
    }
    let engine = load(&a.model, a.batch)?;
    let batch = engine.backbone.batch_size;
    let m = engine.manifest().clone();
    let sc = scope(&a.paths, &m.classes, shard)?;
    if let Some(s) = shard {
        eprintln!(
            "osteoai: shard {s}: {} of {} images",
            sc.entries.len(),
            sc.scanned
        );
    }
    let positive = m.classes.positive.clone();
    // More than two classes (a fitted bundle): every class's probability too.
    let extra: Vec<String> = if m.classes.names.len() > 2 {
        m.classes.names.clone()
    } else {
        Vec::new()
    };
    let cancel = Arc::new(AtomicBool::new(false));
    let which = stop_on_signals(&cancel);
    let mut meta = Meta {
        osteoai: env!("CARGO_PKG_VERSION").into(),
        roots: sc.roots.clone(),
        shard,
        images: sc.entries.len(),
        rows: 0,
        complete: false,
        model: engine.bundle.name().to_string(),
        model_fingerprint: format!("{:016x}", engine.bundle.fingerprint),
        classes: m.classes.clone(),
        threshold: m.threshold,
        format: scores::Format::Csv,
    };
    let (rows, complete) = match streamed {
        Some((path, ff)) => {
            meta.format = ff;
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .map_err(|e| format!("{}: {e}", parent.display()))?;
            }
            let (mut w, skip) = open_output(path, ff, &positive, &extra, a.resume, &meta)?;
            meta.rows = w.rows;
            meta.write(path)?;
            let (rows, complete) = scored(&engine, &sc, &skip, batch, &cancel, |r| w.append(r))?;
            meta.rows = w.rows;
            meta.complete = complete;
            if complete {
                let rank: std::collections::HashMap<&str, usize> = rows
                    .iter()
                    .enumerate()
                    .map(|(i, r)| (r.path.as_str(), i))
                    .collect();
                w.finish_sorted(|p| rank.get(p).copied())?;
            }
            meta.write(path)?;
            (rows, complete)
        }
        None => {
            let (rows, complete) =
                scored(&engine, &sc, &HashSet::new(), batch, &cancel, |_| Ok(()))?;
            let done: Vec<ScoreRow> = rows
                .iter()
                .filter(|r| r.p.is_some() || r.error.is_some())
                .cloned()
                .collect();
            match (format, a.output.as_deref()) {
                (Format::Parquet, Some(path)) => {
                    osteoai_core::scores::writer::write_all(
                        path,
                        scores::Format::Parquet,
                        &positive,
                        &extra,
                        &done,
                    )?;
                    meta.format = scores::Format::Parquet;
                    meta.rows = done.len();
                    meta.complete = complete;
                    meta.write(path)?;
                }
                _ => emit(
                    a.output.as_deref(),
                    &text_of(format, &done, &positive, &extra),
                )?,
            }
            (rows, complete)
        }
    };
    for i in &sc.issues {
        eprintln!("osteoai: skipped {}: {}", i.path.display(), i.message);
    }
    if !complete {
        let sig = signal_name(which.load(Ordering::SeqCst));
        let kept = match streamed {
            Some((p, _)) => format!(
                "{} of {} images are in {}; the same command with --resume finishes",
                meta.rows,
                sc.entries.len(),
                p.display()
            ),
            None => match (format, a.output.as_deref()) {
                (Format::Parquet, Some(p)) => format!(
                    "{} of {} images are in {} (marked incomplete in its sidecar)",
                    meta.rows,
                    sc.entries.len(),
                    p.display()
                ),
                (_, Some(p)) => format!("the images finished are in {}", p.display()),
                (_, None) => "the rows above are the images finished".into(),
            },
        };
        eprintln!("osteoai: stopped by {sig} after the batch in flight: {kept}.");
        tracing::warn!(signal = sig, rows = meta.rows, "classify stopped");
        return Ok(EXIT_STOPPED);
    }
    let failed = rows.iter().filter(|r| r.error.is_some()).count();
    eprintln!(
        "osteoai: {} images, {} scored, {} failed, model {} (threshold {:.4}). Not for clinical use.",
        rows.len(),
        rows.len() - failed,
        failed,
        engine.bundle.name(),
        m.threshold
    );
    Ok(0)
}

/// The output file, new or resumed; the paths already in it.
fn open_output(
    path: &Path,
    format: scores::Format,
    positive: &str,
    extra: &[String],
    resume: bool,
    meta: &Meta,
) -> Result<(ScoreWriter, HashSet<String>), String> {
    if !resume {
        return Ok((
            ScoreWriter::create(path, format, positive, extra)?,
            HashSet::new(),
        ));
    }
    if let Some(old) = Meta::read(path)? {
        if old.model_fingerprint != meta.model_fingerprint {
            return Err(format!(
                "cannot resume {}: it was scored by model {} ({}), this run uses {} ({})",
                path.display(),
                old.model,
                old.model_fingerprint,
                meta.model,
                meta.model_fingerprint
            ));
        }
        if old.shard != meta.shard {
            let show =
                |s: Option<Shard>| s.map_or("no shard".to_string(), |s| format!("shard {s}"));
            return Err(format!(
                "cannot resume {}: it holds {}, this run is {}",
                path.display(),
                show(old.shard),
                show(meta.shard)
            ));
        }
    }
    let r = ScoreWriter::resume(path, format, positive, extra)?;
    if r.cut > 0 {
        eprintln!(
            "osteoai: {}: cut off a last line left half-written ({} bytes)",
            path.display(),
            r.cut
        );
    }
    eprintln!(
        "osteoai: resuming {}: {} rows already there",
        path.display(),
        r.done.len()
    );
    Ok((r.writer, r.done))
}

fn text_of(format: Format, rows: &[ScoreRow], positive: &str, extra: &[String]) -> String {
    match format {
        Format::Table => {
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    let dash = |s: &Option<String>| s.clone().unwrap_or_else(|| "-".into());
                    vec![
                        r.path.clone(),
                        dash(&r.split),
                        dash(&r.label),
                        r.p.map(|p| format!("{p:.4}")).unwrap_or_else(|| "-".into()),
                        dash(&r.predicted),
                        r.error.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            let p_col = format!("p_{positive}");
            table(
                &["path", "split", "label", &p_col, "predicted", "error"],
                &cells,
            )
        }
        Format::Csv => render(scores::Format::Csv, positive, extra, rows, true),
        // Parquet never reaches text (it goes to its file above).
        Format::Jsonl | Format::Parquet => {
            render(scores::Format::Jsonl, positive, extra, rows, true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_placeholder_in_the_output_name() {
        let s = Shard::new(3, 8).unwrap();
        let p = Path::new("/out/scores.{shard}.jsonl");
        assert_eq!(expand_shard(p, Some(s)), Path::new("/out/scores.3.jsonl"));
        assert_eq!(expand_shard(p, None), Path::new("/out/scores.all.jsonl"));
        assert_eq!(
            expand_shard(Path::new("a.csv"), Some(s)),
            Path::new("a.csv")
        );
    }
}
