//! The linear head of fine-tuned models: softmax over `W x + b` on pooled backbone features,
//! stored as JSON (`head.json`). Plain data, `Send`, no owner thread needed.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LinearHead {
    /// One row of `num_features` weights per class, in class order.
    pub weights: Vec<Vec<f32>>,
    pub bias: Vec<f32>,
}

impl LinearHead {
    pub fn num_features(&self) -> usize {
        self.weights.first().map_or(0, |r| r.len())
    }

    pub fn num_classes(&self) -> usize {
        self.weights.len()
    }

    pub fn validate(&self) -> Result<(), String> {
        let f = self.num_features();
        if self.num_classes() < 2 || f == 0 {
            return Err("a linear head needs two or more classes and one or more features".into());
        }
        if self.weights.iter().any(|r| r.len() != f) || self.bias.len() != self.num_classes() {
            return Err("linear head rows differ in length or the bias does not match".into());
        }
        if self
            .weights
            .iter()
            .flatten()
            .chain(&self.bias)
            .any(|v| !v.is_finite())
        {
            return Err("linear head holds a value that is not finite".into());
        }
        Ok(())
    }

    pub fn from_json(text: &str) -> Result<LinearHead, String> {
        let h: LinearHead =
            serde_json::from_str(text).map_err(|e| format!("not a linear head: {e}"))?;
        h.validate()?;
        Ok(h)
    }

    /// Class probabilities of one feature row (softmax of the logits, computed in f64).
    pub fn probs(&self, row: &[f32]) -> Vec<f64> {
        softmax(&self.logits(row))
    }

    /// The logits `W x + b` of one feature row, in f64.
    pub fn logits(&self, row: &[f32]) -> Vec<f64> {
        self.weights
            .iter()
            .zip(&self.bias)
            .map(|(w, b)| {
                w.iter()
                    .zip(row)
                    .map(|(a, x)| *a as f64 * *x as f64)
                    .sum::<f64>()
                    + *b as f64
            })
            .collect()
    }
}

pub fn softmax(logits: &[f64]) -> Vec<f64> {
    let m = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = logits.iter().map(|l| (l - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.into_iter().map(|v| v / s).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_of_logits() {
        let h = LinearHead {
            weights: vec![vec![1.0, 0.0], vec![0.0, 1.0]],
            bias: vec![0.0, 0.5],
        };
        let p = h.probs(&[2.0, 1.0]);
        let want = 1.0 / (1.0 + (-0.5f64).exp());
        assert!((p[0] - want).abs() < 1e-12, "{p:?}");
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(LinearHead::from_json("{\"weights\":[[1.0]],\"bias\":[0.0]}").is_err());
        assert!(
            LinearHead::from_json("{\"weights\":[[1.0],[2.0,3.0]],\"bias\":[0.0,0.0]}").is_err()
        );
    }
}
