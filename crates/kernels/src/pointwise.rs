//! 1x1 convolutions on NHWC maps as one matrix product per strip of pixels (the `gemm` crate,
//! whose AVX-512 kernels are chosen at run time), with the bias — and the residual input —
//! written into the output before the product accumulates onto it, and ReLU6 applied to the
//! strip while it is still in cache. The stem's 3x3 convolution goes the same way after an
//! im2col of its three input channels.

use gemm::{Parallelism, gemm};
use rayon::prelude::*;

use crate::isa::Isa;

/// Pixels per strip: output and input rows stay in the L2 cache between the product and its
/// epilogue, and strips are the unit of work shared among threads.
const STRIP: usize = 4096;

/// A 1x1 convolution: `out[p, o] = bias[o] + sum_i input[p, i] * weight[i, o]`.
#[derive(Clone, Debug)]
pub struct Pointwise {
    pub cin: usize,
    pub cout: usize,
    /// `[cin, cout]`, row-major.
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

/// What happens to the product before it is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    None,
    Relu6,
}

impl Pointwise {
    /// From PyTorch/burn's `[cout, cin, 1, 1]` weight.
    pub fn from_oihw(weight: &[f32], bias: &[f32], cout: usize, cin: usize) -> Pointwise {
        assert_eq!(weight.len(), cout * cin, "1x1 weight");
        let mut w = vec![0f32; cin * cout];
        for o in 0..cout {
            for i in 0..cin {
                w[i * cout + o] = weight[o * cin + i];
            }
        }
        Pointwise {
            cin,
            cout,
            weight: w,
            bias: bias.to_vec(),
        }
    }

    /// Runs over `pixels` rows of `input` (`[pixels, cin]`) into `out` (`[pixels, cout]`).
    /// With `residual` (`[pixels, cout]`), it is added to the result (no activation after).
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        isa: Isa,
        input: &[f32],
        out: &mut [f32],
        pixels: usize,
        act: Act,
        residual: Option<&[f32]>,
        parallel: bool,
    ) {
        assert_eq!(input.len(), pixels * self.cin, "1x1 input");
        assert_eq!(out.len(), pixels * self.cout, "1x1 output");
        if let Some(r) = residual {
            assert_eq!(r.len(), out.len(), "residual");
        }
        // In parallel, at least one strip per thread; each strip packs the weights once.
        let rows = if parallel {
            pixels
                .div_ceil(rayon::current_num_threads())
                .clamp(16, STRIP)
        } else {
            STRIP
        };
        let strip = |(s, o): (usize, &mut [f32])| {
            let first = s * rows;
            let n = o.len() / self.cout;
            let x = &input[first * self.cin..(first + n) * self.cin];
            let r = residual.map(|r| &r[first * self.cout..(first + n) * self.cout]);
            self.strip(isa, x, o, n, act, r);
        };
        if parallel {
            out.par_chunks_mut(rows * self.cout)
                .enumerate()
                .for_each(strip);
        } else {
            out.chunks_mut(rows * self.cout).enumerate().for_each(strip);
        }
    }

    fn strip(
        &self,
        isa: Isa,
        x: &[f32],
        out: &mut [f32],
        rows: usize,
        act: Act,
        residual: Option<&[f32]>,
    ) {
        // SAFETY: the pointers and strides describe `out` ([rows, cout]), `x` ([rows, cin])
        // and `weight` ([cin, cout]), all row-major and checked by the lengths above.
        unsafe {
            gemm(
                rows,
                self.cout,
                self.cin,
                out.as_mut_ptr(),
                1,
                self.cout as isize,
                false,
                x.as_ptr(),
                1,
                self.cin as isize,
                self.weight.as_ptr(),
                1,
                self.cout as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                Parallelism::None,
            );
        }
        epilogue(isa, out, &self.bias, act, residual);
    }
}

/// `out[p, o] = act(out[p, o] + bias[o] (+ residual[p, o]))`, one pass while the strip is in
/// cache, with the widest vectors `isa` allows.
pub fn epilogue(isa: Isa, out: &mut [f32], bias: &[f32], act: Act, residual: Option<&[f32]>) {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: `isa` never exceeds what this CPU supports (see `depthwise::row_dispatch`).
        match isa {
            Isa::Avx512 => return unsafe { epilogue_avx512(out, bias, act, residual) },
            Isa::Avx2 => return unsafe { epilogue_avx2(out, bias, act, residual) },
            Isa::Baseline => {}
        }
    }
    let _ = isa;
    epilogue_generic(out, bias, act, residual)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2")]
unsafe fn epilogue_avx512(out: &mut [f32], bias: &[f32], act: Act, residual: Option<&[f32]>) {
    epilogue_generic(out, bias, act, residual)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn epilogue_avx2(out: &mut [f32], bias: &[f32], act: Act, residual: Option<&[f32]>) {
    epilogue_generic(out, bias, act, residual)
}

#[inline(always)]
fn epilogue_generic(out: &mut [f32], bias: &[f32], act: Act, residual: Option<&[f32]>) {
    let c = bias.len();
    match (act, residual) {
        (Act::Relu6, None) => {
            for o in out.chunks_exact_mut(c) {
                for (d, b) in o.iter_mut().zip(bias) {
                    *d = (*d + b).clamp(0.0, 6.0);
                }
            }
        }
        (Act::None, None) => {
            for o in out.chunks_exact_mut(c) {
                for (d, b) in o.iter_mut().zip(bias) {
                    *d += b;
                }
            }
        }
        (act, Some(r)) => {
            for (o, r) in out.chunks_exact_mut(c).zip(r.chunks_exact(c)) {
                for ((d, b), q) in o.iter_mut().zip(bias).zip(r) {
                    *d = *d + b + q;
                }
            }
            if act == Act::Relu6 {
                relu6(Isa::Baseline, out);
            }
        }
    }
}

/// `x = min(max(x, 0), 6)` in place, with the widest vectors `isa` allows.
pub fn relu6(isa: Isa, x: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: `isa` never exceeds what this CPU supports (see `depthwise::row_dispatch`).
        match isa {
            Isa::Avx512 => return unsafe { relu6_avx512(x) },
            Isa::Avx2 => return unsafe { relu6_avx2(x) },
            Isa::Baseline => {}
        }
    }
    let _ = isa;
    relu6_generic(x)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2")]
unsafe fn relu6_avx512(x: &mut [f32]) {
    relu6_generic(x)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn relu6_avx2(x: &mut [f32]) {
    relu6_generic(x)
}

#[inline(always)]
fn relu6_generic(x: &mut [f32]) {
    for v in x {
        *v = v.clamp(0.0, 6.0);
    }
}

/// The stem's patches: for each output pixel of a k x k, stride-s, "same"-padded convolution of
/// a `[c, h, w]` (CHW) image, its `k * k * c` inputs in (ky, kx, channel) order, zero outside.
/// `cols` is `[oh * ow, k * k * c]`, every value written.
pub fn im2col_chw(
    x: &[f32],
    (c, h, w): (usize, usize, usize),
    k: usize,
    stride: usize,
    cols: &mut [f32],
) {
    let (oh, pt) = crate::same_padding(h, k, stride);
    let (ow, pl) = crate::same_padding(w, k, stride);
    let patch = k * k * c;
    assert_eq!(cols.len(), oh * ow * patch, "im2col output");
    for (i, p) in cols.chunks_exact_mut(patch).enumerate() {
        let (oy, ox) = (i / ow, i % ow);
        for ky in 0..k {
            let iy = (oy * stride + ky) as isize - pt as isize;
            for kx in 0..k {
                let ix = (ox * stride + kx) as isize - pl as isize;
                let inside = iy >= 0 && iy < h as isize && ix >= 0 && ix < w as isize;
                for ch in 0..c {
                    p[(ky * k + kx) * c + ch] = if inside {
                        x[(ch * h + iy as usize) * w + ix as usize]
                    } else {
                        0.0
                    };
                }
            }
        }
    }
}

/// A k x k convolution's `[cout, cin, k, k]` weight as the `[k * k * cin, cout]` matrix that
/// multiplies `im2col_chw`'s patches.
pub fn pack_im2col_weight(
    weight: &[f32],
    bias: &[f32],
    cout: usize,
    cin: usize,
    k: usize,
) -> Pointwise {
    assert_eq!(weight.len(), cout * cin * k * k, "conv weight");
    let rows = k * k * cin;
    let mut w = vec![0f32; rows * cout];
    for o in 0..cout {
        for ci in 0..cin {
            for ky in 0..k {
                for kx in 0..k {
                    w[((ky * k + kx) * cin + ci) * cout + o] =
                        weight[((o * cin + ci) * k + ky) * k + kx];
                }
            }
        }
    }
    Pointwise {
        cin: rows,
        cout,
        weight: w,
        bias: bias.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::{Lcg, conv_nchw, nchw_to_nhwc, nhwc_to_nchw};

    #[test]
    fn one_by_one_with_bias_relu6_and_residual() {
        let (h, w, cin, cout) = (23, 29, 40, 67); // 667 pixels: strips of 256 and a tail
        let mut r = Lcg(3);
        let x = r.vec(cin * h * w, 2.0);
        let wt = r.vec(cout * cin, 0.4);
        let bias = r.vec(cout, 1.0);
        let res = r.vec(cout * h * w, 1.0);
        let want = nchw_to_nhwc(
            &conv_nchw(&x, (cin, h, w), &wt, &bias, cout, 1, 1, 1),
            cout,
            h,
            w,
        );
        let pw = Pointwise::from_oihw(&wt, &bias, cout, cin);
        let xn = nchw_to_nhwc(&x, cin, h, w);
        let resn = nchw_to_nhwc(&res, cout, h, w);
        for isa in Isa::supported() {
            for parallel in [false, true] {
                let mut out = vec![f32::NAN; h * w * cout];
                pw.run(isa, &xn, &mut out, h * w, Act::Relu6, None, parallel);
                for (g, v) in out.iter().zip(&want) {
                    assert!((g - v.clamp(0.0, 6.0)).abs() < 1e-4, "{isa:?} {g} {v}");
                }
                pw.run(isa, &xn, &mut out, h * w, Act::None, Some(&resn), parallel);
                for ((g, v), q) in out.iter().zip(&want).zip(&resn) {
                    assert!((g - (v + q)).abs() < 1e-4, "{isa:?} {g} {v}+{q}");
                }
            }
        }
    }

    #[test]
    fn stem_by_im2col_matches_a_direct_convolution() {
        for (h, w, stride) in [(15, 12, 2), (9, 9, 1), (224, 224, 2)] {
            let (c, k, cout) = (3, 3, 32);
            let mut r = Lcg(h as u64);
            let x = r.vec(c * h * w, 2.0);
            let wt = r.vec(cout * c * k * k, 0.5);
            let bias = r.vec(cout, 0.5);
            let want = conv_nchw(&x, (c, h, w), &wt, &bias, cout, k, stride, 1);
            let (oh, _) = crate::same_padding(h, k, stride);
            let (ow, _) = crate::same_padding(w, k, stride);
            let mut cols = vec![f32::NAN; oh * ow * c * k * k];
            im2col_chw(&x, (c, h, w), k, stride, &mut cols);
            let pw = pack_im2col_weight(&wt, &bias, cout, c, k);
            let mut out = vec![0f32; oh * ow * cout];
            pw.run(
                Isa::Baseline,
                &cols,
                &mut out,
                oh * ow,
                Act::None,
                None,
                false,
            );
            let got = nhwc_to_nchw(&out, cout, oh, ow);
            let max = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(max < 1e-4, "{h}x{w}: {max}");
        }
    }

    #[test]
    fn relu6_on_every_level() {
        let v: Vec<f32> = (-40..40).map(|i| i as f32 * 0.25).collect();
        for isa in Isa::supported() {
            let mut x = v.clone();
            relu6(isa, &mut x);
            for (a, b) in x.iter().zip(&v) {
                assert_eq!(*a, b.clamp(0.0, 6.0));
            }
        }
    }
}
