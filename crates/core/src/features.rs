//! Backbone features for many files, with an on-disk cache so that training again (new seed,
//! new head parameters) does not run the CNN again.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use crate::cache::{DiskCache, cache_root, file_key};
use crate::engine::Backbone;
use crate::model::effnet::FeatureSpec;

/// Features of `paths` in order (`Err` per file that failed), reading the cache first.
/// `progress(done, total)` is called as files complete.
pub fn cached_features(
    backbone: &Backbone,
    paths: &[PathBuf],
    cache: Option<&DiskCache>,
    cancel: &AtomicBool,
    progress: impl FnMut(usize, usize),
) -> Vec<Result<Vec<f32>, String>> {
    let recipe = (&backbone.features, backbone.fingerprint);
    cached_features_as(backbone, recipe, paths, cache, cancel, progress)
}

/// The classifier's features of `paths` when every one of them is in `cache` (nothing is
/// computed), else `None`.
pub fn all_cached(
    backbone: &Backbone,
    paths: &[PathBuf],
    cache: Option<&DiskCache>,
) -> Option<Vec<Vec<f32>>> {
    let cache = cache?;
    let dim = backbone.feature_dim();
    paths
        .iter()
        .map(|p| {
            let k = file_key(p, backbone.fingerprint)?;
            cache.get_f32(k).filter(|v| v.len() == dim)
        })
        .collect()
}

/// `cached_features` with another recipe and its cache fingerprint (`Backbone::one_forward`).
pub fn cached_features_as(
    backbone: &Backbone,
    (spec, fingerprint): (&FeatureSpec, u64),
    paths: &[PathBuf],
    cache: Option<&DiskCache>,
    cancel: &AtomicBool,
    mut progress: impl FnMut(usize, usize),
) -> Vec<Result<Vec<f32>, String>> {
    let dim = spec.dim();
    let mut out: Vec<Result<Vec<f32>, String>> = vec![Err("cancelled".into()); paths.len()];
    let keys: Vec<Option<u64>> = paths.iter().map(|p| file_key(p, fingerprint)).collect();
    let mut todo = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        match (cache, key) {
            (Some(c), Some(k)) => match c.get_f32(*k).filter(|v| v.len() == dim) {
                Some(v) => out[i] = Ok(v),
                None => todo.push(i),
            },
            _ => todo.push(i),
        }
    }
    let total = paths.len();
    let mut done = total - todo.len();
    progress(done, total);
    let todo_paths: Vec<PathBuf> = todo.iter().map(|&i| paths[i].clone()).collect();
    backbone.for_each_batch_as(spec, &todo_paths, cancel, |b| {
        for (row, &j) in b.indices.iter().enumerate() {
            let v = b.features[row * dim..(row + 1) * dim].to_vec();
            let i = todo[j];
            if let (Some(c), Some(k)) = (cache, keys[i]) {
                c.put_f32(k, &v);
            }
            out[i] = Ok(v);
        }
        done += b.indices.len() + b.failed.len();
        for (j, e) in b.failed {
            out[todo[j]] = Err(e);
        }
        progress(done, total);
    });
    out
}

/// The default feature cache folder.
pub fn default_cache() -> DiskCache {
    DiskCache::new(cache_root().join("features"))
}
