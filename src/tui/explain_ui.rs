//! The heatmap's line on the preview's border: the method, the class and its probability, the
//! peak in the image's pixels, or what is happening (computing, refining, why there is none).

use ratatui::text::{Line, Span};

use super::app::App;
use super::explain_view::MapEntry;
use super::theme::Theme;

pub fn map_line(app: &App, theme: Theme) -> Option<Line<'static>> {
    let key = app.explain_wanted()?;
    let names = &app.model_classes.names;
    let line = match app.explain.get(&key) {
        None | Some(MapEntry::Pending) => Line::styled(" map: computing… ", theme.dim()),
        Some(MapEntry::Failed(e)) => Line::styled(format!(" map: {e} "), theme.bad()),
        Some(MapEntry::Ready { map, refining }) => {
            let class = names.get(map.class).map(String::as_str).unwrap_or("?");
            let p = map.probs.get(map.class).copied().unwrap_or(f64::NAN);
            let (x, y) = map.peak();
            let mut spans = vec![Span::styled(format!(" map {} ", map.method), theme.focus())];
            if *refining {
                spans.push(Span::styled("(refining…) ", theme.dim()));
            }
            spans.push(Span::raw(format!(
                "{class} {p:.2} · peak ({x:.0}, {y:.0}) "
            )));
            if map.is_flat() {
                spans.push(Span::styled("· flat: no location stands out ", theme.dim()));
            }
            Line::from(spans)
        }
    };
    Some(line)
}
