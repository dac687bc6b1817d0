//! ReLU6 of a backbone that is learning on the CPU, as one autodiff operation with its own
//! backward (`osteoai_kernels::relu6`): burn's `relu` then `clamp_max` under autodiff made two
//! results and two comparison masks forward and two masked fills back, each a pass over the
//! largest maps of the network. Used only for tensors of burn-flex under autodiff, like
//! `dwconv` and `pwconv`; `tests` compares output and gradient with burn's.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::{Flex, FlexTensor};
use burn::tensor::{DType, Tensor};

use super::cpu_op::{Ad, flex, values};

#[derive(Debug)]
struct Relu6Backward;

impl Backward<Flex, 1> for Relu6Backward {
    type State = (NodeId, [usize; 4]);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, ckpt: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let g: FlexTensor = grads.consume::<Flex>(&ops.node);
        let (x_id, shape) = ops.state;
        let x: FlexTensor = ckpt.retrieve_node_output(x_id);
        if let Some(node) = node_x {
            let gx = osteoai_kernels::relu6::backward(&values(&x), &values(&g));
            grads.register::<Flex>(node.id, flex(gx, shape));
        }
    }
}

/// Whether the operation is used (`OSTEOAI_RELU6=burn` keeps burn's `relu` and `clamp_max`).
pub fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("OSTEOAI_RELU6").as_deref() != Ok("burn"))
}

/// ReLU6 of `x` by the operation above when `x` is a burn-flex tensor under autodiff in f32;
/// `None` otherwise (the caller runs burn's).
pub fn relu6_on_cpu_autodiff(x: &Tensor<4>) -> Option<Tensor<4>> {
    if x.dtype() != DType::F32 {
        return None;
    }
    let shape = x.dims();
    let xa = x.clone().try_into_primitive::<Ad>().ok()?;
    let run = |xv: &FlexTensor| flex(osteoai_kernels::relu6::forward(&values(xv)), shape);
    let out = match Relu6Backward
        .prepare::<NoCheckpointing>([xa.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let x_id = prep.checkpoint(&xa);
            let y = run(xa.primitive());
            prep.finish((x_id, shape), y)
        }
        OpsKind::UnTracked(prep) => prep.finish(run(xa.primitive())),
    };
    Some(Tensor::from_primitive::<Ad>(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution};

    /// Output and gradient equal burn's `relu` then `clamp_max(6)` (values spread over both
    /// corners), and a tensor without autodiff is left to burn.
    #[test]
    fn output_and_gradient_equal_burns() {
        let device = Device::flex().autodiff();
        device.seed(13);
        let x0 = Tensor::<4>::random([2, 3, 9, 11], Distribution::Uniform(-4.0, 10.0), &device);
        let r = Tensor::<4>::random([2, 3, 9, 11], Distribution::Normal(0.0, 1.0), &device);
        let run = |ours: bool| {
            let x = x0.clone().detach().require_grad();
            let y = if ours {
                relu6_on_cpu_autodiff(&x).expect("flex autodiff")
            } else {
                burn::tensor::activation::relu(x.clone()).clamp_max(6.0)
            };
            let g = (y.clone() * r.clone()).sum().backward();
            let gx = x.grad(&g).unwrap().into_data().try_to_vec::<f32>().unwrap();
            (y.into_data().try_to_vec::<f32>().unwrap(), gx)
        };
        assert_eq!(run(true), run(false));
        let plain = Tensor::<4>::zeros([1, 1, 2, 2], &Device::flex());
        assert!(relu6_on_cpu_autodiff(&plain).is_none());
    }
}
