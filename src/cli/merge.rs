//! `osteoai merge OUT PARTS...`: the parts of a sharded run into one table, after checking
//! that they cover the scan exactly once.

use std::path::PathBuf;

use clap::Args;
use osteoai_core::scores::merge::{Merged, check_consistent, merge};
use osteoai_core::scores::writer::write_all;
use osteoai_core::scores::{Format, Meta, ScoreFile, ScoreRow};
use osteoai_core::shard::{Shard, shard_of};

use osteoai_core::shard::scope;

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// The merged table (.csv, .jsonl or .parquet; written atomically, with a .meta.json
    /// sidecar).
    pub out: PathBuf,
    /// The parts (`classify --output` files of each shard).
    #[arg(required = true)]
    pub parts: Vec<PathBuf>,
    /// The scanned folder, when it is not where the parts' sidecars say (another mount).
    #[arg(long, value_name = "DIR")]
    pub dir: Vec<PathBuf>,
    /// Write OUT even when images are missing or doubled (the exit status is still 1).
    #[arg(long)]
    pub allow_incomplete: bool,
}

const SHOWN: usize = 10;

pub fn run(a: MergeArgs) -> Result<i32, String> {
    let format = Format::of_path(&a.out).ok_or_else(|| {
        format!(
            "{}: give the merged table a .csv, .jsonl or .parquet extension",
            a.out.display()
        )
    })?;
    let parts: Vec<ScoreFile> = a
        .parts
        .iter()
        .map(|p| ScoreFile::read(p))
        .collect::<Result<_, _>>()?;
    check_consistent(&parts)?;
    let metas: Vec<&Meta> = parts.iter().filter_map(|p| p.meta.as_ref()).collect();
    let first = *metas.first().ok_or_else(|| {
        "the parts have no .meta.json sidecars (written by `classify --output`): \
         the scan they cover is unknown"
            .to_string()
    })?;
    let roots = if a.dir.is_empty() {
        if let Some(m) = metas.iter().find(|m| m.roots != first.roots) {
            return Err(format!(
                "the parts scanned different folders ({:?} and {:?}); give --dir",
                first.roots, m.roots
            ));
        }
        first.roots.clone()
    } else {
        a.dir.clone()
    };
    let sc = scope(&roots, &first.classes, None)?;
    let m = merge(&parts, &sc.rels);
    let problems = say(&m, &sc.entries, &sc.rels);
    let rows: Vec<ScoreRow> = m.rows.iter().flatten().cloned().collect();
    let exact = m.exact();
    if exact || a.allow_incomplete {
        let extra: Vec<String> = parts
            .iter()
            .map(|p| p.classes.clone())
            .find(|c| !c.is_empty())
            .unwrap_or_default();
        write_all(&a.out, format, &first.classes.positive, &extra, &rows)?;
        let meta = Meta {
            roots: roots
                .iter()
                .map(|r| std::path::absolute(r).unwrap_or_else(|_| r.clone()))
                .collect(),
            shard: None,
            images: sc.entries.len(),
            rows: rows.len(),
            complete: exact,
            format,
            osteoai: env!("CARGO_PKG_VERSION").into(),
            ..first.clone()
        };
        meta.write(&a.out)?;
        eprintln!(
            "osteoai: merged {} parts: {} rows for {} images into {}{}",
            parts.len(),
            rows.len(),
            sc.entries.len(),
            a.out.display(),
            if exact { "" } else { " (incomplete)" }
        );
    } else {
        eprintln!(
            "osteoai: {} not written ({problems} problems above; --allow-incomplete writes it anyway)",
            a.out.display()
        );
    }
    Ok(if exact { 0 } else { 1 })
}

/// Says what is wrong on stderr; returns how many kinds of problem there were.
fn say(m: &Merged, entries: &[osteoai_core::scan::Entry], rels: &[PathBuf]) -> usize {
    let mut problems = 0;
    let n = m.shards.unwrap_or(1);
    for s in &m.absent_shards {
        problems += 1;
        eprintln!(
            "osteoai: shard {s} is missing: no part was given for it ({} images)",
            m.missing_by_shard.get(&s.index).copied().unwrap_or(0)
        );
    }
    for (file, rows, images) in &m.incomplete {
        problems += 1;
        eprintln!(
            "osteoai: {} did not finish ({rows} rows of {images} images): run its command \
             again with --resume",
            file.display()
        );
    }
    let missing = m.missing();
    if missing > 0 {
        problems += 1;
        let per: Vec<String> = m
            .missing_by_shard
            .iter()
            .map(|(i, k)| {
                format!(
                    "shard {}: {k}",
                    Shard {
                        index: *i,
                        count: n
                    }
                )
            })
            .collect();
        eprintln!(
            "osteoai: {missing} images have no row{}",
            if per.is_empty() {
                String::new()
            } else {
                format!(" ({})", per.join(", "))
            }
        );
        for (i, _) in m
            .rows
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_none())
            .take(SHOWN)
        {
            eprintln!(
                "osteoai:   missing {} (shard {})",
                entries[i].path.display(),
                Shard {
                    index: shard_of(&rels[i], n),
                    count: n
                }
            );
        }
    }
    if !m.duplicates.is_empty() {
        problems += 1;
        eprintln!(
            "osteoai: {} images have more than one row",
            m.duplicates.len()
        );
        for (i, files) in m.duplicates.iter().take(SHOWN) {
            let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
            eprintln!(
                "osteoai:   {} in {}",
                entries[*i].path.display(),
                names.join(", ")
            );
        }
    }
    if !m.unknown.is_empty() {
        eprintln!(
            "osteoai: {} rows name no image of the folder (removed since?) and are left out; first: {} in {}",
            m.unknown.len(),
            m.unknown[0].1,
            m.unknown[0].0.display()
        );
    }
    problems
}
