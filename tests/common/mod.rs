//! Helpers shared by the integration tests: the real binary with an isolated cache.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `osteoai` binary, run from the repository root with its own cache folder.
pub fn osteoai(cache: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_osteoai"));
    c.current_dir(root())
        .env("XDG_CACHE_HOME", cache)
        .env_remove("OSTEOAI_MODEL")
        .env("NO_COLOR", "1");
    c
}

pub fn run(cmd: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("osteoai runs");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// The reference data set, or `None` with a clear message. Under CI it must be there.
pub fn data() -> Option<PathBuf> {
    match std::env::var_os("OSTEOAI_DATA")
        .map(PathBuf::from)
        .filter(|p| p.join("test").is_dir())
    {
        Some(p) => Some(p),
        None => {
            assert!(
                std::env::var_os("CI").is_none(),
                "OSTEOAI_DATA is not set (or has no test/): CI must provide the reference data"
            );
            eprintln!(
                "SKIPPED: OSTEOAI_DATA is not set (or has no test/ folder); this test needs the reference data set"
            );
            None
        }
    }
}

/// A cache folder kept between test runs (under the target folder) for the tests on the
/// reference data: its features are computed once, not once per test. Safe to share: entries
/// are keyed by file identity and model.
pub fn shared_cache() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("osteoai-reference-cache");
    std::fs::create_dir_all(&p).expect("cache folder");
    p
}
