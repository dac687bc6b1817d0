//! Honest validation for a folder that already has `train/ val/ [test/]`: the audit's groups
//! (verified copies, one patient's films) say how many held-out images have a copy in an
//! earlier split, and `--regroup` re-splits the folder in memory (nothing is moved) so that no
//! group crosses a split, with the folder's own proportions and labels stratified.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use crate::audit::report::{Leakage, Report};
use crate::audit::{AuditParams, Stage, resplit};
use crate::labels::{ClassSpec, Split};
use crate::train::Splits;

/// One held-out split's line: how many of its images have a copy (or the same patient) in an
/// earlier split.
pub fn leak_line(l: &Leakage) -> String {
    format!(
        "{} of {} {} images ({:.1}%) have a verified copy or the same patient in {}",
        l.leaked,
        l.of,
        l.split,
        100.0 * l.share,
        l.into
    )
}

/// Held-out images with a copy in an earlier split, all splits together.
pub fn leaked(leakage: &[Leakage]) -> usize {
    leakage.iter().map(|l| l.leaked).sum()
}

/// Whether a folder's splits are worth the audit before a fine-tune: it has labelled train/ and
/// val/ images and was not written by `osteoai split` (whose splits are grouped already) —
/// unless a re-split is asked for anyway.
pub fn needs_check(dir: &Path, classes: &ClassSpec, regroup: bool) -> bool {
    if !regroup && dir.join("split-manifest.csv").is_file() {
        return false;
    }
    let scan = crate::scan::scan(dir, classes);
    let has = |s: Split| {
        scan.entries
            .iter()
            .any(|e| e.split == Some(s) && e.label.is_some())
    };
    has(Split::Train) && has(Split::Val)
}

/// What the audit before a fine-tune found: per pair of splits, how many held-out images have
/// a copy or the same patient in the earlier one ([`leak_line`] says it), and (when asked) the
/// grouped re-split.
#[derive(Debug, Default)]
pub struct Check {
    pub leakage: Vec<Leakage>,
    pub splits: Option<Splits>,
}

/// Audits `dir` (the caches make a second time quick) and, with `regroup`, re-splits it in
/// memory. `Err` when cancelled or when the re-split is impossible.
#[allow(clippy::too_many_arguments)]
pub fn check(
    dir: &Path,
    engine: Option<&crate::engine::Engine>,
    classes: &ClassSpec,
    params: &AuditParams,
    regroup: bool,
    seed: u64,
    cancel: &AtomicBool,
    progress: &(dyn Fn(Stage, usize, usize) + Sync),
) -> Result<Check, String> {
    let report = crate::audit::audit_dir(dir, engine, classes, params, cancel, progress)?;
    let splits = if regroup {
        Some(self::regroup(&report, dir, seed)?)
    } else {
        None
    };
    Ok(Check {
        leakage: report.leakage,
        splits,
    })
}

/// The grouped re-split: train, val and test in the proportions the folder has now (a split
/// it lacks stays empty), no group across splits, the same seed giving the same splits.
pub fn regroup(report: &Report, root: &Path, seed: u64) -> Result<Splits, String> {
    let count = |s: Split| report.images.iter().filter(|i| i.split == Some(s)).count() as f64;
    let ratios = [count(Split::Train), count(Split::Val), count(Split::Test)];
    if ratios[0] == 0.0 || ratios[1] == 0.0 {
        return Err(format!(
            "{}: --regroup keeps the folder's proportions and needs train/ and val/",
            root.display()
        ));
    }
    let plan = resplit::plan(report, root, ratios, seed).map_err(|e| e.to_string())?;
    Ok(plan
        .placements
        .into_iter()
        .map(|p| (p.source, p.split))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::report::tests_support::{img, near};
    use crate::audit::report::{Image, Leakage};

    /// Twelve images: two groups of copies across train and val, the rest single.
    fn report() -> Report {
        let mut images: Vec<Image> = Vec::new();
        let splits = [
            Split::Train,
            Split::Train,
            Split::Train,
            Split::Train,
            Split::Val,
            Split::Val,
        ];
        for (i, s) in splits.iter().cycle().take(12).enumerate() {
            let label = if i % 2 == 0 { "fracture" } else { "nofracture" };
            images.push(img(
                &format!("/d/{}/{label}/{i}.png", s.as_str()),
                *s,
                label,
            ));
        }
        Report {
            images,
            pairs: vec![near(0, 4), near(1, 5), near(5, 7)],
            leakage: vec![Leakage {
                split: Split::Val,
                into: Split::Train,
                leaked: 2,
                of: 4,
                share: 0.5,
            }],
            ..Report::default()
        }
    }

    #[test]
    fn regroup_keeps_groups_whole_and_the_proportions() {
        let r = report();
        let s = regroup(&r, Path::new("/d"), 0).unwrap();
        assert_eq!(s.len(), 12);
        let of = |i: usize| s[&std::path::PathBuf::from(&r.images[i].path)];
        assert_eq!(of(0), of(4));
        assert_eq!(of(1), of(5));
        assert_eq!(of(1), of(7));
        let val = s.values().filter(|v| **v == Split::Val).count();
        assert_eq!(val, 4, "{s:?}");
        assert_eq!(s, regroup(&r, Path::new("/d"), 0).unwrap(), "deterministic");
        assert_eq!(leaked(&r.leakage), 2);
        assert_eq!(
            r.leakage.iter().map(leak_line).collect::<Vec<_>>(),
            vec!["2 of 4 val images (50.0%) have a verified copy or the same patient in train"]
        );
    }

    #[test]
    fn regroup_needs_train_and_val() {
        let mut r = report();
        for im in &mut r.images {
            im.split = Some(Split::Train);
        }
        assert!(
            regroup(&r, Path::new("/d"), 0)
                .unwrap_err()
                .contains("needs train/ and val/")
        );
    }
}
