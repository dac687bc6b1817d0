//! Review marks (reviewed, flagged) kept in a sidecar file, `.osteoai/review.json` under the
//! reviewed folder, keyed by path relative to it; written atomically on every change.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::journal::SIDECAR;

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Mark {
    #[serde(default)]
    pub reviewed: bool,
    #[serde(default)]
    pub flagged: bool,
}

pub struct Marks {
    root: PathBuf,
    marks: BTreeMap<String, Mark>,
    /// Why the saved marks could not be read, when they could not.
    pub damaged: Option<String>,
    /// A damaged file that could not be set aside is never written over.
    readonly: bool,
}

impl Marks {
    /// Reads `DIR/.osteoai/review.json`. A damaged file is never overwritten: it is set aside as
    /// `review.json.damaged-<time>` and `damaged` says so; the marks start afresh.
    pub fn open(root: &Path) -> Marks {
        let path = root.join(SIDECAR).join("review.json");
        let mut damaged = None;
        let marks = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(m) => m,
                Err(e) => {
                    let stamp = crate::timefmt::now_rfc3339().replace(':', "");
                    let aside = path.with_file_name(format!("review.json.damaged-{stamp}"));
                    let kept = std::fs::rename(&path, &aside).is_ok();
                    let msg = format!(
                        "{} could not be read ({e}); {}",
                        path.display(),
                        if kept {
                            format!("kept as {} and the marks start afresh", aside.display())
                        } else {
                            "it could not be set aside; marks will not be saved".to_string()
                        }
                    );
                    tracing::warn!("{msg}");
                    damaged = Some((msg, kept));
                    BTreeMap::new()
                }
            },
            Err(_) => BTreeMap::new(),
        };
        Marks {
            root: root.to_path_buf(),
            readonly: damaged.as_ref().is_some_and(|(_, kept)| !kept),
            damaged: damaged.map(|(m, _)| m),
            marks,
        }
    }

    fn key(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .to_string_lossy()
            .into_owned()
    }

    pub fn get(&self, path: &Path) -> Mark {
        self.marks.get(&self.key(path)).copied().unwrap_or_default()
    }

    pub fn set(&mut self, path: &Path, mark: Mark) -> crate::error::Result<()> {
        use crate::error::Kind;

        self.set_msg(path, mark).kind(crate::error::Error::Io)
    }

    fn set_msg(&mut self, path: &Path, mark: Mark) -> Result<(), String> {
        let k = self.key(path);
        if mark == Mark::default() {
            self.marks.remove(&k);
        } else {
            self.marks.insert(k, mark);
        }
        self.save()
    }

    /// Keeps a file's mark when it moves (relabel, undo).
    pub fn rename(&mut self, from: &Path, to: &Path) -> crate::error::Result<()> {
        use crate::error::Kind;
        self.rename_msg(from, to).kind(crate::error::Error::Io)
    }

    fn rename_msg(&mut self, from: &Path, to: &Path) -> Result<(), String> {
        if let Some(m) = self.marks.remove(&self.key(from)) {
            self.marks.insert(self.key(to), m);
        }
        self.save()
    }

    fn save(&self) -> Result<(), String> {
        if self.readonly {
            return Err(self.damaged.clone().unwrap_or_default());
        }
        let dir = self.root.join(SIDECAR);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let text = serde_json::to_string_pretty(&self.marks).map_err(|e| e.to_string())?;
        crate::train::atomic_write(&dir.join("review.json"), text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persist_and_follow_renames() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        let a = r.join("fracture/a.jpg");
        let mut m = Marks::open(r);
        m.set(
            &a,
            Mark {
                reviewed: true,
                flagged: false,
            },
        )
        .unwrap();
        let m2 = Marks::open(r);
        assert!(m2.get(&a).reviewed);
        let mut m2 = m2;
        let b = r.join("nofracture/a.jpg");
        m2.rename(&a, &b).unwrap();
        let m3 = Marks::open(r);
        assert_eq!(m3.get(&a), Mark::default());
        assert!(m3.get(&b).reviewed);
    }

    #[test]
    fn a_damaged_file_is_set_aside_never_overwritten() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::create_dir_all(r.join(SIDECAR)).unwrap();
        std::fs::write(r.join(SIDECAR).join("review.json"), b"{\"a.jpg\": {\"revie").unwrap();
        let mut m = Marks::open(r);
        assert!(
            m.damaged.as_deref().unwrap().contains("kept as"),
            "{:?}",
            m.damaged
        );
        m.set(
            &r.join("b.jpg"),
            Mark {
                reviewed: true,
                flagged: false,
            },
        )
        .unwrap();
        let aside: Vec<_> = std::fs::read_dir(r.join(SIDECAR))
            .unwrap()
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("review.json.damaged-")
            })
            .collect();
        assert_eq!(aside.len(), 1);
        assert_eq!(
            std::fs::read(aside[0].path()).unwrap(),
            b"{\"a.jpg\": {\"revie"
        );
        assert!(Marks::open(r).get(&r.join("b.jpg")).reviewed);
    }
}
