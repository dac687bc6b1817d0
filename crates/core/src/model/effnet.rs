//! EfficientNet-Lite0 in burn: the default backbone (ImageNet weights imported from PyTorch).
//!
//! The architecture of `efficientnet_lite_pytorch` (lukemelas' EfficientNet with the Lite
//! changes: no squeeze-excitation, ReLU6, fixed stem and head): a 3x3 stride-2 stem, 16 MBConv
//! blocks, a 1x1 head to 1280 channels. Convolutions use TensorFlow's "same" padding (burn's
//! `PaddingConfig2d::Same` computes the same asymmetric padding). Batch norms can be folded into
//! the convolutions for inference (`fold_batch_norms`): the committed weights are folded.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::arch::Arch;

/// Batch-norm epsilon of the TensorFlow original.
const BN_EPS: f64 = 1e-3;

/// Channels of the head's output (the classic 1280-d EfficientNet features).
pub const HEAD_CHANNELS: usize = osteoai_kernels::LITE0_HEAD;

/// A convolution followed by a batch norm, or a convolution with bias once folded.
#[derive(Module, Debug)]
pub struct ConvBn {
    pub conv: Conv2d,
    pub bn: Option<BatchNorm>,
}

impl ConvBn {
    fn new(
        cin: usize,
        cout: usize,
        k: usize,
        stride: usize,
        groups: usize,
        folded: bool,
        device: &Device,
    ) -> Self {
        let conv = Conv2dConfig::new([cin, cout], [k, k])
            .with_stride([stride, stride])
            .with_groups(groups)
            .with_padding(PaddingConfig2d::Same)
            .with_bias(folded)
            .init(device);
        let bn = (!folded).then(|| BatchNormConfig::new(cout).with_epsilon(BN_EPS).init(device));
        ConvBn { conv, bn }
    }

    /// Learning on the CPU, a 1x1 convolution with a bias is the operation with osteoai's own
    /// backward (`pwconv`); everything else is burn's convolution. The batch norm, if any,
    /// follows.
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = if super::pwconv::enabled()
            && let Some(y) = super::pwconv::pointwise_on_cpu_autodiff(&x, &self.conv)
        {
            y
        } else {
            self.conv.forward(x)
        };
        self.normalise(y)
    }

    /// The batch norm (train or inference mode, as burn's layer decides; in train mode on the
    /// CPU osteoai's operation, `bn_train`), or nothing once folded.
    fn normalise(&self, y: Tensor<4>) -> Tensor<4> {
        let Some(bn) = &self.bn else { return y };
        if bn.training.is_enabled()
            && y.device().is_autodiff()
            && super::bn_train::enabled()
            && let Some(out) = super::bn_train::batch_norm_train_on_cpu_autodiff(&y, bn)
        {
            return out;
        }
        bn.forward(y)
    }

    /// Folds the batch norm into the convolution: w' = w * s, b' = beta - mean * s (+ b * s),
    /// with s = gamma / sqrt(var + eps). The folded weights are new leaves (on an autodiff device
    /// too: a model folded after learning).
    pub fn fold(self) -> ConvBn {
        let ConvBn { mut conv, bn } = self;
        let Some(bn) = bn else {
            return ConvBn { conv, bn: None };
        };
        let scale =
            bn.gamma.val().detach() / bn.running_var.value_sync().add_scalar(bn.epsilon).sqrt();
        let [cout] = scale.dims();
        let weight = conv.weight.val().detach() * scale.clone().reshape([cout, 1, 1, 1]);
        let mut bias = bn.beta.val().detach() - bn.running_mean.value_sync() * scale.clone();
        if let Some(b) = &conv.bias {
            bias = bias + b.val().detach() * scale;
        }
        conv.weight = Param::from_tensor(weight.detach());
        conv.bias = Some(Param::from_tensor(bias.detach()));
        ConvBn { conv, bn: None }
    }
}

fn relu6(x: Tensor<4>) -> Tensor<4> {
    // Learning on the CPU: one operation with its own backward (`super::relu6`).
    if super::relu6::enabled()
        && let Some(y) = super::relu6::relu6_on_cpu_autodiff(&x)
    {
        return y;
    }
    // The same values as clamp(0, 6); burn-flex runs `clamp` on one thread, unvectorised, and
    // `relu` then `clamp_max` faster (measured in docs/benchmarks.md).
    burn::tensor::activation::relu(x).clamp_max(6.0)
}

/// Mobile inverted bottleneck without squeeze-excitation.
#[derive(Module, Debug)]
pub struct MbConv {
    pub expand: Option<ConvBn>,
    pub depthwise: ConvBn,
    pub project: ConvBn,
    #[module(skip)]
    pub residual: bool,
}

impl MbConv {
    fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        let mut x = input.clone();
        if let Some(e) = &self.expand {
            x = relu6(e.forward(x));
        }
        x = relu6(self.depthwise_forward(x));
        x = self.project.forward(x);
        if self.residual { x + input } else { x }
    }

    /// The depthwise convolution: learning on the CPU, the operation with osteoai's own
    /// backward (`dwconv`); elsewhere burn's convolution.
    fn depthwise_forward(&self, x: Tensor<4>) -> Tensor<4> {
        if super::dwconv::enabled()
            && let Some(y) = super::dwconv::depthwise_on_cpu_autodiff(&x, &self.depthwise.conv)
        {
            return self.depthwise.normalise(y);
        }
        self.depthwise.forward(x)
    }

    fn fold(self) -> MbConv {
        MbConv {
            expand: self.expand.map(ConvBn::fold),
            depthwise: self.depthwise.fold(),
            project: self.project.fold(),
            residual: self.residual,
        }
    }
}

/// Where features are taken from.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Tap {
    /// The 1280-channel head (after ReLU6).
    Head,
    /// The output of block `n` (0..16): e.g. 10 gives 112 channels at 1/16 resolution.
    Block(usize),
}

/// How a feature map becomes a vector.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Pool {
    Avg,
    Max,
}

/// The feature recipe: which maps, which pools, and whether to average with the mirror image.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FeatureSpec {
    pub taps: Vec<Tap>,
    pub pools: Vec<Pool>,
    /// Average the features of the image and of its left-right mirror.
    pub flip_average: bool,
}

impl FeatureSpec {
    /// Global average pool of the head: the classic 1280-d features.
    pub fn classic() -> Self {
        FeatureSpec {
            taps: vec![Tap::Head],
            pools: vec![Pool::Avg],
            flip_average: false,
        }
    }

    /// Length of the feature vector.
    pub fn dim(&self) -> usize {
        self.taps.iter().map(|t| tap_channels(*t)).sum::<usize>() * self.pools.len()
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.taps.is_empty() || self.pools.is_empty() {
            return Err("features need at least one tap and one pool".into());
        }
        for t in &self.taps {
            if let Tap::Block(n) = t
                && *n >= block_count()
            {
                return Err(format!(
                    "tap block {n} does not exist (0..{})",
                    block_count()
                ));
            }
        }
        Ok(())
    }
}

fn block_count() -> usize {
    Arch::Lite0.block_count()
}

/// Output channels at a tap of Lite0 (block taps are Lite0's; the head is 1280 channels in
/// every variant, and the only tap the manifest allows for the others).
pub fn tap_channels(tap: Tap) -> usize {
    match tap {
        Tap::Head => HEAD_CHANNELS,
        Tap::Block(n) => Arch::Lite0.block_channels(n),
    }
}

/// EfficientNet-Lite0, or with `with_arch` the deeper Lite1 and Lite2 (`super::arch`).
#[derive(Module, Debug)]
pub struct EfficientNetLite0 {
    pub stem: ConvBn,
    pub blocks: Vec<MbConv>,
    pub head: ConvBn,
}

impl EfficientNetLite0 {
    /// A randomly initialised Lite0; `folded` chooses the inference layout (conv + bias).
    pub fn new(device: &Device, folded: bool) -> Self {
        Self::with_arch(Arch::Lite0, device, folded)
    }

    /// A randomly initialised network of the given variant.
    pub fn with_arch(arch: Arch, device: &Device, folded: bool) -> Self {
        let stem = ConvBn::new(3, 32, 3, 2, 1, folded, device);
        let mut blocks = Vec::new();
        for &(repeats, k, stride, e, cin, cout) in arch.stages() {
            for r in 0..repeats {
                let (cin, stride) = if r == 0 { (cin, stride) } else { (cout, 1) };
                let mid = cin * e;
                blocks.push(MbConv {
                    expand: (e != 1).then(|| ConvBn::new(cin, mid, 1, 1, 1, folded, device)),
                    depthwise: ConvBn::new(mid, mid, k, stride, mid, folded, device),
                    project: ConvBn::new(mid, cout, 1, 1, 1, folded, device),
                    residual: stride == 1 && cin == cout,
                });
            }
        }
        let head = ConvBn::new(arch.last_channels(), HEAD_CHANNELS, 1, 1, 1, folded, device);
        EfficientNetLite0 { stem, blocks, head }
    }

    /// Whether the batch norms are folded into the convolutions.
    pub fn is_folded(&self) -> bool {
        self.stem.bn.is_none()
    }

    /// Every convolution with its batch norm, stem to head.
    pub fn layers(&self) -> Vec<&ConvBn> {
        let mut out = vec![&self.stem];
        for b in &self.blocks {
            out.extend(b.expand.as_ref());
            out.push(&b.depthwise);
            out.push(&b.project);
        }
        out.push(&self.head);
        out
    }

    /// Every convolution with its batch norm, stem to head, to change.
    pub fn layers_mut(&mut self) -> Vec<&mut ConvBn> {
        let mut out = vec![&mut self.stem];
        for b in &mut self.blocks {
            out.extend(b.expand.as_mut());
            out.push(&mut b.depthwise);
            out.push(&mut b.project);
        }
        out.push(&mut self.head);
        out
    }

    /// Rebuilds every layer in forward order: `f` gets each layer with its input and returns
    /// the layer to keep and that layer's output, from which the pass goes on (activations and
    /// residuals as in `forward`). Batch-norm calibration is built on it.
    pub fn rebuild_forward(
        self,
        x: Tensor<4>,
        mut f: impl FnMut(ConvBn, Tensor<4>) -> (ConvBn, Tensor<4>),
    ) -> Self {
        let EfficientNetLite0 { stem, blocks, head } = self;
        let (stem, y) = f(stem, x);
        let mut x = relu6(y);
        let mut rebuilt = Vec::with_capacity(blocks.len());
        for b in blocks {
            let input = x.clone();
            let expand = b.expand.map(|e| {
                let (e, y) = f(e, x.clone());
                x = relu6(y);
                e
            });
            let (depthwise, y) = f(b.depthwise, x);
            let (project, y) = f(b.project, relu6(y));
            x = if b.residual { y + input } else { y };
            rebuilt.push(MbConv {
                expand,
                depthwise,
                project,
                residual: b.residual,
            });
        }
        let (head, _) = f(head, x);
        EfficientNetLite0 {
            stem,
            blocks: rebuilt,
            head,
        }
    }

    pub fn fold_batch_norms(self) -> Self {
        EfficientNetLite0 {
            stem: self.stem.fold(),
            blocks: self.blocks.into_iter().map(MbConv::fold).collect(),
            head: self.head.fold(),
        }
    }

    /// The stem and blocks `..upto`: the map entering block `upto` (fine-tuning's frozen front).
    pub fn front(&self, x: Tensor<4>, upto: usize) -> Tensor<4> {
        let mut x = relu6(self.stem.forward(x));
        for block in &self.blocks[..upto.min(self.blocks.len())] {
            x = block.forward(x);
        }
        x
    }

    /// Blocks `first..` and the head from the map entering block `first`: the head's map after
    /// ReLU6 (`head_map_from(front(x, k), k)` is `extract_features(x)` for every `k`).
    pub fn head_map_from(&self, x: Tensor<4>, first: usize) -> Tensor<4> {
        let mut x = x;
        for block in &self.blocks[first.min(self.blocks.len())..] {
            x = block.forward(x);
        }
        relu6(self.head.forward(x))
    }

    /// Feature maps at `taps` from the map leaving block `last` (`x`), running the blocks after
    /// it and the head as needed: `Tap::Block(last)` is `x` itself; earlier taps cannot be had.
    pub fn maps_from(&self, x: Tensor<4>, last: usize, taps: &[Tap]) -> Vec<Option<Tensor<4>>> {
        let mut found: Vec<Option<Tensor<4>>> = vec![None; taps.len()];
        let keep = |found: &mut Vec<Option<Tensor<4>>>, tap: Tap, x: &Tensor<4>| {
            for (slot, t) in found.iter_mut().zip(taps) {
                if *t == tap {
                    *slot = Some(x.clone());
                }
            }
        };
        keep(&mut found, Tap::Block(last), &x);
        let mut x = x;
        for (i, block) in self.blocks.iter().enumerate().skip(last + 1) {
            x = block.forward(x);
            keep(&mut found, Tap::Block(i), &x);
        }
        if taps.contains(&Tap::Head) {
            let h = relu6(self.head.forward(x));
            keep(&mut found, Tap::Head, &h);
        }
        found
    }

    /// Number of MBConv blocks (16).
    pub fn block_count(&self) -> usize {
        self.blocks.len()
    }

    /// The head's feature map, [B, 1280, H/32, W/32] (PyTorch's `extract_features`).
    pub fn extract_features(&self, x: Tensor<4>) -> Tensor<4> {
        self.maps(x, &[Tap::Head]).pop().expect("one tap")
    }

    /// Feature maps at the requested taps, in the order given.
    pub fn maps(&self, x: Tensor<4>, taps: &[Tap]) -> Vec<Tensor<4>> {
        let mut found: Vec<Option<Tensor<4>>> = vec![None; taps.len()];
        let mut x = relu6(self.stem.forward(x));
        for (i, block) in self.blocks.iter().enumerate() {
            x = block.forward(x);
            for (slot, t) in found.iter_mut().zip(taps) {
                if *t == Tap::Block(i) {
                    *slot = Some(x.clone());
                }
            }
        }
        if taps.contains(&Tap::Head) {
            let h = relu6(self.head.forward(x));
            for (slot, t) in found.iter_mut().zip(taps) {
                if *t == Tap::Head {
                    *slot = Some(h.clone());
                }
            }
        }
        found
            .into_iter()
            .map(|m| m.expect("tap validated"))
            .collect()
    }

    /// Pooled feature vectors [B, spec.dim()], concatenated tap by tap, pool by pool.
    pub fn forward_features(&self, x: Tensor<4>, spec: &FeatureSpec) -> Tensor<2> {
        let pooled = |x: Tensor<4>| -> Tensor<2> {
            let maps = self.maps(x, &spec.taps);
            let mut parts = Vec::new();
            for m in maps {
                let [b, c, h, w] = m.dims();
                let flat = m.reshape([b, c, h * w]);
                for p in &spec.pools {
                    let v = match p {
                        Pool::Avg => flat.clone().mean_dim(2),
                        Pool::Max => flat.clone().max_dim(2),
                    };
                    parts.push(v.reshape([b, c]));
                }
            }
            Tensor::cat(parts, 1)
        };
        if spec.flip_average {
            let mirrored = x.clone().flip([3]);
            (pooled(x) + pooled(mirrored)).mul_scalar(0.5)
        } else {
            pooled(x)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_blocks_and_tap_channels() {
        assert_eq!(block_count(), 16);
        assert_eq!(tap_channels(Tap::Block(0)), 16);
        assert_eq!(tap_channels(Tap::Block(10)), 112);
        assert_eq!(tap_channels(Tap::Block(14)), 192);
        assert_eq!(tap_channels(Tap::Block(15)), 320);
        let spec = FeatureSpec {
            taps: vec![Tap::Block(10), Tap::Head],
            pools: vec![Pool::Avg, Pool::Max],
            flip_average: true,
        };
        assert_eq!(spec.dim(), 2 * (112 + 1280));
        assert!(
            FeatureSpec {
                taps: vec![Tap::Block(16)],
                ..spec
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn folding_batch_norm_keeps_outputs() {
        let device = Device::flex();
        device.seed(7);
        let mut net = EfficientNetLite0::new(&device, false);
        // Give the batch norms non-trivial statistics so that folding has work to do.
        let perturb = |bn: &mut BatchNorm| {
            let [c] = bn.gamma.val().dims();
            let r = |lo: f64, hi: f64| {
                Tensor::<1>::random([c], burn::tensor::Distribution::Uniform(lo, hi), &device)
            };
            bn.gamma = Param::from_tensor(r(0.5, 1.5));
            bn.beta = Param::from_tensor(r(-0.2, 0.2));
            bn.running_mean = burn::module::RunningState::new(r(-0.1, 0.1));
            bn.running_var = burn::module::RunningState::new(r(0.5, 2.0));
        };
        perturb(net.stem.bn.as_mut().unwrap());
        for b in &mut net.blocks {
            perturb(b.depthwise.bn.as_mut().unwrap());
            perturb(b.project.bn.as_mut().unwrap());
        }
        let x = Tensor::<4>::random(
            [2, 3, 64, 64],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        let spec = FeatureSpec::classic();
        let a = net
            .forward_features(x.clone(), &spec)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let folded = net.fold_batch_norms();
        assert!(folded.is_folded());
        let b = folded
            .forward_features(x, &spec)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let max = a
            .iter()
            .zip(&b)
            .map(|(p, q)| (p - q).abs())
            .fold(0f32, f32::max);
        let scale = a.iter().map(|v| v.abs()).fold(0f32, f32::max);
        assert!(
            max <= 1e-4 * scale.max(1.0),
            "max diff {max} (scale {scale})"
        );
    }

    #[test]
    fn output_shapes_and_flip_average() {
        let device = Device::flex();
        let net = EfficientNetLite0::new(&device, true);
        let x = Tensor::<4>::random(
            [1, 3, 96, 96],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        assert_eq!(net.extract_features(x.clone()).dims(), [1, 1280, 3, 3]);
        let spec = FeatureSpec {
            taps: vec![Tap::Block(10), Tap::Head],
            pools: vec![Pool::Avg, Pool::Max],
            flip_average: true,
        };
        let f = net.forward_features(x.clone(), &spec);
        assert_eq!(f.dims(), [1, spec.dim()]);
        // Flip-averaged features of an image and of its mirror are the same.
        let g = net.forward_features(x.flip([3]), &spec);
        let d = (f - g).abs().max().into_scalar::<f32>();
        assert!(d < 1e-4, "{d}");
    }
}
