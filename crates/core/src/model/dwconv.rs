//! The depthwise convolutions of a backbone that is learning on the CPU, as one autodiff
//! operation with its own backward (`osteoai_kernels::depthwise_nchw`): burn's generic backward
//! of a grouped convolution runs a transposed convolution per image and channel and a
//! convolution per channel, which was most of a fine-tune's time on burn-flex. Used only for
//! tensors of burn-flex under autodiff (fine-tuning and Grad-CAM on the CPU); every other
//! device, and inference, keeps burn's `Conv2d`. `tests` compares both gradients with burn's.

use burn::backend::flex::FlexTensor;
use burn::nn::conv::Conv2d;
use burn::tensor::{DType, Tensor};
use osteoai_kernels::depthwise::DwShape;
use osteoai_kernels::depthwise_nchw;

use super::cpu_op::{ConvGrads, conv_op, flex};

/// Geometry of one call: images and the layer's shape.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    n: usize,
    sh: DwShape,
}

impl ConvGrads for Geometry {
    fn input_grad(&self, g: &[f32], w: &[f32]) -> FlexTensor {
        let sh = &self.sh;
        let gx = depthwise_nchw::input_grad(g, w, self.n, sh);
        flex(gx, [self.n, sh.c, sh.h, sh.w])
    }

    fn weight_grad(&self, x: &[f32], g: &[f32]) -> (FlexTensor, FlexTensor) {
        let sh = &self.sh;
        let (gw, gb) = depthwise_nchw::weight_grad(x, g, self.n, sh);
        (flex(gw, [sh.c, 1, sh.k, sh.k]), flex(gb, [sh.c]))
    }
}

/// Whether the operation is used (`OSTEOAI_DWCONV=burn` keeps burn's convolution, for
/// measuring the two side by side).
pub fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("OSTEOAI_DWCONV").as_deref() != Ok("burn"))
}

/// `conv` (a folded depthwise convolution: one input channel a group, a bias, square kernel)
/// applied to `x` by the operation above when `x` and the weights are burn-flex tensors under
/// autodiff in f32; `None` otherwise (the caller runs `conv.forward`).
pub fn depthwise_on_cpu_autodiff(x: &Tensor<4>, conv: &Conv2d) -> Option<Tensor<4>> {
    let [n, c, h, w] = x.dims();
    let [cout, cin_g, kh, kw] = conv.weight.val().dims();
    if conv.groups != c || cout != c || cin_g != 1 || kh != kw || conv.dilation != [1, 1] {
        return None;
    }
    if conv.stride[0] != conv.stride[1] || x.dtype() != DType::F32 {
        return None;
    }
    let geo = Geometry {
        n,
        sh: DwShape::same(h, w, c, kh, conv.stride[0]),
    };
    let sh = geo.sh;
    conv_op(x, conv, geo, |xv, wv, bv| {
        let out = depthwise_nchw::forward(xv, wv, bv, n, &sh);
        flex(out, [n, c, sh.oh, sh.ow])
    })
}

#[cfg(test)]
mod tests {
    use super::super::cpu_op::{assert_close, output_and_gradients};
    use super::*;
    use burn::module::Param;
    use burn::nn::PaddingConfig2d;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::{Device, Distribution};

    /// The operation's output and its gradients with respect to the input, the weights and the
    /// bias equal burn's `Conv2d` on the same tensors (stride 1 and 2, kernels 3 and 5, odd
    /// sizes), and other devices are left to `Conv2d`.
    #[test]
    fn output_and_gradients_equal_burns_convolution() {
        let device = Device::flex().autodiff();
        device.seed(11);
        for (k, stride, h, w) in [(3, 1, 9, 7), (3, 2, 10, 9), (5, 2, 11, 8), (5, 1, 6, 13)] {
            let c = 4;
            let mut conv = Conv2dConfig::new([c, c], [k, k])
                .with_stride([stride, stride])
                .with_groups(c)
                .with_padding(PaddingConfig2d::Same)
                .with_bias(true)
                .init(&device);
            conv.weight = Param::from_tensor(Tensor::random(
                [c, 1, k, k],
                Distribution::Normal(0.0, 1.0),
                &device,
            ));
            conv.bias = Some(Param::from_tensor(Tensor::random(
                [c],
                Distribution::Normal(0.0, 1.0),
                &device,
            )));
            let x0 = Tensor::<4>::random([2, c, h, w], Distribution::Normal(0.0, 1.0), &device);
            let r = Tensor::<4>::random(
                [2, c, h.div_ceil(stride), w.div_ceil(stride)],
                Distribution::Normal(0.0, 1.0),
                &device,
            );
            let ours = output_and_gradients(&x0, &r, &conv, |x| {
                depthwise_on_cpu_autodiff(&x, &conv).expect("flex autodiff")
            });
            let burns = output_and_gradients(&x0, &r, &conv, |x| conv.forward(x));
            assert_close(&ours, &burns, &format!("k{k} s{stride}"));
        }
        // Without autodiff (inference) the caller keeps burn's convolution.
        let plain = Device::flex();
        let conv = Conv2dConfig::new([2, 2], [3, 3])
            .with_groups(2)
            .with_padding(PaddingConfig2d::Same)
            .init(&plain);
        let x = Tensor::<4>::zeros([1, 2, 5, 5], &plain);
        assert!(depthwise_on_cpu_autodiff(&x, &conv).is_none());
    }
}
