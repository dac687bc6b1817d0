//! Relabelling files without losing data: a relabel moves a file into the sibling folder of
//! another class by a rename that never overwrites, and is recorded in an append-only journal
//! (`.osteoai/journal.jsonl` under the reviewed folder) so that it can be undone, also after a
//! restart. Write-ahead: an `intent` line is written and synced before each move, the move is
//! one atomic no-clobber rename (Linux `renameat2(RENAME_NOREPLACE)`; elsewhere a hard link then
//! unlink), and a commit line follows. A process killed at any point (even `kill -9`) leaves an
//! intent that the next `Journal::open` settles from what is on disk: finished moves are
//! committed, unfinished ones rolled back (a stray second link removed), so no file is lost or
//! doubled and every completed move stays undoable.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::labels::ClassSpec;

mod moves;
use moves::{free_name, same_file};
pub use moves::{rename_no_clobber, target_folder};

pub const SIDECAR: &str = ".osteoai";
const JOURNAL: &str = "journal.jsonl";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Record {
    /// A move about to be made (`undoes`: the relabel it reverses).
    Intent {
        seq: u64,
        from: PathBuf,
        to: PathBuf,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        undoes: Option<u64>,
        time: String,
    },
    /// A file moved from one class folder to another (commits the intent `seq`).
    Move {
        seq: u64,
        from: PathBuf,
        to: PathBuf,
        time: String,
    },
    /// The move `seq` was reversed (by the intent `by`, when journalled with one).
    Undo {
        seq: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<u64>,
        time: String,
    },
    /// The intent `seq` did not happen (the move failed, or recovery rolled it back).
    Abort { seq: u64, time: String },
}

impl Record {
    /// The line that commits the intent `seq`: a move, or the undo of the move `undoes`.
    fn commit(seq: u64, from: &Path, to: &Path, undoes: Option<u64>) -> Record {
        match undoes {
            Some(m) => Record::Undo {
                seq: m,
                by: Some(seq),
                time: now(),
            },
            None => Record::Move {
                seq,
                from: from.to_path_buf(),
                to: to.to_path_buf(),
                time: now(),
            },
        }
    }

    fn seqs(&self) -> [Option<u64>; 2] {
        match self {
            Record::Intent { seq, .. } | Record::Move { seq, .. } | Record::Abort { seq, .. } => {
                [Some(*seq), None]
            }
            Record::Undo { seq, by, .. } => [Some(*seq), *by],
        }
    }
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
    /// What opening settled (moves interrupted by a crash), one sentence each.
    pub recovered: Vec<String>,
}

fn now() -> String {
    crate::timefmt::now_rfc3339()
}

impl Journal {
    /// Opens (or starts) the journal of the folder `root`, settling any move a crash left
    /// unfinished. Unreadable lines are skipped (a crash may leave a partial last line).
    pub fn open(root: &Path) -> crate::error::Result<Journal> {
        use crate::error::Kind;
        Self::open_msg(root).kind(crate::error::Error::Io)
    }

    fn open_msg(root: &Path) -> Result<Journal, String> {
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
        let mut j = Journal {
            path,
            records,
            recovered: Vec::new(),
        };
        j.recover()?;
        Ok(j)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Intents with no commit and no abort.
    fn unsettled(&self) -> Vec<(u64, PathBuf, PathBuf, Option<u64>)> {
        let mut settled = std::collections::HashSet::new();
        for r in &self.records {
            match r {
                Record::Move { seq, .. } | Record::Abort { seq, .. } => {
                    settled.insert(*seq);
                }
                Record::Undo { by: Some(by), .. } => {
                    settled.insert(*by);
                }
                _ => {}
            }
        }
        self.records
            .iter()
            .filter_map(|r| match r {
                Record::Intent {
                    seq,
                    from,
                    to,
                    undoes,
                    ..
                } if !settled.contains(seq) => Some((*seq, from.clone(), to.clone(), *undoes)),
                _ => None,
            })
            .collect()
    }

    /// Settles each unfinished move from what is on disk.
    fn recover(&mut self) -> Result<(), String> {
        for (seq, from, to, undoes) in self.unsettled() {
            let exists = |p: &Path| std::fs::symlink_metadata(p).is_ok();
            let (f, t) = (exists(&from), exists(&to));
            let (record, said) = if !f && t {
                (
                    Record::commit(seq, &from, &to, undoes),
                    "finished before the interruption; recorded",
                )
            } else if f && t && same_file(&from, &to) {
                // Interrupted between the link and the unlink: the new name goes.
                std::fs::remove_file(&to).map_err(|e| {
                    format!(
                        "an interrupted move left {} twice ({}) and the second name cannot be removed: {e}",
                        from.display(),
                        to.display()
                    )
                })?;
                (
                    Record::Abort { seq, time: now() },
                    "was half done (two names); rolled back",
                )
            } else if f {
                (
                    Record::Abort { seq, time: now() },
                    "had not started; dropped",
                )
            } else {
                (
                    Record::Abort { seq, time: now() },
                    "cannot be settled: neither name exists any more",
                )
            };
            self.append(record).map_err(|e| {
                format!(
                    "an interrupted move ({} → {}) cannot be settled: {e}",
                    from.display(),
                    to.display()
                )
            })?;
            tracing::warn!(from = %from.display(), to = %to.display(), "journal: interrupted move {said}");
            self.recovered
                .push(format!("move {} → {} {said}", from.display(), to.display()));
        }
        Ok(())
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
            .flat_map(|r| r.seqs())
            .flatten()
            .max()
            .map_or(1, |s| s + 1)
    }

    /// The journalled move: intent, one atomic no-clobber rename, commit. On failure after the
    /// rename, the file is put back and the intent aborted.
    fn journalled_move(
        &mut self,
        from: &Path,
        to: &Path,
        undoes: Option<u64>,
    ) -> Result<u64, String> {
        let seq = self.next_seq();
        self.append(Record::Intent {
            seq,
            from: from.to_path_buf(),
            to: to.to_path_buf(),
            undoes,
            time: now(),
        })?;
        if let Err(e) = rename_no_clobber(from, to) {
            tracing::warn!(from = %from.display(), to = %to.display(), error = %e, "move refused");
            let _ = self.append(Record::Abort { seq, time: now() });
            return Err(e);
        }
        if let Err(e) = self.append(Record::commit(seq, from, to, undoes)) {
            // Not committed means not undoable: put the file back.
            if rename_no_clobber(to, from).is_ok() {
                let _ = self.append(Record::Abort { seq, time: now() });
            }
            tracing::error!(from = %from.display(), to = %to.display(), error = %e, "move not journalled; put back");
            return Err(e);
        }
        tracing::info!(
            seq,
            from = %from.display(),
            to = %to.display(),
            undoes = ?undoes,
            "{}",
            if undoes.is_some() { "undo" } else { "relabel" }
        );
        Ok(seq)
    }

    /// Moves `file` from its class folder into the sibling folder of class `target` (created if
    /// needed), never overwriting: a clash gets a ` (relabelled N)` suffix. Journalled.
    pub fn relabel(
        &mut self,
        root: &Path,
        classes: &ClassSpec,
        file: &Path,
        target: usize,
    ) -> crate::error::Result<Move> {
        use crate::error::Kind;
        self.relabel_msg(root, classes, file, target)
            .kind(crate::error::Error::Io)
    }

    fn relabel_msg(
        &mut self,
        root: &Path,
        classes: &ClassSpec,
        file: &Path,
        target: usize,
    ) -> Result<Move, String> {
        if !file.is_file() {
            return Err(format!("{} is not a file", file.display()));
        }
        let to_dir = target_folder(root, classes, file, target)?;
        std::fs::create_dir_all(&to_dir)
            .map_err(|e| format!("cannot create {}: {e}", to_dir.display()))?;
        let name = file
            .file_name()
            .ok_or_else(|| format!("{} has no file name", file.display()))?;
        let to = free_name(&to_dir.join(name))?;
        let seq = self.journalled_move(file, &to, None)?;
        Ok(Move {
            seq,
            from: file.to_path_buf(),
            to,
        })
    }

    /// Reverses the most recent move not yet undone. `None` when there is nothing to undo.
    pub fn undo_last(&mut self) -> crate::error::Result<Option<Move>> {
        use crate::error::Kind;
        self.undo_last_msg().kind(crate::error::Error::Io)
    }

    fn undo_last_msg(&mut self) -> Result<Option<Move>, String> {
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
        self.journalled_move(&m.to, &m.from, Some(m.seq))?;
        Ok(Some(m))
    }
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
        // Intent and commit for the move, and again for the undo.
        let text = std::fs::read_to_string(j2.path()).unwrap();
        let ops: Vec<String> = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["op"].to_string())
            .collect();
        assert_eq!(ops, ["\"intent\"", "\"move\"", "\"intent\"", "\"undo\""]);
    }

    /// The journal as a crash leaves it: an intent for `from` → `to`, nothing after.
    fn crashed(r: &Path, from: &Path, to: &Path, undoes: Option<u64>) {
        let mut j = Journal::open(r).unwrap();
        let seq = j.next_seq();
        j.append(Record::Intent {
            seq,
            from: from.to_path_buf(),
            to: to.to_path_buf(),
            undoes,
            time: now(),
        })
        .unwrap();
    }

    #[test]
    fn a_crash_at_any_step_of_a_move_is_settled_on_the_next_open() {
        let c = ClassSpec::fracture_default();
        // 1. Killed after the intent, before the rename: dropped, the file stays.
        let (_t, r) = setup();
        let a = r.join("test/fracture/a.jpg");
        let to = r.join("test/Normal/a (relabelled 1).jpg");
        crashed(&r, &a, &to, None);
        let j = Journal::open(&r).unwrap();
        assert!(
            j.recovered[0].contains("had not started"),
            "{:?}",
            j.recovered
        );
        assert!(a.exists() && !to.exists() && j.undoable().is_empty());

        // 2. Killed between the hard link and the unlink (the fallback path): one name left.
        let (_t, r) = setup();
        let a = r.join("test/fracture/a.jpg");
        std::fs::hard_link(&a, to_of(&r)).unwrap();
        crashed(&r, &a, &to_of(&r), None);
        let j = Journal::open(&r).unwrap();
        assert!(j.recovered[0].contains("rolled back"), "{:?}", j.recovered);
        assert!(a.exists() && !to_of(&r).exists());

        // 3. Killed after the rename, before the commit: recorded, and undoable.
        let (_t, r) = setup();
        let a = r.join("test/fracture/a.jpg");
        std::fs::rename(&a, to_of(&r)).unwrap();
        crashed(&r, &a, &to_of(&r), None);
        let mut j = Journal::open(&r).unwrap();
        assert!(j.recovered[0].contains("recorded"), "{:?}", j.recovered);
        assert_eq!(j.undoable().len(), 1);
        j.undo_last().unwrap().unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), b"A");

        // 4. An undo killed after its rename: the undo counts, nothing is left to undo.
        let (_t, r) = setup();
        let a = r.join("test/fracture/a.jpg");
        let mut j = Journal::open(&r).unwrap();
        let m = j.relabel(&r, &c, &a, 1).unwrap();
        std::fs::rename(&m.to, &a).unwrap();
        crashed(&r, &m.to, &a, Some(m.seq));
        let j = Journal::open(&r).unwrap();
        assert!(j.recovered[0].contains("recorded"), "{:?}", j.recovered);
        assert!(j.undoable().is_empty());
        // Settled once: a second open has nothing to say.
        assert!(Journal::open(&r).unwrap().recovered.is_empty());
    }

    fn to_of(r: &Path) -> PathBuf {
        r.join("test/Normal/a (relabelled 1).jpg")
    }

    /// Makes `dirs` unwritable: permission bits, or (as root, whom they do not bind) the
    /// immutable attribute. Returns false when neither takes effect here.
    fn read_only(dirs: &[PathBuf], on: bool) -> bool {
        use std::os::unix::fs::PermissionsExt;
        let mode = if on { 0o555 } else { 0o755 };
        for d in dirs {
            if !on {
                let _ = std::process::Command::new("chattr")
                    .args(["-i"])
                    .arg(d)
                    .status();
            }
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(mode)).unwrap();
            if on && std::fs::write(d.join(".probe"), b"").is_ok() {
                let _ = std::fs::remove_file(d.join(".probe"));
                let ok = std::process::Command::new("chattr")
                    .args(["+i"])
                    .arg(d)
                    .status()
                    .is_ok_and(|s| s.success());
                if !ok {
                    return false;
                }
            }
        }
        true
    }

    #[test]
    fn a_read_only_folder_refuses_the_relabel_and_changes_nothing() {
        let (_t, r) = setup();
        let c = ClassSpec::fracture_default();
        let dirs = [r.join("test/fracture"), r.join("test/Normal")];
        if !read_only(&dirs, true) {
            read_only(&dirs, false);
            eprintln!("SKIPPED: cannot make a folder read-only here (root without chattr +i)");
            return;
        }
        let mut j = Journal::open(&r).unwrap();
        let result = j.relabel(&r, &c, &r.join("test/fracture/a.jpg"), 1);
        read_only(&dirs, false);
        let e = result.unwrap_err();
        assert!(
            matches!(e, crate::error::Error::Io(_)),
            "an I/O error: {e:?}"
        );
        let e = e.to_string();
        assert!(e.contains("cannot move") && e.contains("a.jpg"), "{e}");
        assert_eq!(std::fs::read(r.join("test/fracture/a.jpg")).unwrap(), b"A");
        assert!(j.undoable().is_empty());
        assert!(Journal::open(&r).unwrap().recovered.is_empty());
    }

    #[test]
    fn undo_refuses_to_overwrite() {
        let (_t, r) = setup();
        let c = ClassSpec::fracture_default();
        let mut j = Journal::open(&r).unwrap();
        j.relabel(&r, &c, &r.join("test/fracture/a.jpg"), 1)
            .unwrap();
        std::fs::write(r.join("test/fracture/a.jpg"), b"new").unwrap();
        assert!(
            j.undo_last()
                .unwrap_err()
                .to_string()
                .contains("not overwriting")
        );
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
