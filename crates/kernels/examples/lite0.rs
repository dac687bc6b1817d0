//! Throughput of the kernels on EfficientNet-Lite0's shapes with made-up weights:
//! `cargo run --release --example lite0 -- [BATCH] [REPEAT]` (images/s of the 1280-d head
//! features, one forward per image). The real weights are timed by `osteoai bench`.

use osteoai_kernels::net::{BlockWeights, ConvWeights};
use osteoai_kernels::{Net, Pool, Tap, isa};

fn conv(
    seed: &mut u64,
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    groups: usize,
) -> ConvWeights {
    let n = cout * (cin / groups) * k * k;
    let scale = 1.0 / ((cin / groups * k * k) as f32).sqrt();
    let mut next = || {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        ((*seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * scale
    };
    ConvWeights {
        weight: (0..n).map(|_| next()).collect(),
        bias: (0..cout).map(|_| next()).collect(),
        cin,
        cout,
        k,
        stride,
        groups,
    }
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let batch = args.first().copied().unwrap_or(8);
    let repeat = args.get(1).copied().unwrap_or(5);
    let mut seed = 1;
    let stem = conv(&mut seed, 3, 32, 3, 2, 1);
    let stages = [
        (1, 3, 1, 1, 32, 16),
        (2, 3, 2, 6, 16, 24),
        (2, 5, 2, 6, 24, 40),
        (3, 3, 2, 6, 40, 80),
        (3, 5, 1, 6, 80, 112),
        (4, 5, 2, 6, 112, 192),
        (1, 3, 1, 6, 192, 320),
    ];
    let mut blocks = Vec::new();
    for (r, k, s, e, cin, cout) in stages {
        for i in 0..r {
            let (cin, s) = if i == 0 { (cin, s) } else { (cout, 1) };
            let mid = cin * e;
            blocks.push(BlockWeights {
                expand: (e != 1).then(|| conv(&mut seed, cin, mid, 1, 1, 1)),
                depthwise: conv(&mut seed, mid, mid, k, s, mid),
                project: conv(&mut seed, mid, cout, 1, 1, 1),
            });
        }
    }
    let head = conv(&mut seed, 320, 1280, 1, 1, 1);
    let net = Net::new(&stem, &blocks, &head).unwrap();
    let images: Vec<f32> = (0..batch * 3 * 224 * 224)
        .map(|i| ((i % 251) as f32 / 125.0) - 1.0)
        .collect();
    let isa = isa::active();
    let mut best = f64::MAX;
    for _ in 0..repeat {
        let t = std::time::Instant::now();
        let f = net
            .features(
                isa,
                &images,
                batch,
                224,
                224,
                &[Tap::Head],
                &[Pool::Avg],
                false,
            )
            .unwrap();
        std::hint::black_box(f);
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!(
        "{} threads, {}: batch {batch}: {:.1} images/s (best of {repeat})",
        rayon::current_num_threads(),
        isa.name(),
        batch as f64 / best
    );
}
