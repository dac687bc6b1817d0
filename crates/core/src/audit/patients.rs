//! Patients kept whole: which images belong to one person, from a groups file (`path,group`),
//! from a folder level under the root (`--group-dir N`: the N-th folder names the patient), or
//! from DICOM PatientID (else StudyInstanceUID). Identities are compared as hashes salted
//! afresh in every run and kept only as an index: they are never printed, logged or written;
//! reports say "same patient", not who.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::report::{Leak, Leakage, Report};
use crate::cache::Fnv;
use crate::labels::Split;

/// Where patient identities come from (the first that knows an image wins, in this order).
#[derive(Clone, Debug, PartialEq)]
pub struct PatientOptions {
    /// CSV with a header naming `path` and `group` (paths relative to the root or absolute).
    pub groups_file: Option<PathBuf>,
    /// The N-th folder under the root (1-based) names the patient.
    pub group_dir: Option<usize>,
    /// DICOM PatientID, else StudyInstanceUID.
    pub dicom: bool,
}

impl Default for PatientOptions {
    fn default() -> Self {
        PatientOptions {
            groups_file: None,
            group_dir: None,
            dicom: true,
        }
    }
}

/// A salt of this process (time and process id): hashes are comparable within one run only.
fn salt() -> u64 {
    static SALT: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SALT.get_or_init(|| {
        let mut h = Fnv::new();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        h.write(&now.to_le_bytes());
        h.write(&std::process::id().to_le_bytes());
        h.finish()
    })
}

fn key(kind: &str, value: &str) -> u64 {
    let mut h = Fnv::new();
    h.write_u64(salt());
    h.write(kind.as_bytes());
    h.write(&[0]);
    h.write(value.as_bytes());
    h.finish()
}

/// The groups file: relative or absolute path -> group.
pub fn read_groups(text: &str) -> Result<HashMap<String, String>, String> {
    let mut rd = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(text.as_bytes());
    let header: Vec<String> = rd
        .headers()
        .map_err(|e| format!("groups file: {e}"))?
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    let col = |n: &str| {
        header
            .iter()
            .position(|h| h == n)
            .ok_or_else(|| format!("groups file: no `{n}` column (need path,group)"))
    };
    let (p, g) = (col("path")?, col("group")?);
    let mut out = HashMap::new();
    for (i, rec) in rd.records().enumerate() {
        let rec = rec.map_err(|e| format!("groups file line {}: {e}", i + 2))?;
        let (path, group) = (rec.get(p).unwrap_or(""), rec.get(g).unwrap_or(""));
        if path.is_empty() || group.is_empty() {
            return Err(format!("groups file line {}: empty path or group", i + 2));
        }
        out.insert(
            path.strip_prefix("./").unwrap_or(path).to_string(),
            group.to_string(),
        );
    }
    Ok(out)
}

/// Patient keys by path and the count of each source.
pub type Keys = (Vec<Option<u64>>, Vec<(&'static str, usize)>);

/// The patient key of each path (`None`: unknown), and how many came from each source.
pub fn keys(root: &Path, paths: &[PathBuf], o: &PatientOptions) -> Result<Keys, String> {
    let file = match &o.groups_file {
        Some(f) => Some(read_groups(
            &std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?,
        )?),
        None => None,
    };
    let mut counts = [("groups file", 0), ("folder level", 0), ("DICOM", 0)];
    let out = paths
        .iter()
        .map(|p| {
            let rel = p.strip_prefix(root).unwrap_or(p);
            if let Some(g) = file.as_ref().and_then(|f| {
                f.get(rel.to_string_lossy().as_ref())
                    .or_else(|| f.get(p.to_string_lossy().as_ref()))
            }) {
                counts[0].1 += 1;
                return Some(key("file", g));
            }
            if let Some(n) = o.group_dir {
                let dirs: Vec<_> = rel
                    .parent()
                    .map(|d| d.components().collect())
                    .unwrap_or_default();
                if n >= 1 && n <= dirs.len() {
                    counts[1].1 += 1;
                    return Some(key("dir", &dirs[n - 1].as_os_str().to_string_lossy()));
                }
            }
            if o.dicom
                && let Some(id) = dicom_patient(p)
            {
                counts[2].1 += 1;
                return Some(key("dicom", &id));
            }
            None
        })
        .collect();
    Ok((out, counts.into_iter().filter(|c| c.1 > 0).collect()))
}

/// PatientID, else StudyInstanceUID, of a DICOM file (nothing for other files).
fn dicom_patient(path: &Path) -> Option<String> {
    let bytes = crate::decode::imaging::read_limited(path).ok()?;
    if !crate::decode::dicom::is_dicom(&bytes) {
        return None;
    }
    let found = crate::decode::dicom::patient_identity(&bytes)?;
    (!found.trim().is_empty()).then_some(found)
}

impl Report {
    /// What folds and splits keep whole, by path: copies and one patient's films together
    /// (`units` of two or more images).
    pub fn units_by_path(&self) -> std::collections::HashMap<std::path::PathBuf, usize> {
        let mut out = std::collections::HashMap::new();
        for (k, u) in self.units().iter().enumerate().filter(|(_, u)| u.len() > 1) {
            for &i in u {
                out.insert(std::path::PathBuf::from(&self.images[i].path), k);
            }
        }
        out
    }

    /// What must stay in one split or fold: copies and every film of one patient together
    /// (connected components over both), single images alone.
    pub fn units(&self) -> Vec<Vec<usize>> {
        let mut g = super::union_find::Groups::new(self.images.len());
        for p in self.pairs.iter().filter(|p| p.counts()) {
            g.union(p.a, p.b);
        }
        let mut first: std::collections::HashMap<usize, usize> = Default::default();
        for (i, im) in self.images.iter().enumerate() {
            if let Some(p) = im.patient {
                let f = *first.entry(p).or_insert(i);
                g.union(f, i);
            }
        }
        let mut by_root: std::collections::BTreeMap<usize, Vec<usize>> =
            std::collections::BTreeMap::new();
        for i in 0..self.images.len() {
            by_root.entry(g.find(i)).or_default().push(i);
        }
        by_root.into_values().collect()
    }
}

/// Sets each image's patient (an index: the same number for the same person) from `keys`.
pub fn assign(report: &mut Report, keys: &[Option<u64>]) {
    let mut index: HashMap<u64, usize> = HashMap::new();
    for (img, k) in report.images.iter_mut().zip(keys) {
        img.patient = k.map(|k| {
            let next = index.len();
            *index.entry(k).or_insert(next)
        });
    }
}

/// Held-out images whose patient has images in an earlier split (`same_patient`), and the
/// counts per split pair. Copies are counted as leaks already; these are other films.
pub fn patient_leaks(r: &Report) -> (Vec<Leak>, Vec<Leakage>) {
    let held_out = [
        (Split::Val, Split::Train),
        (Split::Test, Split::Train),
        (Split::Test, Split::Val),
    ];
    let mut first_in: HashMap<(usize, Split), usize> = HashMap::new();
    for (i, img) in r.images.iter().enumerate() {
        if let (Some(p), Some(s)) = (img.patient, img.split) {
            first_in.entry((p, s)).or_insert(i);
        }
    }
    let mut leaks = Vec::new();
    let mut leakage = Vec::new();
    for (h, into) in held_out {
        let mut n = 0;
        for (i, img) in r.images.iter().enumerate() {
            if img.split != Some(h) {
                continue;
            }
            if let Some(&other) = img.patient.and_then(|p| first_in.get(&(p, into))) {
                n += 1;
                leaks.push(Leak {
                    image: i,
                    split: h,
                    into,
                    other,
                    direct: false,
                    score: 0.0,
                });
            }
        }
        let of = r.images.iter().filter(|im| im.split == Some(h)).count();
        let any = r.images.iter().any(|im| im.patient.is_some());
        if of > 0 && any && r.images.iter().any(|im| im.split == Some(into)) {
            leakage.push(Leakage {
                split: h,
                into,
                leaked: n,
                of,
                share: n as f64 / of as f64,
            });
        }
    }
    (leaks, leakage)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_file_folder_level_and_precedence() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let f = root.join("groups.csv");
        std::fs::write(&f, "path,group\n./train/a/p1/x.png,alice\n").unwrap();
        let paths: Vec<PathBuf> = [
            "train/a/p1/x.png",
            "train/a/p1/y.png",
            "test/a/p1/z.png",
            "test/a/p2/w.png",
            "top.png",
        ]
        .iter()
        .map(|p| root.join(p))
        .collect();
        let o = PatientOptions {
            groups_file: Some(f),
            group_dir: Some(3),
            dicom: true,
        };
        let (k, counts) = keys(root, &paths, &o).unwrap();
        assert_ne!(k[0], k[1], "the file's group wins over the folder");
        assert_eq!(k[1], k[2], "p1 under train and test: one patient");
        assert_ne!(k[2], k[3]);
        assert_eq!(k[4], None, "no third folder");
        assert_eq!(counts, vec![("groups file", 1), ("folder level", 3)]);
        assert!(read_groups("path,grp\n").unwrap_err().contains("`group`"));
        assert!(
            read_groups("path,group\n,a\n")
                .unwrap_err()
                .contains("line 2")
        );
    }
}
