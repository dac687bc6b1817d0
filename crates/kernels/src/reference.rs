//! Plain reference implementations for the tests: direct NCHW convolution and layout changes.

pub use crate::synthetic::Lcg;

/// Direct convolution, TensorFlow "same" padding, f64 accumulation. `x` is `[cin, h, w]`,
/// `w` is `[cout, cin / groups, k, k]`; the result is `[cout, oh, ow]`.
#[allow(clippy::too_many_arguments)]
pub fn conv_nchw(
    x: &[f32],
    (cin, h, wd): (usize, usize, usize),
    w: &[f32],
    bias: &[f32],
    cout: usize,
    k: usize,
    stride: usize,
    groups: usize,
) -> Vec<f32> {
    let (oh, pt) = crate::same_padding(h, k, stride);
    let (ow, pl) = crate::same_padding(wd, k, stride);
    let cin_g = cin / groups;
    let cout_g = cout / groups;
    let mut out = vec![0f32; cout * oh * ow];
    for co in 0..cout {
        let g = co / cout_g;
        for oy in 0..oh {
            for ox in 0..ow {
                let mut acc = bias[co] as f64;
                for ci in 0..cin_g {
                    for ky in 0..k {
                        for kx in 0..k {
                            let iy = (oy * stride + ky) as isize - pt as isize;
                            let ix = (ox * stride + kx) as isize - pl as isize;
                            if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
                                continue;
                            }
                            let xv = x[((g * cin_g + ci) * h + iy as usize) * wd + ix as usize];
                            let wv = w[((co * cin_g + ci) * k + ky) * k + kx];
                            acc += xv as f64 * wv as f64;
                        }
                    }
                }
                out[(co * oh + oy) * ow + ox] = acc as f32;
            }
        }
    }
    out
}

pub fn nchw_to_nhwc(x: &[f32], c: usize, h: usize, w: usize) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    for ch in 0..c {
        for p in 0..h * w {
            out[p * c + ch] = x[ch * h * w + p];
        }
    }
    out
}

pub fn nhwc_to_nchw(x: &[f32], c: usize, h: usize, w: usize) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    for ch in 0..c {
        for p in 0..h * w {
            out[ch * h * w + p] = x[p * c + ch];
        }
    }
    out
}
