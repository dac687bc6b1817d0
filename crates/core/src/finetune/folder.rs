//! Fine-tuning on a labelled folder (`train/ val/ [test/]`, one folder per class) into a model
//! bundle: the images decoded, the fine-tune, the threshold chosen on val, the test metrics
//! (and those of the test images whose source is absent from train), the bundle with its
//! recipe and learning curves.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use burn::module::Module;
use serde_json::json;

use super::eval::{feature_spec, linear_head, predict};
use super::head_choice::{HeadComparison, HeadMode, choose_head};
use super::{Event, Outcome, Recipe, curves_csv, data, finetune};
use crate::decode::model_input::Preprocess;
use crate::device::Selected;
use crate::labels::Split;
use crate::metrics::{Metrics, best_accuracy_threshold};
use crate::model::Manifest;
use crate::model::bundle::MANIFEST;
use crate::model::head::HeadOutput;
use crate::model::import::load_base;
use crate::model::manifest::{HeadSpec, Provenance};
use crate::scan::scan;
use crate::train::{Splits, apply_splits, atomic_write, source_of};

pub struct FolderConfig {
    pub data: PathBuf,
    pub out: PathBuf,
    pub recipe: Recipe,
    /// Checkpoint folder (resumable); `None`: `<out>.checkpoint`.
    pub checkpoint: Option<PathBuf>,
    pub resume: bool,
    /// Recorded in the manifest.
    pub command: String,
    /// The linear head, a LightGBM head on the fine-tuned features, or the better on val.
    pub head: HeadMode,
    /// Each file's split instead of its folder's (`--regroup`: a grouped re-split in memory).
    pub splits: Option<Splits>,
}

pub struct FolderReport {
    /// The bundle written; `None` when a stop came before the first epoch ended.
    pub manifest: Option<Manifest>,
    pub outcome: Outcome,
    pub counts: BTreeMap<String, usize>,
    pub skipped: Vec<(PathBuf, String)>,
    pub checkpoint: PathBuf,
    /// The val ROC AUCs of the two heads and the one kept (none when only the linear one was
    /// tried, or the run was stopped).
    pub heads: Option<HeadComparison>,
}

/// The checkpoint folder of a run writing `out`.
pub fn checkpoint_dir(cfg: &FolderConfig) -> PathBuf {
    cfg.checkpoint.clone().unwrap_or_else(|| {
        let mut s = cfg.out.clone().into_os_string();
        s.push(".checkpoint");
        PathBuf::from(s)
    })
}

pub fn finetune_folder(
    base_dir: &Path,
    base: &Manifest,
    device: &Selected,
    cfg: &FolderConfig,
    cancel: &AtomicBool,
    on: impl FnMut(Event),
    mut log: impl FnMut(&str),
) -> Result<FolderReport, String> {
    if !base.backbone.folded {
        return Err("the base bundle's backbone must be folded".into());
    }
    let classes = &base.classes;
    let positive = classes
        .positive_index()
        .ok_or("the base names no positive class")?;
    let mut report = scan(&cfg.data, classes);
    apply_splits(&mut report.entries, cfg.splits.as_ref());
    let mut skipped: Vec<(PathBuf, String)> = report
        .issues
        .iter()
        .map(|i| (i.path.clone(), i.message.clone()))
        .collect();
    let mut by_split: BTreeMap<Split, Vec<(PathBuf, usize)>> = BTreeMap::new();
    for e in &report.entries {
        if let (Some(l), Some(s)) = (e.label, e.split) {
            by_split.entry(s).or_default().push((e.path.clone(), l));
        }
    }
    let train_items = by_split.remove(&Split::Train).unwrap_or_default();
    let val = by_split.remove(&Split::Val).unwrap_or_default();
    let test = by_split.remove(&Split::Test).unwrap_or_default();
    for (name, set) in [("train", &train_items), ("val", &val)] {
        let pos = set.iter().filter(|(_, l)| *l == positive).count();
        if pos == 0 || pos == set.len() {
            return Err(format!(
                "{}: {name}/ needs labelled images of both classes ({pos} of {} positive); \
                 `osteoai split` makes train/ val/ test/ folders grouped by copies",
                cfg.data.display(),
                set.len()
            ));
        }
    }
    let train_sources: BTreeSet<String> = train_items.iter().map(|(p, _)| source_of(p)).collect();
    let roboflow = train_items
        .iter()
        .any(|(p, _)| p.to_string_lossy().contains(".rf."));
    if cfg.splits.is_some() {
        log("the splits are a grouped re-split held in memory (--regroup): no copies across them");
    } else if cfg.data.join("split-manifest.csv").is_file() {
        log("the splits come from `osteoai split` (groups of verified copies kept whole)");
    } else if roboflow {
        let shared = val
            .iter()
            .filter(|(p, _)| train_sources.contains(&source_of(p)))
            .count();
        log(&format!(
            "{shared} of {} val images share a source name (before .rf.) with train images: where \
             they are augmented copies, val AUC is optimistic; `osteoai split` regroups by \
             verified copies",
            val.len()
        ));
    }
    let pre = Preprocess::imagenet(cfg.recipe.size);
    let t0 = std::time::Instant::now();
    let (train, bad) = data::load(&train_items, &pre);
    skipped.extend(bad);
    log(&format!(
        "{} training images decoded in {:.1} s; {} val, {} test",
        train.len(),
        t0.elapsed().as_secs_f64(),
        val.len(),
        test.len()
    ));
    let net = load_base(base_dir, base, &device.device)?;
    let ckpt = checkpoint_dir(cfg);
    let outcome = finetune(
        net,
        classes.names.len(),
        positive,
        &train,
        &val,
        &cfg.recipe,
        device,
        Some(&ckpt),
        cfg.resume,
        cancel,
        on,
    )?;
    if outcome.best_epoch == 0 {
        return Ok(FolderReport {
            manifest: None,
            outcome,
            counts: BTreeMap::new(),
            skipped,
            checkpoint: ckpt,
            heads: None,
        });
    }
    // The threshold on val; test metrics.
    let is_pos = |l: &usize| *l == positive;
    let vy: Vec<bool> = val.iter().map(|(_, l)| is_pos(l)).collect();
    let vs: Vec<f64> = outcome
        .val_probs
        .iter()
        .map(|p| p.get(positive).copied().unwrap_or(f64::NAN))
        .collect();
    let threshold = best_accuracy_threshold(&vy, &vs);
    let mut metrics = BTreeMap::new();
    let mut counts = BTreeMap::new();
    metrics.insert(
        "val".to_string(),
        serde_json::to_value(Metrics::compute(&vy, &vs, threshold)).unwrap(),
    );
    counts.insert("train".to_string(), train.len());
    counts.insert("val".to_string(), val.len());
    if !test.is_empty() {
        let paths: Vec<PathBuf> = test.iter().map(|t| t.0.clone()).collect();
        let probs = predict(
            &outcome.best,
            device,
            &pre,
            &paths,
            cfg.recipe.flip_average,
            16,
        )?;
        let (mut y, mut s, mut unseen) = (Vec::new(), Vec::new(), Vec::new());
        for (p, (path, l)) in probs.into_iter().zip(&test) {
            match p {
                Ok(p) => {
                    y.push(is_pos(l));
                    s.push(p[positive]);
                    unseen.push(!train_sources.contains(&source_of(path)));
                }
                Err(e) => skipped.push((path.clone(), e)),
            }
        }
        metrics.insert(
            "test".into(),
            serde_json::to_value(Metrics::compute(&y, &s, threshold)).unwrap(),
        );
        counts.insert("test".into(), y.len());
        if roboflow {
            let keep: Vec<usize> = (0..y.len()).filter(|&i| unseen[i]).collect();
            let yy: Vec<bool> = keep.iter().map(|&i| y[i]).collect();
            let ss: Vec<f64> = keep.iter().map(|&i| s[i]).collect();
            metrics.insert(
                "test_unseen_sources".into(),
                serde_json::to_value(Metrics::compute(&yy, &ss, threshold)).unwrap(),
            );
            counts.insert("test_unseen_sources".into(), keep.len());
        }
    }
    let written = Written {
        out: &cfg.out,
        recipe: &cfg.recipe,
        classes: &base.classes,
        threshold,
        data: format!("{} ({:?} images)", cfg.data.display(), counts),
        command: &cfg.command,
    };
    let mut manifest = write_bundle(base_dir, base, &written, &outcome, metrics)?;
    let mut heads = None;
    if !outcome.interrupted {
        let (m, cmp) = choose_head(
            &cfg.out,
            &manifest,
            device,
            &cfg.data,
            cfg.splits.as_ref(),
            cfg.recipe.seed,
            cfg.head,
            &cfg.command,
            &mut log,
        )?;
        manifest = m;
        heads = cmp;
    }
    Ok(FolderReport {
        heads,
        manifest: Some(manifest),
        outcome,
        counts,
        skipped,
        checkpoint: ckpt,
    })
}

/// What a bundle of a fine-tuned model records besides the model.
pub struct Written<'a> {
    pub out: &'a Path,
    pub recipe: &'a Recipe,
    pub classes: &'a crate::labels::ClassSpec,
    pub threshold: f64,
    /// What it was trained on, in words.
    pub data: String,
    pub command: &'a str,
}

/// Writes the bundle: folded fine-tuned backbone, linear head, manifest, learning curves.
pub fn write_bundle(
    base_dir: &Path,
    base: &Manifest,
    w: &Written,
    outcome: &Outcome,
    metrics: BTreeMap<String, serde_json::Value>,
) -> Result<Manifest, String> {
    let out = w.out;
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let r = w.recipe;
    let mut m = base.clone();
    m.classes = w.classes.clone();
    m.name = format!("efficientnet-{}-finetuned", base.arch()?.short());
    m.preprocess = Preprocess::imagenet(r.size);
    m.backbone.weights = "backbone.bpk".into();
    m.backbone.folded = true;
    m.backbone.features = feature_spec(r.flip_average);
    m.head = HeadSpec {
        kind: "linear".into(),
        file: "head.json".into(),
        output: HeadOutput::Multiclass,
        num_features: m.backbone.features.dim(),
    };
    m.threshold = w.threshold;
    m.metrics = metrics;
    m.provenance = Provenance {
        data: w.data.clone(),
        command: w.command.to_string(),
        date: crate::timefmt::now_rfc3339(),
        git_revision: String::new(),
        seed: Some(r.seed),
        notes: vec![
            format!(
                "fine-tuned from {} (best val ROC AUC at epoch {})",
                base.name, outcome.best_epoch
            ),
            "threshold: best accuracy on val/; metrics at that threshold".into(),
        ],
    };
    m.training = Some(json!({
        "recipe": r,
        "best_epoch": outcome.best_epoch,
        "best_val_auc": outcome.best_auc,
        "history": outcome.history,
        "interrupted": outcome.interrupted,
        "batch_norm": r.batch_norm.describe(),
    }));
    m.validate()?;
    let tmp = out.join(".backbone.bpk.tmp");
    outcome
        .best
        .backbone
        .valid()
        .save_file(&tmp)
        .map_err(|e| format!("cannot write {}: {e:?}", tmp.display()))?;
    std::fs::rename(&tmp, out.join("backbone.bpk"))
        .map_err(|e| format!("cannot move {} into place: {e}", tmp.display()))?;
    let head = serde_json::to_string(&linear_head(&outcome.best)).map_err(|e| e.to_string())?;
    atomic_write(&out.join("head.json"), head.as_bytes())?;
    if let Some(lic) = &base.backbone.license_file
        && let Ok(bytes) = std::fs::read(base_dir.join(lic))
    {
        atomic_write(&out.join(lic), &bytes)?;
    }
    atomic_write(
        &out.join("curves.csv"),
        curves_csv(&outcome.history).as_bytes(),
    )?;
    let mut png = Vec::new();
    super::plot::curves(&outcome.history, outcome.best_epoch)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| format!("cannot encode the learning curves: {e}"))?;
    atomic_write(&out.join("curves.png"), &png)?;
    let text = serde_json::to_string_pretty(&m).map_err(|e| e.to_string())? + "\n";
    atomic_write(&out.join(MANIFEST), text.as_bytes())?;
    Ok(m)
}
