//! `osteoai relabel` and `osteoai undo`: the dashboard's journalled relabel for scripts. Every
//! move is a no-clobber rename recorded in DIR/.osteoai/journal.jsonl (write-ahead, so a killed
//! run is settled on the next open) and can be undone, here or in the dashboard.

use std::path::{Path, PathBuf};

use clap::Args;
use osteoai_core::journal::Journal;
use osteoai_core::labels::ClassSpec;
use osteoai_core::model::Bundle;

#[derive(Args, Debug)]
pub struct RelabelArgs {
    /// The reviewed folder: its class folders and its journal (.osteoai/journal.jsonl).
    pub dir: PathBuf,
    /// Files to move, under DIR (relative to DIR, or absolute).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// The class to move them to: a class name (e.g. nofracture) or a folder alias of one.
    #[arg(long)]
    pub to: String,
    /// Model bundle whose classes name the folders [default: as the dashboard].
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct UndoArgs {
    /// The reviewed folder whose journal holds the moves.
    pub dir: PathBuf,
    /// How many of the latest moves to undo.
    #[arg(short = 'n', long, default_value_t = 1)]
    pub count: usize,
    /// Undo every move still in effect.
    #[arg(long)]
    pub all: bool,
}

fn classes(model: &Option<PathBuf>) -> ClassSpec {
    super::model_dir(model)
        .and_then(|d| Bundle::read_manifest(&d).map_err(|e| e.to_string()))
        .map(|m| m.classes)
        .unwrap_or_else(|_| ClassSpec::fracture_default())
}

fn open(dir: &Path) -> Result<Journal, String> {
    let j = Journal::open(dir)?;
    for r in &j.recovered {
        eprintln!("osteoai: journal: {r}");
    }
    Ok(j)
}

pub fn relabel(a: RelabelArgs) -> Result<i32, String> {
    let root = std::fs::canonicalize(&a.dir)
        .map_err(|e| format!("cannot open {}: {e}", a.dir.display()))?;
    let classes = classes(&a.model);
    let target = classes
        .names
        .iter()
        .position(|n| n == &a.to)
        .or_else(|| classes.class_of_folder(&a.to))
        .ok_or_else(|| {
            format!(
                "no class {:?}; the classes are {}",
                a.to,
                classes.names.join(", ")
            )
        })?;
    let mut journal = open(&root)?;
    let mut failed = 0;
    for f in &a.files {
        let path = if f.is_absolute() {
            f.clone()
        } else {
            root.join(f)
        };
        let result = std::fs::canonicalize(&path)
            .map_err(|e| format!("{}: {e}", path.display()))
            .and_then(|p| match p.starts_with(&root) {
                true => Ok(p),
                false => Err(format!(
                    "{} is not under {}",
                    path.display(),
                    root.display()
                )),
            })
            .and_then(|p| Ok(journal.relabel(&root, &classes, &p, target)?));
        match result {
            Ok(m) => println!("moved {} -> {}", m.from.display(), m.to.display()),
            Err(e) => {
                failed += 1;
                tracing::warn!(error = %e, "not moved");
                eprintln!("osteoai: not moved: {e}");
            }
        }
    }
    Ok(if failed > 0 { 1 } else { 0 })
}

pub fn undo(a: UndoArgs) -> Result<i32, String> {
    let mut journal = open(&a.dir)?;
    let n = if a.all { usize::MAX } else { a.count };
    let mut done = 0;
    while done < n {
        match journal.undo_last()? {
            Some(m) => println!("restored {} (from {})", m.from.display(), m.to.display()),
            None => break,
        }
        done += 1;
    }
    if done == 0 {
        eprintln!("osteoai: nothing to undo in {}", a.dir.display());
    }
    Ok(0)
}
