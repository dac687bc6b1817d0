//! Hostile inputs, generated: mutated images, damaged journals, review marks, audit decisions
//! and manifests, and folders of strange names. Nothing may panic; every bad input is an error
//! with a reason or is set aside. Each property runs for a bounded time in `cargo test`
//! (`OSTEOAI_FUZZ_MS` per property, default 400 ms); a longer run: `scripts/fuzz.sh [SECONDS]`.

mod common;

use std::path::{Path, PathBuf};

use arbitrary::Unstructured;
use common::root;
use osteoai_core::labels::ClassSpec;

fn budget_ms() -> u64 {
    std::env::var("OSTEOAI_FUZZ_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400)
}

/// Every committed fixture image: the seeds that mutations start from.
fn seeds() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = walkdir::WalkDir::new(root().join("fixtures"))
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file() && osteoai_core::scan::is_image(e.path()))
        .filter(|e| e.metadata().is_ok_and(|m| m.len() < 200_000))
        .map(|e| std::fs::read(e.path()).unwrap())
        .collect();
    v.sort();
    assert!(v.len() >= 10, "fixture images to mutate");
    v
}

/// Flips, cuts, inserts and repeats bytes.
fn mutate(u: &mut Unstructured, mut b: Vec<u8>) -> arbitrary::Result<Vec<u8>> {
    for _ in 0..u.int_in_range(1..=6)? {
        if b.is_empty() {
            b.push(u.arbitrary()?);
            continue;
        }
        let at = u.choose_index(b.len())?;
        match u.int_in_range(0..=4)? {
            0 => b[at] ^= 1 << u.int_in_range(0..=7)?,
            1 => b.truncate(at),
            2 => {
                let junk: Vec<u8> = u.arbitrary()?;
                b.splice(at..at, junk);
            }
            3 => b[at] = u.arbitrary()?,
            _ => {
                let end = (at + u.int_in_range(1..=64)?).min(b.len());
                let piece = b[at..end].to_vec();
                b.splice(at..at, piece);
            }
        }
    }
    Ok(b)
}

#[test]
fn mutated_images_decode_or_fail_with_a_reason() {
    let seeds = seeds();
    // An image decodes with pixels, or fails with a reason.
    let check = |bytes: &[u8]| match osteoai_core::decode::imaging::decode_bytes(bytes) {
        Ok(img) => assert!(img.width() > 0 && img.height() > 0),
        Err(e) => assert!(e.0.len() > 5, "a reason: {e:?}"),
    };
    arbtest::arbtest(|u| {
        let seed = u.choose(&seeds)?.clone();
        check(&mutate(u, seed)?);
        Ok(())
    })
    .budget_ms(budget_ms());
    // Pure garbage.
    arbtest::arbtest(|u| {
        let bytes: Vec<u8> = u.arbitrary()?;
        check(&bytes);
        Ok(())
    })
    .budget_ms(budget_ms() / 2);
}

/// Hostile lines in the journal: JSON, near-JSON and bytes.
fn hostile_text(u: &mut Unstructured, dir: &Path) -> arbitrary::Result<Vec<u8>> {
    let pick = |u: &mut Unstructured| -> arbitrary::Result<PathBuf> {
        Ok(dir.join(match u.int_in_range(0..=3)? {
            0 => "a.jpg".to_string(),
            1 => "nofracture/a.jpg".to_string(),
            2 => String::arbitrary_take_rest_safe(u)?,
            _ => "../../etc/passwd".to_string(),
        }))
    };
    let mut out = Vec::new();
    for _ in 0..u.int_in_range(0..=6)? {
        let seq: u64 = u.arbitrary()?;
        let line = match u.int_in_range(0..=5)? {
            0 => format!(
                r#"{{"op":"intent","seq":{seq},"from":{:?},"to":{:?},"time":"x"}}"#,
                pick(u)?,
                pick(u)?
            ),
            1 => format!(r#"{{"op":"move","seq":{seq},"from":"a","to":"b","time":"x"}}"#),
            2 => format!(
                r#"{{"op":"undo","seq":{seq},"by":{},"time":"x"}}"#,
                u.arbitrary::<u64>()?
            ),
            3 => format!(r#"{{"op":"abort","seq":{seq}"#),
            4 => String::from_utf8_lossy(&u.arbitrary::<Vec<u8>>()?).into_owned(),
            _ => r#"{"op":"intent","seq":-1}"#.to_string(),
        };
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    Ok(out)
}

trait TakeRest {
    fn arbitrary_take_rest_safe(u: &mut Unstructured) -> arbitrary::Result<String>;
}
impl TakeRest for String {
    fn arbitrary_take_rest_safe(u: &mut Unstructured) -> arbitrary::Result<String> {
        let s: String = u.arbitrary()?;
        Ok(s.replace(['/', '\\', '\0'], "_").chars().take(40).collect())
    }
}

#[test]
fn damaged_sidecar_files_never_panic_and_never_cost_a_file() {
    let c = ClassSpec::fracture_default();
    arbtest::arbtest(|u| {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        let side = r.join(".osteoai");
        std::fs::create_dir_all(&side).unwrap();
        std::fs::create_dir_all(r.join("fracture")).unwrap();
        std::fs::write(r.join("fracture/a.jpg"), b"A").unwrap();
        let journal = hostile_text(u, r)?;
        std::fs::write(side.join("journal.jsonl"), &journal).unwrap();
        let junk: Vec<u8> = u.arbitrary()?;
        std::fs::write(side.join("review.json"), &junk).unwrap();
        std::fs::write(side.join("audit.json"), &junk).unwrap();
        // The journal settles or refuses; the one real file is never lost.
        if let Ok(mut j) = osteoai_core::journal::Journal::open(r) {
            let _ = j.relabel(r, &c, &r.join("fracture/a.jpg"), 1);
            let _ = j.undo_last();
        }
        let found = walkdir::WalkDir::new(r)
            .into_iter()
            .filter_entry(|e| e.file_name() != ".osteoai")
            .flatten()
            .filter(|e| e.file_type().is_file())
            .filter(|e| std::fs::read(e.path()).is_ok_and(|b| b == b"A"))
            .count();
        assert_eq!(found, 1, "the file is in exactly one place");
        // Marks: a damaged file is set aside, never overwritten; decisions: an error.
        let m = osteoai_core::marks::Marks::open(r);
        if serde_json::from_slice::<serde_json::Value>(&junk).is_err() {
            assert!(m.damaged.is_some());
            assert!(osteoai_core::audit::decisions::Decisions::open(r).is_err());
        }
        Ok(())
    })
    .budget_ms(budget_ms());
}

#[test]
fn damaged_manifests_are_explained() {
    let good = std::fs::read(root().join("models/default/manifest.json")).unwrap();
    arbtest::arbtest(|u| {
        let t = tempfile::tempdir().unwrap();
        let bytes = mutate(u, good.clone())?;
        std::fs::write(t.path().join("manifest.json"), &bytes).unwrap();
        match osteoai_core::model::Bundle::read_manifest(t.path()) {
            Ok(m) => assert!(!m.classes.names.is_empty()),
            Err(osteoai_core::error::Error::Model(e)) => assert!(e.contains("manifest"), "{e}"),
            Err(e) => panic!("a damaged manifest is a model error, not {e:?}"),
        }
        Ok(())
    })
    .budget_ms(budget_ms());
}

#[test]
fn folders_of_strange_names_and_files_scan_without_panic() {
    use std::os::unix::ffi::OsStrExt;
    let c = ClassSpec::fracture_default();
    arbtest::arbtest(|u| {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        let mut made = 0;
        for _ in 0..u.int_in_range(1..=8)? {
            let mut name: Vec<u8> = u.arbitrary()?;
            name.retain(|b| *b != b'/' && *b != 0);
            name.truncate(200);
            if name.is_empty() || name == b"." || name == b".." {
                continue;
            }
            let ext: &[u8] = u.choose(&[b".jpg".as_slice(), b".png", b"", b".JPEG", b".dcm"])?;
            name.extend_from_slice(ext);
            let dir = r.join(*u.choose(&["fracture", "nofracture", "test/fracture", "x"])?);
            std::fs::create_dir_all(&dir).unwrap();
            let bytes: Vec<u8> = u.arbitrary()?;
            if std::fs::write(dir.join(std::ffi::OsStr::from_bytes(&name)), bytes).is_ok() {
                made += 1;
            }
        }
        let report = osteoai_core::scan::scan(r, &c);
        assert!(report.entries.len() + report.issues.len() <= made + 8);
        for e in &report.entries {
            // Whatever was listed decodes or fails with a reason.
            if let Err(err) = osteoai_core::decode::imaging::decode(&e.path) {
                assert!(!err.0.is_empty());
            }
        }
        Ok(())
    })
    .budget_ms(budget_ms());
}
