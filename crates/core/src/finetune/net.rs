//! The network being fine-tuned: the folded EfficientNet-Lite0 backbone (batch norms folded
//! into the convolutions, i.e. their statistics frozen) and a new linear layer over the head's
//! global average pool. The first `frozen` blocks (and the stem) do not learn: on the CPU they
//! run on osteoai's kernels, elsewhere in burn without gradients.

use burn::module::{Module, Param, RunningState};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor, TensorData};

use crate::model::effnet::{EfficientNetLite0, HEAD_CHANNELS};

#[derive(Module, Debug)]
pub struct Classifier {
    pub backbone: EfficientNetLite0,
    pub fc: Linear,
}

impl Classifier {
    /// `backbone` (folded) with a new linear layer to `classes` logits on `device`, initialised
    /// as PyTorch's `nn.Linear` (uniform in +-1/sqrt(1280)) from `seed` alone: the same seed
    /// gives the same layer whatever else uses the device's random numbers.
    pub fn new(
        backbone: EfficientNetLite0,
        classes: usize,
        seed: u64,
        device: &Device,
    ) -> Classifier {
        let mut fc = LinearConfig::new(HEAD_CHANNELS, classes).init(device);
        let mut r = super::augment::Rng::for_item(seed, usize::MAX, 0x11AE);
        let bound = 1.0 / (HEAD_CHANNELS as f32).sqrt();
        let w: Vec<f32> = (0..HEAD_CHANNELS * classes)
            .map(|_| r.range(-bound, bound))
            .collect();
        let b: Vec<f32> = (0..classes).map(|_| r.range(-bound, bound)).collect();
        fc.weight = Param::from_tensor(Tensor::from_data(
            TensorData::new(w, [HEAD_CHANNELS, classes]),
            device,
        ));
        fc.bias = Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(b, [classes]),
            device,
        )));
        Classifier { backbone, fc }
    }

    /// Logits `[B, classes]` from the map entering block `first` (or from the image, `first =
    /// 0` with `from_image`).
    pub fn logits_from(&self, x: Tensor<4>, first: usize, from_image: bool) -> Tensor<2> {
        let x = if from_image {
            self.backbone.front(x, first)
        } else {
            x
        };
        let map = self.backbone.head_map_from(x, first);
        self.fc.forward(pool(map))
    }

    /// Logits from pooled head features `[B, 1280]` (the head-only phase).
    pub fn logits_of_features(&self, f: Tensor<2>) -> Tensor<2> {
        self.fc.forward(f)
    }

    /// Only the layers from block `frozen` on (and the linear layer) learn: everything is
    /// frozen first (no gradients, batch norms in inference mode), then the learning part
    /// unfrozen (gradients, batch norms in train mode where the network has them).
    pub fn freeze_front(self, frozen: usize) -> Classifier {
        let mut m = self.freeze();
        let n = m.backbone.block_count();
        let frozen = frozen.min(n + 1);
        m.fc = m.fc.unfreeze();
        fn learn<M: Module>(on: bool, layer: M) -> M {
            if on { layer.unfreeze() } else { layer }
        }
        let b = &mut m.backbone;
        b.stem = learn(frozen == 0, b.stem.clone());
        for (i, blk) in std::mem::take(&mut b.blocks).into_iter().enumerate() {
            b.blocks.push(learn(i >= frozen, blk));
        }
        b.head = learn(frozen <= n, b.head.clone());
        m
    }

    /// A copy that owns its batch norms' running statistics. burn's `RunningState` is shared
    /// between clones (and updated in place by a train-mode forward or a load), so the best
    /// model kept aside would otherwise follow the one still learning.
    pub fn own_copy(&self) -> Classifier {
        let mut c = self.clone();
        for layer in c.backbone.layers_mut() {
            if let Some(bn) = &mut layer.bn {
                bn.running_mean = RunningState::new(bn.running_mean.value_sync());
                bn.running_var = RunningState::new(bn.running_var.value_sync());
            }
        }
        c
    }

    /// Brings the running statistics up to date: burn keeps a layer's latest update aside until
    /// the next (`RunningState::value_sync`), and a saved record would miss it.
    pub fn sync_running_stats(&self) {
        for layer in self.backbone.layers() {
            if let Some(bn) = &layer.bn {
                let _ = bn.running_mean.value_sync();
                let _ = bn.running_var.value_sync();
            }
        }
    }

    /// The classifier with its backbone's batch norms folded into the convolutions (as a
    /// bundle stores it); unchanged when they are folded already.
    pub fn folded(self) -> Classifier {
        if self.backbone.is_folded() {
            return self;
        }
        Classifier {
            backbone: self.backbone.fold_batch_norms(),
            fc: self.fc,
        }
    }

    /// The linear layer's weights as `[classes][features]` and biases (burn keeps `[in, out]`).
    pub fn linear_weights(&self) -> (Vec<Vec<f32>>, Vec<f32>) {
        let w = self
            .fc
            .weight
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap_or_default();
        let [fin, fout] = self.fc.weight.val().dims();
        let rows = (0..fout)
            .map(|o| (0..fin).map(|i| w[i * fout + o]).collect())
            .collect();
        let b = self
            .fc
            .bias
            .as_ref()
            .map(|b| b.val().into_data().try_to_vec::<f32>().unwrap_or_default())
            .unwrap_or_else(|| vec![0.0; fout]);
        (rows, b)
    }
}

/// The same network with its weights copied onto `device`, e.g. an autodiff one where they can
/// learn. `Module::fork` to the autodiff form of the same device left the weights without
/// autodiff (measured: the backbone then received no gradient), so each convolution's weight
/// and bias, and each batch norm's parameters and running statistics (train-mode batch norms,
/// `super::batch_norm`), are copied explicitly.
pub fn onto(net: EfficientNetLite0, device: &Device) -> Result<EfficientNetLite0, String> {
    fn param<const D: usize>(p: &Param<Tensor<D>>, device: &Device) -> Param<Tensor<D>> {
        Param::from_tensor(Tensor::from_data(p.val().into_data(), device))
    }
    let mut net = net;
    for c in net.layers_mut() {
        c.conv.weight = param(&c.conv.weight, device);
        if let Some(b) = &c.conv.bias {
            c.conv.bias = Some(param(b, device));
        }
        if let Some(bn) = &mut c.bn {
            bn.gamma = param(&bn.gamma, device);
            bn.beta = param(&bn.beta, device);
            let state = |s: &RunningState<Tensor<1>>| {
                RunningState::new(Tensor::from_data(s.value_sync().into_data(), device))
            };
            bn.running_mean = state(&bn.running_mean);
            bn.running_var = state(&bn.running_var);
        }
    }
    Ok(net)
}

/// Global average pool `[B, C, H, W]` -> `[B, C]`.
pub fn pool(map: Tensor<4>) -> Tensor<2> {
    let [b, c, h, w] = map.dims();
    map.reshape([b, c, h * w]).mean_dim(2).reshape([b, c])
}

/// A `[n, c, h, w]` tensor from row-major values.
pub fn tensor4(values: Vec<f32>, shape: [usize; 4], device: &Device) -> Tensor<4> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    /// The front-and-rest split gives the full network's logits for every split point.
    #[test]
    fn any_split_gives_the_same_logits() {
        let device = Device::flex();
        device.seed(3);
        let net = Classifier::new(EfficientNetLite0::new(&device, true), 2, 3, &device);
        let x = Tensor::<4>::random([1, 3, 64, 64], Distribution::Normal(0.0, 1.0), &device);
        let full = net.logits_from(x.clone(), 0, true);
        for k in [0, 4, 10, 16] {
            let front = net.backbone.front(x.clone(), k);
            let l = net.logits_from(front, k, false);
            let d = (l - full.clone()).abs().max().into_scalar::<f32>();
            assert!(d < 1e-4, "split {k}: {d}");
        }
    }
}
