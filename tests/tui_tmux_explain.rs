//! The heatmap overlay in a real terminal: tmux runs the dashboard on a copy of the demo; `e`
//! shows where the model looks on the selected image (the fast map, then the default one),
//! the colours of the preview change, moving the selection moves the map to the next image
//! (the same peak `osteoai explain` reports for it), `Esc` hides it, `q` quits.

mod common;

use common::tmux::{have_tmux, quit};
use common::{copy_tree, osteoai, root, run};

/// The map's line on the preview border: (method, peak x, peak y).
fn map_line(screen: &str) -> Option<(String, f64, f64)> {
    let line = screen
        .lines()
        .find(|l| l.contains(" map ") && l.contains("peak ("))?;
    let after = line.split(" map ").nth(1)?;
    let method = after.split_whitespace().next()?.to_string();
    let peak = line.split("peak (").nth(1)?.split(')').next()?;
    let (x, y) = peak.split_once(',')?;
    Some((method, x.trim().parse().ok()?, y.trim().parse().ok()?))
}

/// The peak `osteoai explain` gives for one file with the model's default method.
fn headless_peak(cache: &std::path::Path, file: &std::path::Path) -> (String, f64, f64) {
    let (code, out, err) = run(osteoai(cache).arg("explain").arg(file).args([
        "--no-images",
        "--format",
        "json",
        "--device",
        "cpu",
    ]));
    assert_eq!(code, 0, "{err}");
    let r: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    (
        r["method"].as_str().unwrap().to_string(),
        r["peak_x"].as_f64().unwrap(),
        r["peak_y"].as_f64().unwrap(),
    )
}

/// The preview's rows (right of the list) with their colours.
fn preview_rows(coloured: &str) -> Vec<String> {
    coloured
        .lines()
        .skip(2)
        .take(20)
        .map(|l| {
            l.split_once('│')
                .map(|(_, r)| r.to_string())
                .unwrap_or_default()
        })
        .collect()
}

#[test]
fn heatmap_overlay_in_tmux_follows_the_selection() {
    if !have_tmux() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let demo = work.path().join("demo");
    copy_tree(&root().join("fixtures/demo"), &demo);
    let cache = tempfile::tempdir().unwrap();
    let t = common::tmux::dashboard("explain", &demo, cache.path(), "");
    t.wait_for("the model", |s| s.contains("CPU (osteoai kernels"));
    let first = demo.join("test/fracture/fracture_test_00.jpg");
    let second = demo.join("test/fracture/fracture_test_01.jpg");
    t.wait_for("the first image drawn", |s| {
        s.contains("fracture_test_00.jpg ─") && s.contains('▄') && !s.contains("loading…")
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    let before = preview_rows(&t.screen_with_colours());
    assert!(
        before.iter().any(|r| r.contains('\u{1b}')),
        "the preview is drawn in colour"
    );

    t.keys(&["e"]);
    let (method, peak_x, peak_y) = headless_peak(cache.path(), &first);
    assert_eq!(
        method, "grad-cam",
        "the built-in (linear-head) model's default method"
    );
    let s = t.wait_for("the default map of the first image", |s| {
        map_line(s).is_some_and(|m| m.0 == method) && !s.contains("refining")
    });
    let shown = map_line(&s).unwrap();
    assert_eq!((shown.1, shown.2), (peak_x.round(), peak_y.round()), "{s}");
    std::thread::sleep(std::time::Duration::from_secs(1));
    let after = preview_rows(&t.screen_with_colours());
    assert_ne!(before, after, "the heatmap changes the preview's colours");

    // Move: the map follows to the next image.
    t.keys(&["j"]);
    let (_, x2, y2) = headless_peak(cache.path(), &second);
    let s = t.wait_for("the map of the second image", |s| {
        s.contains("fracture_test_01.jpg ─")
            && map_line(s).is_some_and(|m| m.0 == method && (m.1, m.2) == (x2.round(), y2.round()))
    });
    assert!(!s.contains("refining"), "{s}");

    t.keys(&["Escape"]);
    t.wait_for("the map to go", |s| {
        map_line(s).is_none() && s.contains("heatmap off")
    });
    quit(&t);
}
