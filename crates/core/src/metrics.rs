//! Binary classification metrics against folder labels: confusion matrix at a threshold, the
//! rates derived from it, ROC AUC (rank statistic, ties counted half), PR AUC (average
//! precision) and the ROC curve.

use serde::{Deserialize, Serialize};

/// Counts at one threshold. "Positive" is the model's positive class (fracture).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confusion {
    pub tp: usize,
    pub fp: usize,
    pub tn: usize,
    #[serde(rename = "fn")]
    pub fn_: usize,
}

impl Confusion {
    pub fn add(&mut self, actual_positive: bool, score: f64, threshold: f64) {
        match (actual_positive, score >= threshold) {
            (true, true) => self.tp += 1,
            (true, false) => self.fn_ += 1,
            (false, true) => self.fp += 1,
            (false, false) => self.tn += 1,
        }
    }

    pub fn from_scores(positives: &[bool], scores: &[f64], threshold: f64) -> Self {
        let mut c = Confusion::default();
        for (&y, &s) in positives.iter().zip(scores) {
            c.add(y, s, threshold);
        }
        c
    }

    pub fn total(&self) -> usize {
        self.tp + self.fp + self.tn + self.fn_
    }
}

fn ratio(a: usize, b: usize) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// Everything `osteoai eval` reports for one set of images. Rates are `None` when undefined
/// (no positives, no negatives, no predicted positives ...).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub n: usize,
    pub threshold: f64,
    pub confusion: Confusion,
    pub accuracy: Option<f64>,
    /// Recall of the positive class (true positive rate).
    pub sensitivity: Option<f64>,
    /// True negative rate.
    pub specificity: Option<f64>,
    /// Positive predictive value.
    pub precision: Option<f64>,
    /// Negative predictive value.
    pub npv: Option<f64>,
    pub f1: Option<f64>,
    pub roc_auc: Option<f64>,
    /// Average precision.
    pub pr_auc: Option<f64>,
}

impl Metrics {
    pub fn compute(positives: &[bool], scores: &[f64], threshold: f64) -> Metrics {
        let c = Confusion::from_scores(positives, scores, threshold);
        let sensitivity = ratio(c.tp, c.tp + c.fn_);
        let precision = ratio(c.tp, c.tp + c.fp);
        let f1 = match (precision, sensitivity) {
            (Some(p), Some(r)) if p + r > 0.0 => Some(2.0 * p * r / (p + r)),
            (Some(_), Some(_)) => Some(0.0),
            _ => None,
        };
        Metrics {
            n: c.total(),
            threshold,
            confusion: c,
            accuracy: ratio(c.tp + c.tn, c.total()),
            sensitivity,
            specificity: ratio(c.tn, c.tn + c.fp),
            precision,
            npv: ratio(c.tn, c.tn + c.fn_),
            f1,
            roc_auc: roc_auc(positives, scores),
            pr_auc: average_precision(positives, scores),
        }
    }
}

/// ROC AUC as the probability that a random positive scores above a random negative
/// (Mann-Whitney U, ties counted as one half). `None` without both classes.
pub fn roc_auc(positives: &[bool], scores: &[f64]) -> Option<f64> {
    let n_pos = positives.iter().filter(|p| **p).count();
    let n_neg = positives.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Average ranks over ties.
    let mut rank_sum_pos = 0.0;
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            if positives[k] {
                rank_sum_pos += avg_rank;
            }
        }
        i = j + 1;
    }
    let u = rank_sum_pos - (n_pos * (n_pos + 1)) as f64 / 2.0;
    Some(u / (n_pos as f64 * n_neg as f64))
}

/// Cumulative (true positives, false positives) when the threshold falls to each distinct
/// score, from the highest score to the lowest (tied scores enter together).
fn cumulative_counts(positives: &[bool], scores: &[f64]) -> Vec<(usize, usize, f64)> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut fp, mut out) = (0usize, 0usize, Vec::new());
    let mut i = 0;
    while i < idx.len() {
        let s = scores[idx[i]];
        while i < idx.len() && scores[idx[i]] == s {
            if positives[idx[i]] {
                tp += 1
            } else {
                fp += 1
            }
            i += 1;
        }
        out.push((tp, fp, s));
    }
    out
}

/// Average precision: sum over thresholds of (recall step) x precision, as scikit-learn.
pub fn average_precision(positives: &[bool], scores: &[f64]) -> Option<f64> {
    let n_pos = positives.iter().filter(|p| **p).count();
    if n_pos == 0 {
        return None;
    }
    let (mut ap, mut prev_recall) = (0.0, 0.0);
    for (tp, fp, _) in cumulative_counts(positives, scores) {
        let recall = tp as f64 / n_pos as f64;
        ap += (recall - prev_recall) * tp as f64 / (tp + fp) as f64;
        prev_recall = recall;
    }
    Some(ap)
}

/// ROC curve points (false positive rate, true positive rate, threshold), from the strictest
/// threshold to the loosest, starting at (0, 0).
pub fn roc_curve(positives: &[bool], scores: &[f64]) -> Vec<(f64, f64, f64)> {
    let n_pos = positives.iter().filter(|p| **p).count();
    let (n_pos, n_neg) = (n_pos.max(1) as f64, (positives.len() - n_pos).max(1) as f64);
    let mut pts = vec![(0.0, 0.0, f64::INFINITY)];
    pts.extend(
        cumulative_counts(positives, scores)
            .into_iter()
            .map(|(tp, fp, s)| (fp as f64 / n_neg, tp as f64 / n_pos, s)),
    );
    pts
}

/// The threshold with the best accuracy (ties: the one closest to 0.5), as the midpoint between
/// neighbouring scores so that it generalises rather than sitting on one image's score.
pub fn best_accuracy_threshold(positives: &[bool], scores: &[f64]) -> f64 {
    let mut sorted: Vec<f64> = scores.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.dedup();
    let mut candidates = vec![0.5];
    candidates.extend(sorted.windows(2).map(|w| (w[0] + w[1]) / 2.0));
    let mut best: (f64, f64) = (f64::NEG_INFINITY, 0.5);
    for t in candidates {
        let c = Confusion::from_scores(positives, scores, t);
        let acc = (c.tp + c.tn) as f64 / c.total().max(1) as f64;
        let better = acc > best.0 + 1e-12
            || ((acc - best.0).abs() <= 1e-12 && (t - 0.5).abs() < (best.1 - 0.5).abs());
        if better {
            best = (acc, t);
        }
    }
    best.1
}

/// The class predicted from class probabilities: two classes by `threshold` on the positive
/// one, more by the largest probability.
pub fn predicted(p: &[f64], positive: usize, threshold: f64) -> usize {
    if p.len() == 2 {
        if p[positive] >= threshold {
            positive
        } else {
            1 - positive
        }
    } else {
        (0..p.len())
            .max_by(|&a, &b| p[a].total_cmp(&p[b]).then(b.cmp(&a)))
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confusion_and_rates() {
        let y = [true, true, true, false, false];
        let s = [0.9, 0.6, 0.2, 0.7, 0.1];
        let m = Metrics::compute(&y, &s, 0.5);
        assert_eq!(
            m.confusion,
            Confusion {
                tp: 2,
                fp: 1,
                tn: 1,
                fn_: 1
            }
        );
        assert_eq!(m.accuracy, Some(0.6));
        assert_eq!(m.sensitivity, Some(2.0 / 3.0));
        assert_eq!(m.specificity, Some(0.5));
        assert_eq!(m.precision, Some(2.0 / 3.0));
        assert_eq!(m.npv, Some(0.5));
        // Pairs (pos, neg): 6; pos above neg: 0.9>0.7, 0.9>0.1, 0.6>0.1, 0.2>0.1 = 4.
        assert!((m.roc_auc.unwrap() - 4.0 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn auc_counts_ties_as_half_and_needs_both_classes() {
        assert_eq!(roc_auc(&[true, false], &[0.5, 0.5]), Some(0.5));
        assert_eq!(roc_auc(&[true, true], &[0.1, 0.2]), None);
        assert_eq!(
            roc_auc(&[true, false, true, false], &[0.9, 0.1, 0.8, 0.2]),
            Some(1.0)
        );
    }

    #[test]
    fn average_precision_matches_sklearn() {
        // sklearn.metrics.average_precision_score([0,0,1,1],[0.1,0.4,0.35,0.8]) = 0.8333...
        let ap = average_precision(&[false, false, true, true], &[0.1, 0.4, 0.35, 0.8]).unwrap();
        assert!((ap - 0.833_333_333_333).abs() < 1e-9, "{ap}");
    }

    #[test]
    fn roc_curve_ends_at_one_one() {
        let c = roc_curve(&[true, false, true], &[0.9, 0.5, 0.1]);
        assert_eq!(c.first().unwrap().0, 0.0);
        let last = c.last().unwrap();
        assert_eq!((last.0, last.1), (1.0, 1.0));
    }

    #[test]
    fn best_threshold_separates() {
        let y = [false, false, true, true];
        let s = [0.1, 0.3, 0.7, 0.9];
        let t = best_accuracy_threshold(&y, &s);
        assert!(t > 0.3 && t < 0.7, "{t}");
        assert_eq!(Confusion::from_scores(&y, &s, t).tp, 2);
    }
}
