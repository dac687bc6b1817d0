//! Patients kept whole, through the real binary: a folder level (`--group-dir`), a groups file
//! (`--groups`) and DICOM PatientID each make `same_patient` findings when one patient's films
//! cross splits, `split` keeps every patient in one split, `fit`'s folds keep them in one fold,
//! and no output names the patient.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::{osteoai, run};

/// `DIR/{train,test}/{fracture,nofracture}/pNN/*.png`: 16 patients of 3 films each (different
/// drawings, no copies); patients 0 and 1 also have a film under test/.
fn make_patients(dir: &Path, with_folders: bool) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    let mut seed = 500;
    for p in 0..16 {
        let (class, fracture) = if p % 2 == 0 {
            ("fracture", true)
        } else {
            ("nofracture", false)
        };
        for k in 0..3 {
            let split = if (p < 2 && k == 2) || p >= 12 {
                "test"
            } else {
                "train"
            };
            let rel = if with_folders {
                format!("{split}/{class}/p{p:02}/film{k}.png")
            } else {
                format!("{split}/{class}/f{p:02}-{k}.png")
            };
            let img = osteoai_core::fixtures::radiograph(seed, fracture, 96, 80);
            seed += 1;
            let path = dir.join(&rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            img.save(&path).unwrap();
            rows.push((rel, format!("patient-{p:02}")));
        }
    }
    rows
}

/// `groups.csv` (`path,group`) beside the folder.
fn write_groups(dir: &Path, rows: &[(String, String)]) -> std::path::PathBuf {
    let groups = dir.join("groups.csv");
    let mut g = String::from("path,group\n");
    for (rel, p) in rows {
        g += &format!("{rel},{p}\n");
    }
    std::fs::write(&groups, g).unwrap();
    groups
}

fn csv_rows(out: &str) -> Vec<Vec<String>> {
    let mut rd = csv::ReaderBuilder::new().from_reader(out.as_bytes());
    rd.records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect()
}

fn same_patient(out: &str, dir: &Path) -> BTreeSet<String> {
    csv_rows(out)
        .into_iter()
        .filter(|r| r[0] == "same_patient")
        .map(|r| {
            Path::new(&r[1])
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

/// Each patient's split after `split` (from its manifest).
fn splits_of(
    out: &Path,
    patient_of: &BTreeMap<String, String>,
    root: &Path,
) -> BTreeMap<String, BTreeSet<String>> {
    let manifest = std::fs::read_to_string(out.join("split-manifest.csv")).unwrap();
    let mut by: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in csv_rows(&manifest) {
        let rel = Path::new(&r[0])
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        by.entry(patient_of[&rel].clone())
            .or_default()
            .insert(r[2].clone());
    }
    by
}

#[test]
fn folder_level_and_groups_file_keep_patients_whole() {
    let cache = tempfile::tempdir().unwrap();
    for with_folders in [true, false] {
        let data = tempfile::tempdir().unwrap();
        let dir = data.path().join("d");
        let rows = make_patients(&dir, with_folders);
        let patient_of: BTreeMap<String, String> = rows.iter().cloned().collect();
        let groups = write_groups(data.path(), &rows);
        let how: Vec<String> = if with_folders {
            vec!["--group-dir".into(), "3".into()]
        } else {
            vec!["--groups".into(), groups.display().to_string()]
        };
        let (code, out, err) = run(osteoai(cache.path())
            .arg("audit")
            .arg(&dir)
            .args(&how)
            .args(["--no-model", "--format", "csv"]));
        assert_eq!(code, 0, "{err}");
        // The test films of patients 0 and 1, whose other films are in train.
        let want: BTreeSet<String> = rows
            .iter()
            .filter(|(rel, p)| rel.starts_with("test/") && (p == "patient-00" || p == "patient-01"))
            .map(|(rel, _)| rel.clone())
            .collect();
        assert_eq!(same_patient(&out, &dir), want, "{out}");
        assert!(
            !out.contains("patient-0"),
            "the group names are not printed: {out}"
        );

        // split: every patient in one split.
        let resplit = data.path().join("resplit");
        let (code, _, err) = run(osteoai(cache.path())
            .arg("split")
            .arg(&dir)
            .arg("--out")
            .arg(&resplit)
            .args(&how)
            .args(["--no-model", "--seed", "5", "--ratios", "0.5,0.25,0.25"]));
        assert_eq!(code, 0, "{err}");
        let by = splits_of(&resplit, &patient_of, &dir);
        assert_eq!(by.len(), 16);
        for (p, s) in &by {
            assert_eq!(s.len(), 1, "{p} is in {s:?}");
        }
    }
}

/// `fit --groups FILE`: all films of one patient in one fold.
#[test]
fn fit_folds_keep_patients_whole() {
    let cache = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("d");
    let rows = make_patients(&dir, false);
    let groups = write_groups(data.path(), &rows);
    let (code, out, err) = run(osteoai(cache.path())
        .arg("fit")
        .arg(&dir)
        .arg("--groups")
        .arg(&groups)
        .args(["--folds", "4", "--format", "csv", "--device", "cpu"])
        .arg("--out")
        .arg(data.path().join("bundle")));
    assert_eq!(code, 0, "{err}");
    let patient_of: BTreeMap<String, String> = rows.iter().cloned().collect();
    let recs = csv_rows(&out);
    assert_eq!(recs.len(), 48);
    let mut folds: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in &recs {
        let rel = Path::new(&r[0])
            .strip_prefix(&dir)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        folds
            .entry(patient_of[&rel].clone())
            .or_default()
            .insert(r[7].clone());
        assert_eq!(r[8], "0", "other films of a patient are not copies: {r:?}");
    }
    for (p, f) in &folds {
        assert_eq!(f.len(), 1, "{p} is in folds {f:?}");
    }
}

/// Two films of one invented patient across train and test: a `same_patient` finding; no
/// output holds the patient's ID or name; `split` keeps the films together.
#[test]
fn dicom_patient_ids_group_and_stay_private() {
    let cache = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("d");
    let id = "INVENTED-PAT-7731";
    let mut files = vec![
        ("train/fracture/a.dcm", 11, true, id),
        ("test/fracture/b.dcm", 12, true, id),
    ];
    let others: Vec<String> = (0..10).map(|i| format!("OTHER-{i}")).collect();
    let names: Vec<String> = (0..10)
        .map(|i| {
            let split = if i < 6 { "train" } else { "test" };
            let class = if i % 2 == 0 { "fracture" } else { "nofracture" };
            format!("{split}/{class}/o{i}.dcm")
        })
        .collect();
    for i in 0..10 {
        files.push((
            names[i].as_str(),
            20 + i as u64,
            i % 2 == 0,
            others[i].as_str(),
        ));
    }
    for (rel, seed, fracture, pid) in &files {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(
            &p,
            osteoai_core::fixtures::patients::dicom_film(*seed, *fracture, pid),
        )
        .unwrap();
    }
    let out_dir = data.path().join("report");
    let (code, out, err) = run(osteoai(cache.path())
        .arg("audit")
        .arg(&dir)
        .args(["--no-model", "--format", "csv"])
        .arg("--out")
        .arg(&out_dir));
    assert_eq!(code, 0, "{err}");
    let found = same_patient(&out, &dir);
    assert_eq!(
        found,
        BTreeSet::from(["test/fracture/b.dcm".to_string()]),
        "{out}"
    );
    let mut everything = out.clone() + &err;
    for f in std::fs::read_dir(&out_dir).unwrap() {
        everything += &std::fs::read_to_string(f.unwrap().path()).unwrap_or_default();
    }
    let (_, table, _) = run(osteoai(cache.path())
        .arg("audit")
        .arg(&dir)
        .arg("--no-model"));
    everything += &table;
    assert!(table.contains("same patient"), "{table}");
    for secret in [id, "Invented", "OTHER-"] {
        assert!(
            !everything.contains(secret),
            "{secret} appears in an output"
        );
    }
    let logs = cache.path().join("state");
    if logs.is_dir() {
        for f in walkdir::WalkDir::new(&logs)
            .into_iter()
            .flatten()
            .filter(|e| e.file_type().is_file())
        {
            let text = std::fs::read_to_string(f.path()).unwrap_or_default();
            assert!(!text.contains(id), "the log names the patient");
        }
    }
    let resplit = data.path().join("resplit");
    let (code, _, err) = run(osteoai(cache.path())
        .arg("split")
        .arg(&dir)
        .arg("--out")
        .arg(&resplit)
        .args(["--no-model", "--seed", "2"]));
    assert_eq!(code, 0, "{err}");
    let manifest = std::fs::read_to_string(resplit.join("split-manifest.csv")).unwrap();
    let split_of = |name: &str| {
        csv_rows(&manifest)
            .into_iter()
            .find(|r| r[0].ends_with(name))
            .map(|r| r[2].clone())
            .unwrap()
    };
    assert_eq!(
        split_of("train/fracture/a.dcm"),
        split_of("test/fracture/b.dcm")
    );
}
