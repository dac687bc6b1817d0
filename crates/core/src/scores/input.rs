//! A score file joined to a folder scanned now: for `eval --scores` and the dashboard's
//! `--scores`. Labels and splits come from the folder as it is now; scores, predictions and
//! errors from the file; classes and threshold from the file's sidecar, else from the model
//! (`--model`, else the default), which is never loaded beyond its manifest.

use std::path::{Path, PathBuf};

use crate::labels::ClassSpec;
use crate::model::Bundle;
use crate::scan::scan;
use crate::scores::{ScoreFile, ScoreRow, merge::merge};
use crate::shard::relative_to;

pub struct ScoresInput {
    /// One row per scanned image that has a score, in scan order, labelled from the folder.
    pub rows: Vec<ScoreRow>,
    pub model: String,
    pub threshold: f64,
    pub classes: ClassSpec,
    /// What did not match, said to the user.
    pub notes: Vec<String>,
}

/// The classes, threshold and model name for `file`: its sidecar's, else the model's
/// manifest; plus a note when there is no sidecar. Reads no rows (quick, for a first frame).
/// `model_dir` finds the model folder (the caller's rule: `--model`, the environment, the
/// bundled model); it is called only when the file has no sidecar.
pub fn classes_of(
    file: &Path,
    model_dir: &dyn Fn() -> Result<PathBuf, String>,
) -> Result<(ClassSpec, f64, String, Option<String>), String> {
    std::fs::metadata(file).map_err(|e| format!("{}: {e}", file.display()))?;
    if let Some(m) = crate::scores::Meta::read(file)? {
        return Ok((m.classes, m.threshold, m.model, None));
    }
    let manifest = model_dir()
        .and_then(|d| Bundle::read_manifest(&d).map_err(|e| e.to_string()))
        .map_err(|e| {
            format!(
                "{} has no sidecar ({}) and the model's classes are unknown: {e}",
                file.display(),
                crate::scores::meta_path(file).display()
            )
        })?;
    let note = format!(
        "{} has no sidecar: classes and threshold {:.4} of model {}",
        file.display(),
        manifest.threshold,
        manifest.name
    );
    Ok((
        manifest.classes,
        manifest.threshold,
        manifest.name,
        Some(note),
    ))
}

pub fn load(
    file: &Path,
    dir: &Path,
    model_dir: &dyn Fn() -> Result<PathBuf, String>,
) -> Result<ScoresInput, String> {
    let (classes, threshold, model_name, note) = classes_of(file, model_dir)?;
    let f = ScoreFile::read(file)?;
    let mut notes: Vec<String> = note.into_iter().collect();
    if let Some(p) = f.positive.as_deref()
        && p != classes.positive
    {
        return Err(format!(
            "{} scores class {p:?} but the model's positive class is {:?}",
            file.display(),
            classes.positive
        ));
    }
    let report = scan(dir, &classes);
    let rels: Vec<PathBuf> = report
        .entries
        .iter()
        .map(|e| relative_to(&e.path, dir).to_path_buf())
        .collect();
    let merged = merge(std::slice::from_ref(&f), &rels);
    let mut rows = Vec::new();
    for (e, r) in report.entries.iter().zip(&merged.rows) {
        if let Some(r) = r {
            rows.push(ScoreRow {
                path: e.path.display().to_string(),
                split: e.split.map(|s| s.to_string()),
                label: e.label.map(|l| classes.names[l].clone()),
                ..r.clone()
            });
        }
    }
    let missing = merged.missing();
    if missing > 0 {
        notes.push(format!(
            "{missing} of {} images of {} have no score in {}",
            report.entries.len(),
            dir.display(),
            file.display()
        ));
    }
    if !merged.unknown.is_empty() {
        notes.push(format!(
            "{} rows of {} name no image of {} (first: {})",
            merged.unknown.len(),
            file.display(),
            dir.display(),
            merged.unknown[0].1
        ));
    }
    if !merged.duplicates.is_empty() {
        notes.push(format!(
            "{} images have more than one row; the first is used",
            merged.duplicates.len()
        ));
    }
    if f.meta.as_ref().is_some_and(|m| !m.complete) {
        notes.push(format!(
            "{} is from a run that did not finish (resume it with --resume)",
            file.display()
        ));
    }
    if f.torn_tail {
        notes.push(format!(
            "{}: a half-written last line was left out",
            file.display()
        ));
    }
    Ok(ScoresInput {
        rows,
        model: model_name,
        threshold,
        classes,
        notes,
    })
}
