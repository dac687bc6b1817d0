//! A heatmap on a coarse grid laid over the whole image, and what is read from it in the
//! image's pixel coordinates: the value anywhere (bilinear between cell centres), the peak,
//! the box around the hottest part, the share of the map's mass inside given boxes.

use serde::Serialize;

use super::Method;

/// An axis-aligned box in image pixels (`x, y` the top-left corner).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Box2 {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

impl Box2 {
    pub fn contains(&self, x: f64, y: f64) -> bool {
        x >= self.x && x <= self.x + self.w && y >= self.y && y <= self.y + self.h
    }

    /// The box grown by `pad` on every side.
    pub fn padded(&self, pad: f64) -> Box2 {
        Box2 {
            x: self.x - pad,
            y: self.y - pad,
            w: self.w + 2.0 * pad,
            h: self.h + 2.0 * pad,
        }
    }
}

/// Cells of the working raster per grid cell, for the box and the mass (the map is smooth at
/// that scale: bilinear between cell centres).
const RASTER: usize = 8;

/// A map of `grid_w x grid_h` cells covering the whole image (the model sees the image
/// stretched to a square; cell `(i, j)` covers the same fraction of the original).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Heatmap {
    pub method: Method,
    /// The class the map is for (index into the model's classes).
    pub class: usize,
    /// The image's class probabilities, as the model scores it.
    pub probs: Vec<f64>,
    pub grid_w: usize,
    pub grid_h: usize,
    /// Row-major, in the method's units (higher: more evidence for `class`).
    pub values: Vec<f32>,
    /// The original image's size in pixels.
    pub image_w: u32,
    pub image_h: u32,
}

impl Heatmap {
    /// The values scaled to [0, 1] (min to max); all zero when the map is flat.
    pub fn normalized(&self) -> Vec<f32> {
        let (lo, hi) = self
            .values
            .iter()
            .filter(|v| v.is_finite())
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), v| {
                (a.min(*v), b.max(*v))
            });
        let span = hi - lo;
        self.values
            .iter()
            .map(|v| {
                if span > 0.0 && v.is_finite() {
                    ((v - lo) / span).clamp(0.0, 1.0)
                } else {
                    0.0
                }
            })
            .collect()
    }

    /// Whether the map carries no information (flat, e.g. a head that ignores location).
    pub fn is_flat(&self) -> bool {
        self.normalized().iter().all(|v| *v == 0.0)
    }

    /// The normalised map resampled to `w x h` (bilinear between cell centres, edges held).
    pub fn resample(&self, w: usize, h: usize) -> Vec<f32> {
        resample(&self.normalized(), self.grid_w, self.grid_h, w, h)
    }

    /// The peak in image pixels: the centre of the hottest cell (bilinear interpolation between
    /// cell centres has its maximum at one of them). Ties go to the first in row order.
    pub fn peak(&self) -> (f64, f64) {
        let n = self.normalized();
        let mut best = 0;
        for (i, v) in n.iter().enumerate() {
            if *v > n[best] {
                best = i;
            }
        }
        self.cell_centre(best % self.grid_w.max(1), best / self.grid_w.max(1))
    }

    fn cell_centre(&self, cx: usize, cy: usize) -> (f64, f64) {
        (
            (cx as f64 + 0.5) * self.image_w as f64 / self.grid_w.max(1) as f64,
            (cy as f64 + 0.5) * self.image_h as f64 / self.grid_h.max(1) as f64,
        )
    }

    /// The hottest part's box: the region connected to the peak where the normalised map is at
    /// least `level` (0.5: half way from the map's minimum to its peak), bounded tightly, in
    /// image pixels. Computed on a raster of 8 x 8 points per cell.
    pub fn hot_box(&self, level: f32) -> Box2 {
        let (rw, rh) = (self.grid_w * RASTER, self.grid_h * RASTER);
        let r = self.resample(rw, rh);
        if rw == 0 || rh == 0 {
            return Box2 {
                x: 0.0,
                y: 0.0,
                w: self.image_w as f64,
                h: self.image_h as f64,
            };
        }
        let (px, py) = self.peak();
        let sx = rw as f64 / self.image_w.max(1) as f64;
        let sy = rh as f64 / self.image_h.max(1) as f64;
        let start = (
            ((px * sx) as usize).min(rw - 1),
            ((py * sy) as usize).min(rh - 1),
        );
        let mut seen = vec![false; rw * rh];
        let mut stack = vec![start];
        seen[start.1 * rw + start.0] = true;
        let (mut x0, mut y0, mut x1, mut y1) = (start.0, start.1, start.0, start.1);
        while let Some((x, y)) = stack.pop() {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
            let mut push = |nx: usize, ny: usize| {
                let i = ny * rw + nx;
                if !seen[i] && r[i] >= level {
                    seen[i] = true;
                    stack.push((nx, ny));
                }
            };
            if x > 0 {
                push(x - 1, y);
            }
            if x + 1 < rw {
                push(x + 1, y);
            }
            if y > 0 {
                push(x, y - 1);
            }
            if y + 1 < rh {
                push(x, y + 1);
            }
        }
        Box2 {
            x: x0 as f64 / sx,
            y: y0 as f64 / sy,
            w: (x1 + 1 - x0) as f64 / sx,
            h: (y1 + 1 - y0) as f64 / sy,
        }
    }

    /// The share of the normalised map's mass (on the raster) that falls inside any of `boxes`.
    pub fn mass_inside(&self, boxes: &[Box2]) -> f64 {
        let (rw, rh) = (self.grid_w * RASTER, self.grid_h * RASTER);
        let r = self.resample(rw, rh);
        let (mut inside, mut total) = (0f64, 0f64);
        for y in 0..rh {
            for x in 0..rw {
                let v = r[y * rw + x] as f64;
                total += v;
                let ix = (x as f64 + 0.5) * self.image_w as f64 / rw as f64;
                let iy = (y as f64 + 0.5) * self.image_h as f64 / rh as f64;
                if boxes.iter().any(|b| b.contains(ix, iy)) {
                    inside += v;
                }
            }
        }
        if total > 0.0 { inside / total } else { 0.0 }
    }

    /// The map mirrored left-right (for the mirrored view of flip-averaged models).
    pub fn mirror_values(values: &[f32], w: usize) -> Vec<f32> {
        values
            .chunks_exact(w.max(1))
            .flat_map(|row| row.iter().rev().copied())
            .collect()
    }
}

/// Bilinear resampling of a `gw x gh` grid to `w x h`, sample points at cell centres.
pub fn resample(grid: &[f32], gw: usize, gh: usize, w: usize, h: usize) -> Vec<f32> {
    if gw == 0 || gh == 0 || grid.len() < gw * gh {
        return vec![0.0; w * h];
    }
    let coord = |i: usize, n: usize, g: usize| -> (usize, usize, f32) {
        let f = ((i as f32 + 0.5) * g as f32 / n as f32 - 0.5).clamp(0.0, (g - 1) as f32);
        let a = f.floor() as usize;
        let b = (a + 1).min(g - 1);
        (a, b, f - a as f32)
    };
    let xs: Vec<_> = (0..w).map(|x| coord(x, w, gw)).collect();
    let mut out = Vec::with_capacity(w * h);
    for y in 0..h {
        let (y0, y1, fy) = coord(y, h, gh);
        for &(x0, x1, fx) in &xs {
            let top = grid[y0 * gw + x0] * (1.0 - fx) + grid[y0 * gw + x1] * fx;
            let bot = grid[y1 * gw + x0] * (1.0 - fx) + grid[y1 * gw + x1] * fx;
            out.push(top * (1.0 - fy) + bot * fy);
        }
    }
    out
}
