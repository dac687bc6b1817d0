//! ReLU6 and its gradient over whole tensors, for training on the CPU: burn's `relu` then
//! `clamp_max` under autodiff is four passes forward and back (two results, two comparison
//! masks, two masked fills); here the forward pass is one, and the gradient one, reading the
//! saved input. Chunks are shared among rayon's threads.

use rayon::prelude::*;

/// Elements a task handles: large enough that scheduling costs nothing, small enough that
/// both threads get work on a 7x7 map of a few images.
const CHUNK: usize = 1 << 14;

/// `min(max(x, 0), 6)`.
pub fn forward(x: &[f32]) -> Vec<f32> {
    let mut y = vec![0.0f32; x.len()];
    y.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(y, x)| {
            for (d, &v) in y.iter_mut().zip(x) {
                *d = v.clamp(0.0, 6.0);
            }
        });
    y
}

/// The gradient with respect to `x` from the output's gradient `g`: `g` where `0 < x < 6`,
/// else 0 (PyTorch's `relu6`/`hardtanh` convention at the two corners).
pub fn backward(x: &[f32], g: &[f32]) -> Vec<f32> {
    assert_eq!(x.len(), g.len(), "relu6 gradient");
    let mut gx = vec![0.0f32; x.len()];
    gx.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK).zip(g.par_chunks(CHUNK)))
        .for_each(|(d, (x, g))| {
            for ((d, &v), &gv) in d.iter_mut().zip(x).zip(g) {
                *d = if v > 0.0 && v < 6.0 { gv } else { 0.0 };
            }
        });
    gx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_gradient_at_and_between_the_corners() {
        let x: Vec<f32> = (0..40_000).map(|i| (i as f32 - 10_000.0) * 1e-3).collect();
        let g: Vec<f32> = (0..x.len()).map(|i| 1.0 + i as f32).collect();
        let y = forward(&x);
        let gx = backward(&x, &g);
        for i in 0..x.len() {
            assert_eq!(y[i], x[i].clamp(0.0, 6.0), "x = {}", x[i]);
            let inside = x[i] > 0.0 && x[i] < 6.0;
            assert_eq!(gx[i], if inside { g[i] } else { 0.0 }, "x = {}", x[i]);
        }
        assert_eq!(forward(&[f32::NEG_INFINITY, 7.0]), vec![0.0, 6.0]);
        assert_eq!(backward(&[0.0, 6.0], &[1.0, 1.0]), vec![0.0, 0.0]);
    }
}
