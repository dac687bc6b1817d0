//! Drawing the dashboard from the state: list or thumbnail grid or ROC curve on the left,
//! preview and confusion matrix on the right, a status bar, and overlays (help, search,
//! relabel confirmation). Returns the images it wants prepared, most important first.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout as Split, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use super::app::{App, Layout, Mode};
use super::help_ui::{AUDIT_HELP, HELP, draw_help};
use super::images::{Images, ImgKey};
use super::list_ui::{draw_grid, draw_list, draw_roc};
use super::mouse::Hit;
use super::preview_ui::draw_preview;
pub(super) use super::preview_ui::opt;
use super::theme::Theme;

pub(super) const NOT_CLINICAL: &str = "research tool — NOT FOR CLINICAL USE";

pub fn draw(f: &mut Frame, app: &mut App, images: &mut Images, theme: Theme) -> Vec<ImgKey> {
    app.refresh();
    app.hits.clear();
    let area = f.area();
    let mut wanted = Vec::new();
    let [top, body, status] = Split::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_title(
        f,
        app,
        top,
        theme,
        &format!("{:?}", images.picker.protocol_type()).to_lowercase(),
    );
    draw_status(f, app, status, theme);
    if body.height < 3 || body.width < 20 {
        f.render_widget(Paragraph::new("window too small"), body);
        return wanted;
    }
    // Narrow or short windows: the list alone (the preview needs room to mean anything).
    let wide = body.width >= 72 && body.height >= 14;
    let (left, right) = if wide {
        let list_w = if body.width >= 140 {
            body.width * 45 / 100
        } else {
            body.width * 52 / 100
        };
        let [l, r] =
            Split::horizontal([Constraint::Length(list_w), Constraint::Min(20)]).areas(body);
        (l, Some(r))
    } else {
        (body, None)
    };
    let zoomed = app.zoom && matches!(app.layout, Layout::List | Layout::Grid);
    if zoomed {
        draw_preview(f, app, images, body, theme, &mut wanted);
        app.hit(body, Hit::Preview);
    } else {
        match app.layout {
            Layout::List => draw_list(f, app, left, theme),
            Layout::Grid => draw_grid(f, app, images, left, theme, &mut wanted),
            Layout::Roc => draw_roc(f, app, left, theme),
            Layout::Audit => wanted = super::audit_ui::draw(f, app, images, body, theme),
        }
    }
    if let Some(r) = right.filter(|_| app.layout != Layout::Audit && !zoomed) {
        let matrix_h = if app.wl.show_meta {
            16.min(r.height / 2).max(8)
        } else {
            10.min(r.height / 2).max(8)
        };
        let [preview, matrix] =
            Split::vertical([Constraint::Min(4), Constraint::Length(matrix_h)]).areas(r);
        if let Some(t) = &app.train {
            super::train_ui::draw(f, t, preview, theme);
        } else {
            draw_preview(f, app, images, preview, theme, &mut wanted);
            app.hit(preview, Hit::Preview);
        }
        if app.wl.show_meta {
            super::meta_panel::draw(f, app, matrix, theme);
        } else {
            super::matrix_ui::draw(f, app, matrix, theme);
            for (cell, row, col) in super::matrix_ui::cell_areas(app, matrix) {
                app.hit(cell, Hit::Matrix(row, col));
            }
        }
    }
    match &app.mode {
        Mode::Help if app.layout == Layout::Audit => draw_help(f, area, theme, AUDIT_HELP),
        Mode::Help => draw_help(f, area, theme, HELP),
        Mode::Search(s) => {
            let a = Rect {
                x: body.x,
                y: body.y + body.height.saturating_sub(1),
                width: body.width,
                height: 1,
            };
            f.render_widget(Clear, a);
            f.render_widget(Paragraph::new(format!("/{s}▏")).style(theme.focus()), a);
        }
        Mode::ConfirmTrain => {
            let text = "Fine-tune the CNN on this folder's train/ images, selected on val/?\n\nIt runs on the worker: minutes on a GPU, much longer on a CPU. A checkpoint is kept beside the new model in .osteoai/models/finetuned; Esc stops after the current step and keeps the best model so far. When it ends, every image is scored again with the new model.\n\ny: start   any other key: cancel";
            let a = centered(area, 70.min(area.width), 11.min(area.height));
            f.render_widget(Clear, a);
            f.render_widget(
                Paragraph::new(text).wrap(Wrap { trim: false }).block(
                    Block::bordered()
                        .title(" fine-tune ")
                        .border_style(theme.warning()),
                ),
                a,
            );
        }
        Mode::ConfirmRelabel { index, target } => {
            let it = &app.items[*index];
            let text = format!(
                "Move {}\nfrom class {} to class {}?\n\nThe file is moved (never overwritten) and the move is journalled; u undoes it.\n\ny: move   any other key: cancel",
                it.name,
                app.class_name(it.label),
                app.class_name(Some(*target))
            );
            let a = centered(area, 64.min(area.width), 9.min(area.height));
            f.render_widget(Clear, a);
            f.render_widget(
                Paragraph::new(text).wrap(Wrap { trim: false }).block(
                    Block::bordered()
                        .title(" relabel ")
                        .border_style(theme.warning()),
                ),
                a,
            );
        }
        _ => {}
    }
    wanted
}

pub(super) fn centered(area: Rect, w: u16, h: u16) -> Rect {
    Rect {
        x: area.x + area.width.saturating_sub(w) / 2,
        y: area.y + area.height.saturating_sub(h) / 2,
        width: w,
        height: h,
    }
}

fn draw_title(f: &mut Frame, app: &App, area: Rect, theme: Theme, protocol: &str) {
    let scan = if app.scanning {
        format!("  scanning… {} images", app.items.len())
    } else {
        format!(
            "  {} images · {protocol} · {}",
            app.items.len(),
            app.source_name()
        )
    };
    let path = app.root.display().to_string();
    let width = area.width as usize;
    let fixed = " osteoai ".len() + scan.chars().count() + 1;
    // The warning is kept whole where it can be: a long path gives way first ("…" + its end).
    // In order: the whole path with the long warning, the whole path with the short one, then
    // the path cut (at least 8 columns) with the short warning, then with a shorter one still.
    let n = path.chars().count();
    let mut chosen = None;
    for (warn, min_path) in [
        (NOT_CLINICAL, n),
        ("NOT FOR CLINICAL USE", n),
        ("NOT FOR CLINICAL USE", n.min(8)),
        ("NOT FOR CLINICAL", n.min(8)),
    ] {
        let room = width.saturating_sub(fixed + warn.chars().count());
        if room >= min_path {
            chosen = Some((warn, room));
            break;
        }
    }
    let (warn, path_room) = chosen.unwrap_or(("", n));
    let shown = if n <= path_room {
        path
    } else {
        let keep = path_room.saturating_sub(1);
        format!("…{}", path.chars().skip(n - keep).collect::<String>())
    };
    let mut spans = vec![
        Span::styled(" osteoai ", theme.title()),
        Span::raw(shown),
        Span::styled(scan, theme.dim()),
    ];
    if !warn.is_empty() {
        let used: usize = spans.iter().map(|s| s.content.chars().count()).sum();
        let gap = width.saturating_sub(used + warn.chars().count());
        spans.push(Span::raw(" ".repeat(gap)));
        spans.push(Span::styled(warn, theme.warning()));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_status(f: &mut Frame, app: &App, area: Rect, theme: Theme) {
    let model = match (&app.model, &app.model_error) {
        // Narrow windows: the device alone ("CPU", "GPU: <adapter>"), the keys need the room.
        (Some(m), _) if area.width < 110 => {
            m.device.split(" (").next().unwrap_or(&m.device).to_string()
        }
        (Some(m), _) => format!("{} · {}", m.device, m.name),
        (None, Some(e)) => format!("model error: {e}"),
        (None, None) => "loading model…".into(),
    };
    let progress = match (&app.bg, &app.job) {
        (Some(b), _) => format!(
            " │ {} {} {}/{} ({:.0} s)",
            b.kind,
            b.stage,
            b.done,
            b.total,
            b.started.elapsed().as_secs_f64()
        ),
        (None, job) => match job {
            Some(j) => {
                let rate = app
                    .rate()
                    .map(|r| format!(" {r:.1} img/s"))
                    .unwrap_or_default();
                format!(" │ {}/{}{rate}", j.done, j.total)
            }
            None => match app.last_run {
                Some((done, total, Some(r))) => format!(" │ last run {done}/{total} {r:.1} img/s"),
                Some((done, total, None)) => format!(" │ last run {done}/{total} (cached)"),
                None => String::new(),
            },
        },
    };
    let msg = app
        .status
        .clone()
        .unwrap_or_else(|| app.key_hints().to_string());
    let line = Line::from(vec![
        Span::styled(format!(" {model}"), theme.dim()),
        Span::styled(progress, theme.focus()),
        Span::raw(" │ "),
        Span::raw(msg),
    ]);
    f.render_widget(Paragraph::new(line), area);
}
