#!/usr/bin/env python3
"""osteoai audit side by side with CleanVision, on the same folder, same machine, one run.

For each tool: wall time; exact and near duplicate pairs; the held-out (val/test) images each
would call leaked (in a duplicate set with a train image), scored against a leak truth
(tests/data/leak_truth.csv for the reference data); quality flags by type and their overlap.

osteoai runs twice: with an empty cache (everything computed: CNN embeddings, keypoints,
verification) and again with its caches warm. CleanVision has no cache.

Usage: scripts/cleanvision_compare.py DIR [--osteoai target/debug/osteoai] [--truth FILE]
Needs: pip install cleanvision (0.3.x).
"""
import argparse, csv, itertools, json, os, subprocess, sys, tempfile, time


def pairs_of_sets(sets):
    out = set()
    for s in sets:
        for a, b in itertools.combinations(sorted(s), 2):
            out.add((a, b))
    return out


def split_of(rel):
    return rel.split(os.sep)[0]


def leaked(pairs):
    """Held-out images paired with a train image (directly)."""
    out = set()
    for a, b in pairs:
        for h, t in ((a, b), (b, a)):
            if split_of(h) in ("val", "test") and split_of(t) == "train":
                out.add(h)
    return out


def score(found, truth):
    if not truth:
        return ""
    yes = {k for k, v in truth.items() if v}
    no = {k for k, v in truth.items() if not v}
    tp, fp = len(found & yes), len(found & no)
    return f"recall {tp}/{len(yes)} = {tp / max(len(yes), 1):.3f}, false flags {fp}/{len(no)} = {fp / max(len(no), 1):.3%}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--osteoai", default=os.environ.get("OSTEOAI_BIN", "target/debug/osteoai"))
    ap.add_argument("--truth", default="tests/data/leak_truth.csv")
    a = ap.parse_args()
    root = os.path.abspath(a.dir)
    rel = lambda p: os.path.relpath(os.path.abspath(p), root)
    truth = {}
    if os.path.exists(a.truth):
        for r in csv.DictReader(open(a.truth)):
            truth[r["held_out"]] = r["leaked"] == "yes"

    from cleanvision import Imagelab
    t = time.time()
    lab = Imagelab(data_path=root)
    lab.find_issues()
    cv_secs = time.time() - t
    cv_exact = pairs_of_sets([[rel(p) for p in s] for s in lab.info["exact_duplicates"]["sets"]])
    cv_near = pairs_of_sets([[rel(p) for p in s] for s in lab.info["near_duplicates"]["sets"]])
    issues = lab.issues
    cv_flags = {}
    for col in issues.columns:
        if col.startswith("is_") and col.endswith("_issue"):
            kind = col[3:-6]
            cv_flags[kind] = {rel(p) for p in issues.index[issues[col]]}

    def run_osteoai(cache):
        t = time.time()
        out = subprocess.run([a.osteoai, "audit", root, "--format", "json", "--device", "cpu"],
                             env=dict(os.environ, XDG_CACHE_HOME=cache), check=True,
                             capture_output=True, text=True).stdout
        return json.loads(out), time.time() - t

    with tempfile.TemporaryDirectory() as cache:
        report, os_cold = run_osteoai(cache)
        report, os_warm = run_osteoai(cache)
    findings = report["findings"]
    os_exact = {tuple(sorted((rel(f["path"]), rel(f["other"])))) for f in findings if f["kind"] == "exact_duplicate"}
    os_near = {tuple(sorted((rel(f["path"]), rel(f["other"])))) for f in findings if f["kind"] == "near_duplicate"}
    os_leaked = {rel(f["path"]) for f in findings if f["kind"] == "leak"}
    os_flags = {}
    for f in findings:
        if f["kind"] in ("dark", "bright", "low_information", "blurry", "odd_size", "odd_aspect", "color"):
            os_flags.setdefault(f["kind"], set()).add(rel(f["path"]))

    n = len(report["images"])
    print(f"{n} images in {root}\n")
    print(f"{'':34}{'CleanVision':>16}{'osteoai':>16}")
    print(f"{'wall time':34}{cv_secs:>15.1f}s{os_cold:>10.1f}s cold")
    print(f"{'':34}{'':>16}{os_warm:>10.1f}s warm")
    print(f"{'exact duplicate pairs':34}{len(cv_exact):>16}{len(os_exact):>16}")
    print(f"{'near duplicate pairs':34}{len(cv_near):>16}{len(os_near):>16}")
    cv_leaked = leaked(cv_exact | cv_near)
    print(f"{'held-out images called leaked':34}{len(cv_leaked):>16}{len(os_leaked):>16}")
    if truth:
        print(f"  CleanVision: {score(cv_leaked, truth)}")
        print(f"  osteoai:     {score(os_leaked, truth)}")
    both = cv_near & os_near
    print(f"\nnear pairs found by both: {len(both)}; CleanVision only: {len(cv_near - os_near)}; osteoai only: {len(os_near - cv_near)}")
    print("\nquality flags (images)")
    matching = [("dark", "dark"), ("light", "bright"), ("blurry", "blurry"), ("low_information", "low_information"),
                ("odd_aspect_ratio", "odd_aspect"), ("odd_size", "odd_size"), ("grayscale", None), (None, "color")]
    print(f"  {'CleanVision':<18}{'n':>6}   {'osteoai':<16}{'n':>6}{'both':>7}")
    for c, o in matching:
        cs, osf = cv_flags.get(c, set()) if c else set(), os_flags.get(o, set()) if o else set()
        print(f"  {c or '-':<18}{len(cs) if c else '-':>6}   {o or '-':<16}{len(osf) if o else '-':>6}{len(cs & osf):>7}")


if __name__ == "__main__":
    main()
