//! The help overlay and the key lists it shows.

use ratatui::Frame;
use ratatui::layout::{Alignment, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use super::theme::Theme;
use super::ui::{NOT_CLINICAL, centered};

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

pub(super) fn draw_help(f: &mut Frame, area: Rect, theme: Theme, keys: &[(&str, &str)]) {
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
