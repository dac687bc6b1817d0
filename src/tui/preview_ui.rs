//! The right pane's image: the preview with its score bar, decision, label and heatmap.

use osteoai_core::engine::predicted_class_at;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout as Split, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};
use ratatui_image::Image;

use super::app::{App, Mode};
use super::explain_view::MapEntry;
use super::images::{HeatKey, Images, ImgEntry, ImgKey, ViewKey};
use super::list_ui::file_name;
use super::review::{CellKind, cell_of};
use super::theme::Theme;

pub(super) fn draw_preview(
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
