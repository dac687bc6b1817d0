//! The backbone on osteoai's CPU kernels (`osteoai-kernels`): the burn model's folded weights
//! copied once into the kernels' packed layout. Same network, same "same" padding, same
//! features; `tests/parity.rs` holds both paths to PyTorch's outputs.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use osteoai_kernels::net::{BlockWeights, ConvWeights};

use crate::model::effnet::{ConvBn, EfficientNetLite0, FeatureSpec, Pool, Tap};

/// Packs a network (its batch norms folded first if they are not).
pub fn pack(net: &EfficientNetLite0) -> Result<osteoai_kernels::Net, String> {
    let folded;
    let net = if net.is_folded() {
        net
    } else {
        folded = net.clone().fold_batch_norms();
        &folded
    };
    let blocks = net
        .blocks
        .iter()
        .map(|b| {
            Ok(BlockWeights {
                expand: b.expand.as_ref().map(weights).transpose()?,
                depthwise: weights(&b.depthwise)?,
                project: weights(&b.project)?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    osteoai_kernels::Net::new(&weights(&net.stem)?, &blocks, &weights(&net.head)?)
        .map_err(|e| format!("the CPU kernels cannot run this backbone: {e}"))
}

fn weights(c: &ConvBn) -> Result<ConvWeights, String> {
    let conv: &Conv2d = &c.conv;
    if c.bn.is_some() {
        return Err("batch norm not folded".into());
    }
    if conv.kernel_size[0] != conv.kernel_size[1]
        || conv.stride[0] != conv.stride[1]
        || conv.dilation != [1, 1]
        || !matches!(conv.padding, PaddingConfig2d::Same)
    {
        return Err(format!(
            "only square, undilated convolutions with \"same\" padding (got kernel {:?}, stride {:?})",
            conv.kernel_size, conv.stride
        ));
    }
    let [cout, cin_g, _, _] = conv.weight.val().dims();
    let read = |t: burn::tensor::TensorData| {
        t.try_to_vec::<f32>()
            .map_err(|e| format!("cannot read weights: {e:?}"))
    };
    let weight = read(conv.weight.val().into_data())?;
    let bias = match &conv.bias {
        Some(b) => read(b.val().into_data())?,
        None => vec![0.0; cout],
    };
    Ok(ConvWeights {
        weight,
        bias,
        cin: cin_g * conv.groups,
        cout,
        k: conv.kernel_size[0],
        stride: conv.stride[0],
        groups: conv.groups,
    })
}

/// Pooled features of preprocessed images (`[n, 3, s, s]` row-major), laid out as
/// `EfficientNetLite0::forward_features` lays them out.
pub fn features(
    net: &osteoai_kernels::Net,
    inputs: &[f32],
    n: usize,
    size: usize,
    spec: &FeatureSpec,
) -> Result<Vec<f32>, String> {
    let taps: Vec<osteoai_kernels::Tap> = spec
        .taps
        .iter()
        .map(|t| match t {
            Tap::Head => osteoai_kernels::Tap::Head,
            Tap::Block(i) => osteoai_kernels::Tap::Block(*i),
        })
        .collect();
    let pools: Vec<osteoai_kernels::Pool> = spec
        .pools
        .iter()
        .map(|p| match p {
            Pool::Avg => osteoai_kernels::Pool::Avg,
            Pool::Max => osteoai_kernels::Pool::Max,
        })
        .collect();
    net.features(
        osteoai_kernels::isa::active(),
        inputs,
        n,
        size,
        size,
        &taps,
        &pools,
        spec.flip_average,
    )
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Tensor, TensorData};

    /// The kernels and burn-flex agree on a random network, unfolded batch norms included,
    /// for several recipes and an image size that is not a multiple of 32.
    #[test]
    fn kernels_match_burn_flex() {
        let device = Device::flex();
        device.seed(3);
        let net = EfficientNetLite0::new(&device, false);
        let spec = FeatureSpec {
            taps: vec![Tap::Block(10), Tap::Head, Tap::Block(3)],
            pools: vec![Pool::Avg, Pool::Max],
            flip_average: true,
        };
        agree(&net, 72, &[FeatureSpec::classic(), spec]);
    }

    /// The deeper and wider variants (21 blocks; Lite2's 88, 120, 208, 352 channels) run on
    /// the kernels as in burn.
    #[test]
    fn lite1_and_lite2_run_on_the_kernels_as_in_burn() {
        use crate::model::arch::Arch;
        let device = Device::flex();
        for arch in [Arch::Lite1, Arch::Lite2] {
            device.seed(5);
            let net = EfficientNetLite0::with_arch(arch, &device, true);
            assert_eq!(net.block_count(), arch.block_count());
            let spec = FeatureSpec {
                flip_average: true,
                ..FeatureSpec::classic()
            };
            agree(&net, 80, &[spec]);
        }
    }

    fn agree(net: &EfficientNetLite0, s: usize, specs: &[FeatureSpec]) {
        let device = Device::flex();
        let packed = pack(net).unwrap();
        let n = 3;
        let x: Vec<f32> = (0..n * 3 * s * s)
            .map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0)
            .collect();
        for spec in specs {
            let want = net
                .forward_features(
                    Tensor::<4>::from_data(TensorData::new(x.clone(), [n, 3, s, s]), &device),
                    spec,
                )
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            let got = features(&packed, &x, n, s, spec).unwrap();
            assert_eq!(got.len(), want.len());
            let scale = want.iter().map(|v| v.abs()).fold(1f32, f32::max);
            let max = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(max <= 2e-5 * scale, "max abs diff {max} (scale {scale})");
            assert!(want.iter().any(|v| *v != 0.0), "all features zero");
        }
        assert!(features(&packed, &x[1..], n, s, &FeatureSpec::classic()).is_err());
    }
}
