//! What osteoai's own autodiff operations on burn-flex share (`dwconv`, `pwconv`, `relu6`):
//! the backend they run under, a tensor's values, a tensor from values, and the plumbing of a
//! convolution with weights and a bias (burn's `extension` feature: the operation's node, the
//! checkpoints its backward reads, untracked when no gradient is wanted).

use std::borrow::Cow;
use std::marker::PhantomData;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::flex::{Flex, FlexTensor};
use burn::nn::conv::Conv2d;
use burn::tensor::{Tensor, TensorData};

/// burn-flex under autodiff without gradient checkpointing (`Device::autodiff()`'s default).
pub(super) type Ad = Autodiff<Flex, NoCheckpointing>;

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

/// A convolution's geometry, which knows its two gradients from values: the input's, and the
/// weights' with the bias'.
pub(super) trait ConvGrads: Clone + Send + std::fmt::Debug + 'static {
    fn input_grad(&self, g: &[f32], w: &[f32]) -> FlexTensor;
    fn weight_grad(&self, x: &[f32], g: &[f32]) -> (FlexTensor, FlexTensor);
}

/// The backward of a convolution with weights and a bias: each gradient asked for, from the
/// checkpointed input and weights.
#[derive(Debug)]
struct ConvBackward<G>(PhantomData<G>);

impl<G: ConvGrads> Backward<Flex, 3> for ConvBackward<G> {
    type State = (NodeId, NodeId, G);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, ckpt: &mut Checkpointer) {
        let [node_x, node_w, node_b] = ops.parents;
        let g: FlexTensor = grads.consume::<Flex>(&ops.node);
        let (x_id, w_id, geo) = ops.state;
        let x: FlexTensor = ckpt.retrieve_node_output(x_id);
        let w: FlexTensor = ckpt.retrieve_node_output(w_id);
        let g = values(&g);
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, geo.input_grad(&g, &values(&w)));
        }
        if node_w.is_some() || node_b.is_some() {
            let (gw, gb) = geo.weight_grad(&values(&x), &g);
            if let Some(node) = node_w {
                grads.register::<Flex>(node.id, gw);
            }
            if let Some(node) = node_b {
                grads.register::<Flex>(node.id, gb);
            }
        }
    }
}

/// `conv` applied to `x` as one autodiff operation: `run` computes the output from the values
/// of the input, the weights and the bias; when a gradient is wanted the input and the weights
/// are checkpointed for `geo`'s gradients. `None` when the tensors are not burn-flex's under
/// autodiff or the convolution has no bias (the caller runs burn's).
pub(super) fn conv_op<G: ConvGrads>(
    x: &Tensor<4>,
    conv: &Conv2d,
    geo: G,
    run: impl Fn(&[f32], &[f32], &[f32]) -> FlexTensor,
) -> Option<Tensor<4>> {
    let bias = conv.bias.as_ref()?.val();
    let xa = x.clone().try_into_primitive::<Ad>().ok()?;
    let wa = conv.weight.val().try_into_primitive::<Ad>().ok()?;
    let ba = bias.try_into_primitive::<Ad>().ok()?;
    let output = || {
        run(
            &values(xa.primitive()),
            &values(wa.primitive()),
            &values(ba.primitive()),
        )
    };
    let out = match ConvBackward::<G>(PhantomData)
        .prepare::<NoCheckpointing>([xa.node(), wa.node(), ba.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let x_id = prep.checkpoint(&xa);
            let w_id = prep.checkpoint(&wa);
            let y = output();
            prep.finish((x_id, w_id, geo), y)
        }
        OpsKind::UnTracked(prep) => prep.finish(output()),
    };
    Some(Tensor::from_primitive::<Ad>(out))
}

/// For the operations' tests: the output of `forward` and the gradients of `sum(r * output)`
/// with respect to the input, `conv`'s weights and its bias, each as values.
#[cfg(test)]
pub(super) fn output_and_gradients(
    x0: &Tensor<4>,
    r: &Tensor<4>,
    conv: &Conv2d,
    forward: impl Fn(Tensor<4>) -> Tensor<4>,
) -> [Vec<f32>; 4] {
    let v = |t: Tensor<4>| t.into_data().try_to_vec::<f32>().unwrap();
    let x = x0.clone().detach().require_grad();
    let y = forward(x.clone());
    let g = (y.clone() * r.clone()).sum().backward();
    let gx = v(x.grad(&g).unwrap());
    let gw = v(conv.weight.val().grad(&g).unwrap());
    let gb = conv.bias.as_ref().unwrap().val().grad(&g).unwrap();
    let gb = gb.into_data().try_to_vec::<f32>().unwrap();
    [v(y), gx, gw, gb]
}

/// For the operations' tests: `ours` and `burns` (output, input, weight and bias gradients)
/// agree within 1e-4 relative.
#[cfg(test)]
pub(super) fn assert_close(ours: &[Vec<f32>; 4], burns: &[Vec<f32>; 4], case: &str) {
    let names = [
        "output",
        "input gradient",
        "weight gradient",
        "bias gradient",
    ];
    for ((a, b), what) in ours.iter().zip(burns).zip(names) {
        assert_eq!(a.len(), b.len(), "{case} {what}");
        for (i, (p, q)) in a.iter().zip(b).enumerate() {
            let tol = 1e-4 * (1.0 + q.abs());
            assert!((p - q).abs() < tol, "{case} {what}[{i}]: {p} vs {q}");
        }
    }
}
