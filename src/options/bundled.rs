//! The default model bundle, built into the binary so that a copied `osteoai` works on a
//! cluster node with no checkout: unpacked once into the cache folder (content-addressed, so
//! several versions and concurrent first runs do not collide) and loaded from there like any
//! bundle.

use std::path::{Path, PathBuf};

use osteoai_core::cache::{Fnv, cache_root};

/// The files of `models/default`, as they were when this binary was built.
const FILES: &[(&str, &[u8])] = &[
    (
        "manifest.json",
        include_bytes!("../../models/default/manifest.json"),
    ),
    (
        "head.json",
        include_bytes!("../../models/default/head.json"),
    ),
    (
        "backbone.bpk",
        include_bytes!("../../models/default/backbone.bpk"),
    ),
    (
        "WEIGHTS-LICENSE.md",
        include_bytes!("../../models/default/WEIGHTS-LICENSE.md"),
    ),
];

fn digest() -> u64 {
    let mut h = Fnv::new();
    for (name, bytes) in FILES {
        h.write(name.as_bytes());
        h.write_u64(bytes.len() as u64);
        h.write(bytes);
    }
    h.finish()
}

/// True when `dir` holds every file with its size (a finished unpacking).
fn is_complete(dir: &Path) -> bool {
    FILES.iter().all(|(name, bytes)| {
        std::fs::metadata(dir.join(name)).is_ok_and(|m| m.len() == bytes.len() as u64)
    })
}

fn unpack_under(base: &Path, digest: u64) -> Result<PathBuf, String> {
    let dir = base.join(format!("default-{digest:016x}"));
    if is_complete(&dir) {
        return Ok(dir);
    }
    std::fs::create_dir_all(base).map_err(|e| format!("{}: {e}", base.display()))?;
    let tmp = base.join(format!(".default-{digest:016x}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    for (name, bytes) in FILES {
        std::fs::write(tmp.join(name), bytes)
            .map_err(|e| format!("{}: {e}", tmp.join(name).display()))?;
    }
    // Another process may have finished first: then its copy is used and ours goes.
    if std::fs::rename(&tmp, &dir).is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
        if !is_complete(&dir) {
            return Err(format!(
                "cannot put the built-in model at {}",
                dir.display()
            ));
        }
    }
    tracing::info!(dir = %dir.display(), "unpacked the built-in model");
    Ok(dir)
}

/// The built-in default bundle as a folder: the cache folder's copy, else one under the
/// system's temporary folder when the cache folder cannot be written.
pub fn default_bundle() -> Result<PathBuf, String> {
    let d = digest();
    unpack_under(&cache_root().join("bundles"), d).or_else(|first| {
        unpack_under(&std::env::temp_dir().join("osteoai-bundles"), d)
            .map_err(|second| format!("cannot unpack the built-in model: {first}; {second}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpacks_once_and_whole() {
        let base = tempfile::tempdir().unwrap();
        let d = digest();
        let a = unpack_under(base.path(), d).unwrap();
        assert!(is_complete(&a));
        for (name, bytes) in FILES {
            assert_eq!(&std::fs::read(a.join(name)).unwrap(), bytes);
        }
        // A damaged copy (cut short) is replaced... by a fresh unpacking into the same place
        // only once it is removed; a complete one is reused as is.
        let mtime = std::fs::metadata(a.join("head.json"))
            .unwrap()
            .modified()
            .unwrap();
        let b = unpack_under(base.path(), d).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            std::fs::metadata(b.join("head.json"))
                .unwrap()
                .modified()
                .unwrap(),
            mtime
        );
        let leftovers: Vec<_> = std::fs::read_dir(base.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }
}
