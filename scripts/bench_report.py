#!/usr/bin/env python3
"""Prints scripts/bench.sh's side-by-side table and ratios from the JSON lines it saved."""
import json
import os
import sys

d = sys.argv[1]


def load(name):
    p = os.path.join(d, name)
    return json.load(open(p)) if os.path.exists(p) and os.path.getsize(p) else None


ours, flex, before = load("osteoai.json"), load("flex.json"), load("before.json")
peers = {(e, b): load(f"{e}-{b}.json") for e in ("torch", "onnx") for b in (8, 16)}


def ips(run, key):
    return run[key]["per_second"] if run and key in run else None


def fmt(x):
    return f"{x:8.1f}" if x is not None else "       -"


def ratio(a, b):
    return f"{a / b:5.2f}x" if a and b else "    -"


print(f"{'images/s':34} {'osteoai':>8} {'flex':>8} {'before':>8} {'PyTorch':>8} {'onnxrt':>8}  vs PyTorch  vs onnxrt")
for b in (8, 16):
    key = f"backbone classic batch {b}"
    o, t, x = ips(ours, key), peers[("torch", b)], peers[("onnx", b)]
    t, x = (t or {}).get("forward_img_s"), (x or {}).get("forward_img_s")
    print(f"{'backbone (1280-d avg) batch ' + str(b):34} {fmt(o)} {fmt(ips(flex, key))} {fmt(ips(before, key))} {fmt(t)} {fmt(x)}  {ratio(o, t):>10}  {ratio(o, x):>8}")
pil = (peers[("torch", 16)] or {}).get("decode_img_s")
o = ips(ours, "decode+preprocess")
print(f"{'decode + preprocess (PIL peer)':34} {fmt(o)} {fmt(ips(flex, 'decode+preprocess'))} {fmt(ips(before, 'decode+preprocess'))} {fmt(pil)} {fmt(None)}  {ratio(o, pil):>10}")
e2e = [k for k in (ours or {}) if k.startswith("end to end")]
if e2e:
    k = e2e[0]
    print(f"{'end to end, model recipe (' + k[12:] :34} {fmt(ips(ours, k))} {fmt(ips(flex, k))} {fmt(ips(before, k))}")
for e, name in (("torch", "PyTorch"), ("onnx", "onnxruntime")):
    p = peers[(e, 16)]
    if p:
        print(f"{'end to end, peer ' + name + ' (classic, b16)':34} {fmt(None)} {fmt(None)} {fmt(None)} {fmt(p['end_to_end_img_s'] if e == 'torch' else None)} {fmt(p['end_to_end_img_s'] if e == 'onnx' else None)}")
print("devices:", (ours or {}).get("device"), "|", (flex or {}).get("device"), "|", (before or {}).get("device"))
print("peers:", ", ".join(sorted({p["peer"] for p in peers.values() if p})))
