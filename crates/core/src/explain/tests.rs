//! Heatmaps on the frozen LightGBM bundle (`models/lite0`) and on a small linear model: exact identities (the
//! decompositions sum to the score), mirror symmetry of flip-averaged models, geometry.

use std::path::Path;

use super::*;
use crate::engine::Engine;
use crate::model::linear::LinearHead;

/// The frozen bundle: a binary LightGBM head over three taps at 224 px (TreeSHAP applies).
fn frozen() -> Engine {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/lite0");
    Engine::load(&dir, crate::device::cpu()).expect("the frozen bundle loads")
}

/// A drawn radiograph, preprocessed as the model wants it.
fn input(e: &Engine, seed: u64) -> (Vec<f32>, image::DynamicImage) {
    let img = image::DynamicImage::ImageLuma8(crate::fixtures::radiograph(seed, true, 320, 256));
    (e.backbone.preprocess.apply(&img), img)
}

fn mirror_image(img: &image::DynamicImage) -> image::DynamicImage {
    img.fliph()
}

fn close(a: &[f32], b: &[f32], tol: f32) -> bool {
    let scale = a.iter().map(|v| v.abs()).fold(1e-6, f32::max);
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol * scale)
}

#[test]
fn methods_by_head() {
    assert_eq!(Method::default_for(HeadKind::Linear), Method::GradCam);
    assert_eq!(
        Method::default_for(HeadKind::LightGbmBinary),
        Method::Occlusion
    );
    assert_eq!(Method::fast_for(HeadKind::LightGbmBinary), Method::ShapCam);
    assert!(!Method::Cam.supports(HeadKind::LightGbmBinary));
    assert!(!Method::ShapCam.supports(HeadKind::Linear));
    assert!(!Method::ShapCam.supports(HeadKind::LightGbmMulti));
    let all = Method::supported(HeadKind::LightGbmBinary);
    assert_eq!(all[0], Method::Occlusion);
    assert!(all.contains(&Method::ShapCam) && !all.contains(&Method::GradCam));
    assert_eq!(Method::parse("Grad-CAM").unwrap(), Method::GradCam);
    assert!(Method::parse("lime").unwrap_err().contains("one of"));
}

/// TreeSHAP spread over the map is a decomposition: the cells' mean is the image's log-odds
/// minus the head's expected value. The probability is the one `classify` gives.
#[test]
fn shap_cam_sums_to_the_log_odds() {
    let e = frozen();
    let (x, _) = input(&e, 7);
    let ex = Explainer {
        engine: &e,
        method: Method::ShapCam,
        class: None,
    };
    let hm = ex.input(&x, (320, 256)).unwrap();
    let p = hm.probs[hm.class];
    let feats = e.backbone.features_of_inputs(x.clone(), 1).unwrap();
    let want_p = e.bundle.head.predict(&feats).unwrap()[0];
    assert!((p - want_p).abs() < 1e-4, "{p} vs {want_p}");
    let phi = e.bundle.head.contributions(&feats).unwrap();
    let base = *phi.last().unwrap();
    let logit = (p / (1.0 - p)).ln();
    let mean = hm.values.iter().map(|v| *v as f64).sum::<f64>() / hm.values.len() as f64;
    assert!(
        (mean - (logit - base)).abs() < 0.02 * (logit - base).abs().max(1.0),
        "mean {mean} vs log-odds {logit} - base {base}"
    );
    assert_eq!((hm.grid_w, hm.grid_h), (14, 14));
}

/// The frozen bundle averages each image with its mirror: the map of the mirrored image is
/// the mirrored map, for every method.
#[test]
fn flip_averaged_maps_are_mirror_symmetric() {
    let e = frozen();
    assert!(e.backbone.features.flip_average);
    let (_, img) = input(&e, 3);
    for method in [Method::ShapCam, Method::HeadMap, Method::Occlusion] {
        let ex = Explainer {
            engine: &e,
            method,
            class: None,
        };
        let a = ex.image(&img).unwrap();
        let b = ex.image(&mirror_image(&img)).unwrap();
        let back = Heatmap::mirror_values(&b.values, b.grid_w);
        assert!(close(&a.values, &back, 2e-3), "{method}: not symmetric");
    }
}

/// A linear head over the frozen bundle's backbone's head features (one tap): CAM's mean is the
/// image's centred logit exactly, and Grad-CAM runs through burn's autodiff.
#[test]
fn cam_is_exact_and_grad_cam_runs_for_a_linear_head() {
    let mut e = frozen();
    e.backbone.features = crate::model::effnet::FeatureSpec {
        taps: vec![crate::model::effnet::Tap::Head],
        pools: vec![crate::model::effnet::Pool::Avg],
        flip_average: true,
    };
    let dim = e.backbone.feature_dim();
    let w: Vec<Vec<f32>> = (0..2)
        .map(|c| {
            (0..dim)
                .map(|i| (((i * 31 + c * 7) % 17) as f32 - 8.0) / 40.0)
                .collect()
        })
        .collect();
    let head = LinearHead {
        weights: w,
        bias: vec![0.1, -0.1],
    };
    e.bundle.head = crate::model::head::Head::linear(head.clone(), 0).unwrap();
    let (x, img) = input(&e, 11);
    let cam = Explainer {
        engine: &e,
        method: Method::Cam,
        class: Some(0),
    }
    .input(&x, (320, 256))
    .unwrap();
    let p = cam.probs[0];
    let centred = 0.5 * (p / (1.0 - p)).ln();
    let mean = cam.values.iter().map(|v| *v as f64).sum::<f64>() / cam.values.len() as f64;
    assert!(
        (mean - centred).abs() < 1e-3 * centred.abs().max(1.0),
        "{mean} vs {centred}"
    );
    assert_eq!((cam.grid_w, cam.grid_h), (7, 7));
    let g = Explainer {
        engine: &e,
        method: Method::GradCam,
        class: Some(0),
    };
    let a = g.image(&img).unwrap();
    assert_eq!((a.grid_w, a.grid_h), (14, 14));
    assert!(a.values.iter().all(|v| *v >= 0.0 && v.is_finite()));
    assert!(!a.is_flat());
    let b = g.image(&mirror_image(&img)).unwrap();
    let back = Heatmap::mirror_values(&b.values, b.grid_w);
    assert!(close(&a.values, &back, 5e-3), "grad-cam: not symmetric");
    // The LightGBM-only method is refused with the methods that apply.
    let err = Explainer {
        engine: &e,
        method: Method::ShapCam,
        class: None,
    }
    .check()
    .unwrap_err();
    assert!(err.contains("grad-cam"), "{err}");
}

#[test]
fn peak_box_and_mass_follow_the_hot_cell() {
    let mut values = vec![0.0f32; 25];
    values[2 * 5 + 3] = 2.0; // cell (3, 2)
    values[2 * 5 + 2] = 1.5; // its left neighbour, above half the peak
    let hm = Heatmap {
        method: Method::HeadMap,
        class: 0,
        probs: vec![0.5, 0.5],
        grid_w: 5,
        grid_h: 5,
        values,
        image_w: 500,
        image_h: 250,
    };
    assert_eq!(hm.peak(), (350.0, 125.0));
    let b = hm.hot_box(0.5);
    // Both hot cells' centres (250 and 350) are inside; nothing beyond their neighbours.
    assert!(
        b.contains(250.0, 125.0) && b.contains(350.0, 125.0),
        "{b:?}"
    );
    assert!(
        b.x > 150.0 && b.x + b.w < 450.0 && b.y > 50.0 && b.y + b.h < 200.0,
        "{b:?}"
    );
    let inside = hm.mass_inside(&[b]);
    assert!(inside > 0.4, "{inside}");
    let flat = Heatmap {
        values: vec![1.0; 25],
        ..hm.clone()
    };
    assert!(flat.is_flat());
    assert_eq!(flat.mass_inside(&[b]), 0.0);
    let up = geometry::resample(&[0.0, 1.0], 2, 1, 4, 1);
    assert_eq!(up, vec![0.0, 0.25, 0.75, 1.0]);
}
