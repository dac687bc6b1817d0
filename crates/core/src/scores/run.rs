//! Scoring a run's images: one row per image of a scope (scan order), scored by the engine and
//! handed out in batches as they finish (`classify --output` appends them; a stop flushes what
//! is done).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::engine::{Engine, predicted_of};
use crate::labels::ClassSpec;
use crate::scan::Entry;
use crate::scores::ScoreRow;
use crate::shard::Scope;

fn row_of(e: &Entry, classes: &ClassSpec) -> ScoreRow {
    ScoreRow {
        path: e.path.display().to_string(),
        split: e.split.map(|s| s.to_string()),
        label: e.label.map(|l| classes.names[l].clone()),
        ..Default::default()
    }
}

/// Scores the scope's images not in `skip`, handing every `batch` finished rows to `flush`.
/// Returns the rows (scan order; skipped and unfinished ones without a score) and whether
/// every image was scored (false: cancelled, or `flush` failed, its error returned).
/// `progress(done, total)` follows the images scored.
pub fn score_scope(
    engine: &Engine,
    scope: &Scope,
    skip: &HashSet<String>,
    batch: usize,
    cancel: &AtomicBool,
    mut flush: impl FnMut(&[ScoreRow]) -> Result<(), String>,
    mut progress: impl FnMut(usize, usize),
) -> Result<(Vec<ScoreRow>, bool), String> {
    let m = engine.manifest();
    let mut rows: Vec<ScoreRow> = scope
        .entries
        .iter()
        .map(|e| row_of(e, &m.classes))
        .collect();
    let todo: Vec<usize> = (0..rows.len())
        .filter(|&i| !skip.contains(&rows[i].path))
        .collect();
    let files: Vec<PathBuf> = todo
        .iter()
        .map(|&i| scope.entries[i].path.clone())
        .collect();
    progress(0, files.len());
    let pos = m.classes.positive_index().unwrap_or(0);
    let (mut pending, mut done, mut failed) = (Vec::new(), 0, None);
    let complete = engine.classify_probs_stream(&files, cancel, |k, r| {
        let row = &mut rows[todo[k]];
        match r {
            Ok(p) => {
                row.p = p.get(pos).copied();
                row.predicted = Some(m.classes.names[predicted_of(m, &p)].clone());
                row.probs = Some(p);
            }
            Err(e) => row.error = Some(e),
        }
        pending.push(todo[k]);
        done += 1;
        progress(done, files.len());
        if pending.len() >= batch.max(1) && failed.is_none() {
            let out: Vec<ScoreRow> = pending.drain(..).map(|i| rows[i].clone()).collect();
            if let Err(e) = flush(&out) {
                failed = Some(e);
                cancel.store(true, Ordering::SeqCst);
            }
        }
    });
    if let Some(e) = failed {
        return Err(e);
    }
    let out: Vec<ScoreRow> = pending.drain(..).map(|i| rows[i].clone()).collect();
    flush(&out)?;
    Ok((rows, complete && done == todo.len()))
}
