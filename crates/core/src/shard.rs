//! Sharding a scan across processes: shard `I/N` (0-based) takes the images whose path relative
//! to the scanned folder hashes to `I` modulo `N`. The hash is SHA-256 of the relative path with
//! `/` separators, so the partition depends neither on scan order nor on which other shards run,
//! and every image lands in exactly one shard for a given `N`.
//!
//! Schedulers name the shard through their environment: Slurm job arrays
//! (`SLURM_ARRAY_TASK_ID`, `SLURM_ARRAY_TASK_MIN`, `SLURM_ARRAY_TASK_STEP`,
//! `SLURM_ARRAY_TASK_COUNT`) and Kubernetes Indexed Jobs (`JOB_COMPLETION_INDEX`, with the count
//! given as `--shards N` since Kubernetes does not export it).

use std::path::{Path, PathBuf};

use crate::labels::ClassSpec;
use crate::scan::{Entry, ScanIssue, scan};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;
    /// `I/N`, with `0 <= I < N`.
    fn from_str(s: &str) -> Result<Shard, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("shard {s:?}: expected I/N, e.g. 0/4 (I counts from 0)"))?;
        let index: usize = i
            .trim()
            .parse()
            .map_err(|_| format!("shard {s:?}: {i:?} is not a number"))?;
        let count: usize = n
            .trim()
            .parse()
            .map_err(|_| format!("shard {s:?}: {n:?} is not a number"))?;
        Shard::new(index, count)
    }
}

impl Shard {
    pub fn new(index: usize, count: usize) -> Result<Shard, String> {
        if count == 0 {
            return Err("the shard count must be at least 1".into());
        }
        if index >= count {
            return Err(format!(
                "shard {index}/{count}: the index counts from 0 and must be below {count}"
            ));
        }
        Ok(Shard { index, count })
    }

    /// Whether the image at `rel` (relative to its scanned folder) belongs to this shard.
    pub fn owns(&self, rel: &Path) -> bool {
        shard_of(rel, self.count) == self.index
    }
}

/// The key an image is sharded by: its path relative to the scanned folder, `/`-separated.
pub fn key_of(rel: &Path) -> String {
    let parts: Vec<String> = rel
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    parts.join("/")
}

/// The shard (of `count`) that owns `rel`.
pub fn shard_of(rel: &Path, count: usize) -> usize {
    let digest = Sha256::digest(key_of(rel).as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % count.max(1) as u64) as usize
}

/// `path` relative to the folder it was found under (a file given by itself: its name).
pub fn relative_to<'a>(path: &'a Path, root: &Path) -> &'a Path {
    match path.strip_prefix(root) {
        Ok(r) if !r.as_os_str().is_empty() => r,
        _ => path.file_name().map(Path::new).unwrap_or(path),
    }
}

/// Where the shard came from, for the message that tells the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub shard: Shard,
    pub source: &'static str,
}

/// The shard for this process: `--shard I/N` first; else `--shards N` with the index from
/// `JOB_COMPLETION_INDEX` (Kubernetes) or the Slurm array task; else a Slurm array by itself.
/// `env` is the process environment (a function so that tests do not touch the real one).
pub fn resolve(
    explicit: Option<Shard>,
    shards: Option<usize>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Resolved>, String> {
    if let Some(s) = explicit {
        if shards.is_some_and(|n| n != s.count) {
            return Err(format!(
                "--shard {s} and --shards {} disagree",
                shards.unwrap_or(0)
            ));
        }
        return Ok(Some(Resolved {
            shard: s,
            source: "--shard",
        }));
    }
    let num = |name: &str| -> Result<Option<usize>, String> {
        match env(name).filter(|v| !v.trim().is_empty()) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| format!("{name}={v:?} is not a whole number")),
        }
    };
    let slurm_index = || -> Result<Option<usize>, String> {
        let Some(id) = num("SLURM_ARRAY_TASK_ID")? else {
            return Ok(None);
        };
        let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
        let step = num("SLURM_ARRAY_TASK_STEP")?.unwrap_or(1).max(1);
        if id < min || (id - min) % step != 0 {
            return Err(format!(
                "SLURM_ARRAY_TASK_ID={id} is not on the array's grid (min {min}, step {step})"
            ));
        }
        Ok(Some((id - min) / step))
    };
    // The shard `index` of `count`, said to come from `source`.
    let found = |index: usize, count: usize, source: &'static str| {
        Shard::new(index, count)
            .map(|shard| Some(Resolved { shard, source }))
            .map_err(|e| format!("{source} (shard {index} of {count}): {e}"))
    };
    if let Some(n) = shards {
        if let Some(i) = num("JOB_COMPLETION_INDEX")? {
            return found(i, n, "JOB_COMPLETION_INDEX");
        }
        if let Some(i) = slurm_index()? {
            return found(i, n, "SLURM_ARRAY_TASK_ID");
        }
        return Err(format!(
            "--shards {n} needs the shard index: --shard I/{n}, JOB_COMPLETION_INDEX \
             (Kubernetes Indexed Job) or SLURM_ARRAY_TASK_ID (Slurm job array)"
        ));
    }
    if let (Some(i), Some(n)) = (slurm_index()?, num("SLURM_ARRAY_TASK_COUNT")?) {
        return found(i, n, "SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT");
    }
    Ok(None)
}

/// The process environment, for [`resolve`].
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The images a run covers: each root scanned, then this shard's share.
pub struct Scope {
    pub entries: Vec<Entry>,
    /// Each entry's path relative to the root it was found under.
    pub rels: Vec<PathBuf>,
    /// The roots, absolute.
    pub roots: Vec<PathBuf>,
    pub issues: Vec<ScanIssue>,
    /// Images scanned before sharding.
    pub scanned: usize,
}

pub fn scope(
    paths: &[PathBuf],
    classes: &ClassSpec,
    shard: Option<Shard>,
) -> Result<Scope, String> {
    let mut s = Scope {
        entries: Vec::new(),
        rels: Vec::new(),
        roots: Vec::new(),
        issues: Vec::new(),
        scanned: 0,
    };
    for root in paths {
        let r = scan(root, classes);
        s.scanned += r.entries.len();
        for e in r.entries {
            let rel = relative_to(&e.path, root).to_path_buf();
            if shard.is_none_or(|sh| sh.owns(&rel)) {
                s.entries.push(e);
                s.rels.push(rel);
            }
        }
        s.issues.extend(r.issues);
        s.roots
            .push(std::path::absolute(root).unwrap_or_else(|_| root.clone()));
    }
    if s.scanned == 0 && s.issues.len() == paths.len() && !paths.is_empty() {
        let first = &s.issues[0];
        return Err(format!("{}: {}", first.path.display(), first.message));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::path::PathBuf;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn every_path_in_exactly_one_shard_and_roughly_even() {
        let paths: Vec<PathBuf> = (0..4000)
            .map(|i| PathBuf::from(format!("train/c{}/img_{i:05}.jpg", i % 3)))
            .collect();
        for n in [1, 2, 3, 4, 7] {
            let mut sizes = vec![0usize; n];
            for p in &paths {
                let owners: Vec<usize> = (0..n)
                    .filter(|&i| Shard::new(i, n).unwrap().owns(p))
                    .collect();
                assert_eq!(owners.len(), 1, "{} owned by {owners:?}", p.display());
                sizes[owners[0]] += 1;
            }
            let even = paths.len() / n;
            for s in sizes {
                assert!(s.abs_diff(even) < even / 5 + 20, "n={n}: {s} vs {even}");
            }
        }
    }

    #[test]
    fn key_ignores_separators_and_leading_dots() {
        assert_eq!(key_of(Path::new("./a/b.jpg")), "a/b.jpg");
        assert_eq!(
            shard_of(Path::new("a/b.jpg"), 5),
            shard_of(Path::new("./a//b.jpg"), 5)
        );
        // A known value, so that a change of hash (which would reshuffle every running
        // cluster job's shards) cannot pass unnoticed.
        assert_eq!(shard_of(Path::new("test/fracture/x.jpg"), 1_000_003), {
            let d = Sha256::digest(b"test/fracture/x.jpg");
            (u64::from_be_bytes(d[..8].try_into().unwrap()) % 1_000_003) as usize
        });
    }

    #[test]
    fn relative_paths() {
        let root = Path::new("/data/set");
        assert_eq!(
            relative_to(Path::new("/data/set/val/a.png"), root),
            Path::new("val/a.png")
        );
        assert_eq!(
            relative_to(Path::new("/data/set"), root),
            Path::new("set"),
            "a file given by itself is keyed by its name"
        );
    }

    #[test]
    fn parse_and_validate() {
        assert_eq!(
            "2/4".parse::<Shard>().unwrap(),
            Shard { index: 2, count: 4 }
        );
        assert!("4/4".parse::<Shard>().unwrap_err().contains("below 4"));
        assert!("1/0".parse::<Shard>().is_err());
        assert!("x/2".parse::<Shard>().is_err());
        assert!("3".parse::<Shard>().unwrap_err().contains("I/N"));
    }

    #[test]
    fn resolve_from_schedulers() {
        let none = env_of(&[]);
        assert_eq!(resolve(None, None, &none).unwrap(), None);
        let s = resolve(Some(Shard::new(1, 3).unwrap()), None, &none).unwrap();
        assert_eq!(s.unwrap().shard, Shard::new(1, 3).unwrap());
        assert!(resolve(Some(Shard::new(1, 3).unwrap()), Some(4), &none).is_err());
        // Kubernetes: the index from the environment, the count from --shards.
        let k8s = env_of(&[("JOB_COMPLETION_INDEX", "3")]);
        let r = resolve(None, Some(4), &k8s).unwrap().unwrap();
        assert_eq!(
            (r.shard, r.source),
            (Shard::new(3, 4).unwrap(), "JOB_COMPLETION_INDEX")
        );
        assert!(resolve(None, Some(3), &k8s).is_err(), "index 3 of 3");
        assert!(
            resolve(None, Some(3), &none)
                .unwrap_err()
                .contains("--shard I/3")
        );
        // Slurm: --array=1-4 gives ids 1..4, min 1; --array=0-6:2 steps by 2.
        let slurm = env_of(&[
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]);
        let r = resolve(None, None, &slurm).unwrap().unwrap();
        assert_eq!(r.shard, Shard::new(2, 4).unwrap());
        let stepped = env_of(&[
            ("SLURM_ARRAY_TASK_ID", "6"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
            ("SLURM_ARRAY_TASK_STEP", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]);
        assert_eq!(
            resolve(None, None, &stepped).unwrap().unwrap().shard,
            Shard::new(3, 4).unwrap()
        );
        let off_grid = env_of(&[
            ("SLURM_ARRAY_TASK_ID", "5"),
            ("SLURM_ARRAY_TASK_STEP", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]);
        assert!(resolve(None, None, &off_grid).is_err());
        // --shards with a Slurm array overrides the array's own count.
        let r = resolve(None, Some(8), &slurm).unwrap().unwrap();
        assert_eq!(r.shard, Shard::new(2, 8).unwrap());
        let bad = env_of(&[("JOB_COMPLETION_INDEX", "x")]);
        assert!(
            resolve(None, Some(2), &bad)
                .unwrap_err()
                .contains("whole number")
        );
    }
}
