//! The verification against hard negatives: standard views of different people (generated,
//! `fixtures::patients`) must never be called copies; re-processed copies of one film mostly
//! are.

use super::orb::Gray;
use super::verify::{VerifyParams, Views, verify};

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
