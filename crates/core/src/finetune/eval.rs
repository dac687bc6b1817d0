//! Scoring images with the model being fine-tuned, exactly as its bundle will score them: the
//! inference input pipeline, the backbone (on the CPU kernels when the device is `cpu`), the
//! pooled head features (mirror-averaged when the recipe says so) and the linear head.

use std::path::PathBuf;

use burn::module::Module;
use burn::tensor::{Tensor, TensorData};
use rayon::prelude::*;

use super::net::Classifier;
use crate::decode::model_input::Preprocess;
use crate::device::Selected;
use crate::model::effnet::{FeatureSpec, Pool, Tap};
use crate::model::linear::LinearHead;

/// The feature recipe of a fine-tuned bundle.
pub fn feature_spec(flip_average: bool) -> FeatureSpec {
    FeatureSpec {
        taps: vec![Tap::Head],
        pools: vec![Pool::Avg],
        flip_average,
    }
}

/// The linear head of a classifier, as a bundle stores it.
pub fn linear_head(model: &Classifier) -> LinearHead {
    let (weights, bias) = model.linear_weights();
    LinearHead { weights, bias }
}

/// Class probabilities of each image (an error for a file that does not decode).
pub fn predict(
    model: &Classifier,
    device: &Selected,
    pre: &Preprocess,
    paths: &[PathBuf],
    flip_average: bool,
    batch: usize,
) -> Result<Vec<Result<Vec<f64>, String>>, String> {
    let head = linear_head(model);
    let spec = feature_spec(flip_average);
    let s = pre.size as usize;
    // Without autodiff, batch norms (train mode while learning) folded: the bundle's network.
    let plain = model.valid().folded();
    let native = if device.native {
        Some(crate::model::native::pack(&plain.backbone)?)
    } else {
        None
    };
    let mut out = Vec::with_capacity(paths.len());
    for chunk in paths.chunks(batch.max(1)) {
        let decoded: Vec<Result<Vec<f32>, String>> = chunk
            .par_iter()
            .map(|p| pre.load(p).map_err(|e| e.0))
            .collect();
        let mut inputs = Vec::new();
        let mut ok = Vec::new();
        for (i, d) in decoded.iter().enumerate() {
            if let Ok(v) = d {
                inputs.extend_from_slice(v);
                ok.push(i);
            }
        }
        let feats = if ok.is_empty() {
            Vec::new()
        } else if let Some(net) = &native {
            crate::model::native::features(net, &inputs, ok.len(), s, &spec)?
        } else {
            let m = &plain;
            let dev = m.fc.weight.val().device();
            let x = Tensor::<4>::from_data(TensorData::new(inputs, [ok.len(), 3, s, s]), &dev);
            m.backbone
                .forward_features(x, &spec)
                .into_data()
                .try_to_vec::<f32>()
                .map_err(|e| format!("cannot read features back: {e:?}"))?
        };
        let dim = spec.dim();
        let mut rows = feats.chunks_exact(dim);
        for d in decoded {
            out.push(match d {
                Ok(_) => Ok(head.probs(rows.next().expect("one row per decoded image"))),
                Err(e) => Err(e),
            });
        }
    }
    Ok(out)
}

/// Mean cross-entropy of probabilities against labels (clamped away from 0).
pub fn log_loss(probs: &[Vec<f64>], labels: &[usize]) -> f64 {
    if probs.is_empty() {
        return f64::NAN;
    }
    probs
        .iter()
        .zip(labels)
        .map(|(p, &l)| -p[l].max(1e-12).ln())
        .sum::<f64>()
        / probs.len() as f64
}
