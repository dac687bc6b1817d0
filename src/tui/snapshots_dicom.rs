//! Snapshots of a DICOM preview windowed from the keyboard and of the metadata panel, prepared
//! by the image workers' own function from a generated fixture.

use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use osteoai_core::cache::DiskCache;
use osteoai_core::labels::{ClassSpec, Split};
use osteoai_core::marks::Mark;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui_image::picker::Picker;

use super::app::App;
use super::images::{Images, ImgEntry, prepare};
use super::review::Item;
use super::theme::Theme;
use super::ui::draw;

fn key(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

fn app(names: &[&str]) -> App {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/dicom");
    // Shown as /data/dicom (the title must not depend on where the checkout is).
    let mut a = App::new(
        PathBuf::from("/data/dicom"),
        ClassSpec::fracture_default(),
        0.5,
    );
    a.scanning = false;
    a.items = names
        .iter()
        .map(|n| Item {
            path: root.join(n),
            name: n.to_string(),
            split: None::<Split>,
            label: Some(if n.starts_with("fracture") { 0 } else { 1 }),
            score: None,
            error: None,
            mark: Mark::default(),
            model_score: None,
            tags: super::review::Tags::default(),
            oof: None,
        })
        .collect();
    a.mark_dirty();
    a
}

/// Draws, prepares what the frame asked for as the workers would, hands the result over as
/// the event loop does, and draws again.
fn render(a: &mut App, images: &mut Images, show_phi: bool) -> String {
    let disk = DiskCache::new(tempfile::tempdir().unwrap().keep());
    let mut t = Terminal::new(TestBackend::new(140, 34)).unwrap();
    for _ in 0..2 {
        let mut wanted = Vec::new();
        t.draw(|f| wanted = draw(f, a, images, Theme::new(false)))
            .unwrap();
        for k in wanted {
            let entry = prepare(&images.picker.clone(), &disk, &k, show_phi);
            if let ImgEntry::Ready(_, Some(info)) = &entry
                && a.selected_item().is_some_and(|i| i.path == k.path)
            {
                a.wl.follow(&k.path);
                a.wl.observe(&k.path, info.clone());
            }
            images.insert(k, entry, 0);
        }
    }
    t.draw(|f| {
        draw(f, a, images, Theme::new(false));
    })
    .unwrap();
    t.backend().to_string()
}

#[test]
fn dicom_preview_windowed_from_the_keyboard() {
    let mut a = app(&["fracture/mono2-12bit-windows.dcm"]);
    let mut images = Images::offline(Picker::halfblocks());
    let first = render(&mut a, &mut images, false);
    assert!(first.contains("W 2201 L 1500 BONE · file 1/2"), "{first}");
    a.on_key(key(KeyCode::Char('w')));
    a.on_key(key(KeyCode::Char('n')));
    a.on_key(key(KeyCode::Right));
    a.on_key(key(KeyCode::Up));
    insta::assert_snapshot!(render(&mut a, &mut images, false));
}

#[test]
fn dicom_metadata_panel_hides_patient_data() {
    let mut a = app(&["nofracture/phi-invented.dcm"]);
    let mut images = Images::offline(Picker::halfblocks());
    a.on_key(key(KeyCode::Char('i')));
    let s = render(&mut a, &mut images, false);
    for v in osteoai_core::fixtures::dicom::PHI_VALUES {
        assert!(!s.contains(v), "{v}:\n{s}");
    }
    insta::assert_snapshot!(s);
    let mut a = app(&["nofracture/phi-invented.dcm"]);
    a.wl.show_phi = true;
    a.on_key(key(KeyCode::Char('i')));
    let s = render(&mut a, &mut Images::offline(Picker::halfblocks()), true);
    assert!(
        s.contains(osteoai_core::fixtures::dicom::PHI_VALUES[0]),
        "{s}"
    );
}
