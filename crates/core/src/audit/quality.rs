//! Image quality flags, relative to the data set: each statistic is compared with the folder's
//! own median by a robust, one-sided z-score (percentile spread), so that a folder of dark
//! radiographs does not flag every image as dark; a few absolute limits catch what no folder
//! makes normal (colour in radiographs, images a few dozen pixels wide).

use serde::Serialize;

use super::signature::Stats;

/// Kinds of quality finding, as the CSV names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QualityKind {
    Dark,
    Bright,
    LowInformation,
    Blurry,
    OddSize,
    OddAspect,
    Color,
}

impl QualityKind {
    pub const ALL: [QualityKind; 7] = [
        QualityKind::Dark,
        QualityKind::Bright,
        QualityKind::LowInformation,
        QualityKind::Blurry,
        QualityKind::OddSize,
        QualityKind::OddAspect,
        QualityKind::Color,
    ];

    pub fn name(self) -> &'static str {
        match self {
            QualityKind::Dark => "dark",
            QualityKind::Bright => "bright",
            QualityKind::LowInformation => "low_information",
            QualityKind::Blurry => "blurry",
            QualityKind::OddSize => "odd_size",
            QualityKind::OddAspect => "odd_aspect",
            QualityKind::Color => "color",
        }
    }
}

/// One flag on one image: `score` is how far beyond the folder's spread (the robust z-score's
/// magnitude; the measured value for absolute rules), `detail` says what was measured against
/// what, with the signed z.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QualityFlag {
    pub index: usize,
    pub kind: QualityKind,
    pub score: f64,
    pub detail: String,
}

/// Robust z-score cut-offs and absolute limits.
#[derive(Clone, Copy, Debug)]
pub struct QualityParams {
    pub z: f64,
    /// Images narrower or lower than this (pixels) are odd whatever the folder holds.
    pub min_side: u32,
    /// Mean channel difference above this is colour (radiographs are grey).
    pub color: f64,
}

impl Default for QualityParams {
    fn default() -> Self {
        QualityParams {
            z: 4.0,
            min_side: 64,
            color: 0.03,
        }
    }
}

/// The 10th, 50th and 90th percentiles (None for fewer than 5 finite values).
pub fn quantiles(values: &[f64]) -> Option<(f64, f64, f64)> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.len() < 5 {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    Some((q(0.1), q(0.5), q(0.9)))
}

/// 1.2816 = the 90th percentile of a standard normal: (p90 - p50) / 1.2816 estimates one
/// standard deviation on the high side without being moved by the outliers themselves.
const Z90: f64 = 1.2816;

/// Quality flags over the readable images (`stats[k]` belongs to image `index[k]`). Each
/// statistic (some on a log scale) is compared with the folder's median in units of its own
/// spread on that side (robust z: `(v - p50) / ((p90 - p50) / 1.28)` above the median, with the
/// 10th percentile below); beyond `z` it is flagged. One-sided spreads matter: radiograph
/// folders are skewed (many narrow finger films, many dark films).
pub fn flags(index: &[usize], stats: &[Stats], p: &QualityParams) -> Vec<QualityFlag> {
    let mut out = Vec::new();
    let col = |f: &dyn Fn(&Stats) -> f64| stats.iter().map(f).collect::<Vec<f64>>();
    // (kind, values, flag the low side, flag the high side, what, floor of the spread)
    type Check<'a> = (QualityKind, Vec<f64>, bool, bool, &'a str, f64);
    let checks: Vec<Check> = vec![
        (
            QualityKind::Dark,
            col(&|s| (s.brightness as f64 + 0.01).ln()),
            true,
            false,
            "log mean grey level",
            0.05,
        ),
        (
            QualityKind::Bright,
            col(&|s| (1.01 - s.brightness as f64).ln()),
            true,
            false,
            "log (1 - mean grey level)",
            0.05,
        ),
        (
            QualityKind::LowInformation,
            col(&|s| s.entropy as f64),
            true,
            false,
            "histogram entropy (bits)",
            0.1,
        ),
        (
            QualityKind::Blurry,
            col(&|s| (s.sharpness as f64).max(1e-6).ln()),
            true,
            false,
            "log sharpness (Laplacian variance / variance)",
            0.1,
        ),
        (
            QualityKind::OddSize,
            col(&|s| ((s.width as f64) * (s.height as f64)).max(1.0).ln()),
            true,
            true,
            "log pixel area",
            0.1,
        ),
        (
            QualityKind::OddAspect,
            col(&|s| (s.width.max(s.height) as f64 / s.width.min(s.height).max(1) as f64).ln()),
            false,
            true,
            "log aspect ratio (long side / short side)",
            0.05,
        ),
    ];
    for (kind, values, low, high, what, floor) in checks {
        let Some((p10, p50, p90)) = quantiles(&values) else {
            continue;
        };
        let lo_scale = ((p50 - p10) / Z90).max(floor);
        let hi_scale = ((p90 - p50) / Z90).max(floor);
        for (k, &v) in values.iter().enumerate() {
            let z = if v < p50 {
                (v - p50) / lo_scale
            } else {
                (v - p50) / hi_scale
            };
            if (low && z < -p.z) || (high && z > p.z) {
                out.push(QualityFlag {
                    index: index[k],
                    kind,
                    score: z.abs(),
                    detail: format!("{what} {v:.3}, folder median {p50:.3}, robust z {z:+.1}"),
                });
            }
        }
    }
    for (k, s) in stats.iter().enumerate() {
        if s.width.min(s.height) < p.min_side
            && !out
                .iter()
                .any(|f| f.index == index[k] && f.kind == QualityKind::OddSize)
        {
            out.push(QualityFlag {
                index: index[k],
                kind: QualityKind::OddSize,
                score: s.width.min(s.height) as f64,
                detail: format!(
                    "very small: {}x{} (under {} px a side)",
                    s.width, s.height, p.min_side
                ),
            });
        }
        if s.colorfulness as f64 > p.color {
            out.push(QualityFlag {
                index: index[k],
                kind: QualityKind::Color,
                score: s.colorfulness as f64,
                detail: format!(
                    "colour: mean channel difference {:.3} (radiographs are grey; limit {:.3})",
                    s.colorfulness, p.color
                ),
            });
        }
    }
    out.sort_by(|a, b| {
        a.kind
            .cmp(&b.kind)
            .then(b.score.abs().total_cmp(&a.score.abs()))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(w: u32, h: u32, b: f32, e: f32, sh: f32, c: f32) -> Stats {
        Stats {
            width: w,
            height: h,
            brightness: b,
            entropy: e,
            sharpness: sh,
            colorfulness: c,
        }
    }

    #[test]
    fn flags_are_relative_to_the_folder() {
        // 40 ordinary images with natural spread, then one of each problem.
        let mut st: Vec<Stats> = (0..40)
            .map(|i| {
                let j = i as f32 / 40.0;
                s(
                    500 + i,
                    400 + i,
                    0.30 + 0.1 * j,
                    6.5 + j,
                    0.2 + 0.05 * j,
                    0.0,
                )
            })
            .collect();
        st.push(s(510, 410, 0.02, 6.8, 0.22, 0.0)); // 40 dark
        st.push(s(510, 410, 0.97, 6.8, 0.22, 0.0)); // 41 bright
        st.push(s(510, 410, 0.33, 1.2, 0.22, 0.0)); // 42 low information
        st.push(s(510, 410, 0.33, 6.8, 0.004, 0.0)); // 43 blurry
        st.push(s(40, 30, 0.33, 6.8, 0.22, 0.0)); // 44 tiny
        st.push(s(1500, 300, 0.33, 6.8, 0.22, 0.0)); // 45 odd aspect
        st.push(s(510, 410, 0.33, 6.8, 0.22, 0.2)); // 46 colour
        let idx: Vec<usize> = (0..st.len()).collect();
        let f = flags(&idx, &st, &QualityParams::default());
        let has = |i: usize, k: QualityKind| f.iter().any(|x| x.index == i && x.kind == k);
        assert!(has(40, QualityKind::Dark));
        assert!(has(41, QualityKind::Bright));
        assert!(has(42, QualityKind::LowInformation));
        assert!(has(43, QualityKind::Blurry));
        assert!(has(44, QualityKind::OddSize));
        assert!(has(45, QualityKind::OddAspect));
        assert!(has(46, QualityKind::Color));
        assert!(
            f.iter().all(|x| x.index >= 40),
            "no ordinary image is flagged: {f:?}"
        );
        // The same dark image in a folder of dark images is not dark.
        let dark: Vec<Stats> = (0..30)
            .map(|i| s(500, 400, 0.02 + 0.001 * i as f32, 6.5, 0.2, 0.0))
            .collect();
        let idx: Vec<usize> = (0..30).collect();
        assert!(flags(&idx, &dark, &QualityParams::default()).is_empty());
    }
}
