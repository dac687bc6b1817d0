//! Oriented FAST corners with rotated binary descriptors (the idea of ORB: Rublee et al., "ORB:
//! an efficient alternative to SIFT or SURF", ICCV 2011), written for the audit's geometric
//! verification. Corners from FAST-9 on an image pyramid, ranked by the Harris response and
//! spread over a grid (so that a lead marker's letters cannot take every keypoint); the
//! orientation from the intensity centroid; 256 intensity comparisons of a smoothed patch,
//! rotated with the keypoint, packed in four `u64`.

use crate::gray::Gray;

/// Keypoints (in the coordinates of the image given to `detect`) and their descriptors.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Features {
    pub points: Vec<[f32; 2]>,
    pub desc: Vec<[u64; 4]>,
}

/// How keypoints are found.
#[derive(Clone, Copy, Debug)]
pub struct OrbParams {
    pub max_points: usize,
    pub levels: usize,
    pub scale: f32,
    pub fast_threshold: i16,
    /// Grid cell (pixels at level 0) and the most keypoints a cell keeps.
    pub cell: usize,
    pub per_cell: usize,
}

impl Default for OrbParams {
    fn default() -> Self {
        OrbParams {
            max_points: 500,
            levels: 4,
            scale: 1.25,
            fast_threshold: 7,
            cell: 32,
            per_cell: 5,
        }
    }
}

const CIRCLE: [(i32, i32); 16] = [
    (0, -3),
    (1, -3),
    (2, -2),
    (3, -1),
    (3, 0),
    (3, 1),
    (2, 2),
    (1, 3),
    (0, 3),
    (-1, 3),
    (-2, 2),
    (-3, 1),
    (-3, 0),
    (-3, -1),
    (-2, -2),
    (-1, -3),
];
/// Patch radius for the orientation and the descriptor; pixels this close to an edge are skipped.
const RADIUS: i32 = 15;
const BORDER: usize = 19;
const ANGLE_BINS: usize = 32;

/// True when a 16-bit circular mask holds at least 9 consecutive set bits.
#[inline]
fn has_arc9(m: u32) -> bool {
    let mut r = m | (m << 16);
    for _ in 0..8 {
        r &= r >> 1;
    }
    r != 0
}

/// FAST-9 corners of `img` (not at the border), as (x, y).
fn fast9(img: &Gray, t: i16) -> Vec<(usize, usize)> {
    let w = img.w as isize;
    let offs: Vec<isize> = CIRCLE
        .iter()
        .map(|&(dx, dy)| dy as isize * w + dx as isize)
        .collect();
    let mut out = Vec::new();
    if img.w <= 2 * BORDER || img.h <= 2 * BORDER {
        return out;
    }
    let px = &img.px;
    for y in BORDER..img.h - BORDER {
        for x in BORDER..img.w - BORDER {
            let c = (y * img.w + x) as isize;
            let v = px[c as usize] as i16;
            let (hi, lo) = (v + t, v - t);
            // Any arc of 9 covers at least two of the four compass points.
            let mut bright = 0;
            let mut dark = 0;
            for k in [0usize, 4, 8, 12] {
                let p = px[(c + offs[k]) as usize] as i16;
                bright += (p > hi) as u32;
                dark += (p < lo) as u32;
            }
            if bright < 2 && dark < 2 {
                continue;
            }
            let (mut mb, mut md) = (0u32, 0u32);
            for (k, o) in offs.iter().enumerate() {
                let p = px[(c + o) as usize] as i16;
                mb |= ((p > hi) as u32) << k;
                md |= ((p < lo) as u32) << k;
            }
            if has_arc9(mb) || has_arc9(md) {
                out.push((x, y));
            }
        }
    }
    out
}

/// Sobel gradients of every pixel (zero on the one-pixel border), for the Harris responses.
fn sobel(img: &Gray) -> (Vec<f32>, Vec<f32>) {
    let (w, h) = (img.w, img.h);
    let (mut gx, mut gy) = (vec![0f32; w * h], vec![0f32; w * h]);
    for y in 1..h.saturating_sub(1) {
        for x in 1..w.saturating_sub(1) {
            let p = |dx: isize, dy: isize| {
                img.at((x as isize + dx) as usize, (y as isize + dy) as usize) as f32
            };
            gx[y * w + x] =
                (p(1, -1) + 2.0 * p(1, 0) + p(1, 1)) - (p(-1, -1) + 2.0 * p(-1, 0) + p(-1, 1));
            gy[y * w + x] =
                (p(-1, 1) + 2.0 * p(0, 1) + p(1, 1)) - (p(-1, -1) + 2.0 * p(0, -1) + p(1, -1));
        }
    }
    (gx, gy)
}

/// Harris corner response over a 7x7 window of Sobel gradients (`sobel` of the image, row
/// stride `w`; (x, y) at least 4 pixels from the edge).
fn harris(gx: &[f32], gy: &[f32], w: usize, x: usize, y: usize) -> f32 {
    let (mut a, mut b, mut c) = (0f32, 0f32, 0f32);
    for yy in y - 3..=y + 3 {
        for xx in x - 3..=x + 3 {
            let (dx, dy) = (gx[yy * w + xx], gy[yy * w + xx]);
            a += dx * dx;
            b += dy * dy;
            c += dx * dy;
        }
    }
    let k = 0.04;
    (a * b - c * c) - k * (a + b) * (a + b)
}

/// Orientation of the patch around (x, y) by its intensity centroid.
fn orientation(img: &Gray, x: usize, y: usize) -> f32 {
    let (mut m10, mut m01) = (0f32, 0f32);
    for dy in -RADIUS..=RADIUS {
        let span = ((RADIUS * RADIUS - dy * dy) as f32).sqrt() as i32;
        let row = (y as i32 + dy) as usize * img.w;
        for dx in -span..=span {
            let v = img.px[row + (x as i32 + dx) as usize] as f32;
            m10 += dx as f32 * v;
            m01 += dy as f32 * v;
        }
    }
    m01.atan2(m10)
}

/// 5x5 box blur (integral image), the smoothing the binary tests compare.
fn box5(img: &Gray) -> Gray {
    let (w, h) = (img.w, img.h);
    let mut ii = vec![0u32; (w + 1) * (h + 1)];
    for y in 0..h {
        let mut row = 0u32;
        for x in 0..w {
            row += img.at(x, y) as u32;
            ii[(y + 1) * (w + 1) + x + 1] = ii[y * (w + 1) + x + 1] + row;
        }
    }
    let mut out = vec![0u8; w * h];
    for y in 0..h {
        let (y0, y1) = (y.saturating_sub(2), (y + 3).min(h));
        for x in 0..w {
            let (x0, x1) = (x.saturating_sub(2), (x + 3).min(w));
            let s = ii[y1 * (w + 1) + x1] + ii[y0 * (w + 1) + x0]
                - ii[y0 * (w + 1) + x1]
                - ii[y1 * (w + 1) + x0];
            let n = ((y1 - y0) * (x1 - x0)) as u32;
            // Inside the border the window is whole: a division by a constant is a multiply.
            out[y * w + x] = (if n == 25 { s / 25 } else { s / n }) as u8;
        }
    }
    Gray::new(w, h, out)
}

/// The 256 point pairs of the binary test, drawn once from an isotropic Gaussian inside the
/// patch (deterministic: a fixed-seed generator), then rotated for each angle bin.
/// Test point pairs (offsets from the keypoint) for each angle bin.
type Patterns = Vec<Vec<[(i8, i8); 2]>>;

fn patterns() -> &'static Patterns {
    static P: std::sync::OnceLock<Patterns> = std::sync::OnceLock::new();
    P.get_or_init(|| {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            // splitmix64
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        };
        let sigma = 31.0 / 5.0;
        let mut gauss_point = || loop {
            let (u1, u2) = (next().max(1e-12), next());
            let r = (-2.0 * u1.ln()).sqrt() * sigma;
            let (x, y) = (
                r * (std::f64::consts::TAU * u2).cos(),
                r * (std::f64::consts::TAU * u2).sin(),
            );
            if x * x + y * y <= 13.0 * 13.0 {
                return (x, y);
            }
        };
        let base: Vec<[(f64, f64); 2]> = (0..256).map(|_| [gauss_point(), gauss_point()]).collect();
        (0..ANGLE_BINS)
            .map(|b| {
                let a = b as f64 * std::f64::consts::TAU / ANGLE_BINS as f64;
                let (s, c) = a.sin_cos();
                base.iter()
                    .map(|pq| {
                        pq.map(|(x, y)| {
                            ((c * x - s * y).round() as i8, (s * x + c * y).round() as i8)
                        })
                    })
                    .collect()
            })
            .collect()
    })
}

fn describe(smooth: &Gray, x: usize, y: usize, angle: f32) -> [u64; 4] {
    let turn = angle.rem_euclid(std::f32::consts::TAU) / std::f32::consts::TAU;
    let bin = ((turn * ANGLE_BINS as f32).round() as usize) % ANGLE_BINS;
    let mut d = [0u64; 4];
    for (i, [(ax, ay), (bx, by)]) in patterns()[bin].iter().enumerate() {
        let a = smooth.at(
            (x as i32 + *ax as i32) as usize,
            (y as i32 + *ay as i32) as usize,
        );
        let b = smooth.at(
            (x as i32 + *bx as i32) as usize,
            (y as i32 + *by as i32) as usize,
        );
        if a < b {
            d[i / 64] |= 1 << (i % 64);
        }
    }
    d
}

/// Keypoints and descriptors of `img` over a pyramid.
pub fn detect(img: &Gray, p: &OrbParams) -> Features {
    struct Cand {
        x: f32,
        y: f32,
        level: usize,
        lx: usize,
        ly: usize,
        response: f32,
    }
    let mut levels = vec![img.clone()];
    for l in 1..p.levels {
        let s = p.scale.powi(l as i32);
        let (w, h) = (
            (img.w as f32 / s).round() as usize,
            (img.h as f32 / s).round() as usize,
        );
        if w <= 2 * BORDER + 8 || h <= 2 * BORDER + 8 {
            break;
        }
        levels.push(img.resize(w, h));
    }
    let mut cands = Vec::new();
    for (l, li) in levels.iter().enumerate() {
        let s = p.scale.powi(l as i32);
        // Non-maximum suppression in 3x3 by response (NaN: not a corner).
        let corners = fast9(li, p.fast_threshold);
        if corners.is_empty() {
            continue;
        }
        let (gx, gy) = sobel(li);
        let w = li.w;
        let mut resp = vec![f32::NAN; w * li.h];
        for &(x, y) in &corners {
            resp[y * w + x] = harris(&gx, &gy, w, x, y);
        }
        for &(x, y) in &corners {
            let r = resp[y * w + x];
            let beaten = (-1i32..=1).any(|dy| {
                (-1i32..=1).any(|dx| {
                    let o = resp[(y as i32 + dy) as usize * w + (x as i32 + dx) as usize];
                    (dx, dy) != (0, 0) && (o > r || (o == r && (dy, dx) < (0, 0)))
                })
            });
            if !beaten && r > 0.0 {
                cands.push(Cand {
                    x: x as f32 * s,
                    y: y as f32 * s,
                    level: l,
                    lx: x,
                    ly: y,
                    response: r,
                });
            }
        }
    }
    cands.sort_by(|a, b| b.response.total_cmp(&a.response));
    // Spread: at most `per_cell` keypoints in each grid cell.
    let gw = img.w.div_ceil(p.cell).max(1);
    let gh = img.h.div_ceil(p.cell).max(1);
    let mut used = vec![0usize; gw * gh];
    let mut keep = Vec::new();
    for c in cands {
        let g = (c.y as usize / p.cell).min(gh - 1) * gw + (c.x as usize / p.cell).min(gw - 1);
        if used[g] < p.per_cell {
            used[g] += 1;
            keep.push(c);
            if keep.len() == p.max_points {
                break;
            }
        }
    }
    let smooth: Vec<Gray> = levels.iter().map(box5).collect();
    let mut f = Features::default();
    for c in keep {
        let angle = orientation(&levels[c.level], c.lx, c.ly);
        f.points.push([c.x, c.y]);
        f.desc.push(describe(&smooth[c.level], c.lx, c.ly, angle));
    }
    f
}

/// Hamming distance of two descriptors.
#[inline(always)]
pub fn hamming(a: &[u64; 4], b: &[u64; 4]) -> u32 {
    (a[0] ^ b[0]).count_ones()
        + (a[1] ^ b[1]).count_ones()
        + (a[2] ^ b[2]).count_ones()
        + (a[3] ^ b[3]).count_ones()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A textured test image: a few bright discs and bars on a gradient.
    pub(crate) fn scene(w: usize, h: usize, seed: u64) -> Gray {
        let mut px = vec![0u8; w * h];
        let mut s = seed;
        let mut rnd = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 33) as usize
        };
        let shapes: Vec<(usize, usize, usize, u8)> = (0..40)
            .map(|_| {
                (
                    rnd() % w,
                    rnd() % h,
                    3 + rnd() % 12,
                    (60 + rnd() % 190) as u8,
                )
            })
            .collect();
        for y in 0..h {
            for x in 0..w {
                let mut v = (x * 40 / w + y * 30 / h) as u8;
                for &(cx, cy, r, c) in &shapes {
                    let (dx, dy) = (x as isize - cx as isize, y as isize - cy as isize);
                    if (dx * dx + dy * dy) as usize <= r * r
                        || (dx.abs() < 2 && dy.unsigned_abs() < 3 * r)
                    {
                        v = c;
                    }
                }
                px[y * w + x] = v;
            }
        }
        Gray::new(w, h, px)
    }

    #[test]
    fn arc_test() {
        assert!(has_arc9(0b1_1111_1111));
        assert!(!has_arc9(0b1111_1111));
        assert!(!has_arc9(0b0101_0101_0101_0101));
        // Wraps around: bits 12..15 and 0..4.
        assert!(has_arc9(0xF000 | 0x1F));
    }

    #[test]
    fn finds_spread_keypoints_and_the_same_descriptors_twice() {
        let g = scene(256, 256, 7);
        let f = detect(&g, &OrbParams::default());
        assert!(f.points.len() > 60, "{}", f.points.len());
        assert_eq!(f.points.len(), f.desc.len());
        assert_eq!(detect(&g, &OrbParams::default()), f);
        // A flat image has none.
        let flat = Gray::new(128, 128, vec![90; 128 * 128]);
        assert!(detect(&flat, &OrbParams::default()).points.is_empty());
    }

    #[test]
    fn resize_keeps_the_mean_and_mirror_is_an_involution() {
        let g = scene(200, 150, 3);
        let small = g.resize(50, 37);
        let mean = |g: &Gray| g.px.iter().map(|&v| v as f64).sum::<f64>() / g.px.len() as f64;
        assert!((mean(&g) - mean(&small)).abs() < 2.0);
        assert_eq!(g.mirrored().mirrored(), g);
        assert_eq!(g.fit(100).w, 100);
    }
}
