//! Depthwise convolution on NCHW planes and its two gradients, for training on the CPU: burn's
//! generic backward of a grouped convolution runs one transposed convolution (a GEMM and a
//! col2im) per image and channel for the input's gradient and one convolution per channel for
//! the weights', which made the depthwise layers most of a fine-tune's time. Here each plane is
//! one pass of row-wise multiply-adds (contiguous when the stride is 1), planes shared among
//! rayon's threads. TensorFlow "same" padding as the forward (`DwShape::same`, any stride);
//! weights are burn's `[c, 1, k, k]`, i.e. `k * k` taps per channel.

use rayon::prelude::*;

use crate::depthwise::DwShape;

/// The output columns `ox` whose input column `ox * stride + kx - pad_left` lies inside the
/// image, as `lo..hi`.
fn columns(sh: &DwShape, kx: usize) -> (usize, usize) {
    let s = sh.stride;
    let lo = sh.pad_left.saturating_sub(kx).div_ceil(s);
    // ox * s + kx - pad_left <= w - 1
    let top = sh.w + sh.pad_left;
    let hi = if top > kx {
        ((top - kx - 1) / s + 1).min(sh.ow)
    } else {
        0
    };
    (lo.min(hi), hi)
}

/// The input row `oy * stride + ky - pad_top`, if inside the image.
fn input_row(sh: &DwShape, oy: usize, ky: usize) -> Option<usize> {
    (oy * sh.stride + ky)
        .checked_sub(sh.pad_top)
        .filter(|&iy| iy < sh.h)
}

/// One tap of one output row: output row `oy` reads input row `iy` through tap `ky * k + kx`;
/// its output columns `lo..hi` read inside the image, from input column `first` on, every
/// `stride`-th.
#[derive(Clone, Copy)]
struct Tap {
    oy: usize,
    iy: usize,
    tap: usize,
    lo: usize,
    hi: usize,
    first: usize,
}

/// Every tap of a plane that reads inside the image, row by row: the walk the forward pass and
/// both gradients share.
fn for_each_tap(sh: &DwShape, mut f: impl FnMut(Tap)) {
    for oy in 0..sh.oh {
        for ky in 0..sh.k {
            let Some(iy) = input_row(sh, oy, ky) else {
                continue;
            };
            for kx in 0..sh.k {
                let (lo, hi) = columns(sh, kx);
                if lo < hi {
                    let first = lo * sh.stride + kx - sh.pad_left;
                    let tap = ky * sh.k + kx;
                    f(Tap {
                        oy,
                        iy,
                        tap,
                        lo,
                        hi,
                        first,
                    });
                }
            }
        }
    }
}

/// `out[n, c, oy, ox] = bias[c] + sum over taps of x[n, c, iy, ix] * weights[c, ky, kx]`;
/// `x` is `[n, c, h, w]`, the result `[n, c, oh, ow]`.
pub fn forward(x: &[f32], weights: &[f32], bias: &[f32], n: usize, sh: &DwShape) -> Vec<f32> {
    let (plane_in, plane_out, kk) = (sh.h * sh.w, sh.oh * sh.ow, sh.k * sh.k);
    assert_eq!(x.len(), n * sh.c * plane_in, "depthwise input");
    assert_eq!(weights.len(), sh.c * kk, "depthwise weights");
    assert_eq!(bias.len(), sh.c, "depthwise bias");
    let mut out = vec![0.0f32; n * sh.c * plane_out];
    if plane_out == 0 {
        return out;
    }
    out.par_chunks_mut(plane_out)
        .enumerate()
        .for_each(|(p, o)| {
            let c = p % sh.c;
            let xp = &x[p * plane_in..(p + 1) * plane_in];
            let wt = &weights[c * kk..(c + 1) * kk];
            o.fill(bias[c]);
            for_each_tap(sh, |t| {
                let wv = wt[t.tap];
                let xrow = &xp[t.iy * sh.w..(t.iy + 1) * sh.w];
                let orow = &mut o[t.oy * sh.ow + t.lo..t.oy * sh.ow + t.hi];
                if sh.stride == 1 {
                    for (d, &v) in orow.iter_mut().zip(&xrow[t.first..]) {
                        *d += wv * v;
                    }
                } else {
                    for (d, &v) in orow
                        .iter_mut()
                        .zip(xrow[t.first..].iter().step_by(sh.stride))
                    {
                        *d += wv * v;
                    }
                }
            });
        });
    out
}

/// The gradient of the loss with respect to `x`, from the output's gradient `g`
/// (`[n, c, oh, ow]`): every tap scatters `weights[c, ky, kx] * g` back onto the pixel it read.
pub fn input_grad(g: &[f32], weights: &[f32], n: usize, sh: &DwShape) -> Vec<f32> {
    let (plane_in, plane_out, kk) = (sh.h * sh.w, sh.oh * sh.ow, sh.k * sh.k);
    assert_eq!(g.len(), n * sh.c * plane_out, "depthwise output gradient");
    assert_eq!(weights.len(), sh.c * kk, "depthwise weights");
    let mut gx = vec![0.0f32; n * sh.c * plane_in];
    if plane_in == 0 {
        return gx;
    }
    gx.par_chunks_mut(plane_in)
        .enumerate()
        .for_each(|(p, gxp)| {
            let c = p % sh.c;
            let gp = &g[p * plane_out..(p + 1) * plane_out];
            let wt = &weights[c * kk..(c + 1) * kk];
            for_each_tap(sh, |t| {
                let wv = wt[t.tap];
                let grow = &gp[t.oy * sh.ow + t.lo..t.oy * sh.ow + t.hi];
                let xrow = &mut gxp[t.iy * sh.w..(t.iy + 1) * sh.w];
                if sh.stride == 1 {
                    for (d, &v) in xrow[t.first..].iter_mut().zip(grow) {
                        *d += wv * v;
                    }
                } else {
                    let dst = xrow[t.first..].iter_mut().step_by(sh.stride);
                    for (d, &v) in dst.zip(grow) {
                        *d += wv * v;
                    }
                }
            });
        });
    gx
}

/// The gradients with respect to the weights (`[c, k, k]`) and the bias (`[c]`): per channel,
/// the sum over images and output pixels of `g * x` at each tap's offset (row sums in `f32`,
/// their total in `f64`).
pub fn weight_grad(x: &[f32], g: &[f32], n: usize, sh: &DwShape) -> (Vec<f32>, Vec<f32>) {
    let (plane_in, plane_out, kk) = (sh.h * sh.w, sh.oh * sh.ow, sh.k * sh.k);
    assert_eq!(x.len(), n * sh.c * plane_in, "depthwise input");
    assert_eq!(g.len(), n * sh.c * plane_out, "depthwise output gradient");
    let per_channel: Vec<(Vec<f64>, f64)> = (0..sh.c)
        .into_par_iter()
        .map(|c| {
            let mut acc = vec![0.0f64; kk];
            let mut bias = 0.0f64;
            for img in 0..n {
                let p = img * sh.c + c;
                let xp = &x[p * plane_in..(p + 1) * plane_in];
                let gp = &g[p * plane_out..(p + 1) * plane_out];
                for grow in gp.chunks(sh.ow.max(1)) {
                    bias += grow.iter().sum::<f32>() as f64;
                }
                for_each_tap(sh, |t| {
                    let grow = &gp[t.oy * sh.ow + t.lo..t.oy * sh.ow + t.hi];
                    let xrow = &xp[t.iy * sh.w..(t.iy + 1) * sh.w];
                    let d: f32 = if sh.stride == 1 {
                        dot(grow, &xrow[t.first..t.first + grow.len()])
                    } else {
                        let xs = xrow[t.first..].iter().step_by(sh.stride);
                        grow.iter().zip(xs).map(|(a, b)| a * b).sum()
                    };
                    acc[t.tap] += d as f64;
                });
            }
            (acc, bias)
        })
        .collect();
    let mut gw = Vec::with_capacity(sh.c * kk);
    let mut gb = Vec::with_capacity(sh.c);
    for (acc, b) in per_channel {
        gw.extend(acc.into_iter().map(|v| v as f32));
        gb.push(b as f32);
    }
    (gw, gb)
}

/// A dot product in eight independent lanes (so that the compiler vectorises it).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for ((l, p), q) in lanes.iter_mut().zip(x).zip(y) {
            *l += p * q;
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: u64, len: usize) -> Vec<f32> {
        let mut s = seed;
        (0..len)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// The convolution straight from its definition, in f64.
    fn naive(x: &[f32], w: &[f32], b: &[f32], n: usize, sh: &DwShape) -> Vec<f64> {
        let mut out = vec![0.0f64; n * sh.c * sh.oh * sh.ow];
        for img in 0..n {
            for c in 0..sh.c {
                for oy in 0..sh.oh {
                    for ox in 0..sh.ow {
                        let mut s = b[c] as f64;
                        for ky in 0..sh.k {
                            for kx in 0..sh.k {
                                let iy = (oy * sh.stride + ky) as isize - sh.pad_top as isize;
                                let ix = (ox * sh.stride + kx) as isize - sh.pad_left as isize;
                                if iy < 0 || ix < 0 || iy >= sh.h as isize || ix >= sh.w as isize {
                                    continue;
                                }
                                let xi =
                                    ((img * sh.c + c) * sh.h + iy as usize) * sh.w + ix as usize;
                                s += x[xi] as f64 * w[c * sh.k * sh.k + ky * sh.k + kx] as f64;
                            }
                        }
                        out[((img * sh.c + c) * sh.oh + oy) * sh.ow + ox] = s;
                    }
                }
            }
        }
        out
    }

    fn shapes() -> Vec<(usize, DwShape)> {
        vec![
            (2, DwShape::same(7, 9, 3, 3, 1)),
            (1, DwShape::same(8, 8, 2, 3, 2)),
            (2, DwShape::same(9, 6, 3, 5, 2)),
            (1, DwShape::same(11, 13, 2, 5, 1)),
            (1, DwShape::same(3, 2, 2, 5, 2)),
        ]
    }

    #[test]
    fn forward_matches_the_definition() {
        for (n, sh) in shapes() {
            let x = lcg(1, n * sh.c * sh.h * sh.w);
            let w = lcg(2, sh.c * sh.k * sh.k);
            let b = lcg(3, sh.c);
            let got = forward(&x, &w, &b, n, &sh);
            let want = naive(&x, &w, &b, n, &sh);
            for (g, e) in got.iter().zip(&want) {
                assert!((*g as f64 - e).abs() < 1e-5, "{sh:?}: {g} vs {e}");
            }
        }
    }

    /// Both gradients of `L = sum(r * out)` against central finite differences (in f64) of the
    /// definition: `dL/dout = r`.
    #[test]
    fn gradients_match_finite_differences() {
        for (n, sh) in shapes() {
            let x = lcg(4, n * sh.c * sh.h * sh.w);
            let w = lcg(5, sh.c * sh.k * sh.k);
            let b = lcg(6, sh.c);
            let r = lcg(7, n * sh.c * sh.oh * sh.ow);
            let loss = |x: &[f32], w: &[f32], b: &[f32]| -> f64 {
                naive(x, w, b, n, &sh)
                    .iter()
                    .zip(&r)
                    .map(|(o, &r)| o * r as f64)
                    .sum()
            };
            let eps = 1e-2f32;
            let gx = input_grad(&r, &w, n, &sh);
            for i in 0..x.len() {
                let (mut xp, mut xm) = (x.clone(), x.clone());
                xp[i] += eps;
                xm[i] -= eps;
                let fd = (loss(&xp, &w, &b) - loss(&xm, &w, &b)) / (2.0 * eps as f64);
                assert!(
                    (gx[i] as f64 - fd).abs() < 1e-3,
                    "{sh:?} x[{i}]: {} vs {fd}",
                    gx[i]
                );
            }
            let (gw, gb) = weight_grad(&x, &r, n, &sh);
            for i in 0..w.len() {
                let (mut wp, mut wm) = (w.clone(), w.clone());
                wp[i] += eps;
                wm[i] -= eps;
                let fd = (loss(&x, &wp, &b) - loss(&x, &wm, &b)) / (2.0 * eps as f64);
                assert!(
                    (gw[i] as f64 - fd).abs() < 1e-3,
                    "{sh:?} w[{i}]: {} vs {fd}",
                    gw[i]
                );
            }
            for i in 0..b.len() {
                let (mut bp, mut bm) = (b.clone(), b.clone());
                bp[i] += eps;
                bm[i] -= eps;
                let fd = (loss(&x, &w, &bp) - loss(&x, &w, &bm)) / (2.0 * eps as f64);
                assert!(
                    (gb[i] as f64 - fd).abs() < 1e-3,
                    "{sh:?} b[{i}]: {} vs {fd}",
                    gb[i]
                );
            }
        }
    }
}
