//! The audit report: what was found, as data (serialised whole as JSON), and the flat list of
//! findings (`kind, path, other, score, detail`) that the CSV output and the dashboard share.

use std::collections::BTreeMap;

use serde::Serialize;

use super::decisions::Decision;
use super::quality::QualityFlag;
use super::union_find::Groups;
use crate::labels::Split;
use osteoai_vision::verify::Verdict;

/// One image of the audit, as scanned.
#[derive(Clone, Debug, Serialize)]
pub struct Image {
    /// As the scan reports it (the folder given, joined with the file's place under it).
    pub path: String,
    pub split: Option<Split>,
    pub label: Option<String>,
    /// Near-duplicate group (connected component), when the image has a copy.
    pub group: Option<usize>,
    /// The person (an index, the same for one patient), when the groups file, the folder
    /// level or DICOM say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient: Option<usize>,
}

impl Image {
    /// A scanned file as the audit lists it (no group or patient yet).
    pub fn of_entry(e: &crate::scan::Entry, classes: &crate::labels::ClassSpec) -> Image {
        Image {
            path: e.path.display().to_string(),
            split: e.split,
            label: e.label.and_then(|l| classes.names.get(l).cloned()),
            group: None,
            patient: None,
        }
    }
}

/// How two files were found to be the same picture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PairKind {
    /// Identical bytes.
    ExactBytes,
    /// Different files, identical decoded pixels.
    ExactPixels,
    /// An augmented copy (geometrically verified, or confirmed by a person).
    Near,
    /// A candidate that failed verification narrowly: worth a look, not counted.
    Possible,
}

/// Evidence of the geometric check.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Verification {
    pub matches: u32,
    pub inliers: u32,
    pub spread: f32,
    /// Rank correlation of the pixels after alignment (the verification score).
    pub score: f32,
    pub pearson: f32,
    /// Correlation of the fine detail after alignment.
    pub detail: f32,
    pub overlap: f32,
    pub mirrored: bool,
    pub verified: bool,
}

impl From<&Verdict> for Verification {
    fn from(v: &Verdict) -> Self {
        Verification {
            matches: v.matches,
            inliers: v.inliers,
            spread: v.spread,
            score: v.ncc,
            pearson: v.pearson,
            detail: v.detail,
            overlap: v.overlap,
            mirrored: v.mirrored,
            verified: v.verified,
        }
    }
}

/// A pair of images that are (or may be) the same radiograph. `a` < `b` in scan order.
#[derive(Clone, Debug, Serialize)]
pub struct Pair {
    pub a: usize,
    pub b: usize,
    pub kind: PairKind,
    /// Cosine similarity of the reduced CNN embeddings (when computed).
    pub similarity: Option<f32>,
    /// Hamming distance of the perceptual hashes (the smaller of as-is and mirrored).
    pub phash_distance: u32,
    pub verification: Option<Verification>,
    pub decision: Option<Decision>,
}

impl Pair {
    /// Counted as a copy: exact, verified, or confirmed; never when dismissed.
    pub fn counts(&self) -> bool {
        match self.decision {
            Some(Decision::Dismissed) => false,
            Some(Decision::Confirmed) => true,
            None => self.kind != PairKind::Possible,
        }
    }

    /// The score a person reads: 1 for exact copies, else the verification score.
    pub fn score(&self) -> f64 {
        match self.kind {
            PairKind::ExactBytes | PairKind::ExactPixels => 1.0,
            _ => self.verification.map(|v| v.score as f64).unwrap_or(0.0),
        }
    }
}

/// A held-out image with a copy in an earlier split.
#[derive(Clone, Debug, Serialize)]
pub struct Leak {
    pub image: usize,
    pub split: Split,
    /// The split it leaks into (train, or val for a test image).
    pub into: Split,
    /// Its copy there: a direct pair when there is one, else a member of its group.
    pub other: usize,
    pub direct: bool,
    pub score: f64,
}

/// Leakage of one held-out split into an earlier one.
#[derive(Clone, Debug, Serialize)]
pub struct Leakage {
    pub split: Split,
    pub into: Split,
    pub leaked: usize,
    pub of: usize,
    pub share: f64,
}

/// Two copies of one picture that carry different labels.
#[derive(Clone, Debug, Serialize)]
pub struct Conflict {
    pub pair: usize,
    pub label_a: String,
    pub label_b: String,
}

/// Model metrics on a set of images.
#[derive(Clone, Debug, Serialize)]
pub struct SetMetrics {
    pub n: usize,
    pub roc_auc: Option<f64>,
    pub accuracy: Option<f64>,
}

/// How a held-out split's metrics change without its leaked images.
#[derive(Clone, Debug, Serialize)]
pub struct Inflation {
    pub split: Split,
    pub all: SetMetrics,
    pub without_leaked: SetMetrics,
    pub leaked_only: SetMetrics,
}

#[derive(Clone, Debug, Serialize)]
pub struct Unreadable {
    pub image: usize,
    pub reason: String,
}

/// Everything one audit found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub root: String,
    pub images: Vec<Image>,
    /// Paths the scan could not read or follow (not images).
    pub scan_issues: Vec<(String, String)>,
    pub unreadable: Vec<Unreadable>,
    pub pairs: Vec<Pair>,
    /// Groups of two or more images (indices), largest first.
    pub groups: Vec<Vec<usize>>,
    pub leakage: Vec<Leakage>,
    pub leaks: Vec<Leak>,
    /// Held-out images whose patient has other films in an earlier split (copies aside).
    pub patient_leakage: Vec<Leakage>,
    pub patient_leaks: Vec<Leak>,
    pub conflicts: Vec<Conflict>,
    pub quality: Vec<QualityFlag>,
    /// Per split ("all" too): label -> count ("unlabelled" for none).
    pub balance: BTreeMap<String, BTreeMap<String, usize>>,
    pub inflation: Option<Vec<Inflation>>,
    /// Model used for the inflation figures and the embeddings.
    pub model: Option<String>,
    /// Candidate pairs examined and how many of each signal.
    pub candidates: BTreeMap<String, usize>,
    /// Seconds per stage.
    pub timing: BTreeMap<String, f64>,
    pub notes: Vec<String>,
    /// Every candidate pair examined (only when asked for: tuning and benchmarks).
    #[serde(skip)]
    pub examined: Vec<Examined>,
}

/// A candidate pair and what verification said of it.
#[derive(Clone, Debug)]
pub struct Examined {
    pub a: usize,
    pub b: usize,
    pub similarity: Option<f32>,
    pub phash_distance: u32,
    pub verification: Option<Verification>,
}

/// One line of the CSV: `kind,path,other,score,detail`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    pub kind: &'static str,
    pub path: String,
    pub other: String,
    pub score: Option<f64>,
    pub detail: String,
    /// The pair behind it, for pair kinds.
    #[serde(skip)]
    pub pair: Option<usize>,
}

impl Report {
    fn pair_detail(&self, p: &Pair) -> String {
        let mut parts = Vec::new();
        match p.kind {
            PairKind::ExactBytes => parts.push("identical bytes".to_string()),
            PairKind::ExactPixels => parts.push("identical pixels, different files".to_string()),
            _ => {}
        }
        if let Some(v) = &p.verification
            && p.kind != PairKind::ExactBytes
            && p.kind != PairKind::ExactPixels
        {
            parts.push(format!(
                "verified {}: {} inliers of {} matches, spread {:.2}, aligned rank correlation {:.3}, shared fine detail {:.2}{}",
                if v.verified { "yes" } else { "no" },
                v.inliers,
                v.matches,
                v.spread,
                v.score,
                v.detail,
                if v.mirrored { ", mirrored" } else { "" }
            ));
        }
        if let Some(s) = p.similarity {
            parts.push(format!("embedding similarity {s:.3}"));
        }
        if let Some(d) = p.decision {
            parts.push(format!("{d:?} by a person").to_lowercase());
        }
        parts.join("; ")
    }

    /// The flat list of findings, in report order: unreadable, exact, near, leak, conflict,
    /// quality.
    pub fn findings(&self) -> Vec<Finding> {
        let path = |i: usize| self.images[i].path.clone();
        let mut out = Vec::new();
        for u in &self.unreadable {
            out.push(Finding {
                kind: "unreadable",
                path: path(u.image),
                other: String::new(),
                score: None,
                detail: u.reason.clone(),
                pair: None,
            });
        }
        for (k, p) in self.pairs.iter().enumerate() {
            let kind = match p.kind {
                PairKind::ExactBytes | PairKind::ExactPixels => "exact_duplicate",
                PairKind::Near if p.counts() => "near_duplicate",
                PairKind::Possible if p.counts() => "near_duplicate",
                _ => continue,
            };
            if !p.counts() {
                continue;
            }
            out.push(Finding {
                kind,
                path: path(p.a),
                other: path(p.b),
                score: Some(p.score()),
                detail: self.pair_detail(p),
                pair: Some(k),
            });
        }
        for l in &self.leaks {
            if l.into != Split::Train {
                continue; // test copies in val: in the summary and the JSON report
            }
            out.push(Finding {
                kind: "leak",
                path: path(l.image),
                other: path(l.other),
                score: Some(l.score),
                detail: format!(
                    "{} image with a copy in {}{}",
                    l.split,
                    l.into,
                    if l.direct {
                        ""
                    } else {
                        " (same group, not a direct pair)"
                    }
                ),
                pair: self.pairs.iter().position(|p| {
                    p.counts() && (p.a, p.b) == (l.image.min(l.other), l.image.max(l.other))
                }),
            });
        }
        for l in &self.patient_leaks {
            out.push(Finding {
                kind: "same_patient",
                path: path(l.image),
                other: path(l.other),
                score: None,
                detail: format!(
                    "{} image of a patient with other films in {} (same patient; who is never shown)",
                    l.split, l.into
                ),
                pair: None,
            });
        }
        for c in &self.conflicts {
            let p = &self.pairs[c.pair];
            out.push(Finding {
                kind: "label_conflict",
                path: path(p.a),
                other: path(p.b),
                score: Some(p.score()),
                detail: format!(
                    "{} vs {} ({})",
                    c.label_a,
                    c.label_b,
                    match p.kind {
                        PairKind::ExactBytes => "identical bytes",
                        PairKind::ExactPixels => "identical pixels",
                        _ => "augmented copy",
                    }
                ),
                pair: Some(c.pair),
            });
        }
        for q in &self.quality {
            out.push(Finding {
                kind: q.kind.name(),
                path: path(q.index),
                other: String::new(),
                score: Some(q.score),
                detail: q.detail.clone(),
                pair: None,
            });
        }
        out
    }

    /// Group of copies of each image that has one, by path.
    pub fn groups_by_path(&self) -> std::collections::HashMap<std::path::PathBuf, usize> {
        self.images
            .iter()
            .filter_map(|im| im.group.map(|g| (std::path::PathBuf::from(&im.path), g)))
            .collect()
    }

    /// Worst leaked share over the held-out splits (0 when none).
    pub fn max_leak_share(&self) -> f64 {
        self.leakage.iter().map(|l| l.share).fold(0.0, f64::max)
    }
}

/// Fills `groups`, `images[].group`, `leaks`, `leakage` and `conflicts` from the pairs (the
/// patients' leaks are `patients::patient_leaks`).
pub fn analyse(r: &mut Report) {
    let n = r.images.len();
    let mut g = Groups::new(n);
    for p in r.pairs.iter().filter(|p| p.counts()) {
        g.union(p.a, p.b);
    }
    r.groups = g.components();
    for img in r.images.iter_mut() {
        img.group = None;
    }
    for (k, members) in r.groups.iter().enumerate() {
        for &i in members {
            r.images[i].group = Some(k);
        }
    }
    // Direct partners with their best score.
    let mut direct: BTreeMap<usize, Vec<(usize, f64)>> = BTreeMap::new();
    for p in r.pairs.iter().filter(|p| p.counts()) {
        direct.entry(p.a).or_default().push((p.b, p.score()));
        direct.entry(p.b).or_default().push((p.a, p.score()));
    }
    r.leaks.clear();
    let held_out = [
        (Split::Val, Split::Train),
        (Split::Test, Split::Train),
        (Split::Test, Split::Val),
    ];
    let mut counts: BTreeMap<(Split, Split), usize> = BTreeMap::new();
    for i in 0..n {
        let Some(s) = r.images[i].split else { continue };
        for &(h, into) in &held_out {
            if s != h {
                continue;
            }
            let best_direct = direct.get(&i).and_then(|v| {
                v.iter()
                    .filter(|(j, _)| r.images[*j].split == Some(into))
                    .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
                    .copied()
            });
            let leak = match best_direct {
                Some((j, score)) => Some((j, true, score)),
                None => r.images[i].group.and_then(|gk| {
                    r.groups[gk]
                        .iter()
                        .find(|&&j| r.images[j].split == Some(into))
                        .map(|&j| (j, false, 0.0))
                }),
            };
            if let Some((other, is_direct, score)) = leak {
                *counts.entry((h, into)).or_default() += 1;
                r.leaks.push(Leak {
                    image: i,
                    split: h,
                    into,
                    other,
                    direct: is_direct,
                    score,
                });
            }
        }
    }
    r.leakage = held_out
        .iter()
        .filter_map(|&(h, into)| {
            let of = r.images.iter().filter(|im| im.split == Some(h)).count();
            let has_into = r.images.iter().any(|im| im.split == Some(into));
            (of > 0 && has_into).then(|| {
                let leaked = counts.get(&(h, into)).copied().unwrap_or(0);
                Leakage {
                    split: h,
                    into,
                    leaked,
                    of,
                    share: leaked as f64 / of as f64,
                }
            })
        })
        .collect();
    r.conflicts = r
        .pairs
        .iter()
        .enumerate()
        .filter(|(_, p)| p.counts())
        .filter_map(|(k, p)| {
            let (la, lb) = (&r.images[p.a].label, &r.images[p.b].label);
            match (la, lb) {
                (Some(x), Some(y)) if x != y => Some(Conflict {
                    pair: k,
                    label_a: x.clone(),
                    label_b: y.clone(),
                }),
                _ => None,
            }
        })
        .collect();
}

#[cfg(test)]
pub mod tests_support {
    use super::*;

    pub fn img(path: &str, split: Split, label: &str) -> Image {
        Image {
            path: path.into(),
            split: Some(split),
            label: Some(label.into()),
            group: None,
            patient: None,
        }
    }

    pub fn near(a: usize, b: usize) -> Pair {
        Pair {
            a,
            b,
            kind: PairKind::Near,
            similarity: Some(0.9),
            phash_distance: 3,
            verification: None,
            decision: None,
        }
    }

    pub fn empty_report(images: Vec<Image>, pairs: Vec<Pair>) -> Report {
        Report {
            root: "/d".into(),
            images,
            pairs,
            ..Report::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::img;
    use super::*;

    fn pair(a: usize, b: usize, kind: PairKind) -> Pair {
        Pair {
            kind,
            ..tests_support::near(a, b)
        }
    }

    #[test]
    fn groups_leaks_and_conflicts() {
        let images = vec![
            img("train/f/a", Split::Train, "f"), // 0
            img("val/f/b", Split::Val, "f"),     // 1 copy of 0
            img("test/n/c", Split::Test, "n"),   // 2 copy of 1 (so of 0, through the group)
            img("test/f/d", Split::Test, "f"),   // 3 alone
            img("train/n/e", Split::Train, "n"), // 4 dismissed pair with 3
            img("test/f/g", Split::Test, "f"),   // 5 possible pair with 4, not counted
        ];
        let mut dismissed = pair(3, 4, PairKind::Near);
        dismissed.decision = Some(Decision::Dismissed);
        let pairs = vec![
            pair(0, 1, PairKind::Near),
            pair(1, 2, PairKind::ExactBytes),
            dismissed,
            pair(4, 5, PairKind::Possible),
        ];
        let mut r = tests_support::empty_report(images, pairs);
        analyse(&mut r);
        assert_eq!(r.groups, vec![vec![0, 1, 2]]);
        let leaks: Vec<(usize, Split, usize, bool)> = r
            .leaks
            .iter()
            .map(|l| (l.image, l.into, l.other, l.direct))
            .collect();
        assert_eq!(
            leaks,
            vec![
                (1, Split::Train, 0, true),
                (2, Split::Train, 0, false),
                (2, Split::Val, 1, true)
            ]
        );
        let share = |h, into| {
            r.leakage
                .iter()
                .find(|l| l.split == h && l.into == into)
                .unwrap()
                .share
        };
        assert_eq!(share(Split::Val, Split::Train), 1.0);
        assert!((share(Split::Test, Split::Train) - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(r.conflicts.len(), 1, "the exact pair 1-2 carries f and n");
        assert_eq!(r.conflicts[0].pair, 1);
        let f = r.findings();
        let kinds: Vec<&str> = f.iter().map(|x| x.kind).collect();
        assert_eq!(
            kinds,
            [
                "near_duplicate",
                "exact_duplicate",
                "leak",
                "leak",
                "label_conflict"
            ]
        );
        assert_eq!(f[2].path, "val/f/b");
        assert_eq!(f[2].other, "train/f/a");
    }
}
