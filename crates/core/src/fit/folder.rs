//! Fitting a whole folder, as `osteoai fit` and the dashboard do it: classes from the folder
//! names, folds grouped by the audit's groups, the fit, and the bundle (with `oof.csv`) written
//! to `DIR/.osteoai/models/fit` or a given folder.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use super::{FitParams, FitReport, Sample, class_folder, discover_classes, fit, manifest_for};
use crate::engine::Engine;
use crate::labels::ClassSpec;
use crate::text::csv_field;

/// What a folder fit produced.
pub struct FitRun {
    pub report: FitReport,
    pub spec: ClassSpec,
    /// Where the bundle was written.
    pub bundle: PathBuf,
}

/// The default bundle folder of a folder's fit.
pub fn default_bundle(dir: &Path) -> PathBuf {
    dir.join(crate::journal::SIDECAR).join("models").join("fit")
}

/// Fits the labelled images among `files` (labels from their class folders), folds grouped by
/// `groups` (image path -> group of copies) and `units` (copies and one patient's films
/// together, when the audit knows patients), and writes the bundle to `out` (default
/// [`default_bundle`]).
#[allow(clippy::too_many_arguments)]
pub fn fit_folder(
    dir: &Path,
    files: &[PathBuf],
    engine: &Engine,
    params: &FitParams,
    groups: &HashMap<PathBuf, usize>,
    units: &HashMap<PathBuf, usize>,
    positive: Option<&str>,
    out: Option<&Path>,
    command: &str,
    cancel: &AtomicBool,
    progress: impl FnMut(usize, usize),
) -> crate::error::Result<FitRun> {
    let spec = discover_classes(dir, files, positive)?;
    let known = ClassSpec::fracture_default();
    let samples: Vec<Sample> = files
        .iter()
        .filter_map(|f| {
            let c = class_folder(dir, f, &known)?;
            Some(Sample {
                path: f.clone(),
                label: spec.names.iter().position(|n| *n == c)?,
                group: groups.get(f).copied(),
                unit: units.get(f).copied(),
            })
        })
        .collect();
    let cache = crate::features::default_cache();
    let pos = spec.positive_index().unwrap_or(0);
    let (report, booster) = fit(
        &samples,
        &spec.names,
        pos,
        &engine.backbone,
        Some(&cache),
        params,
        cancel,
        progress,
    )?;
    let bundle = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| default_bundle(dir));
    let manifest = manifest_for(engine.manifest(), &report, dir, command, &spec);
    manifest.validate()?;
    let head = booster
        .save_string()
        .map_err(|e| format!("LightGBM save: {e}"))?;
    crate::train::write_bundle(&engine.bundle.dir, &bundle, &manifest, &head)?;
    crate::train::atomic_write(&bundle.join("oof.csv"), oof_csv(&report).as_bytes())?;
    Ok(FitRun {
        report,
        spec,
        bundle,
    })
}

/// One row per image: path, label, suggested, issue_score, is_issue, oof_p_<class>..., fold,
/// copies, copies_other_label, uncertain, reason.
pub fn oof_csv(r: &FitReport) -> String {
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
            ",{},{},{},{},{}\n",
            im.fold,
            im.copies,
            im.copies_other_label,
            im.uncertain,
            csv_field(&im.verdict.reason)
        ));
    }
    s
}
