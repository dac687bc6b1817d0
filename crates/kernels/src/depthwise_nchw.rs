//! Depthwise convolution on NCHW planes and its two gradients, for training on the CPU: burn's
//! generic backward of a grouped convolution runs one transposed convolution (a GEMM and a
//! col2im) per image and channel for the input's gradient and one convolution per channel for
//! the weights', which made the depthwise layers most of a fine-tune's time.
//!
//! Each plane is first laid out padded and split into its `stride × stride` phases (`Layout`):
//! then every tap of the kernel reads one phase at a constant offset from the output pixel, so
//! the forward pass is `k * k` multiply-adds over the whole plane at once, the input's gradient
//! the same scattered back, and the weights' gradient `k * k` dot products — long vector loops
//! even on 7x7 maps, where row-by-row passes were all loop overhead. The output is computed on
//! rows as wide as the phases and its extra columns dropped. Planes are shared among rayon's
//! threads, and each kernel is compiled for AVX-512, AVX2 and the baseline (`crate::isa`).
//! TensorFlow "same" padding as the forward (`DwShape::same`, any stride); weights are burn's
//! `[c, 1, k, k]`, i.e. `k * k` taps per channel.

use rayon::prelude::*;

use crate::depthwise::DwShape;
use crate::isa::{self, Isa};

/// A layer's planes padded and split into phases. Phase `(a, b)` of the padded input holds
/// its rows `a, a + s, …` and columns `b, b + s, …`, `hq × wq` of them, then `(k - 1) / s`
/// zeros of slack; output pixel `(oy, ox)` reads tap `(ky, kx)` at `(oy + ky / s, ox + kx / s)`
/// of phase `(ky % s, kx % s)`, so on rows `wq` wide the whole tap is one run at one offset.
struct Layout {
    sh: DwShape,
    /// Rows and columns of a phase.
    hq: usize,
    wq: usize,
    /// Length of one phase, slack included.
    plen: usize,
    /// Per tap (`ky * k + kx`): where its run starts in the phases.
    taps: Vec<usize>,
}

impl Layout {
    fn new(sh: &DwShape) -> Layout {
        let s = sh.stride.max(1);
        let extra = (sh.k - 1) / s;
        let (hq, wq) = (sh.oh + extra, sh.ow + extra);
        let plen = hq * wq + extra;
        let taps = (0..sh.k * sh.k)
            .map(|t| {
                let (ky, kx) = (t / sh.k, t % sh.k);
                ((ky % s) * s + kx % s) * plen + (ky / s) * wq + kx / s
            })
            .collect();
        Layout {
            sh: *sh,
            hq,
            wq,
            plen,
            taps,
        }
    }

    /// Length of the output on rows `wq` wide.
    fn wide(&self) -> usize {
        self.sh.oh * self.wq
    }

    /// For input row `iy` and each column phase `b`: where its run starts in the phases, the
    /// first input column of that phase and how many of its columns fit. `None` for a row no
    /// tap reads.
    #[inline(always)]
    fn row_runs(&self, iy: usize) -> Option<impl Iterator<Item = (usize, usize, usize)> + '_> {
        let (s, w, pl) = (self.sh.stride, self.sh.w, self.sh.pad_left);
        let py = iy + self.sh.pad_top;
        let r = py / s;
        if r >= self.hq {
            return None;
        }
        let base = (py % s) * s * self.plen + r * self.wq;
        Some((0..s).filter_map(move |b| {
            let ix0 = (b + s - pl % s) % s;
            if ix0 >= w {
                return None;
            }
            let c0 = (ix0 + pl) / s;
            let count = (w - ix0).div_ceil(s).min(self.wq.saturating_sub(c0));
            Some((base + b * self.plen + c0, ix0, count))
        }))
    }

    /// The plane `xp` (`[h, w]`) padded and split into `ph` (zero where there is no pixel).
    #[inline(always)]
    fn scatter(&self, xp: &[f32], ph: &mut Vec<f32>) {
        let sh = &self.sh;
        ph.clear();
        ph.resize(sh.stride * sh.stride * self.plen, 0.0);
        for (iy, row) in xp.chunks_exact(sh.w).enumerate() {
            if sh.stride == 1 {
                let at = (iy + sh.pad_top) * self.wq + sh.pad_left;
                ph[at..at + sh.w].copy_from_slice(row);
            } else if let Some(runs) = self.row_runs(iy) {
                for (at, ix0, count) in runs {
                    let src = row[ix0..].iter().step_by(sh.stride);
                    for (d, &v) in ph[at..at + count].iter_mut().zip(src) {
                        *d = v;
                    }
                }
            }
        }
    }

    /// The inverse of `scatter`: the plane's pixels from the phases into `xp`.
    #[inline(always)]
    fn gather(&self, ph: &[f32], xp: &mut [f32]) {
        let sh = &self.sh;
        for (iy, row) in xp.chunks_exact_mut(sh.w).enumerate() {
            if sh.stride == 1 {
                let at = (iy + sh.pad_top) * self.wq + sh.pad_left;
                row.copy_from_slice(&ph[at..at + sh.w]);
            } else {
                row.fill(0.0);
                if let Some(runs) = self.row_runs(iy) {
                    for (at, ix0, count) in runs {
                        let dst = row[ix0..].iter_mut().step_by(sh.stride);
                        for (d, &v) in dst.zip(&ph[at..at + count]) {
                            *d = v;
                        }
                    }
                }
            }
        }
    }

    /// The output plane `gp` (`[oh, ow]`) on rows `wq` wide, zero in the extra columns.
    #[inline(always)]
    fn widen(&self, gp: &[f32], wide: &mut Vec<f32>) {
        let ow = self.sh.ow;
        wide.clear();
        wide.resize(self.wide(), 0.0);
        for (src, dst) in gp.chunks_exact(ow).zip(wide.chunks_exact_mut(self.wq)) {
            dst[..ow].copy_from_slice(src);
        }
    }
}

/// Scratch of one thread: the phases and an output plane on wide rows.
#[derive(Default)]
struct Scratch {
    phases: Vec<f32>,
    wide: Vec<f32>,
}

/// Each kernel below is written once (`#[inline(always)]`) and compiled three times: for
/// AVX-512, for AVX2 and for the baseline, chosen at run time (`crate::isa`). The arithmetic is
/// the same at every level (separate multiplies and adds, the same order), so are the values.
macro_rules! multiversion {
    ($generic:ident => $avx512:ident, $avx2:ident, $at:ident ($($arg:ident: $ty:ty),*)) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f,avx2,fma")]
        unsafe fn $avx512($($arg: $ty),*) {
            $generic($($arg),*)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn $avx2($($arg: $ty),*) {
            $generic($($arg),*)
        }

        fn $at(isa: Isa, $($arg: $ty),*) {
            match isa {
                // SAFETY: `isa` is never above what the CPU reports (`isa::active`).
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => unsafe { $avx512($($arg),*) },
                // SAFETY: as above.
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => unsafe { $avx2($($arg),*) },
                _ => $generic($($arg),*),
            }
        }
    };
}

/// `dst += a * src`, element by element.
#[inline(always)]
fn axpy(dst: &mut [f32], a: f32, src: &[f32]) {
    for (d, &v) in dst.iter_mut().zip(src) {
        *d += a * v;
    }
}

/// One plane of the forward pass: `o` (`[oh, ow]`) from `xp` (`[h, w]`).
#[inline(always)]
fn forward_plane(
    lay: &Layout,
    xp: &[f32],
    wt: &[f32],
    bias: f32,
    o: &mut [f32],
    tmp: &mut Scratch,
) {
    lay.scatter(xp, &mut tmp.phases);
    let n = lay.wide();
    tmp.wide.clear();
    tmp.wide.resize(n, bias);
    for (&at, &wv) in lay.taps.iter().zip(wt) {
        axpy(&mut tmp.wide, wv, &tmp.phases[at..at + n]);
    }
    let ow = lay.sh.ow;
    for (dst, src) in o.chunks_exact_mut(ow).zip(tmp.wide.chunks_exact(lay.wq)) {
        dst.copy_from_slice(&src[..ow]);
    }
}

multiversion!(forward_plane => forward_plane_avx512, forward_plane_avx2, forward_plane_at(
    lay: &Layout, xp: &[f32], wt: &[f32], bias: f32, o: &mut [f32], tmp: &mut Scratch));

/// One plane of the input's gradient: `gxp` (`[h, w]`) from `gp` (`[oh, ow]`).
#[inline(always)]
fn input_grad_plane(lay: &Layout, gp: &[f32], wt: &[f32], gxp: &mut [f32], tmp: &mut Scratch) {
    lay.widen(gp, &mut tmp.wide);
    let sh = &lay.sh;
    tmp.phases.clear();
    tmp.phases.resize(sh.stride * sh.stride * lay.plen, 0.0);
    let n = lay.wide();
    for (&at, &wv) in lay.taps.iter().zip(wt) {
        axpy(&mut tmp.phases[at..at + n], wv, &tmp.wide);
    }
    lay.gather(&tmp.phases, gxp);
}

multiversion!(input_grad_plane => input_grad_plane_avx512, input_grad_plane_avx2,
    input_grad_plane_at(lay: &Layout, gp: &[f32], wt: &[f32], gxp: &mut [f32], tmp: &mut Scratch));

/// One image's share of one channel's weight gradient: `acc[tap] += sum g * x` over the
/// plane (a dot product in `f32`), `bias += sum g`.
#[inline(always)]
fn weight_grad_plane(
    lay: &Layout,
    xp: &[f32],
    gp: &[f32],
    acc: &mut [f64],
    bias: &mut f64,
    tmp: &mut Scratch,
) {
    for grow in gp.chunks(lay.sh.ow.max(1)) {
        *bias += grow.iter().sum::<f32>() as f64;
    }
    lay.scatter(xp, &mut tmp.phases);
    lay.widen(gp, &mut tmp.wide);
    let n = lay.wide();
    for (&at, a) in lay.taps.iter().zip(acc.iter_mut()) {
        *a += dot(&tmp.wide, &tmp.phases[at..at + n]) as f64;
    }
}

multiversion!(weight_grad_plane => weight_grad_plane_avx512, weight_grad_plane_avx2,
    weight_grad_plane_at(lay: &Layout, xp: &[f32], gp: &[f32], acc: &mut [f64], bias: &mut f64,
    tmp: &mut Scratch));

/// `out[n, c, oy, ox] = bias[c] + sum over taps of x[n, c, iy, ix] * weights[c, ky, kx]`;
/// `x` is `[n, c, h, w]`, the result `[n, c, oh, ow]`.
pub fn forward(x: &[f32], weights: &[f32], bias: &[f32], n: usize, sh: &DwShape) -> Vec<f32> {
    forward_with(isa::active(), x, weights, bias, n, sh)
}

fn forward_with(
    isa: Isa,
    x: &[f32],
    weights: &[f32],
    bias: &[f32],
    n: usize,
    sh: &DwShape,
) -> Vec<f32> {
    let (plane_in, plane_out, kk) = (sh.h * sh.w, sh.oh * sh.ow, sh.k * sh.k);
    assert_eq!(x.len(), n * sh.c * plane_in, "depthwise input");
    assert_eq!(weights.len(), sh.c * kk, "depthwise weights");
    assert_eq!(bias.len(), sh.c, "depthwise bias");
    let mut out = vec![0.0f32; n * sh.c * plane_out];
    if plane_out == 0 {
        return out;
    }
    let lay = Layout::new(sh);
    out.par_chunks_mut(plane_out)
        .enumerate()
        .for_each_init(Scratch::default, |tmp, (p, o)| {
            let c = p % sh.c;
            let xp = &x[p * plane_in..(p + 1) * plane_in];
            let wt = &weights[c * kk..(c + 1) * kk];
            forward_plane_at(isa, &lay, xp, wt, bias[c], o, tmp);
        });
    out
}

/// The gradient of the loss with respect to `x`, from the output's gradient `g`
/// (`[n, c, oh, ow]`): every tap scatters `weights[c, ky, kx] * g` back onto the pixel it read.
pub fn input_grad(g: &[f32], weights: &[f32], n: usize, sh: &DwShape) -> Vec<f32> {
    input_grad_with(isa::active(), g, weights, n, sh)
}

fn input_grad_with(isa: Isa, g: &[f32], weights: &[f32], n: usize, sh: &DwShape) -> Vec<f32> {
    let (plane_in, plane_out, kk) = (sh.h * sh.w, sh.oh * sh.ow, sh.k * sh.k);
    assert_eq!(g.len(), n * sh.c * plane_out, "depthwise output gradient");
    assert_eq!(weights.len(), sh.c * kk, "depthwise weights");
    let mut gx = vec![0.0f32; n * sh.c * plane_in];
    if plane_in == 0 {
        return gx;
    }
    let lay = Layout::new(sh);
    gx.par_chunks_mut(plane_in)
        .enumerate()
        .for_each_init(Scratch::default, |tmp, (p, gxp)| {
            let c = p % sh.c;
            let gp = &g[p * plane_out..(p + 1) * plane_out];
            let wt = &weights[c * kk..(c + 1) * kk];
            input_grad_plane_at(isa, &lay, gp, wt, gxp, tmp);
        });
    gx
}

/// The gradients with respect to the weights (`[c, k, k]`) and the bias (`[c]`): per channel,
/// the sum over images and output pixels of `g * x` at each tap's offset (row sums in `f32`,
/// their total in `f64`).
pub fn weight_grad(x: &[f32], g: &[f32], n: usize, sh: &DwShape) -> (Vec<f32>, Vec<f32>) {
    weight_grad_with(isa::active(), x, g, n, sh)
}

fn weight_grad_with(
    isa: Isa,
    x: &[f32],
    g: &[f32],
    n: usize,
    sh: &DwShape,
) -> (Vec<f32>, Vec<f32>) {
    let (plane_in, plane_out, kk) = (sh.h * sh.w, sh.oh * sh.ow, sh.k * sh.k);
    assert_eq!(x.len(), n * sh.c * plane_in, "depthwise input");
    assert_eq!(g.len(), n * sh.c * plane_out, "depthwise output gradient");
    if plane_in == 0 || plane_out == 0 {
        return (vec![0.0; sh.c * kk], vec![0.0; sh.c]);
    }
    let lay = Layout::new(sh);
    let per_channel: Vec<(Vec<f64>, f64)> = (0..sh.c)
        .into_par_iter()
        .map_init(Scratch::default, |tmp, c| {
            let mut acc = vec![0.0f64; kk];
            let mut bias = 0.0f64;
            for img in 0..n {
                let p = img * sh.c + c;
                let xp = &x[p * plane_in..(p + 1) * plane_in];
                let gp = &g[p * plane_out..(p + 1) * plane_out];
                weight_grad_plane_at(isa, &lay, xp, gp, &mut acc, &mut bias, tmp);
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
#[inline(always)]
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
        crate::synthetic::Lcg(seed).vec(len, 1.0)
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
            (1, DwShape::same(10, 11, 2, 3, 3)),
            // Rows long enough for whole AVX-512 vectors and a remainder.
            (2, DwShape::same(6, 37, 2, 3, 1)),
            (1, DwShape::same(7, 41, 2, 5, 2)),
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

    /// Every instruction-set level gives the same values, bit for bit, for the forward pass and
    /// both gradients (no fused multiply-adds, the same order).
    #[test]
    fn every_isa_level_gives_the_same_values() {
        for (n, sh) in shapes() {
            let x = lcg(8, n * sh.c * sh.h * sh.w);
            let w = lcg(9, sh.c * sh.k * sh.k);
            let b = lcg(10, sh.c);
            let r = lcg(11, n * sh.c * sh.oh * sh.ow);
            let run = |isa: Isa| {
                (
                    forward_with(isa, &x, &w, &b, n, &sh),
                    input_grad_with(isa, &r, &w, n, &sh),
                    weight_grad_with(isa, &x, &r, n, &sh),
                )
            };
            let base = run(Isa::Baseline);
            for isa in Isa::supported() {
                assert_eq!(run(isa), base, "{sh:?} at {}", isa.name());
            }
        }
    }
}
