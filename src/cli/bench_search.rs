//! `osteoai bench-search`: the audit's candidate search on generated embeddings (centring, PCA
//! with whitening, exact blocked k-nearest neighbours), timed stage by stage, with peak memory.

use std::time::Instant;

use clap::Args;
use osteoai_core::audit::index::{Reducer, knn};

#[derive(Args, Debug)]
pub struct BenchSearchArgs {
    /// Number of embeddings.
    #[arg(long, default_value_t = 100_000)]
    pub n: usize,
    /// Their dimension (the default model's features: 1584).
    #[arg(long, default_value_t = 1584)]
    pub dim: usize,
    /// Dimensions kept by PCA.
    #[arg(long, default_value_t = 256)]
    pub pca: usize,
    /// Neighbours per embedding.
    #[arg(long, default_value_t = 30)]
    pub k: usize,
}

/// Clustered embeddings: `n / 4` centres, each embedding a centre plus noise (copies of one
/// radiograph sit close together, as in real data).
fn embeddings(n: usize, d: usize) -> Vec<f32> {
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let centres = (n / 4).max(1);
    let c: Vec<f32> = (0..centres * d).map(|_| next()).collect();
    let mut x = vec![0f32; n * d];
    for i in 0..n {
        let k = i % centres;
        for j in 0..d {
            x[i * d + j] = c[k * d + j] + 0.3 * next();
        }
    }
    x
}

pub fn run(a: BenchSearchArgs) -> Result<i32, String> {
    let t = Instant::now();
    let x = embeddings(a.n, a.dim);
    let gen_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let r = Reducer::fit(&x, a.n, a.dim, a.pca);
    let fit_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let y = r.apply(&x, a.n);
    drop(x);
    let apply_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let nb = knn(&y, a.n, r.out, a.k);
    let knn_s = t.elapsed().as_secs_f64();
    // Sanity: how often the nearest neighbour is a sibling from the same centre.
    let centres = (a.n / 4).max(1);
    let same = (0..a.n)
        .filter(|&i| {
            nb.of(i)
                .next()
                .is_some_and(|(j, _)| j % centres == i % centres)
        })
        .count();
    println!(
        "{} embeddings of {} values, PCA to {} (whitened), {} neighbours each, {} threads",
        a.n,
        a.dim,
        r.out,
        a.k,
        rayon::current_num_threads()
    );
    println!("generate          {gen_s:8.2} s");
    println!("PCA fit           {fit_s:8.2} s");
    println!("project           {apply_s:8.2} s");
    println!("k-NN (exact)      {knn_s:8.2} s");
    println!("search total      {:8.2} s", fit_s + apply_s + knn_s);
    println!(
        "nearest neighbour from the same cluster: {:.1}%",
        100.0 * same as f64 / a.n as f64
    );
    println!(
        "peak RSS          {:8.0} MiB",
        super::peak_rss_mib().unwrap_or(0.0)
    );
    Ok(0)
}
