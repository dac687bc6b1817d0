//! The per-image work of an audit (and of a fit, whose groups come from the audit), done for
//! one shard of a folder by one process of a cluster job: file signatures and the CNN's
//! embeddings, written to the shared caches. The audit itself (search, verification, report)
//! then runs once, over the whole folder, from the caches.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use rayon::prelude::*;

use super::{Stage, signature};
use crate::cache::DiskCache;
use crate::engine::Backbone;

#[derive(Debug, Default)]
pub struct Precomputed {
    pub images: usize,
    /// Images whose signature is now cached (readable ones).
    pub signed: usize,
    /// Images whose embedding is now cached.
    pub embedded: usize,
    /// Files that could not be read or embedded, with the reason.
    pub failed: Vec<(PathBuf, String)>,
}

/// Signs and embeds `paths` into the default caches (those `audit_folder` reads).
pub fn precompute_default(
    paths: &[PathBuf],
    backbone: Option<&Backbone>,
    cancel: &AtomicBool,
    progress: &(dyn Fn(Stage, usize, usize) + Sync),
) -> Precomputed {
    let signatures = DiskCache::new(crate::cache::cache_root().join("audit"));
    let features = crate::features::default_cache();
    precompute(paths, backbone, &signatures, &features, cancel, progress)
}

/// Signs `paths` into `signatures` and embeds the readable ones into `features`.
pub fn precompute(
    paths: &[PathBuf],
    backbone: Option<&Backbone>,
    signatures: &DiskCache,
    features: &DiskCache,
    cancel: &AtomicBool,
    progress: &(dyn Fn(Stage, usize, usize) + Sync),
) -> Precomputed {
    let n = paths.len();
    let done = AtomicUsize::new(0);
    progress(Stage::Signatures, 0, n);
    let sigs: Vec<Result<(), String>> = paths
        .par_iter()
        .map(|p| {
            if cancel.load(Ordering::Relaxed) {
                return Err("cancelled".into());
            }
            let r = signature::cached(p, Some(signatures)).map(|_| ());
            let d = done.fetch_add(1, Ordering::Relaxed) + 1;
            if d.is_multiple_of(32) || d == n {
                progress(Stage::Signatures, d, n);
            }
            r
        })
        .collect();
    let mut out = Precomputed {
        images: n,
        ..Default::default()
    };
    let mut readable = Vec::new();
    for (p, r) in paths.iter().zip(sigs) {
        match r {
            Ok(()) => readable.push(p.clone()),
            Err(e) => out.failed.push((p.clone(), e)),
        }
    }
    out.signed = readable.len();
    if let Some(b) = backbone {
        let feats =
            crate::features::cached_features(b, &readable, Some(features), cancel, |d, t| {
                progress(Stage::Embeddings, d, t)
            });
        for (p, f) in readable.iter().zip(feats) {
            match f {
                Ok(_) => out.embedded += 1,
                Err(e) => out.failed.push((p.clone(), e)),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_readable_files_and_names_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("a.png");
        image::RgbImage::from_fn(40, 30, |x, y| image::Rgb([(x * 5) as u8, (y * 7) as u8, 9]))
            .save(&good)
            .unwrap();
        let bad = dir.path().join("b.png");
        std::fs::write(&bad, b"not a png").unwrap();
        let never = AtomicBool::new(false);
        let sigs = DiskCache::new(dir.path().join("sigs"));
        let feats = DiskCache::new(dir.path().join("feats"));
        let r = precompute(
            &[good, bad.clone()],
            None,
            &sigs,
            &feats,
            &never,
            &|_, _, _| {},
        );
        assert_eq!((r.images, r.signed, r.embedded), (2, 1, 0));
        assert_eq!(r.failed.len(), 1);
        assert_eq!(r.failed[0].0, bad);
    }
}
