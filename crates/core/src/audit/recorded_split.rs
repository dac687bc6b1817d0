//! A split rebuilt from its recorded `split-manifest.csv` (`osteoai split --from`): the same
//! files in the same splits on another machine, under another folder name, or after osteoai's
//! re-split rule has changed — a model's test set stays its test set. Rows are matched to the
//! folder's files by the longest tail of their `source` path that names a file of the folder
//! (`test/fracture/a.jpg` matches `/data/osteoai/test/fracture/a.jpg` and the reverse).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::resplit::{Placement, Plan};
use crate::labels::Split;

/// One row of a recorded manifest.
#[derive(Clone, Debug, PartialEq)]
struct Row {
    source: String,
    dest: String,
    split: Split,
    label: String,
    group: Option<usize>,
}

fn parse_split(s: &str) -> Option<Split> {
    match s {
        "train" => Some(Split::Train),
        "val" => Some(Split::Val),
        "test" => Some(Split::Test),
        _ => None,
    }
}

fn read_rows(text: &str) -> Result<Vec<Row>, String> {
    let mut rd = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header: Vec<String> = rd
        .headers()
        .map_err(|e| format!("split manifest: {e}"))?
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    let col = |n: &str| {
        header.iter().position(|h| h == n).ok_or_else(|| {
            format!("split manifest: no `{n}` column (written by `osteoai split`: source,dest,split,label,...)")
        })
    };
    let (src, dest, split, label) = (col("source")?, col("dest")?, col("split")?, col("label")?);
    let group = header.iter().position(|h| h == "group");
    let mut rows = Vec::new();
    for (i, rec) in rd.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| format!("split manifest line {line}: {e}"))?;
        let get = |c: usize| rec.get(c).unwrap_or("");
        let s = get(split);
        let row = Row {
            source: get(src).to_string(),
            dest: get(dest).to_string(),
            split: parse_split(s).ok_or_else(|| {
                format!("split manifest line {line}: split {s:?} (train, val, test)")
            })?,
            label: get(label).to_string(),
            group: group.and_then(|g| get(g).parse().ok()),
        };
        let d = Path::new(&row.dest);
        if row.source.is_empty()
            || row.label.is_empty()
            || d.is_absolute()
            || d.components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(format!(
                "split manifest line {line}: empty source or label, or a destination outside the new folder ({:?})",
                row.dest
            ));
        }
        rows.push(row);
    }
    Ok(rows)
}

/// The path's components as strings, `/`-free.
fn parts(p: &Path) -> Vec<String> {
    p.components()
        .filter_map(|c| match c {
            std::path::Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect()
}

/// What a recorded split gives for a folder: the plan, and the recorded rows no file matched.
pub struct Rebuilt {
    pub plan: Plan,
    pub missing: Vec<String>,
}

/// The plan that puts each of `files` (under `root`) where the manifest `text` recorded it.
/// Files the manifest does not name are left out (with why); a row that two files would both
/// match, or a file two rows would both match, is an error (the match would be a guess).
pub fn rebuild(text: &str, root: &Path, files: &[PathBuf]) -> Result<Rebuilt, String> {
    let rows = read_rows(text)?;
    // Every tail of every row's source -> the rows with that tail.
    let mut by_tail: HashMap<Vec<String>, Vec<usize>> = HashMap::new();
    for (i, r) in rows.iter().enumerate() {
        let p = parts(Path::new(&r.source));
        for k in 1..=p.len() {
            by_tail
                .entry(p[p.len() - k..].to_vec())
                .or_default()
                .push(i);
        }
    }
    let mut used: Vec<Option<usize>> = vec![None; rows.len()];
    let mut plan = Plan::default();
    for (f, file) in files.iter().enumerate() {
        let rel = parts(file.strip_prefix(root).unwrap_or(file));
        // The longest tail of the file's relative path that some row ends with; it must name
        // one row only.
        let hit = (1..=rel.len())
            .rev()
            .find_map(|k| by_tail.get(&rel[rel.len() - k..]).map(|rs| (k, rs)));
        let Some((k, rs)) = hit else {
            plan.skipped
                .push((file.clone(), "not in the recorded split".into()));
            continue;
        };
        if rs.len() > 1 {
            return Err(format!(
                "{} matches {} rows of the split manifest by its last {k} path parts; give the folder the manifest was made from",
                file.display(),
                rs.len()
            ));
        }
        let r = rs[0];
        if let Some(other) = used[r].replace(f) {
            return Err(format!(
                "{} and {} both match the split manifest's row for {}",
                files[other].display(),
                file.display(),
                rows[r].source
            ));
        }
        let row = &rows[r];
        plan.placements.push(Placement {
            source: file.clone(),
            dest: PathBuf::from(&row.dest),
            split: row.split,
            old_split: rel.iter().find_map(|c| Split::of_folder(c)),
            label: row.label.clone(),
            group: row.group,
        });
    }
    let missing = rows
        .iter()
        .zip(&used)
        .filter(|(_, u)| u.is_none())
        .map(|(r, _)| r.source.clone())
        .collect();
    Ok(Rebuilt { plan, missing })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "source,dest,split,label,old_split,group\n\
        /old/data/train/fracture/a.jpg,test/fracture/a.jpg,test,fracture,train,3\n\
        /old/data/test/nofracture/b.jpg,train/nofracture/b.jpg,train,nofracture,test,\n\
        \"/old/data/val/fracture/c,1.jpg\",\"val/fracture/c,1.jpg\",val,fracture,val,3\n";

    #[test]
    fn rows_find_their_files_under_another_root_and_extra_files_are_left_out() {
        let root = Path::new("/new/place");
        let files: Vec<PathBuf> = [
            "train/fracture/a.jpg",
            "test/nofracture/b.jpg",
            "val/fracture/c,1.jpg",
            "val/fracture/new.jpg",
        ]
        .iter()
        .map(|p| root.join(p))
        .collect();
        let r = rebuild(MANIFEST, root, &files).unwrap();
        let got: Vec<(String, Split, Option<usize>)> = r
            .plan
            .placements
            .iter()
            .map(|p| (p.dest.display().to_string(), p.split, p.group))
            .collect();
        assert_eq!(
            got,
            vec![
                ("test/fracture/a.jpg".into(), Split::Test, Some(3)),
                ("train/nofracture/b.jpg".into(), Split::Train, None),
                ("val/fracture/c,1.jpg".into(), Split::Val, Some(3)),
            ]
        );
        assert_eq!(r.plan.placements[0].old_split, Some(Split::Train));
        assert_eq!(r.plan.skipped.len(), 1);
        assert!(r.plan.skipped[0].0.ends_with("new.jpg"));
        assert!(r.missing.is_empty());
        // A folder with fewer files: the rows left say which.
        let r = rebuild(MANIFEST, root, &files[..1]).unwrap();
        assert_eq!(r.missing.len(), 2);
    }

    #[test]
    fn ambiguous_or_unsafe_manifests_are_refused() {
        let root = Path::new("/d");
        // Two rows with the same file name in different folders, and a folder that only has
        // the name: which row is meant cannot be told.
        let two = "source,dest,split,label\n/x/train/f/a.jpg,train/f/a.jpg,train,f\n/x/val/f/a.jpg,val/f/a.jpg,val,f\n";
        let err = rebuild(two, root, &[root.join("a.jpg")]).err().unwrap();
        assert!(err.contains("matches 2 rows"), "{err}");
        // With the folders they are told apart.
        let ok = rebuild(
            two,
            root,
            &[root.join("train/f/a.jpg"), root.join("val/f/a.jpg")],
        )
        .unwrap();
        assert_eq!(ok.plan.placements.len(), 2);
        for bad in [
            "source,dest,split,label\n/x/a.jpg,../a.jpg,train,f\n",
            "source,dest,split,label\n/x/a.jpg,/etc/a.jpg,train,f\n",
            "source,dest,split,label\n/x/a.jpg,a.jpg,holdout,f\n",
            "source,split,label\n/x/a.jpg,train,f\n",
        ] {
            assert!(rebuild(bad, root, &[root.join("a.jpg")]).is_err(), "{bad}");
        }
    }
}
