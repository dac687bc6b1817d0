//! The worker under real orders: files damaged while a folder is classified, the audit
//! task's patient options, and the fine-tune task's audit of the splits.

use std::time::{Duration, Instant};

use super::*;

/// Files deleted, renamed or overwritten with garbage after the order is given, while the
/// worker is busy with the first batch: each becomes that file's error, the rest are scored.
#[test]
fn files_damaged_while_the_folder_is_classified_become_per_file_errors() {
    let t = tempfile::tempdir().unwrap();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo");
    let mut items = Vec::new();
    for e in walkdir::WalkDir::new(&src).sort_by_file_name() {
        let e = e.unwrap();
        if e.file_type().is_file() && osteoai_core::scan::is_image(e.path()) {
            let to = t.path().join(e.path().strip_prefix(&src).unwrap());
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(e.path(), &to).unwrap();
            items.push((items.len(), to));
        }
    }
    assert_eq!(items.len(), 16);
    let (tx, rx) = std::sync::mpsc::channel();
    let model = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/default");
    let worker = Worker::start(model, DeviceChoice::Cpu, tx);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match rx
            .recv_timeout(deadline - Instant::now())
            .expect("the engine")
        {
            Event::EngineReady(r) => {
                r.expect("the default model loads");
                break;
            }
            _ => continue,
        }
    }
    worker.apply(&Effect::Run(Task::Classify {
        run: 1,
        items: items.clone(),
        replace: true,
    }));
    // The last three of the second batch, at once.
    let (gone, moved, garbage) = (&items[13].1, &items[14].1, &items[15].1);
    std::fs::remove_file(gone).unwrap();
    std::fs::rename(moved, moved.with_extension("moved")).unwrap();
    std::fs::write(garbage, b"not an image any more").unwrap();
    let mut results = std::collections::BTreeMap::new();
    loop {
        match rx.recv_timeout(deadline - Instant::now()).expect("scores") {
            Event::Score {
                run: 1,
                index,
                result,
                ..
            } => {
                results.insert(index, result);
            }
            Event::JobDone { run: 1 } => break,
            _ => {}
        }
    }
    assert_eq!(results.len(), 16, "one result per file");
    for (i, r) in &results {
        match (i, r) {
            (13..=15, Err(e)) => assert!(e.len() > 5, "a reason for {i}: {e}"),
            (13..=15, Ok(p)) => panic!("file {i} was damaged, yet scored {p}"),
            (_, Ok(p)) => assert!((0.0..=1.0).contains(p)),
            (_, Err(e)) => panic!("file {i} is intact, yet: {e}"),
        }
    }
}

/// The dashboard's audit honours `--group-dir`: one patient's films in train and test are a
/// `same_patient` leak; without it, none.
#[test]
fn the_audit_task_carries_the_patient_options() {
    let t = tempfile::tempdir().unwrap();
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo");
    for (from, to) in [
        (
            "test/fracture/fracture_test_00.jpg",
            "train/fracture/p1/a.jpg",
        ),
        (
            "test/fracture/fracture_test_01.jpg",
            "test/fracture/p1/b.jpg",
        ),
        (
            "test/nofracture/nofracture_test_00.jpg",
            "train/nofracture/p2/c.jpg",
        ),
        (
            "test/nofracture/nofracture_test_01.jpg",
            "test/nofracture/p3/d.jpg",
        ),
    ] {
        let to = t.path().join(to);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(demo.join(from), to).unwrap();
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let model = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/default");
    let worker = Worker::start(model, DeviceChoice::Cpu, tx);
    let classes = osteoai_core::labels::ClassSpec::fracture_default();
    let entries = osteoai_core::scan::scan(t.path(), &classes).entries;
    assert_eq!(entries.len(), 4);
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut leaks = Vec::new();
    for (run, group_dir) in [(1, Some(3)), (2, None)] {
        worker.apply(&Effect::Run(Task::Audit {
            run,
            root: t.path().to_path_buf(),
            entries: entries.clone(),
            classes: classes.clone(),
            patients: osteoai_core::audit::patients::PatientOptions {
                groups_file: None,
                group_dir,
                dicom: true,
            },
        }));
        loop {
            match rx
                .recv_timeout(deadline - Instant::now())
                .expect("the audit")
            {
                Event::AuditDone { run: r, result } if r == run => {
                    leaks.push(result.expect("audited").patient_leaks.len());
                    break;
                }
                Event::EngineReady(r) => {
                    r.expect("the default model loads");
                }
                _ => {}
            }
        }
    }
    assert_eq!(
        leaks,
        vec![1, 0],
        "same-patient leaks with and without --group-dir"
    );
}

/// The fine-tune order audits the folder's splits first: the val/test images with a copy in
/// train are counted on the panel (with the hint), and `regroup = true` re-splits in memory
/// before the (one small) epoch.
#[test]
fn the_fine_tune_task_counts_copies_across_splits_and_regroups_when_asked() {
    let (tx, rx) = std::sync::mpsc::channel();
    let model = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/default");
    let worker = Worker::start(model, DeviceChoice::Cpu, tx);
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut notes = Vec::new();
    // Kept to the end: the second run starts from the model the first one loaded.
    let mut dirs = Vec::new();
    for (run, regroup) in [(1, false), (2, true)] {
        // A fresh copy of the audit fixture each time (no checkpoint from the other run).
        let t = tempfile::tempdir().unwrap();
        for (rel, bytes) in osteoai_core::fixtures::audit::files() {
            let p = t.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, bytes).unwrap();
        }
        worker.apply(&Effect::Run(Task::Train {
            run,
            root: t.path().join("audit"),
            overrides: osteoai_core::finetune::Overrides {
                epochs: Some(1),
                size: Some(64),
                batch: Some(4),
                frozen_blocks: None,
                regroup,
                batch_norm: Default::default(),
            },
            patients: Default::default(),
        }));
        let mut these = Vec::new();
        loop {
            match rx
                .recv_timeout(deadline - Instant::now())
                .expect("the fine-tune")
            {
                Event::TrainNote { run: r, text } if r == run => these.push(text),
                Event::TrainDone { run: r, result } if r == run => {
                    if let Err(e) = result {
                        panic!("run {run} (regroup {regroup}): {e}; notes {these:?}");
                    }
                    break;
                }
                Event::EngineReady(r) => {
                    r.expect("a model loads");
                }
                _ => {}
            }
        }
        notes.push(these);
        dirs.push(t);
    }
    let copies = |n: &[String]| {
        n.iter()
            .any(|l| l.contains("have a verified copy or the same patient in train"))
    };
    assert!(copies(&notes[0]), "{:?}", notes[0]);
    assert!(
        notes[0].iter().any(|l| l.contains("regroup = true")),
        "{:?}",
        notes[0]
    );
    assert!(copies(&notes[1]), "{:?}", notes[1]);
    assert!(
        notes[1]
            .iter()
            .any(|l| l.starts_with("regrouped in memory")),
        "{:?}",
        notes[1]
    );
}
