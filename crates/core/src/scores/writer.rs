//! Writing a score file as the run goes: each batch's rows are appended with one write and
//! flushed to disk (`fdatasync`) before the next batch, so a run stopped at any moment leaves
//! every finished row on disk. A write cut short leaves at most a last line without its
//! newline; `resume` cuts it off and carries on after the rows already there.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::ScoreRow;
use super::format::{self, Format, csv_header, csv_row, jsonl_line};

pub struct ScoreWriter {
    path: PathBuf,
    file: File,
    format: Format,
    positive: String,
    /// Per-class columns (more than two classes), else empty.
    extra: Vec<String>,
    /// Rows in the file.
    pub rows: usize,
}

/// A writer opened on an existing file.
pub struct Resumed {
    pub writer: ScoreWriter,
    /// Paths already in the file (skip them).
    pub done: HashSet<String>,
    /// Bytes of a torn last line that were cut off.
    pub cut: usize,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> String + '_ {
    move |e| format!("{}: {e}", path.display())
}

impl ScoreWriter {
    /// A new file (an existing one is replaced), header written.
    pub fn create(
        path: &Path,
        format: Format,
        positive: &str,
        extra: &[String],
    ) -> Result<ScoreWriter, String> {
        if format == Format::Parquet {
            return Err(format!(
                "{}: Parquet is written whole, not row by row; write .jsonl or .csv and merge \
                 into .parquet",
                path.display()
            ));
        }
        let file = File::create(path).map_err(io(path))?;
        let mut w = ScoreWriter {
            path: path.to_path_buf(),
            file,
            format,
            positive: positive.to_string(),
            extra: extra.to_vec(),
            rows: 0,
        };
        if format == Format::Csv {
            w.write(csv_header(positive, extra).as_bytes())?;
        }
        Ok(w)
    }

    /// Opens `path` to add to it: rows already there are kept (their paths returned), a torn
    /// last line is cut off. A file written with other columns is refused.
    pub fn resume(
        path: &Path,
        format: Format,
        positive: &str,
        extra: &[String],
    ) -> Result<Resumed, String> {
        if format == Format::Parquet {
            return Err(format!(
                "{}: --resume needs a .jsonl or .csv output (Parquet cannot be appended to)",
                path.display()
            ));
        }
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Resumed {
                    writer: ScoreWriter::create(path, format, positive, extra)?,
                    done: HashSet::new(),
                    cut: 0,
                });
            }
            Err(e) => return Err(io(path)(e)),
        };
        if bytes.is_empty() {
            return Ok(Resumed {
                writer: ScoreWriter::create(path, format, positive, extra)?,
                done: HashSet::new(),
                cut: 0,
            });
        }
        let text = String::from_utf8_lossy(&bytes);
        let keep = text.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let parsed = format::parse(&text, format).map_err(|e| {
            format!(
                "{}: cannot resume, not a score file of this format ({e})",
                path.display()
            )
        })?;
        let header = csv_header(positive, extra);
        let same_columns = match format {
            Format::Csv => text.starts_with(&header),
            _ => parsed.positive.as_deref().is_none_or(|p| p == positive),
        };
        if !same_columns {
            return Err(format!(
                "{}: cannot resume, it was written with other columns (another model?); \
                 write to a new file or remove it",
                path.display()
            ));
        }
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(io(path))?;
        file.set_len(keep as u64).map_err(io(path))?;
        drop(file);
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(io(path))?;
        let mut writer = ScoreWriter {
            path: path.to_path_buf(),
            file,
            format,
            positive: positive.to_string(),
            extra: extra.to_vec(),
            rows: parsed.rows.len(),
        };
        if format == Format::Csv && keep == 0 {
            writer.write(header.as_bytes())?;
        }
        Ok(Resumed {
            writer,
            done: parsed.rows.into_iter().map(|r| r.path).collect(),
            cut: bytes.len() - keep,
        })
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.file.write_all(bytes).map_err(io(&self.path))?;
        self.file.sync_data().map_err(io(&self.path))
    }

    /// Appends rows with one write, then flushes them to disk.
    pub fn append(&mut self, rows: &[ScoreRow]) -> Result<(), String> {
        if rows.is_empty() {
            return Ok(());
        }
        let s = render(self.format, &self.positive, &self.extra, rows, false);
        self.write(s.as_bytes())?;
        self.rows += rows.len();
        Ok(())
    }

    /// Rewrites the finished file with its rows in the order `rank` gives (rows it does not
    /// know last, in file order), atomically, so that a complete output does not depend on
    /// the order batches or resumed runs finished in.
    pub fn finish_sorted(self, rank: impl Fn(&str) -> Option<usize>) -> Result<(), String> {
        drop(self.file);
        let text = std::fs::read_to_string(&self.path).map_err(io(&self.path))?;
        let mut rows = format::parse(&text, self.format)
            .map_err(|e| format!("{}: {e}", self.path.display()))?
            .rows;
        rows.sort_by_key(|r| rank(&r.path).unwrap_or(usize::MAX));
        let s = render(self.format, &self.positive, &self.extra, &rows, true);
        crate::train::atomic_write(&self.path, s.as_bytes())
    }
}

/// Writes a whole table at once, atomically.
pub fn write_all(
    path: &Path,
    format: Format,
    positive: &str,
    extra: &[String],
    rows: &[ScoreRow],
) -> Result<(), String> {
    if format == Format::Parquet {
        let bytes = super::parquet::to_bytes(rows, positive, extra)?;
        return crate::train::atomic_write(path, &bytes);
    }
    let s = render(format, positive, extra, rows, true);
    crate::train::atomic_write(path, s.as_bytes())
}

/// Rows as text (CSV or JSON lines), with the CSV header first when `header`.
pub fn render(
    format: Format,
    positive: &str,
    extra: &[String],
    rows: &[ScoreRow],
    header: bool,
) -> String {
    let mut s = match (format, header) {
        (Format::Csv, true) => csv_header(positive, extra),
        _ => String::new(),
    };
    for r in rows {
        match format {
            Format::Csv => s.push_str(&csv_row(r, extra.len())),
            Format::Jsonl | Format::Parquet => {
                s.push_str(&jsonl_line(r, positive, !extra.is_empty()))
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(i: usize) -> ScoreRow {
        ScoreRow {
            path: format!("d/img{i}.jpg"),
            p: Some(i as f64 / 10.0),
            predicted: Some("fracture".into()),
            ..Default::default()
        }
    }

    #[test]
    fn resume_after_a_torn_write_keeps_finished_rows() {
        for format in [Format::Csv, Format::Jsonl] {
            let dir = tempfile::tempdir().unwrap();
            let f = dir.path().join("s.out");
            let mut w = ScoreWriter::create(&f, format, "fracture", &[]).unwrap();
            w.append(&[row(0), row(1)]).unwrap();
            drop(w);
            // A write cut short: half a line.
            let mut raw = OpenOptions::new().append(true).open(&f).unwrap();
            raw.write_all(b"d/img2.jp").unwrap();
            drop(raw);
            let r = ScoreWriter::resume(&f, format, "fracture", &[]).unwrap();
            assert_eq!(r.cut, 9, "{format:?}");
            assert_eq!(r.done.len(), 2);
            assert!(r.done.contains("d/img1.jpg"));
            let mut w = r.writer;
            w.append(&[row(3), row(2)]).unwrap();
            w.finish_sorted(|p| p[5..6].parse().ok()).unwrap();
            let back = format::parse(&std::fs::read_to_string(&f).unwrap(), format).unwrap();
            assert_eq!(back.rows, (0..4).map(row).collect::<Vec<_>>(), "{format:?}");
            assert!(!back.torn_tail);
        }
    }

    #[test]
    fn resume_refuses_other_columns_and_starts_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("s.csv");
        let r = ScoreWriter::resume(&f, Format::Csv, "fracture", &[]).unwrap();
        assert!(r.done.is_empty());
        drop(r);
        assert!(std::fs::read_to_string(&f).unwrap().starts_with("path,"));
        let e = ScoreWriter::resume(&f, Format::Csv, "normal", &[])
            .err()
            .unwrap();
        assert!(e.contains("other columns"), "{e}");
    }
}
