//! Score files: what `classify` writes (CSV or JSON lines, one row per image), read back by
//! `merge`, `eval --scores` and the dashboard's `--scores`, so that scores computed on a
//! cluster can be checked and reviewed anywhere without a model.
//!
//! Beside each file written with `--output`, a small sidecar `<file>.meta.json` says what the
//! rows are: the scanned folders, the shard, the model (name and fingerprint), its classes and
//! threshold, and whether the run completed. The rows themselves stay plain CSV / JSON lines.

mod format;
pub mod input;
pub mod matching;
pub mod merge;
pub mod parquet;
pub mod run;
pub mod writer;

pub use format::{Format, csv_header, csv_row, jsonl_line};

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::shard::Shard;

/// One image's outcome, as written.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScoreRow {
    pub path: String,
    pub split: Option<String>,
    pub label: Option<String>,
    /// P(positive).
    pub p: Option<f64>,
    pub predicted: Option<String>,
    pub error: Option<String>,
    /// Every class's probability (class order), written for more than two classes.
    pub probs: Option<Vec<f64>>,
}

/// The sidecar of a score file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// osteoai's version that wrote it.
    pub osteoai: String,
    /// The folders (or files) scanned, absolute.
    pub roots: Vec<PathBuf>,
    pub shard: Option<Shard>,
    /// Images this run had to score (its shard of the scan).
    pub images: usize,
    /// Rows in the file when the sidecar was last written.
    pub rows: usize,
    /// True once every image of `images` has a row.
    pub complete: bool,
    pub model: String,
    pub model_fingerprint: String,
    /// The model's classes (names, positive class, folder-name aliases).
    pub classes: crate::labels::ClassSpec,
    pub threshold: f64,
    pub format: Format,
}

/// The sidecar's path for a score file.
pub fn meta_path(file: &Path) -> PathBuf {
    let mut s = file.as_os_str().to_os_string();
    s.push(".meta.json");
    PathBuf::from(s)
}

impl Meta {
    pub fn read(file: &Path) -> Result<Option<Meta>, String> {
        let p = meta_path(file);
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| format!("{}: not an osteoai score sidecar ({e})", p.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", p.display())),
        }
    }

    /// Writes the sidecar atomically (temporary file, then rename).
    pub fn write(&self, file: &Path) -> Result<(), String> {
        let text = serde_json::to_string_pretty(self).map_err(|e| e.to_string())? + "\n";
        crate::train::atomic_write(&meta_path(file), text.as_bytes())
    }
}

/// A score file read back.
#[derive(Clone, Debug, Default)]
pub struct ScoreFile {
    pub path: PathBuf,
    pub rows: Vec<ScoreRow>,
    /// The positive class, from the `p_<class>` column.
    pub positive: Option<String>,
    /// The class names of the per-class columns (more than two classes).
    pub classes: Vec<String>,
    pub meta: Option<Meta>,
    /// A last line without its newline (a write cut short) was left out.
    pub torn_tail: bool,
}

impl ScoreFile {
    /// Reads a CSV, JSON-lines or Parquet score file (by extension, else by its first bytes)
    /// and its sidecar when there is one.
    pub fn read(path: &Path) -> Result<ScoreFile, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut f =
            if Format::of_path(path) == Some(Format::Parquet) || parquet::is_parquet(&bytes) {
                parquet::read(path)
            } else {
                let text = String::from_utf8_lossy(&bytes);
                let format = Format::of_path(path).unwrap_or_else(|| Format::sniff(&text));
                format::parse(&text, format)
            }
            .map_err(|e| format!("{}: {e}", path.display()))?;
        f.path = path.to_path_buf();
        f.meta = Meta::read(path)?;
        Ok(f)
    }

    /// The positive class: the sidecar's, else the `p_<class>` column's.
    pub fn positive(&self) -> Option<&str> {
        self.meta
            .as_ref()
            .map(|m| m.classes.positive.as_str())
            .or(self.positive.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_round_trip_and_absent() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("s.jsonl");
        assert_eq!(Meta::read(&f).unwrap(), None);
        let m = Meta {
            osteoai: "0.1.0".into(),
            roots: vec![dir.path().to_path_buf()],
            shard: Some(Shard::new(1, 4).unwrap()),
            images: 10,
            rows: 3,
            complete: false,
            model: "m".into(),
            model_fingerprint: "00ff".into(),
            classes: crate::labels::ClassSpec::fracture_default(),
            threshold: 0.4,
            format: Format::Jsonl,
        };
        m.write(&f).unwrap();
        assert_eq!(Meta::read(&f).unwrap(), Some(m));
        std::fs::write(meta_path(&f), "{").unwrap();
        assert!(Meta::read(&f).unwrap_err().contains("sidecar"));
    }
}
