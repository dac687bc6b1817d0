//! Small on-disk caches keyed by file identity (path + size + mtime) and a salt (model,
//! parameters): backbone features for training, scores for the dashboard, thumbnails.
//! Writes are atomic (temporary file, then rename); a corrupt entry reads as a miss.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

/// FNV-1a, 64 bit: stable across builds and platforms (unlike `DefaultHasher`).
#[derive(Clone, Copy, Debug)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Self::new()
    }
}

impl Fnv {
    pub fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= b as u64;
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
    pub fn write_u64(&mut self, v: u64) {
        self.write(&v.to_le_bytes());
    }
    pub fn finish(&self) -> u64 {
        self.0
    }
}

/// The cache folder for osteoai: `$OSTEOAI_CACHE` (e.g. a folder on a cluster's shared file
/// system, so that the shards of a job fill one cache), else `$XDG_CACHE_HOME/osteoai`, else
/// `~/.cache/osteoai`, else a folder under the system temporary directory.
pub fn cache_root() -> PathBuf {
    use etcetera::BaseStrategy;
    if let Some(p) = std::env::var_os("OSTEOAI_CACHE").filter(|v| !v.is_empty()) {
        return PathBuf::from(p);
    }
    match etcetera::choose_base_strategy() {
        Ok(base) => base.cache_dir().join("osteoai"),
        Err(_) => std::env::temp_dir().join("osteoai-cache"),
    }
}

/// The configuration folder (`$XDG_CONFIG_HOME/osteoai`, else `~/.config/osteoai`).
pub fn config_root() -> Option<PathBuf> {
    use etcetera::BaseStrategy;
    etcetera::choose_base_strategy()
        .ok()
        .map(|b| b.config_dir().join("osteoai"))
}

/// The state folder for logs (`$XDG_STATE_HOME/osteoai`, else `~/.local/state/osteoai`).
pub fn state_root() -> Option<PathBuf> {
    use etcetera::BaseStrategy;
    let base = etcetera::choose_base_strategy().ok()?;
    let state = base
        .state_dir()
        .unwrap_or_else(|| base.home_dir().join(".local/state"));
    Some(state.join("osteoai"))
}

/// Identity of a file as it is now: absolute path, size and modification time.
pub fn file_key(path: &Path, salt: u64) -> Option<u64> {
    let meta = std::fs::metadata(path).ok()?;
    let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mtime = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
    let mut h = Fnv::new();
    h.write(abs.as_os_str().as_encoded_bytes());
    h.write_u64(meta.len());
    h.write_u64(mtime.as_secs());
    h.write_u64(mtime.subsec_nanos() as u64);
    h.write_u64(salt);
    Some(h.finish())
}

/// A folder of small binary entries, one file per key.
#[derive(Clone, Debug)]
pub struct DiskCache {
    dir: PathBuf,
}

impl DiskCache {
    pub fn new(dir: PathBuf) -> Self {
        DiskCache { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, key: u64) -> PathBuf {
        let name = format!("{key:016x}");
        self.dir.join(&name[..2]).join(name)
    }

    /// Whether an entry is stored for `key` (without reading it).
    pub fn contains(&self, key: u64) -> bool {
        self.path(key).is_file()
    }

    pub fn get_bytes(&self, key: u64) -> Option<Vec<u8>> {
        std::fs::read(self.path(key)).ok()
    }

    /// Stores bytes atomically; failures (read-only disk, full disk) are ignored: it is a cache.
    pub fn put_bytes(&self, key: u64, bytes: &[u8]) {
        let path = self.path(key);
        let Some(dir) = path.parent() else { return };
        if std::fs::create_dir_all(dir).is_err() {
            return;
        }
        let tmp = dir.join(format!(".{key:016x}.{}.tmp", std::process::id()));
        if std::fs::write(&tmp, bytes).is_ok() && std::fs::rename(&tmp, &path).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }

    /// f32 values with a length prefix, so that a truncated entry reads as a miss.
    pub fn get_f32(&self, key: u64) -> Option<Vec<f32>> {
        let b = self.get_bytes(key)?;
        let n = u32::from_le_bytes(b.get(..4)?.try_into().ok()?) as usize;
        let body = b.get(4..)?;
        if body.len() != n * 4 {
            return None;
        }
        Some(
            body.chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect(),
        )
    }

    pub fn put_f32(&self, key: u64, values: &[f32]) {
        let mut b = Vec::with_capacity(4 + values.len() * 4);
        b.extend((values.len() as u32).to_le_bytes());
        for v in values {
            b.extend(v.to_le_bytes());
        }
        self.put_bytes(key, &b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption_is_a_miss() {
        let t = tempfile::tempdir().unwrap();
        let c = DiskCache::new(t.path().join("c"));
        c.put_f32(42, &[1.0, -2.5, 3.25]);
        assert_eq!(c.get_f32(42), Some(vec![1.0, -2.5, 3.25]));
        assert_eq!(c.get_f32(43), None);
        assert!(c.contains(42) && !c.contains(43));
        let p = c.path(42);
        let mut b = std::fs::read(&p).unwrap();
        b.pop();
        std::fs::write(&p, b).unwrap();
        assert_eq!(c.get_f32(42), None);
    }

    #[test]
    fn file_key_changes_with_content_and_salt() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("a.png");
        std::fs::write(&f, b"one").unwrap();
        let k1 = file_key(&f, 1).unwrap();
        assert_eq!(file_key(&f, 1), Some(k1));
        assert_ne!(file_key(&f, 2), Some(k1));
        std::fs::write(&f, b"three").unwrap();
        assert_ne!(file_key(&f, 1), Some(k1));
        assert_eq!(file_key(&t.path().join("missing"), 1), None);
    }

    #[test]
    fn fnv_is_stable() {
        assert_eq!(Fnv::new().finish(), 0xcbf2_9ce4_8422_2325);
        let mut a = Fnv::new();
        a.write(b"a");
        assert_eq!(a.finish(), 0xaf63_dc4c_8601_ec8c);
    }
}
