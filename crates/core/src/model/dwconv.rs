//! The depthwise convolutions of a backbone that is learning on the CPU, as one autodiff
//! operation with its own backward (`osteoai_kernels::depthwise_nchw`): burn's generic backward
//! of a grouped convolution runs a transposed convolution per image and channel and a
//! convolution per channel, which was most of a fine-tune's time on burn-flex. Used only for
//! tensors of burn-flex under autodiff (fine-tuning and Grad-CAM on the CPU); every other
//! device, and inference, keeps burn's `Conv2d`. `tests` compares both gradients with burn's.

use std::borrow::Cow;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::flex::{Flex, FlexTensor};
use burn::nn::conv::Conv2d;
use burn::tensor::{DType, Tensor, TensorData};
use osteoai_kernels::depthwise::DwShape;
use osteoai_kernels::depthwise_nchw;

/// burn-flex under autodiff without gradient checkpointing (`Device::autodiff()`'s default).
pub(super) type Ad = Autodiff<Flex, NoCheckpointing>;

/// Geometry of one call: images and the layer's shape.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    n: usize,
    sh: DwShape,
}

#[derive(Debug)]
struct DepthwiseBackward;

impl Backward<Flex, 3> for DepthwiseBackward {
    type State = (NodeId, NodeId, Geometry);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, ckpt: &mut Checkpointer) {
        let [node_x, node_w, node_b] = ops.parents;
        let g: FlexTensor = grads.consume::<Flex>(&ops.node);
        let (x_id, w_id, geo) = ops.state;
        let x: FlexTensor = ckpt.retrieve_node_output(x_id);
        let w: FlexTensor = ckpt.retrieve_node_output(w_id);
        let sh = geo.sh;
        let g = values(&g);
        if let Some(node) = node_x {
            let gx = depthwise_nchw::input_grad(&g, &values(&w), geo.n, &sh);
            grads.register::<Flex>(node.id, flex(gx, [geo.n, sh.c, sh.h, sh.w]));
        }
        if node_w.is_some() || node_b.is_some() {
            let (gw, gb) = depthwise_nchw::weight_grad(&values(&x), &g, geo.n, &sh);
            if let Some(node) = node_w {
                grads.register::<Flex>(node.id, flex(gw, [sh.c, 1, sh.k, sh.k]));
            }
            if let Some(node) = node_b {
                grads.register::<Flex>(node.id, flex(gb, [sh.c]));
            }
        }
    }
}

/// A tensor's values in row-major order (copied only when it is not contiguous).
pub(super) fn values(t: &FlexTensor) -> Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(
            t.to_contiguous()
                .as_slice::<f32>()
                .map(<[f32]>::to_vec)
                .unwrap_or_default(),
        ),
    }
}

pub(super) fn flex<const D: usize>(v: Vec<f32>, shape: [usize; D]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(v, shape))
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
    let bias = conv.bias.as_ref()?.val();
    if conv.groups != c || cout != c || cin_g != 1 || kh != kw || conv.dilation != [1, 1] {
        return None;
    }
    if conv.stride[0] != conv.stride[1] || x.dtype() != DType::F32 {
        return None;
    }
    let xa = x.clone().try_into_primitive::<Ad>().ok()?;
    let wa = conv.weight.val().try_into_primitive::<Ad>().ok()?;
    let ba = bias.try_into_primitive::<Ad>().ok()?;
    let geo = Geometry {
        n,
        sh: DwShape::same(h, w, c, kh, conv.stride[0]),
    };
    let sh = geo.sh;
    let run = |xv: &FlexTensor, wv: &FlexTensor, bv: &FlexTensor| {
        let out = depthwise_nchw::forward(&values(xv), &values(wv), &values(bv), n, &sh);
        flex(out, [n, c, sh.oh, sh.ow])
    };
    let out = match DepthwiseBackward
        .prepare::<NoCheckpointing>([xa.node(), wa.node(), ba.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let x_id = prep.checkpoint(&xa);
            let w_id = prep.checkpoint(&wa);
            let y = run(xa.primitive(), wa.primitive(), ba.primitive());
            prep.finish((x_id, w_id, geo), y)
        }
        OpsKind::UnTracked(prep) => {
            prep.finish(run(xa.primitive(), wa.primitive(), ba.primitive()))
        }
    };
    Some(Tensor::from_primitive::<Ad>(out))
}

#[cfg(test)]
mod tests {
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
            let grads_of = |ours: bool| {
                let x = x0.clone().detach().require_grad();
                let y = if ours {
                    depthwise_on_cpu_autodiff(&x, &conv).expect("flex autodiff")
                } else {
                    conv.forward(x.clone())
                };
                let g = (y.clone() * r.clone()).sum().backward();
                let gx = x.grad(&g).unwrap().into_data().try_to_vec::<f32>().unwrap();
                let gw = conv.weight.val().grad(&g).unwrap();
                let gb = conv.bias.as_ref().unwrap().val().grad(&g).unwrap();
                let y = y.into_data().try_to_vec::<f32>().unwrap();
                let gw = gw.into_data().try_to_vec::<f32>().unwrap();
                let gb = gb.into_data().try_to_vec::<f32>().unwrap();
                (y, gx, gw, gb)
            };
            let ours = grads_of(true);
            let burns = grads_of(false);
            let close = |a: &[f32], b: &[f32], what: &str| {
                assert_eq!(a.len(), b.len(), "{what}");
                for (i, (p, q)) in a.iter().zip(b).enumerate() {
                    let tol = 1e-4 * (1.0 + q.abs());
                    assert!(
                        (p - q).abs() < tol,
                        "k{k} s{stride} {what}[{i}]: {p} vs {q}"
                    );
                }
            };
            close(&ours.0, &burns.0, "output");
            close(&ours.1, &burns.1, "input gradient");
            close(&ours.2, &burns.2, "weight gradient");
            close(&ours.3, &burns.3, "bias gradient");
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
