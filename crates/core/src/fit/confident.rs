//! Label issues from out-of-fold probabilities by confident learning (Northcutt, Jiang and
//! Chuang, "Confident Learning: Estimating Uncertainty in Dataset Labels", JAIR 2021), as
//! cleanlab's `find_label_issues(filter_by="prune_by_noise_rate")` does it:
//!
//! 1. per-class thresholds `t_j` = mean P(j) over the images labelled j (mean self-confidence);
//! 2. the confident joint `C[given][true]`: an image counts for the class j with P(j) >= t_j
//!    (the likeliest such class when several), calibrated so each row sums to its label count;
//! 3. for every off-diagonal cell, the `C[k][j]` images labelled k with the largest margin
//!    P(j) - P(k) are flagged (pruning by noise rate);
//! 4. an image whose given label is also the model's prediction is never flagged.
//!
//! The ranking score is the self-confidence P(given label): `issue_score = 1 - P(given)`.

use serde::Serialize;

/// Why an image was or was not flagged.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Verdict {
    pub label: usize,
    /// The class the out-of-fold probabilities prefer.
    pub suggested: usize,
    /// 1 - P(given label): higher is more likely mislabelled.
    pub issue_score: f64,
    pub is_issue: bool,
    pub reason: String,
}

/// Outcome over a folder.
#[derive(Clone, Debug, Serialize)]
pub struct Issues {
    pub thresholds: Vec<f64>,
    /// Calibrated confident joint, `[given][true]`, rounded.
    pub joint: Vec<Vec<usize>>,
    pub verdicts: Vec<Verdict>,
}

impl Issues {
    /// Indices of flagged images, most likely first.
    pub fn ranked(&self) -> Vec<usize> {
        let mut v: Vec<usize> = (0..self.verdicts.len())
            .filter(|&i| self.verdicts[i].is_issue)
            .collect();
        v.sort_by(|&a, &b| {
            self.verdicts[b]
                .issue_score
                .total_cmp(&self.verdicts[a].issue_score)
                .then(a.cmp(&b))
        });
        v
    }
}

fn argmax(p: &[f64]) -> usize {
    let mut best = 0;
    for (j, v) in p.iter().enumerate() {
        if *v > p[best] {
            best = j;
        }
    }
    best
}

/// Round each row to integers that keep the row total (largest remainders first).
fn round_rows(m: &[Vec<f64>]) -> Vec<Vec<usize>> {
    m.iter()
        .map(|row| {
            let total = row.iter().sum::<f64>().round() as usize;
            let mut out: Vec<usize> = row.iter().map(|v| v.floor() as usize).collect();
            let mut rest: Vec<(f64, usize)> = row
                .iter()
                .enumerate()
                .map(|(j, v)| (v - v.floor(), j))
                .collect();
            rest.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let mut missing = total.saturating_sub(out.iter().sum());
            for (_, j) in rest {
                if missing == 0 {
                    break;
                }
                out[j] += 1;
                missing -= 1;
            }
            out
        })
        .collect()
}

/// Confident learning over `probs` (n rows of k class probabilities) and given `labels`.
pub fn find(probs: &[Vec<f64>], labels: &[usize], names: &[String]) -> Issues {
    let k = names.len();
    let n = labels.len();
    let mut count = vec![0usize; k];
    let mut sum = vec![0f64; k];
    for (p, &l) in probs.iter().zip(labels) {
        count[l] += 1;
        sum[l] += p[l];
    }
    let thresholds: Vec<f64> = (0..k)
        .map(|j| {
            if count[j] > 0 {
                sum[j] / count[j] as f64
            } else {
                1.0
            }
        })
        .collect();
    // Confident joint.
    let mut joint = vec![vec![0f64; k]; k];
    let mut confident_class: Vec<Option<usize>> = vec![None; n];
    for (i, (p, &l)) in probs.iter().zip(labels).enumerate() {
        let mut best: Option<usize> = None;
        for j in 0..k {
            if p[j] >= thresholds[j] - 1e-12 && best.is_none_or(|b| p[j] > p[b]) {
                best = Some(j);
            }
        }
        if let Some(j) = best {
            joint[l][j] += 1.0;
            confident_class[i] = Some(j);
        }
    }
    // Calibrate: each row sums to the number of images with that label.
    for (l, row) in joint.iter_mut().enumerate() {
        let s: f64 = row.iter().sum();
        if s > 0.0 {
            for v in row.iter_mut() {
                *v *= count[l] as f64 / s;
            }
        }
    }
    let joint = round_rows(&joint);
    // Prune by noise rate: in each off-diagonal cell, the images with the largest margin.
    let mut flagged = vec![false; n];
    let mut rank_in_cell: Vec<Option<(usize, usize, usize)>> = vec![None; n]; // (rank, of, true class)
    for given in 0..k {
        let members: Vec<usize> = (0..n).filter(|&i| labels[i] == given).collect();
        // Keep at least one image per class (cleanlab's min_examples_per_class).
        let budget = members.len().saturating_sub(1);
        let mut used = 0;
        for truth in 0..k {
            if truth == given {
                continue;
            }
            let want = joint[given][truth].min(budget.saturating_sub(used));
            if want == 0 {
                continue;
            }
            let mut by_margin: Vec<(f64, usize)> = members
                .iter()
                .map(|&i| (probs[i][truth] - probs[i][given], i))
                .collect();
            by_margin.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            for (r, &(_, i)) in by_margin.iter().take(want).enumerate() {
                flagged[i] = true;
                if rank_in_cell[i].is_none() {
                    rank_in_cell[i] = Some((r + 1, want, truth));
                }
            }
            used += want;
        }
    }
    let verdicts = (0..n)
        .map(|i| {
            let p = &probs[i];
            let l = labels[i];
            let suggested = argmax(p);
            let agrees = suggested == l;
            let is_issue = flagged[i] && !agrees;
            let reason = if is_issue {
                let (r, of, t) = rank_in_cell[i].expect("flagged images have a cell");
                format!(
                    "P({}) {:.3} vs P({}) {:.3}: margin rank {r} of the {of} estimated {} -> {} label errors",
                    names[t], p[t], names[l], p[l], names[l], names[t]
                )
            } else if agrees {
                format!("the prediction agrees with the label (P {:.3})", p[l])
            } else if confident_class[i].is_none() {
                format!(
                    "no class is confident: P({}) {:.3} below its threshold {:.3}",
                    names[suggested], p[suggested], thresholds[suggested]
                )
            } else {
                format!(
                    "disagrees (P({}) {:.3}) but outside the estimated number of errors",
                    names[suggested], p[suggested]
                )
            };
            Verdict {
                label: l,
                suggested,
                issue_score: 1.0 - p[l],
                is_issue,
                reason,
            }
        })
        .collect();
    Issues {
        thresholds,
        joint,
        verdicts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_confidently_wrong_label_is_flagged_and_ranked_first() {
        // 3 classes; the model is right about most images; image 0 is labelled 0 but the model
        // is sure it is class 2; image 1 is labelled 1 and the model is unsure.
        let mut probs = Vec::new();
        let mut labels = Vec::new();
        for i in 0..90 {
            let c = i % 3;
            let mut p = vec![0.1; 3];
            p[c] = 0.8;
            probs.push(p);
            labels.push(c);
        }
        probs[0] = vec![0.03, 0.02, 0.95];
        probs[1] = vec![0.35, 0.4, 0.25];
        let names: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let r = find(&probs, &labels, &names);
        assert!(r.verdicts[0].is_issue, "{:?}", r.verdicts[0]);
        assert_eq!(r.verdicts[0].suggested, 2);
        assert_eq!(r.ranked()[0], 0);
        assert!(!r.verdicts[1].is_issue, "{:?}", r.verdicts[1]);
        assert!(r.verdicts[1].issue_score > 0.5);
        assert!(r.verdicts[5].reason.contains("agrees"));
        assert_eq!(r.joint[0][2], 1);
        let flagged = r.verdicts.iter().filter(|v| v.is_issue).count();
        assert_eq!(flagged, 1);
    }

    #[test]
    fn rounding_keeps_row_totals() {
        let m = vec![vec![10.4, 0.3, 0.3], vec![0.5, 0.5, 9.0]];
        let r = round_rows(&m);
        assert_eq!(r[0].iter().sum::<usize>(), 11);
        assert_eq!(r[1].iter().sum::<usize>(), 10);
    }
}
