//! The confusion matrix panel: two classes (cells selectable, the metrics of the positive
//! class), or N x N for a fit with more classes (out of fold, label rows, predicted columns).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use super::app::{App, Mode};
use super::fit_view::Source;
use super::review::{CellKind, matrix_n};
use super::theme::Theme;
use super::ui::opt;

fn short(name: &str) -> String {
    name.chars().take(6).collect()
}

fn other(app: &App) -> Option<usize> {
    (0..app.classes.names.len()).find(|&c| c != app.positive)
}

fn title(app: &App) -> String {
    match (&app.fit, app.source) {
        (Some(f), Source::OutOfFold) => format!(
            "out of fold · AUC {}{}",
            opt(f.roc_auc),
            f.auc_spread
                .map(|(_, sd)| format!(" ±{sd:.3}"))
                .unwrap_or_default()
        ),
        _ => "confusion matrix".into(),
    }
}

pub fn draw(f: &mut Frame, app: &App, area: Rect, theme: Theme) {
    if app.view.multiclass {
        draw_n(f, app, area, theme)
    } else {
        draw_binary(f, app, area, theme)
    }
}

fn draw_n(f: &mut Frame, app: &App, area: Rect, theme: Theme) {
    let focus = matches!(app.mode, Mode::Matrix { .. });
    let block = Block::bordered()
        .title(format!(
            " {} · {} classes ",
            title(app),
            app.classes.names.len()
        ))
        .border_style(if focus { theme.focus() } else { Style::new() });
    let inner = block.inner(area);
    f.render_widget(block, area);
    let k = app.classes.names.len();
    let m = matrix_n(&app.items, k);
    let sel = match app.mode {
        Mode::Matrix { row, col } => Some((row, col)),
        _ => app.view.cell_n,
    };
    let mut lines = vec![Line::from(
        std::iter::once(format!("{:<8}", "lab\\pred"))
            .chain(app.classes.names.iter().map(|n| format!("{:>7}", short(n))))
            .collect::<String>(),
    )];
    for (r, row) in m.iter().enumerate() {
        let mut spans = vec![Span::raw(format!("{:<8}", short(&app.classes.names[r])))];
        for (c, n) in row.iter().enumerate() {
            let style = if sel == Some((r, c)) {
                theme.selected()
            } else if r == c {
                theme.good()
            } else if *n > 0 {
                theme.bad()
            } else {
                theme.dim()
            };
            spans.push(Span::styled(format!("{n:>7}"), style));
        }
        lines.push(Line::from(spans));
    }
    let total: usize = m.iter().flatten().sum();
    let right: usize = (0..k).map(|i| m[i][i]).sum();
    if let Some(fit) = &app.fit {
        lines.push(Line::from(format!(
            "n {total}  acc {}  label issues {}",
            opt((total > 0).then(|| right as f64 / total as f64)),
            fit.issues
        )));
    }
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}

fn draw_binary(f: &mut Frame, app: &App, area: Rect, theme: Theme) {
    let focus = matches!(app.mode, Mode::Matrix { .. });
    let block = Block::bordered()
        .title(format!(" {} @ {:.3} ", title(app), app.threshold))
        .border_style(if focus { theme.focus() } else { Style::new() });
    let inner = block.inner(area);
    f.render_widget(block, area);
    if !app.has_labels() {
        f.render_widget(
            Paragraph::new("No labels: folder names match no class, so there is no matrix. Images still browse and score.").style(theme.dim()).wrap(Wrap { trim: true }),
            inner,
        );
        return;
    }
    let Some(m) = &app.metrics else {
        f.render_widget(
            Paragraph::new("no scores yet — press a to classify the folder").style(theme.dim()),
            inner,
        );
        return;
    };
    let c = app.confusion;
    let pos = short(&app.classes.names[app.positive]);
    let neg = short(app.class_name(other(app)));
    let sel = match app.mode {
        Mode::Matrix { row, col } => Some(CellKind::at(row, col)),
        _ => app.view.cell,
    };
    let cell = |kind: CellKind, n: usize| {
        let good = matches!(kind, CellKind::TruePositive | CellKind::TrueNegative);
        let style = if sel == Some(kind) {
            theme.selected()
        } else if good {
            theme.good()
        } else {
            theme.bad()
        };
        Span::styled(format!("{n:>7}"), style)
    };
    let lines = vec![
        Line::from(format!("{:<13}{:>8}{:>8}", "actual\\pred", pos, neg)),
        Line::from(vec![
            Span::raw(format!("{pos:<13} ")),
            cell(CellKind::TruePositive, c.tp),
            Span::raw(" "),
            cell(CellKind::FalseNegative, c.fn_),
        ]),
        Line::from(vec![
            Span::raw(format!("{neg:<13} ")),
            cell(CellKind::FalsePositive, c.fp),
            Span::raw(" "),
            cell(CellKind::TrueNegative, c.tn),
        ]),
        Line::from(format!(
            "n {}  acc {}  AUC {}",
            m.n,
            opt(m.accuracy),
            opt(m.roc_auc)
        )),
        Line::from(format!(
            "sens {}  spec {}",
            opt(m.sensitivity),
            opt(m.specificity)
        )),
        Line::from(format!("PPV {}  NPV {}", opt(m.precision), opt(m.npv))),
    ];
    f.render_widget(Paragraph::new(lines), inner);
}

/// Where each selectable cell is drawn inside `area`, for the mouse: (cell, label row,
/// predicted column). Mirrors the layouts above.
pub fn cell_areas(app: &App, area: Rect) -> Vec<(Rect, usize, usize)> {
    let inner = Block::bordered().inner(area);
    let (k, x0, step) = if app.view.multiclass {
        (app.classes.names.len(), 8, 7)
    } else if app.has_labels() && app.metrics.is_some() {
        (2, 14, 8)
    } else {
        return vec![];
    };
    let mut out = Vec::new();
    for r in 0..k {
        for c in 0..k {
            let cell = Rect {
                x: inner.x + (x0 + step * c) as u16,
                y: inner.y + 1 + r as u16,
                width: 7,
                height: 1,
            }
            .intersection(inner);
            if !cell.is_empty() {
                out.push((cell, r, c));
            }
        }
    }
    out
}
