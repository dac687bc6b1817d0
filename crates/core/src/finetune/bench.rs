//! Training speed: forward + backward + AdamW step per image, on preprocessed inputs (the
//! same work as `peer_finetune.py --steps-only`: decoding and augmentation excluded).

use std::time::Instant;

use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Tensor, TensorData};

use super::batch_norm::BatchNormMode;
use super::net::{Classifier, tensor4};
use crate::device::Selected;
use crate::model::effnet::EfficientNetLite0;

/// What `train_img_s` times.
#[derive(Clone, Copy, Debug)]
pub struct Steps {
    /// Input side in pixels.
    pub size: usize,
    pub batch: usize,
    /// Blocks kept frozen (0: all layers learn, as the peer's do).
    pub frozen: usize,
    /// Timed steps (after 3 warm-up steps).
    pub steps: usize,
    pub batch_norm: BatchNormMode,
}

/// Images per second over `steps` timed steps of `batch` images, training every block from
/// `frozen` on, with the batch norms frozen (folded) or in train mode.
pub fn train_img_s(
    base: EfficientNetLite0,
    device: &Selected,
    inputs: &[Vec<f32>],
    spec: Steps,
) -> Result<f64, String> {
    let Steps {
        size,
        batch,
        frozen,
        steps,
        batch_norm,
    } = spec;
    if inputs.is_empty() {
        return Err("no inputs".into());
    }
    let ad = device.device.clone().autodiff();
    let front = if device.native && frozen > 0 {
        Some(crate::model::native::pack(&base)?)
    } else {
        None
    };
    let base = super::batch_norm::prepare(base, batch_norm, |n| {
        let n = inputs.len().min(n);
        let x: Vec<f32> = inputs[..n].iter().flatten().copied().collect();
        tensor4(x, [n, 3, size, size], &device.device)
    })?;
    let mut model = Classifier::new(super::net::onto(base, &ad)?, 2, 0, &ad).freeze_front(frozen);
    let mut optim = AdamWConfig::new().with_weight_decay(1e-4).init();
    let mut k = 0usize;
    let mut t0 = Instant::now();
    for step in 0..steps + 3 {
        if step == 3 {
            t0 = Instant::now();
        }
        let x: Vec<f32> = (0..batch)
            .flat_map(|j| inputs[(k + j) % inputs.len()].iter().copied())
            .collect();
        k += batch;
        let logits = match &front {
            Some(net) => {
                let (maps, (c, oh, ow)) = net
                    .prefix(
                        osteoai_kernels::isa::active(),
                        &x,
                        batch,
                        size,
                        size,
                        frozen,
                    )
                    .map_err(|e| e.to_string())?;
                model.logits_from(tensor4(maps, [batch, c, oh, ow], &ad), frozen, false)
            }
            None => model.logits_from(tensor4(x, [batch, 3, size, size], &ad), frozen, true),
        };
        let target: Vec<f32> = (0..batch)
            .flat_map(|j| if j % 2 == 0 { [1.0, 0.0] } else { [0.0, 1.0] })
            .collect();
        let t = Tensor::<2>::from_data(TensorData::new(target, [batch, 2]), &ad);
        let loss = (burn::tensor::activation::log_softmax(logits, 1) * t)
            .sum()
            .neg()
            .div_scalar(batch as f32);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        if step == 0 && frozen <= 16 && grads.len() <= 2 {
            return Err(
                "the backbone received no gradient (a bug: it would time the head alone)".into(),
            );
        }
        model = optim.step(1e-4, model, grads);
        // Wait for the device (GPU backends queue work).
        let _ = model.fc.weight.val().into_data();
    }
    Ok((steps * batch) as f64 / t0.elapsed().as_secs_f64())
}
