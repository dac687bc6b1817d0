#!/usr/bin/env python3
"""Contact sheets of image pairs, for checking an audit's pairs by eye.

Reads the candidate CSV that `osteoai audit DIR --dump-candidates FILE` writes (or any CSV with
columns a,b and optional score,inliers,detail) and renders pairs side by side, 12 pairs a sheet,
each captioned with its index and evidence. Select pairs near the decision threshold with
--min-score/--max-score (aligned rank correlation) and --max-inliers.

Usage: scripts/truth/contact_sheet.py candidates.csv OUTDIR [--min-score 0.8 --max-score 0.93]
Needs: pip install pillow
"""
import argparse, csv, os

from PIL import Image, ImageDraw


def sheet(pairs, out, labels, root=""):
    rows = (len(pairs) + 1) // 2
    s = Image.new("RGB", (4 * 220, rows * 240), "white")
    d = ImageDraw.Draw(s)
    for k, (a, b) in enumerate(pairs):
        for j, p in enumerate((a, b)):
            im = Image.open(os.path.join(root, p)).convert("RGB")
            im.thumbnail((210, 210))
            s.paste(im, ((k % 2) * 440 + j * 220, (k // 2) * 240))
        d.text(((k % 2) * 440, (k // 2) * 240 + 212), labels[k], fill="red")
    s.save(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("outdir")
    ap.add_argument("--root", default="")
    ap.add_argument("--min-score", type=float, default=-1)
    ap.add_argument("--max-score", type=float, default=2)
    ap.add_argument("--max-inliers", type=int, default=10**9)
    a = ap.parse_args()
    rows = [r for r in csv.DictReader(open(a.csv))
            if a.min_score <= float(r.get("score", 0)) < a.max_score
            and int(r.get("inliers", 0)) <= a.max_inliers]
    rows.sort(key=lambda r: -float(r.get("score", 0)))
    os.makedirs(a.outdir, exist_ok=True)
    for k in range(0, len(rows), 12):
        part = rows[k:k + 12]
        labels = [f"{k + j} s{float(r.get('score', 0)):.3f} i{r.get('inliers', '')} d{float(r.get('detail', 0)):.2f}"
                  for j, r in enumerate(part)]
        sheet([(r["a"], r["b"]) for r in part], os.path.join(a.outdir, f"sheet{k // 12:03d}.png"), labels, a.root)
    print(f"{len(rows)} pairs in {(len(rows) + 11) // 12} sheets under {a.outdir}")


if __name__ == "__main__":
    main()
