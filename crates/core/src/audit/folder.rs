//! The audit of a folder on disk with the user's caches: what the command line, the dashboard
//! and `fit`'s grouping call.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use super::report::Report;
use super::{AuditInput, AuditParams, ModelRef, Stage, audit, decisions};
use crate::cache::DiskCache;
use crate::labels::ClassSpec;
use crate::scan::Entry;

/// Audits the scanned `entries` of `dir` with the default caches (signatures, features,
/// verifications under the user's cache folder) and the decisions in `dir/.osteoai/audit.json`.
/// With an engine, its backbone gives the embeddings and its head the inflation figures.
#[allow(clippy::too_many_arguments)]
pub fn audit_folder(
    dir: &Path,
    entries: &[Entry],
    scan_issues: Vec<(String, String)>,
    engine: Option<&crate::engine::Engine>,
    classes: &ClassSpec,
    params: &AuditParams,
    cancel: &AtomicBool,
    progress: &(dyn Fn(Stage, usize, usize) + Sync),
) -> crate::error::Result<Report> {
    let decisions = decisions::Decisions::open(dir)?;
    let root = crate::cache::cache_root();
    let signatures = DiskCache::new(root.join("audit"));
    let features = crate::features::default_cache();
    let pairs = root.join("audit-pairs");
    let model = engine.map(|e| ModelRef {
        name: e.bundle.name().to_string(),
        backbone: &e.backbone,
        head: Some(&e.bundle.head),
        threshold: e.manifest().threshold,
        positive: e.manifest().classes.positive_index().unwrap_or(0),
    });
    let input = AuditInput {
        root: dir,
        entries,
        scan_issues,
        classes,
        model,
        signatures: Some(&signatures),
        features: Some(&features),
        pairs: Some(&pairs),
        decisions: &decisions,
    };
    Ok(audit(&input, params, cancel, progress)?)
}

/// Scans `dir` and audits it (`audit_folder`); files the scan could not use are findings.
pub fn audit_dir(
    dir: &Path,
    engine: Option<&crate::engine::Engine>,
    classes: &ClassSpec,
    params: &AuditParams,
    cancel: &AtomicBool,
    progress: &(dyn Fn(Stage, usize, usize) + Sync),
) -> Result<Report, String> {
    let scan = crate::scan::scan(dir, classes);
    let issues = scan
        .issues
        .iter()
        .map(|i| (i.path.display().to_string(), i.message.clone()))
        .collect();
    audit_folder(
        dir,
        &scan.entries,
        issues,
        engine,
        classes,
        params,
        cancel,
        progress,
    )
    .map_err(String::from)
}
