//! Relabelling files without losing data: a relabel moves a file into the sibling folder of
//! another class by a rename that never overwrites, and is recorded in an append-only journal
//! (`.osteoai/journal.jsonl` under the reviewed folder) so that it can be undone, also after a
//! restart. Each line is flushed and synced before the next step.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::labels::ClassSpec;

pub const SIDECAR: &str = ".osteoai";
const JOURNAL: &str = "journal.jsonl";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Record {
    /// A file moved from one class folder to another.
    Move {
        seq: u64,
        from: PathBuf,
        to: PathBuf,
        time: String,
    },
    /// The move `seq` was reversed.
    Undo { seq: u64, time: String },
}

/// One completed move, as it can be undone.
#[derive(Clone, Debug, PartialEq)]
pub struct Move {
    pub seq: u64,
    pub from: PathBuf,
    pub to: PathBuf,
}

pub struct Journal {
    path: PathBuf,
    records: Vec<Record>,
}

impl Journal {
    /// Opens (or starts) the journal of the folder `root`. Unreadable lines are skipped
    /// (a crash may leave a partial last line).
    pub fn open(root: &Path) -> Result<Journal, String> {
        let dir = root.join(SIDECAR);
        let path = dir.join(JOURNAL);
        let records = match std::fs::read_to_string(&path) {
            Ok(text) => text
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        Ok(Journal { path, records })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn append(&mut self, r: Record) -> Result<(), String> {
        let dir = self.path.parent().expect("journal in a folder");
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| format!("cannot open {}: {e}", self.path.display()))?;
        let line = serde_json::to_string(&r).map_err(|e| e.to_string())? + "\n";
        f.write_all(line.as_bytes())
            .and_then(|_| f.sync_data())
            .map_err(|e| format!("cannot write {}: {e}", self.path.display()))?;
        self.records.push(r);
        Ok(())
    }

    /// Moves not yet undone, most recent last.
    pub fn undoable(&self) -> Vec<Move> {
        let undone: std::collections::HashSet<u64> = self
            .records
            .iter()
            .filter_map(|r| {
                if let Record::Undo { seq, .. } = r {
                    Some(*seq)
                } else {
                    None
                }
            })
            .collect();
        self.records
            .iter()
            .filter_map(|r| match r {
                Record::Move { seq, from, to, .. } if !undone.contains(seq) => Some(Move {
                    seq: *seq,
                    from: from.clone(),
                    to: to.clone(),
                }),
                _ => None,
            })
            .collect()
    }

    fn next_seq(&self) -> u64 {
        self.records
            .iter()
            .map(|r| match r {
                Record::Move { seq, .. } | Record::Undo { seq, .. } => *seq,
            })
            .max()
            .map_or(1, |s| s + 1)
    }

    /// Moves `file` from its class folder into the sibling folder of class `target` (created if
    /// needed), never overwriting: a clash gets a ` (relabelled N)` suffix. Journalled.
    pub fn relabel(
        &mut self,
        root: &Path,
        classes: &ClassSpec,
        file: &Path,
        target: usize,
    ) -> Result<Move, String> {
        let to_dir = target_folder(root, classes, file, target)?;
        std::fs::create_dir_all(&to_dir)
            .map_err(|e| format!("cannot create {}: {e}", to_dir.display()))?;
        let name = file
            .file_name()
            .ok_or_else(|| format!("{} has no file name", file.display()))?;
        let to = move_no_clobber(file, &to_dir.join(name))?;
        let seq = self.next_seq();
        let m = Move {
            seq,
            from: file.to_path_buf(),
            to,
        };
        if let Err(e) = self.append(Record::Move {
            seq,
            from: m.from.clone(),
            to: m.to.clone(),
            time: crate::timefmt::now_rfc3339(),
        }) {
            // Not journalled means not undoable: put the file back.
            let _ = std::fs::rename(&m.to, &m.from);
            return Err(e);
        }
        Ok(m)
    }

    /// Reverses the most recent move not yet undone. `None` when there is nothing to undo.
    pub fn undo_last(&mut self) -> Result<Option<Move>, String> {
        let Some(m) = self.undoable().pop() else {
            return Ok(None);
        };
        if !m.to.exists() {
            return Err(format!(
                "cannot undo: {} is no longer there",
                m.to.display()
            ));
        }
        if m.from.exists() {
            return Err(format!(
                "cannot undo: {} exists again; not overwriting it",
                m.from.display()
            ));
        }
        if let Some(dir) = m.from.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let back = move_no_clobber(&m.to, &m.from)?;
        debug_assert_eq!(back, m.from);
        self.append(Record::Undo {
            seq: m.seq,
            time: crate::timefmt::now_rfc3339(),
        })?;
        Ok(Some(m))
    }
}

/// The folder of class `target` beside the class folder that labels `file`; without a labelled
/// ancestor, a class folder beside the file.
pub fn target_folder(
    root: &Path,
    classes: &ClassSpec,
    file: &Path,
    target: usize,
) -> Result<PathBuf, String> {
    let target_name = classes
        .names
        .get(target)
        .ok_or_else(|| format!("no class {target}"))?;
    let mut dir = file.parent();
    while let Some(d) = dir {
        if let Some(name) = d.file_name().and_then(|n| n.to_str())
            && classes.class_of_folder(name).is_some()
        {
            let parent = d.parent().unwrap_or(Path::new(""));
            // Reuse an existing sibling folder that names the target class (e.g. `Normal/`).
            if let Ok(rd) = std::fs::read_dir(parent) {
                for e in rd.flatten() {
                    if e.path().is_dir()
                        && e.file_name()
                            .to_str()
                            .and_then(|n| classes.class_of_folder(n))
                            == Some(target)
                    {
                        return Ok(e.path());
                    }
                }
            }
            return Ok(parent.join(target_name));
        }
        if d == root {
            break;
        }
        dir = d.parent();
    }
    Ok(file.parent().unwrap_or(root).join(target_name))
}

/// Renames `from` to `to`, or to `stem (relabelled N).ext` when `to` exists. A hard link is made
/// first (it fails rather than replace an existing name), then the old name removed; where hard
/// links are not possible, a checked rename.
pub fn move_no_clobber(from: &Path, to: &Path) -> Result<PathBuf, String> {
    if !from.is_file() {
        return Err(format!("{} is not a file", from.display()));
    }
    for n in 0..1000 {
        let candidate = if n == 0 {
            to.to_path_buf()
        } else {
            numbered(to, n)
        };
        match std::fs::hard_link(from, &candidate) {
            Ok(()) => {
                if let Err(e) = std::fs::remove_file(from) {
                    let _ = std::fs::remove_file(&candidate);
                    return Err(format!(
                        "cannot remove {} after linking: {e}",
                        from.display()
                    ));
                }
                return Ok(candidate);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(_) => {
                if candidate.exists() {
                    continue;
                }
                std::fs::rename(from, &candidate).map_err(|e| {
                    format!(
                        "cannot move {} to {}: {e}",
                        from.display(),
                        candidate.display()
                    )
                })?;
                return Ok(candidate);
            }
        }
    }
    Err(format!(
        "no free name for {} after 1000 tries",
        to.display()
    ))
}

fn numbered(p: &Path, n: usize) -> PathBuf {
    let stem = p
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match p.extension() {
        Some(ext) => format!("{stem} (relabelled {n}).{}", ext.to_string_lossy()),
        None => format!("{stem} (relabelled {n})"),
    };
    p.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let r = t.path().to_path_buf();
        std::fs::create_dir_all(r.join("test/fracture")).unwrap();
        std::fs::create_dir_all(r.join("test/Normal")).unwrap();
        std::fs::write(r.join("test/fracture/a.jpg"), b"A").unwrap();
        std::fs::write(r.join("test/Normal/a.jpg"), b"other A").unwrap();
        (t, r)
    }

    #[test]
    fn relabel_moves_into_the_existing_alias_folder_without_overwriting_and_undo_restores() {
        let (_t, r) = setup();
        let c = ClassSpec::fracture_default();
        let mut j = Journal::open(&r).unwrap();
        let m = j
            .relabel(&r, &c, &r.join("test/fracture/a.jpg"), 1)
            .unwrap();
        assert_eq!(m.to, r.join("test/Normal/a (relabelled 1).jpg"));
        assert_eq!(std::fs::read(&m.to).unwrap(), b"A");
        assert_eq!(
            std::fs::read(r.join("test/Normal/a.jpg")).unwrap(),
            b"other A"
        );
        assert!(!r.join("test/fracture/a.jpg").exists());
        // A new session sees the journal and undoes.
        let mut j2 = Journal::open(&r).unwrap();
        assert_eq!(j2.undoable().len(), 1);
        let u = j2.undo_last().unwrap().unwrap();
        assert_eq!(u.seq, m.seq);
        assert_eq!(std::fs::read(r.join("test/fracture/a.jpg")).unwrap(), b"A");
        assert!(!m.to.exists());
        assert_eq!(j2.undo_last().unwrap(), None);
        let text = std::fs::read_to_string(j2.path()).unwrap();
        assert_eq!(text.lines().count(), 2);
    }

    #[test]
    fn undo_refuses_to_overwrite() {
        let (_t, r) = setup();
        let c = ClassSpec::fracture_default();
        let mut j = Journal::open(&r).unwrap();
        j.relabel(&r, &c, &r.join("test/fracture/a.jpg"), 1)
            .unwrap();
        std::fs::write(r.join("test/fracture/a.jpg"), b"new").unwrap();
        assert!(j.undo_last().unwrap_err().contains("not overwriting"));
        assert_eq!(
            std::fs::read(r.join("test/fracture/a.jpg")).unwrap(),
            b"new"
        );
    }

    #[test]
    fn creates_the_class_folder_when_missing() {
        let (_t, r) = setup();
        std::fs::create_dir_all(r.join("val/nofracture")).unwrap();
        std::fs::write(r.join("val/nofracture/b.png"), b"B").unwrap();
        let c = ClassSpec::fracture_default();
        let mut j = Journal::open(&r).unwrap();
        let m = j
            .relabel(&r, &c, &r.join("val/nofracture/b.png"), 0)
            .unwrap();
        assert_eq!(m.to, r.join("val/fracture/b.png"));
    }
}
