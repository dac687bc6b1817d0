//! Batch norms while fine-tuning: frozen (folded into the convolutions, the default) or in
//! train mode (normalised by each batch's statistics, running statistics updated, folded back
//! into the convolutions when the bundle is written).
//!
//! The committed backbones are folded, so train mode first puts a batch norm back behind every
//! convolution, calibrated on the user's training images: each channel's mean `m` and variance
//! `v` of the convolution's output over a calibration batch become the running statistics, and
//! `gamma = sqrt(v + eps)`, `beta = m`. In inference mode that batch norm is exactly the
//! identity; in train mode it is the identity up to the difference between a batch's statistics
//! and the calibration's — so learning starts from the pretrained network either way. The
//! convolution keeps its bias (the batch norm cancels it; the CPU operations expect one), and
//! folding adds it back.

use burn::module::{Param, RunningState};
use burn::nn::BatchNormConfig;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::model::effnet::{ConvBn, EfficientNetLite0};

/// How the backbone's batch norms behave while it learns.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum BatchNormMode {
    /// Folded into the convolutions: the ImageNet statistics, never updated.
    #[default]
    Frozen,
    /// Batch statistics in the layers that learn (running statistics updated with `MOMENTUM`).
    Train,
}

impl BatchNormMode {
    pub fn parse(s: &str) -> Result<BatchNormMode, String> {
        match s {
            "frozen" => Ok(BatchNormMode::Frozen),
            "train" => Ok(BatchNormMode::Train),
            _ => Err(format!("batch norm mode {s:?}: frozen or train")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            BatchNormMode::Frozen => "frozen",
            BatchNormMode::Train => "train",
        }
    }

    /// What the bundle's manifest says of it.
    pub fn describe(self) -> String {
        match self {
            BatchNormMode::Frozen => "folded into the convolutions (statistics frozen)".into(),
            BatchNormMode::Train => format!(
                "train mode in the layers that learn (batch statistics, running statistics with \
                 momentum {MOMENTUM}, calibrated on {CALIBRATION_IMAGES} training images), folded \
                 into the convolutions for inference"
            ),
        }
    }
}

/// Running-statistics momentum: the original EfficientNet's (TensorFlow's decay 0.99), which
/// the PyTorch port and the peer fine-tune use.
pub const MOMENTUM: f64 = 0.01;

/// Batch-norm epsilon of the original network.
const EPS: f64 = 1e-3;

/// Training images whose statistics initialise the batch norms (fewer when train is smaller).
pub const CALIBRATION_IMAGES: usize = 32;

/// The backbone `base` ready to learn with batch norms in `mode`: as it is when frozen; in train
/// mode unfolded and calibrated on the batch `calibration(n)` returns (`n` images at most,
/// preprocessed as the model sees them, on the device of `base`, without autodiff).
pub fn prepare(
    base: EfficientNetLite0,
    mode: BatchNormMode,
    calibration: impl FnOnce(usize) -> Tensor<4>,
) -> Result<EfficientNetLite0, String> {
    match mode {
        BatchNormMode::Frozen => Ok(base),
        BatchNormMode::Train => unfold_calibrated(base, calibration(CALIBRATION_IMAGES)),
    }
}

/// Puts a calibrated batch norm behind every convolution of the folded `net`, from the
/// statistics of its activations on `x` (`[n, 3, s, s]`, preprocessed images, on the device of
/// `net`, without autodiff).
pub fn unfold_calibrated(
    net: EfficientNetLite0,
    x: Tensor<4>,
) -> Result<EfficientNetLite0, String> {
    if !net.is_folded() {
        return Err("train-mode batch norms start from a folded backbone".into());
    }
    Ok(net.rebuild_forward(x, calibrate))
}

/// The folded convolution `c` with a batch norm calibrated on its output for `x`, and that
/// output (which the calibrated layer reproduces in inference mode).
fn calibrate(c: ConvBn, x: Tensor<4>) -> (ConvBn, Tensor<4>) {
    let y = c.conv.forward(x);
    let [n, ch, h, w] = y.dims();
    let flat = y.clone().swap_dims(0, 1).reshape([ch, n * h * w]);
    let mean = flat.clone().mean_dim(1);
    let var = (flat - mean.clone())
        .powi_scalar(2)
        .mean_dim(1)
        .reshape([ch]);
    let mean = mean.reshape([ch]);
    let mut bn = BatchNormConfig::new(ch)
        .with_epsilon(EPS)
        .with_momentum(MOMENTUM)
        .init(&y.device());
    bn.gamma = Param::from_tensor(var.clone().add_scalar(EPS).sqrt());
    bn.beta = Param::from_tensor(mean.clone());
    bn.running_mean = RunningState::new(mean);
    bn.running_var = RunningState::new(var);
    (
        ConvBn {
            conv: c.conv,
            bn: Some(bn),
        },
        y,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::effnet::FeatureSpec;
    use burn::module::Module;
    use burn::tensor::{Device, Distribution};

    fn max_rel_diff(a: &[f32], b: &[f32]) -> f32 {
        let scale = a.iter().map(|v| v.abs()).fold(0f32, f32::max).max(1.0);
        a.iter()
            .zip(b)
            .map(|(p, q)| (p - q).abs())
            .fold(0f32, f32::max)
            / scale
    }

    fn features(net: &EfficientNetLite0, x: Tensor<4>) -> Vec<f32> {
        net.forward_features(x, &FeatureSpec::classic())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    }

    /// Calibrated batch norms change nothing in inference mode, and folding them back gives
    /// the folded network it started from.
    #[test]
    fn calibrated_batch_norms_are_the_identity_until_trained() {
        let device = Device::flex();
        device.seed(11);
        let net = EfficientNetLite0::new(&device, true);
        let calib = Tensor::<4>::random([4, 3, 64, 64], Distribution::Normal(0.0, 1.0), &device);
        let x = Tensor::<4>::random([2, 3, 64, 64], Distribution::Normal(0.0, 1.0), &device);
        let before = features(&net, x.clone());
        let unfolded = unfold_calibrated(net.clone(), calib).unwrap();
        assert!(!unfolded.is_folded());
        let inference = features(&unfolded, x.clone());
        assert!(max_rel_diff(&before, &inference) < 1e-4);
        let refolded = features(&unfolded.fold_batch_norms(), x);
        assert!(max_rel_diff(&before, &refolded) < 1e-4);
        assert!(
            unfold_calibrated(
                EfficientNetLite0::new(&device, false),
                Tensor::zeros([1, 3, 32, 32], &device)
            )
            .is_err()
        );
    }

    /// In train mode (an autodiff device) the layers normalise by the batch: on the calibration
    /// batch itself that is the identity too; on another batch the outputs differ from
    /// inference mode and the running statistics move by the momentum, while a frozen copy
    /// keeps them and computes what the folded network computes.
    #[test]
    fn train_mode_normalises_by_the_batch_and_freeze_stops_it() {
        let device = Device::flex();
        device.seed(12);
        let net = EfficientNetLite0::new(&device, true);
        let calib = Tensor::<4>::random([4, 3, 64, 64], Distribution::Normal(0.0, 1.0), &device);
        let other = calib.clone().mul_scalar(2.0).add_scalar(0.5);
        let unfolded = unfold_calibrated(net.clone(), calib.clone()).unwrap();
        let ad = device.clone().autodiff();
        let on_ad = |t: &Tensor<4>| Tensor::<4>::from_data(t.clone().into_data(), &ad);
        let stem_mean = |n: &EfficientNetLite0| {
            n.stem
                .bn
                .as_ref()
                .unwrap()
                .running_mean
                .value_sync()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
        };
        let start = stem_mean(&unfolded);

        let learning = crate::finetune::net::onto(unfolded.clone(), &ad).unwrap();
        // Batch statistics equal the calibration's up to summation order and rounding.
        let same = features(&learning, on_ad(&calib));
        assert!(max_rel_diff(&features(&net, calib.clone()), &same) < 2e-2);
        let moved_by_calib = stem_mean(&learning);
        assert!(
            moved_by_calib
                .iter()
                .zip(&start)
                .all(|(a, b)| (a - b).abs() <= 1e-3 * b.abs().max(1.0))
        );
        // The stem's output on a batch of twice the contrast: normalised back in train mode.
        let stem = |n: &EfficientNetLite0, x: Tensor<4>| {
            n.front(x, 0).into_data().try_to_vec::<f32>().unwrap()
        };
        let trained = stem(&learning, on_ad(&other));
        let eval = stem(&net, other.clone());
        assert!(
            max_rel_diff(&eval, &trained) > 0.1,
            "train mode used the running statistics"
        );
        let eval = features(&net, other.clone());
        let moved = stem_mean(&learning);
        assert!(
            moved
                .iter()
                .zip(&start)
                .any(|(a, b)| (a - b).abs() > 1e-4 * b.abs().max(1.0))
        );

        let frozen = crate::finetune::net::onto(unfolded, &ad).unwrap().freeze();
        let f = features(&frozen, on_ad(&other));
        assert!(max_rel_diff(&eval, &f) < 1e-4);
        assert_eq!(stem_mean(&frozen), start);
    }

    #[test]
    fn modes_parse_and_read_old_recipes() {
        assert_eq!(BatchNormMode::parse("train"), Ok(BatchNormMode::Train));
        assert_eq!(BatchNormMode::parse("frozen"), Ok(BatchNormMode::Frozen));
        assert!(BatchNormMode::parse("folded").is_err());
        assert_eq!(BatchNormMode::default(), BatchNormMode::Frozen);
    }
}
