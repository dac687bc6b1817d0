//! A leak-free re-split: every group of copies (the audit's connected components) goes to one
//! split, splits get the asked ratios of each label (stratified), the same seed gives the same
//! split. The new folder is built beside its destination under a temporary name and renamed
//! into place when complete; the source folder is never written (files are hard-linked, or
//! copied where a link is impossible or `copy` is asked).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::report::Report;
use crate::cache::Fnv;
use crate::labels::Split;

/// One file's place in the new split.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Placement {
    pub source: PathBuf,
    /// Relative to the new folder.
    pub dest: PathBuf,
    pub split: Split,
    pub old_split: Option<Split>,
    pub label: String,
    /// Group of copies (index into the report's groups), if any.
    pub group: Option<usize>,
}

/// The plan: placements, and what was left out (unreadable or unlabelled files) with why.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Plan {
    pub placements: Vec<Placement>,
    pub skipped: Vec<(PathBuf, String)>,
}

impl Plan {
    /// Count per split and label.
    pub fn counts(&self) -> BTreeMap<Split, BTreeMap<String, usize>> {
        let mut m: BTreeMap<Split, BTreeMap<String, usize>> = BTreeMap::new();
        for p in &self.placements {
            *m.entry(p.split)
                .or_default()
                .entry(p.label.clone())
                .or_default() += 1;
        }
        m
    }

    /// Held-out files whose group has a member in an earlier split (0 for a plan made here).
    pub fn leaked(&self) -> usize {
        let mut first: BTreeMap<usize, Split> = BTreeMap::new();
        for p in &self.placements {
            if let Some(g) = p.group {
                let e = first.entry(g).or_insert(p.split);
                *e = (*e).min(p.split);
            }
        }
        self.placements
            .iter()
            .filter(|p| p.group.is_some_and(|g| first[&g] < p.split))
            .count()
    }
}

fn hash_str(seed: u64, s: &str) -> u64 {
    let mut h = Fnv::new();
    h.write_u64(seed);
    h.write(s.as_bytes());
    h.finish()
}

/// Plans the split of the report's labelled, readable images. `ratios`: train, val, test
/// (normalised; a zero ratio leaves that split empty).
pub fn plan(
    report: &Report,
    root: &Path,
    ratios: [f64; 3],
    seed: u64,
) -> crate::error::Result<Plan> {
    use crate::error::Kind;
    plan_msg(report, root, ratios, seed).kind(crate::error::Error::Layout)
}

fn plan_msg(report: &Report, root: &Path, ratios: [f64; 3], seed: u64) -> Result<Plan, String> {
    let sum: f64 = ratios.iter().sum();
    if sum.is_nan() || sum <= 0.0 || ratios.iter().any(|r| *r < 0.0 || !r.is_finite()) {
        return Err(format!(
            "ratios must be non-negative and not all zero: {ratios:?}"
        ));
    }
    let ratios = ratios.map(|r| r / sum);
    let splits = [Split::Train, Split::Val, Split::Test];
    let unreadable: std::collections::HashSet<usize> =
        report.unreadable.iter().map(|u| u.image).collect();
    let mut plan = Plan::default();
    let usable = |i: usize| !unreadable.contains(&i) && report.images[i].label.is_some();
    for (i, img) in report.images.iter().enumerate() {
        if unreadable.contains(&i) {
            plan.skipped
                .push((PathBuf::from(&img.path), "unreadable".into()));
        } else if img.label.is_none() {
            plan.skipped.push((
                PathBuf::from(&img.path),
                "no label (no class folder)".into(),
            ));
        }
    }
    // Units: copies and every film of one patient together, then single images.
    let mut units: Vec<Vec<usize>> = report
        .units()
        .into_iter()
        .map(|g| g.into_iter().filter(|&i| usable(i)).collect::<Vec<_>>())
        .filter(|g: &Vec<usize>| !g.is_empty())
        .collect();
    let rel = |i: usize| -> String {
        let p = Path::new(&report.images[i].path);
        p.strip_prefix(root)
            .unwrap_or(p)
            .to_string_lossy()
            .into_owned()
    };
    // Seeded order, largest units first (they are the hardest to fit).
    units.sort_by_key(|u| (std::cmp::Reverse(u.len()), hash_str(seed, &rel(u[0]))));
    let labels: Vec<String> = {
        let mut l: Vec<String> = units
            .iter()
            .flatten()
            .filter_map(|&i| report.images[i].label.clone())
            .collect();
        l.sort();
        l.dedup();
        l
    };
    let li = |i: usize| {
        labels
            .iter()
            .position(|l| Some(l) == report.images[i].label.as_ref())
            .unwrap_or(0)
    };
    let mut total = vec![0f64; labels.len()];
    for &i in units.iter().flatten() {
        total[li(i)] += 1.0;
    }
    let target: Vec<Vec<f64>> = ratios
        .iter()
        .map(|r| total.iter().map(|t| t * r).collect())
        .collect();
    let mut have = vec![vec![0f64; labels.len()]; 3];
    let mut assigned: Vec<(usize, Split)> = Vec::new();
    for u in &units {
        let mut add = vec![0f64; labels.len()];
        for &i in u {
            add[li(i)] += 1.0;
        }
        // Cost of a state: squared shortfall/excess against the targets, relative to them.
        let cost = |h: &Vec<Vec<f64>>| -> f64 {
            (0..3)
                .map(|s| {
                    (0..labels.len())
                        .map(|c| (h[s][c] - target[s][c]).powi(2) / target[s][c].max(1.0))
                        .sum::<f64>()
                })
                .sum()
        };
        let best = (0..3)
            .filter(|&s| ratios[s] > 0.0)
            .min_by(|&a, &b| {
                let try_in = |s: usize| {
                    let mut h = have.clone();
                    for c in 0..labels.len() {
                        h[s][c] += add[c];
                    }
                    cost(&h)
                };
                try_in(a).total_cmp(&try_in(b)).then(a.cmp(&b))
            })
            .expect("one ratio is positive");
        for c in 0..labels.len() {
            have[best][c] += add[c];
        }
        for &i in u {
            assigned.push((i, splits[best]));
        }
    }
    assigned.sort();
    let mut taken: std::collections::HashSet<PathBuf> = std::collections::HashSet::new();
    for (i, split) in assigned {
        let img = &report.images[i];
        let label = img.label.clone().expect("usable images are labelled");
        let src = PathBuf::from(&img.path);
        let name = src
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        let mut dest = PathBuf::from(split.as_str()).join(&label).join(&name);
        let mut k = 2;
        while taken.contains(&dest) {
            let stem = Path::new(&name)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let ext = Path::new(&name)
                .extension()
                .map(|e| format!(".{}", e.to_string_lossy()))
                .unwrap_or_default();
            dest = PathBuf::from(split.as_str())
                .join(&label)
                .join(format!("{stem}~{k}{ext}"));
            k += 1;
        }
        taken.insert(dest.clone());
        plan.placements.push(Placement {
            source: src,
            dest,
            split,
            old_split: img.split,
            label,
            group: img.group,
        });
    }
    Ok(plan)
}

/// The manifest CSV of a plan.
pub fn manifest_csv(plan: &Plan) -> String {
    let q = crate::text::csv_field;
    let mut s = String::from("source,dest,split,label,old_split,group\n");
    for p in &plan.placements {
        s.push_str(&format!(
            "{},{},{},{},{},{}\n",
            q(&p.source.display().to_string()),
            q(&p.dest.display().to_string()),
            p.split,
            q(&p.label),
            p.old_split.map(|s| s.to_string()).unwrap_or_default(),
            p.group.map(|g| g.to_string()).unwrap_or_default()
        ));
    }
    s
}

/// How files reached the new folder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Written {
    pub linked: usize,
    pub copied: usize,
}

/// Builds the plan at `out` (which must not exist, or be an empty folder): everything goes into
/// a temporary sibling folder first, which is renamed to `out` at the end; on any error the
/// temporary folder is removed and `out` is untouched. Hard links unless `copy`.
pub fn write(plan: &Plan, out: &Path, copy: bool) -> crate::error::Result<Written> {
    use crate::error::Kind;
    write_msg(plan, out, copy).kind(crate::error::Error::Io)
}

fn write_msg(plan: &Plan, out: &Path, copy: bool) -> Result<Written, String> {
    if out.exists() {
        let empty = std::fs::read_dir(out)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if !empty {
            return Err(format!(
                "{} already exists and is not empty; choose a new folder",
                out.display()
            ));
        }
    }
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)
        .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    let tmp = parent.join(format!(
        ".{}.osteoai-split-{}",
        out.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "split".into()),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    let result = (|| {
        let mut w = Written::default();
        for p in &plan.placements {
            let dest = tmp.join(&p.dest);
            if let Some(d) = dest.parent() {
                std::fs::create_dir_all(d)
                    .map_err(|e| format!("cannot create {}: {e}", d.display()))?;
            }
            if !copy && std::fs::hard_link(&p.source, &dest).is_ok() {
                w.linked += 1;
            } else {
                std::fs::copy(&p.source, &dest).map_err(|e| {
                    format!(
                        "cannot copy {} to {}: {e}",
                        p.source.display(),
                        dest.display()
                    )
                })?;
                w.copied += 1;
            }
        }
        crate::train::atomic_write(
            &tmp.join("split-manifest.csv"),
            manifest_csv(plan).as_bytes(),
        )?;
        if out.exists() {
            std::fs::remove_dir(out)
                .map_err(|e| format!("cannot replace the empty {}: {e}", out.display()))?;
        }
        std::fs::rename(&tmp, out)
            .map_err(|e| format!("cannot move the new split into {}: {e}", out.display()))?;
        tracing::info!(out = %out.display(), linked = w.linked, copied = w.copied, "re-split written");
        Ok(w)
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::super::report::analyse;
    use super::super::report::tests_support::{empty_report, img};
    use super::*;

    #[test]
    fn groups_stay_together_labels_are_stratified_and_the_seed_decides() {
        // 60 images: 20 groups of 2 (copies), 20 singles; two labels.
        let mut images = Vec::new();
        let mut pairs = Vec::new();
        for g in 0..20 {
            let label = if g % 2 == 0 { "f" } else { "n" };
            images.push(img(
                &format!("/d/train/{label}/g{g}a.jpg"),
                Split::Train,
                label,
            ));
            images.push(img(
                &format!("/d/test/{label}/g{g}b.jpg"),
                Split::Test,
                label,
            ));
            pairs.push(super::super::report::tests_support::near(
                images.len() - 2,
                images.len() - 1,
            ));
        }
        for k in 0..20 {
            let label = if k % 2 == 0 { "f" } else { "n" };
            images.push(img(&format!("/d/val/{label}/s{k}.jpg"), Split::Val, label));
        }
        let mut r = empty_report(images, pairs);
        analyse(&mut r);
        let p = plan(&r, Path::new("/d"), [0.6, 0.2, 0.2], 7).unwrap();
        assert_eq!(p.placements.len(), 60);
        assert_eq!(p.leaked(), 0);
        for g in 0..20 {
            let s: Vec<Split> = p
                .placements
                .iter()
                .filter(|x| x.source.to_string_lossy().contains(&format!("/g{g}")))
                .map(|x| x.split)
                .collect();
            assert_eq!(s[0], s[1], "group {g} split apart");
        }
        let c = p.counts();
        for s in [Split::Train, Split::Val, Split::Test] {
            let (f, n) = (c[&s]["f"], c[&s]["n"]);
            assert!((f as i64 - n as i64).abs() <= 2, "{s}: {f} vs {n}");
        }
        assert!((c[&Split::Train].values().sum::<usize>() as i64 - 36).abs() <= 2);
        assert_eq!(
            plan(&r, Path::new("/d"), [0.6, 0.2, 0.2], 7)
                .unwrap()
                .placements,
            p.placements
        );
        let other = plan(&r, Path::new("/d"), [0.6, 0.2, 0.2], 8).unwrap();
        assert_ne!(
            other.placements, p.placements,
            "another seed, another split"
        );
        assert!(plan(&r, Path::new("/d"), [0.0, 0.0, 0.0], 1).is_err());
    }

    #[test]
    fn write_links_files_and_never_overwrites() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src/train/f/a.jpg");
        std::fs::create_dir_all(src.parent().unwrap()).unwrap();
        std::fs::write(&src, b"A").unwrap();
        let plan = Plan {
            placements: vec![Placement {
                source: src.clone(),
                dest: PathBuf::from("test/f/a.jpg"),
                split: Split::Test,
                old_split: Some(Split::Train),
                label: "f".into(),
                group: None,
            }],
            skipped: vec![],
        };
        let out = t.path().join("new");
        let w = write(&plan, &out, false).unwrap();
        assert_eq!(w.linked + w.copied, 1);
        assert_eq!(std::fs::read(out.join("test/f/a.jpg")).unwrap(), b"A");
        assert!(
            std::fs::read_to_string(out.join("split-manifest.csv"))
                .unwrap()
                .contains("a.jpg")
        );
        assert!(
            write(&plan, &out, false)
                .unwrap_err()
                .to_string()
                .contains("not empty")
        );
        assert_eq!(
            std::fs::read(&src).unwrap(),
            b"A",
            "the source is untouched"
        );
        // A missing source fails cleanly: no half-built folder is left behind.
        let mut bad = plan.clone();
        bad.placements[0].source = t.path().join("missing.jpg");
        let out2 = t.path().join("new2");
        assert!(write(&bad, &out2, true).is_err());
        assert!(!out2.exists());
        let leftovers: Vec<_> = std::fs::read_dir(t.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains("osteoai-split"))
            .collect();
        assert!(leftovers.is_empty());
    }
}
