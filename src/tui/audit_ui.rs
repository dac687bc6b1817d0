//! Drawing the Audit view: the kinds of finding with their counts and the selected kind's list on
//! the left; the selected finding on the right, a pair side by side (both paths, labels, splits,
//! similarity, verification, a person's decision) or one image with its finding.

use std::path::Path;

use osteoai_core::audit::report::PairKind;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout as Split, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, Wrap};
use ratatui_image::Image;

use super::app::App;
use super::audit_view::AuditState;
use super::images::{Images, ImgEntry, ImgKey};
use super::theme::Theme;

fn kind_title(kind: &str) -> &str {
    match kind {
        "leak" => "leaks (held-out with a copy in train)",
        "label_conflict" => "label conflicts",
        "exact_duplicate" => "exact duplicates",
        "near_duplicate" => "augmented copies (verified)",
        "possible" => "possible copies (review)",
        "dismissed" => "dismissed by you",
        "unreadable" => "unreadable",
        "low_information" => "low information",
        "odd_size" => "odd size",
        "odd_aspect" => "odd aspect",
        k => k,
    }
}

fn rel(root: &Path, p: &str) -> String {
    Path::new(p)
        .strip_prefix(root)
        .unwrap_or(Path::new(p))
        .to_string_lossy()
        .into_owned()
}

/// The whole body in the Audit layout; returns the images it wants.
pub fn draw(
    f: &mut Frame,
    app: &App,
    images: &mut Images,
    body: Rect,
    theme: Theme,
) -> Vec<ImgKey> {
    let mut wanted = Vec::new();
    let Some(a) = &app.audit else {
        let msg = match &app.bg {
            Some(b) => format!(
                "Auditing {}: {} {}/{} …\n\nDuplicates, augmented copies across splits (verified geometrically), label conflicts and image quality. Esc cancels.",
                app.root.display(),
                b.stage,
                b.done,
                b.total
            ),
            None => "No audit yet: press r (or A from the list) to audit this folder.".into(),
        };
        f.render_widget(
            Paragraph::new(msg)
                .wrap(Wrap { trim: true })
                .block(Block::bordered().title(" audit ")),
            body,
        );
        return wanted;
    };
    let wide = body.width >= 90;
    let (left, right) = if wide {
        let [l, r] =
            Split::horizontal([Constraint::Percentage(42), Constraint::Min(30)]).areas(body);
        (l, Some(r))
    } else {
        (body, None)
    };
    draw_list(f, app, a, left, theme);
    if let Some(r) = right {
        draw_finding(f, app, a, images, r, theme, &mut wanted);
    }
    wanted
}

fn draw_list(f: &mut Frame, app: &App, a: &AuditState, area: Rect, theme: Theme) {
    let kinds_h = (a.kinds.len() as u16 + 2).min(area.height / 2).max(3);
    let [top, bottom] =
        Split::vertical([Constraint::Length(kinds_h), Constraint::Min(3)]).areas(area);
    let r = &a.report;
    let leak_line = r
        .leakage
        .iter()
        .map(|l| format!("{}→{} {:.0}%", l.split, l.into, 100.0 * l.share))
        .collect::<Vec<_>>()
        .join("  ");
    let lines: Vec<Line> = a
        .kinds
        .iter()
        .enumerate()
        .map(|(k, (kind, n))| {
            let text = format!(
                "{} {:>5}  {}",
                if k == a.kind { "▸" } else { " " },
                n,
                kind_title(kind)
            );
            if k == a.kind {
                Line::styled(text, theme.selected())
            } else {
                Line::raw(text)
            }
        })
        .collect();
    f.render_widget(
        Paragraph::new(lines).block(
            Block::bordered().title(format!(" audit · {} images · {leak_line} ", r.images.len())),
        ),
        top,
    );
    let idx = a.of_kind();
    let block = Block::bordered().title(format!(
        " {} · {} of {} · Tab kind · j/k ",
        a.kinds
            .get(a.kind)
            .map(|k| kind_title(k.0))
            .unwrap_or("nothing found"),
        if idx.is_empty() { 0 } else { a.pos + 1 },
        idx.len()
    ));
    let inner = block.inner(bottom);
    f.render_widget(block, bottom);
    let height = inner.height as usize;
    let first = a
        .pos
        .saturating_sub(height / 2)
        .min(idx.len().saturating_sub(height));
    let rows: Vec<Row> = idx
        .iter()
        .enumerate()
        .skip(first)
        .take(height)
        .map(|(k, &i)| {
            let fnd = &a.findings[i];
            // A pair: both file names (the panel on the right has the full paths).
            let file = |p: &str| {
                Path::new(p)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            };
            let text = if fnd.other.is_empty() {
                rel(&app.root, &fnd.path)
            } else {
                format!("{} ↔ {}", file(&fnd.path), file(&fnd.other))
            };
            let row = Row::new(vec![
                Cell::from(fnd.score.map(|s| format!("{s:.3}")).unwrap_or_default()),
                Cell::from(text),
            ]);
            if k == a.pos {
                row.style(theme.selected())
            } else {
                row
            }
        })
        .collect();
    f.render_widget(
        Table::new(rows, [Constraint::Length(6), Constraint::Min(10)]).column_spacing(1),
        inner,
    );
}

#[allow(clippy::too_many_arguments)]
fn picture(
    f: &mut Frame,
    images: &mut Images,
    path: &str,
    area: Rect,
    theme: Theme,
    wanted: &mut Vec<ImgKey>,
) {
    let key = ImgKey::new(path.into(), area.width, area.height);
    match images.get(&key) {
        Some(ImgEntry::Ready(p, _)) => f.render_widget(Image::new(p), area),
        Some(ImgEntry::Failed(e)) => f.render_widget(
            Paragraph::new(format!("cannot show: {e}"))
                .style(theme.bad())
                .wrap(Wrap { trim: true }),
            area,
        ),
        None => {
            f.render_widget(Paragraph::new("loading…").style(theme.dim()), area);
            wanted.push(key);
        }
    }
}

fn draw_finding(
    f: &mut Frame,
    app: &App,
    a: &AuditState,
    images: &mut Images,
    area: Rect,
    theme: Theme,
    wanted: &mut Vec<ImgKey>,
) {
    let Some(fnd) = a.current() else {
        f.render_widget(Block::bordered().title(" finding "), area);
        return;
    };
    let r = &a.report;
    let block = Block::bordered().title(format!(" {} ", kind_title(fnd.kind)));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let info_h = 7.min(inner.height / 2);
    let [pics, info] =
        Split::vertical([Constraint::Min(3), Constraint::Length(info_h)]).areas(inner);
    let describe = |p: &str| -> String {
        let img = r.images.iter().find(|im| im.path == p);
        let label = img
            .and_then(|i| i.label.clone())
            .unwrap_or_else(|| "unlabelled".into());
        let split = img
            .and_then(|i| i.split)
            .map(|s| s.to_string())
            .unwrap_or_else(|| "-".into());
        format!("{label} · {split} · {}", rel(&app.root, p))
    };
    let mut lines = Vec::new();
    if fnd.other.is_empty() {
        picture(f, images, &fnd.path, pics, theme, wanted);
        lines.push(Line::from(describe(&fnd.path)));
        lines.push(Line::styled(fnd.detail.clone(), theme.dim()));
    } else {
        let [l, rr] =
            Split::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(pics);
        picture(f, images, &fnd.path, l, theme, wanted);
        picture(f, images, &fnd.other, rr, theme, wanted);
        let mark = |side: usize| {
            if a.side == side {
                Span::styled("▶", theme.focus())
            } else {
                Span::raw(" ")
            }
        };
        lines.push(Line::from(vec![
            mark(0),
            Span::raw(format!("1 {}", describe(&fnd.path))),
        ]));
        lines.push(Line::from(vec![
            mark(1),
            Span::raw(format!("2 {}", describe(&fnd.other))),
        ]));
        if let Some(p) = fnd.pair.map(|k| &r.pairs[k]) {
            let v = p.verification;
            lines.push(Line::from(format!(
                "similarity {} · verification {} · {} inliers · detail {}{}",
                p.similarity
                    .map(|s| format!("{s:.3}"))
                    .unwrap_or_else(|| "-".into()),
                match p.kind {
                    PairKind::ExactBytes => "identical bytes".to_string(),
                    PairKind::ExactPixels => "identical pixels".to_string(),
                    _ => v
                        .map(|v| format!("{:.3}", v.score))
                        .unwrap_or_else(|| "-".into()),
                },
                v.map(|v| v.inliers).unwrap_or(0),
                v.map(|v| format!("{:.2}", v.detail))
                    .unwrap_or_else(|| "-".into()),
                if v.is_some_and(|v| v.mirrored) {
                    " · mirrored"
                } else {
                    ""
                }
            )));
            let decision = match p.decision {
                Some(d) => Span::styled(
                    format!("your decision: {d:?}").to_lowercase(),
                    theme.focus(),
                ),
                None => Span::styled("undecided", theme.dim()),
            };
            lines.push(Line::from(vec![
                decision,
                Span::raw(
                    "   y copies · n not copies · ⌫ forget · 1/2 side · R relabel · Enter list",
                ),
            ]));
        } else {
            lines.push(Line::styled(fnd.detail.clone(), theme.dim()));
        }
    }
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: true })
            .style(ratatui::style::Style::new().remove_modifier(Modifier::DIM)),
        info,
    );
}
