//! The file operations under the journal: where a relabelled file goes, a free name beside a
//! clash, and the one-step no-clobber rename.

use std::path::{Path, PathBuf};

use crate::labels::ClassSpec;

/// The folder of class `target` beside the class folder that labels `file`; without a labelled
/// ancestor, a class folder beside the file.
pub fn target_folder(
    root: &Path,
    classes: &ClassSpec,
    file: &Path,
    target: usize,
) -> Result<PathBuf, String> {
    let target_name = classes
        .names
        .get(target)
        .ok_or_else(|| format!("no class {target}"))?;
    let mut dir = file.parent();
    while let Some(d) = dir {
        if let Some(name) = d.file_name().and_then(|n| n.to_str())
            && classes.class_of_folder(name).is_some()
        {
            let parent = d.parent().unwrap_or(Path::new(""));
            // Reuse an existing sibling folder that names the target class (e.g. `Normal/`).
            if let Ok(rd) = std::fs::read_dir(parent) {
                for e in rd.flatten() {
                    if e.path().is_dir()
                        && e.file_name()
                            .to_str()
                            .and_then(|n| classes.class_of_folder(n))
                            == Some(target)
                    {
                        return Ok(e.path());
                    }
                }
            }
            return Ok(parent.join(target_name));
        }
        if d == root {
            break;
        }
        dir = d.parent();
    }
    Ok(file.parent().unwrap_or(root).join(target_name))
}

fn numbered(p: &Path, n: usize) -> PathBuf {
    let stem = p
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match p.extension() {
        Some(ext) => format!("{stem} (relabelled {n}).{}", ext.to_string_lossy()),
        None => format!("{stem} (relabelled {n})"),
    };
    p.with_file_name(name)
}

/// Whether two names are the same file (same device and inode).
pub(super) fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (std::fs::symlink_metadata(a), std::fs::symlink_metadata(b)) {
            (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (a, b);
        false
    }
}

/// Renames `from` to `to` unless `to` exists, in one step where the system allows it.
pub fn rename_no_clobber(from: &Path, to: &Path) -> Result<(), String> {
    let fail =
        |e: std::io::Error| format!("cannot move {} to {}: {e}", from.display(), to.display());
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::ffi::OsStrExt;
        let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes());
        if let (Ok(f), Ok(t)) = (c(from), c(to)) {
            // SAFETY: two valid NUL-terminated paths, relative to the working directory.
            let r = unsafe {
                libc::renameat2(
                    libc::AT_FDCWD,
                    f.as_ptr(),
                    libc::AT_FDCWD,
                    t.as_ptr(),
                    libc::RENAME_NOREPLACE,
                )
            };
            if r == 0 {
                return Ok(());
            }
            let e = std::io::Error::last_os_error();
            // Filesystems without RENAME_NOREPLACE say EINVAL; old kernels ENOSYS.
            if !matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS)) {
                return Err(fail(e));
            }
        }
    }
    // A hard link fails rather than replace an existing name; then the old name goes.
    match std::fs::hard_link(from, to) {
        Ok(()) => std::fs::remove_file(from).map_err(|e| {
            let _ = std::fs::remove_file(to);
            fail(e)
        }),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(fail(e)),
        Err(_) if to.exists() => Err(format!("{} exists; not overwriting it", to.display())),
        Err(_) => std::fs::rename(from, to).map_err(fail),
    }
}

/// `to`, or `stem (relabelled N).ext` for the first N whose name is free.
pub(super) fn free_name(to: &Path) -> Result<PathBuf, String> {
    for n in 0..1000 {
        let candidate = if n == 0 {
            to.to_path_buf()
        } else {
            numbered(to, n)
        };
        if std::fs::symlink_metadata(&candidate).is_err() {
            return Ok(candidate);
        }
    }
    Err(format!(
        "no free name for {} after 1000 tries",
        to.display()
    ))
}
