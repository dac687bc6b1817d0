//! The packed network against a direct NCHW forward pass of the same weights.

use super::*;
use crate::reference::{Lcg, conv_nchw};
use crate::synthetic::conv;

/// A small network with every kind of block: no expansion, stride 2 with kernel 5, residual.
fn small(r: &mut Lcg) -> (ConvWeights, Vec<BlockWeights>, ConvWeights) {
    let stem = conv(r, 3, 16, 3, 2, 1);
    let mut blocks = Vec::new();
    // (expand, k, stride, cin, cout)
    for (e, k, s, cin, cout) in [
        (1, 3, 1, 16, 8),
        (6, 3, 2, 8, 12),
        (6, 5, 1, 12, 12),
        (6, 5, 2, 12, 20),
    ] {
        let mid = cin * e;
        blocks.push(BlockWeights {
            expand: (e != 1).then(|| conv(r, cin, mid, 1, 1, 1)),
            depthwise: conv(r, mid, mid, k, s, mid),
            project: conv(r, mid, cout, 1, 1, 1),
        });
    }
    let head = conv(r, 20, 48, 1, 1, 1);
    (stem, blocks, head)
}

fn relu6(v: Vec<f32>) -> Vec<f32> {
    v.into_iter().map(|x| x.clamp(0.0, 6.0)).collect()
}

fn apply(c: &ConvWeights, x: &[f32], h: usize, w: usize) -> (Vec<f32>, usize, usize) {
    let y = conv_nchw(
        x,
        (c.cin, h, w),
        &c.weight,
        &c.bias,
        c.cout,
        c.k,
        c.stride,
        c.groups,
    );
    (y, h.div_ceil(c.stride), w.div_ceil(c.stride))
}

fn pool(map: &[f32], c: usize, p: Pool) -> Vec<f32> {
    let n = map.len() / c;
    map.chunks_exact(n)
        .map(|ch| match p {
            Pool::Avg => ch.iter().map(|v| *v as f64).sum::<f64>() as f32 / n as f32,
            Pool::Max => ch.iter().copied().fold(f32::NEG_INFINITY, f32::max),
        })
        .collect()
}

/// Direct NCHW forward of one image, features in the same order as `Net::features`.
fn reference(
    net: &(ConvWeights, Vec<BlockWeights>, ConvWeights),
    img: &[f32],
    h: usize,
    w: usize,
    taps: &[Tap],
    pools: &[Pool],
) -> Vec<f32> {
    let (stem, blocks, head) = net;
    let mut maps: Vec<(Tap, Vec<f32>, usize)> = Vec::new();
    let (x, mut hh, mut ww) = apply(stem, img, h, w);
    let mut x = relu6(x);
    for (i, b) in blocks.iter().enumerate() {
        let input = x.clone();
        if let Some(e) = &b.expand {
            x = relu6(apply(e, &x, hh, ww).0);
        }
        let (d, oh, ow) = apply(&b.depthwise, &x, hh, ww);
        let (mut y, _, _) = apply(&b.project, &relu6(d), oh, ow);
        if b.depthwise.stride == 1 && b.project.cout == input.len() / (hh * ww) {
            y.iter_mut().zip(&input).for_each(|(a, q)| *a += q);
        }
        (x, hh, ww) = (y, oh, ow);
        maps.push((Tap::Block(i), x.clone(), b.project.cout));
    }
    maps.push((Tap::Head, relu6(apply(head, &x, hh, ww).0), head.cout));
    let mut out = Vec::new();
    for t in taps {
        let (_, m, c) = maps.iter().find(|(mt, _, _)| mt == t).unwrap();
        for p in pools {
            out.extend(pool(m, *c, *p));
        }
    }
    out
}

#[test]
fn features_match_a_direct_forward_pass_on_every_level() {
    let mut r = Lcg(11);
    let weights = small(&mut r);
    let net = Net::new(&weights.0, &weights.1, &weights.2).unwrap();
    let (n, h, w) = (3, 33, 28);
    let images = r.vec(n * 3 * h * w, 2.0);
    let taps = [Tap::Head, Tap::Block(2), Tap::Block(0)];
    let pools = [Pool::Avg, Pool::Max];
    let dim = net.feature_dim(&taps, &pools);
    assert_eq!(dim, (48 + 12 + 8) * 2);
    let want: Vec<f32> = (0..n)
        .flat_map(|i| {
            reference(
                &weights,
                &images[i * 3 * h * w..][..3 * h * w],
                h,
                w,
                &taps,
                &pools,
            )
        })
        .collect();
    for isa in Isa::supported() {
        let got = net
            .features(isa, &images, n, h, w, &taps, &pools, false)
            .unwrap();
        let max = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(max < 1e-4, "{isa:?}: max abs diff {max}");
        // One image alone spreads each layer over the threads instead: same values.
        let one = net
            .features(isa, &images[..3 * h * w], 1, h, w, &taps, &pools, false)
            .unwrap();
        assert_eq!(one, got[..dim]);
    }
}

#[test]
fn flip_average_is_the_mean_of_image_and_mirror() {
    let mut r = Lcg(5);
    let weights = small(&mut r);
    let net = Net::new(&weights.0, &weights.1, &weights.2).unwrap();
    let (h, w) = (20, 17);
    let img = r.vec(3 * h * w, 2.0);
    let mirrored = mirror(&img, 3, h, w);
    let taps = [Tap::Head];
    let pools = [Pool::Avg];
    let isa = crate::isa::active();
    let a = net
        .features(isa, &img, 1, h, w, &taps, &pools, false)
        .unwrap();
    let b = net
        .features(isa, &mirrored, 1, h, w, &taps, &pools, false)
        .unwrap();
    let both = net
        .features(isa, &img, 1, h, w, &taps, &pools, true)
        .unwrap();
    for ((x, y), z) in a.iter().zip(&b).zip(&both) {
        assert!(((x + y) * 0.5 - z).abs() < 1e-6);
    }
    // The mirror of the mirror gives the same averaged features.
    let again = net
        .features(isa, &mirrored, 1, h, w, &taps, &pools, true)
        .unwrap();
    let max = again
        .iter()
        .zip(&both)
        .map(|(p, q)| (p - q).abs())
        .fold(0f32, f32::max);
    assert!(max < 1e-5, "{max}");
}

#[test]
fn an_empty_batch_gives_no_rows() {
    let mut r = Lcg(9);
    let weights = small(&mut r);
    let net = Net::new(&weights.0, &weights.1, &weights.2).unwrap();
    for flip in [false, true] {
        let f = net
            .features(
                Isa::Baseline,
                &[],
                0,
                16,
                16,
                &[Tap::Head],
                &[Pool::Avg],
                flip,
            )
            .unwrap();
        assert!(f.is_empty());
    }
}

#[test]
fn shapes_that_do_not_chain_are_refused() {
    let mut r = Lcg(2);
    let (stem, mut blocks, head) = small(&mut r);
    assert!(Net::new(&stem, &blocks, &conv(&mut r, 21, 48, 1, 1, 1)).is_err());
    blocks[1].project.bias.pop();
    let e = Net::new(&stem, &blocks, &head).unwrap_err();
    assert!(e.0.contains("block 1"), "{e}");
    let (stem, blocks, head) = small(&mut r);
    let net = Net::new(&stem, &blocks, &head).unwrap();
    assert!(
        net.features(
            Isa::Baseline,
            &[0.0; 10],
            1,
            4,
            4,
            &[Tap::Head],
            &[Pool::Avg],
            false
        )
        .is_err()
    );
    assert!(
        net.features(
            Isa::Baseline,
            &[0.0; 48],
            1,
            4,
            4,
            &[Tap::Block(9)],
            &[Pool::Avg],
            false
        )
        .is_err()
    );
}
