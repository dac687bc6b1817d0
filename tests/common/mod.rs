//! Helpers shared by the integration tests: the real binary with an isolated cache.

#![allow(dead_code)]

pub mod tmux;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use image::{GrayImage, ImageBuffer, Luma};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `osteoai` binary, run from the repository root with its own cache folder.
pub fn osteoai(cache: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_osteoai"));
    c.current_dir(root())
        .env("XDG_CACHE_HOME", cache)
        .env("XDG_STATE_HOME", cache.join("state"))
        .env("XDG_CONFIG_HOME", cache.join("config"))
        .env_remove("OSTEOAI_CONFIG")
        .env_remove("OSTEOAI_LOG")
        .env_remove("OSTEOAI_MODEL")
        .env_remove("OSTEOAI_CACHE")
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("SLURM_ARRAY_TASK_COUNT")
        .env_remove("JOB_COMPLETION_INDEX")
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

/// A cache folder kept between test runs (under the target folder) for the audit of the
/// reference data: its CNN features and keypoints are computed once, not at every run. Entries
/// are keyed by file identity and model (a code change in preprocessing is not: the model
/// quality test uses a fresh cache for that reason).
pub fn shared_cache() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("osteoai-reference-cache");
    std::fs::create_dir_all(&p).expect("cache folder");
    p
}

/// A third kind of picture: concentric rings (nothing like the two bone drawings).
pub fn rings(seed: u64, w: u32, h: u32) -> GrayImage {
    let (cx, cy) = (w as f32 * (0.4 + (seed % 5) as f32 * 0.05), h as f32 * 0.5);
    let step = 9.0 + (seed % 4) as f32 * 2.0;
    ImageBuffer::from_fn(w, h, |x, y| {
        let r = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt();
        let v = if ((r / step) as u32).is_multiple_of(2) {
            190.0
        } else {
            40.0
        };
        Luma([(v + ((x * 7 + y * 13 + seed as u32) % 17) as f32) as u8])
    })
}

/// 12 images of each of three classes; one "rings" picture filed under shaft/.
pub fn make_three_class_folder(dir: &Path) -> String {
    for (class, make) in [("shaft", 0u32), ("elbow", 1), ("rings", 2)] {
        let d = dir.join(class);
        std::fs::create_dir_all(&d).unwrap();
        for i in 0..12u64 {
            let img = match make {
                0 => osteoai_core::fixtures::radiograph(300 + i, i % 2 == 0, 160, 128),
                1 => osteoai_core::fixtures::audit::drawing(
                    400 + i,
                    i % 2 == 0,
                    i % 3 == 0,
                    160,
                    128,
                ),
                _ => rings(500 + i, 160, 128),
            };
            img.save(d.join(format!("{class}_{i:02}.png"))).unwrap();
        }
    }
    let wrong = dir.join("shaft/mislabelled.png");
    rings(999, 160, 128).save(&wrong).unwrap();
    wrong.to_string_lossy().into_owned()
}

/// Every file under `dir` (its `.osteoai/` sidecar left out) with its bytes, sorted.
pub fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut v: Vec<_> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_entry(|e| e.file_name() != ".osteoai")
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            (
                e.path().strip_prefix(dir).unwrap().to_path_buf(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

/// A copy of `src` (files only) at `dst`, for tests that move files.
pub fn copy_tree(src: &Path, dst: &Path) {
    for (rel, bytes) in tree(src) {
        let p = dst.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
}

/// The demo images copied under `copies` names each into `dir` (same folders): a folder big
/// enough for a run to be caught mid-way. Returns the number of files.
pub fn demo_copies(dir: &Path, copies: usize) -> usize {
    let mut n = 0;
    for (rel, bytes) in tree(&root().join("fixtures/demo")) {
        for k in 0..copies {
            let name = format!("c{k}_{}", rel.file_name().unwrap().to_string_lossy());
            let p = dir.join(rel.parent().unwrap()).join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, &bytes).unwrap();
            n += 1;
        }
    }
    n
}
