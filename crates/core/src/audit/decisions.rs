//! A person's verdicts on audit pairs, kept in `DIR/.osteoai/audit.json`: a confirmed pair is
//! a copy whatever the verification said, a dismissed pair is not. `audit` and `split` read
//! them; the dashboard writes them. Paths are stored relative to DIR, so the decisions follow
//! the folder when it moves; every write replaces the file atomically.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::journal::SIDECAR;

pub const FILE: &str = "audit.json";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Confirmed,
    Dismissed,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Stored {
    a: String,
    b: String,
    decision: Decision,
    at: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct FileFormat {
    version: u32,
    pairs: Vec<Stored>,
}

/// The decisions of one folder.
#[derive(Clone, Debug, Default)]
pub struct Decisions {
    root: PathBuf,
    map: BTreeMap<(String, String), (Decision, String)>,
}

fn key(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.to_string(), b.to_string())
    } else {
        (b.to_string(), a.to_string())
    }
}

impl Decisions {
    /// Reads `root/.osteoai/audit.json`; a missing file is no decisions, a damaged one an error
    /// (never silently replaced).
    pub fn open(root: &Path) -> crate::error::Result<Decisions> {
        use crate::error::Kind;
        Self::open_msg(root).kind(crate::error::Error::Io)
    }

    fn open_msg(root: &Path) -> Result<Decisions, String> {
        let path = root.join(SIDECAR).join(FILE);
        let mut d = Decisions {
            root: root.to_path_buf(),
            map: BTreeMap::new(),
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let f: FileFormat = serde_json::from_str(&text)
                    .map_err(|e| format!("{} is damaged: {e}", path.display()))?;
                for s in f.pairs {
                    d.map.insert(key(&s.a, &s.b), (s.decision, s.at));
                }
                Ok(d)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(d),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    fn rel(&self, p: &Path) -> String {
        p.strip_prefix(&self.root)
            .unwrap_or(p)
            .to_string_lossy()
            .into_owned()
    }

    pub fn get(&self, a: &Path, b: &Path) -> Option<Decision> {
        self.map.get(&key(&self.rel(a), &self.rel(b))).map(|v| v.0)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Every decision as (path a, path b, decision), paths under the root.
    pub fn all(&self) -> Vec<(PathBuf, PathBuf, Decision)> {
        self.map
            .iter()
            .map(|((a, b), (d, _))| (self.root.join(a), self.root.join(b), *d))
            .collect()
    }

    /// Records (or with `None` forgets) a decision and saves the file atomically.
    pub fn set(&mut self, a: &Path, b: &Path, d: Option<Decision>) -> crate::error::Result<()> {
        use crate::error::Kind;
        self.set_msg(a, b, d).kind(crate::error::Error::Io)
    }

    fn set_msg(&mut self, a: &Path, b: &Path, d: Option<Decision>) -> Result<(), String> {
        let k = key(&self.rel(a), &self.rel(b));
        let before = self.map.clone();
        match d {
            Some(d) => {
                self.map.insert(k, (d, crate::timefmt::now_rfc3339()));
            }
            None => {
                self.map.remove(&k);
            }
        }
        let r = self.save();
        if r.is_err() {
            self.map = before;
        }
        r
    }

    fn save(&self) -> Result<(), String> {
        let dir = self.root.join(SIDECAR);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let f = FileFormat {
            version: 1,
            pairs: self
                .map
                .iter()
                .map(|((a, b), (d, at))| Stored {
                    a: a.clone(),
                    b: b.clone(),
                    decision: *d,
                    at: at.clone(),
                })
                .collect(),
        };
        let text = serde_json::to_string_pretty(&f).map_err(|e| e.to_string())? + "\n";
        crate::train::atomic_write(&dir.join(FILE), text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_persist_in_either_order_and_damage_is_an_error() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        let (a, b) = (r.join("train/x.jpg"), r.join("test/y.jpg"));
        let mut d = Decisions::open(r).unwrap();
        assert!(d.is_empty());
        d.set(&a, &b, Some(Decision::Dismissed)).unwrap();
        let d2 = Decisions::open(r).unwrap();
        assert_eq!(d2.get(&b, &a), Some(Decision::Dismissed));
        assert_eq!(d2.all().len(), 1);
        let mut d3 = d2.clone();
        d3.set(&b, &a, None).unwrap();
        assert_eq!(Decisions::open(r).unwrap().get(&a, &b), None);
        std::fs::write(r.join(SIDECAR).join(FILE), "{ not json").unwrap();
        assert!(
            Decisions::open(r)
                .unwrap_err()
                .to_string()
                .contains("damaged")
        );
    }
}
