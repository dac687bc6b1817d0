//! `osteoai eval DIR`: metrics against folder labels, overall and per split.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use osteoai_core::metrics::Metrics;

use osteoai_core::scores::ScoreRow;

use super::ModelArgs;
use super::classify::score;
use super::output::{emit, opt, table};

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Folder with labelled images (class folders, optionally under train/ val/ test/).
    pub dir: PathBuf,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Decision threshold on P(positive) [default: the model's].
    #[arg(long)]
    pub threshold: Option<f64>,
    #[arg(long, value_enum, default_value_t = EvalFormat::Table)]
    pub format: EvalFormat,
    /// Exit with status 1 when the ROC AUC over all images is below this (a CI gate).
    #[arg(long, value_name = "X")]
    pub min_auc: Option<f64>,
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Images per backbone batch [default: 32 on a GPU, 8 on the CPU].
    #[arg(long)]
    pub batch: Option<usize>,
    /// Scores computed before (`classify --output`, `merge`): the metrics of those rows
    /// against DIR's folder labels, with no model run.
    #[arg(long, value_name = "FILE")]
    pub scores: Option<PathBuf>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum EvalFormat {
    Table,
    Json,
}

/// Metrics over the scored, labelled rows, all together and per split.
pub fn metrics_by_set(
    rows: &[ScoreRow],
    positive: &str,
    threshold: f64,
) -> BTreeMap<String, Metrics> {
    let mut sets: BTreeMap<String, (Vec<bool>, Vec<f64>)> = BTreeMap::new();
    for r in rows {
        let (Some(label), Some(p)) = (&r.label, r.p) else {
            continue;
        };
        let y = label == positive;
        for key in std::iter::once("all".to_string()).chain(r.split.clone()) {
            let e = sets.entry(key).or_default();
            e.0.push(y);
            e.1.push(p);
        }
    }
    sets.into_iter()
        .map(|(k, (y, s))| (k, Metrics::compute(&y, &s, threshold)))
        .collect()
}

/// What the report says about where the scores came from.
pub struct Source {
    pub model: String,
    pub device: String,
    pub threshold: f64,
    pub classes: osteoai_core::labels::ClassSpec,
    /// Lines said under the table (e.g. images without a score).
    pub notes: Vec<String>,
}

pub fn run(a: EvalArgs) -> Result<i32, String> {
    if let Some(t) = a.threshold
        && !(0.0..=1.0).contains(&t)
    {
        return Err(format!("--threshold {t} is outside [0, 1]"));
    }
    let (rows, src) = match &a.scores {
        Some(file) => {
            let s = osteoai_core::scores::input::load(file, &a.dir, &|| {
                super::model_dir(&a.model.model)
            })?;
            for n in &s.notes {
                eprintln!("osteoai: {n}");
            }
            let src = Source {
                model: s.model,
                device: format!("none (scores from {})", file.display()),
                threshold: a.threshold.unwrap_or(s.threshold),
                classes: s.classes,
                notes: s.notes,
            };
            (s.rows, src)
        }
        None => {
            let (engine, rows, issues) = score(std::slice::from_ref(&a.dir), &a.model, a.batch)?;
            for i in &issues {
                eprintln!("osteoai: skipped {}: {}", i.path.display(), i.message);
            }
            let m = engine.manifest();
            let src = Source {
                model: engine.bundle.name().to_string(),
                device: engine.backbone.device.description.clone(),
                threshold: a.threshold.unwrap_or(m.threshold),
                classes: m.classes.clone(),
                notes: Vec::new(),
            };
            (rows, src)
        }
    };
    report(&a, &rows, &src)
}

/// Metrics of `rows` printed (or written) as `a` asks; the exit status of the AUC gate.
pub fn report(a: &EvalArgs, rows: &[ScoreRow], src: &Source) -> Result<i32, String> {
    let threshold = src.threshold;
    let sets = metrics_by_set(rows, &src.classes.positive, threshold);
    let errors: Vec<&ScoreRow> = rows.iter().filter(|r| r.error.is_some()).collect();
    let unlabelled = rows
        .iter()
        .filter(|r| r.label.is_none() && r.error.is_none())
        .count();
    let text = match a.format {
        EvalFormat::Json => {
            let v = serde_json::json!({
                "dir": a.dir.display().to_string(),
                "model": src.model,
                "device": src.device,
                "threshold": threshold,
                "positive": src.classes.positive,
                "images": rows.len(),
                "unlabelled": unlabelled,
                "sets": sets,
                "errors": errors.iter().map(|r| serde_json::json!({"path": r.path, "error": r.error})).collect::<Vec<_>>(),
                "notes": src.notes,
            });
            serde_json::to_string_pretty(&v).map_err(|e| e.to_string())? + "\n"
        }
        EvalFormat::Table => {
            let mut s = format!(
                "model {} on {} — threshold {threshold:.4}, positive class {:?}, device {}\n\n",
                src.model,
                a.dir.display(),
                src.classes.positive,
                src.device
            );
            let header = [
                "set",
                "n",
                "accuracy",
                "sensitivity",
                "specificity",
                "ppv",
                "npv",
                "f1",
                "roc_auc",
                "pr_auc",
                "tp",
                "fp",
                "tn",
                "fn",
            ];
            let cells: Vec<Vec<String>> = sets
                .iter()
                .map(|(k, x)| {
                    vec![
                        k.clone(),
                        x.n.to_string(),
                        opt(x.accuracy),
                        opt(x.sensitivity),
                        opt(x.specificity),
                        opt(x.precision),
                        opt(x.npv),
                        opt(x.f1),
                        opt(x.roc_auc),
                        opt(x.pr_auc),
                        x.confusion.tp.to_string(),
                        x.confusion.fp.to_string(),
                        x.confusion.tn.to_string(),
                        x.confusion.fn_.to_string(),
                    ]
                })
                .collect();
            s.push_str(&table(&header, &cells));
            if let Some(all) = sets.get("all") {
                let c = all.confusion;
                let pos = &src.classes.positive;
                let neg = src
                    .classes
                    .names
                    .iter()
                    .find(|n| *n != pos)
                    .map(String::as_str)
                    .unwrap_or("other");
                s.push_str(&format!(
                    "\nconfusion (all)      predicted {pos:<10} predicted {neg}\n  actual {pos:<10}   {:>10}   {:>10}\n  actual {neg:<10}   {:>10}   {:>10}\n",
                    c.tp, c.fn_, c.fp, c.tn
                ));
            } else {
                s.push_str(
                    "\nno labelled images: no metrics (labels come from class folder names)\n",
                );
            }
            s.push_str(&format!(
                "\n{} images, {} failed, {} unlabelled. Not for clinical use.\n",
                rows.len(),
                errors.len(),
                unlabelled
            ));
            for n in &src.notes {
                s.push_str(&format!("note: {n}\n"));
            }
            for r in &errors {
                s.push_str(&format!(
                    "error: {}: {}\n",
                    r.path,
                    r.error.as_deref().unwrap_or("")
                ));
            }
            s
        }
    };
    emit(a.output.as_deref(), &text)?;
    if let Some(min) = a.min_auc {
        let auc = sets.get("all").and_then(|x| x.roc_auc);
        match auc {
            Some(v) if v >= min => {}
            Some(v) => {
                eprintln!("osteoai: ROC AUC {v:.4} is below --min-auc {min}");
                return Ok(1);
            }
            None => {
                eprintln!(
                    "osteoai: ROC AUC is undefined (needs labelled images of both classes); --min-auc {min} fails"
                );
                return Ok(1);
            }
        }
    }
    Ok(0)
}
