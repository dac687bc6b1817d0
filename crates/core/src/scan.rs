//! Finding the radiographs under a folder: a stable, streaming walk that reports every problem
//! per path and never stops for one.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::labels::{ClassSpec, Split};

/// Extensions read as images without looking inside the file.
pub const IMAGE_EXTENSIONS: &[&str] = &[
    "jpg", "jpeg", "png", "bmp", "tif", "tiff", "webp", "dcm", "dicom",
];

/// Extensions that are never images (no need to read their first bytes).
const NEVER_IMAGES: &[&str] = &[
    "txt", "csv", "json", "jsonl", "md", "toml", "yaml", "yml", "xml", "log", "py", "rs", "sh",
    "npz", "npy", "pth", "pt", "bpk", "zip", "gz", "tar", "pdf",
];

/// One radiograph found by the scan.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub path: PathBuf,
    /// Index into the model's classes, from the folder names.
    pub label: Option<usize>,
    pub split: Option<Split>,
}

/// A path the scan could not read or follow.
#[derive(Clone, Debug, PartialEq)]
pub struct ScanIssue {
    pub path: PathBuf,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ScanItem {
    Image(Entry),
    Issue(ScanIssue),
}

/// Everything a finished scan found.
#[derive(Clone, Debug, Default)]
pub struct ScanReport {
    pub entries: Vec<Entry>,
    pub issues: Vec<ScanIssue>,
}

/// Streams the images under `root` (or `root` itself when it is a file), sorted by name within
/// each folder, hidden files and folders skipped, symbolic links followed with loop detection.
pub fn scan_iter<'a>(root: &Path, classes: &'a ClassSpec) -> impl Iterator<Item = ScanItem> + 'a {
    let root = root.to_path_buf();
    // A file named directly takes its label and split from all of its folders.
    let base = if root.is_file() {
        PathBuf::new()
    } else {
        root.clone()
    };
    walkdir::WalkDir::new(&root)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !is_hidden(e.file_name()))
        .filter_map(move |item| match item {
            Ok(e) if e.file_type().is_file() => {
                let path = e.into_path();
                is_image(&path).then(|| {
                    ScanItem::Image(Entry {
                        label: classes.label_of(&base, &path),
                        split: Split::of_path(&base, &path),
                        path,
                    })
                })
            }
            Ok(_) => None,
            Err(err) => {
                let path = err
                    .path()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| root.clone());
                let message = if let Some(ancestor) = err.loop_ancestor() {
                    format!("symbolic link loop back to {}", ancestor.display())
                } else if let Some(io) = err.io_error() {
                    io.to_string()
                } else {
                    err.to_string()
                };
                Some(ScanItem::Issue(ScanIssue { path, message }))
            }
        })
}

/// Collects a whole scan.
pub fn scan(root: &Path, classes: &ClassSpec) -> ScanReport {
    let mut report = ScanReport::default();
    if !root.exists() {
        report.issues.push(ScanIssue {
            path: root.to_path_buf(),
            message: "no such file or folder".into(),
        });
        return report;
    }
    for item in scan_iter(root, classes) {
        match item {
            ScanItem::Image(e) => report.entries.push(e),
            ScanItem::Issue(i) => report.issues.push(i),
        }
    }
    report
}

/// Scans several roots (files or folders), in the order given.
pub fn scan_all(roots: &[PathBuf], classes: &ClassSpec) -> ScanReport {
    let mut all = ScanReport::default();
    for root in roots {
        let r = scan(root, classes);
        all.entries.extend(r.entries);
        all.issues.extend(r.issues);
    }
    all
}

fn is_hidden(name: &std::ffi::OsStr) -> bool {
    name.to_str().is_some_and(|s| s.starts_with('.'))
}

/// An image by extension, or by its first bytes when the extension says nothing (DICOM files
/// often have none, or a number: found by the `DICM` magic). A `DICOMDIR` index is skipped: the
/// images it lists are found by the walk itself.
pub fn is_image(path: &Path) -> bool {
    if path
        .file_name()
        .is_some_and(crate::decode::dicom::is_dicomdir_name)
    {
        return false;
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some(e) if IMAGE_EXTENSIONS.contains(&e) => true,
        Some(e) if NEVER_IMAGES.contains(&e) => false,
        _ => sniff(path),
    }
}

fn sniff(path: &Path) -> bool {
    let mut head = [0u8; 132];
    let Ok(mut f) = File::open(path) else {
        return false;
    };
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    crate::decode::dicom::is_dicom(&head[..n])
        || (n >= 4 && image::guess_format(&head[..n.min(16)]).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn touch(p: &Path, bytes: &[u8]) {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, bytes).unwrap();
    }

    #[test]
    fn finds_images_with_labels_and_splits_in_stable_order() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        touch(&r.join("train/fracture/b.jpg"), b"x");
        touch(&r.join("train/fracture/a.PNG"), b"x");
        touch(&r.join("train/Normal/c.webp"), b"x");
        touch(&r.join("test/other/d.bmp"), b"x");
        touch(&r.join("test/other/notes.txt"), b"x");
        touch(&r.join("test/other/.hidden.png"), b"x");
        touch(&r.join(".cache/e.png"), b"x");
        // PNG signature with no extension: found by content.
        touch(&r.join("loose/noext"), b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR");
        let c = ClassSpec::fracture_default();
        let rep = scan(r, &c);
        let names: Vec<_> = rep
            .entries
            .iter()
            .map(|e| {
                e.path
                    .strip_prefix(r)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(
            names,
            [
                "loose/noext",
                "test/other/d.bmp",
                "train/Normal/c.webp",
                "train/fracture/a.PNG",
                "train/fracture/b.jpg"
            ]
        );
        assert_eq!(rep.entries[0].label, None);
        assert_eq!(rep.entries[1].split, Some(Split::Test));
        assert_eq!(rep.entries[2].label, Some(1));
        assert_eq!(rep.entries[3].label, Some(0));
        assert!(rep.issues.is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn symlink_loop_is_an_issue_not_a_hang() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        touch(&r.join("a/fracture/x.png"), b"x");
        std::os::unix::fs::symlink(r.join("a"), r.join("a/fracture/loop")).unwrap();
        let rep = scan(r, &ClassSpec::fracture_default());
        assert_eq!(rep.entries.len(), 1);
        assert_eq!(rep.issues.len(), 1, "{:?}", rep.issues);
        assert!(rep.issues[0].message.contains("loop"));
    }

    #[test]
    fn a_single_file_root_gets_its_label() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("val/nofracture/x.jpg");
        touch(&f, b"x");
        let rep = scan(&f, &ClassSpec::fracture_default());
        assert_eq!(rep.entries.len(), 1);
        assert_eq!(rep.entries[0].label, Some(1));
        assert_eq!(rep.entries[0].split, Some(Split::Val));
    }

    #[test]
    fn missing_root_is_reported() {
        let rep = scan(Path::new("/no/such/dir"), &ClassSpec::fracture_default());
        assert!(rep.entries.is_empty());
        assert_eq!(rep.issues.len(), 1);
    }
}
