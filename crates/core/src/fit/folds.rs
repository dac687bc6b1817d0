//! Stratified, grouped K-fold assignment: every group (copies of one radiograph) lands in one
//! fold, and each fold gets about 1/K of every class. Deterministic for a seed.

use crate::cache::Fnv;

/// Fold of each item (0..k). `labels[i]` is item i's class (0..n_classes), `groups[i]` its
/// group id (items without a group pass a unique id), `keys[i]` a stable name (the relative
/// path) that orders items for the seed, so that the folds do not depend on scan order.
pub fn assign(
    labels: &[usize],
    groups: &[usize],
    keys: &[String],
    n_classes: usize,
    k: usize,
    seed: u64,
) -> Vec<usize> {
    let n = labels.len();
    let k = k.max(2);
    let mut by_group: std::collections::BTreeMap<usize, Vec<usize>> =
        std::collections::BTreeMap::new();
    for (i, g) in groups.iter().enumerate().take(n) {
        by_group.entry(*g).or_default().push(i);
    }
    let rank = |s: &str| {
        let mut h = Fnv::new();
        h.write_u64(seed);
        h.write(s.as_bytes());
        h.finish()
    };
    let mut units: Vec<Vec<usize>> = by_group.into_values().collect();
    units.sort_by_key(|u| {
        let first = u.iter().map(|&i| keys[i].as_str()).min().unwrap_or("");
        (std::cmp::Reverse(u.len()), rank(first))
    });
    let mut total = vec![0f64; n_classes];
    for &l in labels {
        total[l] += 1.0;
    }
    let target: Vec<f64> = total.iter().map(|t| t / k as f64).collect();
    let mut have = vec![vec![0f64; n_classes]; k];
    let mut size = vec![0usize; k];
    let mut fold = vec![0usize; n];
    for u in units {
        let mut add = vec![0f64; n_classes];
        for &i in &u {
            add[labels[i]] += 1.0;
        }
        // The fold whose per-class shortfall this unit fills best; ties to the smaller fold.
        let best = (0..k)
            .min_by(|&a, &b| {
                let cost = |f: usize| -> f64 {
                    (0..n_classes)
                        .map(|c| {
                            let after = have[f][c] + add[c];
                            ((after - target[c]).powi(2) - (have[f][c] - target[c]).powi(2))
                                / target[c].max(1.0)
                        })
                        .sum()
                };
                cost(a)
                    .total_cmp(&cost(b))
                    .then(size[a].cmp(&size[b]))
                    .then(a.cmp(&b))
            })
            .unwrap_or(0);
        for c in 0..n_classes {
            have[best][c] += add[c];
        }
        size[best] += u.len();
        for i in u {
            fold[i] = best;
        }
    }
    fold
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_stay_whole_and_classes_are_balanced() {
        // 300 items, 3 classes (100 each); items 0..60 in groups of 3.
        let n = 300;
        let labels: Vec<usize> = (0..n).map(|i| (i / 3) % 3).collect();
        let groups: Vec<usize> = (0..n)
            .map(|i| if i < 60 { i / 3 } else { 1000 + i })
            .collect();
        let keys: Vec<String> = (0..n).map(|i| format!("img{i:04}.jpg")).collect();
        let f = assign(&labels, &groups, &keys, 3, 5, 1);
        for g in 0..20 {
            assert!(
                f[g * 3] == f[g * 3 + 1] && f[g * 3 + 1] == f[g * 3 + 2],
                "group {g}"
            );
        }
        for fold in 0..5 {
            for c in 0..3 {
                let m = (0..n).filter(|&i| f[i] == fold && labels[i] == c).count();
                assert!((17..=23).contains(&m), "fold {fold} class {c}: {m}");
            }
        }
        assert_eq!(assign(&labels, &groups, &keys, 3, 5, 1), f, "deterministic");
        assert_ne!(
            assign(&labels, &groups, &keys, 3, 5, 2),
            f,
            "the seed matters"
        );
        // Scan order does not matter: reversing the items reverses the answer.
        let rev = |v: &Vec<usize>| v.iter().rev().cloned().collect::<Vec<_>>();
        let kr: Vec<String> = keys.iter().rev().cloned().collect();
        let fr = assign(&rev(&labels), &rev(&groups), &kr, 3, 5, 1);
        assert_eq!(rev(&fr), f);
    }
}
