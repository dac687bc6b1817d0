//! The LightGBM head: fracture probability from backbone features. The booster is not `Send`,
//! so one owner thread holds it and answers predictions over a channel; `Head` is a cheap,
//! cloneable handle usable from any thread.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;

use lightgbm3::Booster;
use serde::{Deserialize, Serialize};

/// How the head's outputs map to P(positive class).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum HeadOutput {
    /// `objective=binary`: one probability per row, that of the positive class.
    Binary,
    /// `objective=multiclass`: one probability per class per row, in class order.
    Multiclass,
}

type Reply = mpsc::Sender<Result<Vec<f64>, String>>;

enum Request {
    Predict {
        rows: Vec<f32>,
        reply: Reply,
    },
    /// TreeSHAP contributions (binary boosters only: lightgbm3 sizes the output for one class).
    Contrib {
        rows: Vec<f32>,
        reply: Reply,
    },
}

/// Handle to a loaded head.
#[derive(Clone)]
pub struct Head {
    tx: mpsc::Sender<Request>,
    /// A fine-tuned model's linear head (then no owner thread runs).
    linear: Option<std::sync::Arc<crate::model::linear::LinearHead>>,
    pub num_features: usize,
    pub num_classes: usize,
    pub output: HeadOutput,
    positive: usize,
}

impl std::fmt::Debug for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Head")
            .field("num_features", &self.num_features)
            .field("num_classes", &self.num_classes)
            .finish()
    }
}

impl Head {
    /// Loads a LightGBM text model on its own owner thread.
    pub fn load(path: &Path, output: HeadOutput, positive: usize) -> crate::error::Result<Head> {
        use crate::error::Kind;
        Self::load_msg(path, output, positive).kind(crate::error::Error::Model)
    }

    fn load_msg(path: &Path, output: HeadOutput, positive: usize) -> Result<Head, String> {
        let path: PathBuf = path.to_path_buf();
        Self::spawn(
            move || {
                let p = path
                    .to_str()
                    .ok_or_else(|| format!("non-UTF-8 path {}", path.display()))?;
                Booster::from_file(p)
                    .map_err(|e| format!("cannot load LightGBM model {}: {e}", path.display()))
            },
            output,
            positive,
        )
    }

    /// Loads a LightGBM text model from a string (tests, embedded models).
    pub fn from_string(
        text: String,
        output: HeadOutput,
        positive: usize,
    ) -> crate::error::Result<Head> {
        use crate::error::Kind;
        Self::from_string_msg(text, output, positive).kind(crate::error::Error::Model)
    }

    fn from_string_msg(text: String, output: HeadOutput, positive: usize) -> Result<Head, String> {
        Self::spawn(
            move || {
                Booster::from_string(&text).map_err(|e| format!("cannot parse LightGBM model: {e}"))
            },
            output,
            positive,
        )
    }

    fn spawn(
        make: impl FnOnce() -> Result<Booster, String> + Send + 'static,
        output: HeadOutput,
        positive: usize,
    ) -> Result<Head, String> {
        let (tx, rx) = mpsc::channel::<Request>();
        let (ready_tx, ready_rx) = mpsc::channel();
        thread::Builder::new()
            .name("lightgbm-head".into())
            .spawn(move || {
                super::lgbm_log::route_to_tracing();
                let booster = match make() {
                    Ok(b) => {
                        let _ = ready_tx
                            .send(Ok((b.num_features() as usize, b.num_classes() as usize)));
                        b
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                // Ends when every handle is dropped.
                for req in rx {
                    match req {
                        Request::Predict { rows, reply } => {
                            let n = booster.num_features();
                            let out = booster
                                .predict_with_params(&rows, n, true, "num_threads=1")
                                .map_err(|e| format!("LightGBM prediction failed: {e}"));
                            let _ = reply.send(out);
                        }
                        Request::Contrib { rows, reply } => {
                            let n = booster.num_features();
                            let out = if booster.num_classes() == 1 {
                                booster
                                    .predict_contrib(&rows, n, true)
                                    .map_err(|e| format!("LightGBM contributions failed: {e}"))
                            } else {
                                Err(
                                    "contributions of multi-class LightGBM heads are not supported"
                                        .into(),
                                )
                            };
                            let _ = reply.send(out);
                        }
                    }
                }
            })
            .map_err(|e| format!("cannot start the head thread: {e}"))?;
        let (num_features, num_classes) = ready_rx
            .recv()
            .map_err(|_| "head thread died while loading".to_string())??;
        match output {
            HeadOutput::Binary if num_classes != 1 => {
                return Err(format!(
                    "manifest says binary head but the LightGBM model has {num_classes} classes"
                ));
            }
            HeadOutput::Multiclass if positive >= num_classes => {
                return Err(format!(
                    "positive class index {positive} but the LightGBM model has {num_classes} classes"
                ));
            }
            _ => {}
        }
        Ok(Head {
            tx,
            linear: None,
            num_features,
            num_classes,
            output,
            positive,
        })
    }

    /// A linear head (fine-tuned models), read from its JSON file.
    pub fn load_linear(path: &Path, positive: usize) -> crate::error::Result<Head> {
        use crate::error::Kind;
        std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read linear head {}: {e}", path.display()))
            .and_then(|t| {
                crate::model::linear::LinearHead::from_json(&t)
                    .map_err(|e| format!("{}: {e}", path.display()))
            })
            .and_then(|h| Head::linear(h, positive))
            .kind(crate::error::Error::Model)
    }

    /// A handle over a linear head.
    pub fn linear(h: crate::model::linear::LinearHead, positive: usize) -> Result<Head, String> {
        h.validate()?;
        if positive >= h.num_classes() {
            return Err(format!(
                "positive class index {positive} but the linear head has {} classes",
                h.num_classes()
            ));
        }
        let (tx, _) = mpsc::channel();
        Ok(Head {
            tx,
            num_features: h.num_features(),
            num_classes: h.num_classes(),
            output: HeadOutput::Multiclass,
            positive,
            linear: Some(std::sync::Arc::new(h)),
        })
    }

    /// The linear head of a fine-tuned model (`None` for LightGBM).
    pub fn linear_head(&self) -> Option<&crate::model::linear::LinearHead> {
        self.linear.as_deref()
    }

    /// TreeSHAP contributions of a binary LightGBM head, in log-odds of the positive class: per
    /// row, one value per feature and the expected value last (they sum to the row's log-odds).
    pub fn contributions(&self, rows: &[f32]) -> Result<Vec<f64>, String> {
        if self.linear.is_some() || self.output != HeadOutput::Binary {
            return Err("contributions need a binary LightGBM head".into());
        }
        if rows.is_empty() || !rows.len().is_multiple_of(self.num_features) {
            return Err(format!(
                "{} values is not a whole number of rows of {} features",
                rows.len(),
                self.num_features
            ));
        }
        let (reply, answer) = mpsc::channel();
        self.tx
            .send(Request::Contrib {
                rows: rows.to_vec(),
                reply,
            })
            .map_err(|_| "head thread has stopped".to_string())?;
        answer
            .recv()
            .map_err(|_| "head thread has stopped".to_string())?
    }

    /// P(positive) for each row of `rows` (row-major, `num_features` values a row).
    pub fn predict(&self, rows: &[f32]) -> crate::error::Result<Vec<f64>> {
        use crate::error::Kind;
        self.predict_msg(rows).kind(crate::error::Error::Model)
    }

    fn predict_msg(&self, rows: &[f32]) -> Result<Vec<f64>, String> {
        let k = self.positive;
        Ok(self
            .predict_probs(rows)?
            .into_iter()
            .map(|p| p[k])
            .collect())
    }

    /// The probability of every class for each row, in class order (a binary head of the
    /// positive class gives the other class 1 - p).
    pub fn predict_probs(&self, rows: &[f32]) -> crate::error::Result<Vec<Vec<f64>>> {
        use crate::error::Kind;
        self.predict_probs_msg(rows)
            .kind(crate::error::Error::Model)
    }

    fn predict_probs_msg(&self, rows: &[f32]) -> Result<Vec<Vec<f64>>, String> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        if !rows.len().is_multiple_of(self.num_features) {
            return Err(format!(
                "{} values is not a whole number of rows of {} features",
                rows.len(),
                self.num_features
            ));
        }
        if let Some(h) = &self.linear {
            return Ok(rows
                .chunks_exact(self.num_features)
                .map(|r| h.probs(r))
                .collect());
        }
        let (reply, answer) = mpsc::channel();
        self.tx
            .send(Request::Predict {
                rows: rows.to_vec(),
                reply,
            })
            .map_err(|_| "head thread has stopped".to_string())?;
        let raw = answer
            .recv()
            .map_err(|_| "head thread has stopped".to_string())??;
        Ok(match self.output {
            HeadOutput::Binary => raw
                .into_iter()
                .map(|p| {
                    let mut v = vec![1.0 - p; 2];
                    v[self.positive.min(1)] = p;
                    v
                })
                .collect(),
            HeadOutput::Multiclass => raw.chunks(self.num_classes).map(|r| r.to_vec()).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy(objective: &str) -> String {
        // Feature 0 decides the class: positive (label 1) when > 0.5.
        let n = 200;
        let x: Vec<f32> = (0..n)
            .flat_map(|i| [(i as f32) / n as f32, ((i * 7) % 13) as f32])
            .collect();
        let y: Vec<f32> = (0..n).map(|i| if i > n / 2 { 1.0 } else { 0.0 }).collect();
        let ds = lightgbm3::Dataset::from_slice(&x, &y, 2, true).unwrap();
        let mut params = serde_json::json!({"objective": objective, "num_iterations": 20, "verbosity": -1, "min_data_in_leaf": 5});
        if objective == "multiclass" {
            params["num_class"] = serde_json::json!(2);
        }
        Booster::train(ds, &params).unwrap().save_string().unwrap()
    }

    #[test]
    fn binary_head_predicts_from_another_thread() {
        let head = Head::from_string(toy("binary"), HeadOutput::Binary, 1).unwrap();
        let h2 = head.clone();
        let p = std::thread::spawn(move || h2.predict(&[0.9, 1.0, 0.1, 1.0]).unwrap())
            .join()
            .unwrap();
        assert_eq!(p.len(), 2);
        assert!(p[0] > 0.8 && p[1] < 0.2, "{p:?}");
        assert!(
            head.predict(&[1.0, 2.0, 3.0])
                .unwrap_err()
                .to_string()
                .contains("whole number")
        );
    }

    #[test]
    fn multiclass_head_reports_the_positive_column() {
        let head = Head::from_string(toy("multiclass"), HeadOutput::Multiclass, 1).unwrap();
        assert_eq!(head.num_classes, 2);
        let p = head.predict(&[0.9, 1.0]).unwrap();
        assert!(p[0] > 0.8, "{p:?}");
        let neg = Head::from_string(toy("multiclass"), HeadOutput::Multiclass, 0).unwrap();
        assert!((neg.predict(&[0.9, 1.0]).unwrap()[0] - (1.0 - p[0])).abs() < 1e-9);
    }

    #[test]
    fn mismatched_manifest_is_explained() {
        let e = Head::from_string(toy("multiclass"), HeadOutput::Binary, 0).unwrap_err();
        assert!(
            matches!(&e, crate::error::Error::Model(m) if m.contains("binary")),
            "{e:?}"
        );
        assert!(Head::from_string("not a model".into(), HeadOutput::Binary, 0).is_err());
    }
}
