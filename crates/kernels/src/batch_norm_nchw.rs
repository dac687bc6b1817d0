//! Batch normalisation by the batch's own statistics over NCHW tensors, forward and backward,
//! for training on the CPU with train-mode batch norms. burn's generic version (swapped and
//! reshaped copies, a mean, a centred square, a second mean, then the affine map; the backward
//! as many again) is a dozen passes over each map; here the statistics are one pass, the output
//! one, and the backward two. Each channel's sums run in one fixed order (f64 accumulators), so
//! results do not depend on the number of threads.

use rayon::prelude::*;

/// An NCHW tensor's shape as the operation needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub n: usize,
    pub c: usize,
    /// Pixels of one map (H * W).
    pub hw: usize,
}

impl Shape {
    pub fn len(&self) -> usize {
        self.n * self.c * self.hw
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values per channel.
    fn count(&self) -> f64 {
        (self.n * self.hw) as f64
    }

    /// The maps of channel `ch`, image by image.
    fn maps<'a>(&self, x: &'a [f32], ch: usize) -> impl Iterator<Item = &'a [f32]> + 'a {
        let (c, hw) = (self.c, self.hw);
        (0..self.n).map(move |i| &x[(i * c + ch) * hw..][..hw])
    }
}

/// Per channel: the mean and the biased variance (what running statistics are fed, as in
/// burn and PyTorch's normalisation).
pub fn stats(x: &[f32], sh: Shape) -> (Vec<f32>, Vec<f32>) {
    assert_eq!(x.len(), sh.len(), "batch norm input");
    let m = sh.count();
    (0..sh.c)
        .into_par_iter()
        .map(|ch| {
            let (mut s, mut s2) = (0f64, 0f64);
            for row in sh.maps(x, ch) {
                for &v in row {
                    let v = v as f64;
                    s += v;
                    s2 += v * v;
                }
            }
            let mean = s / m;
            ((mean) as f32, (s2 / m - mean * mean).max(0.0) as f32)
        })
        .unzip()
}

/// `(x - mean) / sqrt(var + eps) * gamma + beta` with the batch's statistics; returns the
/// output, the mean and the variance.
pub fn forward(
    x: &[f32],
    sh: Shape,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    assert!(
        gamma.len() == sh.c && beta.len() == sh.c,
        "batch norm parameters"
    );
    let (mean, var) = stats(x, sh);
    // y = x * a + b per channel.
    let (a, b): (Vec<f32>, Vec<f32>) = (0..sh.c)
        .map(|ch| {
            let a = gamma[ch] / (var[ch] + eps).sqrt();
            (a, beta[ch] - mean[ch] * a)
        })
        .unzip();
    let mut y = vec![0f32; x.len()];
    if sh.hw > 0 {
        y.par_chunks_mut(sh.hw)
            .zip(x.par_chunks(sh.hw))
            .enumerate()
            .for_each(|(k, (y, x))| {
                let (a, b) = (a[k % sh.c], b[k % sh.c]);
                for (d, &v) in y.iter_mut().zip(x) {
                    *d = v * a + b;
                }
            });
    }
    (y, mean, var)
}

/// Gradients with respect to the input, gamma and beta from the output's gradient `g`, the
/// input `x` and the statistics `forward` returned.
pub fn backward(
    x: &[f32],
    g: &[f32],
    sh: Shape,
    gamma: &[f32],
    mean: &[f32],
    var: &[f32],
    eps: f32,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    assert!(
        x.len() == sh.len() && g.len() == sh.len(),
        "batch norm gradient"
    );
    let m = sh.count();
    // Per channel: sum of g and of g * (x - mean).
    let (sum_g, sum_gx): (Vec<f64>, Vec<f64>) = (0..sh.c)
        .into_par_iter()
        .map(|ch| {
            let mu = mean[ch];
            let (mut s, mut sx) = (0f64, 0f64);
            for (xr, gr) in sh.maps(x, ch).zip(sh.maps(g, ch)) {
                for (&xv, &gv) in xr.iter().zip(gr) {
                    s += gv as f64;
                    sx += (gv * (xv - mu)) as f64;
                }
            }
            (s, sx)
        })
        .unzip();
    let inv: Vec<f32> = var.iter().map(|&v| 1.0 / (v + eps).sqrt()).collect();
    let g_gamma: Vec<f32> = (0..sh.c)
        .map(|ch| (sum_gx[ch] * inv[ch] as f64) as f32)
        .collect();
    let g_beta: Vec<f32> = sum_g.iter().map(|&s| s as f32).collect();
    // dx = gamma * inv * (g - mean(g) - (x - mean) * inv^2 * mean(g * (x - mean))).
    let coef: Vec<(f32, f32, f32, f32)> = (0..sh.c)
        .map(|ch| {
            let k = gamma[ch] * inv[ch];
            let mg = (sum_g[ch] / m) as f32;
            let mgx = (sum_gx[ch] / m) as f32 * inv[ch] * inv[ch];
            (k, mg, mgx, mean[ch])
        })
        .collect();
    let mut gx = vec![0f32; x.len()];
    if sh.hw > 0 {
        gx.par_chunks_mut(sh.hw)
            .zip(x.par_chunks(sh.hw).zip(g.par_chunks(sh.hw)))
            .enumerate()
            .for_each(|(k, (d, (x, g)))| {
                let (kk, mg, mgx, mu) = coef[k % sh.c];
                for ((d, &xv), &gv) in d.iter_mut().zip(x).zip(g) {
                    *d = kk * (gv - mg - (xv - mu) * mgx);
                }
            });
    }
    (gx, g_gamma, g_beta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::Lcg;

    /// Straightforward f64 reference of the output and of the loss sum(r * y).
    fn reference(x: &[f32], sh: Shape, gamma: &[f32], beta: &[f32], eps: f64) -> Vec<f64> {
        let mut y = vec![0f64; x.len()];
        for ch in 0..sh.c {
            let vals: Vec<f64> = sh.maps(x, ch).flatten().map(|&v| v as f64).collect();
            let mean = vals.iter().sum::<f64>() / vals.len() as f64;
            let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / vals.len() as f64;
            for i in 0..sh.n {
                for p in 0..sh.hw {
                    let k = (i * sh.c + ch) * sh.hw + p;
                    y[k] = (x[k] as f64 - mean) / (var + eps).sqrt() * gamma[ch] as f64
                        + beta[ch] as f64;
                }
            }
        }
        y
    }

    #[test]
    fn output_and_gradients_match_a_reference_and_finite_differences() {
        let sh = Shape {
            n: 3,
            c: 4,
            hw: 5 * 7,
        };
        let x: Vec<f32> = Lcg(3)
            .vec(sh.len(), 2.0)
            .iter()
            .enumerate()
            .map(|(i, v)| v + (i / sh.hw % sh.c) as f32)
            .collect();
        let gamma = vec![0.5, 1.5, -0.7, 2.0];
        let beta = vec![0.1, -0.2, 0.3, 0.0];
        let r = Lcg(4).vec(sh.len(), 1.0);
        let eps = 1e-3;
        let (y, mean, var) = forward(&x, sh, &gamma, &beta, eps);
        let want = reference(&x, sh, &gamma, &beta, eps as f64);
        for (a, b) in y.iter().zip(&want) {
            assert!((*a as f64 - b).abs() < 1e-4, "{a} vs {b}");
        }
        assert!(var.iter().all(|v| *v > 0.0) && mean.len() == sh.c);
        let (gx, gg, gb) = backward(&x, &r, sh, &gamma, &mean, &var, eps);
        let loss = |x: &[f32], gamma: &[f32], beta: &[f32]| -> f64 {
            reference(x, sh, gamma, beta, eps as f64)
                .iter()
                .zip(&r)
                .map(|(y, r)| y * *r as f64)
                .sum()
        };
        let h = 1e-3f32;
        let check = |analytic: f32, plus: f64, minus: f64, what: &str| {
            let numeric = (plus - minus) / (2.0 * h as f64);
            let tol = 2e-3 * (1.0 + numeric.abs());
            assert!(
                (analytic as f64 - numeric).abs() < tol,
                "{what}: {analytic} vs {numeric}"
            );
        };
        for k in [0, 7, 40, 77, sh.len() - 1] {
            let (mut a, mut b) = (x.clone(), x.clone());
            a[k] += h;
            b[k] -= h;
            check(
                gx[k],
                loss(&a, &gamma, &beta),
                loss(&b, &gamma, &beta),
                "input",
            );
        }
        for ch in 0..sh.c {
            let (mut a, mut b) = (gamma.clone(), gamma.clone());
            a[ch] += h;
            b[ch] -= h;
            check(gg[ch], loss(&x, &a, &beta), loss(&x, &b, &beta), "gamma");
            let (mut a, mut b) = (beta.clone(), beta.clone());
            a[ch] += h;
            b[ch] -= h;
            check(gb[ch], loss(&x, &gamma, &a), loss(&x, &gamma, &b), "beta");
        }
    }

    #[test]
    fn the_same_values_on_one_thread_and_many() {
        let sh = Shape {
            n: 4,
            c: 24,
            hw: 17 * 17,
        };
        let x = Lcg(9).vec(sh.len(), 3.0);
        let g = Lcg(10).vec(sh.len(), 1.0);
        let gamma = Lcg(11).vec(sh.c, 1.0);
        let beta = Lcg(12).vec(sh.c, 1.0);
        let run = || {
            let (y, m, v) = forward(&x, sh, &gamma, &beta, 1e-3);
            let grads = backward(&x, &g, sh, &gamma, &m, &v, 1e-3);
            (y, m, v, grads)
        };
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(run);
        let many = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap()
            .install(run);
        assert!(one == many, "thread count changed the values");
    }
}
