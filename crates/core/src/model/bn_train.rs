//! A train-mode batch norm of a backbone learning on the CPU, as one autodiff operation with its
//! own backward (`osteoai_kernels::batch_norm_nchw`): burn-flex runs burn's generic version (a
//! dozen passes over each map with the copies between them), which halved the speed of a
//! training step (docs/finetune.md). The running statistics are updated as burn's `BatchNorm`
//! updates them (momentum, the biased batch variance). Used only for tensors of burn-flex under
//! autodiff, like `dwconv`, `pwconv` and `relu6`; `tests` compares everything with burn's layer.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::{Flex, FlexTensor};
use burn::nn::BatchNorm;
use burn::tensor::{DType, Tensor, TensorData};
use osteoai_kernels::batch_norm_nchw::{self as kernel, Shape};

use super::cpu_op::{Ad, flex, values};

/// What the backward needs besides the checkpointed input and gamma.
#[derive(Clone, Debug)]
struct State {
    x: NodeId,
    gamma: NodeId,
    mean: Vec<f32>,
    var: Vec<f32>,
    shape: [usize; 4],
    eps: f32,
}

#[derive(Debug)]
struct BatchNormBackward;

impl Backward<Flex, 3> for BatchNormBackward {
    type State = State;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, ckpt: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let g: FlexTensor = grads.consume::<Flex>(&ops.node);
        let s = ops.state;
        let x: FlexTensor = ckpt.retrieve_node_output(s.x);
        let gamma: FlexTensor = ckpt.retrieve_node_output(s.gamma);
        let [n, c, h, w] = s.shape;
        let (gx, gg, gb) = kernel::backward(
            &values(&x),
            &values(&g),
            Shape { n, c, hw: h * w },
            &values(&gamma),
            &s.mean,
            &s.var,
            s.eps,
        );
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, flex(gx, s.shape));
        }
        if let Some(node) = node_gamma {
            grads.register::<Flex>(node.id, flex(gg, [c]));
        }
        if let Some(node) = node_beta {
            grads.register::<Flex>(node.id, flex(gb, [c]));
        }
    }
}

/// Whether the operation is used (`OSTEOAI_BATCHNORM=burn` keeps burn's).
pub fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("OSTEOAI_BATCHNORM").as_deref() != Ok("burn"))
}

/// `bn` in train mode on `y` (normalised by the batch's statistics, `bn`'s running statistics
/// updated) by the operation above when `y` is a burn-flex tensor under autodiff in f32; `None`
/// otherwise (the caller runs burn's layer).
pub fn batch_norm_train_on_cpu_autodiff(y: &Tensor<4>, bn: &BatchNorm) -> Option<Tensor<4>> {
    if y.dtype() != DType::F32 {
        return None;
    }
    let shape = y.dims();
    let [n, c, h, w] = shape;
    let sh = Shape { n, c, hw: h * w };
    let eps = bn.epsilon as f32;
    let xa = y.clone().try_into_primitive::<Ad>().ok()?;
    let ga = bn.gamma.val().try_into_primitive::<Ad>().ok()?;
    let ba = bn.beta.val().try_into_primitive::<Ad>().ok()?;
    let run = || {
        kernel::forward(
            &values(xa.primitive()),
            sh,
            &values(ga.primitive()),
            &values(ba.primitive()),
            eps,
        )
    };
    let (out, mean, var) = match BatchNormBackward
        .prepare::<NoCheckpointing>([xa.node(), ga.node(), ba.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let x_id = prep.checkpoint(&xa);
            let g_id = prep.checkpoint(&ga);
            let (out, mean, var) = run();
            let state = State {
                x: x_id,
                gamma: g_id,
                mean: mean.clone(),
                var: var.clone(),
                shape,
                eps,
            };
            (prep.finish(state, flex(out, shape)), mean, var)
        }
        OpsKind::UnTracked(prep) => {
            let (out, mean, var) = run();
            (prep.finish(flex(out, shape)), mean, var)
        }
    };
    // The running statistics, as burn's `BatchNorm::forward_train` updates them.
    let device = y.device();
    let m = bn.momentum;
    let update = |state: &burn::module::RunningState<Tensor<1>>, batch: Vec<f32>| {
        let batch = Tensor::<1>::from_data(TensorData::new(batch, [c]), &device);
        let old = state.value_sync().to_device(&device);
        state.update(old.mul_scalar(1.0 - m).add(batch.mul_scalar(m)).detach());
    };
    update(&bn.running_mean, mean);
    update(&bn.running_var, var);
    Some(Tensor::from_primitive::<Ad>(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::{Param, RunningState};
    use burn::nn::BatchNormConfig;
    use burn::tensor::{Device, Distribution};

    /// Output, the gradients of the input, gamma and beta, and the running statistics after
    /// the step equal burn's `BatchNorm` in train mode; a tensor without autodiff is left to
    /// burn.
    #[test]
    fn output_gradients_and_running_statistics_equal_burns() {
        let device = Device::flex().autodiff();
        device.seed(21);
        let c = 6;
        let x0 = Tensor::<4>::random([3, c, 9, 7], Distribution::Normal(1.0, 2.0), &device);
        let r = Tensor::<4>::random([3, c, 9, 7], Distribution::Normal(0.0, 1.0), &device);
        let layer = || {
            let mut bn = BatchNormConfig::new(c)
                .with_epsilon(1e-3)
                .with_momentum(0.01)
                .init(&device);
            let u = |seed: u64, lo: f32, hi: f32| {
                let v: Vec<f32> = osteoai_kernels::synthetic::Lcg(seed)
                    .vec(c, 1.0)
                    .into_iter()
                    .map(|v| lo + (v + 1.0) / 2.0 * (hi - lo))
                    .collect();
                Tensor::<1>::from_data(TensorData::new(v, [c]), &device)
            };
            bn.gamma = Param::from_tensor(u(1, 0.5, 1.5));
            bn.beta = Param::from_tensor(u(2, -0.5, 0.5));
            bn.running_mean = RunningState::new(u(3, -0.1, 0.1));
            bn.running_var = RunningState::new(u(4, 0.5, 2.0));
            bn
        };
        let v1 = |t: Tensor<1>| t.into_data().try_to_vec::<f32>().unwrap();
        let run = |ours: bool| {
            let bn = layer();
            let x = x0.clone().detach().require_grad();
            let y = if ours {
                batch_norm_train_on_cpu_autodiff(&x, &bn).expect("flex autodiff")
            } else {
                bn.forward(x.clone())
            };
            let g = (y.clone() * r.clone()).sum().backward();
            vec![
                y.into_data().try_to_vec::<f32>().unwrap(),
                x.grad(&g).unwrap().into_data().try_to_vec::<f32>().unwrap(),
                v1(bn.gamma.val().grad(&g).unwrap()),
                v1(bn.beta.val().grad(&g).unwrap()),
                v1(bn.running_mean.value_sync()),
                v1(bn.running_var.value_sync()),
            ]
        };
        let (ours, burns) = (run(true), run(false));
        let names = [
            "output",
            "input gradient",
            "gamma gradient",
            "beta gradient",
            "running mean",
            "running variance",
        ];
        for ((a, b), what) in ours.iter().zip(&burns).zip(names) {
            assert_eq!(a.len(), b.len(), "{what}");
            for (i, (p, q)) in a.iter().zip(b).enumerate() {
                let tol = 1e-4 * (1.0 + q.abs());
                assert!((p - q).abs() < tol, "{what}[{i}]: {p} vs {q}");
            }
        }
        let plain = Tensor::<4>::zeros([1, c, 2, 2], &Device::flex());
        let bn = BatchNormConfig::new(c).init(&Device::flex());
        assert!(batch_norm_train_on_cpu_autodiff(&plain, &bn).is_none());
    }
}
