//! The metadata panel (`i`): the selected file's DICOM technical attributes, or its size and
//! depth. Patient-identifying attributes appear only with `--show-phi`; otherwise the panel says
//! they are hidden, without their values ever reaching the UI.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use super::app::App;
use super::theme::Theme;

pub fn draw(f: &mut Frame, app: &App, area: Rect, theme: Theme) {
    let block = Block::bordered().title(" metadata (i closes) ");
    let mut lines = Vec::new();
    let info = app.selected_item().and_then(|it| app.wl.info(&it.path));
    match info {
        None => lines.push(Line::styled("reading…", theme.dim())),
        Some(i) => {
            if let Some(meta) = &i.meta {
                let w = meta.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
                for (k, v) in meta {
                    lines.push(Line::from(vec![
                        Span::styled(format!("{k:<w$} "), theme.dim()),
                        Span::raw(v.clone()),
                    ]));
                }
                if app.wl.show_phi {
                    if i.phi.is_empty() {
                        lines.push(Line::styled("no patient data in this file", theme.dim()));
                    }
                    for (k, v) in &i.phi {
                        lines.push(Line::from(vec![
                            Span::styled(format!("{k:<w$} "), theme.bad()),
                            Span::raw(v.clone()),
                        ]));
                    }
                } else {
                    lines.push(Line::styled(
                        "patient data hidden (--show-phi shows it)",
                        theme.dim(),
                    ));
                }
            } else {
                lines.push(Line::raw("not a DICOM file"));
                if let Some(p) = &i.plain {
                    lines.push(Line::raw(p.clone()));
                }
            }
        }
    }
    f.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        area,
    );
}
