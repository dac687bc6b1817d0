//! Time of the depthwise layers of a Lite0 fine-tune on the CPU (`depthwise_nchw`: forward,
//! input gradient, weight gradient) at EfficientNet-Lite0's shapes, made-up values:
//! `cargo run --release -p osteoai-kernels --example depthwise_train -- [SIZE] [BATCH] [REPEAT]`
//! (best of REPEAT, milliseconds per pass summed over the 16 layers). `OSTEOAI_CPU_ISA` picks
//! the vector level, so levels are compared by running it once per level.

use osteoai_kernels::depthwise::DwShape;
use osteoai_kernels::synthetic::Lcg;
use osteoai_kernels::{LITE0_STAGES, depthwise_nchw, isa, same_padding};

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let size = args.first().copied().unwrap_or(224);
    let n = args.get(1).copied().unwrap_or(16);
    let repeat = args.get(2).copied().unwrap_or(3);
    let mut rng = Lcg(3);
    let mut layers = Vec::new();
    let mut hw = same_padding(size, 3, 2).0;
    for &(repeats, k, stride, e, cin, cout) in &LITE0_STAGES {
        for r in 0..repeats {
            let (cin, stride) = if r == 0 { (cin, stride) } else { (cout, 1) };
            let sh = DwShape::same(hw, hw, cin * e, k, stride);
            let x: Vec<f32> = (0..n * sh.c * hw * hw).map(|_| rng.next_value()).collect();
            let w: Vec<f32> = (0..sh.c * k * k).map(|_| rng.next_value()).collect();
            let b: Vec<f32> = (0..sh.c).map(|_| rng.next_value()).collect();
            let g: Vec<f32> = (0..n * sh.c * sh.oh * sh.ow)
                .map(|_| rng.next_value())
                .collect();
            hw = sh.oh;
            layers.push((sh, x, w, b, g));
        }
    }
    let mut best = [f64::MAX; 3];
    for _ in 0..repeat.max(1) {
        let mut took = [0.0f64; 3];
        for (sh, x, w, b, g) in &layers {
            let t = std::time::Instant::now();
            std::hint::black_box(depthwise_nchw::forward(x, w, b, n, sh));
            took[0] += t.elapsed().as_secs_f64();
            let t = std::time::Instant::now();
            std::hint::black_box(depthwise_nchw::input_grad(g, w, n, sh));
            took[1] += t.elapsed().as_secs_f64();
            let t = std::time::Instant::now();
            std::hint::black_box(depthwise_nchw::weight_grad(x, g, n, sh));
            took[2] += t.elapsed().as_secs_f64();
        }
        for (b, t) in best.iter_mut().zip(took) {
            *b = b.min(t);
        }
    }
    println!(
        "{} px, batch {n}, {}: forward {:.1} ms, input gradient {:.1} ms, weight gradient {:.1} ms, total {:.1} ms",
        size,
        isa::active().name(),
        best[0] * 1e3,
        best[1] * 1e3,
        best[2] * 1e3,
        best.iter().sum::<f64>() * 1e3
    );
}
