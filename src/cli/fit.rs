//! `osteoai fit DIR`: a head fitted to the folder's own labels with grouped, stratified K-fold
//! cross-validation; out-of-fold scores, cross-validated metrics, likely label errors, and a
//! model bundle of the final head.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use clap::{Args, ValueEnum};
use osteoai_core::audit::report::Report;
use osteoai_core::engine::Engine;
use osteoai_core::fit::folder::{FitRun, fit_folder};
use osteoai_core::fit::groups::{Grouping, Groups, groups_for};
use osteoai_core::fit::{FitParams, FitReport};

use super::output::{emit, opt, table};
use super::progress::{Progress, with_stages};
use super::{ModelArgs, model_dir, select_device};

#[derive(Args, Debug)]
pub struct FitArgs {
    /// A folder of labelled images: labels from the class folders (any names, two or more).
    pub dir: PathBuf,
    #[arg(long, default_value_t = 5)]
    pub folds: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Where to write the bundle [default: DIR/.osteoai/models/NAME].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The bundle's name under DIR/.osteoai/models/ (when --out is not given).
    #[arg(long, default_value = "fit")]
    pub name: String,
    /// What stdout gets: a summary table, one CSV row per image, or the whole report as JSON.
    #[arg(long, value_enum, default_value_t = FitFormat::Table)]
    pub format: FitFormat,
    /// Write the stdout output to this file (atomically) instead.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Folds grouped by the audit's groups of copies and patients (audit), not grouped (none),
    /// or by the audit and the patients of a CSV (`path,group`, paths relative to DIR or
    /// absolute).
    #[arg(long, default_value = "audit", value_parser = Grouping::parse, value_name = "audit|none|FILE")]
    pub groups: Grouping,
    /// The N-th folder under DIR names the patient (folds keep patients whole).
    #[arg(long, value_name = "N")]
    pub group_dir: Option<usize>,
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
    /// With a shard: only this shard's signatures and embeddings, into the cache (a cluster
    /// job's step; the fit then runs once without --shard, from the cache).
    #[command(flatten)]
    pub shard: super::sharding::ShardArgs,
    /// One fine-tuned CNN per fold instead of a LightGBM head on frozen features (see `train
    /// --finetune`); the bundle holds a model fine-tuned on all images.
    #[arg(long)]
    pub finetune: bool,
    /// With --finetune: epochs per model [default: 8].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// With --finetune: input side in pixels [default: 320].
    #[arg(long)]
    pub size: Option<u32>,
    /// With --finetune: blocks kept frozen [default: 0 on a GPU, 6 on the CPU].
    #[arg(long)]
    pub frozen_blocks: Option<usize>,
    /// With --finetune: images per pass [default: 16].
    #[arg(long)]
    pub batch: Option<usize>,
    /// With --finetune: batch norms `frozen` or in `train` mode (see `train --batch-norm`).
    #[arg(long, value_name = "MODE", default_value = "frozen", value_parser = osteoai_core::finetune::BatchNormMode::parse)]
    pub batch_norm: osteoai_core::finetune::BatchNormMode,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum FitFormat {
    Table,
    Csv,
    Json,
}

/// The folds' groups (`groups_for`), with the audit's stages on stderr when it runs.
fn grouped(
    dir: &Path,
    engine: &Engine,
    grouping: Grouping,
    group_dir: Option<usize>,
    audited: Option<&Report>,
) -> Result<(Groups, Groups), String> {
    with_stages(|never, progress| {
        groups_for(dir, engine, grouping, group_dir, audited, never, progress)
    })
}

/// Groups (optionally through the audit), fits and saves the bundle, with a progress line.
#[allow(clippy::too_many_arguments)]
pub fn run_fit(
    dir: &Path,
    engine: &Engine,
    params: &FitParams,
    grouping: Grouping,
    group_dir: Option<usize>,
    positive: Option<&str>,
    out: Option<&Path>,
    command: &str,
    audited: Option<&Report>,
) -> Result<FitRun, String> {
    if !dir.is_dir() {
        return Err(format!("{} is not a folder", dir.display()));
    }
    let files: Vec<PathBuf> = osteoai_core::scan::scan(dir, &engine.manifest().classes)
        .entries
        .into_iter()
        .map(|e| e.path)
        .collect();
    // Fail early (before a long audit) on a folder without two classes.
    osteoai_core::fit::discover_classes(dir, &files, positive)?;
    let (groups, units) = grouped(dir, engine, grouping, group_dir, audited)?;
    let never = AtomicBool::new(false);
    let mut bar = Progress::new("features", files.len());
    let run = fit_folder(
        dir,
        &files,
        engine,
        params,
        &groups,
        &units,
        positive,
        out,
        command,
        &never,
        |d, t| {
            bar.total_is(t);
            bar.set(d)
        },
    )?;
    bar.finish();
    Ok(run)
}

pub fn run(a: FitArgs) -> Result<i32, String> {
    if let Some(shard) = a.shard.resolve()? {
        return super::sharding::precompute_shard("fit", &a.dir, &a.model, false, shard);
    }
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
    if a.name.is_empty() || a.name.starts_with('.') || !a.name.chars().all(plain) {
        return Err(format!(
            "--name {:?}: letters, digits, '-', '_' and '.' only (a folder under DIR/.osteoai/models)",
            a.name
        ));
    }
    let device = select_device(a.model.device)?;
    let engine = Engine::load(&model_dir(&a.model.model)?, device)?;
    let params = FitParams {
        folds: a.folds.max(2),
        seed: a.seed,
        rounds: a.rounds.max(1),
        copy_noise: (a.copy_noise > 0.0 && a.copy_noise < 1.0).then_some(a.copy_noise),
        ..FitParams::default()
    };
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    if a.finetune {
        return run_finetune(&a, &engine, &params, &command);
    }
    let run = run_fit(
        &a.dir,
        &engine,
        &params,
        a.groups.clone(),
        a.group_dir,
        a.positive.as_deref(),
        Some(&a.out.clone().unwrap_or_else(|| {
            a.dir
                .join(osteoai_core::journal::SIDECAR)
                .join("models")
                .join(&a.name)
        })),
        &command,
        None,
    )?;
    emit_run(&a, &run)?;
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

/// One row per image (see `osteoai_core::fit::folder::oof_csv`).
pub fn csv(r: &FitReport) -> String {
    osteoai_core::fit::folder::oof_csv(r)
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

/// The report in the format asked for, to stdout or `--output`.
fn emit_run(a: &FitArgs, run: &FitRun) -> Result<(), String> {
    let text = match a.format {
        FitFormat::Table => summary(run, &a.dir, a.show),
        FitFormat::Csv => csv(&run.report),
        FitFormat::Json => {
            serde_json::to_string_pretty(&run.report).map_err(|e| e.to_string())? + "\n"
        }
    };
    emit(a.output.as_deref(), &text)
}

/// `fit --finetune`: a fine-tuned CNN per fold.
fn run_finetune(
    a: &FitArgs,
    engine: &Engine,
    params: &FitParams,
    command: &str,
) -> Result<i32, String> {
    if !a.dir.is_dir() {
        return Err(format!("{} is not a folder", a.dir.display()));
    }
    let _memory = crate::options::keep_freed_memory();
    let files: Vec<PathBuf> = osteoai_core::scan::scan(&a.dir, &engine.manifest().classes)
        .entries
        .into_iter()
        .map(|e| e.path)
        .collect();
    osteoai_core::fit::discover_classes(&a.dir, &files, a.positive.as_deref())?;
    // Fine-tuned folds keep units whole (copies and one patient's films).
    let (_, groups) = grouped(&a.dir, engine, a.groups.clone(), a.group_dir, None)?;
    let d = osteoai_core::finetune::Recipe::default();
    let recipe = osteoai_core::finetune::Recipe {
        epochs: a.epochs.unwrap_or(d.epochs),
        size: a.size.unwrap_or(d.size),
        batch: a.batch.unwrap_or(d.batch).max(1),
        frozen_blocks: a.frozen_blocks.unwrap_or(if engine.backbone.device.is_gpu {
            0
        } else {
            super::train::finetune::CPU_FROZEN_BLOCKS
        }),
        seed: a.seed,
        batch_norm: a.batch_norm,
        ..d
    };
    recipe.validate()?;
    let out = a.out.clone().unwrap_or_else(|| {
        a.dir
            .join(osteoai_core::journal::SIDECAR)
            .join("models")
            .join(&a.name)
    });
    let t0 = std::time::Instant::now();
    let never = AtomicBool::new(false);
    let r = osteoai_core::finetune::fit::finetune_fit_folder(
        &a.dir,
        &files,
        &engine.bundle.dir,
        engine.manifest(),
        &engine.backbone.device,
        &recipe,
        params,
        &groups,
        a.positive.as_deref(),
        &out,
        command,
        &never,
        |m| eprintln!("osteoai: {m}"),
    )?;
    let run = FitRun {
        report: r.report,
        spec: r.spec,
        bundle: r.bundle,
    };
    emit_run(a, &run)?;
    eprintln!(
        "osteoai: fitted {} images ({} classes) with a fine-tuned CNN per fold in {:.0} s; bundle and oof.csv in {}. Not for clinical use.",
        run.report.images.len(),
        run.report.classes.len(),
        t0.elapsed().as_secs_f64(),
        run.bundle.display()
    );
    Ok(0)
}
