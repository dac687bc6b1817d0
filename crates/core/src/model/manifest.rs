//! The model manifest (`manifest.json` in a bundle): everything needed to use and to trust a
//! model: classes, preprocessing, backbone, head, threshold, provenance and measured metrics.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::decode::model_input::Preprocess;
use crate::labels::ClassSpec;
use crate::model::arch::Arch;
use crate::model::effnet::{FeatureSpec, Tap};
use crate::model::head::HeadOutput;

/// Version of the manifest format this build reads and writes.
pub const FORMAT: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: u32,
    pub name: String,
    pub classes: ClassSpec,
    pub preprocess: Preprocess,
    pub backbone: BackboneSpec,
    pub head: HeadSpec,
    /// P(positive) at or above which the positive class is predicted.
    pub threshold: f64,
    pub provenance: Provenance,
    /// Measured metrics, by evaluation set name (e.g. `test`, `test_unseen_sources`).
    #[serde(default)]
    pub metrics: BTreeMap<String, serde_json::Value>,
    /// Fine-tuned models: the recipe, the per-epoch learning curve and the selection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training: Option<serde_json::Value>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BackboneSpec {
    /// Architecture: `efficientnet_lite0` (the default), `efficientnet_lite1`, `efficientnet_lite2`.
    pub kind: String,
    /// Burnpack weight file, relative to the bundle.
    pub weights: String,
    /// Whether the batch norms are folded into the convolutions in that file.
    pub folded: bool,
    pub features: FeatureSpec,
    /// Where the weights came from (licence and attribution file, relative to the bundle).
    #[serde(default)]
    pub license_file: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct HeadSpec {
    /// `lightgbm`: a LightGBM text model.
    pub kind: String,
    /// Model file, relative to the bundle.
    pub file: String,
    pub output: HeadOutput,
    pub num_features: usize,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Provenance {
    /// What it was trained on.
    pub data: String,
    /// The command that made it.
    pub command: String,
    /// UTC date and time, RFC 3339.
    pub date: String,
    pub git_revision: String,
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default)]
    pub notes: Vec<String>,
}

impl Manifest {
    /// The backbone's variant (`backbone.kind`).
    pub fn arch(&self) -> Result<Arch, String> {
        Arch::parse(&self.backbone.kind)
    }

    /// Explains the first thing wrong with the manifest itself (files are checked by the bundle).
    pub fn validate(&self) -> Result<(), String> {
        if self.format != FORMAT {
            return Err(format!(
                "manifest format {} is not supported (this build reads {FORMAT})",
                self.format
            ));
        }
        self.classes.validate()?;
        let arch = self.arch()?;
        self.backbone.features.validate()?;
        if arch != Arch::Lite0
            && self
                .backbone
                .features
                .taps
                .iter()
                .any(|t| matches!(t, Tap::Block(_)))
        {
            return Err(format!(
                "{}: only the head tap is supported (block taps are Lite0's)",
                self.backbone.kind
            ));
        }
        if self.head.kind != "lightgbm" && self.head.kind != "linear" {
            return Err(format!(
                "unknown head kind {:?} (known: lightgbm, linear)",
                self.head.kind
            ));
        }
        let dim = self.backbone.features.dim();
        if self.head.num_features != dim {
            return Err(format!(
                "head expects {} features but the backbone's feature recipe gives {dim}",
                self.head.num_features
            ));
        }
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err(format!("threshold {} is outside [0, 1]", self.threshold));
        }
        if self.preprocess.size < 32 || self.preprocess.size > 1024 {
            return Err(format!(
                "input size {} is outside 32..=1024",
                self.preprocess.size
            ));
        }
        if self.preprocess.std.iter().any(|s| *s <= 0.0) {
            return Err("preprocess std must be positive".into());
        }
        Ok(())
    }
}
