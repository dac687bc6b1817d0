//! Depthwise convolution on NHWC maps with the bias and ReLU6 fused: each output pixel's
//! channels are accumulated in registers, 64 (then 16, then 1) at a time, over the taps that
//! fall inside the image (TensorFlow "same" padding, any stride).

use rayon::prelude::*;

use crate::isa::Isa;

/// Geometry of one depthwise layer on one image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DwShape {
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub k: usize,
    pub stride: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    pub oh: usize,
    pub ow: usize,
}

impl DwShape {
    /// TensorFlow "same" padding: `out = ceil(in / stride)`, the odd pixel of padding after.
    pub fn same(h: usize, w: usize, c: usize, k: usize, stride: usize) -> DwShape {
        let (oh, pad_top) = crate::same_padding(h, k, stride);
        let (ow, pad_left) = crate::same_padding(w, k, stride);
        DwShape {
            h,
            w,
            c,
            k,
            stride,
            pad_top,
            pad_left,
            oh,
            ow,
        }
    }
}

/// `out[oy, ox, c] = act(bias[c] + sum over taps of input[iy, ix, c] * weights[ky * k + kx, c])`
/// for each of the `n` images: `input` is `[n, h, w, c]`, `out` `[n, oh, ow, c]`, `weights`
/// `[k * k, c]`. Rows of the output are shared among rayon's threads when `parallel`.
#[allow(clippy::too_many_arguments)]
pub fn depthwise(
    isa: Isa,
    input: &[f32],
    out: &mut [f32],
    n: usize,
    weights: &[f32],
    bias: &[f32],
    sh: &DwShape,
    relu6: bool,
    parallel: bool,
) {
    let plane = sh.h * sh.w * sh.c;
    assert_eq!(input.len(), n * plane, "depthwise input");
    assert_eq!(out.len(), n * sh.oh * sh.ow * sh.c, "depthwise output");
    assert_eq!(weights.len(), sh.k * sh.k * sh.c, "depthwise weights");
    assert_eq!(bias.len(), sh.c, "depthwise bias");
    let row_len = sh.ow * sh.c;
    let run = |(r, row): (usize, &mut [f32])| {
        let img = r / sh.oh;
        let args = RowArgs {
            input: &input[img * plane..(img + 1) * plane],
            weights,
            bias,
            sh,
            oy: r % sh.oh,
            relu6,
        };
        row_dispatch(isa, &args, row);
    };
    if parallel {
        out.par_chunks_mut(row_len).enumerate().for_each(run);
    } else {
        out.chunks_mut(row_len).enumerate().for_each(run);
    }
}

struct RowArgs<'a> {
    input: &'a [f32],
    weights: &'a [f32],
    bias: &'a [f32],
    sh: &'a DwShape,
    oy: usize,
    relu6: bool,
}

fn row_dispatch(isa: Isa, a: &RowArgs, row: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: `isa` never exceeds what `isa::detected` found on this CPU (callers take it
        // from `isa::active` or `Isa::supported`).
        match isa {
            Isa::Avx512 => return unsafe { row_avx512(a, row) },
            Isa::Avx2 => return unsafe { row_avx2(a, row) },
            Isa::Baseline => {}
        }
    }
    let _ = isa;
    row_generic::<false>(a, row)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn row_avx512(a: &RowArgs, row: &mut [f32]) {
    row_generic::<true>(a, row)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn row_avx2(a: &RowArgs, row: &mut [f32]) {
    row_generic::<true>(a, row)
}

/// Range of kernel taps `[lo, hi)` whose input coordinate `o * stride + t - pad` is in `0..n`.
#[inline(always)]
fn taps(o: usize, stride: usize, pad: usize, k: usize, n: usize) -> (usize, usize) {
    let start = (o * stride) as isize - pad as isize;
    let lo = (-start).max(0) as usize;
    let hi = (n as isize - start).clamp(0, k as isize) as usize;
    (lo.min(hi), hi)
}

/// Output pixels computed together where all their taps are inside the image: the weights of
/// a tap are loaded once for all of them.
const GROUP: usize = 4;

#[inline(always)]
fn row_generic<const FMA: bool>(a: &RowArgs, row: &mut [f32]) {
    let sh = a.sh;
    let ky = taps(a.oy, sh.stride, sh.pad_top, sh.k, sh.h);
    let full = |ox: usize| taps(ox, sh.stride, sh.pad_left, sh.k, sh.w) == (0, sh.k);
    let mut ox = 0;
    while ox < sh.ow {
        if ox + GROUP <= sh.ow && full(ox) && full(ox + GROUP - 1) {
            let out = &mut row[ox * sh.c..(ox + GROUP) * sh.c];
            let mut c0 = 0;
            while c0 + 64 <= sh.c {
                group::<64, FMA>(a, ky, ox, c0, out);
                c0 += 64;
            }
            while c0 + 16 <= sh.c {
                group::<16, FMA>(a, ky, ox, c0, out);
                c0 += 16;
            }
            while c0 < sh.c {
                group::<1, FMA>(a, ky, ox, c0, out);
                c0 += 1;
            }
            ox += GROUP;
            continue;
        }
        let px = Pixel {
            oy: a.oy,
            ox,
            ky,
            kx: taps(ox, sh.stride, sh.pad_left, sh.k, sh.w),
        };
        let o = &mut row[ox * sh.c..(ox + 1) * sh.c];
        let mut c0 = 0;
        while c0 + 64 <= sh.c {
            channels::<64, FMA>(a, &px, c0, &mut o[c0..c0 + 64]);
            c0 += 64;
        }
        while c0 + 16 <= sh.c {
            channels::<16, FMA>(a, &px, c0, &mut o[c0..c0 + 16]);
            c0 += 16;
        }
        while c0 < sh.c {
            channels::<1, FMA>(a, &px, c0, &mut o[c0..c0 + 1]);
            c0 += 1;
        }
        ox += 1;
    }
}

#[inline(always)]
fn fma<const N: usize, const FMA: bool>(acc: &mut [f32; N], x: &[f32; N], w: &[f32; N]) {
    for j in 0..N {
        acc[j] = if FMA {
            x[j].mul_add(w[j], acc[j])
        } else {
            acc[j] + x[j] * w[j]
        };
    }
}

#[inline(always)]
fn store<const N: usize>(acc: &[f32; N], o: &mut [f32], relu6: bool) {
    if relu6 {
        for (d, v) in o.iter_mut().zip(acc) {
            *d = v.clamp(0.0, 6.0);
        }
    } else {
        o.copy_from_slice(acc);
    }
}

/// `GROUP` adjacent pixels from `ox`, channels `c0..c0 + N`, every horizontal tap inside.
#[inline(always)]
fn group<const N: usize, const FMA: bool>(
    a: &RowArgs,
    (ky_lo, ky_hi): (usize, usize),
    ox: usize,
    c0: usize,
    out: &mut [f32],
) {
    let sh = a.sh;
    let bias: &[f32; N] = a.bias[c0..c0 + N].try_into().expect("N values");
    let mut acc = [*bias; GROUP];
    for ky in ky_lo..ky_hi {
        let iy = a.oy * sh.stride + ky - sh.pad_top;
        let line = &a.input[iy * sh.w * sh.c..(iy + 1) * sh.w * sh.c];
        for kx in 0..sh.k {
            let w: &[f32; N] = a.weights[(ky * sh.k + kx) * sh.c + c0..][..N]
                .try_into()
                .expect("N values");
            for (p, acc) in acc.iter_mut().enumerate() {
                let ix = (ox + p) * sh.stride + kx - sh.pad_left;
                let x: &[f32; N] = line[ix * sh.c + c0..][..N].try_into().expect("N values");
                fma::<N, FMA>(acc, x, w);
            }
        }
    }
    for (p, acc) in acc.iter().enumerate() {
        store(acc, &mut out[p * sh.c + c0..p * sh.c + c0 + N], a.relu6);
    }
}

struct Pixel {
    oy: usize,
    ox: usize,
    ky: (usize, usize),
    kx: (usize, usize),
}

#[inline(always)]
fn channels<const N: usize, const FMA: bool>(a: &RowArgs, px: &Pixel, c0: usize, o: &mut [f32]) {
    let sh = a.sh;
    let mut acc: [f32; N] = a.bias[c0..c0 + N].try_into().expect("N values");
    for ky in px.ky.0..px.ky.1 {
        let iy = px.oy * sh.stride + ky - sh.pad_top;
        for kx in px.kx.0..px.kx.1 {
            let ix = px.ox * sh.stride + kx - sh.pad_left;
            let x: &[f32; N] = a.input[(iy * sh.w + ix) * sh.c + c0..][..N]
                .try_into()
                .expect("N values");
            let w: &[f32; N] = a.weights[(ky * sh.k + kx) * sh.c + c0..][..N]
                .try_into()
                .expect("N values");
            fma::<N, FMA>(&mut acc, x, w);
        }
    }
    store(&acc, o, a.relu6);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::{Lcg, conv_nchw, nchw_to_nhwc, nhwc_to_nchw};

    fn check(h: usize, w: usize, c: usize, k: usize, stride: usize) {
        let mut r = Lcg(h as u64 * 131 + c as u64 * 7 + k as u64);
        let x_nchw = r.vec(c * h * w, 2.0);
        let w_oihw = r.vec(c * k * k, 0.5);
        let bias = r.vec(c, 0.5);
        let want = conv_nchw(&x_nchw, (c, h, w), &w_oihw, &bias, c, k, stride, c);
        let sh = DwShape::same(h, w, c, k, stride);
        // [c, 1, k, k] -> [k * k, c]
        let mut packed = vec![0f32; k * k * c];
        for ch in 0..c {
            for t in 0..k * k {
                packed[t * c + ch] = w_oihw[ch * k * k + t];
            }
        }
        // Two images: the second is the first with its values negated.
        let mut x = nchw_to_nhwc(&x_nchw, c, h, w);
        x.extend(x.clone().iter().map(|v| -v));
        let neg = conv_nchw(
            &x_nchw.iter().map(|v| -v).collect::<Vec<_>>(),
            (c, h, w),
            &w_oihw,
            &bias,
            c,
            k,
            stride,
            c,
        );
        let want: Vec<f32> = want.into_iter().chain(neg).collect();
        let plane = sh.oh * sh.ow * c;
        for isa in Isa::supported() {
            for relu6 in [false, true] {
                for parallel in [false, true] {
                    let mut out = vec![f32::NAN; 2 * plane];
                    depthwise(isa, &x, &mut out, 2, &packed, &bias, &sh, relu6, parallel);
                    let mut got = nhwc_to_nchw(&out[..plane], c, sh.oh, sh.ow);
                    got.extend(nhwc_to_nchw(&out[plane..], c, sh.oh, sh.ow));
                    for (g, w) in got.iter().zip(&want) {
                        let w = if relu6 { w.clamp(0.0, 6.0) } else { *w };
                        assert!(
                            (g - w).abs() <= 1e-5 * (1.0 + w.abs()),
                            "{isa:?} {h}x{w}x{c} k{k} s{stride}: {g} vs {w}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn matches_a_direct_convolution() {
        // Channel counts that exercise the 64-, 16- and 1-wide paths; odd and even sizes,
        // strides 1 and 2, kernels 3 and 5 (asymmetric "same" padding included).
        check(7, 9, 96, 3, 1);
        check(8, 8, 144, 3, 2);
        check(9, 6, 240, 5, 2);
        check(5, 5, 83, 5, 1);
        check(1, 3, 17, 3, 2);
        check(12, 11, 32, 5, 2);
        check(6, 23, 64, 3, 1);
        check(6, 29, 48, 5, 2);
    }
}
