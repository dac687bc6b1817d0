//! The images a fine-tune learns from, decoded once and kept in memory at a little more than
//! the model's input size (augmentation crops and rotates from these), and the loss weights.

use std::path::PathBuf;

use rayon::prelude::*;

use crate::decode::model_input::Pixels;
use crate::decode::model_input::Preprocess;

/// One labelled image, decoded.
pub struct Sample {
    pub path: PathBuf,
    pub label: usize,
    pub pixels: Pixels,
}

/// Side of the kept copy: 8/7 of the input (at least 256), as torchvision's recipes keep.
pub fn keep_side(size: u32) -> u32 {
    (size * 8).div_ceil(7).max(256)
}

/// Decodes `(path, label)` pairs in parallel; files that fail come back as errors by path.
pub fn load(items: &[(PathBuf, usize)], pre: &Preprocess) -> (Vec<Sample>, Vec<(PathBuf, String)>) {
    let side = keep_side(pre.size);
    let keep_pre = Preprocess {
        size: side,
        ..pre.clone()
    };
    let decoded: Vec<Result<Sample, (PathBuf, String)>> = items
        .par_iter()
        .map(|(path, label)| {
            let bytes =
                crate::decode::imaging::read_limited(path).map_err(|e| (path.clone(), e.0))?;
            let px = keep_pre
                .decode_pixels(&bytes)
                .map_err(|e| (path.clone(), e.0))?;
            let data = crate::decode::model_input::resize(&px, side, pre.filter);
            Ok(Sample {
                path: path.clone(),
                label: *label,
                pixels: Pixels {
                    width: side,
                    height: side,
                    channels: px.channels,
                    data,
                },
            })
        })
        .collect();
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for d in decoded {
        match d {
            Ok(s) => ok.push(s),
            Err(e) => bad.push(e),
        }
    }
    (ok, bad)
}

/// Class weights `n / (classes * n_c)` (balanced cross-entropy); 0 for an absent class.
pub fn class_weights(labels: &[usize], classes: usize) -> Vec<f32> {
    let mut counts = vec![0usize; classes];
    for &l in labels {
        if l < classes {
            counts[l] += 1;
        }
    }
    let n = labels.len() as f32;
    counts
        .iter()
        .map(|&c| {
            if c == 0 {
                0.0
            } else {
                n / (classes as f32 * c as f32)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balanced_weights() {
        let w = class_weights(&[0, 0, 0, 1], 2);
        assert!((w[0] - 4.0 / 6.0).abs() < 1e-6 && (w[1] - 2.0).abs() < 1e-6);
        assert_eq!(keep_side(224), 256);
        assert_eq!(keep_side(384), 439);
    }
}
