//! CPU kernels for osteoai's EfficientNet-Lite0 backbone.
//!
//! Activations are NHWC (`[h * w, c]` per image, channels contiguous), so that a 1x1
//! convolution is one matrix product and a depthwise convolution reads its channels with wide
//! vector loads. Each layer fuses its bias, ReLU6 and residual add into the pass that computes
//! it. The vector level (AVX-512, AVX2+FMA, baseline) is chosen at run time (`isa`). No
//! dependency on burn: the main crate hands over the (batch-norm folded) weights.

pub mod batch_norm_nchw;
pub mod depthwise;
pub mod depthwise_nchw;
pub mod isa;
pub mod layout;
pub mod net;
pub mod pointwise;
pub mod pointwise_nchw;
#[cfg(test)]
mod reference;
pub mod relu6;
pub mod synthetic;

pub use isa::Isa;
pub use net::{BlockWeights, ConvWeights, Net, NetError, Pool, Tap};

/// EfficientNet-Lite0's stages after the 32-channel stem: (repeats, kernel, stride, expand
/// ratio, in, out), `r1_k3_s11_e1_i32_o16`, ... (the network osteoai's backbone is).
pub const LITE0_STAGES: [(usize, usize, usize, usize, usize, usize); 7] = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
];

/// Channels of EfficientNet-Lite0's 1x1 head (the classic 1280-d features).
pub const LITE0_HEAD: usize = 1280;

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
