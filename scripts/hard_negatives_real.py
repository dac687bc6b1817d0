#!/usr/bin/env python3
"""The audit's pair decision on real films of known different patients (docs/audit.md).

    python3 scripts/hard_negatives_real.py build FILMS.csv OUT
    osteoai audit OUT/data --neighbors 200 --format csv --dump-candidates OUT/pairs.csv > OUT/audit.csv
    python3 scripts/hard_negatives_real.py score OUT

FILMS.csv has the columns `path,patient,view` (one row per film; `patient` any identifier,
`view` e.g. chest_PA, hand_PA). `build` copies every film into OUT/data/{train,test}/{a,b}/
(patients kept whole, alternately train or test) and writes one re-processed copy of every
third film into the other split: reduced to 1,024 pixels and then exported as JPEG, cropped,
re-exposed, blurred, rotated and darkened, or reduced to 512 pixels (OUT/truth.csv lists the
pairs, OUT/groups.csv the patients). With more neighbours than images the audit examines
every pair, so `score` counts the pairs of different patients it calls copies, the
copies it finds, and the pairs of one patient's films (not copies unless one film is in the
folder twice). Needs Pillow.
"""
import csv
import os
import random
import shutil
import sys

COPIES = ["export_jpeg", "crop_jpeg", "exposure", "blur", "rotate_dark", "small_jpeg"]


def build(films_csv, out):
    from PIL import Image, ImageEnhance, ImageFilter

    films = [(r["patient"], r["view"], r["path"]) for r in csv.DictReader(open(films_csv))]
    base = os.path.dirname(os.path.abspath(films_csv))
    patients = sorted({p for p, _, _ in films})
    random.Random(0).shuffle(patients)
    split = {p: "train" if i % 2 == 0 else "test" for i, p in enumerate(patients)}
    label = {p: "a" if (i // 2) % 2 == 0 else "b" for i, p in enumerate(patients)}
    data = os.path.join(out, "data")
    if os.path.exists(data):
        shutil.rmtree(data)
    groups, truth = [], []
    for i, (patient, view, path) in enumerate(films):
        path = os.path.join(base, path)
        s, lab = split[patient], label[patient]
        stem, ext = os.path.splitext(os.path.basename(path))
        rel = f"{s}/{lab}/{view}__{stem}{ext}"
        os.makedirs(os.path.join(data, s, lab), exist_ok=True)
        shutil.copyfile(path, os.path.join(data, rel))
        groups.append((rel, patient))
        if i % 3:
            continue
        kind = COPIES[(i // 3) % len(COPIES)]
        im = Image.open(path).convert("L")
        im.thumbnail((1024, 1024))
        w, h = im.size
        if kind == "crop_jpeg":
            im = im.crop((int(w * 0.06), int(h * 0.05), int(w * 0.94), int(h * 0.92)))
        elif kind == "exposure":
            im = ImageEnhance.Contrast(ImageEnhance.Brightness(im).enhance(1.25)).enhance(0.8)
        elif kind == "blur":
            im = im.filter(ImageFilter.GaussianBlur(2))
        elif kind == "rotate_dark":
            im = im.rotate(4, resample=Image.BILINEAR, fillcolor=0)
            im = ImageEnhance.Brightness(im).enhance(0.8)
        elif kind == "small_jpeg":
            im.thumbnail((512, 512))
        other = "test" if s == "train" else "train"
        os.makedirs(os.path.join(data, other, lab), exist_ok=True)
        crel = f"{other}/{lab}/{view}__{stem}__copy_{kind}.jpg"
        im.save(os.path.join(data, crel), quality=92 if kind == "export_jpeg" else 80)
        truth.append((rel, crel, kind))
    with open(os.path.join(out, "groups.csv"), "w") as f:
        f.write("path,group\n")
        f.writelines(f"{a},{b}\n" for a, b in groups)
    with open(os.path.join(out, "truth.csv"), "w") as f:
        f.write("a,b,kind\n")
        f.writelines(f"{a},{b},{k}\n" for a, b, k in truth)
    print(f"{len(films)} films of {len(patients)} patients, {len(truth)} copies -> {data}")


def score(out):
    data = os.path.join(out, "data")
    truth = {frozenset((r["a"], r["b"])): r["kind"] for r in csv.DictReader(open(os.path.join(out, "truth.csv")))}
    group = {r["path"]: r["group"] for r in csv.DictReader(open(os.path.join(out, "groups.csv")))}
    source = {r["b"]: r["a"] for r in csv.DictReader(open(os.path.join(out, "truth.csv")))}

    def patient(p):
        return group[source.get(p, p)]

    def rel(p):
        return os.path.relpath(os.path.abspath(p), os.path.abspath(data))

    kinds = {"copy": 0, "different": 0, "same": 0}
    called = {"copy": set(), "different": [], "same": []}
    for r in csv.DictReader(open(os.path.join(out, "pairs.csv"))):
        a, b = rel(r["a"]), rel(r["b"])
        k = "copy" if frozenset((a, b)) in truth else "same" if patient(a) == patient(b) else "different"
        kinds[k] += 1
        if r["verified"] != "true":
            continue
        if k == "copy":
            called["copy"].add(frozenset((a, b)))
        else:
            called[k].append((a, b, r["inliers"], r["matches"], r["detail"]))
    found = len(called["copy"])
    print(
        f"pairs examined: {sum(kinds.values())} ({kinds['different']} of different patients, "
        f"{kinds['copy']} of {len(truth)} copies, {kinds['same']} of one patient's films)"
    )
    print(f"different patients called copies: {len(called['different'])} of {kinds['different']}")
    print(f"copies found: {found} of {len(truth)} (recall {found / max(1, len(truth)):.3f})")
    for k in COPIES:
        n = sum(1 for v in truth.values() if v == k)
        if n:
            print(f"  {k}: {sum(1 for p in called['copy'] if truth[p] == k)} of {n}")
    print(f"one patient's films called copies: {len(called['same'])} of {kinds['same']}")
    for what in ("different", "same"):
        for a, b, inl, m, d in called[what]:
            print(f"  {what}: {a} / {b} ({inl} inliers of {m} matches, detail {d})")
    return 1 if called["different"] else 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "build":
        build(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 3 and sys.argv[1] == "score":
        sys.exit(score(sys.argv[2]))
    else:
        sys.exit(__doc__)
