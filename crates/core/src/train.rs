//! Training a model bundle: backbone features (cached) for the labelled images under a data
//! folder, a LightGBM head with early stopping on `val/`, the decision threshold chosen on
//! `val/`, evaluation on `test/` (and on the test images whose source image is absent from
//! `train/`), and a bundle written with its metrics and provenance.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use lightgbm3::{Booster, Dataset};
use serde_json::json;

use crate::cache::DiskCache;
use crate::engine::Backbone;
use crate::features::cached_features;
use crate::labels::Split;
use crate::metrics::{Metrics, best_accuracy_threshold};
use crate::model::bundle::MANIFEST;
use crate::model::head::HeadOutput;
use crate::model::manifest::{HeadSpec, Manifest, Provenance};
use crate::scan::{Entry, scan};

/// Head hyper-parameters (LightGBM).
#[derive(Clone, Debug)]
pub struct HeadParams {
    pub learning_rate: f64,
    pub num_leaves: u32,
    pub max_rounds: u32,
    pub early_stopping: u32,
    pub feature_fraction: f64,
    pub bagging_fraction: f64,
    pub min_data_in_leaf: u32,
    pub lambda_l2: f64,
}

impl Default for HeadParams {
    fn default() -> Self {
        HeadParams {
            learning_rate: 0.03,
            num_leaves: 15,
            max_rounds: 3000,
            early_stopping: 200,
            feature_fraction: 0.3,
            bagging_fraction: 0.8,
            min_data_in_leaf: 20,
            lambda_l2: 1.0,
        }
    }
}

pub struct TrainConfig {
    pub data: PathBuf,
    pub out: PathBuf,
    pub seed: u64,
    pub head: HeadParams,
    pub cache: Option<DiskCache>,
    /// Recorded in the manifest's provenance.
    pub command: String,
    /// Also write the features (`FILE`: f32 little-endian rows; `FILE.json`: paths, labels, splits).
    pub dump_features: Option<PathBuf>,
    /// Each file's split instead of its folder's (a re-split held in memory, `--regroup`);
    /// files it does not name are left out.
    pub splits: Option<Splits>,
}

/// Splits by path, replacing those of the folders (see `apply_splits`).
pub type Splits = std::collections::HashMap<PathBuf, Split>;

/// Gives each scanned file its split from `splits` (none for a file it does not name).
pub fn apply_splits(entries: &mut [Entry], splits: Option<&Splits>) {
    if let Some(s) = splits {
        for e in entries {
            e.split = s.get(&e.path).copied();
        }
    }
}

/// What training measured.
pub struct TrainReport {
    pub manifest: Manifest,
    pub rounds: i32,
    pub counts: BTreeMap<String, usize>,
    pub skipped: Vec<(PathBuf, String)>,
}

/// The Roboflow source of a file: the name before `.rf.` (or the whole stem).
pub fn source_of(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match name.find(".rf.") {
        Some(i) => name[..i].to_string(),
        None => path
            .file_stem()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    }
}

struct Set {
    x: Vec<f32>,
    y: Vec<bool>,
    paths: Vec<PathBuf>,
}

impl Set {
    fn labels(&self) -> Vec<f32> {
        self.y.iter().map(|&p| if p { 1.0 } else { 0.0 }).collect()
    }
}

/// Trains a new bundle from `base` (a bundle whose backbone, preprocessing, classes and feature
/// recipe are reused; its head is ignored) and writes it to `cfg.out`.
pub fn train(
    base_dir: &Path,
    base: &Manifest,
    backbone: &Backbone,
    cfg: &TrainConfig,
    mut log: impl FnMut(&str),
) -> crate::error::Result<TrainReport> {
    let mut report = scan(&cfg.data, &base.classes);
    apply_splits(&mut report.entries, cfg.splits.as_ref());
    let positive = base.classes.positive_index().expect("validated manifest");
    let mut skipped: Vec<(PathBuf, String)> = report
        .issues
        .iter()
        .map(|i| (i.path.clone(), i.message.clone()))
        .collect();
    let labelled: Vec<&Entry> = report
        .entries
        .iter()
        .filter(|e| e.label.is_some() && e.split.is_some())
        .collect();
    log(&format!(
        "{} labelled images with a split under {} ({} found in all)",
        labelled.len(),
        cfg.data.display(),
        report.entries.len()
    ));
    let paths: Vec<PathBuf> = labelled.iter().map(|e| e.path.clone()).collect();
    let never = AtomicBool::new(false);
    let t0 = std::time::Instant::now();
    let mut last = 0usize;
    let feats: Vec<Result<Vec<f32>, String>> = cached_features(
        backbone,
        &paths,
        cfg.cache.as_ref(),
        &never,
        |done, total| {
            if done == total || done >= last + 256 {
                last = done;
                log(&format!(
                    "features {done}/{total} ({:.0} s)",
                    t0.elapsed().as_secs_f64()
                ));
            }
        },
    );
    let dim = backbone.feature_dim();
    if let Some(path) = &cfg.dump_features {
        dump(path, &labelled, &feats, dim, positive)?;
        log(&format!("features written to {}", path.display()));
    }
    let mut sets: BTreeMap<Split, Set> = BTreeMap::new();
    for (e, f) in labelled.iter().zip(feats) {
        match f {
            Ok(v) => {
                let s = sets.entry(e.split.unwrap()).or_insert_with(|| Set {
                    x: Vec::new(),
                    y: Vec::new(),
                    paths: Vec::new(),
                });
                s.x.extend(v);
                s.y.push(e.label == Some(positive));
                s.paths.push(e.path.clone());
            }
            Err(err) => skipped.push((e.path.clone(), err)),
        }
    }
    let (Some(tr), Some(va)) = (sets.get(&Split::Train), sets.get(&Split::Val)) else {
        return Err(crate::error::Error::Layout(format!(
            "{} needs train/ and val/ folders with labelled images",
            cfg.data.display()
        )));
    };
    for (name, s) in [("train", tr), ("val", va)] {
        let pos = s.y.iter().filter(|p| **p).count();
        if pos == 0 || pos == s.y.len() {
            return Err(crate::error::Error::Layout(format!(
                "{name}/ needs images of both classes ({pos} of {} are positive)",
                s.y.len()
            )));
        }
    }
    let p = &cfg.head;
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let params = json!({
        "objective": "binary",
        "metric": "auc",
        "learning_rate": p.learning_rate,
        "num_leaves": p.num_leaves,
        "min_data_in_leaf": p.min_data_in_leaf,
        "feature_fraction": p.feature_fraction,
        "bagging_fraction": p.bagging_fraction,
        "bagging_freq": 1,
        "lambda_l2": p.lambda_l2,
        "num_iterations": p.max_rounds,
        "early_stopping_rounds": p.early_stopping,
        "seed": cfg.seed,
        "deterministic": true,
        "force_col_wise": true,
        "num_threads": threads,
        "verbosity": -1,
    });
    let n = dim as i32;
    crate::model::lgbm_log::route_to_tracing();
    let train_ds = Dataset::from_slice(&tr.x, &tr.labels(), n, true)
        .map_err(|e| format!("LightGBM dataset: {e}"))?;
    let val_ds = Dataset::from_slice_with_reference(&va.x, &va.labels(), n, true, Some(&train_ds))
        .map_err(|e| format!("LightGBM dataset: {e}"))?;
    log(&format!(
        "training LightGBM on {} x {dim} (early stopping on val/ AUC)",
        tr.y.len()
    ));
    let booster = Booster::train_with_valid(train_ds, Some(val_ds), &params)
        .map_err(|e| format!("LightGBM training: {e}"))?;
    let rounds = booster.num_iterations();
    let predict = |s: &Set| -> Result<Vec<f64>, String> {
        booster
            .predict_with_params(&s.x, n, true, "num_threads=1")
            .map_err(|e| format!("LightGBM predict: {e}"))
    };
    let val_scores = predict(va)?;
    let threshold = best_accuracy_threshold(&va.y, &val_scores);
    log(&format!(
        "{rounds} rounds; threshold {threshold:.4} (best accuracy on val/)"
    ));

    let mut metrics = BTreeMap::new();
    let mut counts = BTreeMap::new();
    let train_sources: BTreeSet<String> = tr.paths.iter().map(|p| source_of(p)).collect();
    for (split, s) in &sets {
        let scores = if *split == Split::Val {
            val_scores.clone()
        } else {
            predict(s)?
        };
        let m = Metrics::compute(&s.y, &scores, threshold);
        counts.insert(split.to_string(), s.y.len());
        metrics.insert(split.to_string(), serde_json::to_value(&m).unwrap());
        // Only for Roboflow-style names (`<source>.rf.<hash>.jpg`), where a source is known.
        if *split == Split::Test && s.paths.iter().any(|p| p.to_string_lossy().contains(".rf.")) {
            let keep: Vec<usize> = (0..s.paths.len())
                .filter(|&i| !train_sources.contains(&source_of(&s.paths[i])))
                .collect();
            let y: Vec<bool> = keep.iter().map(|&i| s.y[i]).collect();
            let sc: Vec<f64> = keep.iter().map(|&i| scores[i]).collect();
            counts.insert("test_unseen_sources".into(), keep.len());
            metrics.insert(
                "test_unseen_sources".into(),
                serde_json::to_value(Metrics::compute(&y, &sc, threshold)).unwrap(),
            );
        }
    }

    let mut manifest = base.clone();
    manifest.head = HeadSpec {
        kind: "lightgbm".into(),
        file: "head.txt".into(),
        output: HeadOutput::Binary,
        num_features: dim,
    };
    manifest.threshold = threshold;
    manifest.metrics = metrics;
    manifest.provenance = Provenance {
        data: format!("{} ({} train, {} val, {} test images)", cfg.data.display(), tr.y.len(), va.y.len(), sets.get(&Split::Test).map_or(0, |s| s.y.len())),
        command: cfg.command.clone(),
        date: crate::timefmt::now_rfc3339(),
        git_revision: git_revision(),
        seed: Some(cfg.seed),
        notes: vec![
            format!("LightGBM {} rounds, params {}", rounds, params),
            "threshold: best accuracy on val/; metrics at that threshold".into(),
            "test_unseen_sources: test images whose source (name before .rf.) is absent from train/".into(),
        ],
    };
    manifest.validate()?;
    let head_text = booster
        .save_string()
        .map_err(|e| format!("LightGBM save: {e}"))?;
    write_bundle(base_dir, &cfg.out, &manifest, &head_text)?;
    Ok(TrainReport {
        manifest,
        rounds,
        counts,
        skipped,
    })
}

fn dump(
    path: &Path,
    entries: &[&Entry],
    feats: &[Result<Vec<f32>, String>],
    dim: usize,
    positive: usize,
) -> Result<(), String> {
    let mut raw = Vec::new();
    let mut meta = Vec::new();
    for (e, f) in entries.iter().zip(feats) {
        if let Ok(v) = f {
            raw.extend(v.iter().flat_map(|x| x.to_le_bytes()));
            meta.push(json!({"path": e.path.display().to_string(), "positive": e.label == Some(positive), "split": e.split}));
        }
    }
    atomic_write(path, &raw)?;
    let side = json!({"dim": dim, "rows": meta});
    atomic_write(&path.with_extension("json"), side.to_string().as_bytes())
}

/// Writes head, manifest and (when the output is a new folder) the backbone weights and their
/// licence, each file atomically.
pub fn write_bundle(
    base_dir: &Path,
    out: &Path,
    manifest: &Manifest,
    head: &str,
) -> Result<(), String> {
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let same = std::fs::canonicalize(base_dir).ok() == std::fs::canonicalize(out).ok();
    if !same {
        let mut files = vec![manifest.backbone.weights.clone()];
        files.extend(manifest.backbone.license_file.clone());
        for f in files {
            let bytes = std::fs::read(base_dir.join(&f))
                .map_err(|e| format!("cannot read {}: {e}", base_dir.join(&f).display()))?;
            atomic_write(&out.join(&f), &bytes)?;
        }
    }
    atomic_write(&out.join(&manifest.head.file), head.as_bytes())?;
    let json = serde_json::to_string_pretty(manifest).map_err(|e| e.to_string())? + "\n";
    atomic_write(&out.join(MANIFEST), json.as_bytes())
}

/// Write to a temporary file beside the target, then rename over it.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    std::fs::write(&tmp, bytes).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    let r = std::fs::rename(&tmp, path)
        .map_err(|e| format!("cannot move {} into place: {e}", path.display()));
    match &r {
        Ok(()) => tracing::info!(path = %path.display(), bytes = bytes.len(), "wrote"),
        Err(e) => tracing::warn!(error = %e, "write failed"),
    }
    r
}

fn git_revision() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_is_the_name_before_rf() {
        assert_eq!(
            source_of(Path::new("a/image1_10_png.rf.abc.jpg")),
            "image1_10_png"
        );
        assert_eq!(source_of(Path::new("a/plain.jpg")), "plain");
    }
}
