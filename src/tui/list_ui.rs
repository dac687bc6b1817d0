//! The left pane: the file list, the thumbnail grid, or the ROC curve with the operating point.

use osteoai_core::engine::predicted_class_at;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout as Split, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::symbols;
use ratatui::widgets::{
    Axis, Block, Borders, Cell, Chart, Dataset, GraphType, Paragraph, Row, Table, Wrap,
};
use ratatui_image::Image;

use super::app::App;
use super::images::{Images, ImgEntry, ImgKey};
use super::mouse::Hit;
use super::preview_ui::opt;
use super::review::{CellKind, Item, cell_of};
use super::theme::Theme;

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

pub(super) fn draw_list(f: &mut Frame, app: &mut App, area: Rect, theme: Theme) {
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
    if inner.height > 1 {
        let below_header = Rect {
            y: inner.y + 1,
            height: inner.height - 1,
            ..inner
        };
        say_when_empty(f, app, below_header, theme);
    }
}

/// In place of an empty list or grid (images there, none in the view): why, and the way out.
fn say_when_empty(f: &mut Frame, app: &App, area: Rect, theme: Theme) {
    if app.visible.is_empty() && !app.items.is_empty() {
        f.render_widget(
            Paragraph::new(format!(
                "none of the {} images is in this view · Esc clears the filters",
                app.items.len()
            ))
            .style(theme.dim())
            .wrap(Wrap { trim: true }),
            area,
        );
    }
}

/// The last component of a relative path (split and label have their own columns).
pub(super) fn file_name(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

pub(super) fn draw_grid(
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
    say_when_empty(f, app, inner, theme);
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

pub(super) fn draw_roc(f: &mut Frame, app: &App, area: Rect, theme: Theme) {
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
