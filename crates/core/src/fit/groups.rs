//! What `fit`'s folds keep whole and what counts as label evidence: the audit's groups of
//! copies, one patient's films (a CSV, a folder level, DICOM identity), or nothing.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use crate::audit::patients::PatientOptions;
use crate::audit::report::Report;
use crate::audit::{AuditParams, Stage, audit_dir};
use crate::engine::Engine;

/// How the folds are grouped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grouping {
    Audit,
    None,
    /// The audit's groups and the patients of this CSV.
    File(PathBuf),
}

impl Grouping {
    /// `audit`, `none` or a CSV path (the `--groups` value of `fit`).
    pub fn parse(s: &str) -> Result<Grouping, String> {
        Ok(match s {
            "audit" => Grouping::Audit,
            "none" => Grouping::None,
            path => Grouping::File(PathBuf::from(path)),
        })
    }
}

pub type Groups = std::collections::HashMap<PathBuf, usize>;

/// The groups of copies (label evidence) and what the folds keep whole (copies and one
/// patient's films): the audit's, or none.
pub fn groups_for(
    dir: &Path,
    engine: &Engine,
    grouping: Grouping,
    group_dir: Option<usize>,
    audited: Option<&Report>,
    cancel: &AtomicBool,
    progress: &(dyn Fn(Stage, usize, usize) + Sync),
) -> Result<(Groups, Groups), String> {
    let params = |file: Option<PathBuf>| AuditParams {
        patients: PatientOptions {
            groups_file: file,
            group_dir,
            dicom: true,
        },
        // The fit needs the classifier's features: the audit computes them once for both.
        classifier_features: true,
        ..AuditParams::default()
    };
    let audit = |file| {
        let classes = &engine.manifest().classes;
        audit_dir(dir, Some(engine), classes, &params(file), cancel, progress)
            .map(|r| (r.groups_by_path(), r.units_by_path()))
    };
    Ok(match (grouping, audited) {
        (Grouping::None, _) => Default::default(),
        (Grouping::Audit, Some(r)) => (r.groups_by_path(), r.units_by_path()),
        (Grouping::Audit, None) => audit(None)?,
        (Grouping::File(f), _) => audit(Some(f))?,
    })
}
