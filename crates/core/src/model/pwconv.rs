//! The 1x1 convolutions of a backbone that is learning on the CPU (expansions, projections
//! and the head), as one autodiff operation with its own backward
//! (`osteoai_kernels::pointwise_nchw`: three matrix products): burn-flex's backward of a 1x1
//! convolution computed the weights' gradient as a convolution whose kernel is the whole map,
//! one matrix-vector product per channel. Used only for tensors of burn-flex under autodiff
//! (fine-tuning and Grad-CAM on the CPU), like `dwconv`; `tests` compares the output and the
//! three gradients with burn's `Conv2d`.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::{Flex, FlexTensor};
use burn::nn::conv::Conv2d;
use burn::tensor::{DType, Tensor};
use osteoai_kernels::pointwise_nchw::{self, PwShape};

use super::dwconv::{Ad, flex, values};

/// Images, channels and the map's size of one call.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    n: usize,
    h: usize,
    w: usize,
    sh: PwShape,
}

#[derive(Debug)]
struct PointwiseBackward;

impl Backward<Flex, 3> for PointwiseBackward {
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
            let gx = pointwise_nchw::input_grad(&g, &values(&w), geo.n, &sh);
            grads.register::<Flex>(node.id, flex(gx, [geo.n, sh.cin, geo.h, geo.w]));
        }
        if node_w.is_some() || node_b.is_some() {
            let (gw, gb) = pointwise_nchw::weight_grad(&values(&x), &g, geo.n, &sh);
            if let Some(node) = node_w {
                grads.register::<Flex>(node.id, flex(gw, [sh.cout, sh.cin, 1, 1]));
            }
            if let Some(node) = node_b {
                grads.register::<Flex>(node.id, flex(gb, [sh.cout]));
            }
        }
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
    let bias = conv.bias.as_ref()?.val();
    if (kh, kw) != (1, 1) || cin_w != cin || conv.groups != 1 || conv.stride != [1, 1] {
        return None;
    }
    if conv.dilation != [1, 1] || x.dtype() != DType::F32 {
        return None;
    }
    let xa = x.clone().try_into_primitive::<Ad>().ok()?;
    let wa = conv.weight.val().try_into_primitive::<Ad>().ok()?;
    let ba = bias.try_into_primitive::<Ad>().ok()?;
    let sh = PwShape {
        cin,
        cout,
        pixels: h * w,
    };
    let geo = Geometry { n, h, w, sh };
    let run = |xv: &FlexTensor, wv: &FlexTensor, bv: &FlexTensor| {
        let out = pointwise_nchw::forward(&values(xv), &values(wv), &values(bv), n, &sh);
        flex(out, [n, cout, h, w])
    };
    let out = match PointwiseBackward
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
            let grads_of = |ours: bool| {
                let x = x0.clone().detach().require_grad();
                let y = if ours {
                    pointwise_on_cpu_autodiff(&x, &conv).expect("flex autodiff")
                } else {
                    conv.forward(x.clone())
                };
                let g = (y.clone() * r.clone()).sum().backward();
                let v = |t: Tensor<4>| t.into_data().try_to_vec::<f32>().unwrap();
                let gx = v(x.grad(&g).unwrap());
                let gw = v(conv.weight.val().grad(&g).unwrap());
                let gb = conv.bias.as_ref().unwrap().val().grad(&g).unwrap();
                let gb = gb.into_data().try_to_vec::<f32>().unwrap();
                (v(y), gx, gw, gb)
            };
            let ours = grads_of(true);
            let burns = grads_of(false);
            let close = |a: &[f32], b: &[f32], what: &str| {
                assert_eq!(a.len(), b.len(), "{what}");
                for (i, (p, q)) in a.iter().zip(b).enumerate() {
                    let tol = 1e-4 * (1.0 + q.abs());
                    assert!(
                        (p - q).abs() < tol,
                        "n{n} {cin}->{cout} {what}[{i}]: {p} vs {q}"
                    );
                }
            };
            close(&ours.0, &burns.0, "output");
            close(&ours.1, &burns.1, "input gradient");
            close(&ours.2, &burns.2, "weight gradient");
            close(&ours.3, &burns.3, "bias gradient");
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
