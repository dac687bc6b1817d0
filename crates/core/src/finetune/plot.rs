//! The learning curves as a picture a person can open (`curves.png` beside the bundle): val
//! ROC AUC on the left, train and val loss on the right, one point per epoch, the best epoch
//! marked, the head-only epochs shaded.

use image::{Rgb, RgbImage};

use super::{EpochStats, Phase};
use crate::font;

pub const WIDTH: u32 = 960;
pub const HEIGHT: u32 = 400;

const BG: Rgb<u8> = Rgb([255, 255, 255]);
const AXIS: Rgb<u8> = Rgb([60, 60, 60]);
const GRID: Rgb<u8> = Rgb([225, 225, 225]);
const HEAD_PHASE: Rgb<u8> = Rgb([232, 232, 246]);
pub const AUC: Rgb<u8> = Rgb([31, 119, 180]);
pub const TRAIN_LOSS: Rgb<u8> = Rgb([214, 39, 40]);
pub const VAL_LOSS: Rgb<u8> = Rgb([255, 127, 14]);
const BEST: Rgb<u8> = Rgb([44, 160, 44]);

/// A plotting area in image pixels and the data range it shows.
#[derive(Clone, Copy, Debug)]
pub struct Panel {
    pub x0: u32,
    pub y0: u32,
    pub w: u32,
    pub h: u32,
    pub epochs: usize,
    pub lo: f64,
    pub hi: f64,
}

impl Panel {
    /// The pixel of epoch `e` (1-based) at value `v`.
    pub fn at(&self, e: usize, v: f64) -> (i64, i64) {
        let span = (self.epochs.max(2) - 1) as f64;
        let fx = if self.epochs <= 1 {
            0.5
        } else {
            (e as f64 - 1.0) / span
        };
        let fy = ((v - self.lo) / (self.hi - self.lo)).clamp(0.0, 1.0);
        (
            self.x0 as i64 + (fx * self.w as f64).round() as i64,
            self.y0 as i64 + ((1.0 - fy) * self.h as f64).round() as i64,
        )
    }
}

/// A range with some room around the finite values (`fallback` when there are none).
fn range(values: impl Iterator<Item = f64>, fallback: (f64, f64)) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() {
        return fallback;
    }
    let pad = ((hi - lo) * 0.1).max(0.01);
    (lo - pad, hi + pad)
}

/// The two panels of a history: AUC (range from the data, within 0..1) and losses (from 0).
pub fn panels(history: &[EpochStats]) -> (Panel, Panel) {
    let n = history.len().max(1);
    let (lo, hi) = range(history.iter().map(|e| e.val_auc), (0.5, 1.0));
    let (_, loss_hi) = range(
        history.iter().flat_map(|e| [e.train_loss, e.val_loss]),
        (0.0, 1.0),
    );
    let (w, h) = (WIDTH / 2 - 90, HEIGHT - 110);
    let auc = Panel {
        x0: 60,
        y0: 50,
        w,
        h,
        epochs: n,
        lo: lo.max(0.0),
        hi: hi.min(1.0),
    };
    let loss = Panel {
        x0: WIDTH / 2 + 60,
        lo: 0.0,
        hi: loss_hi,
        ..auc
    };
    (auc, loss)
}

fn put(img: &mut RgbImage, x: i64, y: i64, c: Rgb<u8>) {
    if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
        img.put_pixel(x as u32, y as u32, c);
    }
}

/// A line two pixels thick (Bresenham, doubled downwards).
fn line(img: &mut RgbImage, (x0, y0): (i64, i64), (x1, y1): (i64, i64), c: Rgb<u8>) {
    let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
    let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
    let (mut x, mut y, mut err) = (x0, y0, dx + dy);
    loop {
        put(img, x, y, c);
        put(img, x, y + 1, c);
        if x == x1 && y == y1 {
            break;
        }
        let e2 = 2 * err;
        if e2 >= dy {
            err += dy;
            x += sx;
        }
        if e2 <= dx {
            err += dx;
            y += sy;
        }
    }
}

fn dot(img: &mut RgbImage, (x, y): (i64, i64), r: i64, c: Rgb<u8>) {
    for dy in -r..=r {
        for dx in -r..=r {
            if dx * dx + dy * dy <= r * r {
                put(img, x + dx, y + dy, c);
            }
        }
    }
}

fn text(img: &mut RgbImage, s: &str, x: u32, y: u32, c: Rgb<u8>) {
    font::draw(s, x, y, 1, |px, py| put(img, px as i64, py as i64, c));
}

/// Frame, grid, tick labels, the head-only epochs shaded.
fn frame(img: &mut RgbImage, p: &Panel, title: &str, history: &[EpochStats]) {
    for (i, e) in history.iter().enumerate() {
        if e.phase == Phase::Head {
            let half = p.w as f64 / (2.0 * (p.epochs.max(2) - 1) as f64);
            let (cx, _) = p.at(i + 1, p.lo);
            let (a, b) = ((cx as f64 - half) as i64, (cx as f64 + half) as i64);
            for x in a.max(p.x0 as i64)..=b.min((p.x0 + p.w) as i64) {
                for y in p.y0 as i64..=(p.y0 + p.h) as i64 {
                    put(img, x, y, HEAD_PHASE);
                }
            }
        }
    }
    for k in 0..=4 {
        let v = p.lo + (p.hi - p.lo) * k as f64 / 4.0;
        let (_, y) = p.at(1, v);
        line(img, (p.x0 as i64, y), ((p.x0 + p.w) as i64, y), GRID);
        let label = format!("{v:.2}");
        let x = p.x0.saturating_sub(font::width(&label, 1) + 6);
        text(img, &label, x, (y - 3).max(0) as u32, AXIS);
    }
    let step = p.epochs.div_ceil(10).max(1);
    for e in (1..=p.epochs).step_by(step) {
        let (x, _) = p.at(e, p.lo);
        let label = e.to_string();
        let lx = (x as u32).saturating_sub(font::width(&label, 1) / 2);
        text(img, &label, lx, p.y0 + p.h + 8, AXIS);
    }
    text(
        img,
        "epoch",
        p.x0 + p.w / 2 - font::width("epoch", 1) / 2,
        p.y0 + p.h + 22,
        AXIS,
    );
    text(img, title, p.x0, p.y0 - 30, AXIS);
    let (x0, y0, x1, y1) = (
        p.x0 as i64,
        p.y0 as i64,
        (p.x0 + p.w) as i64,
        (p.y0 + p.h) as i64,
    );
    line(img, (x0, y1), (x1, y1), AXIS);
    line(img, (x0, y0), (x0, y1), AXIS);
}

fn series(img: &mut RgbImage, p: &Panel, values: &[f64], c: Rgb<u8>) {
    let pts: Vec<Option<(i64, i64)>> = values
        .iter()
        .enumerate()
        .map(|(i, v)| v.is_finite().then(|| p.at(i + 1, *v)))
        .collect();
    for w in pts.windows(2) {
        if let [Some(a), Some(b)] = w {
            line(img, *a, *b, c);
        }
    }
    for q in pts.iter().flatten() {
        dot(img, *q, 3, c);
    }
}

fn legend(img: &mut RgbImage, x: u32, y: u32, items: &[(&str, Rgb<u8>)]) {
    let mut x = x;
    for (name, c) in items {
        for dx in 0..14 {
            for dy in 0..3 {
                put(img, (x + dx) as i64, (y + 2 + dy) as i64, *c);
            }
        }
        text(img, name, x + 18, y, AXIS);
        x += 18 + font::width(name, 1) + 16;
    }
}

/// The learning curves of a fine-tune; `best` is the 1-based epoch kept (0: none).
pub fn curves(history: &[EpochStats], best: usize) -> RgbImage {
    let mut img = RgbImage::from_pixel(WIDTH, HEIGHT, BG);
    let (pa, pl) = panels(history);
    frame(&mut img, &pa, "VAL ROC AUC", history);
    frame(&mut img, &pl, "LOSS", history);
    let col = |f: fn(&EpochStats) -> f64| history.iter().map(f).collect::<Vec<_>>();
    if best >= 1 && best <= history.len() {
        let (x, _) = pa.at(best, pa.lo);
        for y in (pa.y0..=pa.y0 + pa.h).step_by(4) {
            put(&mut img, x, y as i64, BEST);
            put(&mut img, x, y as i64 + 1, BEST);
        }
        dot(&mut img, pa.at(best, history[best - 1].val_auc), 6, BEST);
    }
    series(&mut img, &pa, &col(|e| e.val_auc), AUC);
    series(&mut img, &pl, &col(|e| e.train_loss), TRAIN_LOSS);
    series(&mut img, &pl, &col(|e| e.val_loss), VAL_LOSS);
    legend(
        &mut img,
        pa.x0,
        pa.y0 - 16,
        &[("val auc", AUC), ("best", BEST), ("head only", HEAD_PHASE)],
    );
    legend(
        &mut img,
        pl.x0,
        pl.y0 - 16,
        &[("train", TRAIN_LOSS), ("val", VAL_LOSS)],
    );
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(epoch: usize, auc: f64, train: f64, val: f64) -> EpochStats {
        EpochStats {
            epoch,
            phase: if epoch == 1 {
                Phase::Head
            } else {
                Phase::Backbone
            },
            train_loss: train,
            val_loss: val,
            val_auc: auc,
            lr: 1e-4,
            seconds: 1.0,
            train_img_s: 1.0,
        }
    }

    fn near(img: &RgbImage, (x, y): (i64, i64), c: Rgb<u8>) -> bool {
        (-2..=2).any(|dy| {
            (-2..=2).any(|dx| {
                let (px, py) = (x + dx, y + dy);
                px >= 0
                    && py >= 0
                    && (px as u32) < img.width()
                    && (py as u32) < img.height()
                    && *img.get_pixel(px as u32, py as u32) == c
            })
        })
    }

    #[test]
    fn every_epoch_is_drawn_where_its_values_are() {
        let h = vec![
            stats(1, 0.70, 0.65, 0.60),
            stats(2, 0.80, 0.50, 0.55),
            stats(3, 0.86, 0.35, 0.50),
            stats(4, 0.84, 0.20, 0.52),
        ];
        let img = curves(&h, 3);
        assert_eq!(img.dimensions(), (WIDTH, HEIGHT));
        let (pa, pl) = panels(&h);
        for e in &h {
            assert!(near(&img, pa.at(e.epoch, e.val_auc), AUC));
            assert!(near(&img, pl.at(e.epoch, e.train_loss), TRAIN_LOSS));
            assert!(near(&img, pl.at(e.epoch, e.val_loss), VAL_LOSS));
        }
        // The best epoch is marked; a higher AUC is drawn higher.
        let (bx, by) = pa.at(3, 0.86);
        assert_eq!(*img.get_pixel(bx as u32, (by - 5) as u32), BEST);
        assert_ne!(
            *img.get_pixel(pa.at(2, 0.80).0 as u32, (pa.at(2, 0.80).1 - 5) as u32),
            BEST
        );
        assert!(pa.at(3, 0.86).1 < pa.at(1, 0.70).1);
        // Both panels stay inside the picture and do not overlap.
        assert!(pa.x0 + pa.w < pl.x0 && pl.x0 + pl.w < WIDTH && pa.y0 + pa.h < HEIGHT);
    }

    #[test]
    fn one_epoch_and_missing_values_draw_without_panicking() {
        let one = curves(&[stats(1, f64::NAN, 0.7, f64::NAN)], 0);
        assert_eq!(one.dimensions(), (WIDTH, HEIGHT));
        let none = curves(&[], 0);
        assert_eq!(none.dimensions(), (WIDTH, HEIGHT));
        // No data: the default ranges.
        let (pa, pl) = panels(&[]);
        assert_eq!((pa.lo, pa.hi, pl.lo, pl.hi), (0.5, 1.0, 0.0, 1.0));
    }
}
