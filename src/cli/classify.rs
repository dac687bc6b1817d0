//! `osteoai classify PATH...`: one row per image.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use clap::{Args, ValueEnum};
use osteoai::engine::{Engine, predicted_of};
use osteoai::labels::Split;
use osteoai::scan::{ScanIssue, scan_all};

use super::output::{csv_field, emit, table};
use super::progress::Progress;
use super::{ModelArgs, model_dir, select_device};

#[derive(Args, Debug)]
pub struct ClassifyArgs {
    /// Images or folders (searched recursively).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write to this file (atomically) instead of stdout.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Images per backbone batch.
    #[arg(long, default_value_t = osteoai::engine::DEFAULT_BATCH)]
    pub batch: usize,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Jsonl,
}

/// One image's outcome.
pub struct Row {
    pub path: PathBuf,
    pub split: Option<Split>,
    pub label: Option<String>,
    pub p: Option<f64>,
    /// Every class's probability (class order).
    pub probs: Option<Vec<f64>>,
    pub predicted: Option<String>,
    pub error: Option<String>,
}

/// Loads the model, scans `paths` and scores every image, with a progress line.
pub fn score(
    paths: &[PathBuf],
    model: &ModelArgs,
    batch: usize,
) -> Result<(Engine, Vec<Row>, Vec<ScanIssue>), String> {
    let dir = model_dir(&model.model);
    let device = select_device(model.device)?;
    let mut engine = Engine::load(&dir, device)?;
    engine.backbone.batch_size = batch.max(1);
    engine.features_cache = Some(osteoai::features::default_cache());
    let m = engine.manifest().clone();
    let report = scan_all(paths, &m.classes);
    if report.entries.is_empty() && report.issues.len() == paths.len() && !paths.is_empty() {
        let first = &report.issues[0];
        return Err(format!("{}: {}", first.path.display(), first.message));
    }
    let files: Vec<PathBuf> = report.entries.iter().map(|e| e.path.clone()).collect();
    let mut rows: Vec<Row> = report
        .entries
        .iter()
        .map(|e| Row {
            path: e.path.clone(),
            split: e.split,
            label: e.label.map(|l| m.classes.names[l].clone()),
            p: None,
            probs: None,
            predicted: None,
            error: None,
        })
        .collect();
    let mut bar = Progress::new("classifying", files.len());
    let never = AtomicBool::new(false);
    let mut done = 0;
    let pos = m.classes.positive_index().unwrap_or(0);
    engine.classify_probs_stream(&files, &never, |i, r| {
        match r {
            Ok(p) => {
                rows[i].p = p.get(pos).copied();
                rows[i].predicted = Some(m.classes.names[predicted_of(&m, &p)].clone());
                rows[i].probs = Some(p);
            }
            Err(e) => rows[i].error = Some(e),
        }
        done += 1;
        bar.set(done);
    });
    bar.finish();
    Ok((engine, rows, report.issues))
}

pub fn run(a: ClassifyArgs) -> Result<i32, String> {
    let (engine, rows, issues) = score(&a.paths, &a.model, a.batch)?;
    let positive = engine.manifest().classes.positive.clone();
    let p_col = format!("p_{positive}");
    // More than two classes (a fitted bundle): every class's probability too.
    let names = &engine.manifest().classes.names;
    let extra: Vec<String> = if names.len() > 2 {
        names.clone()
    } else {
        Vec::new()
    };
    let text = match a.format {
        Format::Table => {
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r.path.display().to_string(),
                        r.split.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
                        r.label.clone().unwrap_or_else(|| "-".into()),
                        r.p.map(|p| format!("{p:.4}")).unwrap_or_else(|| "-".into()),
                        r.predicted.clone().unwrap_or_else(|| "-".into()),
                        r.error.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            table(
                &["path", "split", "label", &p_col, "predicted", "error"],
                &cells,
            )
        }
        Format::Csv => {
            let mut s = format!("path,split,label,{p_col},predicted,error");
            for c in &extra {
                s.push_str(&format!(",p_{}", csv_field(c)));
            }
            s.push('\n');
            for r in &rows {
                s.push_str(&format!(
                    "{},{},{},{},{},{}",
                    csv_field(&r.path.display().to_string()),
                    r.split.map(|s| s.to_string()).unwrap_or_default(),
                    csv_field(r.label.as_deref().unwrap_or("")),
                    r.p.map(|p| format!("{p:.6}")).unwrap_or_default(),
                    csv_field(r.predicted.as_deref().unwrap_or("")),
                    csv_field(r.error.as_deref().unwrap_or(""))
                ));
                for k in 0..extra.len() {
                    let p = r.probs.as_ref().and_then(|p| p.get(k));
                    s.push_str(&format!(
                        ",{}",
                        p.map(|p| format!("{p:.6}")).unwrap_or_default()
                    ));
                }
                s.push('\n');
            }
            s
        }
        Format::Jsonl => {
            let mut s = String::new();
            for r in &rows {
                let mut v = serde_json::json!({
                    "path": r.path.display().to_string(),
                    "split": r.split,
                    "label": r.label,
                    p_col.clone(): r.p,
                    "predicted": r.predicted,
                    "error": r.error,
                });
                if !extra.is_empty() {
                    v["probabilities"] = serde_json::json!(r.probs);
                }
                s.push_str(&v.to_string());
                s.push('\n');
            }
            s
        }
    };
    emit(a.output.as_deref(), &text)?;
    let failed = rows.iter().filter(|r| r.error.is_some()).count();
    for i in &issues {
        eprintln!("osteoai: skipped {}: {}", i.path.display(), i.message);
    }
    eprintln!(
        "osteoai: {} images, {} scored, {} failed, model {} (threshold {:.4}). Not for clinical use.",
        rows.len(),
        rows.len() - failed,
        failed,
        engine.bundle.name(),
        engine.manifest().threshold
    );
    Ok(0)
}
