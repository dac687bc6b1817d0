//! `osteoai fit DIR`: a head fitted to the folder's own labels with grouped, stratified K-fold
//! cross-validation; out-of-fold scores, cross-validated metrics, likely label errors, and a
//! model bundle of the final head.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use clap::{Args, ValueEnum};
use osteoai::audit::AuditParams;
use osteoai::engine::Engine;
use osteoai::fit::{FitParams, FitReport, Sample, discover_classes, fit, manifest_for};
use osteoai::labels::ClassSpec;

use super::output::{csv_field, emit, opt, table};
use super::progress::Progress;
use super::{ModelArgs, model_dir, select_device};

#[derive(Args, Debug)]
pub struct FitArgs {
    /// A folder of labelled images: labels from the class folders (any names, two or more).
    pub dir: PathBuf,
    #[arg(long, default_value_t = 5)]
    pub folds: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Where to write the bundle [default: DIR/.osteoai/models/fit].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// What stdout gets: a summary table, one CSV row per image, or the whole report as JSON.
    #[arg(long, value_enum, default_value_t = FitFormat::Table)]
    pub format: FitFormat,
    /// Write the stdout output to this file (atomically) instead.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Folds grouped by the audit's groups of copies (audit), or not grouped (none).
    #[arg(long, value_enum, default_value_t = Grouping::Audit)]
    pub groups: Grouping,
    /// The positive class of a two-class folder [default: fracture, else the second name].
    #[arg(long)]
    pub positive: Option<String>,
    /// Count the labels of each image's copies (audit groups) as evidence for label issues
    /// (assumed label noise; 0 turns it off, leaving confident learning on the out-of-fold
    /// probabilities alone, as cleanlab does).
    #[arg(long, default_value_t = 0.1)]
    pub copy_noise: f64,
    /// Boosting rounds of each LightGBM head.
    #[arg(long, default_value_t = FitParams::default().rounds)]
    pub rounds: u32,
    /// Label issues shown in the table.
    #[arg(long, default_value_t = 20)]
    pub show: usize,
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum FitFormat {
    Table,
    Csv,
    Json,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Grouping {
    Audit,
    None,
}

/// Everything a fit produced, for the command and for `audit --fit`.
pub struct FitRun {
    pub report: FitReport,
    pub bundle: PathBuf,
}

/// Scans, groups (optionally through the audit), fits and saves the bundle.
pub fn run_fit(
    dir: &Path,
    engine: &Engine,
    params: &FitParams,
    grouping: Grouping,
    positive: Option<&str>,
    out: Option<&Path>,
    command: &str,
    audited: Option<&osteoai::audit::report::Report>,
) -> Result<FitRun, String> {
    if !dir.is_dir() {
        return Err(format!("{} is not a folder", dir.display()));
    }
    let files: Vec<PathBuf> = osteoai::scan::scan(dir, &engine.manifest().classes)
        .entries
        .into_iter()
        .map(|e| e.path)
        .collect();
    let spec = discover_classes(dir, &files, positive)?;
    let known = ClassSpec::fracture_default();
    let groups_of = |r: &osteoai::audit::report::Report| -> std::collections::HashMap<PathBuf, usize> {
        r.images
            .iter()
            .filter_map(|im| im.group.map(|g| (PathBuf::from(&im.path), g)))
            .collect()
    };
    let groups = match (grouping, audited) {
        (Grouping::None, _) => Default::default(),
        (Grouping::Audit, Some(r)) => groups_of(r),
        (Grouping::Audit, None) => groups_of(&super::audit::audit_with(
            dir,
            Some(engine),
            &engine.manifest().classes,
            &AuditParams::default(),
        )?),
    };
    let samples: Vec<Sample> = files
        .iter()
        .filter_map(|f| {
            let c = osteoai::fit::class_folder(dir, f, &known)?;
            Some(Sample {
                path: f.clone(),
                label: spec.names.iter().position(|n| *n == c)?,
                group: groups.get(f).copied(),
            })
        })
        .collect();
    let mut bar = Progress::new("features", samples.len());
    let never = AtomicBool::new(false);
    let cache = osteoai::features::default_cache();
    let positive = spec.positive_index().unwrap_or(0);
    let (report, booster) = fit(
        &samples,
        &spec.names,
        positive,
        &engine.backbone,
        Some(&cache),
        params,
        &never,
        |d, t| {
            bar.total_is(t);
            bar.set(d)
        },
    )?;
    bar.finish();
    let bundle = out.map(Path::to_path_buf).unwrap_or_else(|| {
        dir.join(osteoai::journal::SIDECAR)
            .join("models")
            .join("fit")
    });
    let manifest = manifest_for(engine.manifest(), &report, dir, command, &spec);
    manifest.validate()?;
    let head = booster
        .save_string()
        .map_err(|e| format!("LightGBM save: {e}"))?;
    osteoai::train::write_bundle(&engine.bundle.dir, &bundle, &manifest, &head)?;
    osteoai::train::atomic_write(&bundle.join("oof.csv"), csv(&report).as_bytes())?;
    Ok(FitRun { report, bundle })
}

pub fn run(a: FitArgs) -> Result<i32, String> {
    let device = select_device(a.model.device)?;
    let engine = Engine::load(&model_dir(&a.model.model), device)?;
    let params = FitParams {
        folds: a.folds.max(2),
        seed: a.seed,
        rounds: a.rounds.max(1),
        copy_noise: (a.copy_noise > 0.0 && a.copy_noise < 1.0).then_some(a.copy_noise),
        ..FitParams::default()
    };
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let run = run_fit(
        &a.dir,
        &engine,
        &params,
        a.groups,
        a.positive.as_deref(),
        a.out.as_deref(),
        &command,
        None,
    )?;
    let text = match a.format {
        FitFormat::Table => summary(&run, &a.dir, a.show),
        FitFormat::Csv => csv(&run.report),
        FitFormat::Json => {
            serde_json::to_string_pretty(&run.report).map_err(|e| e.to_string())? + "\n"
        }
    };
    emit(a.output.as_deref(), &text)?;
    eprintln!(
        "osteoai: fitted {} images ({} classes) in {:.1} s (features {:.1} s); bundle and oof.csv in {}. Not for clinical use.",
        run.report.images.len(),
        run.report.classes.len(),
        run.report.seconds_features + run.report.seconds_fit,
        run.report.seconds_features,
        run.bundle.display()
    );
    Ok(0)
}

/// One row per image: path, label, suggested, issue_score, is_issue, oof_p_<class>..., fold,
/// uncertain, reason.
pub fn csv(r: &FitReport) -> String {
    let mut s = String::from("path,label,suggested,issue_score,is_issue");
    for c in &r.classes {
        s.push_str(&format!(",oof_p_{}", csv_field(c)));
    }
    s.push_str(",fold,copies,copies_other_label,uncertain,reason\n");
    for im in &r.images {
        s.push_str(&format!(
            "{},{},{},{:.6},{}",
            csv_field(&im.path.display().to_string()),
            csv_field(&r.classes[im.label]),
            csv_field(&r.classes[im.verdict.suggested]),
            im.verdict.issue_score,
            im.verdict.is_issue
        ));
        for p in &im.oof {
            s.push_str(&format!(",{p:.6}"));
        }
        s.push_str(&format!(
            ",{},{},{}\n",
            im.fold,
            im.uncertain,
            csv_field(&im.verdict.reason)
        ));
    }
    s
}

fn spread(m: Option<(f64, f64)>) -> String {
    m.map(|(a, b)| format!("{a:.4} ± {b:.4}"))
        .unwrap_or_else(|| "-".into())
}

/// The person's view: metrics, matrix, the most likely label errors.
pub fn summary(run: &FitRun, dir: &Path, show: usize) -> String {
    let r = &run.report;
    let mut s = format!(
        "fit of {} — {} labelled images, {} classes ({}), {} folds{}\n",
        dir.display(),
        r.images.len(),
        r.classes.len(),
        r.classes.join(", "),
        r.params.folds,
        if r.grouped {
            format!(", grouped by {} groups of copies (audit)", r.groups)
        } else {
            ", not grouped".into()
        }
    );
    s.push_str(&format!(
        "out of fold: ROC AUC {} (per fold {}), accuracy {:.4} (per fold {})\n",
        opt(r.oof.roc_auc),
        spread(r.auc_spread),
        r.oof.accuracy,
        spread(Some(r.accuracy_spread))
    ));
    if let Some(b) = &r.binary {
        s.push_str(&format!(
            "  at threshold {:.4} (best accuracy out of fold): sensitivity {} specificity {} PPV {} NPV {} ({} positive)\n",
            r.threshold,
            opt(b.sensitivity),
            opt(b.specificity),
            opt(b.precision),
            opt(b.npv),
            r.classes[r.positive]
        ));
    }
    s.push_str("\nconfusion out of fold (rows: label, columns: predicted)\n");
    let mut header = vec!["label"];
    header.extend(r.classes.iter().map(String::as_str));
    let rows: Vec<Vec<String>> = r
        .confusion
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let mut v = vec![r.classes[i].clone()];
            v.extend(row.iter().map(|n| n.to_string()));
            v
        })
        .collect();
    for l in table(&header, &rows).lines() {
        s.push_str(&format!("  {l}\n"));
    }
    let ranked = r.ranked_issues();
    s.push_str(&format!(
        "\nlikely label errors (confident learning): {} of {} images; issue_score = 1 - P(given label) out of fold\n",
        ranked.len(),
        r.images.len()
    ));
    let rows: Vec<Vec<String>> = ranked
        .iter()
        .take(show)
        .enumerate()
        .map(|(k, &i)| {
            let im = &r.images[i];
            vec![
                (k + 1).to_string(),
                im.path
                    .strip_prefix(dir)
                    .unwrap_or(&im.path)
                    .display()
                    .to_string(),
                r.classes[im.label].clone(),
                r.classes[im.verdict.suggested].clone(),
                format!("{:.3}", im.verdict.issue_score),
            ]
        })
        .collect();
    for l in table(
        &["rank", "path", "label", "suggested", "issue_score"],
        &rows,
    )
    .lines()
    {
        s.push_str(&format!("  {l}\n"));
    }
    let uncertain = r.images.iter().filter(|i| i.uncertain).count();
    s.push_str(&format!(
        "\nuncertain out of fold (within {} of the decision): {uncertain} images\n",
        r.params.uncertain_band
    ));
    if !r.skipped.is_empty() {
        s.push_str(&format!("skipped {} unreadable images\n", r.skipped.len()));
    }
    s.push_str(&format!(
        "bundle: {} (loadable with --model)\n",
        run.bundle.display()
    ));
    s
}
