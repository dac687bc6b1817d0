#!/usr/bin/env python3
"""LightGBM heads trained in Python, for the interop test (tests/python_heads.rs).

    .peer/bin/python scripts/python_heads.py tests/data

Writes py_binary.txt, py_multiclass.txt (2 classes, like the reference OsteoAI model) and
py_heads.json (the rows and Python's predicted probabilities). Data from a formula, no RNG.
"""
import json
import os
import sys

import lightgbm as lgb
import numpy as np

out = sys.argv[1] if len(sys.argv) > 1 else "tests/data"
n, d = 400, 8
i = np.arange(n)[:, None]
j = np.arange(d)[None, :]
x = np.sin(0.37 * i * (j + 1) + 0.5 * j).astype(np.float32)
y = ((x[:, 0] + 0.5 * x[:, 3] - 0.3 * x[:, 5]) > 0).astype(np.int32)
rows = x[:20]
ref = {"lightgbm": lgb.__version__, "rows": rows.tolist()}
b = lgb.train(dict(objective="binary", num_leaves=7, verbosity=-1, seed=1, deterministic=True), lgb.Dataset(x, y), 30)
b.save_model(os.path.join(out, "py_binary.txt"))
ref["binary"] = b.predict(rows).tolist()
m = lgb.train(dict(objective="multiclass", num_class=2, num_leaves=7, verbosity=-1, seed=1, deterministic=True), lgb.Dataset(x, y), 30)
m.save_model(os.path.join(out, "py_multiclass.txt"))
ref["multiclass"] = m.predict(rows).tolist()
json.dump(ref, open(os.path.join(out, "py_heads.json"), "w"))
print("wrote", out, "lightgbm", lgb.__version__)
