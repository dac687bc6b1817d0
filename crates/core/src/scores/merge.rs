//! Merging the parts of a sharded run: every image of the scan must have exactly one row
//! across the parts. Missing images are reported with the shard that owns them, so a shard
//! that never ran (or was cut short) is named; duplicates and rows for images that are no
//! longer there are reported too. Parts written by different models are refused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::matching::Matcher;
use super::{ScoreFile, ScoreRow};
use crate::shard::{Shard, shard_of};

/// What merging found.
#[derive(Debug, Default)]
pub struct Merged {
    /// One row per image of the scan, in scan order (`None`: missing).
    pub rows: Vec<Option<ScoreRow>>,
    /// Images with rows in more than one place: (image, the files holding it).
    pub duplicates: Vec<(usize, Vec<PathBuf>)>,
    /// Rows that name no image of the scan: (file, row path).
    pub unknown: Vec<(PathBuf, String)>,
    /// Missing images per shard that owns them (by the parts' shard count).
    pub missing_by_shard: BTreeMap<usize, usize>,
    /// The shard count the parts were written for.
    pub shards: Option<usize>,
    /// Shards no part was given for.
    pub absent_shards: Vec<Shard>,
    /// Parts whose run did not finish: (file, rows, images of its shard).
    pub incomplete: Vec<(PathBuf, usize, usize)>,
}

impl Merged {
    pub fn missing(&self) -> usize {
        self.rows.iter().filter(|r| r.is_none()).count()
    }

    /// True when every image has exactly one row.
    pub fn exact(&self) -> bool {
        self.missing() == 0 && self.duplicates.is_empty()
    }
}

/// The parts must agree on the model, its classes and the shard count.
pub fn check_consistent(parts: &[ScoreFile]) -> Result<(), String> {
    let metas: Vec<(&Path, &super::Meta)> = parts
        .iter()
        .filter_map(|p| p.meta.as_ref().map(|m| (p.path.as_path(), m)))
        .collect();
    if let Some((first, m0)) = metas.first() {
        for (f, m) in &metas[1..] {
            if m.model_fingerprint != m0.model_fingerprint {
                return Err(format!(
                    "{} was scored by model {} ({}) but {} by {} ({}): parts of one run must \
                     use one model",
                    f.display(),
                    m.model,
                    m.model_fingerprint,
                    first.display(),
                    m0.model,
                    m0.model_fingerprint
                ));
            }
            let (n, n0) = (m.shard.map(|s| s.count), m0.shard.map(|s| s.count));
            if n != n0 {
                let show =
                    |n: Option<usize>| n.map_or("unsharded".to_string(), |n| format!("{n} shards"));
                return Err(format!(
                    "{} is one of {} but {} one of {}",
                    f.display(),
                    show(n),
                    first.display(),
                    show(n0)
                ));
            }
        }
    }
    let positives: Vec<&str> = parts.iter().filter_map(|p| p.positive()).collect();
    if positives.windows(2).any(|w| w[0] != w[1]) {
        return Err(format!(
            "the parts score different positive classes: {}",
            positives.join(", ")
        ));
    }
    Ok(())
}

/// Merges `parts` against the scan (`rels[i]`: image `i` relative to its scanned folder).
pub fn merge(parts: &[ScoreFile], rels: &[PathBuf]) -> Merged {
    let matcher = Matcher::new(rels.iter().map(|p| p.as_path()));
    let mut out = Merged {
        rows: vec![None; rels.len()],
        ..Default::default()
    };
    let mut holders: Vec<Vec<PathBuf>> = vec![Vec::new(); rels.len()];
    for part in parts {
        for row in &part.rows {
            match matcher.find(&row.path) {
                Some(i) => {
                    holders[i].push(part.path.clone());
                    if out.rows[i].is_none() {
                        out.rows[i] = Some(row.clone());
                    }
                }
                None => out.unknown.push((part.path.clone(), row.path.clone())),
            }
        }
    }
    out.duplicates = holders
        .into_iter()
        .enumerate()
        .filter(|(_, h)| h.len() > 1)
        .collect();
    out.shards = parts
        .iter()
        .find_map(|p| p.meta.as_ref().and_then(|m| m.shard.map(|s| s.count)));
    if let Some(n) = out.shards {
        for (i, r) in out.rows.iter().enumerate() {
            if r.is_none() {
                *out.missing_by_shard
                    .entry(shard_of(&rels[i], n))
                    .or_default() += 1;
            }
        }
        let given: Vec<usize> = parts
            .iter()
            .filter_map(|p| p.meta.as_ref().and_then(|m| m.shard.map(|s| s.index)))
            .collect();
        out.absent_shards = (0..n)
            .filter(|i| !given.contains(i))
            .map(|index| Shard { index, count: n })
            .collect();
    }
    out.incomplete = parts
        .iter()
        .filter_map(|p| {
            let m = p.meta.as_ref()?;
            (!m.complete).then(|| (p.path.clone(), p.rows.len(), m.images))
        })
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scores::{Format, Meta};

    fn part(name: &str, shard: Option<Shard>, paths: &[&str], complete: bool) -> ScoreFile {
        ScoreFile {
            path: PathBuf::from(name),
            rows: paths
                .iter()
                .map(|p| ScoreRow {
                    path: format!("/mnt/data/{p}"),
                    p: Some(0.5),
                    ..Default::default()
                })
                .collect(),
            positive: Some("fracture".into()),
            meta: Some(Meta {
                osteoai: "t".into(),
                roots: vec![],
                shard,
                images: paths.len() + usize::from(!complete),
                rows: paths.len(),
                complete,
                model: "m".into(),
                model_fingerprint: "1".into(),
                classes: crate::labels::ClassSpec::fracture_default(),
                threshold: 0.5,
                format: Format::Jsonl,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn names_the_missing_shard_and_duplicates() {
        let rels: Vec<PathBuf> = (0..40)
            .map(|i| PathBuf::from(format!("c/{i}.jpg")))
            .collect();
        let n = 3;
        let of = |s: usize| -> Vec<String> {
            rels.iter()
                .filter(|r| shard_of(r, n) == s)
                .map(|r| r.display().to_string())
                .collect()
        };
        let (a, b) = (of(0), of(1));
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let mut b: Vec<&str> = b.iter().map(String::as_str).collect();
        b.push(a[0]); // one image twice
        b.push("c/gone.jpg");
        let parts = vec![
            part("p0.jsonl", Some(Shard { index: 0, count: n }), &a, true),
            part("p1.jsonl", Some(Shard { index: 1, count: n }), &b, false),
        ];
        check_consistent(&parts).unwrap();
        let m = merge(&parts, &rels);
        assert_eq!(m.absent_shards, vec![Shard { index: 2, count: n }]);
        assert_eq!(m.missing(), of(2).len());
        assert_eq!(
            m.missing_by_shard.keys().copied().collect::<Vec<_>>(),
            vec![2]
        );
        assert_eq!(m.duplicates.len(), 1);
        assert_eq!(
            m.unknown,
            vec![(PathBuf::from("p1.jsonl"), "/mnt/data/c/gone.jpg".into())]
        );
        assert_eq!(m.incomplete.len(), 1);
        assert!(!m.exact());
    }

    #[test]
    fn refuses_parts_of_two_models() {
        let mut b = part("b", Some(Shard { index: 1, count: 2 }), &[], true);
        b.meta.as_mut().unwrap().model_fingerprint = "2".into();
        let parts = vec![part("a", Some(Shard { index: 0, count: 2 }), &[], true), b];
        assert!(check_consistent(&parts).unwrap_err().contains("one model"));
    }
}
