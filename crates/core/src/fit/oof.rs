//! The out-of-fold core of `fit`, whatever the fold model: grouped stratified folds, the
//! held-out probabilities, the threshold, label issues with the copies' evidence, metrics.

use crate::metrics::predicted;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::{
    FitImage, FitParams, FitReport, Sample, confident, fold_metrics, folds, mean_sd, with_copies,
};
use crate::metrics::{Metrics, best_accuracy_threshold};

/// The cross-validated fit with any fold model: `fold_model(fold, train, held_out)` returns the
/// class probabilities of the held-out samples (indices into `samples`) from a model trained on
/// `train` only. Everything else (grouped stratified folds, threshold, label issues, metrics) is
/// the same whatever the model: a LightGBM head on features (`fit_features`) or a fine-tuned
/// CNN per fold.
pub fn fit_oof(
    samples: &[Sample],
    classes: &[String],
    positive: usize,
    params: &FitParams,
    cancel: &AtomicBool,
    mut fold_model: impl FnMut(usize, &[usize], &[usize]) -> Result<Vec<Vec<f64>>, String>,
) -> Result<FitReport, String> {
    let t0 = Instant::now();
    let k = classes.len();
    let n = samples.len();
    let y: Vec<usize> = samples.iter().map(|s| s.label).collect();
    for (c, class) in classes.iter().enumerate() {
        let m = y.iter().filter(|&&l| l == c).count();
        if m < params.folds.max(2) {
            return Err(format!(
                "class {:?} has {m} labelled images; {}-fold cross-validation needs at least {} of each class",
                class,
                params.folds,
                params.folds.max(2)
            ));
        }
    }
    let grouped = samples.iter().any(|s| s.group.is_some());
    let groups: Vec<usize> = samples
        .iter()
        .enumerate()
        .map(|(i, s)| s.group.unwrap_or(usize::MAX / 2 + i))
        .collect();
    let n_groups = samples
        .iter()
        .filter_map(|s| s.group)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let keys: Vec<String> = samples
        .iter()
        .map(|s| s.path.to_string_lossy().into_owned())
        .collect();
    // Folds keep units whole (copies and one patient's films), else the copies.
    let units: Vec<usize> = samples
        .iter()
        .enumerate()
        .map(|(i, s)| match (s.unit, s.group) {
            (Some(u), _) => u,
            (None, Some(g)) => usize::MAX / 4 + g,
            (None, None) => usize::MAX / 2 + i,
        })
        .collect();
    let fold = folds::assign(&y, &units, &keys, k, params.folds, params.seed);
    let mut oof = vec![vec![0f64; k]; n];
    let mut per_fold = Vec::new();
    for f in 0..params.folds.max(2) {
        if cancel.load(Ordering::Relaxed) {
            return Err("cancelled".into());
        }
        let (tr, te): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| fold[i] != f);
        if te.is_empty() {
            continue;
        }
        let ytr: Vec<usize> = tr.iter().map(|&i| y[i]).collect();
        if (0..k).any(|c| !ytr.contains(&c)) {
            return Err(format!(
                "fold {f} leaves a class without training images (groups too large for {} folds)",
                params.folds
            ));
        }
        let probs = fold_model(f, &tr, &te)?;
        let yte: Vec<usize> = te.iter().map(|&i| y[i]).collect();
        per_fold.push(fold_metrics(&probs, &yte, k, positive, 0.5));
        for (j, &i) in te.iter().enumerate() {
            oof[i] = probs[j].clone();
        }
    }
    let threshold = if k == 2 {
        let pos: Vec<bool> = y.iter().map(|&l| l == positive).collect();
        let s: Vec<f64> = oof.iter().map(|p| p[positive]).collect();
        best_accuracy_threshold(&pos, &s)
    } else {
        0.5
    };
    let evidence = with_copies(&oof, &y, &groups, k, params.copy_noise);
    let issues = confident::find(&evidence, &y, classes);
    let pred = |p: &Vec<f64>| predicted(p, positive, threshold);
    let mut confusion = vec![vec![0usize; k]; k];
    for (p, &l) in oof.iter().zip(&y) {
        confusion[l][pred(p)] += 1;
    }
    let images: Vec<FitImage> = samples
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let p = &oof[i];
            let uncertain = if k == 2 {
                (p[positive] - threshold).abs() < params.uncertain_band
            } else {
                let mut v = p.clone();
                v.sort_by(|a, b| b.total_cmp(a));
                v[0] - v[1] < 2.0 * params.uncertain_band
            };
            let copies: Vec<usize> = (0..n)
                .filter(|&j| j != i && groups[j] == groups[i])
                .collect();
            let other_label = copies.iter().filter(|&&j| y[j] != y[i]).count();
            let mut verdict = issues.verdicts[i].clone();
            if other_label > 0 && params.copy_noise.is_some() {
                verdict.reason = format!(
                    "{other_label} of its {} copies carry another label; {}",
                    copies.len(),
                    verdict.reason
                );
            }
            FitImage {
                path: s.path.clone(),
                label: s.label,
                fold: fold[i],
                oof: p.clone(),
                evidence: evidence[i].clone(),
                copies: copies.len(),
                copies_other_label: other_label,
                verdict,
                uncertain,
            }
        })
        .collect();
    let binary = (k == 2).then(|| {
        let pos: Vec<bool> = y.iter().map(|&l| l == positive).collect();
        let s: Vec<f64> = oof.iter().map(|p| p[positive]).collect();
        Metrics::compute(&pos, &s, threshold)
    });
    let aucs: Vec<f64> = per_fold.iter().filter_map(|m| m.roc_auc).collect();
    let accs: Vec<f64> = per_fold.iter().map(|m| m.accuracy).collect();
    if cancel.load(Ordering::Relaxed) {
        return Err("cancelled".into());
    }
    Ok(FitReport {
        classes: classes.to_vec(),
        positive,
        oof: fold_metrics(&oof, &y, k, positive, threshold),
        images,
        skipped: vec![],
        auc_spread: (aucs.len() == per_fold.len() && !aucs.is_empty()).then(|| mean_sd(&aucs)),
        accuracy_spread: mean_sd(&accs),
        folds: per_fold,
        confusion,
        binary,
        threshold,
        thresholds: issues.thresholds.clone(),
        joint: issues.joint.clone(),
        grouped,
        groups: n_groups,
        params: params.clone(),
        seconds_features: 0.0,
        seconds_fit: t0.elapsed().as_secs_f64(),
    })
}
