//! Drawing the dashboard from the state: list or thumbnail grid or ROC curve on the left,
//! preview and confusion matrix on the right, a status bar, and overlays (help, search,
//! relabel confirmation). Returns the images it wants prepared, most important first.

use osteoai_core::engine::predicted_class_at;
use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout as Split, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::symbols;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Borders, Cell, Chart, Clear, Dataset, GraphType, Paragraph, Row, Table, Wrap,
};
use ratatui_image::Image;

use super::app::{App, Layout, Mode};
use super::explain_view::MapEntry;
use super::images::{HeatKey, Images, ImgEntry, ImgKey, ViewKey};
use super::mouse::Hit;
use super::review::{CellKind, Item, cell_of};
use super::theme::Theme;

const NOT_CLINICAL: &str = "research tool — NOT FOR CLINICAL USE";

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

fn centered(area: Rect, w: u16, h: u16) -> Rect {
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

fn short(name: &str) -> String {
    name.chars().take(6).collect()
}

/// ✓ when the prediction agrees with the label, ✗ when not, blank when either is missing.
fn verdict(app: &App, it: &Item) -> &'static str {
    if app.view.multiclass {
        return match (it.label, super::review::predicted_n(it)) {
            (Some(l), Some(p)) if l == p => "✓",
            (Some(_), Some(_)) => "✗",
            _ => " ",
        };
    }
    match cell_of(it, app.positive, app.threshold) {
        Some(CellKind::TruePositive | CellKind::TrueNegative) => "✓",
        Some(_) => "✗",
        None => " ",
    }
}

fn list_title(app: &App) -> String {
    let mut parts = vec![format!("{} of {}", app.visible.len(), app.items.len())];
    if app.view.filter != super::review::Filter::All {
        parts.push(app.view.filter.name().into());
    }
    if let Some(c) = app.view.cell {
        parts.push(c.name().into());
    }
    if let Some(l) = app.view.label {
        parts.push(format!("label {}", app.class_name(l)));
    }
    if let Some(s) = app.view.split {
        parts.push(format!(
            "split {}",
            s.map(|s| s.to_string()).unwrap_or_else(|| "none".into())
        ));
    }
    if !app.view.search.is_empty() {
        parts.push(format!("/{}", app.view.search));
    }
    parts.push(format!("sort {}", app.view.sort.name()));
    format!(" {} ", parts.join(" · "))
}

/// First row shown so that the selection is visible.
fn scroll(selected: usize, height: usize, len: usize) -> usize {
    if height == 0 || len <= height {
        return 0;
    }
    let half = height / 2;
    selected.saturating_sub(half).min(len - height)
}

fn draw_list(f: &mut Frame, app: &mut App, area: Rect, theme: Theme) {
    let block = Block::bordered().title(list_title(app));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let height = inner.height.saturating_sub(1) as usize;
    app.page = height.max(1);
    if app.items.is_empty() {
        let msg = if app.scanning {
            "scanning…"
        } else {
            "no images found here (jpg, png, bmp, tif, webp)"
        };
        f.render_widget(Paragraph::new(msg).style(theme.dim()), inner);
        return;
    }
    let first = scroll(app.selected, height, app.visible.len());
    let shown = height.min(app.visible.len() - first);
    for k in 0..shown {
        let row = Rect {
            y: inner.y + 1 + k as u16,
            height: 1,
            ..inner
        };
        app.hit(row, Hit::Item(first + k));
    }
    let rows: Vec<Row> = app.visible[first..(first + height).min(app.visible.len())]
        .iter()
        .enumerate()
        .map(|(k, &i)| {
            let it = &app.items[i];
            let v = verdict(app, it);
            let v_style = if v == "✗" {
                theme.bad()
            } else {
                theme.good()
            };
            let mark = match (it.mark.reviewed, it.mark.flagged) {
                (_, true) => "⚑",
                (true, false) => "●",
                _ => " ",
            };
            let (score, pred) = match (it.score, &it.error) {
                (Some(_), _) if app.view.multiclass && it.oof.is_some() => {
                    let o = it.oof.as_ref().unwrap_or_else(|| unreachable!("checked"));
                    (
                        format!("{:.3}", o.probs[o.suggested]),
                        short(&app.classes.names[o.suggested]),
                    )
                }
                (Some(p), _) => (
                    format!("{p:.3}"),
                    short(predicted_class_at(&app.classes, app.threshold, p)),
                ),
                (None, Some(_)) => ("error".into(), String::new()),
                (None, None) => ("·".into(), String::new()),
            };
            let score_style = match (it.score, &it.error) {
                (Some(p), _) if p >= app.threshold => theme.positive(),
                (Some(_), _) => theme.negative(),
                (None, Some(_)) => theme.bad(),
                _ => theme.dim(),
            };
            let row = Row::new(vec![
                Cell::from(v).style(v_style),
                Cell::from(mark),
                Cell::from(score).style(score_style),
                Cell::from(pred),
                Cell::from(
                    it.label
                        .map(|l| short(&app.classes.names[l]))
                        .unwrap_or_else(|| "-".into()),
                ),
                Cell::from(
                    it.split
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| "-".into()),
                ),
                Cell::from(file_name(&it.name)),
            ]);
            if first + k == app.selected {
                row.style(theme.selected())
            } else {
                row
            }
        })
        .collect();
    let header = Row::new(["", "", "score", "pred", "label", "split", "name"])
        .style(theme.dim().add_modifier(Modifier::UNDERLINED));
    let widths = [
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(5),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(5),
        Constraint::Min(8),
    ];
    f.render_widget(
        Table::new(rows, widths).header(header).column_spacing(1),
        inner,
    );
}

/// The last component of a relative path (split and label have their own columns).
fn file_name(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

fn draw_grid(
    f: &mut Frame,
    app: &mut App,
    images: &mut Images,
    area: Rect,
    theme: Theme,
    wanted: &mut Vec<ImgKey>,
) {
    let block = Block::bordered().title(list_title(app));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let (cw, ch) = app.thumbnail;
    let cols = (inner.width / cw).max(1) as usize;
    let rows = (inner.height / ch).max(1) as usize;
    app.grid_columns = cols;
    app.page = cols * rows;
    let n = app.visible.len();
    let first_row = scroll(app.selected / cols, rows, n.div_ceil(cols));
    for r in 0..rows {
        for c in 0..cols {
            let pos = (first_row + r) * cols + c;
            let Some(&i) = app.visible.get(pos) else {
                continue;
            };
            let cell = Rect {
                x: inner.x + c as u16 * cw,
                y: inner.y + r as u16 * ch,
                width: cw.min(inner.width),
                height: ch.min(inner.height),
            };
            app.hit(cell, Hit::Item(pos));
            let it = &app.items[i];
            let style = if pos == app.selected {
                theme.selected()
            } else {
                Style::new()
            };
            let b = Block::new()
                .borders(Borders::ALL)
                .border_style(if pos == app.selected {
                    theme.focus()
                } else {
                    theme.dim()
                });
            let img_area = b.inner(cell);
            f.render_widget(b, cell);
            let [pic, caption] =
                Split::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(img_area);
            let key = ImgKey::new(it.path.clone(), pic.width, pic.height);
            match images.get(&key) {
                Some(ImgEntry::Ready(p, _)) => f.render_widget(Image::new(p), pic),
                Some(ImgEntry::Failed(_)) => {
                    f.render_widget(Paragraph::new("unreadable").style(theme.bad()), pic)
                }
                None => {
                    f.render_widget(Paragraph::new("…").style(theme.dim()), pic);
                    wanted.push(key);
                }
            }
            let score = it.score.map(|p| format!("{p:.2} ")).unwrap_or_default();
            let v = verdict(app, it);
            f.render_widget(
                Paragraph::new(format!("{v}{score}{}", file_name(&it.name))).style(style),
                caption,
            );
        }
    }
}

fn draw_preview(
    f: &mut Frame,
    app: &App,
    images: &mut Images,
    area: Rect,
    theme: Theme,
    wanted: &mut Vec<ImgKey>,
) {
    let Some(it) = app.selected_item() else {
        f.render_widget(Block::bordered().title(" preview "), area);
        return;
    };
    let (view, frame) = app.wl.for_path(&it.path);
    let block = Block::bordered()
        .title(format!(" {} ", file_name(&it.name)))
        .border_style(if app.mode == Mode::Window {
            theme.focus()
        } else {
            ratatui::style::Style::default()
        });
    let inner = block.inner(area);
    let [pic, info_area] =
        Split::vertical([Constraint::Min(1), Constraint::Length(4)]).areas(inner);
    // What the drawn image's worker said (its window), for the bottom title.
    let mut drawn = None;
    if let Some(e) = &it.error {
        f.render_widget(
            Paragraph::new(format!("cannot read this file:\n{e}"))
                .style(theme.bad())
                .wrap(Wrap { trim: true }),
            pic,
        );
    } else {
        let heat = app
            .explain_wanted()
            .and_then(|k| match app.explain.get(&k) {
                Some(MapEntry::Ready { map, .. }) => Some(HeatKey::new(map.clone())),
                _ => None,
            });
        let key = ImgKey {
            view: view.map(|v| ViewKey::of(&v)),
            frame,
            heat,
            ..ImgKey::new(it.path.clone(), pic.width, pic.height)
        };
        match images.get(&key) {
            Some(ImgEntry::Ready(p, info)) => {
                f.render_widget(Image::new(p), pic);
                drawn = info.clone();
                images.last_preview = Some(key.clone());
            }
            Some(ImgEntry::Failed(e)) => f.render_widget(
                Paragraph::new(format!("cannot show this image:\n{e}"))
                    .style(theme.bad())
                    .wrap(Wrap { trim: true }),
                pic,
            ),
            None => {
                // Keep the previous image until this one is ready.
                match images.last_preview.as_ref().and_then(|k| images.get(k)) {
                    Some(ImgEntry::Ready(p, info)) => {
                        f.render_widget(Image::new(p), pic);
                        drawn = info.clone();
                    }
                    _ => f.render_widget(Paragraph::new("loading…").style(theme.dim()), pic),
                }
                wanted.insert(0, key);
            }
        }
    }
    // The window shown goes in the bottom title, so that a long file name cannot hide it.
    let mut window = String::new();
    if let Some(t) = drawn.as_ref().and_then(|i| i.title.as_deref()) {
        window.push_str(&format!(" {t} "));
    }
    if let Some(i) = drawn.as_ref().filter(|i| i.frames > 1) {
        window.push_str(&format!(" frame {}/{} ", i.frame + 1, i.frames));
    }
    let block = if window.is_empty() {
        block
    } else {
        block.title_bottom(Line::from(window).right_aligned())
    };
    let block = match super::explain_ui::map_line(app, theme) {
        Some(l) => block.title_bottom(l.left_aligned()),
        None => block,
    };
    f.render_widget(block, area);
    let pos_name = &app.classes.names[app.positive];
    let mut lines = Vec::new();
    let oof = it
        .oof
        .as_ref()
        .filter(|_| app.source == super::fit_view::Source::OutOfFold);
    match it.score {
        Some(_) if oof.is_some() => {
            let o = oof.unwrap_or_else(|| unreachable!("checked"));
            let n = &app.classes.names;
            lines.push(Line::from(vec![
                Span::raw(format!(
                    "out of fold: P({}) {:.3} · label {} · ",
                    n[o.suggested], o.probs[o.suggested], n[o.label]
                )),
                if o.is_issue {
                    Span::styled(
                        format!("likely label error ({:.3})", o.issue_score),
                        theme.bad(),
                    )
                } else {
                    Span::styled(format!("issue score {:.3}", o.issue_score), theme.dim())
                },
            ]));
            lines.push(Line::styled(o.reason.clone(), theme.dim()));
        }
        Some(p) => {
            let width = info_area.width.saturating_sub(24).max(10) as usize;
            let filled = ((p * width as f64).round() as usize).min(width);
            let tpos =
                ((app.threshold * width as f64).round() as usize).min(width.saturating_sub(1));
            let bar: String = (0..width)
                .map(|k| {
                    if k == tpos {
                        '┃'
                    } else if k < filled {
                        '█'
                    } else {
                        '░'
                    }
                })
                .collect();
            let decision = predicted_class_at(&app.classes, app.threshold, p);
            lines.push(Line::from(vec![
                Span::raw(format!("P({pos_name}) {p:.3} ")),
                Span::styled(
                    bar,
                    if p >= app.threshold {
                        theme.positive()
                    } else {
                        theme.negative()
                    },
                ),
            ]));
            lines.push(Line::from(format!(
                "threshold {:.3} → {decision}",
                app.threshold
            )));
        }
        None if it.error.is_some() => {
            lines.push(Line::styled("not scored: unreadable file", theme.bad()))
        }
        None => lines.push(Line::styled(
            "not scored yet (c: classify this, a: all)",
            theme.dim(),
        )),
    }
    let truth = match (it.label, cell_of(it, app.positive, app.threshold)) {
        (Some(l), Some(CellKind::TruePositive | CellKind::TrueNegative)) => Span::styled(
            format!("label {} ✓ agrees", app.classes.names[l]),
            theme.good(),
        ),
        (Some(l), Some(_)) => Span::styled(
            format!("label {} ✗ disagrees", app.classes.names[l]),
            theme.bad(),
        ),
        (Some(l), None) => Span::raw(format!("label {}", app.classes.names[l])),
        (None, _) => Span::styled("no label (folder names no class)", theme.dim()),
    };
    let split = it
        .split
        .map(|s| format!(" · split {s}"))
        .unwrap_or_default();
    let marks = match (it.mark.reviewed, it.mark.flagged) {
        (true, true) => " · reviewed · flagged",
        (true, false) => " · reviewed",
        (false, true) => " · flagged",
        _ => "",
    };
    lines.push(Line::from(vec![truth, Span::raw(split), Span::raw(marks)]));
    if app.mode == Mode::Window {
        lines.push(Line::styled(
            "window/level: shown only; scores use the file's rule",
            theme.dim(),
        ));
    }
    f.render_widget(Paragraph::new(lines), info_area);
}

pub(super) fn opt(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.3}")).unwrap_or_else(|| "–".into())
}

fn draw_roc(f: &mut Frame, app: &App, area: Rect, theme: Theme) {
    let mut y = Vec::new();
    let mut s = Vec::new();
    for it in &app.items {
        if let (Some(l), Some(p)) = (it.label, it.score) {
            y.push(l == app.positive);
            s.push(p);
        }
    }
    let title = format!(
        " ROC curve · AUC {} · ● operating point @ {:.3} ",
        opt(app.metrics.as_ref().and_then(|m| m.roc_auc)),
        app.threshold
    );
    if y.is_empty() {
        f.render_widget(
            Paragraph::new("no labelled, scored images yet").block(Block::bordered().title(title)),
            area,
        );
        return;
    }
    let curve: Vec<(f64, f64)> = osteoai_core::metrics::roc_curve(&y, &s)
        .into_iter()
        .map(|(x, y, _)| (x, y))
        .collect();
    let c = app.confusion;
    let op = [(
        c.fp as f64 / (c.fp + c.tn).max(1) as f64,
        c.tp as f64 / (c.tp + c.fn_).max(1) as f64,
    )];
    let diag = [(0.0, 0.0), (1.0, 1.0)];
    let data = vec![
        Dataset::default()
            .marker(symbols::Marker::Dot)
            .graph_type(GraphType::Line)
            .style(theme.dim())
            .data(&diag),
        Dataset::default()
            .name("ROC")
            .marker(symbols::Marker::Braille)
            .graph_type(GraphType::Line)
            .style(theme.title())
            .data(&curve),
        Dataset::default()
            .name("threshold")
            .marker(symbols::Marker::Block)
            .graph_type(GraphType::Scatter)
            .style(theme.warning())
            .data(&op),
    ];
    let chart = Chart::new(data)
        .block(Block::bordered().title(title))
        .x_axis(
            Axis::default()
                .title("1 - specificity")
                .bounds([0.0, 1.0])
                .labels(["0", "0.5", "1"]),
        )
        .y_axis(
            Axis::default()
                .title("sensitivity")
                .bounds([0.0, 1.0])
                .labels(["0", "0.5", "1"]),
        );
    f.render_widget(chart, area);
}

pub const HELP: &[(&str, &str)] = &[
    ("mouse", "click a row, cell or matrix cell; wheel scrolls"),
    ("z", "zoom the preview (or click it)"),
    (
        "w",
        "window/level the preview: ←→ width ↑↓ level, r a f i n [ ]",
    ),
    (
        "i",
        "DICOM metadata panel (patient data only with --show-phi)",
    ),
    ("j k ↓ ↑", "move (h l ← → in the grid)"),
    ("g G Home End", "first / last"),
    ("PgUp PgDn ^u ^d", "page / half page"),
    ("c Enter", "classify the selected image"),
    ("a", "classify the whole folder"),
    (
        "T",
        "fine-tune the CNN on train/ (asks first; Esc stops it)",
    ),
    ("Esc", "cancel the run; else clear filters"),
    ("+ - ] [", "threshold ±0.01 ({ } ±0.05, 0 model's)"),
    ("f F", "filter: errors, FP, FN, uncertain, unreviewed…"),
    ("b", "filter by label"),
    ("p", "filter by split"),
    ("s", "sort: name, score, error margin"),
    ("/", "search by name"),
    ("m", "pick a matrix cell to see its images"),
    ("C", "clear the matrix cell filter"),
    ("v Tab", "list → thumbnail grid → ROC curve"),
    ("Space x", "mark reviewed / flag"),
    ("R", "relabel: move to the other class folder"),
    ("u", "undo the last relabel"),
    ("E", "export the list to .osteoai/export-*.csv"),
    ("e M >", "heatmap (where the model looks), method, class"),
    ("A", "audit: duplicates, leaks, conflicts, quality"),
    ("O", "fit the folder's own labels (out of fold)"),
    ("o", "scores: model ↔ out of fold"),
    ("? / q", "help / quit"),
];

/// Keys of the Audit view.
pub const AUDIT_HELP: &[(&str, &str)] = &[
    ("Tab ] [ ← →", "next / previous kind of finding"),
    ("j k g G", "walk the findings of this kind"),
    (
        "y / n / ⌫",
        "pair: copies / not copies / forget (audit.json)",
    ),
    ("1 2", "which image of the pair R and Enter act on"),
    ("R, then y", "relabel that image (journalled, u undoes)"),
    ("Enter", "show that image in the list"),
    ("r", "run the audit again"),
    ("A Esc", "back to the list"),
    ("? / q", "help / quit"),
];

fn draw_help(f: &mut Frame, area: Rect, theme: Theme, keys: &[(&str, &str)]) {
    let h = (keys.len() as u16 + 4).min(area.height);
    let a = centered(area, 66.min(area.width), h);
    let mut lines: Vec<Line> = keys
        .iter()
        .map(|(k, d)| {
            Line::from(vec![
                Span::styled(format!("{k:>17}  "), theme.focus()),
                Span::raw(*d),
            ])
        })
        .collect();
    lines.push(Line::from(""));
    lines.push(Line::styled(NOT_CLINICAL, theme.warning()).alignment(Alignment::Center));
    f.render_widget(Clear, a);
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" keys ")),
        a,
    );
}
