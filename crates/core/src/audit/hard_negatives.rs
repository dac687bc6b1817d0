//! The verification against hard negatives: standard views of different people (generated,
//! `fixtures::patients`) must never be called copies; re-processed copies of one film mostly
//! are. The same on real films: the two computed radiographs of pydicom's public test data
//! (two patients), their lossy JPEG 2000 versions and re-processed copies.

use osteoai_vision::gray::Gray;
use osteoai_vision::verify::{VerifyParams, Views, verify};

use crate::fixtures::audit::{augment, blur};
use crate::fixtures::patients::standard_view;

fn views(g: &image::GrayImage) -> Views {
    let gray = Gray::new(g.width() as usize, g.height() as usize, g.as_raw().clone());
    crate::audit::signature::views_of(&gray)
}

/// Different people filmed in one standard view are never copies; re-processed copies of
/// one film (cropped, re-exposed, blurred) mostly are. Prints the pair decision's
/// precision and recall (docs/audit.md, "Standard views of different people").
#[test]
fn standard_views_of_different_people_are_not_copies() {
    let p = VerifyParams::default();
    let (mut tp, mut fp, mut positives, mut negatives) = (0, 0, 0, 0);
    for view in 0..12u64 {
        let a = standard_view(view, 1, 256, 224);
        let va = views(&a);
        for person in [2, 3] {
            let v = verify(&va, &views(&standard_view(view, person, 256, 224)), &p);
            negatives += 1;
            fp += v.verified as usize;
            assert!(!v.verified, "view {view}, persons 1 and {person}: {v:?}");
        }
        for copy in [
            augment(&a, 0.0, 0.0, 1.25, false, 1.0),
            augment(&a, 3.0, 0.0, 1.0, false, 1.6),
            blur(&augment(&a, -5.0, 0.1, 1.1, false, 0.8), 1),
            blur(&a, 2),
        ] {
            positives += 1;
            tp += verify(&va, &views(&copy), &p).verified as usize;
        }
    }
    let precision = tp as f64 / (tp + fp).max(1) as f64;
    let recall = tp as f64 / positives as f64;
    eprintln!(
        "hard negatives: {fp} of {negatives} pairs of different people called copies; \
         copies found {tp} of {positives} (precision {precision:.3}, recall {recall:.3})"
    );
    assert!(recall >= 0.7, "recall {recall:.3}");
}

/// Augmented copies of one drawing are verified (and the mirror found); other drawings with
/// the same marker letter are not.
#[test]
fn augmented_copies_are_verified_and_other_drawings_are_not() {
    use crate::fixtures::audit::drawing;
    let original = drawing(7, true, true, 256, 224);
    let a = views(&original);
    let p = VerifyParams::default();
    for (what, copy) in [
        (
            "rotated 18 degrees",
            augment(&original, 18.0, 0.0, 1.0, false, 1.0),
        ),
        (
            "rotated -12, sheared",
            augment(&original, -12.0, 0.2, 1.0, false, 1.0),
        ),
        (
            "zoomed (cropped) and darker",
            augment(&original, 4.0, 0.0, 1.25, false, 0.6),
        ),
        (
            "mirrored and brighter",
            augment(&original, 0.0, 0.0, 1.0, true, 1.5),
        ),
    ] {
        let v = verify(&a, &views(&copy), &p);
        assert!(v.verified, "{what}: {v:?}");
        assert_eq!(v.mirrored, what.starts_with("mirrored"), "{what}");
    }
    // Different drawings, the same marker letter: never a copy.
    for seed in 8..14 {
        let other = drawing(seed, true, true, 256, 224);
        let v = verify(&a, &views(&other), &p);
        assert!(!v.verified, "drawing {seed}: {v:?}");
    }
}

/// Real radiographs of two patients (pydicom's CR samples: RG1 a chest, 1841x1955 15-bit; RG3
/// a lower leg, 1760x1760 10-bit; both MONOCHROME1), each as stored, as its lossy JPEG 2000
/// version from the same data set, and re-processed (cropped, re-exposed, blurred, rotated and
/// darkened; made here from the decoded film, reduced to 1,000 pixels like an export). Copies
/// of one film must be found; no pair across the two patients may be called a copy. Prints the
/// pair decision's precision and recall (docs/audit.md).
#[test]
fn real_films_copies_are_found_and_other_patients_are_not() {
    let Some(dir) = crate::fixtures::public_dicom_samples() else {
        return;
    };
    let p = VerifyParams::default();
    let film = |name: &str| -> image::GrayImage {
        let d = crate::decode::imaging::decode_path_full(&dir.join(name), 0)
            .unwrap_or_else(|e| panic!("{name}: {}", e.0));
        d.image.thumbnail(1000, 1000).to_luma8()
    };
    let mut families: Vec<Vec<(String, Views)>> = Vec::new();
    for patient in ["RG1", "RG3"] {
        let stored = film(&format!("{patient}_UNCR.dcm"));
        let lossy = film(&format!("{patient}_J2KI.dcm"));
        let mut f = vec![(format!("{patient} as stored"), views(&stored))];
        f.push((format!("{patient} lossy JPEG 2000"), views(&lossy)));
        for (what, copy) in [
            ("cropped", augment(&stored, 0.0, 0.0, 1.2, false, 1.0)),
            ("re-exposed", augment(&stored, 0.0, 0.0, 1.0, false, 1.5)),
            ("blurred", blur(&stored, 2)),
            (
                "rotated, darker",
                augment(&stored, 5.0, 0.0, 1.0, false, 0.8),
            ),
        ] {
            f.push((format!("{patient} {what}"), views(&copy)));
        }
        families.push(f);
    }
    let (mut tp, mut positives) = (0, 0);
    for f in &families {
        for (what, v) in &f[1..] {
            positives += 1;
            let r = verify(&f[0].1, v, &p);
            eprintln!("{} / {what}: {r:?}", f[0].0);
            tp += r.verified as usize;
        }
    }
    let (mut fp, mut negatives) = (0, 0);
    for (a, va) in &families[0] {
        for (b, vb) in &families[1] {
            negatives += 1;
            let r = verify(va, vb, &p);
            fp += r.verified as usize;
            assert!(
                !r.verified,
                "{a} / {b}: different patients called copies: {r:?}"
            );
        }
    }
    let precision = tp as f64 / (tp + fp).max(1) as f64;
    let recall = tp as f64 / positives as f64;
    eprintln!(
        "real films: {fp} of {negatives} pairs of different patients called copies; copies \
         found {tp} of {positives} (precision {precision:.3}, recall {recall:.3})"
    );
    assert!(recall >= 0.8, "recall {recall:.3}");
}
