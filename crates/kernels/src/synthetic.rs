//! Made-up weights of given shapes, for tests and the throughput example (not for scoring).

use crate::net::{BlockWeights, ConvWeights};

/// A small deterministic generator of values.
pub struct Lcg(pub u64);

impl Lcg {
    /// A value in `[-1, 1)`.
    pub fn next_value(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    /// `n` values in `[-scale, scale)`.
    pub fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.next_value() * scale).collect()
    }
}

/// A convolution with weights scaled to keep activations of order one.
pub fn conv(
    r: &mut Lcg,
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    groups: usize,
) -> ConvWeights {
    let fan = (cin / groups * k * k) as f32;
    ConvWeights {
        weight: r.vec(cout * (cin / groups) * k * k, 2.0 / fan.sqrt()),
        bias: r.vec(cout, 0.2),
        cin,
        cout,
        k,
        stride,
        groups,
    }
}

/// EfficientNet-Lite0's shapes (`crate::LITE0_STAGES`) with made-up weights.
pub fn lite0(r: &mut Lcg) -> (ConvWeights, Vec<BlockWeights>, ConvWeights) {
    let stem = conv(r, 3, 32, 3, 2, 1);
    let mut blocks = Vec::new();
    for (repeats, k, stride, e, cin, cout) in crate::LITE0_STAGES {
        for i in 0..repeats {
            let (cin, s) = if i == 0 { (cin, stride) } else { (cout, 1) };
            let mid = cin * e;
            blocks.push(BlockWeights {
                expand: (e != 1).then(|| conv(r, cin, mid, 1, 1, 1)),
                depthwise: conv(r, mid, mid, k, s, mid),
                project: conv(r, mid, cout, 1, 1, 1),
            });
        }
    }
    let head = conv(r, 320, crate::LITE0_HEAD, 1, 1, 1);
    (stem, blocks, head)
}
