//! `osteoai relabel` / `osteoai undo` through the real binary, and the journal's promise under
//! `kill -9`: a relabel run killed at random points, again and again, never loses or doubles a
//! file, and every move it completed is undone by the next `osteoai undo --all`.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::{osteoai, run, tree};

/// File contents → how many times they occur in the tree (journal folder excluded).
fn contents(dir: &Path) -> BTreeMap<Vec<u8>, usize> {
    let mut m = BTreeMap::new();
    for (_, bytes) in tree(dir) {
        *m.entry(bytes).or_default() += 1;
    }
    m
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn relabel_and_undo_move_files_and_refuse_what_they_cannot() {
    let cache = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    std::fs::create_dir_all(d.join("test/fracture")).unwrap();
    std::fs::create_dir_all(d.join("test/nofracture")).unwrap();
    std::fs::write(d.join("test/fracture/a.jpg"), b"A").unwrap();
    std::fs::write(d.join("test/nofracture/a.jpg"), b"other").unwrap();
    let before = tree(d);
    let (code, out, err) = run(osteoai(cache.path())
        .args(["relabel", "--to", "nofracture"])
        .arg(d)
        .args([
            "test/fracture/a.jpg",
            "test/fracture/missing.jpg",
            "/etc/hostname",
        ]));
    assert_eq!(code, 1, "one file moved, two refused:\n{out}\n{err}");
    assert!(out.contains("a (relabelled 1).jpg"), "no overwrite:\n{out}");
    assert!(
        err.contains("missing.jpg") && err.contains("is not under"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(d.join("test/nofracture/a.jpg")).unwrap(),
        b"other"
    );
    let (code, _, err) = run(osteoai(cache.path())
        .args(["relabel", "--to", "elbow"])
        .arg(d)
        .arg("test/fracture/a.jpg"));
    assert_eq!(code, 2);
    assert!(err.contains("no class \"elbow\""), "{err}");
    let (code, out, err) = run(osteoai(cache.path()).arg("undo").arg(d));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("restored"), "{out}");
    assert_eq!(tree(d), before);

    // Every move is in the log file, none on the terminal.
    let logs = cache.path().join("state/osteoai");
    let text: String = std::fs::read_dir(&logs)
        .unwrap_or_else(|e| panic!("{}: {e}", logs.display()))
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    for want in [
        "start",
        "relabel",
        "undo",
        "a (relabelled 1).jpg",
        "not moved",
        "exit",
    ] {
        assert!(text.contains(want), "log has {want:?}:\n{text}");
    }
    assert!(!out.contains("INFO") && !err.contains("INFO"));
    // Off means no file; a wrong level is refused.
    let quiet = tempfile::tempdir().unwrap();
    let (code, _, err) = run(osteoai(quiet.path())
        .env("OSTEOAI_LOG", "off")
        .arg("undo")
        .arg(d));
    assert_eq!(code, 0, "{err}");
    assert!(!quiet.path().join("state/osteoai").exists());
    let (code, _, err) = run(osteoai(quiet.path())
        .args(["undo", "--log-level", "loud"])
        .arg(d));
    assert_eq!(code, 2);
    assert!(err.contains("unknown log level"), "{err}");
}

#[test]
fn kill_9_in_the_middle_of_many_relabels_loses_nothing_and_undo_restores_all() {
    let cache = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let d = work.path().join("data");
    let (fr, nf) = (d.join("test/fracture"), d.join("test/nofracture"));
    std::fs::create_dir_all(&fr).unwrap();
    std::fs::create_dir_all(&nf).unwrap();
    for i in 0..300 {
        std::fs::write(fr.join(format!("f{i:03}.jpg")), format!("image {i}")).unwrap();
    }
    // Same names on the other side for some: the no-clobber path is exercised too.
    for i in (0..300).step_by(7) {
        std::fs::write(nf.join(format!("f{i:03}.jpg")), format!("other {i}")).unwrap();
    }
    let before = tree(&d);
    let all = contents(&d);
    let mut interrupted = 0;
    for (round, ms) in [20u64, 45, 80, 120, 180, 260, 400, 650]
        .into_iter()
        .enumerate()
    {
        let left = files_in(&fr);
        if left.is_empty() {
            break;
        }
        let mut child = osteoai(cache.path())
            .args(["relabel", "--to", "nofracture"])
            .arg(&d)
            .args(left.iter().map(|n| format!("test/fracture/{n}")))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        assert_eq!(contents(&d), all, "round {round}: no file lost or doubled");
        let now_left = files_in(&fr).len();
        eprintln!(
            "round {round}: killed after {ms} ms, {} of {} moved",
            left.len() - now_left,
            left.len()
        );
        if now_left > 0 && now_left < left.len() {
            interrupted += 1;
        }
    }
    assert!(
        interrupted > 0,
        "at least one run was killed in the middle of its moves"
    );
    let (code, _, err) = run(osteoai(cache.path()).args(["undo", "--all"]).arg(&d));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        tree(&d),
        before,
        "every completed move was journalled and undone"
    );
}
