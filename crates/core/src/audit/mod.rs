//! Dataset audit: unreadable files, exact duplicates (bytes, pixels), augmented copies found by
//! candidate search and verified geometrically, leakage across splits, label conflicts, image
//! quality, class balance, and how much the leak inflates a model's metrics. UI-free: the
//! `audit` command and the dashboard's Audit view both call [`audit`].
//!
//! Stages: (1) a signature per file (hashes, perceptual hash, quality statistics, keypoints;
//! cached by file identity); (2) CNN embeddings (the model's features, shared with `classify`
//! and `train` through the feature cache); (3) candidate pairs from identical hashes, close
//! perceptual hashes (as is and mirrored) and the nearest neighbours of the PCA-reduced
//! embeddings; (4) geometric verification of every candidate; (5) groups, leaks, conflicts.

pub mod decisions;
mod folder;
#[cfg(test)]
mod hard_negatives;
pub mod index;
pub mod pair_cache;
pub mod patients;
pub mod precompute;
pub mod quality;
pub mod recorded_split;
pub mod report;
pub mod resplit;
pub mod signature;
pub mod union_find;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rayon::prelude::*;

use crate::cache::DiskCache;
use crate::engine::Backbone;
use crate::labels::{ClassSpec, Split};
use crate::metrics::{Metrics, roc_auc};
use crate::model::head::Head;
use crate::scan::Entry;
use decisions::{Decision, Decisions};
pub use folder::{audit_dir, audit_folder};
use osteoai_vision::verify;
use report::{
    Image, Inflation, Pair, PairKind, Report, SetMetrics, Unreadable, Verification, analyse,
};
use signature::Signature;

/// Knobs of the audit (defaults measured on the reference data; see docs/audit.md).
#[derive(Clone, Debug)]
pub struct AuditParams {
    /// Nearest neighbours per image in the embedding search.
    pub neighbors: usize,
    /// Dimensions kept by PCA before the search.
    pub pca_dim: usize,
    /// Perceptual-hash distance (of 64 bits) that makes a candidate.
    pub phash_distance: u32,
    pub verify: verify::VerifyParams,
    pub quality: quality::QualityParams,
    /// Unverified candidates scoring at least this are kept as "possible" pairs to review.
    pub possible_score: f32,
    /// Keep every examined candidate in the report (`Report::examined`).
    pub keep_examined: bool,
    /// Where patient identities come from (films of one patient kept together).
    pub patients: patients::PatientOptions,
    /// Embed with the classifier's own features (its mirror average: two forwards an image)
    /// even when they are not cached: for callers that need them anyway (`fit`). Otherwise
    /// the classifier's features are used when all are cached, else one forward an image.
    pub classifier_features: bool,
}

impl Default for AuditParams {
    fn default() -> Self {
        AuditParams {
            neighbors: 30,
            pca_dim: 256,
            phash_distance: 8,
            verify: verify::VerifyParams::default(),
            quality: quality::QualityParams::default(),
            possible_score: 0.75,
            keep_examined: false,
            patients: patients::PatientOptions::default(),
            classifier_features: false,
        }
    }
}

/// The stages progress is reported for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Signatures,
    Embeddings,
    Verification,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Signatures => "reading images",
            Stage::Embeddings => "CNN embeddings",
            Stage::Verification => "verifying pairs",
        }
    }
}

/// The model an audit may use: its backbone for embeddings, its head for the inflation figures.
pub struct ModelRef<'a> {
    pub name: String,
    pub backbone: &'a Backbone,
    pub head: Option<&'a Head>,
    pub threshold: f64,
    pub positive: usize,
}

/// What to audit and with what.
pub struct AuditInput<'a> {
    pub root: &'a Path,
    pub entries: &'a [Entry],
    pub scan_issues: Vec<(String, String)>,
    pub classes: &'a ClassSpec,
    pub model: Option<ModelRef<'a>>,
    /// Signature cache (None: compute everything).
    pub signatures: Option<&'a DiskCache>,
    /// Feature cache shared with classify/train.
    pub features: Option<&'a DiskCache>,
    /// Folder of the verification caches (None: verify every pair).
    pub pairs: Option<&'a Path>,
    pub decisions: &'a Decisions,
}

/// What proposed a candidate pair: embedding similarity, perceptual-hash distance, exact kind.
type Signals = (Option<f32>, u32, Option<PairKind>);

/// Runs the audit. `Err` only when cancelled.
pub fn audit(
    input: &AuditInput,
    params: &AuditParams,
    cancel: &AtomicBool,
    progress: &(dyn Fn(Stage, usize, usize) + Sync),
) -> Result<Report, String> {
    let t0 = Instant::now();
    let mut timing = BTreeMap::new();
    let n = input.entries.len();
    let images: Vec<Image> = input
        .entries
        .iter()
        .map(|e| Image::of_entry(e, input.classes))
        .collect();

    // 1. Signatures.
    let done = std::sync::atomic::AtomicUsize::new(0);
    progress(Stage::Signatures, 0, n);
    let sigs: Vec<Option<Result<Signature, String>>> = input
        .entries
        .par_iter()
        .map(|e| {
            if cancel.load(Ordering::Relaxed) {
                return None;
            }
            let s = signature::cached(&e.path, input.signatures);
            let d = done.fetch_add(1, Ordering::Relaxed) + 1;
            if d.is_multiple_of(32) || d == n {
                progress(Stage::Signatures, d, n);
            }
            Some(s)
        })
        .collect();
    if cancel.load(Ordering::Relaxed) {
        return Err("cancelled".into());
    }
    timing.insert("signatures".to_string(), t0.elapsed().as_secs_f64());
    let mut unreadable = Vec::new();
    let mut ok: Vec<usize> = Vec::new();
    for (i, s) in sigs.iter().enumerate() {
        match s {
            Some(Ok(_)) => ok.push(i),
            Some(Err(e)) => unreadable.push(Unreadable {
                image: i,
                reason: e.clone(),
            }),
            None => {}
        }
    }
    let sig = |i: usize| -> &Signature {
        match &sigs[i] {
            Some(Ok(s)) => s,
            _ => unreachable!("only readable images are looked up"),
        }
    };

    // 2. Embeddings (the model's features).
    let t = Instant::now();
    let mut notes = Vec::new();
    let mut features: HashMap<usize, Vec<f32>> = HashMap::new();
    if let Some(m) = &input.model {
        let paths: Vec<_> = ok.iter().map(|&i| input.entries[i].path.clone()).collect();
        let feats = embeddings(
            m.backbone, &paths, input, params, &mut notes, cancel, progress,
        );
        if cancel.load(Ordering::Relaxed) {
            return Err("cancelled".into());
        }
        for (k, f) in feats.into_iter().enumerate() {
            match f {
                Ok(v) => {
                    features.insert(ok[k], v);
                }
                Err(e) => notes.push(format!("no embedding for {}: {e}", images[ok[k]].path)),
            }
        }
    } else {
        notes.push("no model: candidates from perceptual hashes only (augmented copies that are rotated or cropped are missed)".into());
    }
    timing.insert("embeddings".to_string(), t.elapsed().as_secs_f64());

    // 3. Candidates.
    let t = Instant::now();
    let mut cand: BTreeMap<(usize, usize), Signals> = BTreeMap::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_bytes: HashMap<[u8; 16], Vec<usize>> = HashMap::new();
    let mut by_pixels: HashMap<[u8; 16], Vec<usize>> = HashMap::new();
    for &i in &ok {
        by_bytes.entry(sig(i).bytes_hash).or_default().push(i);
        by_pixels.entry(sig(i).pixels_hash).or_default().push(i);
    }
    for (groups, kind) in [
        (&by_bytes, PairKind::ExactBytes),
        (&by_pixels, PairKind::ExactPixels),
    ] {
        for members in groups.values().filter(|m| m.len() > 1) {
            for x in 0..members.len() {
                for y in x + 1..members.len() {
                    let key = (members[x].min(members[y]), members[x].max(members[y]));
                    let e = cand.entry(key).or_insert((None, 0, None));
                    if e.2.is_none() {
                        e.2 = Some(kind);
                        *counts.entry(format!("{kind:?}")).or_default() += 1;
                    }
                }
            }
        }
    }
    let hashes: Vec<(u64, u64)> = ok
        .iter()
        .map(|&i| (sig(i).phash, sig(i).phash_mirrored))
        .collect();
    let close: Vec<(usize, usize, u32)> = (0..ok.len())
        .into_par_iter()
        .flat_map_iter(|x| {
            let hashes = &hashes;
            let ok = &ok;
            (x + 1..ok.len()).filter_map(move |y| {
                let d = (hashes[x].0 ^ hashes[y].0)
                    .count_ones()
                    .min((hashes[x].1 ^ hashes[y].0).count_ones());
                (d <= params.phash_distance).then_some((ok[x], ok[y], d))
            })
        })
        .collect();
    counts.insert("phash".into(), close.len());
    for (a, b, _) in close {
        cand.entry((a, b)).or_insert((None, 0, None));
    }
    // Rows in content order (not scan order): the same pictures give the same neighbours
    // wherever they are stored, so an audit of a re-split finds the pairs the split was made from.
    let mut emb_rows: Vec<usize> = ok
        .iter()
        .copied()
        .filter(|i| features.contains_key(i))
        .collect();
    emb_rows.sort_by_key(|&i| (sig(i).pixels_hash, sig(i).bytes_hash, i));
    let mut reduced: HashMap<usize, usize> = HashMap::new(); // image -> row
    let mut reduced_x: Vec<f32> = Vec::new();
    let mut rdim = 0;
    if emb_rows.len() >= 3 {
        let d = features[&emb_rows[0]].len();
        let x: Vec<f32> = emb_rows
            .iter()
            .flat_map(|i| features[i].iter().copied())
            .collect();
        let red = index::Reducer::fit(&x, emb_rows.len(), d, params.pca_dim);
        reduced_x = red.apply(&x, emb_rows.len());
        rdim = red.out;
        let nb = index::knn(&reduced_x, emb_rows.len(), rdim, params.neighbors);
        let mut knn_pairs = 0;
        for (r, &i) in emb_rows.iter().enumerate() {
            reduced.insert(i, r);
            for (j, _) in nb.of(r) {
                let j = emb_rows[j];
                let key = (i.min(j), i.max(j));
                if !cand.contains_key(&key) {
                    knn_pairs += 1;
                }
                cand.entry(key).or_insert((None, 0, None));
            }
        }
        counts.insert("embedding_neighbours".into(), knn_pairs);
    }
    let sim = |a: usize, b: usize| -> Option<f32> {
        let (ra, rb) = (reduced.get(&a)?, reduced.get(&b)?);
        let (xa, xb) = (
            &reduced_x[ra * rdim..(ra + 1) * rdim],
            &reduced_x[rb * rdim..(rb + 1) * rdim],
        );
        Some(xa.iter().zip(xb).map(|(p, q)| p * q).sum())
    };
    for ((a, b), v) in cand.iter_mut() {
        v.0 = sim(*a, *b);
        let (sa, sb) = (sig(*a), sig(*b));
        v.1 = (sa.phash ^ sb.phash)
            .count_ones()
            .min((sa.phash_mirrored ^ sb.phash).count_ones());
    }
    // Confirmed pairs are examined even when no signal proposed them.
    for (pa, pb, d) in input.decisions.all() {
        if d != Decision::Confirmed {
            continue;
        }
        let find = |p: &Path| input.entries.iter().position(|e| e.path == p);
        if let (Some(a), Some(b)) = (find(&pa), find(&pb))
            && a != b
            && sigs[a].as_ref().is_some_and(|s| s.is_ok())
            && sigs[b].as_ref().is_some_and(|s| s.is_ok())
        {
            cand.entry((a.min(b), a.max(b)))
                .or_insert((sim(a, b), 0, None));
        }
    }
    counts.insert("examined".into(), cand.len());
    timing.insert("candidates".to_string(), t.elapsed().as_secs_f64());

    // 4. Verification.
    let t = Instant::now();
    let list: Vec<((usize, usize), Signals)> = cand.into_iter().collect();
    let done = std::sync::atomic::AtomicUsize::new(0);
    progress(Stage::Verification, 0, list.len());
    let mut cache = pair_cache::PairCache::open(input.pairs, input.root, &params.verify);
    let mut verdicts: Vec<Option<verify::Verdict>> = list
        .iter()
        .map(|((a, b), _)| cache.get(&sig(*a).pixels_hash, &sig(*b).pixels_hash))
        .collect();
    let todo: Vec<usize> = (0..list.len())
        .filter(|&k| verdicts[k].is_none() && list[k].1.2 != Some(PairKind::ExactBytes))
        .collect();
    let total = todo.len();
    let fresh: Vec<Option<verify::Verdict>> = todo
        .par_iter()
        .map(|&k| {
            if cancel.load(Ordering::Relaxed) {
                return None;
            }
            let (a, b) = list[k].0;
            // Verified in content order too (matching is not exactly symmetric).
            let (a, b) = if (sig(a).pixels_hash, sig(a).bytes_hash)
                <= (sig(b).pixels_hash, sig(b).bytes_hash)
            {
                (a, b)
            } else {
                (b, a)
            };
            let v = verify::verify(&sig(a).views, &sig(b).views, &params.verify);
            let d = done.fetch_add(1, Ordering::Relaxed) + 1;
            if d.is_multiple_of(64) || d == total {
                progress(Stage::Verification, d, total);
            }
            Some(v)
        })
        .collect();
    for (&k, v) in todo.iter().zip(fresh) {
        if let Some(v) = v {
            let (a, b) = list[k].0;
            cache.put(&sig(a).pixels_hash, &sig(b).pixels_hash, &v);
            verdicts[k] = Some(v);
        }
    }
    cache.save();
    counts.insert("verified_now".into(), total);
    if cancel.load(Ordering::Relaxed) {
        return Err("cancelled".into());
    }
    timing.insert("verification".to_string(), t.elapsed().as_secs_f64());
    let mut pairs = Vec::new();
    let mut examined = Vec::new();
    for (((a, b), (similarity, phash_distance, exact)), v) in list.into_iter().zip(verdicts) {
        if params.keep_examined {
            examined.push(report::Examined {
                a,
                b,
                similarity,
                phash_distance,
                verification: v.as_ref().map(Verification::from),
            });
        }
        let decision = input
            .decisions
            .get(&input.entries[a].path, &input.entries[b].path);
        let kind = match (exact, &v) {
            (Some(k), _) => k,
            (None, Some(v)) if v.verified => PairKind::Near,
            (None, Some(v)) if v.ncc >= params.possible_score && v.inliers >= 6 => {
                PairKind::Possible
            }
            _ if decision.is_some() => PairKind::Possible,
            _ => continue,
        };
        pairs.push(Pair {
            a,
            b,
            kind,
            similarity,
            phash_distance,
            verification: v.as_ref().map(Verification::from),
            decision,
        });
    }

    // 5. Inflation of the model's metrics by the leak (needs groups first).
    let mut report = Report {
        root: input.root.display().to_string(),
        images,
        scan_issues: input.scan_issues.clone(),
        unreadable,
        pairs,
        quality: quality::flags(
            &ok,
            &ok.iter().map(|&i| sig(i).stats).collect::<Vec<_>>(),
            &params.quality,
        ),
        balance: balance(input.entries, input.classes),
        model: input.model.as_ref().map(|m| m.name.clone()),
        candidates: counts,
        timing,
        notes,
        examined,
        ..Report::default()
    };
    // Patients, before the analysis that counts their leaks.
    let paths: Vec<std::path::PathBuf> = input.entries.iter().map(|e| e.path.clone()).collect();
    let (keys, sources) = patients::keys(input.root, &paths, &params.patients)?;
    patients::assign(&mut report, &keys);
    if !sources.is_empty() {
        let said: Vec<String> = sources
            .iter()
            .map(|(s, n)| format!("{n} from the {s}"))
            .collect();
        report.notes.push(format!(
            "patients known for {} images ({}); identities compared as salted hashes, never shown",
            sources.iter().map(|s| s.1).sum::<usize>(),
            said.join(", ")
        ));
    }
    analyse(&mut report);
    (report.patient_leaks, report.patient_leakage) = patients::patient_leaks(&report);
    if let Some(m) = &input.model
        && let Some(head) = m.head
    {
        report.inflation = Some(inflation(
            &report,
            input.entries,
            &features,
            head,
            m.threshold,
            m.positive,
        ));
    }
    report
        .timing
        .insert("total".to_string(), t0.elapsed().as_secs_f64());
    Ok(report)
}

/// The embeddings (and the inflation figures' features): the classifier's own when all are
/// cached or asked for, else one forward of each image as it is — half the CNN work of the
/// classifier's mirror average, with the same copies found on the reference data (docs/audit.md).
fn embeddings(
    backbone: &Backbone,
    paths: &[std::path::PathBuf],
    input: &AuditInput,
    params: &AuditParams,
    notes: &mut Vec<String>,
    cancel: &AtomicBool,
    progress: &(dyn Fn(Stage, usize, usize) + Sync),
) -> Vec<Result<Vec<f32>, String>> {
    let report = |d, total| progress(Stage::Embeddings, d, total);
    let one = backbone.one_forward();
    if let Some(all) = crate::features::all_cached(backbone, paths, input.features) {
        report(paths.len(), paths.len());
        return all.into_iter().map(Ok).collect();
    }
    match one {
        Some((spec, fingerprint)) if !params.classifier_features => {
            notes.push(
                "embeddings and inflation figures from one forward of each image as it is (the \
                 classifier also averages each image with its mirror; after `osteoai classify` \
                 or `eval` of the folder the audit uses the classifier's own features)"
                    .into(),
            );
            let recipe = (&spec, fingerprint);
            crate::features::cached_features_as(
                backbone,
                recipe,
                paths,
                input.features,
                cancel,
                report,
            )
        }
        _ => crate::features::cached_features(backbone, paths, input.features, cancel, report),
    }
}

fn balance(entries: &[Entry], classes: &ClassSpec) -> BTreeMap<String, BTreeMap<String, usize>> {
    let mut b: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for e in entries {
        let label = e
            .label
            .and_then(|l| classes.names.get(l).cloned())
            .unwrap_or_else(|| "unlabelled".into());
        let split = e
            .split
            .map(|s| s.to_string())
            .unwrap_or_else(|| "none".into());
        *b.entry(split)
            .or_default()
            .entry(label.clone())
            .or_default() += 1;
        *b.entry("all".into()).or_default().entry(label).or_default() += 1;
    }
    b
}

fn set_metrics(y: &[bool], s: &[f64], threshold: f64) -> SetMetrics {
    SetMetrics {
        n: y.len(),
        roc_auc: roc_auc(y, s),
        accuracy: (!y.is_empty())
            .then(|| Metrics::compute(y, s, threshold).accuracy)
            .flatten(),
    }
}

fn inflation(
    r: &Report,
    entries: &[Entry],
    features: &HashMap<usize, Vec<f32>>,
    head: &Head,
    threshold: f64,
    positive: usize,
) -> Vec<Inflation> {
    let mut out = Vec::new();
    for split in [Split::Val, Split::Test] {
        let idx: Vec<usize> = (0..entries.len())
            .filter(|&i| {
                entries[i].split == Some(split)
                    && entries[i].label.is_some()
                    && features.contains_key(&i)
            })
            .collect();
        if idx.is_empty() {
            continue;
        }
        let rows: Vec<f32> = idx
            .iter()
            .flat_map(|i| features[i].iter().copied())
            .collect();
        let Ok(scores) = head.predict(&rows) else {
            continue;
        };
        let leaked: std::collections::HashSet<usize> = r
            .leaks
            .iter()
            .filter(|l| l.split == split && l.into == Split::Train)
            .map(|l| l.image)
            .collect();
        let pick = |f: &dyn Fn(usize) -> bool| {
            let (mut y, mut s) = (Vec::new(), Vec::new());
            for (k, &i) in idx.iter().enumerate() {
                if f(i) {
                    y.push(entries[i].label == Some(positive));
                    s.push(scores[k]);
                }
            }
            set_metrics(&y, &s, threshold)
        };
        out.push(Inflation {
            split,
            all: pick(&|_| true),
            without_leaked: pick(&|i| !leaked.contains(&i)),
            leaked_only: pick(&|i| leaked.contains(&i)),
        });
    }
    out
}
