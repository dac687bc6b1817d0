//! Class labels read from folder names: `fracture/`, `nofracture/`, and aliases such as
//! `non_fractured/` or `Normal/`, matched case-insensitively and ignoring separators.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The classes of a model, in model order, with the positive one named and folder aliases.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ClassSpec {
    /// Class names in model order (index 0 first).
    pub names: Vec<String>,
    /// The class whose probability the model reports (e.g. `fracture`).
    pub positive: String,
    /// Extra folder names per class (e.g. `nofracture: [normal, non_fractured]`).
    #[serde(default)]
    pub aliases: BTreeMap<String, Vec<String>>,
}

impl ClassSpec {
    /// The two classes of the reference data set, with common folder aliases.
    pub fn fracture_default() -> Self {
        let mut aliases = BTreeMap::new();
        aliases.insert(
            "fracture".to_string(),
            ["fractured", "fractures", "positive", "abnormal"]
                .map(String::from)
                .to_vec(),
        );
        aliases.insert(
            "nofracture".to_string(),
            [
                "not_fractured",
                "non_fractured",
                "nonfracture",
                "normal",
                "negative",
            ]
            .map(String::from)
            .to_vec(),
        );
        ClassSpec {
            names: vec!["fracture".into(), "nofracture".into()],
            positive: "fracture".into(),
            aliases,
        }
    }

    /// Index of the positive class.
    pub fn positive_index(&self) -> Option<usize> {
        self.names.iter().position(|n| n == &self.positive)
    }

    /// Checks that names are unique, the positive class exists and aliases name known classes
    /// without clashing.
    pub fn validate(&self) -> Result<(), String> {
        if self.names.len() < 2 {
            return Err(format!(
                "a model needs at least two classes, found {:?}",
                self.names
            ));
        }
        if self.positive_index().is_none() {
            return Err(format!(
                "positive class {:?} is not one of {:?}",
                self.positive, self.names
            ));
        }
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        for name in &self.names {
            if let Some(prev) = seen.insert(normalise(name), name.clone()) {
                return Err(format!(
                    "classes {prev:?} and {name:?} look the same as folder names"
                ));
            }
        }
        for (class, list) in &self.aliases {
            if !self.names.contains(class) {
                return Err(format!(
                    "alias list for unknown class {class:?} (classes: {:?})",
                    self.names
                ));
            }
            for alias in list {
                if let Some(prev) = seen.insert(normalise(alias), class.clone())
                    && &prev != class
                {
                    return Err(format!("alias {alias:?} of {class:?} also names {prev:?}"));
                }
            }
        }
        Ok(())
    }

    /// The class a single folder name stands for, if any.
    pub fn class_of_folder(&self, folder: &str) -> Option<usize> {
        let key = normalise(folder);
        if key.is_empty() {
            return None;
        }
        if let Some(i) = self.names.iter().position(|n| normalise(n) == key) {
            return Some(i);
        }
        self.aliases.iter().find_map(|(class, list)| {
            list.iter()
                .any(|a| normalise(a) == key)
                .then(|| self.names.iter().position(|n| n == class))
                .flatten()
        })
    }

    /// Label of a file: the nearest ancestor folder (up to and including `root`) naming a class.
    pub fn label_of(&self, root: &Path, file: &Path) -> Option<usize> {
        nearest_ancestor(root, file, |name| self.class_of_folder(name))
    }
}

/// A data split named by a folder: `train/`, `val/` (also `valid`, `validation`), `test/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Val,
    Test,
}

impl Split {
    pub fn of_folder(name: &str) -> Option<Split> {
        match normalise(name).as_str() {
            "train" | "training" => Some(Split::Train),
            "val" | "valid" | "validation" => Some(Split::Val),
            "test" | "testing" => Some(Split::Test),
            _ => None,
        }
    }

    /// Split of a file: the nearest ancestor folder (up to and including `root`) naming one.
    pub fn of_path(root: &Path, file: &Path) -> Option<Split> {
        nearest_ancestor(root, file, Split::of_folder)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Lower case, letters and digits only: `Non_Fractured` and `non-fractured` both become
/// `nonfractured`.
pub fn normalise(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

fn nearest_ancestor<T>(root: &Path, file: &Path, f: impl Fn(&str) -> Option<T>) -> Option<T> {
    let mut dir = file.parent();
    while let Some(d) = dir {
        if let Some(hit) = d.file_name().and_then(|n| n.to_str()).and_then(&f) {
            return Some(hit);
        }
        if d == root || !d.starts_with(root) {
            break;
        }
        dir = d.parent();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn folder_names_and_aliases_match_case_insensitively() {
        let c = ClassSpec::fracture_default();
        assert_eq!(c.class_of_folder("Fracture"), Some(0));
        assert_eq!(c.class_of_folder("NO_FRACTURE"), Some(1));
        assert_eq!(c.class_of_folder("non-fractured"), Some(1));
        assert_eq!(c.class_of_folder("normal"), Some(1));
        assert_eq!(c.class_of_folder("fractured"), Some(0));
        assert_eq!(c.class_of_folder("elbow"), None);
        assert_eq!(c.class_of_folder("__"), None);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn nearest_ancestor_wins_and_root_counts() {
        let c = ClassSpec::fracture_default();
        let root = PathBuf::from("/d/fracture");
        assert_eq!(c.label_of(&root, &root.join("nofracture/x/a.png")), Some(1));
        assert_eq!(c.label_of(&root, &root.join("x/a.png")), Some(0));
        let root = PathBuf::from("/d");
        assert_eq!(c.label_of(&root, &root.join("x/a.png")), None);
        // Folders above the root do not count unless they are the root.
        assert_eq!(
            c.label_of(Path::new("/fracture/d"), Path::new("/fracture/d/a.png")),
            None
        );
    }

    #[test]
    fn splits() {
        let root = PathBuf::from("/d");
        assert_eq!(
            Split::of_path(&root, &root.join("valid/fracture/a.png")),
            Some(Split::Val)
        );
        assert_eq!(
            Split::of_path(&root, &root.join("Test/a.png")),
            Some(Split::Test)
        );
        assert_eq!(Split::of_path(&root, &root.join("a.png")), None);
    }

    #[test]
    fn validation_catches_clashes() {
        let mut c = ClassSpec::fracture_default();
        c.aliases
            .get_mut("nofracture")
            .unwrap()
            .push("Fracture".into());
        assert!(c.validate().unwrap_err().contains("also names"));
        let mut c = ClassSpec::fracture_default();
        c.positive = "x".into();
        assert!(c.validate().is_err());
    }
}
