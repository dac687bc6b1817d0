//! Score tables as Parquet (for pandas, polars, DuckDB and Spark over large archives): the
//! same columns as the CSV (`path, split, label, p_<positive>, predicted, error`, then
//! `p_<class>` per class for more than two), strings as UTF-8, probabilities as nullable
//! float64, Snappy-compressed. Parquet has its index at the end of the file, so it is written
//! whole (merge, or the end of a run), never appended to: sharded and resumable runs write
//! CSV or JSON lines, and `merge` makes the Parquet table.

use std::path::Path;
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, Float64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::{ScoreFile, ScoreRow};

/// The table as the bytes of a Parquet file.
pub fn to_bytes(rows: &[ScoreRow], positive: &str, extra: &[String]) -> Result<Vec<u8>, String> {
    let text = |f: &dyn Fn(&ScoreRow) -> Option<&str>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<StringArray>())
    };
    let mut fields = vec![Field::new("path", DataType::Utf8, false)];
    for name in ["split", "label"] {
        fields.push(Field::new(name, DataType::Utf8, true));
    }
    fields.push(Field::new(format!("p_{positive}"), DataType::Float64, true));
    for name in ["predicted", "error"] {
        fields.push(Field::new(name, DataType::Utf8, true));
    }
    let mut columns: Vec<ArrayRef> = vec![
        text(&|r| Some(r.path.as_str())),
        text(&|r| r.split.as_deref()),
        text(&|r| r.label.as_deref()),
        Arc::new(rows.iter().map(|r| r.p).collect::<Float64Array>()),
        text(&|r| r.predicted.as_deref()),
        text(&|r| r.error.as_deref()),
    ];
    for (k, c) in extra.iter().enumerate() {
        fields.push(Field::new(format!("p_{c}"), DataType::Float64, true));
        columns.push(Arc::new(
            rows.iter()
                .map(|r| r.probs.as_ref().and_then(|p| p.get(k)).copied())
                .collect::<Float64Array>(),
        ));
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| e.to_string())?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut buf = Vec::new();
    let mut w = ArrowWriter::try_new(&mut buf, schema, Some(props)).map_err(|e| e.to_string())?;
    w.write(&batch).map_err(|e| e.to_string())?;
    w.close().map_err(|e| e.to_string())?;
    Ok(buf)
}

/// True when the bytes start like a Parquet file.
pub fn is_parquet(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PAR1")
}

fn strings(batch: &RecordBatch, name: &str) -> Result<Option<StringArray>, String> {
    match batch.column_by_name(name) {
        None => Ok(None),
        Some(c) => c
            .as_any()
            .downcast_ref::<StringArray>()
            .cloned()
            .map(Some)
            .ok_or_else(|| format!("column {name:?} is not text")),
    }
}

fn floats(batch: &RecordBatch, name: &str) -> Result<Float64Array, String> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<Float64Array>().cloned())
        .ok_or_else(|| format!("column {name:?} is missing or not float64"))
}

/// Reads a Parquet score table.
pub fn read(path: &Path) -> Result<ScoreFile, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| e.to_string())?;
    let names: Vec<String> = builder
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let p_cols: Vec<&String> = names.iter().filter(|n| n.starts_with("p_")).collect();
    let positive = p_cols
        .first()
        .map(|n| n[2..].to_string())
        .ok_or("no `p_<class>` column: not an osteoai score table")?;
    let error_at = names.iter().position(|n| n == "error");
    let per_class: Vec<String> = names
        .iter()
        .enumerate()
        .filter(|(i, n)| n.starts_with("p_") && error_at.is_some_and(|e| *i > e))
        .map(|(_, n)| n.clone())
        .collect();
    let mut f = ScoreFile {
        positive: Some(positive.clone()),
        classes: per_class.iter().map(|n| n[2..].to_string()).collect(),
        ..Default::default()
    };
    let reader = builder.build().map_err(|e| e.to_string())?;
    for batch in reader {
        let batch = batch.map_err(|e| e.to_string())?;
        let path =
            strings(&batch, "path")?.ok_or("no `path` column: not an osteoai score table")?;
        let (split, label) = (strings(&batch, "split")?, strings(&batch, "label")?);
        let (predicted, error) = (strings(&batch, "predicted")?, strings(&batch, "error")?);
        let p = floats(&batch, &format!("p_{positive}"))?;
        let extra: Vec<Float64Array> = per_class
            .iter()
            .map(|n| floats(&batch, n))
            .collect::<Result<_, _>>()?;
        let get = |a: &Option<StringArray>, i: usize| -> Option<String> {
            a.as_ref()
                .filter(|a| a.is_valid(i))
                .map(|a| a.value(i).to_string())
        };
        let num = |a: &Float64Array, i: usize| a.is_valid(i).then(|| a.value(i));
        for i in 0..batch.num_rows() {
            f.rows.push(ScoreRow {
                path: path.value(i).to_string(),
                split: get(&split, i),
                label: get(&label, i),
                p: num(&p, i),
                predicted: get(&predicted, i),
                error: get(&error, i),
                probs: if extra.is_empty() {
                    None
                } else {
                    extra.iter().map(|a| num(a, i)).collect()
                },
            });
        }
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_errors_and_per_class_columns() {
        let rows = vec![
            ScoreRow {
                path: "d/test/a b,ü.jpg".into(),
                split: Some("test".into()),
                label: Some("a".into()),
                p: Some(0.25),
                predicted: Some("b".into()),
                error: None,
                probs: Some(vec![0.25, 0.5, 0.25]),
            },
            ScoreRow {
                path: "d/x.png".into(),
                error: Some("not an image".into()),
                ..Default::default()
            },
        ];
        let classes = vec!["a".to_string(), "b".into(), "c".into()];
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.parquet");
        let bytes = to_bytes(&rows, "a", &classes).unwrap();
        assert!(is_parquet(&bytes));
        std::fs::write(&p, bytes).unwrap();
        let f = read(&p).unwrap();
        assert_eq!(f.rows, rows);
        assert_eq!(f.positive.as_deref(), Some("a"));
        assert_eq!(f.classes, classes);
    }
}
