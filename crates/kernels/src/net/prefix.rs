//! The network's frozen front for partial fine-tuning: the stem and the first blocks run here
//! (fast, no gradients needed) and hand their map to the trainable rest.

use rayon::prelude::*;

use super::{Layout, Net, NetError};
use crate::isa::Isa;

/// A batch of maps, channel-first (`[n, c, h, w]` row-major), and their `(c, h, w)`.
pub type Maps = (Vec<f32>, (usize, usize, usize));

impl Net {
    /// Number of blocks.
    pub fn block_count(&self) -> usize {
        self.blocks.len()
    }

    /// The map after the stem and blocks `..upto` of each image, channel-first (`[n, c, oh, ow]`
    /// row-major, what burn's convolutions take), with its `(c, oh, ow)`.
    pub fn prefix(
        &self,
        isa: Isa,
        images: &[f32],
        n: usize,
        h: usize,
        w: usize,
        upto: usize,
    ) -> Result<Maps, NetError> {
        let input_plane = self.stem_cin * h * w;
        if images.len() != n * input_plane {
            return Err(NetError(format!(
                "{} input values for {n} images of {}x{h}x{w}",
                images.len(),
                self.stem_cin
            )));
        }
        if upto > self.blocks.len() {
            return Err(NetError(format!(
                "block {upto} does not exist (0..={})",
                self.blocks.len()
            )));
        }
        let (mut oh, _) = crate::same_padding(h, self.stem_k, self.stem_stride);
        let (mut ow, _) = crate::same_padding(w, self.stem_k, self.stem_stride);
        let mut c = self.stem.cout;
        for b in &self.blocks[..upto] {
            oh = oh.div_ceil(b.stride);
            ow = ow.div_ceil(b.stride);
            c = b.project.cout;
        }
        let plane = oh * ow * c;
        let layout = Layout {
            taps: &[],
            pools: &[],
            dim: 0,
        };
        let mut nhwc = vec![0f32; n * plane];
        let run = |i: usize, dst: &mut [f32], parallel: bool| {
            let img = &images[i * input_plane..][..input_plane];
            self.front(isa, img, (h, w), upto, &layout, &mut [], dst, parallel);
        };
        if n >= rayon::current_num_threads() {
            nhwc.par_chunks_mut(plane.max(1))
                .enumerate()
                .for_each(|(i, d)| run(i, d, false));
        } else {
            for (i, d) in nhwc.chunks_mut(plane.max(1)).enumerate() {
                run(i, d, true);
            }
        }
        let mut out = vec![0f32; n * plane];
        let hw = oh * ow;
        for (src, dst) in nhwc
            .chunks_exact(plane.max(1))
            .zip(out.chunks_exact_mut(plane.max(1)))
        {
            for p in 0..hw {
                for ch in 0..c {
                    dst[ch * hw + p] = src[p * c + ch];
                }
            }
        }
        Ok((out, (c, oh, ow)))
    }
}

#[cfg(test)]
mod tests {
    use crate::isa::Isa;
    use crate::net::{Net, Pool, Tap};
    use crate::synthetic::{Lcg, lite0};

    /// The prefix up to every block, continued by the plain features of the full net, agrees
    /// with the map the full network pools at that block.
    #[test]
    fn prefix_map_pools_to_the_tapped_features() {
        let mut r = Lcg(3);
        let (stem, blocks, head) = lite0(&mut r);
        let net = Net::new(&stem, &blocks, &head).unwrap();
        let (n, h, w) = (2, 64, 48);
        let images = r.vec(n * 3 * h * w, 1.0);
        for upto in [1, 5, 11, 16] {
            let (maps, (c, oh, ow)) = net.prefix(Isa::Baseline, &images, n, h, w, upto).unwrap();
            assert_eq!(maps.len(), n * c * oh * ow);
            let f = net
                .features(
                    Isa::Baseline,
                    &images,
                    n,
                    h,
                    w,
                    &[Tap::Block(upto - 1)],
                    &[Pool::Avg],
                    false,
                )
                .unwrap();
            for i in 0..n {
                for ch in 0..c {
                    let m = &maps[(i * c + ch) * oh * ow..][..oh * ow];
                    let mean = m.iter().sum::<f32>() / m.len() as f32;
                    let want = f[i * c + ch];
                    assert!(
                        (mean - want).abs() <= 1e-4 * want.abs().max(1.0),
                        "{upto} {i} {ch}: {mean} vs {want}"
                    );
                }
            }
        }
        assert!(net.prefix(Isa::Baseline, &images, n, h, w, 17).is_err());
    }
}
