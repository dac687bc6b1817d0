//! The fine-tuning panel: where the run is (epoch, step, loss, speed, time left) and its
//! learning curves so far (val ROC AUC; train and val loss), drawn with ratatui's `Chart`.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols;
use ratatui::text::Line;
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType, Paragraph, Wrap};

use super::theme::Theme;
use super::train_view::TrainPanel;

fn clock(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

/// Rows a line of text takes when word-wrapped at `width` columns.
fn wrapped_rows(text: &str, width: usize) -> usize {
    let (mut rows, mut col) = (1, 0);
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let n = word.chars().count();
        if col == 0 {
            col = n;
        } else if col + 1 + n <= width {
            col += 1 + n;
        } else {
            rows += 1;
            col = n;
        }
        while col > width {
            rows += 1;
            col -= width;
        }
    }
    rows
}

pub fn draw(f: &mut Frame, p: &TrainPanel, area: Rect, theme: Theme) {
    let block = Block::bordered()
        .title(" fine-tuning the CNN (not for clinical use) ")
        .title_style(theme.title());
    let inner = block.inner(area);
    f.render_widget(block, area);
    let mut lines: Vec<Line> = Vec::new();
    if p.epochs == 0 {
        lines.push(Line::from(
            "checking the splits for copies, decoding the training images…",
        ));
    } else {
        lines.push(Line::from(format!(
            "epoch {}/{} · step {}/{} · loss {:.4} · {:.1} img/s",
            p.epoch, p.epochs, p.batch, p.batches, p.loss, p.img_s
        )));
        lines.push(Line::from(if p.evaluating {
            "scoring val/…".to_string()
        } else {
            format!("{} left in this epoch", clock(p.eta_s))
        }));
    }
    if let Some(best) = p
        .history
        .iter()
        .filter(|e| e.val_auc.is_finite())
        .max_by(|a, b| a.val_auc.total_cmp(&b.val_auc))
    {
        lines.push(Line::from(format!(
            "best val ROC AUC {:.4} (epoch {})",
            best.val_auc, best.epoch
        )));
    }
    match &p.finished {
        Some(m) => lines.push(Line::styled(format!("{m} · Esc closes"), theme.good())),
        None => lines.push(Line::styled(
            "Esc stops after this step (the best model so far is kept)",
            theme.dim(),
        )),
    }
    // What the audit found, under where the run is (that matters more while it runs).
    lines.extend(
        p.notes
            .iter()
            .take(4)
            .map(|n| Line::styled(n.clone(), theme.warning())),
    );
    // As many rows as the wrapped text takes, leaving the curves at least 6.
    let width = inner.width.max(1) as usize;
    let rows: usize = lines
        .iter()
        .map(|l| {
            let text: String = l.spans.iter().map(|s| s.content.as_ref()).collect();
            wrapped_rows(&text, width)
        })
        .sum();
    let rows = (rows as u16).min(inner.height.saturating_sub(6).max(4));
    let [text, curves] =
        Layout::vertical([Constraint::Length(rows), Constraint::Min(3)]).areas(inner);
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), text);
    if curves.height < 4 || p.history.is_empty() {
        return;
    }
    let [auc_area, loss_area] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(curves);
    let n = p.epochs.max(p.history.len()).max(2) as f64;
    let auc: Vec<(f64, f64)> = p
        .history
        .iter()
        .filter(|e| e.val_auc.is_finite())
        .map(|e| (e.epoch as f64, e.val_auc))
        .collect();
    let lo = auc.iter().map(|a| a.1).fold(1.0, f64::min).min(0.5);
    let chart = curves_chart(
        " val ROC AUC ",
        vec![line("val AUC", theme.title(), &auc)],
        n,
        [lo, 1.0],
        [format!("{lo:.2}"), "1".to_string()],
    );
    f.render_widget(chart, auc_area);
    let train: Vec<(f64, f64)> = p
        .history
        .iter()
        .map(|e| (e.epoch as f64, e.train_loss))
        .collect();
    let val: Vec<(f64, f64)> = p
        .history
        .iter()
        .filter(|e| e.val_loss.is_finite())
        .map(|e| (e.epoch as f64, e.val_loss))
        .collect();
    let hi = train
        .iter()
        .chain(&val)
        .map(|a| a.1)
        .filter(|v| v.is_finite())
        .fold(0.1, f64::max);
    let chart = curves_chart(
        " loss ",
        vec![
            line("train", theme.warning(), &train),
            line("val", theme.good(), &val),
        ],
        n,
        [0.0, hi],
        ["0".to_string(), format!("{hi:.2}")],
    );
    f.render_widget(chart, loss_area);
}

/// One learning curve: (epoch, value) points joined by a line.
fn line<'a>(name: &'a str, style: Style, points: &'a [(f64, f64)]) -> Dataset<'a> {
    Dataset::default()
        .name(name)
        .marker(symbols::Marker::Braille)
        .graph_type(GraphType::Line)
        .style(style)
        .data(points)
}

/// Curves over epochs 1..=`epochs` in a titled box, the y axis over `y` labelled at its ends.
fn curves_chart<'a>(
    title: &'a str,
    curves: Vec<Dataset<'a>>,
    epochs: f64,
    y: [f64; 2],
    y_labels: [String; 2],
) -> Chart<'a> {
    Chart::new(curves)
        .block(Block::bordered().title(title))
        .x_axis(
            Axis::default()
                .bounds([1.0, epochs])
                .labels(["1".to_string(), format!("{epochs}")]),
        )
        .y_axis(Axis::default().bounds(y).labels(y_labels))
}

#[cfg(test)]
mod tests {
    use super::wrapped_rows;

    #[test]
    fn rows_of_wrapped_text() {
        assert_eq!(wrapped_rows("", 10), 1);
        assert_eq!(wrapped_rows("abc def", 7), 1);
        assert_eq!(wrapped_rows("abc defg", 7), 2);
        assert_eq!(wrapped_rows("abcdefghijklmnop", 5), 4);
        assert_eq!(wrapped_rows("a bb ccc dddd", 4), 3);
    }
}
