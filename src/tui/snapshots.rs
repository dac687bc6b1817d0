//! Snapshot tests of the main views, rendered with ratatui's `TestBackend` and halfblocks.

use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use osteoai_core::labels::{ClassSpec, Split};
use osteoai_core::marks::Mark;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::layout::Size;
use ratatui_image::picker::Picker;

use super::app::{App, ModelInfo};
use super::images::{Images, ImgEntry};
use super::review::Item;
use super::theme::Theme;
use super::ui::draw;

pub(super) fn key(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

fn item(name: &str, label: Option<usize>, score: Option<f64>, split: Option<Split>) -> Item {
    Item {
        path: PathBuf::from("/data/wrist").join(name),
        name: name.into(),
        split,
        label,
        score,
        error: None,
        mark: Mark::default(),
        model_score: score,
        tags: super::review::Tags::default(),
        oof: None,
    }
}

pub(super) fn app() -> App {
    let mut a = App::new(
        PathBuf::from("/data/wrist"),
        ClassSpec::fracture_default(),
        0.5,
    );
    a.scanning = false;
    a.model = Some(ModelInfo {
        name: "efficientnet-lite0-lightgbm".into(),
        device: "CPU (burn-flex, 2 threads)".into(),
        threshold: 0.5,
    });
    a.items = vec![
        item(
            "test/fracture/f1.jpg",
            Some(0),
            Some(0.91),
            Some(Split::Test),
        ),
        item(
            "test/fracture/f2.jpg",
            Some(0),
            Some(0.32),
            Some(Split::Test),
        ),
        item("test/fracture/f3.jpg", Some(0), None, Some(Split::Test)),
        item(
            "test/nofracture/n1.jpg",
            Some(1),
            Some(0.12),
            Some(Split::Test),
        ),
        item(
            "test/nofracture/n2.jpg",
            Some(1),
            Some(0.64),
            Some(Split::Test),
        ),
        item(
            "val/nofracture/n3.jpg",
            Some(1),
            Some(0.05),
            Some(Split::Val),
        ),
    ];
    a.items[1].mark.reviewed = true;
    a.items[4].mark.flagged = true;
    a.items[2].error = Some("corrupt or truncated image: unexpected end of file".into());
    a.mark_dirty();
    a
}

pub(super) fn render(app: &mut App, images: &mut Images, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| {
        draw(f, app, images, Theme::new(false));
    })
    .unwrap();
    t.backend().to_string()
}

pub(super) fn offline() -> Images {
    Images::offline(Picker::halfblocks())
}

#[test]
fn list_view() {
    let mut a = app();
    insta::assert_snapshot!(render(&mut a, &mut offline(), 100, 24));
}

#[test]
fn list_view_at_80x24_with_an_image_ready() {
    let mut a = app();
    let mut images = offline();
    // Render once to learn the preview's size, then provide the image and render again.
    let mut t = Terminal::new(TestBackend::new(80, 24)).unwrap();
    let mut wanted = Vec::new();
    t.draw(|f| wanted = draw(f, &mut a, &mut images, Theme::new(false)))
        .unwrap();
    let key = wanted
        .first()
        .expect("the preview asks for its image")
        .clone();
    let img =
        image::DynamicImage::ImageLuma8(osteoai_core::fixtures::radiograph(1, true, 160, 128));
    let proto = images
        .picker
        .new_protocol(img, Size::new(key.cols, key.rows), super::images::fill())
        .unwrap();
    images.insert(key, ImgEntry::Ready(proto, None), 0);
    insta::assert_snapshot!(render(&mut a, &mut images, 80, 24));
}

#[test]
fn error_preview() {
    let mut a = app();
    a.on_key(key(KeyCode::Char('j')));
    a.on_key(key(KeyCode::Char('j')));
    insta::assert_snapshot!(render(&mut a, &mut offline(), 100, 24));
}

#[test]
fn matrix_cell_selected() {
    let mut a = app();
    a.on_key(key(KeyCode::Char('m')));
    a.on_key(key(KeyCode::Char('j')));
    insta::assert_snapshot!(render(&mut a, &mut offline(), 100, 24));
    a.on_key(key(KeyCode::Enter));
    insta::assert_snapshot!(
        "matrix_cell_filtered",
        render(&mut a, &mut offline(), 100, 24)
    );
}

#[test]
fn a_view_with_no_image_in_it_says_why_and_how_out() {
    let mut a = app();
    a.on_key(key(KeyCode::Char('/')));
    for c in "nowhere".chars() {
        a.on_key(key(KeyCode::Char(c)));
    }
    a.on_key(key(KeyCode::Enter));
    assert!(a.visible.is_empty());
    insta::assert_snapshot!(render(&mut a, &mut offline(), 100, 24));
    a.on_key(key(KeyCode::Char('v')));
    insta::assert_snapshot!(
        "a_grid_with_no_image_in_it",
        render(&mut a, &mut offline(), 100, 24)
    );
    a.on_key(key(KeyCode::Esc));
    assert_eq!(a.visible.len(), 6);
}

#[test]
fn help_overlay() {
    let mut a = app();
    a.on_key(key(KeyCode::Char('?')));
    insta::assert_snapshot!(render(&mut a, &mut offline(), 100, 30));
}

#[test]
fn grid_view() {
    let mut a = app();
    a.on_key(key(KeyCode::Char('v')));
    insta::assert_snapshot!(render(&mut a, &mut offline(), 100, 24));
}

#[test]
fn roc_view() {
    let mut a = app();
    a.on_key(key(KeyCode::Char('v')));
    a.on_key(key(KeyCode::Char('v')));
    insta::assert_snapshot!(render(&mut a, &mut offline(), 100, 24));
}

#[test]
fn unlabelled_folder_says_there_is_no_matrix() {
    let mut a = app();
    for it in &mut a.items {
        it.label = None;
    }
    a.mark_dirty();
    insta::assert_snapshot!(render(&mut a, &mut offline(), 100, 24));
}

#[test]
fn tiny_terminal_degrades() {
    let mut a = app();
    insta::assert_snapshot!(render(&mut a, &mut offline(), 40, 10));
    insta::assert_snapshot!("tiny_3_rows", render(&mut a, &mut offline(), 30, 3));
}

fn mouse(
    kind: crossterm::event::MouseEventKind,
    column: u16,
    row: u16,
) -> crossterm::event::MouseEvent {
    crossterm::event::MouseEvent {
        kind,
        column,
        row,
        modifiers: KeyModifiers::NONE,
    }
}

/// The centre of the first area recorded for `hit` in the last frame.
fn spot(a: &App, hit: super::mouse::Hit) -> (u16, u16) {
    let (r, _) = a
        .hits
        .iter()
        .find(|(_, h)| *h == hit)
        .unwrap_or_else(|| panic!("{hit:?} is on screen"));
    (r.x + r.width / 2, r.y + r.height / 2)
}

#[test]
fn mouse_clicks_select_rows_and_matrix_cells_the_wheel_scrolls_and_the_preview_zooms() {
    use super::mouse::Hit;
    use crossterm::event::{MouseButton, MouseEventKind};
    let click = MouseEventKind::Down(MouseButton::Left);
    let mut a = app();
    let mut images = offline();
    render(&mut a, &mut images, 100, 24);
    // A click on the fourth row selects it (the screen position comes from the frame).
    let (x, y) = spot(&a, Hit::Item(3));
    assert_eq!(
        y, 6,
        "the fourth row under the title, the border and the header"
    );
    a.on_mouse(mouse(click, x, y));
    assert_eq!(a.selected, 3);
    // The wheel moves by three rows, within the list.
    a.on_mouse(mouse(MouseEventKind::ScrollUp, x, y));
    assert_eq!(a.selected, 0);
    a.on_mouse(mouse(MouseEventKind::ScrollDown, x, y));
    a.on_mouse(mouse(MouseEventKind::ScrollDown, x, y));
    assert_eq!(a.selected, 5);
    // A click on the false-positive cell shows exactly those images.
    render(&mut a, &mut images, 100, 24);
    let (x, y) = spot(&a, Hit::Matrix(1, 0));
    a.on_mouse(mouse(click, x, y));
    a.refresh();
    let shown: Vec<&str> = a
        .visible
        .iter()
        .map(|&i| a.items[i].name.as_str())
        .collect();
    assert_eq!(shown, ["test/nofracture/n2.jpg"]);
    // A click where nothing is does nothing; a click on the preview zooms, again unzooms.
    a.on_mouse(mouse(click, 0, 0));
    assert!(!a.zoom);
    render(&mut a, &mut images, 100, 24);
    let (x, y) = spot(&a, Hit::Preview);
    a.on_mouse(mouse(click, x, y));
    assert!(a.zoom);
    insta::assert_snapshot!(render(&mut a, &mut images, 100, 24));
    let (x, y) = spot(&a, Hit::Preview);
    a.on_mouse(mouse(click, x, y));
    assert!(!a.zoom);
    // In the grid, a click on a thumbnail selects it.
    a.on_key(key(KeyCode::Char('C')));
    a.on_key(key(KeyCode::Char('v')));
    render(&mut a, &mut images, 100, 24);
    let (x, y) = spot(&a, Hit::Item(2));
    a.on_mouse(mouse(click, x, y));
    assert_eq!(a.selected, 2);
}

#[test]
fn configured_keys_act_and_the_keys_they_replace_go_quiet() {
    let mut a = app();
    a.keymap = crate::options::config::parse("[keys]\nquit = \"Q\"\ndown = \"n\"\n")
        .unwrap()
        .keymap;
    assert!(
        a.on_key(key(KeyCode::Char('q'))).is_empty(),
        "q no longer quits"
    );
    a.on_key(key(KeyCode::Char('n')));
    assert_eq!(a.selected, 1, "n moves down");
    let quit = a.on_key(KeyEvent {
        modifiers: KeyModifiers::SHIFT,
        ..key(KeyCode::Char('Q'))
    });
    assert!(quit.contains(&super::app::Effect::Quit));
    // Typing in the search box is never remapped.
    a.on_key(key(KeyCode::Char('/')));
    a.on_key(key(KeyCode::Char('n')));
    a.on_key(key(KeyCode::Char('q')));
    assert!(matches!(&a.mode, super::app::Mode::Search(s) if s == "nq"));
}

#[test]
fn a_long_folder_path_gives_way_to_the_clinical_warning() {
    let mut a = app();
    a.root = PathBuf::from("/very/long/path/to/some/cluster/scratch/space/of/a/user/data/wrist");
    for w in [80u16, 100, 120] {
        let screen = render(&mut a, &mut offline(), w, 24);
        let title = screen.lines().next().unwrap();
        assert!(title.contains("NOT FOR CLINICAL USE"), "{w}: {title}");
        assert!(
            title.contains("…") && title.contains("data/wrist"),
            "{w}: {title}"
        );
    }
}
