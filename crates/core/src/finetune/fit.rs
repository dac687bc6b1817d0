//! `fit --finetune`: the cross-validated fit with a fine-tuned CNN per fold. Each fold's model
//! is fine-tuned on the other folds (selected on a grouped, stratified fifth of them, never on
//! the held-out fold) and scores the held-out fold; the out-of-fold scores feed the same
//! metrics, matrix and label issues as `fit`; the final model is fine-tuned on all images.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use serde_json::json;

use super::eval::predict;
use super::folder::{Written, write_bundle};
use super::{Event, Outcome, Recipe, data, finetune};
use crate::decode::model_input::Preprocess;
use crate::device::Selected;
use crate::fit::{FitParams, FitReport, Sample, class_folder, discover_classes, fit_oof, folds};
use crate::labels::ClassSpec;
use crate::model::Manifest;
use crate::model::import::load_base;

/// What a fine-tuned folder fit produced.
pub struct FinetuneFit {
    pub report: FitReport,
    pub spec: ClassSpec,
    pub bundle: PathBuf,
}

/// Splits `idx` (indices into `labels`/`groups`) into (train, val): val is one of five grouped,
/// stratified folds of them.
fn inner_split(
    idx: &[usize],
    labels: &[usize],
    groups: &[usize],
    keys: &[String],
    classes: usize,
    seed: u64,
) -> (Vec<usize>, Vec<usize>) {
    let l: Vec<usize> = idx.iter().map(|&i| labels[i]).collect();
    let g: Vec<usize> = idx.iter().map(|&i| groups[i]).collect();
    let k: Vec<String> = idx.iter().map(|&i| keys[i].clone()).collect();
    let f = folds::assign(&l, &g, &k, classes, 5, seed ^ 0x1F);
    let (mut tr, mut va) = (Vec::new(), Vec::new());
    for (j, &i) in idx.iter().enumerate() {
        if f[j] == 0 { va.push(i) } else { tr.push(i) }
    }
    (tr, va)
}

#[allow(clippy::too_many_arguments)]
pub fn finetune_fit_folder(
    dir: &Path,
    files: &[PathBuf],
    base_dir: &Path,
    base: &Manifest,
    device: &Selected,
    recipe: &Recipe,
    params: &FitParams,
    groups: &HashMap<PathBuf, usize>,
    positive: Option<&str>,
    out: &Path,
    command: &str,
    cancel: &AtomicBool,
    mut log: impl FnMut(&str),
) -> Result<FinetuneFit, String> {
    let spec = discover_classes(dir, files, positive)?;
    let known = ClassSpec::fracture_default();
    let mut items = Vec::new();
    let mut samples = Vec::new();
    for f in files {
        let Some(c) = class_folder(dir, f, &known) else {
            continue;
        };
        let Some(label) = spec.names.iter().position(|n| *n == c) else {
            continue;
        };
        items.push((f.clone(), label));
        samples.push(Sample {
            path: f.clone(),
            label,
            group: groups.get(f).copied(),
            unit: None,
        });
    }
    let pre = Preprocess::imagenet(recipe.size);
    let t0 = std::time::Instant::now();
    let (decoded, bad) = data::load(&items, &pre);
    let ok: std::collections::HashSet<PathBuf> = decoded.iter().map(|d| d.path.clone()).collect();
    samples.retain(|s| ok.contains(&s.path));
    log(&format!(
        "{} images decoded in {:.1} s ({} could not be read)",
        decoded.len(),
        t0.elapsed().as_secs_f64(),
        bad.len()
    ));
    let k = spec.names.len();
    let pos = spec.positive_index().unwrap_or(0);
    let labels: Vec<usize> = samples.iter().map(|s| s.label).collect();
    let group_ids: Vec<usize> = samples
        .iter()
        .enumerate()
        .map(|(i, s)| s.group.unwrap_or(usize::MAX / 2 + i))
        .collect();
    let keys: Vec<String> = samples
        .iter()
        .map(|s| s.path.to_string_lossy().into_owned())
        .collect();
    let net = load_base(base_dir, base, &device.device)?;
    let train_on = |idx: &[usize],
                    what: &str,
                    log: &mut dyn FnMut(&str)|
     -> Result<(Outcome, Vec<usize>), String> {
        let (tr, va) = inner_split(idx, &labels, &group_ids, &keys, k, params.seed);
        let train: Vec<data::Sample> = tr
            .iter()
            .map(|&i| data::Sample {
                path: decoded[i].path.clone(),
                label: decoded[i].label,
                pixels: crate::decode::model_input::Pixels {
                    width: decoded[i].pixels.width,
                    height: decoded[i].pixels.height,
                    channels: decoded[i].pixels.channels,
                    data: decoded[i].pixels.data.clone(),
                },
            })
            .collect();
        let val: Vec<(PathBuf, usize)> = va
            .iter()
            .map(|&i| (samples[i].path.clone(), labels[i]))
            .collect();
        log(&format!(
            "{what}: fine-tuning on {} images, selecting on {}",
            train.len(),
            val.len()
        ));
        let mut last = String::new();
        let o = finetune(
            net.clone(),
            k,
            pos,
            &train,
            &val,
            recipe,
            device,
            None,
            false,
            cancel,
            |e| {
                if let Event::Epoch(s) = e {
                    last = format!("{what}: epoch {} val ROC AUC {:.4}", s.epoch, s.val_auc);
                }
            },
        )?;
        if !last.is_empty() {
            log(&last);
        }
        if o.interrupted {
            return Err("cancelled".into());
        }
        Ok((o, va))
    };
    let mut fold_epochs = Vec::new();
    let report = fit_oof(&samples, &spec.names, pos, params, cancel, |f, tr, te| {
        let (o, _) = train_on(tr, &format!("fold {}", f + 1), &mut log)?;
        fold_epochs.push(o.best_epoch);
        let paths: Vec<PathBuf> = te.iter().map(|&i| samples[i].path.clone()).collect();
        predict(&o.best, device, &pre, &paths, recipe.flip_average, 16)?
            .into_iter()
            .map(|p| p.map_err(|e| format!("scoring a held-out image: {e}")))
            .collect()
    })?;
    let all: Vec<usize> = (0..samples.len()).collect();
    let (final_model, _) = train_on(&all, "final model", &mut log)?;
    let mut metrics = BTreeMap::new();
    metrics.insert("out_of_fold".into(), {
        let mut v = report.oof_metrics_json();
        v["best_epoch_per_fold"] = json!(fold_epochs);
        v
    });
    let written = Written {
        out,
        recipe,
        classes: &spec,
        threshold: report.threshold,
        data: format!(
            "{} ({} labelled images, classes {:?})",
            dir.display(),
            samples.len(),
            spec.names
        ),
        command,
    };
    write_bundle(base_dir, base, &written, &final_model, metrics)?;
    crate::train::atomic_write(
        &out.join("oof.csv"),
        crate::fit::folder::oof_csv(&report).as_bytes(),
    )?;
    Ok(FinetuneFit {
        report,
        spec,
        bundle: out.to_path_buf(),
    })
}
