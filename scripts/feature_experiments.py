#!/usr/bin/env python3
"""Choose the feature recipe of the default model on val/ only.

Reads the superset of features that `osteoai train --dump-features FILE` writes (taps head,
block10, block14; pools avg, max; flip averaged), fits the same LightGBM head as osteoai on
column subsets, and prints val ROC AUC and accuracy (threshold chosen on val) per recipe.
The recipe is chosen by val AUC; test figures are printed for the record only.

    osteoai train $OSTEOAI_DATA --out /tmp/m --base models/default --taps head,block10,block14 \
        --pools avg,max --flip true --dump-features /tmp/feat-super.bin
    .peer/bin/python scripts/feature_experiments.py /tmp/feat-super.bin
    # and without flip averaging, with more taps:
    osteoai train ... --taps head,block14,block10,block7,block4 --pools avg --flip false --dump-features /tmp/f2.bin
    .peer/bin/python scripts/feature_experiments.py /tmp/f2.bin head:1280,block14:192,block10:112,block7:80,block4:40 avg
"""
import json
import sys

import lightgbm as lgb
import numpy as np


def roc_auc_score(y, s):
    """Mann-Whitney U with ties counted half (as osteoai's metrics)."""
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    pos = y == 1
    n_pos, n_neg = pos.sum(), (~pos).sum()
    return (ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def main():
    path = sys.argv[1]
    # Layout of the dumped columns: tap:channels,... and the pools, in osteoai's order.
    layout = [(t.split(":")[0], int(t.split(":")[1])) for t in (sys.argv[2] if len(sys.argv) > 2 else "head:1280,block10:112,block14:192").split(",")]
    pools = (sys.argv[3] if len(sys.argv) > 3 else "avg,max").split(",")
    meta = json.load(open(path.rsplit(".", 1)[0] + ".json"))
    dim = meta["dim"]
    x = np.fromfile(path, dtype="<f4").reshape(-1, dim)
    y = np.array([r["positive"] for r in meta["rows"]], dtype=np.int32)
    split = np.array([r["split"] for r in meta["rows"]])
    blocks = {}
    off = 0
    for tap, ch in layout:
        for pool in pools:
            blocks[f"{tap}_{pool}"] = slice(off, off + ch)
            off += ch
    assert off == dim, (off, dim)
    recipes = {
        "head avg": ["head_avg"],
        "head+block14+block10 avg": ["head_avg", "block14_avg", "block10_avg"],
        "head+block14+block10+block7 avg": ["head_avg", "block14_avg", "block10_avg", "block7_avg"],
        "head+block14+block10+block7+block4 avg": ["head_avg", "block14_avg", "block10_avg", "block7_avg", "block4_avg"],
        "head avg+max": ["head_avg", "head_max"],
        "head+block14 avg": ["head_avg", "block14_avg"],
        "head+block14 avg+max": ["head_avg", "head_max", "block14_avg", "block14_max"],
        "all taps avg": ["head_avg", "block10_avg", "block14_avg"],
        "all taps avg+max": list(blocks),
    }
    params = dict(objective="binary", metric="auc", learning_rate=0.03, num_leaves=15, min_data_in_leaf=20,
                  feature_fraction=0.3, bagging_fraction=0.8, bagging_freq=1, lambda_l2=1.0, seed=42,
                  deterministic=True, force_col_wise=True, num_threads=2, verbosity=-1)
    tr, va, te = split == "train", split == "val", split == "test"
    seen = set()
    for name, parts in recipes.items():
        if not all(p in blocks for p in parts) or frozenset(parts) in seen:
            continue
        seen.add(frozenset(parts))
        cols = np.concatenate([np.arange(dim)[blocks[p]] for p in parts])
        dtr = lgb.Dataset(x[tr][:, cols], y[tr])
        dva = lgb.Dataset(x[va][:, cols], y[va], reference=dtr)
        b = lgb.train(params, dtr, 3000, valid_sets=[dva], callbacks=[lgb.early_stopping(200, verbose=False)])
        pv, pt = b.predict(x[va][:, cols], num_iteration=b.best_iteration), b.predict(x[te][:, cols], num_iteration=b.best_iteration)
        ts = np.unique(pv)
        cands = np.concatenate([[0.5], (ts[1:] + ts[:-1]) / 2])
        accs = [((pv >= t) == y[va]).mean() for t in cands]
        t = cands[int(np.argmax(accs))]
        print(f"{name:<24} dim {len(cols):>5} rounds {b.best_iteration:>4}  val auc {roc_auc_score(y[va], pv):.4f} acc {max(accs):.4f}"
              f"  | test auc {roc_auc_score(y[te], pt):.4f} acc {((pt >= t) == y[te]).mean():.4f}", flush=True)


if __name__ == "__main__":
    main()
