//! The fine-tuned bundle's head: the linear layer trained with the backbone, or a LightGBM head
//! trained on the fine-tuned features (the same train images, early stopping on val), whichever
//! has the higher val ROC AUC (`HeadMode::Auto`); both figures are kept in the manifest.

use std::path::Path;

use serde_json::json;

use crate::device::Selected;
use crate::engine::Backbone;
use crate::model::Manifest;
use crate::model::bundle::MANIFEST;
use crate::train::{HeadParams, Splits, TrainConfig, atomic_write, train};

/// Which head a fine-tuned bundle gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HeadMode {
    /// The better of the two on val.
    #[default]
    Auto,
    Linear,
    Lightgbm,
}

impl HeadMode {
    pub fn parse(s: &str) -> Result<HeadMode, String> {
        match s {
            "auto" => Ok(HeadMode::Auto),
            "linear" => Ok(HeadMode::Linear),
            "lightgbm" => Ok(HeadMode::Lightgbm),
            _ => Err(format!("unknown head {s:?} (auto, linear, lightgbm)")),
        }
    }

    /// Whether the LightGBM head is kept, given both val ROC AUCs (NaN never wins).
    pub fn keeps_lightgbm(self, linear_auc: f64, lightgbm_auc: f64) -> bool {
        match self {
            HeadMode::Linear => false,
            HeadMode::Lightgbm => true,
            HeadMode::Auto => {
                lightgbm_auc > linear_auc || (linear_auc.is_nan() && !lightgbm_auc.is_nan())
            }
        }
    }
}

/// What the comparison found.
#[derive(Clone, Debug, PartialEq)]
pub struct HeadComparison {
    pub linear_val_auc: f64,
    pub lightgbm_val_auc: f64,
    pub lightgbm_rounds: i32,
    /// `linear` or `lightgbm`.
    pub chosen: &'static str,
}

fn val_auc(m: &Manifest) -> f64 {
    m.metrics
        .get("val")
        .and_then(|v| v.get("roc_auc"))
        .and_then(|v| v.as_f64())
        .unwrap_or(f64::NAN)
}

/// Trains the LightGBM head on the features of the bundle in `out` (written with its linear
/// head) and keeps the head `mode` asks for, rewriting the bundle's manifest (and adding
/// `head.txt`) when LightGBM's is kept. Returns the manifest now in `out`.
#[allow(clippy::too_many_arguments)]
pub fn choose_head(
    out: &Path,
    manifest: &Manifest,
    device: &Selected,
    data: &Path,
    splits: Option<&Splits>,
    seed: u64,
    mode: HeadMode,
    command: &str,
    mut log: impl FnMut(&str),
) -> Result<(Manifest, Option<HeadComparison>), String> {
    if mode == HeadMode::Linear {
        return Ok((manifest.clone(), None));
    }
    let backbone = Backbone::load(out, manifest, device.clone())?;
    let tmp = out.join(".lightgbm-head");
    let _ = std::fs::remove_dir_all(&tmp);
    let cfg = TrainConfig {
        data: data.to_path_buf(),
        out: tmp.clone(),
        seed,
        head: HeadParams::default(),
        cache: Some(crate::features::default_cache()),
        command: command.to_string(),
        dump_features: None,
        splits: splits.cloned(),
    };
    log("a LightGBM head on the fine-tuned features (early stopping on val)");
    let trained = train(out, manifest, &backbone, &cfg, &mut log);
    let result = trained.map_err(|e| e.to_string()).and_then(|report| {
        let cmp = HeadComparison {
            linear_val_auc: val_auc(manifest),
            lightgbm_val_auc: val_auc(&report.manifest),
            lightgbm_rounds: report.rounds,
            chosen: if mode.keeps_lightgbm(val_auc(manifest), val_auc(&report.manifest)) {
                "lightgbm"
            } else {
                "linear"
            },
        };
        let mut m = if cmp.chosen == "lightgbm" {
            let head = std::fs::read(tmp.join(&report.manifest.head.file))
                .map_err(|e| format!("cannot read the LightGBM head: {e}"))?;
            atomic_write(&out.join(&report.manifest.head.file), &head)?;
            let mut m = manifest.clone();
            m.head = report.manifest.head.clone();
            m.threshold = report.manifest.threshold;
            m.metrics = report.manifest.metrics.clone();
            m.provenance.notes.push(format!(
                "head: LightGBM on the fine-tuned features ({} rounds), val ROC AUC {:.4} against the linear head's {:.4}",
                cmp.lightgbm_rounds, cmp.lightgbm_val_auc, cmp.linear_val_auc
            ));
            m
        } else {
            manifest.clone()
        };
        if let Some(serde_json::Value::Object(t)) = m.training.as_mut() {
            t.insert(
                "heads".into(),
                json!({
                    "linear": {"val_auc": cmp.linear_val_auc, "file": "head.json"},
                    "lightgbm": {"val_auc": cmp.lightgbm_val_auc, "rounds": cmp.lightgbm_rounds,
                                 "note": "early stopping on val, so its val AUC is optimistic by a little"},
                    "chosen": cmp.chosen,
                    "mode": format!("{mode:?}").to_lowercase(),
                }),
            );
        }
        m.validate()?;
        let text = serde_json::to_string_pretty(&m).map_err(|e| e.to_string())? + "\n";
        atomic_write(&out.join(MANIFEST), text.as_bytes())?;
        Ok((m, Some(cmp)))
    });
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_keeps_the_head_with_the_higher_val_auc() {
        assert!(HeadMode::Auto.keeps_lightgbm(0.90, 0.91));
        assert!(!HeadMode::Auto.keeps_lightgbm(0.91, 0.90));
        assert!(!HeadMode::Auto.keeps_lightgbm(0.91, 0.91));
        assert!(!HeadMode::Auto.keeps_lightgbm(0.91, f64::NAN));
        assert!(HeadMode::Auto.keeps_lightgbm(f64::NAN, 0.6));
        assert!(HeadMode::Lightgbm.keeps_lightgbm(0.99, 0.5));
        assert!(!HeadMode::Linear.keeps_lightgbm(0.5, 0.99));
        assert_eq!(HeadMode::parse("lightgbm"), Ok(HeadMode::Lightgbm));
        assert!(HeadMode::parse("svm").is_err());
    }
}
