//! Verification results kept between audits of a folder, keyed by the content of both images
//! (their pixel hashes) and the verification parameters, so that a second audit (or the fit's,
//! or the dashboard's) only verifies pairs it has not seen. One file per folder, replaced
//! atomically; a damaged or foreign file reads as empty.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::cache::Fnv;
use osteoai_vision::verify::{Affine, Verdict, VerifyParams};

const MAGIC: &[u8; 8] = b"OSTPAIR1";

type Key = ([u8; 16], [u8; 16]);

/// Cached verdicts of one folder.
pub struct PairCache {
    path: Option<PathBuf>,
    map: HashMap<Key, Verdict>,
    dirty: bool,
}

fn params_hash(p: &VerifyParams) -> u64 {
    let mut h = Fnv::new();
    h.write(format!("{p:?}").as_bytes());
    h.write(b"verify-v3");
    h.finish()
}

impl PairCache {
    /// The cache of `root` under `dir` (None: an in-memory cache that is never saved).
    pub fn open(dir: Option<&Path>, root: &Path, params: &VerifyParams) -> PairCache {
        let path = dir.map(|d| {
            let mut h = Fnv::new();
            let abs = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
            h.write(abs.as_os_str().as_encoded_bytes());
            h.write_u64(params_hash(params));
            d.join(format!("{:016x}.bin", h.finish()))
        });
        let map = path
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| decode(&b))
            .unwrap_or_default();
        PairCache {
            path,
            map,
            dirty: false,
        }
    }

    fn key(a: &[u8; 16], b: &[u8; 16]) -> Key {
        if a <= b { (*a, *b) } else { (*b, *a) }
    }

    /// A cached verdict for the pair (in either order: mirrored and transform are not kept).
    pub fn get(&self, a: &[u8; 16], b: &[u8; 16]) -> Option<Verdict> {
        self.map.get(&Self::key(a, b)).copied()
    }

    pub fn put(&mut self, a: &[u8; 16], b: &[u8; 16], v: &Verdict) {
        self.map.insert(Self::key(a, b), *v);
        self.dirty = true;
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Writes the cache when it changed; failures are ignored (it is a cache).
    pub fn save(&mut self) {
        let Some(path) = &self.path else { return };
        if !self.dirty {
            return;
        }
        if let Some(d) = path.parent() {
            let _ = std::fs::create_dir_all(d);
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        if std::fs::write(&tmp, encode(&self.map)).is_ok() && std::fs::rename(&tmp, path).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        self.dirty = false;
    }
}

fn encode(map: &HashMap<Key, Verdict>) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + map.len() * 64);
    out.extend(MAGIC);
    out.extend((map.len() as u64).to_le_bytes());
    for ((a, b), v) in map {
        out.extend(a);
        out.extend(b);
        out.extend(v.matches.to_le_bytes());
        out.extend(v.inliers.to_le_bytes());
        for f in [v.spread, v.ncc, v.pearson, v.detail, v.overlap] {
            out.extend(f.to_le_bytes());
        }
        out.push(v.mirrored as u8 | (v.verified as u8) << 1);
    }
    out
}

fn decode(b: &[u8]) -> Option<HashMap<Key, Verdict>> {
    const REC: usize = 32 + 8 + 20 + 1;
    let body = b.strip_prefix(MAGIC)?;
    let n = u64::from_le_bytes(body.get(..8)?.try_into().ok()?) as usize;
    let body = &body[8..];
    if body.len() != n.checked_mul(REC)? {
        return None;
    }
    let mut map = HashMap::with_capacity(n);
    for r in body.chunks_exact(REC) {
        let a: [u8; 16] = r[..16].try_into().ok()?;
        let k: [u8; 16] = r[16..32].try_into().ok()?;
        let u = |o: usize| u32::from_le_bytes(r[o..o + 4].try_into().unwrap());
        let f = |o: usize| f32::from_le_bytes(r[o..o + 4].try_into().unwrap());
        let flags = r[60];
        map.insert(
            (a, k),
            Verdict {
                matches: u(32),
                inliers: u(36),
                spread: f(40),
                ncc: f(44),
                pearson: f(48),
                detail: f(52),
                overlap: f(56),
                mirrored: flags & 1 != 0,
                transform: Affine::IDENTITY,
                verified: flags & 2 != 0,
            },
        );
    }
    Some(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_in_either_order_and_damage_is_empty() {
        let t = tempfile::tempdir().unwrap();
        let p = VerifyParams::default();
        let mut c = PairCache::open(Some(t.path()), Path::new("/some/folder"), &p);
        assert!(c.is_empty());
        let v = Verdict {
            matches: 40,
            inliers: 30,
            spread: 0.3,
            ncc: 0.97,
            pearson: 0.9,
            detail: 0.8,
            overlap: 0.9,
            mirrored: true,
            transform: Affine::IDENTITY,
            verified: true,
        };
        c.put(&[1; 16], &[2; 16], &v);
        c.save();
        let c2 = PairCache::open(Some(t.path()), Path::new("/some/folder"), &p);
        assert_eq!(c2.get(&[2; 16], &[1; 16]), Some(v));
        // Other parameters, other cache.
        let other = VerifyParams {
            min_detail: 0.1,
            ..p
        };
        assert!(PairCache::open(Some(t.path()), Path::new("/some/folder"), &other).is_empty());
        for e in std::fs::read_dir(t.path()).unwrap().flatten() {
            std::fs::write(e.path(), b"OSTPAIR1 garbage").unwrap();
        }
        assert!(PairCache::open(Some(t.path()), Path::new("/some/folder"), &p).is_empty());
    }
}
