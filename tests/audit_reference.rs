//! The audit on the reference data (`OSTEOAI_DATA`), against the leak truth built for it
//! (`tests/data/leak_truth.csv`: every held-out image, leaked or not, with the evidence; pairs
//! near the decision threshold checked by eye). At least 95% of the leaked val/test images must
//! be found, false flags on at most 2% of those without a copy in train; the byte-identical file
//! is an exact duplicate with a label conflict. Its caches persist under the target folder.

mod common;

use std::collections::BTreeSet;

use common::{data, osteoai, run, shared_cache};

#[test]
fn audit_of_the_reference_data_matches_the_checked_leak_truth() {
    let Some(data) = data() else { return };
    let (code, out, err) = run(osteoai(&shared_cache())
        .arg("audit")
        .arg(&data)
        .args(["--format", "csv", "--device", "cpu"]));
    assert_eq!(code, 0, "{err}");
    let rel = |p: &str| {
        std::path::Path::new(p)
            .strip_prefix(&data)
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    let mut flagged = BTreeSet::new();
    let mut exact = Vec::new();
    let mut conflicts = Vec::new();
    for line in out.lines().skip(1) {
        let cols: Vec<&str> = line.splitn(5, ',').collect();
        match cols[0] {
            "leak" => {
                flagged.insert(rel(cols[1]));
            }
            "exact_duplicate" => exact.push((rel(cols[1]), rel(cols[2]))),
            "label_conflict" => conflicts.push((rel(cols[1]), rel(cols[2]))),
            _ => {}
        }
    }
    let truth = std::fs::read_to_string(common::root().join("tests/data/leak_truth.csv")).unwrap();
    let (mut leaked, mut clean) = (BTreeSet::new(), BTreeSet::new());
    for line in truth.lines().skip(1) {
        let cols: Vec<&str> = line.splitn(4, ',').collect();
        if cols[1] == "yes" {
            leaked.insert(cols[0].to_string());
        } else {
            clean.insert(cols[0].to_string());
        }
    }
    assert_eq!(leaked.len() + clean.len(), 1382);
    let found = flagged.intersection(&leaked).count();
    let false_flags = flagged.intersection(&clean).count();
    let recall = found as f64 / leaked.len() as f64;
    let false_rate = false_flags as f64 / clean.len() as f64;
    println!(
        "leaked held-out images found: {found} of {} (recall {recall:.3}); false flags: {false_flags} of {} clean ({:.2}%)",
        leaked.len(),
        clean.len(),
        100.0 * false_rate
    );
    assert!(recall >= 0.95, "recall {recall:.3}");
    assert!(false_rate <= 0.02, "false flags {false_rate:.3}");
    // The one byte-identical file: under fracture/ and nofracture/ of train.
    let dup = exact
        .iter()
        .find(|(a, b)| {
            a.contains("image1_33_png.rf.c18074a7456977d3557e11d2194a869e")
                && b.contains("image1_33_png.rf.c18074a7456977d3557e11d2194a869e")
        })
        .unwrap_or_else(|| panic!("the byte-identical pair is not reported: {exact:?}"));
    assert!(
        conflicts.contains(dup),
        "its label conflict is not reported"
    );
}
