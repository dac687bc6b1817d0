//! Writing results as aligned tables, CSV or JSON lines, to stdout or atomically to a file.

use std::io::Write;
use std::path::Path;

pub use osteoai::text::csv_field;

/// Left-aligned columns separated by two spaces; numeric-looking cells right-aligned.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let cols = header.len();
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(cols) {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let is_num = |s: &str| s.parse::<f64>().is_ok();
    // A column is right-aligned (header too) when all its non-empty, non-dash cells are numbers.
    let right: Vec<bool> = (0..cols)
        .map(|i| {
            let mut cells = rows
                .iter()
                .filter_map(|r| r.get(i))
                .filter(|c| !c.is_empty() && c.as_str() != "-")
                .peekable();
            cells.peek().is_some() && cells.all(|c| is_num(c))
        })
        .collect();
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = width[i].saturating_sub(c.chars().count());
            if i > 0 {
                l.push_str("  ");
            }
            if right[i] {
                l.push_str(&" ".repeat(pad));
                l.push_str(c);
            } else {
                l.push_str(c);
                if i + 1 < cells.len() {
                    l.push_str(&" ".repeat(pad));
                }
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header.to_vec(), &mut out);
    for r in rows {
        line(r.iter().map(String::as_str).collect(), &mut out);
    }
    out
}

/// Writes to `path` atomically (temporary file, then rename), or to stdout when `None`.
pub fn emit(path: Option<&Path>, text: &str) -> Result<(), String> {
    match path {
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .map_err(|e| format!("cannot write to stdout: {e}"))
        }
        Some(p) => osteoai::train::atomic_write(p, text.as_bytes()),
    }
}

pub fn opt(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.4}")).unwrap_or_else(|| "-".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns() {
        let t = table(
            &["name", "p"],
            &[
                vec!["a".into(), "0.5".into()],
                vec!["long name".into(), "0.25".into()],
            ],
        );
        assert_eq!(t, "name          p\na           0.5\nlong name  0.25\n");
    }
}
