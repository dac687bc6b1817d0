//! The 1x1 convolutions of a backbone that is learning on the CPU (expansions, projections
//! and the head), as one autodiff operation with its own backward
//! (`osteoai_kernels::pointwise_nchw`: three matrix products): burn-flex's backward of a 1x1
//! convolution computed the weights' gradient as a convolution whose kernel is the whole map,
//! one matrix-vector product per channel. Used only for tensors of burn-flex under autodiff
//! (fine-tuning and Grad-CAM on the CPU), like `dwconv`; `tests` compares the output and the
//! three gradients with burn's `Conv2d`.

use burn::backend::flex::FlexTensor;
use burn::nn::conv::Conv2d;
use burn::tensor::{DType, Tensor};
use osteoai_kernels::pointwise_nchw::{self, PwShape};

use super::cpu_op::{ConvGrads, conv_op, flex};

/// Images, channels and the map's size of one call.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    n: usize,
    h: usize,
    w: usize,
    sh: PwShape,
}

impl ConvGrads for Geometry {
    fn input_grad(&self, g: &[f32], w: &[f32]) -> FlexTensor {
        let gx = pointwise_nchw::input_grad(g, w, self.n, &self.sh);
        flex(gx, [self.n, self.sh.cin, self.h, self.w])
    }

    fn weight_grad(&self, x: &[f32], g: &[f32]) -> (FlexTensor, FlexTensor) {
        let sh = &self.sh;
        let (gw, gb) = pointwise_nchw::weight_grad(x, g, self.n, sh);
        (flex(gw, [sh.cout, sh.cin, 1, 1]), flex(gb, [sh.cout]))
    }
}

/// Whether the operation is used (`OSTEOAI_PWCONV=burn` keeps burn's convolution, for
/// measuring the two side by side).
pub fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("OSTEOAI_PWCONV").as_deref() != Ok("burn"))
}

/// `conv` (a folded 1x1 convolution: stride 1, one group, a bias) applied to `x` by the
/// operation above when `x` and the weights are burn-flex tensors under autodiff in f32;
/// `None` otherwise (the caller runs `conv.forward`).
pub fn pointwise_on_cpu_autodiff(x: &Tensor<4>, conv: &Conv2d) -> Option<Tensor<4>> {
    let [n, cin, h, w] = x.dims();
    let [cout, cin_w, kh, kw] = conv.weight.val().dims();
    if (kh, kw) != (1, 1) || cin_w != cin || conv.groups != 1 || conv.stride != [1, 1] {
        return None;
    }
    if conv.dilation != [1, 1] || x.dtype() != DType::F32 {
        return None;
    }
    let sh = PwShape {
        cin,
        cout,
        pixels: h * w,
    };
    let geo = Geometry { n, h, w, sh };
    conv_op(x, conv, geo, |xv, wv, bv| {
        flex(pointwise_nchw::forward(xv, wv, bv, n, &sh), [n, cout, h, w])
    })
}

#[cfg(test)]
mod tests {
    use super::super::cpu_op::{assert_close, output_and_gradients};
    use super::*;
    use burn::module::Param;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::{Device, Distribution};

    /// The operation's output and its gradients with respect to the input, the weights and the
    /// bias equal burn's `Conv2d` on the same tensors (one image and several, odd sizes), and
    /// other devices and convolutions are left to `Conv2d`.
    #[test]
    fn output_and_gradients_equal_burns_convolution() {
        let device = Device::flex().autodiff();
        device.seed(12);
        for (n, cin, cout, h, w) in [(1, 3, 5, 4, 7), (3, 8, 6, 5, 5), (2, 16, 24, 7, 3)] {
            let mut conv = Conv2dConfig::new([cin, cout], [1, 1])
                .with_bias(true)
                .init(&device);
            conv.weight = Param::from_tensor(Tensor::random(
                [cout, cin, 1, 1],
                Distribution::Normal(0.0, 1.0),
                &device,
            ));
            conv.bias = Some(Param::from_tensor(Tensor::random(
                [cout],
                Distribution::Normal(0.0, 1.0),
                &device,
            )));
            let x0 = Tensor::<4>::random([n, cin, h, w], Distribution::Normal(0.0, 1.0), &device);
            let r = Tensor::<4>::random([n, cout, h, w], Distribution::Normal(0.0, 1.0), &device);
            let ours = output_and_gradients(&x0, &r, &conv, |x| {
                pointwise_on_cpu_autodiff(&x, &conv).expect("flex autodiff")
            });
            let burns = output_and_gradients(&x0, &r, &conv, |x| conv.forward(x));
            assert_close(&ours, &burns, &format!("n{n} {cin}->{cout}"));
        }
        // A 3x3 convolution, and any convolution without autodiff, stay with burn.
        let conv3 = Conv2dConfig::new([2, 2], [3, 3]).init(&device);
        let x = Tensor::<4>::zeros([1, 2, 5, 5], &device);
        assert!(pointwise_on_cpu_autodiff(&x, &conv3).is_none());
        let plain = Device::flex();
        let conv1 = Conv2dConfig::new([2, 2], [1, 1]).init(&plain);
        let x = Tensor::<4>::zeros([1, 2, 5, 5], &plain);
        assert!(pointwise_on_cpu_autodiff(&x, &conv1).is_none());
    }
}
