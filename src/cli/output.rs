//! Writing results as aligned tables, CSV or JSON lines, to stdout or atomically to a file.

use std::io::Write;
use std::path::Path;

pub use osteoai_core::text::csv_field;

/// An aligned table (comfy-table, no borders): columns two spaces apart; a column whose cells
/// are all numbers (empty and "-" aside) is right-aligned, header too. Never wrapped to the
/// terminal's width: rows stay one line each for `grep` and `awk`.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    use comfy_table::{
        Cell, CellAlignment, ContentArrangement, ContentLineStyle, Table, TableStyle,
    };
    let cols = header.len();
    let is_num = |s: &str| s.parse::<f64>().is_ok();
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
    // No borders; one space drawn where the vertical lines would be, plus one of padding.
    let gap = ContentLineStyle::none().junction(' ');
    let mut t = Table::new();
    t.load_style(TableStyle::new().header_lines(gap).content_lines(gap))
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.iter().map(Cell::new));
    for r in rows {
        t.add_row(r.iter().take(cols).map(Cell::new));
    }
    let last = cols.saturating_sub(1);
    for (i, col) in t.column_iter_mut().enumerate() {
        col.set_padding((0, if i < last { 1 } else { 0 }));
        if right.get(i).copied().unwrap_or(false) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
    let mut out = String::new();
    for line in t.lines() {
        out.push_str(line.trim_end());
        out.push('\n');
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
        Some(p) => osteoai_core::train::atomic_write(p, text.as_bytes()),
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
        // Wider than any terminal: never wrapped.
        let wide = "x".repeat(300);
        let t = table(&["a", "b"], &[vec![wide.clone(), "1".into()]]);
        assert_eq!(t.lines().count(), 2);
        assert!(t.lines().nth(1).unwrap().starts_with(&wide));
    }
}
