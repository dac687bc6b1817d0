//! The affine maps an augmentation can be: a 2D affine, its plausibility (no reflection,
//! bounded scale and anisotropy) and the area its matched points span.

/// A 2D affine map: `x' = m[0] x + m[1] y + m[2]`, `y' = m[3] x + m[4] y + m[5]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Affine(pub [f32; 6]);

impl Affine {
    pub const IDENTITY: Affine = Affine([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);

    #[inline]
    pub fn apply(&self, p: [f32; 2]) -> [f32; 2] {
        let m = &self.0;
        [
            m[0] * p[0] + m[1] * p[1] + m[2],
            m[3] * p[0] + m[4] * p[1] + m[5],
        ]
    }

    pub fn det(&self) -> f32 {
        self.0[0] * self.0[4] - self.0[1] * self.0[3]
    }

    pub fn inverse(&self) -> Option<Affine> {
        let d = self.det();
        if d.abs() < 1e-9 {
            return None;
        }
        let m = &self.0;
        let (a, b, c, e) = (m[4] / d, -m[1] / d, -m[3] / d, m[0] / d);
        Some(Affine([
            a,
            b,
            -(a * m[2] + b * m[5]),
            c,
            e,
            -(c * m[2] + e * m[5]),
        ]))
    }

    /// Singular values of the linear part (largest first).
    pub fn singular_values(&self) -> (f32, f32) {
        let m = &self.0;
        let (a, b, c, d) = (m[0], m[1], m[3], m[4]);
        let s1 = a * a + b * b + c * c + d * d;
        let det = a * d - b * c;
        let disc = (s1 * s1 - 4.0 * det * det).max(0.0).sqrt();
        (
            ((s1 + disc) / 2.0).sqrt(),
            ((s1 - disc) / 2.0).max(0.0).sqrt(),
        )
    }

    /// Exact affine through three point pairs.
    pub fn from_three(src: [[f32; 2]; 3], dst: [[f32; 2]; 3]) -> Option<Affine> {
        let [p0, p1, p2] = src;
        let det = (p1[0] - p0[0]) * (p2[1] - p0[1]) - (p2[0] - p0[0]) * (p1[1] - p0[1]);
        if det.abs() < 1.0 {
            return None; // (nearly) collinear
        }
        let solve = |v: [f32; 3]| -> [f32; 3] {
            // Cramer's rule on [x y 1] * [a b c]^T = v.
            let m = [
                [p0[0], p0[1], 1.0],
                [p1[0], p1[1], 1.0],
                [p2[0], p2[1], 1.0],
            ];
            let d3 = |m: [[f32; 3]; 3]| {
                m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
                    - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
                    + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
            };
            let dm = d3(m);
            let col = |k: usize| {
                let mut n = m;
                for r in 0..3 {
                    n[r][k] = v[r];
                }
                d3(n) / dm
            };
            [col(0), col(1), col(2)]
        };
        let x = solve([dst[0][0], dst[1][0], dst[2][0]]);
        let y = solve([dst[0][1], dst[1][1], dst[2][1]]);
        Some(Affine([x[0], x[1], x[2], y[0], y[1], y[2]]))
    }

    /// Least-squares affine over point pairs (normal equations).
    pub fn least_squares(src: &[[f32; 2]], dst: &[[f32; 2]]) -> Option<Affine> {
        if src.len() < 3 {
            return None;
        }
        // Centre for conditioning.
        let n = src.len() as f64;
        let (mut sx, mut sy, mut tx, mut ty) = (0f64, 0f64, 0f64, 0f64);
        for (s, t) in src.iter().zip(dst) {
            sx += s[0] as f64;
            sy += s[1] as f64;
            tx += t[0] as f64;
            ty += t[1] as f64;
        }
        let (sx, sy, tx, ty) = (sx / n, sy / n, tx / n, ty / n);
        let (mut a, mut b, mut c) = (0f64, 0f64, 0f64);
        let (mut ux, mut vx, mut uy, mut vy) = (0f64, 0f64, 0f64, 0f64);
        for (s, t) in src.iter().zip(dst) {
            let (x, y) = (s[0] as f64 - sx, s[1] as f64 - sy);
            let (u, v) = (t[0] as f64 - tx, t[1] as f64 - ty);
            a += x * x;
            b += x * y;
            c += y * y;
            ux += x * u;
            vx += y * u;
            uy += x * v;
            vy += y * v;
        }
        let det = a * c - b * b;
        if det.abs() < 1e-9 {
            return None;
        }
        let m0 = (c * ux - b * vx) / det;
        let m1 = (a * vx - b * ux) / det;
        let m3 = (c * uy - b * vy) / det;
        let m4 = (a * vy - b * uy) / det;
        Some(Affine([
            m0 as f32,
            m1 as f32,
            (tx - m0 * sx - m1 * sy) as f32,
            m3 as f32,
            m4 as f32,
            (ty - m3 * sx - m4 * sy) as f32,
        ]))
    }

    /// Scales the input and output frames: `out = so * self(x / si)`.
    pub fn rescaled(&self, si: f32, so: f32) -> Affine {
        let m = &self.0;
        Affine([
            m[0] * so / si,
            m[1] * so / si,
            m[2] * so,
            m[3] * so / si,
            m[4] * so / si,
            m[5] * so,
        ])
    }
}

pub(super) fn plausible(m: &Affine) -> bool {
    if m.det() <= 0.0 {
        return false;
    }
    let (s1, s2) = m.singular_values();
    s2 > 0.5 && s1 < 2.0 && s1 / s2.max(1e-6) < 1.6
}

/// Area of the convex hull of points (monotone chain).
pub fn hull_area(points: &[[f32; 2]]) -> f32 {
    if points.len() < 3 {
        return 0.0;
    }
    let mut p: Vec<[f32; 2]> = points.to_vec();
    p.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
    let cross = |o: [f32; 2], a: [f32; 2], b: [f32; 2]| {
        (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
    };
    let mut hull: Vec<[f32; 2]> = Vec::new();
    for pass in 0..2 {
        let start = hull.len();
        let iter: Box<dyn Iterator<Item = &[f32; 2]>> = if pass == 0 {
            Box::new(p.iter())
        } else {
            Box::new(p.iter().rev())
        };
        for &q in iter {
            while hull.len() >= start + 2
                && cross(hull[hull.len() - 2], hull[hull.len() - 1], q) <= 0.0
            {
                hull.pop();
            }
            hull.push(q);
        }
        hull.pop();
    }
    let mut area = 0.0;
    for i in 0..hull.len() {
        let (a, b) = (hull[i], hull[(i + 1) % hull.len()]);
        area += a[0] * b[1] - b[0] * a[1];
    }
    area.abs() / 2.0
}
