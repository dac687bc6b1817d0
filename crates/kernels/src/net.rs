//! EfficientNet-Lite0's forward pass on NHWC maps: the stem (im2col + product), the MBConv
//! blocks (1x1 expand + ReLU6, depthwise + ReLU6, 1x1 project + residual), the 1x1 head +
//! ReLU6, and global pooling at the requested taps. A batch is spread over the threads one image
//! per task when there are enough images, else each layer is spread over them.

use rayon::prelude::*;

use crate::depthwise::{DwShape, depthwise};
use crate::isa::Isa;
use crate::pointwise::{Act, Pointwise, im2col_chw, pack_im2col_weight};

/// A convolution as PyTorch/burn store it, batch norm already folded into weight and bias.
#[derive(Clone, Debug)]
pub struct ConvWeights {
    /// `[cout, cin / groups, k, k]`.
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    pub cin: usize,
    pub cout: usize,
    pub k: usize,
    pub stride: usize,
    pub groups: usize,
}

/// One MBConv block's convolutions.
#[derive(Clone, Debug)]
pub struct BlockWeights {
    pub expand: Option<ConvWeights>,
    pub depthwise: ConvWeights,
    pub project: ConvWeights,
}

/// A network the kernels cannot run (shapes that do not chain, or not the expected kinds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetError(pub String);

impl std::fmt::Display for NetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NetError {}

/// Global pooling of a map into one value per channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pool {
    Avg,
    Max,
}

/// Where features are read: after block `n`, or after the head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tap {
    Block(usize),
    Head,
}

#[derive(Clone, Debug)]
pub struct Block {
    expand: Option<Pointwise>,
    /// `[k * k, mid]`.
    dw_weight: Vec<f32>,
    dw_bias: Vec<f32>,
    k: usize,
    stride: usize,
    mid: usize,
    project: Pointwise,
    residual: bool,
}

/// The packed network.
#[derive(Clone, Debug)]
pub struct Net {
    stem: Pointwise,
    stem_k: usize,
    stem_stride: usize,
    stem_cin: usize,
    blocks: Vec<Block>,
    head: Pointwise,
}

fn pointwise(c: &ConvWeights, what: &str) -> Result<Pointwise, NetError> {
    if c.k != 1 || c.stride != 1 || c.groups != 1 {
        return Err(NetError(format!("{what}: expected a 1x1 convolution")));
    }
    check_len(c, what)?;
    Ok(Pointwise::from_oihw(&c.weight, &c.bias, c.cout, c.cin))
}

fn check_len(c: &ConvWeights, what: &str) -> Result<(), NetError> {
    if c.groups == 0 || !c.cin.is_multiple_of(c.groups) {
        return Err(NetError(format!("{what}: bad groups {}", c.groups)));
    }
    let want = c.cout * (c.cin / c.groups) * c.k * c.k;
    if c.weight.len() != want || c.bias.len() != c.cout {
        return Err(NetError(format!(
            "{what}: {} weights and {} biases for a {}x{} {}->{} convolution",
            c.weight.len(),
            c.bias.len(),
            c.k,
            c.k,
            c.cin,
            c.cout
        )));
    }
    Ok(())
}

impl Net {
    /// Packs the weights, checking that the shapes chain.
    pub fn new(
        stem: &ConvWeights,
        blocks: &[BlockWeights],
        head: &ConvWeights,
    ) -> Result<Net, NetError> {
        check_len(stem, "stem")?;
        if stem.groups != 1 {
            return Err(NetError("stem: grouped convolution".into()));
        }
        let mut c = stem.cout;
        let mut packed = Vec::new();
        for (i, b) in blocks.iter().enumerate() {
            let what = format!("block {i}");
            let expand = match &b.expand {
                Some(e) => {
                    if e.cin != c {
                        return Err(NetError(format!(
                            "{what}: expands {} channels, not {c}",
                            e.cin
                        )));
                    }
                    Some(pointwise(e, &what)?)
                }
                None => None,
            };
            let mid = expand.as_ref().map_or(c, |e| e.cout);
            let d = &b.depthwise;
            check_len(d, &what)?;
            if d.cin != mid || d.cout != mid || d.groups != mid {
                return Err(NetError(format!(
                    "{what}: not a depthwise convolution on {mid}"
                )));
            }
            let mut dw_weight = vec![0f32; d.k * d.k * mid];
            for ch in 0..mid {
                for t in 0..d.k * d.k {
                    dw_weight[t * mid + ch] = d.weight[ch * d.k * d.k + t];
                }
            }
            if b.project.cin != mid {
                return Err(NetError(format!(
                    "{what}: projects {} channels",
                    b.project.cin
                )));
            }
            let project = pointwise(&b.project, &what)?;
            packed.push(Block {
                expand,
                dw_weight,
                dw_bias: d.bias.clone(),
                k: d.k,
                stride: d.stride,
                mid,
                residual: d.stride == 1 && c == project.cout,
                project,
            });
            c = b.project.cout;
        }
        if head.cin != c {
            return Err(NetError(format!(
                "head: takes {} channels, not {c}",
                head.cin
            )));
        }
        Ok(Net {
            stem: pack_im2col_weight(&stem.weight, &stem.bias, stem.cout, stem.cin, stem.k),
            stem_k: stem.k,
            stem_stride: stem.stride,
            stem_cin: stem.cin,
            blocks: packed,
            head: pointwise(head, "head")?,
        })
    }

    /// Channels at a tap (0 for a block that does not exist).
    pub fn tap_channels(&self, tap: Tap) -> usize {
        match tap {
            Tap::Head => self.head.cout,
            Tap::Block(n) => self.blocks.get(n).map_or(0, |b| b.project.cout),
        }
    }

    /// Length of one image's feature vector.
    pub fn feature_dim(&self, taps: &[Tap], pools: &[Pool]) -> usize {
        taps.iter().map(|t| self.tap_channels(*t)).sum::<usize>() * pools.len()
    }

    /// Pooled features of `n` CHW images (`[n, cin, h, w]`), tap by tap, pool by pool, as
    /// burn's `forward_features`; with `flip_average`, the mean of the image's and its left-right
    /// mirror's features.
    ///
    /// The early layers (large maps, small weights) run image by image, one image per thread
    /// when there are enough of them; from the first block whose input has at most
    /// `BATCH_PIXELS` pixels, the whole batch goes through each layer at once, so that the large
    /// late weights are packed once per thread rather than once per image.
    #[allow(clippy::too_many_arguments)]
    pub fn features(
        &self,
        isa: Isa,
        images: &[f32],
        n: usize,
        h: usize,
        w: usize,
        taps: &[Tap],
        pools: &[Pool],
        flip_average: bool,
    ) -> Result<Vec<f32>, NetError> {
        let input_plane = self.stem_cin * h * w;
        if images.len() != n * input_plane {
            return Err(NetError(format!(
                "{} input values for {n} images of {}x{h}x{w}",
                images.len(),
                self.stem_cin
            )));
        }
        if let Some(t) = taps.iter().find(|t| self.tap_channels(**t) == 0) {
            return Err(NetError(format!("no tap {t:?} in this network")));
        }
        let layout = Layout {
            taps,
            pools,
            dim: self.feature_dim(taps, pools),
        };
        let views = if flip_average { 2 } else { 1 };
        let tasks = n * views;
        let (split, (sh, sw, sc)) = self.split(h, w);
        let plane = sh * sw * sc;
        let mut feats = vec![0f32; tasks * layout.dim];
        let mut joined = vec![0f32; tasks * plane];
        let front = |t: usize, f: &mut [f32], dst: &mut [f32], parallel: bool| {
            let img = &images[(t / views) * input_plane..][..input_plane];
            if t % views == 1 {
                let m = mirror(img, self.stem_cin, h, w);
                self.front(isa, &m, (h, w), split, &layout, f, dst, parallel);
            } else {
                self.front(isa, img, (h, w), split, &layout, f, dst, parallel);
            }
        };
        let pairs = feats
            .chunks_mut(layout.dim.max(1))
            .zip(joined.chunks_mut(plane.max(1)));
        if tasks >= rayon::current_num_threads() {
            let pairs: Vec<_> = pairs.collect();
            pairs
                .into_par_iter()
                .enumerate()
                .for_each(|(t, (f, d))| front(t, f, d, false));
        } else {
            pairs
                .enumerate()
                .for_each(|(t, (f, d))| front(t, f, d, true));
        }
        self.back(isa, joined, tasks, (sh, sw, sc), split, &layout, &mut feats);
        if views == 1 {
            return Ok(feats);
        }
        Ok(feats
            .chunks_exact(2 * layout.dim)
            .flat_map(|p| {
                let (a, b) = p.split_at(layout.dim);
                a.iter().zip(b).map(|(x, y)| (x + y) * 0.5)
            })
            .collect())
    }

    /// The first block run on the whole batch, and the map entering it `(h, w, c)`.
    fn split(&self, h: usize, w: usize) -> (usize, (usize, usize, usize)) {
        let (mut hh, _) = crate::same_padding(h, self.stem_k, self.stem_stride);
        let (mut ww, _) = crate::same_padding(w, self.stem_k, self.stem_stride);
        let mut c = self.stem.cout;
        for (i, b) in self.blocks.iter().enumerate() {
            if hh * ww <= BATCH_PIXELS {
                return (i, (hh, ww, c));
            }
            hh = hh.div_ceil(b.stride);
            ww = ww.div_ceil(b.stride);
            c = b.project.cout;
        }
        (self.blocks.len(), (hh, ww, c))
    }

    /// Stem and blocks `..split` of one image; pools the taps among them into `f` and leaves
    /// the last map in `dst`.
    #[allow(clippy::too_many_arguments)]
    fn front(
        &self,
        isa: Isa,
        img: &[f32],
        (h, w): (usize, usize),
        split: usize,
        layout: &Layout,
        f: &mut [f32],
        dst: &mut [f32],
        parallel: bool,
    ) {
        let mut s = SCRATCH.take().unwrap_or_default();
        let mut shape = self.stem(isa, img, (h, w), &mut s, parallel);
        for i in 0..split {
            shape = self.block(isa, i, &mut s, 1, shape, parallel);
            self.pool_tap(Tap::Block(i), &s.x, 1, shape, layout, f);
        }
        dst.copy_from_slice(&s.x[..dst.len()]);
        SCRATCH.set(Some(s));
    }

    /// The stem (im2col, product, ReLU6) of one CHW image into `s.x`; returns its map's shape.
    fn stem(
        &self,
        isa: Isa,
        img: &[f32],
        (h, w): (usize, usize),
        s: &mut Scratch,
        parallel: bool,
    ) -> (usize, usize, usize) {
        let (hh, _) = crate::same_padding(h, self.stem_k, self.stem_stride);
        let (ww, _) = crate::same_padding(w, self.stem_k, self.stem_stride);
        let cols = take(&mut s.cols, hh * ww * self.stem.cin);
        im2col_chw(
            img,
            (self.stem_cin, h, w),
            self.stem_k,
            self.stem_stride,
            cols,
        );
        let x = take(&mut s.x, hh * ww * self.stem.cout);
        self.stem
            .run(isa, cols, x, hh * ww, Act::Relu6, None, parallel);
        (hh, ww, self.stem.cout)
    }

    /// Blocks `split..` and the head on the `n` maps of `joined`, all at once, pooling into
    /// `feats` (`[n, dim]`).
    #[allow(clippy::too_many_arguments)]
    fn back(
        &self,
        isa: Isa,
        mut joined: Vec<f32>,
        n: usize,
        mut shape: (usize, usize, usize),
        split: usize,
        layout: &Layout,
        feats: &mut [f32],
    ) {
        let mut s = SCRATCH.take().unwrap_or_default();
        std::mem::swap(&mut s.x, &mut joined);
        for i in split..self.blocks.len() {
            shape = self.block(isa, i, &mut s, n, shape, true);
            self.pool_tap(Tap::Block(i), &s.x, n, shape, layout, feats);
        }
        if layout.taps.contains(&Tap::Head) {
            let (hh, ww, c) = shape;
            let y = take(&mut s.y, n * hh * ww * self.head.cout);
            self.head.run(
                isa,
                &s.x[..n * hh * ww * c],
                y,
                n * hh * ww,
                Act::Relu6,
                None,
                true,
            );
            std::mem::swap(&mut s.x, &mut s.y);
            self.pool_tap(Tap::Head, &s.x, n, (hh, ww, self.head.cout), layout, feats);
        }
        SCRATCH.set(Some(s));
    }

    /// Block `i` on the `n` maps of shape `(h, w, c)` in `s.x`; the result replaces them.
    fn block(
        &self,
        isa: Isa,
        i: usize,
        s: &mut Scratch,
        n: usize,
        (hh, ww, c): (usize, usize, usize),
        parallel: bool,
    ) -> (usize, usize, usize) {
        let b = &self.blocks[i];
        let pixels = n * hh * ww;
        let x = &s.x[..pixels * c];
        let mid_in: &[f32] = match &b.expand {
            Some(e) => {
                let m = take(&mut s.mid, pixels * b.mid);
                e.run(isa, x, m, pixels, Act::Relu6, None, parallel);
                m
            }
            None => x,
        };
        let sh = DwShape::same(hh, ww, b.mid, b.k, b.stride);
        let out_pixels = n * sh.oh * sh.ow;
        let d = take(&mut s.dw, out_pixels * b.mid);
        depthwise(
            isa,
            mid_in,
            d,
            n,
            &b.dw_weight,
            &b.dw_bias,
            &sh,
            true,
            parallel,
        );
        let y = take(&mut s.y, out_pixels * b.project.cout);
        let residual = b.residual.then_some(x);
        b.project
            .run(isa, d, y, out_pixels, Act::None, residual, parallel);
        std::mem::swap(&mut s.x, &mut s.y);
        (sh.oh, sh.ow, b.project.cout)
    }

    /// Pools the `n` maps of `x` into their rows of `feats` when `tap` is asked for.
    fn pool_tap(
        &self,
        tap: Tap,
        x: &[f32],
        n: usize,
        (hh, ww, c): (usize, usize, usize),
        layout: &Layout,
        feats: &mut [f32],
    ) {
        let Some(i) = layout.taps.iter().position(|t| *t == tap) else {
            return;
        };
        let np = layout.pools.len();
        let o = layout.taps[..i]
            .iter()
            .map(|t| self.tap_channels(*t))
            .sum::<usize>()
            * np;
        for (img, f) in x[..n * hh * ww * c]
            .chunks_exact(hh * ww * c)
            .zip(feats.chunks_exact_mut(layout.dim))
        {
            pool_into(img, c, layout.pools, &mut f[o..o + c * np]);
        }
    }
}

/// Blocks whose input has at most this many pixels run on the whole batch at once (measured
/// on EfficientNet-Lite0 at 224: from the 14x14 stage on).
const BATCH_PIXELS: usize = 14 * 14;

/// Where each tap's pooled values go in a feature row.
struct Layout<'a> {
    taps: &'a [Tap],
    pools: &'a [Pool],
    dim: usize,
}

/// Activation buffers reused from image to image on a thread (allocating and zeroing them for
/// every layer cost ~7% of the forward). Taken out of the thread-local while in use, so that a
/// nested call (rayon work-stealing) gets fresh buffers instead of a conflict.
#[derive(Default)]
struct Scratch {
    cols: Vec<f32>,
    x: Vec<f32>,
    mid: Vec<f32>,
    dw: Vec<f32>,
    y: Vec<f32>,
}

thread_local! {
    static SCRATCH: std::cell::Cell<Option<Box<Scratch>>> = const { std::cell::Cell::new(None) };
}

/// The first `n` values of `v`, growing it when needed (every kernel writes all of them).
fn take(v: &mut Vec<f32>, n: usize) -> &mut [f32] {
    if v.len() < n {
        v.resize(n, 0.0);
    }
    &mut v[..n]
}

/// Left-right mirror of a `[c, h, w]` image.
fn mirror(img: &[f32], c: usize, h: usize, w: usize) -> Vec<f32> {
    let mut m = Vec::with_capacity(c * h * w);
    for row in img.chunks_exact(w) {
        m.extend(row.iter().rev());
    }
    debug_assert_eq!(m.len(), c * h * w);
    m
}

/// Pools an NHWC map (`[pixels, c]`) into `out`, `c` values per pool in the order given.
fn pool_into(map: &[f32], c: usize, pools: &[Pool], out: &mut [f32]) {
    let pixels = map.len() / c;
    for (p, o) in pools.iter().zip(out.chunks_exact_mut(c)) {
        match p {
            Pool::Avg => {
                let mut sum = vec![0f64; c];
                for px in map.chunks_exact(c) {
                    for (s, v) in sum.iter_mut().zip(px) {
                        *s += *v as f64;
                    }
                }
                for (d, s) in o.iter_mut().zip(sum) {
                    *d = (s / pixels as f64) as f32;
                }
            }
            Pool::Max => {
                o.fill(f32::NEG_INFINITY);
                for px in map.chunks_exact(c) {
                    for (d, v) in o.iter_mut().zip(px) {
                        *d = d.max(*v);
                    }
                }
            }
        }
    }
}

mod maps;
mod prefix;

pub use maps::TapMap;

#[cfg(test)]
mod tests;
