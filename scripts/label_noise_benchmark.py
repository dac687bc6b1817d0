#!/usr/bin/env python3
"""Label-error detection, osteoai fit against cleanlab, on the same out-of-fold probabilities.

1. A temporary copy of $OSTEOAI_DATA/train made of hard links (the data set is never written),
   with a seeded 5% of the labels flipped (the file is linked into the other class folder).
2. `osteoai fit` on it (5 folds, grouped by the audit's groups of copies); its CSV gives each
   image's out-of-fold probabilities, issue_score and is_issue.
3. cleanlab's find_label_issues on exactly those probabilities.
4. For each: ROC AUC of the ranking score for "was flipped", precision at the number flipped,
   and precision/recall of the flagged set. One run, same machine.

Usage: scripts/label_noise_benchmark.py [--rate 0.05] [--seed 1] [--osteoai target/debug/osteoai]
Needs: pip install numpy scikit-learn cleanlab (in any virtual environment).
"""
import argparse, csv, os, random, shutil, subprocess, sys, tempfile, time

import numpy as np
from sklearn.metrics import roc_auc_score


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--osteoai", default=os.environ.get("OSTEOAI_BIN", "target/debug/osteoai"))
    ap.add_argument("--data", default=os.environ.get("OSTEOAI_DATA"))
    ap.add_argument("--groups", default="audit")
    ap.add_argument("--keep", help="keep the noisy copy here")
    a = ap.parse_args()
    if not a.data:
        sys.exit("set OSTEOAI_DATA or --data")
    src = os.path.join(a.data, "train")
    classes = sorted(d for d in os.listdir(src) if os.path.isdir(os.path.join(src, d)))
    files = [(c, f) for c in classes for f in sorted(os.listdir(os.path.join(src, c)))]
    rng = random.Random(a.seed)
    flip = set(rng.sample(range(len(files)), round(a.rate * len(files))))
    work = a.keep or tempfile.mkdtemp(prefix="osteoai-noise-")
    noisy = os.path.join(work, "train")
    truth = {}
    for i, (c, f) in enumerate(files):
        given = classes[(classes.index(c) + 1) % len(classes)] if i in flip else c
        os.makedirs(os.path.join(noisy, given), exist_ok=True)
        dst = os.path.join(noisy, given, f)
        if os.path.exists(dst):  # the same name under both labels (the data set has one)
            dst = os.path.join(noisy, given, "dup-" + f)
        try:
            os.link(os.path.join(src, c, f), dst)
        except OSError:
            shutil.copyfile(os.path.join(src, c, f), dst)
        truth[os.path.realpath(dst)] = i in flip
    print(f"{len(files)} train images, {len(flip)} labels flipped (seed {a.seed}) in {noisy}")
    def fit(copy_noise):
        out = os.path.join(work, f"oof-{copy_noise}.csv")
        t = time.time()
        subprocess.run([a.osteoai, "fit", noisy, "--format", "csv", "--output", out, "--groups", a.groups,
                        "--copy-noise", str(copy_noise), "--out", os.path.join(work, "model")], check=True)
        return list(csv.DictReader(open(out))), time.time() - t

    rows, secs = fit(0.1)
    rows_cl, secs_cl = fit(0)
    y = np.array([truth[os.path.realpath(r["path"])] for r in rows])
    cls = [k[len("oof_p_"):] for k in rows[0] if k.startswith("oof_p_")]
    probs = np.array([[float(r["oof_p_" + c]) for c in cls] for r in rows])
    labels = np.array([cls.index(r["label"]) for r in rows])
    n = int(y.sum())
    assert [r["path"] for r in rows] == [r["path"] for r in rows_cl]

    def prec_at_n(s):
        top = np.argsort(-s, kind="stable")[:n]
        return y[top].mean()

    def pr(mask):
        tp = (mask & y).sum()
        return tp / max(mask.sum(), 1), tp / max(n, 1), int(mask.sum())

    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores
    t2 = time.time()
    cl_mask = find_label_issues(labels, probs)
    cl_score = 1 - get_label_quality_scores(labels, probs)
    cl_secs = time.time() - t2
    pos = cls.index("fracture") if "fracture" in cls else 1
    print(f"\nosteoai fit: {secs:.1f} s the first time (features, audit groups, 5 folds, final head), "
          f"{secs_cl:.1f} s again with everything cached; cleanlab on the same probabilities: {cl_secs:.2f} s")
    print(f"out-of-fold ROC AUC against the noisy labels: {roc_auc_score(labels == pos, probs[:, pos]):.4f}")
    print(f"\n{'method':<52}{'AUC (flipped)':>14}{'prec@n':>9}{'flagged':>9}{'precision':>11}{'recall':>8}")
    for name, rs in (("osteoai fit, out-of-fold probabilities only", rows_cl),
                     ("osteoai fit, with the labels of each image's copies", rows)):
        score = np.array([float(r["issue_score"]) for r in rs])
        mask = np.array([r["is_issue"] == "true" for r in rs])
        p, r, m = pr(mask)
        print(f"{name:<52}{roc_auc_score(y, score):>14.4f}{prec_at_n(score):>9.3f}{m:>9d}{p:>11.3f}{r:>8.3f}")
    p, r, m = pr(cl_mask)
    print(f"{'cleanlab find_label_issues (same OOF probabilities)':<52}{roc_auc_score(y, cl_score):>14.4f}{prec_at_n(cl_score):>9.3f}{m:>9d}{p:>11.3f}{r:>8.3f}")
    print(f"\nflipped: {n}; prec@n = precision among the {n} highest-ranked images")
    if not a.keep:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
