//! 1x1 convolutions on NCHW maps and their two gradients, for training on the CPU: per image
//! the forward pass is one matrix product `W · X` (`[cout, cin] · [cin, h * w]`), the input's
//! gradient `Wᵀ · G`, the weights' gradient `G · Xᵀ` summed over the images, all with the
//! `gemm` crate (AVX-512 or AVX2 kernels chosen at run time). burn-flex computes the weights'
//! gradient of a 1x1 convolution as a convolution whose kernel is the whole map, one
//! matrix-vector product per channel. Images are shared among rayon's threads in fixed
//! groups and their partial sums added in order, so a result never depends on scheduling.

use gemm::{Parallelism, gemm};
use rayon::prelude::*;

/// A 1x1 convolution's channels and the pixels of one map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PwShape {
    pub cin: usize,
    pub cout: usize,
    pub pixels: usize,
}

/// How one image's product runs: alone on all threads when there are fewer images than
/// threads, else one image a thread.
fn inner(n: usize) -> Parallelism {
    let threads = rayon::current_num_threads();
    if n < threads {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    }
}

/// `dst[m, n] (+)= lhs[m, k] · rhs[k, n]`, each matrix given by its pointer and its column and
/// row strides (in elements).
///
/// # Safety
/// Every pointer must cover its matrix as described by the sizes and strides.
#[allow(clippy::too_many_arguments)]
unsafe fn product(
    (m, n, k): (usize, usize, usize),
    dst: (*mut f32, usize, usize),
    accumulate: bool,
    lhs: (*const f32, usize, usize),
    rhs: (*const f32, usize, usize),
    par: Parallelism,
) {
    // SAFETY: the caller's promise.
    unsafe {
        gemm(
            m,
            n,
            k,
            dst.0,
            dst.1 as isize,
            dst.2 as isize,
            accumulate,
            lhs.0,
            lhs.1 as isize,
            lhs.2 as isize,
            rhs.0,
            rhs.1 as isize,
            rhs.2 as isize,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}

/// `out[n, o, p] = bias[o] + sum_i weight[o, i] * x[n, i, p]`; `x` is `[n, cin, pixels]`,
/// `weight` burn's `[cout, cin(, 1, 1)]`, the result `[n, cout, pixels]`.
pub fn forward(x: &[f32], weight: &[f32], bias: &[f32], n: usize, sh: &PwShape) -> Vec<f32> {
    let PwShape { cin, cout, pixels } = *sh;
    assert_eq!(x.len(), n * cin * pixels, "1x1 input");
    assert_eq!(weight.len(), cout * cin, "1x1 weights");
    assert_eq!(bias.len(), cout, "1x1 bias");
    let mut out = vec![0.0f32; n * cout * pixels];
    if out.is_empty() {
        return out;
    }
    let par = inner(n);
    out.par_chunks_mut(cout * pixels)
        .zip(x.par_chunks(cin * pixels.max(1)))
        .for_each(|(y, xn)| {
            for (row, &b) in y.chunks_exact_mut(pixels).zip(bias) {
                row.fill(b);
            }
            if cin == 0 {
                return;
            }
            // SAFETY: `y` is `[cout, pixels]`, `weight` `[cout, cin]` and `xn` `[cin, pixels]`,
            // all row-major, as the lengths checked above say.
            unsafe {
                product(
                    (cout, pixels, cin),
                    (y.as_mut_ptr(), 1, pixels),
                    true,
                    (weight.as_ptr(), 1, cin),
                    (xn.as_ptr(), 1, pixels),
                    par,
                )
            }
        });
    out
}

/// The gradient with respect to `x`, from the output's gradient `g` (`[n, cout, pixels]`):
/// `gx[n] = weightᵀ · g[n]`.
pub fn input_grad(g: &[f32], weight: &[f32], n: usize, sh: &PwShape) -> Vec<f32> {
    let PwShape { cin, cout, pixels } = *sh;
    assert_eq!(g.len(), n * cout * pixels, "1x1 output gradient");
    assert_eq!(weight.len(), cout * cin, "1x1 weights");
    let mut gx = vec![0.0f32; n * cin * pixels];
    if gx.is_empty() || cout == 0 {
        return gx;
    }
    let par = inner(n);
    gx.par_chunks_mut(cin * pixels)
        .zip(g.par_chunks(cout * pixels))
        .for_each(|(gxn, gn)| {
            // SAFETY: `gxn` is `[cin, pixels]`, `gn` `[cout, pixels]`; `weight` read as its
            // transpose `[cin, cout]` (column stride `cin`, row stride 1).
            unsafe {
                product(
                    (cin, pixels, cout),
                    (gxn.as_mut_ptr(), 1, pixels),
                    false,
                    (weight.as_ptr(), cin, 1),
                    (gn.as_ptr(), 1, pixels),
                    par,
                )
            }
        });
    gx
}

/// The gradients with respect to the weights (`[cout, cin]`) and the bias (`[cout]`):
/// `sum_n g[n] · x[n]ᵀ` and the sum of `g` per output channel (in `f64`). The images are cut
/// into as many consecutive groups as there are threads (at most one per image); each group's
/// sum is computed alone and the groups' sums are added in order.
pub fn weight_grad(x: &[f32], g: &[f32], n: usize, sh: &PwShape) -> (Vec<f32>, Vec<f32>) {
    let PwShape { cin, cout, pixels } = *sh;
    assert_eq!(x.len(), n * cin * pixels, "1x1 input");
    assert_eq!(g.len(), n * cout * pixels, "1x1 output gradient");
    if n == 0 || pixels == 0 || cin == 0 || cout == 0 {
        return (vec![0.0; cout * cin], vec![0.0; cout]);
    }
    let groups = n.min(rayon::current_num_threads()).max(1);
    let per = n.div_ceil(groups);
    let par = inner(n);
    let partial: Vec<(Vec<f32>, Vec<f64>)> = (0..n.div_ceil(per))
        .into_par_iter()
        .map(|grp| {
            let mut gw = vec![0.0f32; cout * cin];
            let mut gb = vec![0.0f64; cout];
            for img in grp * per..((grp + 1) * per).min(n) {
                let xn = &x[img * cin * pixels..(img + 1) * cin * pixels];
                let gn = &g[img * cout * pixels..(img + 1) * cout * pixels];
                for (b, row) in gb.iter_mut().zip(gn.chunks_exact(pixels)) {
                    *b += row.iter().sum::<f32>() as f64;
                }
                // SAFETY: `gw` is `[cout, cin]`, `gn` `[cout, pixels]`; `xn` (`[cin, pixels]`)
                // read as its transpose `[pixels, cin]` (column stride `pixels`, row stride 1).
                unsafe {
                    product(
                        (cout, cin, pixels),
                        (gw.as_mut_ptr(), 1, cin),
                        img > grp * per,
                        (gn.as_ptr(), 1, pixels),
                        (xn.as_ptr(), pixels, 1),
                        par,
                    )
                }
            }
            (gw, gb)
        })
        .collect();
    let mut parts = partial.into_iter();
    let (mut gw, mut gb) = parts.next().expect("at least one group");
    for (w, b) in parts {
        for (d, v) in gw.iter_mut().zip(w) {
            *d += v;
        }
        for (d, v) in gb.iter_mut().zip(b) {
            *d += v;
        }
    }
    (gw, gb.into_iter().map(|v| v as f32).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: u64, len: usize) -> Vec<f32> {
        crate::synthetic::Lcg(seed).vec(len, 1.0)
    }

    /// The convolution from its definition, in f64.
    fn naive(x: &[f32], w: &[f32], b: &[f32], n: usize, sh: &PwShape) -> Vec<f64> {
        let PwShape { cin, cout, pixels } = *sh;
        let mut out = vec![0.0f64; n * cout * pixels];
        for img in 0..n {
            for o in 0..cout {
                for p in 0..pixels {
                    let mut s = b[o] as f64;
                    for i in 0..cin {
                        s += w[o * cin + i] as f64 * x[(img * cin + i) * pixels + p] as f64;
                    }
                    out[(img * cout + o) * pixels + p] = s;
                }
            }
        }
        out
    }

    fn shapes() -> Vec<(usize, PwShape)> {
        let sh = |cin, cout, pixels| PwShape { cin, cout, pixels };
        vec![
            (1, sh(3, 5, 7)),
            (3, sh(8, 4, 20)),
            (5, sh(17, 33, 9)),
            (2, sh(40, 24, 49)),
        ]
    }

    #[test]
    fn forward_matches_the_definition() {
        for (n, sh) in shapes() {
            let x = lcg(1, n * sh.cin * sh.pixels);
            let w = lcg(2, sh.cout * sh.cin);
            let b = lcg(3, sh.cout);
            let got = forward(&x, &w, &b, n, &sh);
            for (g, e) in got.iter().zip(naive(&x, &w, &b, n, &sh)) {
                assert!((*g as f64 - e).abs() < 1e-4, "{sh:?}: {g} vs {e}");
            }
        }
    }

    /// The three gradients of `L = sum(r * out)` against central finite differences of the
    /// definition (in f64).
    #[test]
    fn gradients_match_finite_differences() {
        for (n, sh) in shapes() {
            let x = lcg(4, n * sh.cin * sh.pixels);
            let w = lcg(5, sh.cout * sh.cin);
            let b = lcg(6, sh.cout);
            let r = lcg(7, n * sh.cout * sh.pixels);
            let loss = |x: &[f32], w: &[f32], b: &[f32]| -> f64 {
                naive(x, w, b, n, &sh)
                    .iter()
                    .zip(&r)
                    .map(|(o, &r)| o * r as f64)
                    .sum()
            };
            let eps = 1e-2f32;
            let fd = |which: usize, i: usize| {
                let (mut p, mut m) = (
                    [x.clone(), w.clone(), b.clone()],
                    [x.clone(), w.clone(), b.clone()],
                );
                p[which][i] += eps;
                m[which][i] -= eps;
                (loss(&p[0], &p[1], &p[2]) - loss(&m[0], &m[1], &m[2])) / (2.0 * eps as f64)
            };
            let gx = input_grad(&r, &w, n, &sh);
            let (gw, gb) = weight_grad(&x, &r, n, &sh);
            for (which, got) in [(0, &gx), (1, &gw), (2, &gb)] {
                for (i, &v) in got.iter().enumerate() {
                    let want = fd(which, i);
                    assert!(
                        (v as f64 - want).abs() < 2e-3 * (1.0 + want.abs()),
                        "{sh:?} gradient {which}[{i}]: {v} vs {want}"
                    );
                }
            }
        }
    }
}
