//! A model bundle: a folder with `manifest.json`, the backbone weights and the head. Loading
//! validates every part and says exactly what is wrong.

use std::path::{Path, PathBuf};

use crate::cache::Fnv;
use crate::model::head::Head;
use crate::model::manifest::Manifest;

pub const MANIFEST: &str = "manifest.json";

/// A loaded manifest and head (the backbone is loaded on a device by `engine::Backbone`).
pub struct Bundle {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub head: Head,
    /// Changes whenever the manifest, head or backbone weights change (cache keys).
    pub fingerprint: u64,
}

impl Bundle {
    /// Reads and validates only the manifest.
    pub fn read_manifest(dir: &Path) -> crate::error::Result<Manifest> {
        use crate::error::Kind;
        Self::read_manifest_msg(dir).kind(crate::error::Error::Model)
    }

    fn read_manifest_msg(dir: &Path) -> Result<Manifest, String> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            if dir.is_dir() {
                format!(
                    "model folder {} has no readable {MANIFEST}: {e}",
                    dir.display()
                )
            } else {
                format!("model folder {} does not exist", dir.display())
            }
        })?;
        let manifest: Manifest = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not a valid manifest: {e}", path.display()))?;
        manifest
            .validate()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(manifest)
    }

    /// Loads manifest and head, checking that they fit together and that the weights exist.
    pub fn load(dir: &Path) -> crate::error::Result<Bundle> {
        use crate::error::Kind;
        Self::load_msg(dir).kind(crate::error::Error::Model)
    }

    fn load_msg(dir: &Path) -> Result<Bundle, String> {
        let manifest = Self::read_manifest(dir)?;
        let weights = dir.join(&manifest.backbone.weights);
        let head_path = dir.join(&manifest.head.file);
        for (what, p) in [("backbone weights", &weights), ("head", &head_path)] {
            if !p.is_file() {
                return Err(format!(
                    "{what} file {} is missing (named in {})",
                    p.display(),
                    dir.join(MANIFEST).display()
                ));
            }
        }
        let positive = manifest.classes.positive_index().expect("validated");
        let head = if manifest.head.kind == "linear" {
            Head::load_linear(&head_path, positive)?
        } else {
            Head::load(&head_path, manifest.head.output, positive)?
        };
        if head.num_features != manifest.head.num_features {
            return Err(format!(
                "head {} takes {} features but the manifest says {}",
                head_path.display(),
                head.num_features,
                manifest.head.num_features
            ));
        }
        let mut h = Fnv::new();
        h.write(&std::fs::read(dir.join(MANIFEST)).unwrap_or_default());
        h.write(&std::fs::read(&head_path).unwrap_or_default());
        // By content, not location: a bundle copied to another node is the same model.
        h.write(&std::fs::read(&weights).unwrap_or_default());
        Ok(Bundle {
            dir: dir.to_path_buf(),
            manifest,
            head,
            fingerprint: h.finish(),
        })
    }

    pub fn name(&self) -> &str {
        &self.manifest.name
    }
}
