//! Grad-CAM through burn's autodiff: the map leaving block `target` (computed without
//! gradients) becomes a leaf that requires them; the rest of the network, the pooling and the
//! linear head run on the autodiff device; the class's centred logit is differentiated with
//! respect to that map. Each channel is weighted by its mean gradient, the weighted sum is
//! rectified (Selvaraju et al. 2017).

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};

use crate::engine::Backbone;
use crate::model::effnet::{Pool, Tap};
use crate::model::linear::LinearHead;

/// The block whose output Grad-CAM reads: block 10 (1/16 of the input) unless the model's
/// features tap an earlier one (every tap must lie at or after it).
pub fn target_block(taps: &[Tap]) -> usize {
    taps.iter()
        .filter_map(|t| match t {
            Tap::Block(i) => Some(*i),
            Tap::Head => None,
        })
        .fold(10, usize::min)
}

/// Grad-CAM of `class` for one preprocessed image: `(grid_w, grid_h, values)`.
pub fn grad_cam(
    b: &Backbone,
    head: &LinearHead,
    input: &[f32],
    class: usize,
) -> Result<(usize, usize, Vec<f32>), String> {
    let run = std::panic::AssertUnwindSafe(|| grad_cam_unguarded(b, head, input, class));
    std::panic::catch_unwind(run).unwrap_or_else(|p| {
        Err(format!(
            "grad-cam failed: {}",
            crate::engine::panic_text(&p)
        ))
    })
}

fn grad_cam_unguarded(
    b: &Backbone,
    head: &LinearHead,
    input: &[f32],
    class: usize,
) -> Result<(usize, usize, Vec<f32>), String> {
    let spec = &b.features;
    let s = b.preprocess.size as usize;
    let target = target_block(&spec.taps);
    let device = &b.device.device;
    let x = Tensor::<4>::from_data(TensorData::new(input.to_vec(), [1, 3, s, s]), device);
    let views = if spec.flip_average { 2 } else { 1 };
    let x = if views == 2 {
        Tensor::cat(vec![x.clone(), x.flip([3])], 0)
    } else {
        x
    };
    let front = b.net.front(x, target + 1);
    let [_, c, h, w] = front.dims();
    let ad: Device = device.clone().autodiff();
    let a = Tensor::<4>::from_data(front.clone().into_data(), &ad).require_grad();
    let net = crate::finetune::net::onto(b.net.clone(), &ad)?.no_grad();
    let maps = net.maps_from(a.clone(), target, &spec.taps);
    let mut parts = Vec::new();
    for m in maps {
        let m = m.ok_or("grad-cam: a feature tap lies before the target block")?;
        let [v, ch, mh, mw] = m.dims();
        let flat = m.reshape([v, ch, mh * mw]);
        for p in &spec.pools {
            let pooled = match p {
                Pool::Avg => flat.clone().mean_dim(2),
                Pool::Max => flat.clone().max_dim(2),
            };
            parts.push(pooled.reshape([v, ch]));
        }
    }
    // The model's features: the views' mean.
    let feats: Tensor<2> = Tensor::cat(parts, 1).mean_dim(0);
    let dim = head.num_features();
    let k = head.num_classes();
    let wt: Vec<f32> = (0..dim)
        .flat_map(|i| head.weights.iter().map(move |row| row[i]))
        .collect();
    let wt = Tensor::<2>::from_data(TensorData::new(wt, [dim, k]), &ad);
    let bias = Tensor::<2>::from_data(TensorData::new(head.bias.clone(), [1, k]), &ad);
    let logits = feats.matmul(wt) + bias;
    let centred = logits.clone() - logits.mean_dim(1);
    let y = centred.narrow(1, class, 1).sum();
    let grads = y.backward();
    let g = a
        .grad(&grads)
        .ok_or("grad-cam: no gradient reached the target map")?;
    let weights = g.reshape([views, c, h * w]).mean_dim(2); // [v, c, 1]
    let cam = (front.reshape([views, c, h * w]) * weights).sum_dim(1); // [v, 1, hw]
    let cam = burn::tensor::activation::relu(cam)
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| format!("cannot read grad-cam back: {e:?}"))?;
    let mut out = cam[..h * w].to_vec();
    if views == 2 {
        let back = super::Heatmap::mirror_values(&cam[h * w..], w);
        for (o, m) in out.iter_mut().zip(back) {
            *o = 0.5 * (*o + m);
        }
    }
    Ok((w, h, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_is_block_ten_or_the_earliest_tap() {
        assert_eq!(target_block(&[Tap::Head]), 10);
        assert_eq!(
            target_block(&[Tap::Head, Tap::Block(14), Tap::Block(10)]),
            10
        );
        assert_eq!(target_block(&[Tap::Block(6), Tap::Head]), 6);
    }
}
