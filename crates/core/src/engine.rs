//! The inference engine: decode and preprocess in parallel (bounded: two batches in flight),
//! run the backbone batch by batch on the selected device, then the head. Results stream out
//! per image, in input order; a bad file becomes an error for that file only; a cancel flag
//! stops the run between batches.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use burn::tensor::{Tensor, TensorData};
use rayon::prelude::*;

use crate::cache::Fnv;
use crate::decode::model_input::Preprocess;
use crate::device::Selected;
use crate::model::Manifest;
use crate::model::bundle::{Bundle, MANIFEST};
use crate::model::effnet::{EfficientNetLite0, FeatureSpec};
use crate::model::import::load_burnpack_arch;

/// Images per backbone batch on a GPU unless asked otherwise (fills the device; the decoders
/// work on the next batch meanwhile).
pub const GPU_BATCH: usize = 32;
/// Images per backbone batch on the CPU unless asked otherwise: the kernels run as fast at 8 as
/// at 16 (`scripts/bench.sh`), and smaller batches show results sooner and hold less memory.
pub const CPU_BATCH: usize = 8;

/// The batch size for a device.
pub fn default_batch(device: &Selected) -> usize {
    if device.is_gpu { GPU_BATCH } else { CPU_BATCH }
}

/// One batch's outcome: features of the images that decoded, errors for those that did not.
pub struct Batch {
    /// Input indices of the rows of `features`.
    pub indices: Vec<usize>,
    /// Row-major, `dim` values per row.
    pub features: Vec<f32>,
    pub dim: usize,
    pub failed: Vec<(usize, String)>,
}

/// The feature extractor: backbone weights on a device, with the preprocessing and feature
/// recipe of a manifest.
pub struct Backbone {
    pub net: EfficientNetLite0,
    /// The same weights packed for osteoai's CPU kernels, when the device is `cpu`.
    pub native: Option<osteoai_kernels::Net>,
    pub preprocess: Preprocess,
    pub features: FeatureSpec,
    pub device: Selected,
    pub batch_size: usize,
    /// Identifies weights + preprocessing + feature recipe (feature cache keys).
    pub fingerprint: u64,
}

impl Backbone {
    /// Loads the backbone a manifest names (weights relative to `dir`).
    pub fn load(
        dir: &Path,
        manifest: &Manifest,
        device: Selected,
    ) -> crate::error::Result<Backbone> {
        use crate::error::Kind;
        Self::load_msg(dir, manifest, device).kind(crate::error::Error::Model)
    }

    fn load_msg(dir: &Path, manifest: &Manifest, device: Selected) -> Result<Backbone, String> {
        let weights = dir.join(&manifest.backbone.weights);
        if !weights.is_file() {
            return Err(format!(
                "backbone weights {} are missing (named in {})",
                weights.display(),
                dir.join(MANIFEST).display()
            ));
        }
        let net = load_burnpack_arch(
            &weights,
            manifest.arch()?,
            manifest.backbone.folded,
            &device.device,
        )?;
        let batch_size = default_batch(&device);
        let native = if device.native {
            Some(crate::model::native::pack(&net)?)
        } else {
            None
        };
        let mut h = Fnv::new();
        h.write(&std::fs::read(&weights).unwrap_or_default());
        // The input pipeline's version: cached features from another one are not reused.
        h.write(crate::decode::model_input::VERSION.as_bytes());
        h.write(
            serde_json::to_string(&manifest.preprocess)
                .unwrap_or_default()
                .as_bytes(),
        );
        h.write(
            serde_json::to_string(&manifest.backbone.features)
                .unwrap_or_default()
                .as_bytes(),
        );
        Ok(Backbone {
            net,
            native,
            preprocess: manifest.preprocess.clone(),
            features: manifest.backbone.features.clone(),
            device,
            batch_size,
            fingerprint: h.finish(),
        })
    }

    pub fn feature_dim(&self) -> usize {
        self.features.dim()
    }

    /// The recipe without the mirror average (one forward an image; the audit's embeddings
    /// when the classifier's features are not cached) and its cache fingerprint; `None` when
    /// the recipe already takes one forward.
    pub fn one_forward(&self) -> Option<(FeatureSpec, u64)> {
        if !self.features.flip_average {
            return None;
        }
        let mut h = Fnv::new();
        h.write_u64(self.fingerprint);
        h.write(b"one forward, no mirror average");
        Some((
            FeatureSpec {
                flip_average: false,
                ..self.features.clone()
            },
            h.finish(),
        ))
    }

    /// Backbone features for preprocessed images (row-major `[n, 3, s, s]` values).
    pub fn features_of_inputs(&self, inputs: Vec<f32>, n: usize) -> Result<Vec<f32>, String> {
        self.features_of_inputs_as(&self.features, inputs, n)
    }

    /// The same with another feature recipe (e.g. without the mirror average).
    pub fn features_of_inputs_as(
        &self,
        spec: &FeatureSpec,
        inputs: Vec<f32>,
        n: usize,
    ) -> Result<Vec<f32>, String> {
        let s = self.preprocess.size as usize;
        let device = &self.device.device;
        let backbone = &self.net;
        if let Some(native) = &self.native {
            let run = std::panic::AssertUnwindSafe(|| {
                crate::model::native::features(native, &inputs, n, s, spec)
            });
            return match std::panic::catch_unwind(run) {
                Ok(r) => r,
                Err(p) => Err(format!("backbone failed: {}", panic_text(&p))),
            };
        }
        let run = std::panic::AssertUnwindSafe(|| {
            let x = Tensor::<4>::from_data(TensorData::new(inputs, [n, 3, s, s]), device);
            backbone
                .forward_features(x, spec)
                .into_data()
                .try_to_vec::<f32>()
        });
        match std::panic::catch_unwind(run) {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(format!("cannot read features back from the device: {e:?}")),
            Err(p) => Err(format!("backbone failed: {}", panic_text(&p))),
        }
    }

    /// Runs the backbone over `paths` and hands each batch to `f`, in order. Returns false when
    /// cancelled before the end.
    pub fn for_each_batch(
        &self,
        paths: &[PathBuf],
        cancel: &AtomicBool,
        f: impl FnMut(Batch),
    ) -> bool {
        self.for_each_batch_as(&self.features, paths, cancel, f)
    }

    /// The same with another feature recipe.
    pub fn for_each_batch_as(
        &self,
        spec: &FeatureSpec,
        paths: &[PathBuf],
        cancel: &AtomicBool,
        mut f: impl FnMut(Batch),
    ) -> bool {
        let pre = &self.preprocess;
        let bs = self.batch_size.max(1);
        let dim = spec.dim();
        let (tx, rx) = mpsc::sync_channel::<(usize, Vec<Result<Vec<f32>, String>>)>(1);
        let mut completed = true;
        std::thread::scope(|s| {
            s.spawn(move || {
                for (ci, chunk) in paths.chunks(bs).enumerate() {
                    if cancel.load(Ordering::Relaxed) {
                        break;
                    }
                    let decoded: Vec<_> = chunk
                        .par_iter()
                        .map(|p| pre.load(p).map_err(|e| e.0))
                        .collect();
                    if tx.send((ci * bs, decoded)).is_err() {
                        break;
                    }
                }
            });
            let rx = rx; // dropped at the end of this block, which unblocks the decoder
            for (start, decoded) in rx.iter() {
                if cancel.load(Ordering::Relaxed) {
                    completed = false;
                    break;
                }
                let mut batch = Batch {
                    indices: Vec::new(),
                    features: Vec::new(),
                    dim,
                    failed: Vec::new(),
                };
                let mut inputs = Vec::with_capacity(decoded.len() * pre.len());
                for (k, d) in decoded.into_iter().enumerate() {
                    match d {
                        Ok(v) => {
                            batch.indices.push(start + k);
                            inputs.extend(v);
                        }
                        Err(e) => batch.failed.push((start + k, e)),
                    }
                }
                if !batch.indices.is_empty() {
                    match self.features_of_inputs_as(spec, inputs, batch.indices.len()) {
                        Ok(v) => batch.features = v,
                        Err(e) => {
                            batch
                                .failed
                                .extend(batch.indices.drain(..).map(|i| (i, e.clone())));
                            batch.failed.sort_by_key(|x| x.0);
                        }
                    }
                }
                f(batch);
            }
            if cancel.load(Ordering::Relaxed) {
                completed = false;
            }
        });
        completed
    }
}

/// A whole model on a device: backbone, head and manifest.
pub struct Engine {
    pub backbone: Backbone,
    pub bundle: Bundle,
    /// Backbone features kept by file identity (shared with `train`, `fit` and `audit`); `None`
    /// computes every time (benchmarks).
    pub features_cache: Option<crate::cache::DiskCache>,
}

impl Engine {
    /// Loads the bundle in `dir` on `device`.
    pub fn load(dir: &Path, device: Selected) -> crate::error::Result<Engine> {
        let bundle = Bundle::load(dir)?;
        let backbone = Backbone::load(dir, &bundle.manifest, device)?;
        Ok(Engine {
            backbone,
            bundle,
            features_cache: None,
        })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.bundle.manifest
    }

    /// P(positive) for each path, streamed as `(index, result)`: images whose features are in
    /// the cache first, then the others batch by batch, each in input order.
    pub fn classify_stream(
        &self,
        paths: &[PathBuf],
        cancel: &AtomicBool,
        mut sink: impl FnMut(usize, Result<f64, String>),
    ) -> bool {
        let k = self.manifest().classes.positive_index().unwrap_or(0);
        self.classify_probs_stream(paths, cancel, |i, r| sink(i, r.map(|p| p[k])))
    }

    /// The probability of every class for each path, streamed like `classify_stream`.
    pub fn classify_probs_stream(
        &self,
        paths: &[PathBuf],
        cancel: &AtomicBool,
        mut sink: impl FnMut(usize, Result<Vec<f64>, String>),
    ) -> bool {
        let dim = self.backbone.feature_dim();
        let fingerprint = self.backbone.fingerprint;
        let mut todo: Vec<usize> = Vec::new();
        let mut keys: Vec<Option<u64>> = vec![None; paths.len()];
        match &self.features_cache {
            Some(cache) => {
                let (mut idx, mut rows) = (Vec::new(), Vec::new());
                for (i, p) in paths.iter().enumerate() {
                    keys[i] = crate::cache::file_key(p, fingerprint);
                    match keys[i]
                        .and_then(|k| cache.get_f32(k))
                        .filter(|v| v.len() == dim)
                    {
                        Some(v) => {
                            idx.push(i);
                            rows.extend(v);
                        }
                        None => todo.push(i),
                    }
                }
                for (chunk, rows) in idx.chunks(256).zip(rows.chunks(256 * dim)) {
                    match self.bundle.head.predict_probs(rows) {
                        Ok(s) => chunk.iter().zip(s).for_each(|(&i, p)| sink(i, Ok(p))),
                        Err(e) => chunk.iter().for_each(|&i| sink(i, Err(e.to_string()))),
                    }
                }
            }
            None => todo = (0..paths.len()).collect(),
        }
        let todo_paths: Vec<PathBuf> = todo.iter().map(|&i| paths[i].clone()).collect();
        self.backbone.for_each_batch(&todo_paths, cancel, |b| {
            if let Some(cache) = &self.features_cache {
                for (row, &j) in b.indices.iter().enumerate() {
                    if let Some(k) = keys[todo[j]] {
                        cache.put_f32(k, &b.features[row * dim..(row + 1) * dim]);
                    }
                }
            }
            let scores = self.bundle.head.predict_probs(&b.features);
            let mut out: Vec<(usize, Result<Vec<f64>, String>)> =
                b.failed.into_iter().map(|(i, e)| (i, Err(e))).collect();
            match scores {
                Ok(s) => out.extend(b.indices.iter().copied().zip(s.into_iter().map(Ok))),
                Err(e) => out.extend(b.indices.iter().map(|&i| (i, Err(e.to_string())))),
            }
            out.sort_by_key(|x| x.0);
            for (j, r) in out {
                sink(todo[j], r);
            }
        })
    }

    /// Whether `path`'s features are in the features cache: classifying it then runs only the
    /// head (a throughput that counts it would not be the backbone's).
    pub fn has_cached_features(&self, path: &Path) -> bool {
        self.features_cache.as_ref().is_some_and(|c| {
            crate::cache::file_key(path, self.backbone.fingerprint).is_some_and(|k| c.contains(k))
        })
    }

    /// P(positive) for every path (no cancellation).
    pub fn classify(&self, paths: &[PathBuf]) -> Vec<Result<f64, String>> {
        let mut out: Vec<Result<f64, String>> = vec![Err("not classified".into()); paths.len()];
        let never = AtomicBool::new(false);
        self.classify_stream(paths, &never, |i, r| out[i] = r);
        out
    }
}

/// The class a manifest's threshold predicts for a score.
pub fn predicted_class(m: &crate::model::Manifest, p: f64) -> &str {
    predicted_class_at(&m.classes, m.threshold, p)
}

/// The class a model predicts from all class probabilities: two classes by the threshold on
/// the positive one, more by the largest probability.
pub fn predicted_of(m: &crate::model::Manifest, probs: &[f64]) -> usize {
    crate::metrics::predicted(probs, m.classes.positive_index().unwrap_or(0), m.threshold)
}

/// The positive class at or above `threshold`, else the first other class.
pub fn predicted_class_at(classes: &crate::labels::ClassSpec, threshold: f64, p: f64) -> &str {
    let pos = classes.positive_index().unwrap_or(0);
    if p >= threshold {
        &classes.names[pos]
    } else {
        classes
            .names
            .iter()
            .enumerate()
            .find(|(i, _)| *i != pos)
            .map(|(_, n)| n.as_str())
            .unwrap_or("")
    }
}

pub fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file's features count as cached once a classification has stored them (never without
    /// a features cache), and they give the score the backbone gave.
    #[test]
    fn features_once_computed_are_cached_and_give_the_same_score() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("a.png");
        crate::fixtures::radiograph(7, true, 160, 128)
            .save(&p)
            .unwrap();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/lite0");
        let mut e = Engine::load(&dir, crate::device::cpu()).expect("the frozen bundle loads");
        assert!(!e.has_cached_features(&p), "no features cache");
        e.features_cache = Some(crate::cache::DiskCache::new(t.path().join("features")));
        assert!(!e.has_cached_features(&p));
        let computed = e.classify(std::slice::from_ref(&p));
        assert!(e.has_cached_features(&p));
        assert!(!e.has_cached_features(&t.path().join("b.png")));
        let from_cache = e.classify(&[p]);
        assert!(computed[0].is_ok(), "{computed:?}");
        assert_eq!(computed, from_cache);
    }
}
