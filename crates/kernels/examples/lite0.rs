//! Throughput of the kernels on EfficientNet-Lite0's shapes with made-up weights:
//! `cargo run --release -p osteoai-kernels --example lite0 -- [BATCH] [REPEAT]` (images/s of the
//! 1280-d head features, one forward per image, best of REPEAT). The real weights are timed by
//! `osteoai bench`.

use osteoai_kernels::synthetic::{Lcg, lite0};
use osteoai_kernels::{Net, Pool, Tap, isa};

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let batch = args.first().copied().unwrap_or(8);
    let repeat = args.get(1).copied().unwrap_or(5);
    let (stem, blocks, head) = lite0(&mut Lcg(1));
    let net = Net::new(&stem, &blocks, &head).expect("Lite0 shapes chain");
    let images: Vec<f32> = (0..batch * 3 * 224 * 224)
        .map(|i| ((i % 251) as f32 / 125.0) - 1.0)
        .collect();
    let isa = isa::active();
    let mut best = f64::MAX;
    for _ in 0..repeat.max(1) {
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
            .expect("features");
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
