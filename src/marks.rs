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
}

impl Marks {
    pub fn open(root: &Path) -> Marks {
        let marks = std::fs::read_to_string(root.join(SIDECAR).join("review.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        Marks {
            root: root.to_path_buf(),
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

    pub fn set(&mut self, path: &Path, mark: Mark) -> Result<(), String> {
        let k = self.key(path);
        if mark == Mark::default() {
            self.marks.remove(&k);
        } else {
            self.marks.insert(k, mark);
        }
        self.save()
    }

    /// Keeps a file's mark when it moves (relabel, undo).
    pub fn rename(&mut self, from: &Path, to: &Path) -> Result<(), String> {
        if let Some(m) = self.marks.remove(&self.key(from)) {
            self.marks.insert(self.key(to), m);
        }
        self.save()
    }

    fn save(&self) -> Result<(), String> {
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
}
