//! Matching score rows to the images of a folder scanned here and now. A row's path is the
//! path the scoring run saw (its folder as given there, then the image's place in it); the
//! folder may be mounted elsewhere now, so rows are matched by the longest trailing part of
//! their path that names an image of the scan, relative to the scanned folder.

use std::collections::HashMap;
use std::path::Path;

/// The scan's images by their `/`-separated path relative to the scanned folder.
pub struct Matcher {
    by_rel: HashMap<String, usize>,
    /// The most path components any relative path has.
    depth: usize,
}

fn components(path: &str) -> Vec<&str> {
    path.split(['/', '\\'])
        .filter(|c| !c.is_empty() && *c != ".")
        .collect()
}

impl Matcher {
    /// `rels[i]` is image `i`'s path relative to its scanned folder.
    pub fn new<'a>(rels: impl IntoIterator<Item = &'a Path>) -> Matcher {
        let mut by_rel = HashMap::new();
        let mut depth = 0;
        for (i, rel) in rels.into_iter().enumerate() {
            let key = crate::shard::key_of(rel);
            depth = depth.max(components(&key).len());
            by_rel.entry(key).or_insert(i);
        }
        Matcher { by_rel, depth }
    }

    /// The image a row's path names, if any.
    pub fn find(&self, row_path: &str) -> Option<usize> {
        let parts = components(row_path);
        let longest = parts.len().min(self.depth);
        (1..=longest).rev().find_map(|k| {
            self.by_rel
                .get(&parts[parts.len() - k..].join("/"))
                .copied()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn rows_match_wherever_the_folder_was_mounted() {
        let rels: Vec<PathBuf> = ["test/fracture/a.jpg", "val/fracture/a.jpg", "b.png"]
            .iter()
            .map(PathBuf::from)
            .collect();
        let m = Matcher::new(rels.iter().map(|p| p.as_path()));
        assert_eq!(m.find("/scratch/job7/data/test/fracture/a.jpg"), Some(0));
        assert_eq!(m.find("data/val/fracture/a.jpg"), Some(1));
        assert_eq!(m.find("./data//b.png"), Some(2));
        assert_eq!(m.find("data\\test\\fracture\\a.jpg"), Some(0));
        assert_eq!(m.find("data/train/fracture/a.jpg"), None);
        assert_eq!(m.find("c.png"), None);
    }
}
