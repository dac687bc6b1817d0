//! Where the model looks: a heatmap for one image and a model bundle, in the image's own pixel
//! coordinates, with its peak and the box around its hottest part.
//!
//! Methods (`Method`), by what they need of the model:
//! - `cam` (class activation map): linear heads over average-pooled features (fine-tuned
//!   models). The head applied at each location of the feature maps; its average over the map
//!   is the image's logit exactly. One forward pass.
//! - `head-map`: any head, LightGBM included (the bundled model). The head applied to each
//!   location's features as if they had been pooled there, read as that location's
//!   probability. One forward pass and one head call over the cells. For a linear head it is a
//!   monotone function of `cam` (same peak).
//! - `grad-cam`: differentiable models (linear heads), through burn's autodiff: the gradient of
//!   the class's logit at an intermediate map (block 10, 1/16 of the input: finer than the
//!   head's 1/32) weights its channels.
//! - `occlusion`: any model, no access to its inside: the drop of the class's probability when
//!   a square of the input (a quarter of its side) is greyed out, over an 8 x 8 grid of
//!   positions. 65 forward passes: slow, but what every other method is checked against.
//!
//! Flip-averaged models average the map of the mirrored image, mirrored back.

mod compute;
mod geometry;
mod gradcam;
mod maps;
pub mod overlay;
pub mod pointing;

pub use compute::{Explainer, explain_decoded, explain_path};
pub use geometry::{Box2, Heatmap};

use serde::{Deserialize, Serialize};

/// How a heatmap is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    Cam,
    HeadMap,
    ShapCam,
    FeatureOcclusion,
    GradCam,
    Occlusion,
}

impl Method {
    pub const ALL: [Method; 6] = [
        Method::Cam,
        Method::HeadMap,
        Method::ShapCam,
        Method::FeatureOcclusion,
        Method::GradCam,
        Method::Occlusion,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Method::Cam => "cam",
            Method::HeadMap => "head-map",
            Method::ShapCam => "shap-cam",
            Method::FeatureOcclusion => "feature-occlusion",
            Method::GradCam => "grad-cam",
            Method::Occlusion => "occlusion",
        }
    }

    pub fn parse(s: &str) -> Result<Method, String> {
        Method::ALL
            .into_iter()
            .find(|m| m.name() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| {
                format!(
                    "unknown method {s:?} (one of: {})",
                    Method::ALL.map(Method::name).join(", ")
                )
            })
    }

    /// Whether a model with this head can be explained by the method.
    pub fn supports(self, head: HeadKind) -> bool {
        match self {
            Method::Cam | Method::GradCam => head == HeadKind::Linear,
            Method::ShapCam => head == HeadKind::LightGbmBinary,
            Method::HeadMap | Method::FeatureOcclusion | Method::Occlusion => true,
        }
    }

    /// The method for a model when none is asked for: the one that best finds drawn breaks
    /// (docs/explain.md): Grad-CAM for linear heads, occlusion otherwise.
    pub fn default_for(head: HeadKind) -> Method {
        match head {
            HeadKind::Linear => Method::GradCam,
            _ => Method::Occlusion,
        }
    }

    /// The one-pass method for a model (the dashboard shows it first while the default one
    /// is computed): CAM, TreeSHAP spread over the map, or the head over the map.
    pub fn fast_for(head: HeadKind) -> Method {
        match head {
            HeadKind::Linear => Method::Cam,
            HeadKind::LightGbmBinary => Method::ShapCam,
            HeadKind::LightGbmMulti => Method::HeadMap,
        }
    }

    /// Whether the method runs the network once (the others run it again per region or
    /// backwards).
    pub fn is_one_pass(self) -> bool {
        matches!(
            self,
            Method::Cam | Method::HeadMap | Method::ShapCam | Method::FeatureOcclusion
        )
    }

    /// The methods a model supports, default first.
    pub fn supported(head: HeadKind) -> Vec<Method> {
        let first = Method::default_for(head);
        let mut v = vec![first];
        v.extend(
            Method::ALL
                .into_iter()
                .filter(|m| *m != first && m.supports(head)),
        );
        v
    }
}

/// What a model's head allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadKind {
    /// Softmax over a linear layer (fine-tuned models): differentiable.
    Linear,
    /// LightGBM, one probability (TreeSHAP contributions available).
    LightGbmBinary,
    /// LightGBM over several classes.
    LightGbmMulti,
}

impl HeadKind {
    pub fn of(head: &crate::model::head::Head) -> HeadKind {
        if head.linear_head().is_some() {
            HeadKind::Linear
        } else if head.output == crate::model::head::HeadOutput::Binary {
            HeadKind::LightGbmBinary
        } else {
            HeadKind::LightGbmMulti
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests;
