//! The pixel check of a pair: one thumbnail warped into the other's frame, rank and detail
//! correlation over the overlap (detail: high-pass, tile by tile, the median of tiles with
//! structure).

use super::affine::Affine;
use super::orb::Gray;

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
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
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

/// The correlation of the two high-pass images (each minus its 5x5 mean) over the whole
/// overlap, or its median over a 4x4 grid of tiles with enough valid pixels and structure in
/// both when that is lower (four tiles or more); -1 when there is too little to compare.
fn tiled_detail(ga: &[f32], gb: &[f32], w: usize, h: usize) -> f32 {
    const TILES: usize = 4;
    let mut tiles: Vec<(Vec<f32>, Vec<f32>)> = vec![(Vec::new(), Vec::new()); TILES * TILES];
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
            let (pa, pb) = (ga[y * w + x] - sa / 25.0, gb[y * w + x] - sb / 25.0);
            da.push(pa);
            db.push(pb);
            let t = (y * TILES / h).min(TILES - 1) * TILES + (x * TILES / w).min(TILES - 1);
            tiles[t].0.push(pa);
            tiles[t].1.push(pb);
        }
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
