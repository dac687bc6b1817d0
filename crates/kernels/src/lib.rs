//! CPU kernels for osteoai's EfficientNet-Lite0 backbone.
//!
//! Activations are NHWC (`[h * w, c]` per image, channels contiguous), so that a 1x1
//! convolution is one matrix product and a depthwise convolution reads its channels with wide
//! vector loads. Each layer fuses its bias, ReLU6 and residual add into the pass that computes
//! it. The vector level (AVX-512, AVX2+FMA, baseline) is chosen at run time (`isa`). No
//! dependency on burn: the main crate hands over the (batch-norm folded) weights.

pub mod depthwise;
pub mod isa;
pub mod layout;
pub mod net;
pub mod pointwise;
#[cfg(test)]
mod reference;

pub use isa::Isa;
pub use net::{BlockWeights, ConvWeights, Net, NetError, Pool, Tap};

/// TensorFlow "same" padding along one axis: `(output size, padding before)`; the odd pixel of
/// padding goes after (burn's `PaddingConfig2d::Same`, ONNX `SAME_UPPER`).
pub fn same_padding(size: usize, k: usize, stride: usize) -> (usize, usize) {
    let out = size.div_ceil(stride);
    let total = if out > 0 {
        ((out - 1) * stride + k).saturating_sub(size)
    } else {
        0
    };
    (out, total / 2)
}

#[cfg(test)]
mod tests {
    #[test]
    fn same_padding_is_tensorflows() {
        assert_eq!(super::same_padding(224, 3, 2), (112, 0));
        assert_eq!(super::same_padding(56, 5, 2), (28, 1));
        assert_eq!(super::same_padding(14, 5, 1), (14, 2));
        assert_eq!(super::same_padding(7, 3, 2), (4, 1));
    }
}
