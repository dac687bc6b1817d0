//! The review model: items (one per image), filters, sort orders and the confusion matrix over
//! them. Pure functions: no terminal, no threads.

use std::path::PathBuf;

use osteoai_core::labels::Split;
use osteoai_core::marks::Mark;
use osteoai_core::metrics::{Confusion, Metrics};

/// One image in the dashboard. `label` and `score` are what the list and the matrix show: the
/// model's (`model_score`, labels of the model's classes) or, after a fit, the out-of-fold ones
/// (`oof`, labels of the folder's classes).
#[derive(Clone, Debug)]
pub struct Item {
    pub path: PathBuf,
    /// Path relative to the opened folder, for display and search.
    pub name: String,
    pub split: Option<Split>,
    pub label: Option<usize>,
    pub score: Option<f64>,
    pub error: Option<String>,
    pub mark: Mark,
    /// The loaded model's P(positive).
    pub model_score: Option<f64>,
    /// What the last audit found about this image.
    pub tags: Tags,
    /// Out-of-fold outcome of the last fit.
    pub oof: Option<Oof>,
}

/// Audit findings on one image (for the main list's filters).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tags {
    pub leaked: bool,
    pub duplicate: bool,
    pub conflict: bool,
    pub quality: bool,
}

/// One image's out-of-fold result (classes of the fit).
#[derive(Clone, Debug, PartialEq)]
pub struct Oof {
    pub label: usize,
    pub probs: Vec<f64>,
    pub suggested: usize,
    pub issue_score: f64,
    pub is_issue: bool,
    pub reason: String,
}

/// A cell of the confusion matrix (positive = the model's positive class).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellKind {
    TruePositive,
    FalseNegative,
    FalsePositive,
    TrueNegative,
}

impl CellKind {
    pub fn name(self) -> &'static str {
        match self {
            CellKind::TruePositive => "true positives",
            CellKind::FalseNegative => "false negatives",
            CellKind::FalsePositive => "false positives",
            CellKind::TrueNegative => "true negatives",
        }
    }

    /// Row (actual positive = 0) and column (predicted positive = 0) in the matrix.
    pub fn at(row: usize, col: usize) -> CellKind {
        match (row, col) {
            (0, 0) => CellKind::TruePositive,
            (0, _) => CellKind::FalseNegative,
            (_, 0) => CellKind::FalsePositive,
            _ => CellKind::TrueNegative,
        }
    }
}

/// Which items the list shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filter {
    All,
    /// Scored items whose prediction disagrees with their label.
    Errors,
    FalsePositives,
    FalseNegatives,
    /// Scored items within `UNCERTAIN_BAND` of the threshold.
    Uncertain,
    Unreviewed,
    Flagged,
    /// Files that could not be read.
    Failed,
    Unscored,
    /// Audit: held-out images with a copy in an earlier split.
    Leaked,
    /// Audit: images with an exact or verified copy anywhere.
    Duplicate,
    /// Audit: copies that carry another label.
    Conflict,
    /// Audit: any quality flag.
    Quality,
    /// Fit: flagged as a likely label error.
    LabelIssues,
}

pub const UNCERTAIN_BAND: f64 = 0.1;

impl Filter {
    pub const CYCLE: [Filter; 14] = [
        Filter::All,
        Filter::Errors,
        Filter::FalsePositives,
        Filter::FalseNegatives,
        Filter::Uncertain,
        Filter::Unreviewed,
        Filter::Flagged,
        Filter::Failed,
        Filter::Unscored,
        Filter::Leaked,
        Filter::Duplicate,
        Filter::Conflict,
        Filter::Quality,
        Filter::LabelIssues,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Filter::All => "all",
            Filter::Errors => "errors",
            Filter::FalsePositives => "false positives",
            Filter::FalseNegatives => "false negatives",
            Filter::Uncertain => "uncertain",
            Filter::Unreviewed => "unreviewed",
            Filter::Flagged => "flagged",
            Filter::Failed => "unreadable",
            Filter::Unscored => "unscored",
            Filter::Leaked => "leaked (audit)",
            Filter::Duplicate => "duplicate (audit)",
            Filter::Conflict => "label conflict (audit)",
            Filter::Quality => "quality (audit)",
            Filter::LabelIssues => "label issues (fit)",
        }
    }

    pub fn step(self, forward: bool) -> Filter {
        let i = Self::CYCLE.iter().position(|f| *f == self).unwrap_or(0);
        let n = Self::CYCLE.len();
        Self::CYCLE[if forward {
            (i + 1) % n
        } else {
            (i + n - 1) % n
        }]
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sort {
    Name,
    ScoreDesc,
    ScoreAsc,
    /// Most confident mistakes first, then the rest by closeness to the threshold.
    ErrorMargin,
    /// Likely label errors first (the fit's issue score).
    IssueScore,
}

impl Sort {
    pub fn name(self) -> &'static str {
        match self {
            Sort::Name => "name",
            Sort::ScoreDesc => "score ↓",
            Sort::ScoreAsc => "score ↑",
            Sort::ErrorMargin => "error margin",
            Sort::IssueScore => "issue score",
        }
    }
    pub fn next(self) -> Sort {
        match self {
            Sort::Name => Sort::ScoreDesc,
            Sort::ScoreDesc => Sort::ScoreAsc,
            Sort::ScoreAsc => Sort::ErrorMargin,
            Sort::ErrorMargin => Sort::IssueScore,
            Sort::IssueScore => Sort::Name,
        }
    }
}

/// Everything that selects the visible items.
#[derive(Clone, Debug, PartialEq)]
pub struct View {
    pub filter: Filter,
    /// `Some(None)`: unlabelled only; `Some(Some(c))`: label c only.
    pub label: Option<Option<usize>>,
    pub split: Option<Option<Split>>,
    pub cell: Option<CellKind>,
    pub search: String,
    pub sort: Sort,
    /// More than two classes (a fit's out-of-fold view): predictions are the fit's suggested
    /// classes, and cells are (label, predicted) pairs.
    pub multiclass: bool,
    pub cell_n: Option<(usize, usize)>,
}

impl Default for View {
    fn default() -> Self {
        View {
            filter: Filter::All,
            label: None,
            split: None,
            cell: None,
            search: String::new(),
            sort: Sort::Name,
            multiclass: false,
            cell_n: None,
        }
    }
}

/// The matrix cell an item falls in, when it is labelled and scored.
pub fn cell_of(item: &Item, positive: usize, threshold: f64) -> Option<CellKind> {
    let (label, p) = (item.label?, item.score?);
    Some(match (label == positive, p >= threshold) {
        (true, true) => CellKind::TruePositive,
        (true, false) => CellKind::FalseNegative,
        (false, true) => CellKind::FalsePositive,
        (false, false) => CellKind::TrueNegative,
    })
}

/// The class predicted out of fold, in the multiclass view.
pub fn predicted_n(item: &Item) -> Option<usize> {
    item.oof.as_ref().map(|o| o.suggested)
}

fn keep(item: &Item, v: &View, positive: usize, threshold: f64, search: &str) -> bool {
    let cell = cell_of(item, positive, threshold);
    if v.multiclass {
        let wrong = matches!((item.label, predicted_n(item)), (Some(l), Some(p)) if l != p);
        let ok = match v.filter {
            Filter::Errors | Filter::FalsePositives | Filter::FalseNegatives => wrong,
            Filter::Uncertain => item.oof.as_ref().is_some_and(|o| {
                let mut p = o.probs.clone();
                p.sort_by(|a, b| b.total_cmp(a));
                p.len() > 1 && p[0] - p[1] < 2.0 * UNCERTAIN_BAND
            }),
            _ => keep_common(item, v.filter),
        };
        return ok
            && v.label.is_none_or(|l| item.label == l)
            && v.split.is_none_or(|s| item.split == s)
            && v.cell_n
                .is_none_or(|(r, c)| item.label == Some(r) && predicted_n(item) == Some(c))
            && (search.is_empty() || item.name.to_lowercase().contains(search));
    }
    let ok = match v.filter {
        Filter::All => true,
        Filter::Errors => matches!(
            cell,
            Some(CellKind::FalsePositive | CellKind::FalseNegative)
        ),
        Filter::FalsePositives => cell == Some(CellKind::FalsePositive),
        Filter::FalseNegatives => cell == Some(CellKind::FalseNegative),
        Filter::Uncertain => item
            .score
            .is_some_and(|p| (p - threshold).abs() < UNCERTAIN_BAND),
        f => keep_common(item, f),
    };
    ok && v.label.is_none_or(|l| item.label == l)
        && v.split.is_none_or(|s| item.split == s)
        && v.cell.is_none_or(|c| cell == Some(c))
        && (search.is_empty() || item.name.to_lowercase().contains(search))
}

/// The filters that mean the same with two classes or more.
fn keep_common(item: &Item, f: Filter) -> bool {
    match f {
        Filter::Unreviewed => !item.mark.reviewed,
        Filter::Flagged => item.mark.flagged,
        Filter::Failed => item.error.is_some(),
        Filter::Unscored => item.score.is_none() && item.error.is_none(),
        Filter::Leaked => item.tags.leaked,
        Filter::Duplicate => item.tags.duplicate,
        Filter::Conflict => item.tags.conflict,
        Filter::Quality => item.tags.quality,
        Filter::LabelIssues => item.oof.as_ref().is_some_and(|o| o.is_issue),
        _ => true,
    }
}

/// The N x N out-of-fold matrix `[label][predicted]` over labelled items with a fit result.
pub fn matrix_n(items: &[Item], k: usize) -> Vec<Vec<usize>> {
    let mut m = vec![vec![0usize; k]; k];
    for it in items {
        if let (Some(l), Some(p)) = (it.label, predicted_n(it))
            && l < k
            && p < k
        {
            m[l][p] += 1;
        }
    }
    m
}

/// Indices of the items the view shows, in display order.
pub fn visible(items: &[Item], v: &View, positive: usize, threshold: f64) -> Vec<usize> {
    let search = v.search.to_lowercase();
    let mut idx: Vec<usize> = (0..items.len())
        .filter(|&i| keep(&items[i], v, positive, threshold, &search))
        .collect();
    let score = |i: usize| items[i].score;
    match v.sort {
        Sort::Name => {}
        Sort::ScoreDesc => idx.sort_by(|&a, &b| {
            score(b)
                .unwrap_or(-1.0)
                .total_cmp(&score(a).unwrap_or(-1.0))
        }),
        Sort::ScoreAsc => {
            idx.sort_by(|&a, &b| score(a).unwrap_or(2.0).total_cmp(&score(b).unwrap_or(2.0)))
        }
        Sort::ErrorMargin => {
            // Key: wrong predictions first by distance from the threshold (largest first), then
            // right ones by distance (smallest first), then unscored.
            let key = |i: usize| -> (u8, f64) {
                let it = &items[i];
                match (cell_of(it, positive, threshold), it.score) {
                    (Some(CellKind::FalsePositive | CellKind::FalseNegative), Some(p)) => {
                        (0, -(p - threshold).abs())
                    }
                    (_, Some(p)) => (1, (p - threshold).abs()),
                    _ => (2, 0.0),
                }
            };
            idx.sort_by(|&a, &b| {
                let (ka, kb) = (key(a), key(b));
                ka.0.cmp(&kb.0).then(ka.1.total_cmp(&kb.1))
            });
        }
        Sort::IssueScore => {
            let s = |i: usize| items[i].oof.as_ref().map_or(-1.0, |o| o.issue_score);
            idx.sort_by(|&a, &b| s(b).total_cmp(&s(a)));
        }
    }
    idx
}

/// Confusion and metrics over all labelled, scored items.
pub fn matrix(items: &[Item], positive: usize, threshold: f64) -> (Confusion, Option<Metrics>) {
    let mut y = Vec::new();
    let mut s = Vec::new();
    for it in items {
        if let (Some(l), Some(p)) = (it.label, it.score) {
            y.push(l == positive);
            s.push(p);
        }
    }
    if y.is_empty() {
        return (Confusion::default(), None);
    }
    let m = Metrics::compute(&y, &s, threshold);
    (m.confusion, Some(m))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn item(name: &str, label: Option<usize>, score: Option<f64>) -> Item {
        Item {
            path: PathBuf::from(name),
            name: name.into(),
            split: None,
            label,
            score,
            error: None,
            mark: Mark::default(),
            model_score: score,
            tags: Tags::default(),
            oof: None,
        }
    }

    pub fn sample() -> Vec<Item> {
        vec![
            item("a", Some(0), Some(0.9)),  // TP
            item("b", Some(0), Some(0.2)),  // FN
            item("c", Some(1), Some(0.7)),  // FP
            item("d", Some(1), Some(0.1)),  // TN
            item("e", Some(1), Some(0.55)), // FP, uncertain
            item("f", None, Some(0.8)),     // unlabelled
            item("g", Some(0), None),       // unscored
        ]
    }

    #[test]
    fn every_matrix_cell_filter_returns_exactly_its_count() {
        let items = sample();
        for t in [0.05, 0.3, 0.5, 0.6, 0.95] {
            let (c, _) = matrix(&items, 0, t);
            for (kind, n) in [
                (CellKind::TruePositive, c.tp),
                (CellKind::FalseNegative, c.fn_),
                (CellKind::FalsePositive, c.fp),
                (CellKind::TrueNegative, c.tn),
            ] {
                let v = View {
                    cell: Some(kind),
                    ..View::default()
                };
                let shown = visible(&items, &v, 0, t);
                assert_eq!(shown.len(), n, "{kind:?} at {t}");
                assert!(
                    shown
                        .iter()
                        .all(|&i| cell_of(&items[i], 0, t) == Some(kind))
                );
            }
        }
    }

    #[test]
    fn filters_and_sorts() {
        let items = sample();
        // Names shown at threshold 0.5 by the default view changed by `edit`.
        let shown = |edit: fn(&mut View)| {
            let mut v = View::default();
            edit(&mut v);
            visible(&items, &v, 0, 0.5)
                .iter()
                .map(|&i| items[i].name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(shown(|v| v.filter = Filter::Errors), ["b", "c", "e"]);
        assert_eq!(shown(|v| v.filter = Filter::Uncertain), ["e"]);
        assert_eq!(shown(|v| v.filter = Filter::Unscored), ["g"]);
        assert_eq!(shown(|v| v.label = Some(None)), ["f"]);
        assert_eq!(shown(|v| v.search = "E".into()), ["e"]);
        assert_eq!(
            shown(|v| v.sort = Sort::ScoreDesc),
            ["a", "f", "c", "e", "b", "d", "g"]
        );
        // Error margin: the mistakes first, most confident first (b: 0.3 off, c: 0.2, e: 0.05).
        assert_eq!(shown(|v| v.sort = Sort::ErrorMargin)[..3], ["b", "c", "e"]);
    }
}
