//! The pixel check of a pair: one thumbnail warped into the other's frame, rank and detail
//! correlation over the overlap (detail: high-pass, tile by tile, the median of tiles with
//! structure).

use crate::affine::Affine;
use crate::gray::Gray;

/// Pixels darker than this are taken for the black fill of a rotation or crop.
const FILL: f32 = 10.0;

/// Pearson correlation of two samples (`None` when either is constant).
fn pearson(x: &[f32], y: &[f32]) -> Option<f32> {
    let n = x.len() as f64;
    let (mx, my) = (
        x.iter().map(|&v| v as f64).sum::<f64>() / n,
        y.iter().map(|&v| v as f64).sum::<f64>() / n,
    );
    let (mut sxy, mut sxx, mut syy) = (0f64, 0f64, 0f64);
    for (&a, &b) in x.iter().zip(y) {
        let (a, b) = (a as f64 - mx, b as f64 - my);
        sxy += a * b;
        sxx += a * a;
        syy += b * b;
    }
    (sxx > 1e-9 && syy > 1e-9).then(|| (sxy / (sxx * syy).sqrt()) as f32)
}

/// Ranks (ties get their mean rank).
fn ranks(v: &[f32]) -> Vec<f32> {
    // One key per value: its bits made to sort as `f32::total_cmp` orders the values, then its
    // index. Ties share their mean rank, so their order among themselves does not matter and
    // an unstable sort of plain integers will do (several times faster than a stable sort
    // through the indices).
    let mut keys: Vec<u64> = v
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let b = x.to_bits() as i32;
            let ordered = (b ^ ((((b >> 31) as u32) >> 1) as i32)) as u32 ^ 0x8000_0000;
            (ordered as u64) << 32 | i as u64
        })
        .collect();
    keys.sort_unstable();
    let order: Vec<usize> = keys.iter().map(|k| (k & 0xFFFF_FFFF) as usize).collect();
    ranks_in_order(v, &order)
}

/// The ranks of `v` given its indices in ascending order: runs of equal values share their
/// mean rank.
fn ranks_in_order(v: &[f32], order: &[usize]) -> Vec<f32> {
    let mut r = vec![0f32; v.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && v[order[j + 1]] == v[order[i]] {
            j += 1;
        }
        let mean = (i + j) as f32 / 2.0;
        for &k in &order[i..=j] {
            r[k] = mean;
        }
        i = j + 1;
    }
    r
}

/// How two thumbnails compare once aligned.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Aligned {
    /// Pearson correlation of the grey levels over the overlap.
    pub pearson: f32,
    /// Rank (Spearman) correlation over the overlap: blind to any monotone change of exposure
    /// (brightness, contrast, gamma), which is what re-exposed copies differ by.
    pub rank: f32,
    /// Overlap over the smaller of the two images' content (non-fill) areas.
    pub overlap: f32,
    /// Correlation of the fine detail over the overlap: each rank image minus its 5x5 mean,
    /// over the whole overlap or, when lower, its median over 4x4 tiles with structure. Copies share their fine structure (edges, trabeculae, marker letters)
    /// everywhere; another film of the same patient, or another person filmed in the same
    /// standard view, shares the coarse picture but not the detail.
    pub detail: f32,
}

/// `a` warped into `b`'s frame by `m` (thumbnail coordinates) and compared over the overlap of
/// their content (black fill excluded).
pub fn aligned(a: &Gray, b: &Gray, m: &Affine) -> Aligned {
    let none = Aligned {
        pearson: -1.0,
        rank: -1.0,
        overlap: 0.0,
        detail: -1.0,
    };
    let Some(inv) = m.inverse() else {
        return none;
    };
    let (mut xa, mut xb) = (Vec::new(), Vec::new());
    let mut at = Vec::new();
    let (aw, ah) = (a.w as f32, a.h as f32);
    for y in 0..b.h {
        for x in 0..b.w {
            let q = inv.apply([x as f32, y as f32]);
            if q[0] < 0.0 || q[1] < 0.0 || q[0] > aw - 1.0 || q[1] > ah - 1.0 {
                continue;
            }
            let va = a.bilinear(q[0], q[1]);
            let vb = b.at(x, y) as f32;
            if va <= FILL || vb <= FILL {
                continue;
            }
            xa.push(va);
            xb.push(vb);
            at.push(y * b.w + x);
        }
    }
    let content = |g: &Gray| g.px.iter().filter(|&&v| v as f32 > FILL).count() as f32;
    let smaller = (content(a) * m.det().abs()).min(content(b)).max(1.0);
    let overlap = (xa.len() as f32 / smaller).min(1.0);
    if xa.len() < 64 {
        return Aligned { overlap, ..none };
    }
    let (ra, rb) = (ranks(&xa), ranks(&xb));
    // Detail: the high-pass of each rank image (minus its 5x5 mean) where the whole window
    // lies in the overlap, correlated over the whole overlap and tile by tile (the median over
    // the tiles with structure, so that one shared marker or one region cannot carry it).
    // Blurring the sharper image to the other's sharpness first was tried: it let two
    // forearms of different people through (mid-scale anatomy edges align).
    let (w, h) = (b.w, b.h);
    let mut ga = vec![f32::NAN; w * h];
    let mut gb = vec![f32::NAN; w * h];
    for ((&k, &va), &vb) in at.iter().zip(&ra).zip(&rb) {
        ga[k] = va;
        gb[k] = vb;
    }
    let detail = tiled_detail(&ga, &gb, w, h);
    Aligned {
        pearson: pearson(&xa, &xb).unwrap_or(-1.0),
        rank: pearson(&ra, &rb).unwrap_or(-1.0),
        overlap,
        detail,
    }
}

/// Each image minus its 5x5 mean, where the whole window lies in the overlap (row-major), and
/// the tile (of `TILES` x `TILES`) each pixel is in.
fn high_pass(ga: &[f32], gb: &[f32], w: usize, h: usize) -> (Vec<f32>, Vec<f32>, Vec<usize>) {
    let (mut da, mut db, mut tile) = (Vec::new(), Vec::new(), Vec::new());
    if w < 5 || h < 5 {
        return (da, db, tile);
    }
    // The 5x5 sums of a whole row at once, added in the order of the window (rows, then
    // columns), so each pixel's sum is the one a loop over its window gives; a window with
    // a pixel outside the overlap (NaN) sums to NaN and is skipped.
    let (mut sa, mut sb) = (vec![0f32; w - 4], vec![0f32; w - 4]);
    for y in 2..h - 2 {
        sa.fill(0.0);
        sb.fill(0.0);
        for yy in y - 2..=y + 2 {
            let (ra, rb) = (&ga[yy * w..(yy + 1) * w], &gb[yy * w..(yy + 1) * w]);
            for dx in 0..5 {
                for ((s, t), (&va, &vb)) in sa
                    .iter_mut()
                    .zip(sb.iter_mut())
                    .zip(ra[dx..].iter().zip(&rb[dx..]))
                {
                    *s += va;
                    *t += vb;
                }
            }
        }
        for x in 2..w - 2 {
            let (s, t) = (sa[x - 2], sb[x - 2]);
            if s.is_nan() || t.is_nan() {
                continue;
            }
            da.push(ga[y * w + x] - s / 25.0);
            db.push(gb[y * w + x] - t / 25.0);
            tile.push((y * TILES / h).min(TILES - 1) * TILES + (x * TILES / w).min(TILES - 1));
        }
    }
    (da, db, tile)
}

const TILES: usize = 4;

/// The correlation of the two high-pass images (each minus its 5x5 mean) over the whole
/// overlap, or its median over a 4x4 grid of tiles with enough valid pixels and structure in
/// both when that is lower (four tiles or more); -1 when there is too little to compare.
fn tiled_detail(ga: &[f32], gb: &[f32], w: usize, h: usize) -> f32 {
    let (da, db, tile) = high_pass(ga, gb, w, h);
    let mut tiles: Vec<(Vec<f32>, Vec<f32>)> = vec![(Vec::new(), Vec::new()); TILES * TILES];
    for ((&pa, &pb), &t) in da.iter().zip(&db).zip(&tile) {
        tiles[t].0.push(pa);
        tiles[t].1.push(pb);
    }
    if da.len() < 64 {
        return -1.0;
    }
    let std = |v: &[f32]| {
        let m = v.iter().sum::<f32>() / v.len().max(1) as f32;
        (v.iter().map(|x| (x - m) * (x - m)).sum::<f32>() / v.len().max(1) as f32).sqrt()
    };
    let (sa, sb) = (std(&da), std(&db));
    let mut per: Vec<f32> = tiles
        .iter()
        .filter(|(ta, tb)| ta.len() >= 49 && std(ta) >= 0.3 * sa && std(tb) >= 0.3 * sb)
        .filter_map(|(ta, tb)| pearson(ta, tb))
        .collect();
    let whole = pearson(&da, &db).unwrap_or(-1.0);
    if per.len() < 4 {
        return whole;
    }
    per.sort_by(f32::total_cmp);
    let n = per.len();
    let median = if n % 2 == 1 {
        per[n / 2]
    } else {
        0.5 * (per[n / 2 - 1] + per[n / 2])
    };
    // Both must hold: the detail over the whole overlap and in most tiles.
    whole.min(median)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ranks as first written: a stable sort through the indices by `total_cmp`.
    fn ranks_reference(v: &[f32]) -> Vec<f32> {
        let mut order: Vec<usize> = (0..v.len()).collect();
        order.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
        ranks_in_order(v, &order)
    }

    #[test]
    fn ranks_equal_the_reference_ties_and_signs_included() {
        let mut v: Vec<f32> = (0..5000)
            .map(|i| ((i * 7919) % 263) as f32 * 0.25 - 20.0)
            .collect();
        v.extend([0.0, -0.0, 0.0, -1e-30, 1e-30, f32::MAX, f32::MIN, -0.0]);
        assert_eq!(ranks(&v), ranks_reference(&v));
        assert_eq!(ranks(&[3.0, 1.0, 2.0, 1.0]), vec![3.0, 0.5, 2.0, 0.5]);
    }

    /// The detail as first written (a loop over each pixel's window), for the comparison.
    fn detail_reference(ga: &[f32], gb: &[f32], w: usize, h: usize) -> (Vec<f32>, Vec<f32>) {
        let (mut da, mut db) = (Vec::new(), Vec::new());
        for y in 2..h.saturating_sub(2) {
            'px: for x in 2..w.saturating_sub(2) {
                let (mut sa, mut sb) = (0f32, 0f32);
                for yy in y - 2..=y + 2 {
                    for xx in x - 2..=x + 2 {
                        let (va, vb) = (ga[yy * w + xx], gb[yy * w + xx]);
                        if va.is_nan() || vb.is_nan() {
                            continue 'px;
                        }
                        sa += va;
                        sb += vb;
                    }
                }
                da.push(ga[y * w + x] - sa / 25.0);
                db.push(gb[y * w + x] - sb / 25.0);
            }
        }
        (da, db)
    }

    #[test]
    fn the_row_sums_give_the_reference_detail() {
        let (w, h) = (96, 84);
        let mut ga = vec![f32::NAN; w * h];
        let mut gb = vec![f32::NAN; w * h];
        // A rotated square of content, values like ranks (halves included).
        for y in 0..h {
            for x in 0..w {
                let (u, v) = (x as f32 - 48.0, y as f32 - 42.0);
                if (0.8 * u + 0.6 * v).abs() < 35.0 && (0.6 * u - 0.8 * v).abs() < 30.0 {
                    ga[y * w + x] = ((x * 7919 + y * 104_729) % 4001) as f32 * 0.5;
                    gb[y * w + x] = ((x * 31 + y * 17) % 977) as f32 + 0.5 * ((x + y) % 2) as f32;
                }
            }
        }
        let (da, db) = detail_reference(&ga, &gb, w, h);
        assert!(da.len() > 1000);
        let (pa, pb, _) = high_pass(&ga, &gb, w, h);
        assert_eq!((pa, pb), (da.clone(), db.clone()));
        let whole = pearson(&da, &db).unwrap();
        // The tiles' median may be lower than the whole; never higher.
        assert!(tiled_detail(&ga, &gb, w, h) <= whole);
        let ones = vec![1.0; w * h];
        assert_eq!(tiled_detail(&ones, &ones, w, h), -1.0);
        assert_eq!(tiled_detail(&ga[..16], &gb[..16], 4, 4), -1.0);
    }
}
