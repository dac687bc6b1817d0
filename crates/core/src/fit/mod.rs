//! Fitting a head to any labelled folder, honestly: backbone features (cached, shared with
//! classify, train and audit), stratified K-fold cross-validation grouped by the audit's groups
//! of copies (an augmented copy never sits in another fold than its original), one LightGBM
//! head per fold, and for every image the probabilities of the head that never saw it
//! (out-of-fold). From those: cross-validated metrics with their spread over folds, label
//! issues by confident learning, uncertain images, and a final head on all images saved as a
//! model bundle that every command loads. Two classes or more.

pub mod confident;
pub mod folder;
pub mod folds;
pub mod groups;
pub mod oof;

pub use oof::fit_oof;

use crate::metrics::predicted;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use lightgbm3::{Booster, Dataset};
use serde::Serialize;
use serde_json::json;

use crate::cache::DiskCache;
use crate::engine::Backbone;
use crate::labels::ClassSpec;
use crate::metrics::{Metrics, roc_auc};
use crate::model::head::HeadOutput;
use crate::model::manifest::{HeadSpec, Manifest, Provenance};

/// LightGBM settings of the fold heads and the final head.
#[derive(Clone, Debug, Serialize)]
pub struct FitParams {
    pub folds: usize,
    pub seed: u64,
    pub learning_rate: f64,
    pub rounds: u32,
    pub num_leaves: u32,
    pub min_data_in_leaf: u32,
    pub feature_fraction: f64,
    pub bagging_fraction: f64,
    pub lambda_l2: f64,
    /// Histogram bins per feature (63 halves the time of LightGBM's 255 here, AUC -0.003).
    pub max_bin: u32,
    /// Out-of-fold margin below which an image is "uncertain" (two classes: |p - threshold|;
    /// more: top probability minus the runner-up).
    pub uncertain_band: f64,
    /// Label noise assumed when the labels of an image's copies (its audit group) are counted
    /// as evidence; `None` ignores copies. Each copy labelled c multiplies the odds of c by
    /// (1 - e) / (e / (k - 1)).
    pub copy_noise: Option<f64>,
}

impl Default for FitParams {
    fn default() -> Self {
        FitParams {
            folds: 5,
            seed: 42,
            learning_rate: 0.1,
            rounds: 200,
            num_leaves: 15,
            min_data_in_leaf: 10,
            feature_fraction: 0.3,
            bagging_fraction: 0.8,
            lambda_l2: 1.0,
            max_bin: 63,
            uncertain_band: 0.1,
            copy_noise: Some(0.1),
        }
    }
}

/// One labelled image to fit on.
#[derive(Clone, Debug)]
pub struct Sample {
    pub path: PathBuf,
    pub label: usize,
    /// Group of copies (from the audit), if any: their labels are evidence for label issues.
    pub group: Option<usize>,
    /// What the folds keep whole when it is more than the copies (a patient's films), if any.
    pub unit: Option<usize>,
}

/// One image's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct FitImage {
    pub path: PathBuf,
    pub label: usize,
    pub fold: usize,
    /// Out-of-fold probability of each class.
    pub oof: Vec<f64>,
    /// The out-of-fold probabilities with the copies' labels counted (what the label issues
    /// are found from; equal to `oof` for an image without copies).
    pub evidence: Vec<f64>,
    /// Copies of this image (its audit group) and how many carry another label.
    pub copies: usize,
    pub copies_other_label: usize,
    pub verdict: confident::Verdict,
    pub uncertain: bool,
}

/// Metrics of one fold (or all out-of-fold predictions together).
#[derive(Clone, Debug, Serialize)]
pub struct FoldMetrics {
    pub n: usize,
    pub accuracy: f64,
    /// Two classes: ROC AUC of the positive class; more: mean one-vs-rest AUC.
    pub roc_auc: Option<f64>,
}

/// What a fit measured and made.
#[derive(Clone, Debug, Serialize)]
pub struct FitReport {
    pub classes: Vec<String>,
    pub positive: usize,
    pub images: Vec<FitImage>,
    pub skipped: Vec<(PathBuf, String)>,
    pub folds: Vec<FoldMetrics>,
    pub oof: FoldMetrics,
    /// Mean and standard deviation over folds: (auc, accuracy).
    pub auc_spread: Option<(f64, f64)>,
    pub accuracy_spread: (f64, f64),
    /// Out-of-fold confusion `[actual][predicted]` (argmax; two classes: at `threshold`).
    pub confusion: Vec<Vec<usize>>,
    /// Two classes: full binary metrics of the out-of-fold scores at `threshold`.
    pub binary: Option<Metrics>,
    /// Decision threshold of the final head (two classes: best accuracy out of fold).
    pub threshold: f64,
    pub thresholds: Vec<f64>,
    pub joint: Vec<Vec<usize>>,
    pub grouped: bool,
    pub groups: usize,
    pub params: FitParams,
    pub seconds_features: f64,
    pub seconds_fit: f64,
}

impl FitReport {
    /// The out-of-fold metrics a bundle's manifest records.
    pub fn oof_metrics_json(&self) -> serde_json::Value {
        json!({
            "n": self.oof.n,
            "accuracy": self.oof.accuracy,
            "roc_auc": self.oof.roc_auc,
            "auc_mean_sd_over_folds": self.auc_spread,
            "accuracy_mean_sd_over_folds": self.accuracy_spread,
            "confusion": self.confusion,
            "binary": self.binary,
        })
    }

    /// Flagged images, most likely label errors first.
    pub fn ranked_issues(&self) -> Vec<usize> {
        let mut v: Vec<usize> = (0..self.images.len())
            .filter(|&i| self.images[i].verdict.is_issue)
            .collect();
        v.sort_by(|&a, &b| {
            self.images[b]
                .verdict
                .issue_score
                .total_cmp(&self.images[a].verdict.issue_score)
                .then(a.cmp(&b))
        });
        v
    }
}

pub(crate) fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (m, var.sqrt())
}

fn lgbm_params(p: &FitParams, k: usize) -> serde_json::Value {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mut v = json!({
        "objective": if k == 2 { "binary" } else { "multiclass" },
        "learning_rate": p.learning_rate,
        "num_iterations": p.rounds,
        "num_leaves": p.num_leaves,
        "min_data_in_leaf": p.min_data_in_leaf,
        "feature_fraction": p.feature_fraction,
        "bagging_fraction": p.bagging_fraction,
        "bagging_freq": 1,
        "lambda_l2": p.lambda_l2,
        "max_bin": p.max_bin,
        "seed": p.seed,
        "deterministic": true,
        "force_col_wise": true,
        "num_threads": threads,
        "verbosity": -1,
    });
    if k > 2 {
        v["num_class"] = json!(k);
    }
    v
}

/// Trains a head on rows `x` (d values each) with class labels `y`; two classes are a binary
/// model of `positive`.
pub fn train_head(
    x: &[f32],
    y: &[usize],
    d: usize,
    k: usize,
    positive: usize,
    p: &FitParams,
) -> Result<Booster, String> {
    let labels: Vec<f32> = y
        .iter()
        .map(|&c| {
            if k == 2 {
                (c == positive) as u8 as f32
            } else {
                c as f32
            }
        })
        .collect();
    crate::model::lgbm_log::route_to_tracing();
    // lightgbm3 builds datasets with LightGBM's default 255 bins a feature; the bins come
    // from a small reference instead: `max_bin` quantiles of each feature.
    let reference = bin_reference(x, d, p.max_bin as usize)?;
    let ds = Dataset::from_slice_with_reference(x, &labels, d as i32, true, Some(&reference))
        .map_err(|e| format!("LightGBM dataset: {e}"))?;
    Booster::train(ds, &lgbm_params(p, k)).map_err(|e| format!("LightGBM training: {e}"))
}

/// A dataset whose only purpose is its bin boundaries: `bins` quantiles of every feature of `x`
/// (each repeated, so that LightGBM keeps every one as a bin of its own). Trees split at those
/// boundaries; predictions take raw features as usual.
fn bin_reference(x: &[f32], d: usize, bins: usize) -> Result<Dataset, String> {
    const REPEAT: usize = 4;
    let n = x.len() / d.max(1);
    let bins = bins.clamp(2, 255).min(n.max(2));
    let rows = bins * REPEAT;
    let mut r = vec![0f32; rows * d];
    let mut col = vec![0f32; n];
    for f in 0..d {
        for (i, v) in col.iter_mut().enumerate() {
            *v = x[i * d + f];
        }
        col.sort_by(f32::total_cmp);
        for b in 0..bins {
            let q = col[(b * (n - 1)) / (bins - 1).max(1)];
            for k in 0..REPEAT {
                r[(b * REPEAT + k) * d + f] = q;
            }
        }
    }
    let labels: Vec<f32> = (0..rows).map(|i| (i % 2) as f32).collect();
    Dataset::from_slice(&r, &labels, d as i32, true).map_err(|e| format!("LightGBM dataset: {e}"))
}

/// Class probabilities (k per row) of a booster.
pub fn predict_probs(
    b: &Booster,
    x: &[f32],
    d: usize,
    k: usize,
    positive: usize,
) -> Result<Vec<Vec<f64>>, String> {
    let raw = b
        .predict_with_params(x, d as i32, true, "num_threads=1")
        .map_err(|e| format!("LightGBM predict: {e}"))?;
    Ok(if k == 2 {
        raw.iter()
            .map(|&p| {
                let mut v = vec![1.0 - p; 2];
                v[positive] = p;
                v
            })
            .collect()
    } else {
        raw.chunks(k).map(|c| c.to_vec()).collect()
    })
}

pub(crate) fn fold_metrics(
    probs: &[Vec<f64>],
    y: &[usize],
    k: usize,
    positive: usize,
    threshold: f64,
) -> FoldMetrics {
    let pred = |p: &Vec<f64>| predicted(p, positive, threshold);
    let correct = probs.iter().zip(y).filter(|(p, l)| pred(p) == **l).count();
    let roc = if k == 2 {
        let pos: Vec<bool> = y.iter().map(|&l| l == positive).collect();
        let s: Vec<f64> = probs.iter().map(|p| p[positive]).collect();
        roc_auc(&pos, &s)
    } else {
        let aucs: Vec<f64> = (0..k)
            .filter_map(|c| {
                let pos: Vec<bool> = y.iter().map(|&l| l == c).collect();
                let s: Vec<f64> = probs.iter().map(|p| p[c]).collect();
                roc_auc(&pos, &s)
            })
            .collect();
        (!aucs.is_empty()).then(|| aucs.iter().sum::<f64>() / aucs.len() as f64)
    };
    FoldMetrics {
        n: y.len(),
        accuracy: correct as f64 / y.len().max(1) as f64,
        roc_auc: roc,
    }
}

/// Features of the samples (cached), then the cross-validated fit. `progress(done, total)` is
/// called while features are computed.
#[allow(clippy::too_many_arguments)]
pub fn fit(
    samples: &[Sample],
    classes: &[String],
    positive: usize,
    backbone: &Backbone,
    cache: Option<&DiskCache>,
    params: &FitParams,
    cancel: &AtomicBool,
    progress: impl FnMut(usize, usize),
) -> Result<(FitReport, Booster), String> {
    let t0 = Instant::now();
    let paths: Vec<PathBuf> = samples.iter().map(|s| s.path.clone()).collect();
    let feats = crate::features::cached_features(backbone, &paths, cache, cancel, progress);
    if cancel.load(Ordering::Relaxed) {
        return Err("cancelled".into());
    }
    let seconds_features = t0.elapsed().as_secs_f64();
    let mut kept = Vec::new();
    let mut skipped = Vec::new();
    let mut x = Vec::new();
    for (s, f) in samples.iter().zip(feats) {
        match f {
            Ok(v) => {
                x.extend(v);
                kept.push(s.clone());
            }
            Err(e) => skipped.push((s.path.clone(), e)),
        }
    }
    let mut r = fit_features(
        &kept,
        &x,
        backbone.feature_dim(),
        classes,
        positive,
        params,
        cancel,
    )?;
    r.0.skipped = skipped;
    r.0.seconds_features = seconds_features;
    Ok(r)
}

/// The cross-validated fit on given features (`x`: one row of `d` values per sample): one
/// LightGBM head per fold, and the final head on all samples.
pub fn fit_features(
    samples: &[Sample],
    x: &[f32],
    d: usize,
    classes: &[String],
    positive: usize,
    params: &FitParams,
    cancel: &AtomicBool,
) -> Result<(FitReport, Booster), String> {
    let k = classes.len();
    let y: Vec<usize> = samples.iter().map(|s| s.label).collect();
    let rows = |idx: &[usize]| -> Vec<f32> {
        idx.iter()
            .flat_map(|&i| x[i * d..(i + 1) * d].iter().copied())
            .collect()
    };
    let report = oof::fit_oof(samples, classes, positive, params, cancel, |_, tr, te| {
        let ytr: Vec<usize> = tr.iter().map(|&i| y[i]).collect();
        let b = train_head(&rows(tr), &ytr, d, k, positive, params)?;
        predict_probs(&b, &rows(te), d, k, positive)
    })?;
    let final_head = train_head(x, &y, d, k, positive, params)?;
    Ok((report, final_head))
}

/// Out-of-fold probabilities combined with the labels of each image's copies (same group), as
/// independent noisy observations of one true class: `P(c) ∝ P_oof(c) · Π_copies L(label | c)`
/// with `L = 1 - e` for the same class and `e / (k - 1)` for another. Copies sit in the same fold,
/// so the out-of-fold probability never saw them: nothing is counted twice.
pub fn with_copies(
    oof: &[Vec<f64>],
    y: &[usize],
    groups: &[usize],
    k: usize,
    noise: Option<f64>,
) -> Vec<Vec<f64>> {
    let Some(e) = noise.filter(|e| *e > 0.0 && *e < 1.0) else {
        return oof.to_vec();
    };
    let mut members: std::collections::HashMap<usize, Vec<usize>> =
        std::collections::HashMap::new();
    for (i, g) in groups.iter().enumerate() {
        members.entry(*g).or_default().push(i);
    }
    let (same, other) = ((1.0 - e).ln(), (e / (k - 1).max(1) as f64).ln());
    oof.iter()
        .enumerate()
        .map(|(i, p)| {
            let copies = &members[&groups[i]];
            if copies.len() < 2 {
                return p.clone();
            }
            let mut logp: Vec<f64> = p.iter().map(|v| v.max(1e-9).ln()).collect();
            for &j in copies.iter().filter(|&&j| j != i) {
                for (c, l) in logp.iter_mut().enumerate() {
                    *l += if y[j] == c { same } else { other };
                }
            }
            let m = logp.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = logp.iter().map(|l| (l - m).exp()).sum();
            logp.iter().map(|l| (l - m).exp() / z).collect()
        })
        .collect()
}

/// The classes of a folder from its folder names: the nearest folder above each file that is
/// not a split folder (`train/`, `val/`, `test/`) nor the root itself. Names that the default
/// fracture classes know (`fractured`, `normal`, ...) are read as those classes. The positive
/// class: `positive` when given, else `fracture` when present, else the second in order.
pub fn discover_classes(
    root: &Path,
    files: &[PathBuf],
    positive: Option<&str>,
) -> crate::error::Result<ClassSpec> {
    use crate::error::Error::Layout;
    let known = ClassSpec::fracture_default();
    let mut names: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    for f in files {
        if let Some(c) = class_folder(root, f, &known) {
            names.insert(c);
        }
    }
    let names: Vec<String> = names.into_iter().collect();
    if names.len() < 2 {
        return Err(Layout(format!(
            "{} needs images in at least two class folders (found {:?})",
            root.display(),
            names
        )));
    }
    let positive = match positive {
        Some(p) => names
            .iter()
            .find(|n| crate::labels::normalise(n) == crate::labels::normalise(p))
            .cloned()
            .ok_or_else(|| {
                Layout(format!(
                    "--positive {p:?} is not one of the classes {names:?}"
                ))
            })?,
        None if names.iter().any(|n| n == "fracture") => "fracture".into(),
        None => names[1].clone(),
    };
    let mut aliases = std::collections::BTreeMap::new();
    for n in &names {
        if let Some(a) = known.aliases.get(n) {
            aliases.insert(n.clone(), a.clone());
        }
    }
    let spec = ClassSpec {
        names,
        positive,
        aliases,
    };
    spec.validate().map_err(Layout)?;
    Ok(spec)
}

/// The class folder of one file (see [`discover_classes`]).
pub fn class_folder(root: &Path, file: &Path, known: &ClassSpec) -> Option<String> {
    let mut dir = file.parent();
    while let Some(d) = dir {
        if d == root || !d.starts_with(root) {
            return None;
        }
        let name = d.file_name()?.to_string_lossy().into_owned();
        if crate::labels::Split::of_folder(&name).is_none() {
            return Some(match known.class_of_folder(&name) {
                Some(c) => known.names[c].clone(),
                None => name,
            });
        }
        dir = d.parent();
    }
    None
}

/// A bundle for the final head: the base model's backbone and recipe, the folder's classes, the
/// out-of-fold threshold and metrics, and how it was made.
pub fn manifest_for(
    base: &Manifest,
    report: &FitReport,
    data: &Path,
    command: &str,
    spec: &ClassSpec,
) -> Manifest {
    let mut m = base.clone();
    m.name = format!(
        "fit-{}",
        data.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "folder".into())
    );
    m.classes = spec.clone();
    m.head = HeadSpec {
        kind: "lightgbm".into(),
        file: "head.txt".into(),
        output: if report.classes.len() == 2 {
            HeadOutput::Binary
        } else {
            HeadOutput::Multiclass
        },
        num_features: base.head.num_features,
    };
    m.threshold = report.threshold;
    m.metrics = std::collections::BTreeMap::new();
    m.metrics
        .insert("out_of_fold".into(), report.oof_metrics_json());
    m.provenance = Provenance {
        data: format!(
            "{} ({} labelled images, classes {:?})",
            data.display(),
            report.images.len(),
            report.classes
        ),
        command: command.into(),
        date: crate::timefmt::now_rfc3339(),
        git_revision: String::new(),
        seed: Some(report.params.seed),
        notes: vec![
            format!(
                "{}-fold cross-validation{}; out-of-fold metrics; final head trained on all images",
                report.params.folds,
                if report.grouped {
                    ", grouped by the audit's groups of copies"
                } else {
                    ""
                }
            ),
            format!(
                "LightGBM params {}",
                lgbm_params(&report.params, report.classes.len())
            ),
        ],
    };
    m
}
