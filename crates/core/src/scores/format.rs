//! The two row formats, written and read: CSV `path,split,label,p_<positive>,predicted,error`
//! (then `p_<class>` per class when there are more than two) and JSON lines with the same keys
//! (`probabilities` for the per-class list).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{ScoreFile, ScoreRow};
use crate::text::{csv_field, csv_line};

#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Jsonl,
    /// Written whole, never appended (see `scores::parquet`).
    Parquet,
}

impl Format {
    /// By extension: `.csv`, `.jsonl`/`.ndjson`/`.json`, `.parquet`.
    pub fn of_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(Format::Csv),
            "jsonl" | "ndjson" | "json" => Some(Format::Jsonl),
            "parquet" | "pq" => Some(Format::Parquet),
            _ => None,
        }
    }

    /// JSON lines when the text starts with `{`, else CSV.
    pub fn sniff(text: &str) -> Format {
        if text.trim_start().starts_with('{') {
            Format::Jsonl
        } else {
            Format::Csv
        }
    }
}

fn num(p: Option<f64>) -> String {
    p.map(|p| format!("{p:.6}")).unwrap_or_default()
}

/// The CSV header (with its line break); `extra` are the per-class columns (empty for two).
pub fn csv_header(positive: &str, extra: &[String]) -> String {
    let mut cols: Vec<String> = ["path", "split", "label"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    cols.push(format!("p_{positive}"));
    cols.extend(["predicted".to_string(), "error".to_string()]);
    cols.extend(extra.iter().map(|c| format!("p_{c}")));
    csv_line(cols)
}

/// One CSV row (with its line break).
pub fn csv_row(r: &ScoreRow, extra: usize) -> String {
    let mut s = format!(
        "{},{},{},{},{},{}",
        csv_field(&r.path),
        r.split.as_deref().unwrap_or(""),
        csv_field(r.label.as_deref().unwrap_or("")),
        num(r.p),
        csv_field(r.predicted.as_deref().unwrap_or("")),
        csv_field(r.error.as_deref().unwrap_or(""))
    );
    for k in 0..extra {
        s.push(',');
        s.push_str(&num(r.probs.as_ref().and_then(|p| p.get(k)).copied()));
    }
    s.push('\n');
    s
}

/// One JSON line (with its line break).
pub fn jsonl_line(r: &ScoreRow, positive: &str, per_class: bool) -> String {
    let mut v = serde_json::json!({
        "path": r.path,
        "split": r.split,
        "label": r.label,
        format!("p_{positive}"): r.p,
        "predicted": r.predicted,
        "error": r.error,
    });
    if per_class {
        v["probabilities"] = serde_json::json!(r.probs);
    }
    v.to_string() + "\n"
}

fn opt(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// Parses a whole file's text. A last line without its newline is a write cut short: left out
/// and reported through `torn_tail`.
pub fn parse(text: &str, format: Format) -> Result<ScoreFile, String> {
    let (body, torn_tail) = match text.rfind('\n') {
        Some(i) => (&text[..=i], !text[i + 1..].trim().is_empty()),
        None => ("", !text.trim().is_empty()),
    };
    let mut f = match format {
        Format::Csv => parse_csv(body)?,
        Format::Jsonl => parse_jsonl(body)?,
        Format::Parquet => return Err("a Parquet file is not text".into()),
    };
    f.torn_tail = torn_tail;
    Ok(f)
}

fn parse_csv(body: &str) -> Result<ScoreFile, String> {
    let mut f = ScoreFile::default();
    let mut rd = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(body.as_bytes());
    let header = rd.headers().map_err(|e| e.to_string())?.clone();
    if header.is_empty() {
        return Ok(f);
    }
    let col = |name: &str| header.iter().position(|h| h == name);
    let path = col("path").ok_or("no `path` column: not an osteoai score file")?;
    // p_<positive> is the first p_ column; any after `error` are per-class.
    let p_cols: Vec<usize> = (0..header.len())
        .filter(|&i| header[i].starts_with("p_"))
        .collect();
    let p = *p_cols.first().ok_or("no `p_<class>` column")?;
    f.positive = Some(header[p][2..].to_string());
    let error = col("error");
    let per_class: Vec<usize> = p_cols
        .iter()
        .copied()
        .filter(|&i| error.is_some_and(|e| i > e))
        .collect();
    f.classes = per_class
        .iter()
        .map(|&i| header[i][2..].to_string())
        .collect();
    let (split, label, predicted) = (col("split"), col("label"), col("predicted"));
    for (n, rec) in rd.records().enumerate() {
        let rec = rec.map_err(|e| format!("row {}: {e}", n + 2))?;
        let get = |c: Option<usize>| c.and_then(|c| rec.get(c)).and_then(opt);
        let num = |c: usize| -> Result<Option<f64>, String> {
            match rec.get(c).unwrap_or("") {
                "" => Ok(None),
                s => s
                    .parse()
                    .map(Some)
                    .map_err(|_| format!("row {}: {s:?} is not a number", n + 2)),
            }
        };
        let probs = if per_class.is_empty() {
            None
        } else {
            let v: Result<Vec<Option<f64>>, String> = per_class.iter().map(|&c| num(c)).collect();
            v?.into_iter().collect::<Option<Vec<f64>>>()
        };
        f.rows.push(ScoreRow {
            path: rec.get(path).unwrap_or("").to_string(),
            split: get(split),
            label: get(label),
            p: num(p)?,
            predicted: get(predicted),
            error: get(error),
            probs,
        });
    }
    Ok(f)
}

fn parse_jsonl(body: &str) -> Result<ScoreFile, String> {
    let mut f = ScoreFile::default();
    for (n, line) in body.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("line {}: {e}", n + 1))?;
        let o = v
            .as_object()
            .ok_or_else(|| format!("line {}: not a JSON object", n + 1))?;
        let path = o
            .get("path")
            .and_then(|p| p.as_str())
            .ok_or_else(|| format!("line {}: no \"path\"", n + 1))?;
        let (pkey, p) = o
            .iter()
            .find(|(k, _)| k.starts_with("p_"))
            .map(|(k, v)| (k.clone(), v.as_f64()))
            .ok_or_else(|| format!("line {}: no \"p_<class>\" key", n + 1))?;
        if f.positive.is_none() {
            f.positive = Some(pkey[2..].to_string());
        }
        let s = |k: &str| o.get(k).and_then(|v| v.as_str()).map(str::to_string);
        f.rows.push(ScoreRow {
            path: path.to_string(),
            split: s("split"),
            label: s("label"),
            p,
            predicted: s("predicted"),
            error: s("error"),
            probs: o
                .get("probabilities")
                .and_then(|v| serde_json::from_value(v.clone()).ok()),
        });
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<ScoreRow> {
        vec![
            ScoreRow {
                path: "d/test/fracture/a, \"b\".jpg".into(),
                split: Some("test".into()),
                label: Some("fracture".into()),
                p: Some(0.123456),
                predicted: Some("nofracture".into()),
                error: None,
                probs: None,
            },
            ScoreRow {
                path: "d/x.png".into(),
                error: Some("cannot decode: bad, truly".into()),
                ..Default::default()
            },
        ]
    }

    #[test]
    fn csv_and_jsonl_round_trip() {
        let mut csv = csv_header("fracture", &[]);
        let mut jl = String::new();
        for r in rows() {
            csv.push_str(&csv_row(&r, 0));
            jl.push_str(&jsonl_line(&r, "fracture", false));
        }
        for (text, fmt) in [(csv, Format::Csv), (jl, Format::Jsonl)] {
            assert_eq!(Format::sniff(&text), fmt);
            let f = parse(&text, fmt).unwrap();
            assert_eq!(f.rows, rows(), "{fmt:?}");
            assert_eq!(f.positive.as_deref(), Some("fracture"));
            assert!(!f.torn_tail);
        }
    }

    #[test]
    fn per_class_columns_and_torn_tail() {
        let classes = vec!["a".to_string(), "b".into(), "c".into()];
        let r = ScoreRow {
            path: "x.jpg".into(),
            p: Some(0.5),
            probs: Some(vec![0.5, 0.25, 0.25]),
            ..Default::default()
        };
        let mut text = csv_header("a", &classes) + &csv_row(&r, 3);
        text.push_str("y.jpg,,,0.1");
        let f = parse(&text, Format::Csv).unwrap();
        assert_eq!(f.classes, classes);
        assert_eq!(f.rows, vec![r.clone()]);
        assert!(f.torn_tail);
        let jl = jsonl_line(&r, "a", true) + "{\"path\": \"y";
        let f = parse(&jl, Format::Jsonl).unwrap();
        assert_eq!(f.rows, vec![r]);
        assert!(f.torn_tail);
    }

    #[test]
    fn not_a_score_file() {
        assert!(
            parse("a,b\n1,2\n", Format::Csv)
                .unwrap_err()
                .contains("path")
        );
        assert!(
            parse("{\"x\": 1}\n", Format::Jsonl)
                .unwrap_err()
                .contains("path")
        );
        assert!(parse("[1]\n", Format::Jsonl).is_err());
        assert!(parse("", Format::Csv).unwrap().rows.is_empty());
    }
}
