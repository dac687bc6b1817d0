//! Snapshots of the heatmap overlay: `e` asks for the selected image's map (computing…), the
//! worker's map arrives (the border names the method, class, probability and peak) and is
//! drawn into the preview's colour cells; `>` cycles the class, `Esc` hides it.

use std::sync::Arc;

use crossterm::event::KeyCode;
use osteoai_core::explain::{Heatmap, Method};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::layout::Size;

use super::explain_view::MapEntry;
use super::images::{Images, ImgEntry, ImgKey};
use super::snapshots::{app, key, offline, render};
use super::theme::Theme;
use super::ui::draw;

fn map(class: usize, hot: usize) -> Arc<Heatmap> {
    let mut values = vec![0.0; 64];
    values[hot] = 1.0;
    values[hot + 1] = 0.6;
    Arc::new(Heatmap {
        method: Method::Occlusion,
        class,
        probs: vec![0.91, 0.09],
        grid_w: 8,
        grid_h: 8,
        values,
        image_w: 160,
        image_h: 128,
    })
}

/// The preview's wanted image after one frame, made ready (with its overlay, as the image
/// workers would draw it).
fn provide_preview(a: &mut super::app::App, images: &mut Images, w: u16, h: u16) -> ImgKey {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    let mut wanted = Vec::new();
    t.draw(|f| wanted = draw(f, a, images, Theme::new(false)))
        .unwrap();
    let k = wanted
        .first()
        .expect("the preview asks for its image")
        .clone();
    let img = osteoai_core::fixtures::radiograph(1, true, 160, 128);
    let rgb = image::DynamicImage::ImageLuma8(img).to_rgb8();
    let shown = match &k.heat {
        Some(h) => osteoai_core::explain::overlay::overlay(&rgb, &h.map, false),
        None => rgb,
    };
    let proto = images
        .picker
        .new_protocol(
            image::DynamicImage::ImageRgb8(shown),
            Size::new(k.cols, k.rows),
            super::images::fill(),
        )
        .unwrap();
    images.insert(k.clone(), ImgEntry::Ready(proto, None), 0);
    k
}

/// The colours of the preview's cells (what halfblocks draw).
fn preview_colours(a: &mut super::app::App, images: &mut Images, w: u16, h: u16) -> Vec<String> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| {
        draw(f, a, images, Theme::new(false));
    })
    .unwrap();
    let buf = t.backend().buffer().clone();
    // The preview's picture rows at 100 x 24 (the score panel below them excluded).
    (2..8)
        .flat_map(|y| (52..98).map(move |x| (x, y)))
        .map(|(x, y)| format!("{:?}{:?}", buf[(x, y)].fg, buf[(x, y)].bg))
        .collect()
}

#[test]
fn heatmap_overlay_on_the_preview_and_class_cycling() {
    let mut a = app();
    let mut images = offline();
    let (w, h) = (100, 24);
    provide_preview(&mut a, &mut images, w, h);
    let plain = preview_colours(&mut a, &mut images, w, h);

    assert!(
        a.on_key(key(KeyCode::Char('e'))).is_empty(),
        "the runtime asks the worker"
    );
    let wanted = a
        .explain_wanted()
        .expect("the selected image's map is wanted");
    assert!(a.explain.request(&wanted), "asked once");
    assert!(!a.explain.request(&wanted));
    insta::assert_snapshot!("explain_computing", render(&mut a, &mut offline(), w, h));

    // The worker's answer: the map, and the methods this model supports.
    a.explain.insert(
        wanted.clone(),
        MapEntry::Ready {
            map: map(0, 2 * 8 + 5),
            refining: false,
        },
        vec![Method::Occlusion, Method::ShapCam],
    );
    let k = provide_preview(&mut a, &mut images, w, h);
    assert!(
        k.heat.is_some(),
        "the preview asks for the image with its heatmap"
    );
    insta::assert_snapshot!("explain_overlay", render(&mut a, &mut images, w, h));
    let tinted = preview_colours(&mut a, &mut images, w, h);
    let changed = plain.iter().zip(&tinted).filter(|(p, t)| p != t).count();
    assert!(
        changed > 10,
        "the overlay colours the preview's cells ({changed} changed)"
    );

    // `>`: the map of each class in turn; the nofracture map arrives.
    a.on_key(key(KeyCode::Char('>')));
    a.on_key(key(KeyCode::Char('>')));
    let k1 = a.explain_wanted().unwrap();
    assert_eq!(k1.class, Some(1));
    a.explain.insert(
        k1,
        MapEntry::Ready {
            map: map(1, 40),
            refining: true,
        },
        vec![],
    );
    insta::assert_snapshot!("explain_class_cycled", render(&mut a, &mut offline(), w, h));
    // `M` walks the model's methods; `Esc` hides the map.
    a.on_key(key(KeyCode::Char('M')));
    assert_eq!(a.explain.method, Some(Method::Occlusion));
    a.on_key(key(KeyCode::Esc));
    assert!(a.explain_wanted().is_none());
    assert!(!render(&mut a, &mut offline(), w, h).contains(" map "));
}

#[test]
fn no_model_says_why_there_is_no_map() {
    let mut a = app();
    a.on_key(key(KeyCode::Char('e')));
    let k = a.explain_wanted().unwrap();
    a.explain.insert(
        k,
        MapEntry::Failed(
            "a heatmap needs a model; this dashboard shows the scores of s.csv".into(),
        ),
        vec![],
    );
    let screen = render(&mut a, &mut offline(), 120, 24);
    assert!(screen.contains("map: a heatmap needs a model"), "{screen}");
}
