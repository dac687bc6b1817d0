//! Heatmaps drawn over radiographs: a perceptual colour map (inferno) whose opacity grows with
//! the map's value, so that cold parts leave the radiograph as it is; the peak marked with a
//! cross and the hot box outlined. The headless PNG puts the original and the overlay side by
//! side above a colour bar, the score, the method and the clinical-use warning.

use image::{DynamicImage, Rgb, RgbImage};

use super::{Box2, Heatmap};
use crate::font;

/// Matplotlib's inferno at ten evenly spaced stops (perceptually uniform, readable in gray).
const INFERNO: [[u8; 3]; 10] = [
    [0x00, 0x00, 0x04],
    [0x1b, 0x0c, 0x42],
    [0x4b, 0x0c, 0x6b],
    [0x78, 0x1c, 0x6d],
    [0xa5, 0x2c, 0x60],
    [0xcf, 0x44, 0x46],
    [0xed, 0x69, 0x25],
    [0xfb, 0x9a, 0x06],
    [0xf7, 0xd0, 0x3c],
    [0xfc, 0xff, 0xa4],
];

/// The most a heatmap covers the radiograph (at its peak).
pub const MAX_ALPHA: f32 = 0.65;

/// Longest side of each panel of the headless PNG.
pub const PANEL: u32 = 1024;

/// The colour of a value in [0, 1].
pub fn inferno(v: f32) -> [u8; 3] {
    let f = v.clamp(0.0, 1.0) * (INFERNO.len() - 1) as f32;
    let i = (f.floor() as usize).min(INFERNO.len() - 2);
    let t = f - i as f32;
    let (a, b) = (INFERNO[i], INFERNO[i + 1]);
    [0, 1, 2].map(|k| (a[k] as f32 * (1.0 - t) + b[k] as f32 * t).round() as u8)
}

/// The heatmap blended over `img` (any size: the map covers the whole image), with the peak
/// marked and, when `with_box`, the hot box outlined.
pub fn overlay(img: &RgbImage, hm: &Heatmap, with_box: bool) -> RgbImage {
    let (w, h) = img.dimensions();
    let values = hm.resample(w as usize, h as usize);
    let mut out = img.clone();
    for (i, px) in out.pixels_mut().enumerate() {
        let v = values[i];
        let a = MAX_ALPHA * v;
        let c = inferno(v);
        for (ch, col) in px.0.iter_mut().zip(c) {
            *ch = (*ch as f32 * (1.0 - a) + col as f32 * a).round() as u8;
        }
    }
    let sx = w as f64 / hm.image_w.max(1) as f64;
    let sy = h as f64 / hm.image_h.max(1) as f64;
    if with_box {
        let b = hm.hot_box(0.5);
        let scaled = Box2 {
            x: b.x * sx,
            y: b.y * sy,
            w: b.w * sx,
            h: b.h * sy,
        };
        let t = (w.min(h) / 200).max(1);
        rect(&mut out, scaled, t, Rgb([0, 230, 255]));
    }
    let (px, py) = hm.peak();
    cross(&mut out, (px * sx) as i64, (py * sy) as i64);
    out
}

/// A cross at `(x, y)`: white, outlined in black so that it shows on any background.
pub fn cross(img: &mut RgbImage, x: i64, y: i64) {
    let (w, h) = img.dimensions();
    let arm = (w.min(h) as i64 / 25).max(3);
    let t = (w.min(h) as i64 / 250).max(1);
    let mut put = |px: i64, py: i64, c: Rgb<u8>| {
        if px >= 0 && py >= 0 && (px as u32) < w && (py as u32) < h {
            img.put_pixel(px as u32, py as u32, c);
        }
    };
    for (pad, colour) in [(t + 1, Rgb([0, 0, 0])), (0, Rgb([255, 255, 255]))] {
        for d in -arm - pad..=arm + pad {
            for k in -t - pad..=t + pad {
                put(x + d, y + k, colour);
                put(x + k, y + d, colour);
            }
        }
    }
}

fn rect(img: &mut RgbImage, b: Box2, t: u32, colour: Rgb<u8>) {
    let (w, h) = img.dimensions();
    let x0 = b.x.max(0.0) as u32;
    let y0 = b.y.max(0.0) as u32;
    let x1 = ((b.x + b.w) as u32).min(w.saturating_sub(1));
    let y1 = ((b.y + b.h) as u32).min(h.saturating_sub(1));
    for x in x0..=x1 {
        for k in 0..t {
            for y in [y0 + k, y1.saturating_sub(k)] {
                if y < h {
                    img.put_pixel(x, y, colour);
                }
            }
        }
    }
    for y in y0..=y1 {
        for k in 0..t {
            for x in [x0 + k, x1.saturating_sub(k)] {
                if x < w {
                    img.put_pixel(x, y, colour);
                }
            }
        }
    }
}

/// The headless figure: original and overlay side by side (each at most `PANEL` pixels on
/// its longer side), then a colour bar and the caption lines.
pub fn figure(img: &DynamicImage, hm: &Heatmap, caption: &[String]) -> RgbImage {
    let (w, h) = (img.width().max(1), img.height().max(1));
    let k = (PANEL as f64 / w.max(h) as f64).min(1.0);
    let (pw, ph) = (
        ((w as f64 * k).round() as u32).max(1),
        ((h as f64 * k).round() as u32).max(1),
    );
    let panel = if k < 1.0 {
        img.resize_exact(pw, ph, image::imageops::FilterType::Triangle)
            .to_rgb8()
    } else {
        img.to_rgb8()
    };
    let over = overlay(&panel, hm, true);
    let gap = 8;
    let scale = (pw.max(ph) / 400).clamp(1, 3);
    let line = font::CELL.1 * scale + 4;
    let bar_h = 10 * scale;
    let strip = gap + bar_h + line + line * caption.len() as u32 + gap;
    let fw = (2 * pw + gap).max(
        font::width(
            caption
                .iter()
                .map(|c| c.as_str())
                .max_by_key(|c| c.len())
                .unwrap_or(""),
            scale,
        ) + 2 * gap,
    );
    let mut out = RgbImage::from_pixel(fw, ph + strip, Rgb([16, 16, 16]));
    image::imageops::replace(&mut out, &panel, 0, 0);
    image::imageops::replace(&mut out, &over, (pw + gap) as i64, 0);
    // Colour bar under the overlay, labelled at its ends.
    let bx = gap;
    let by = ph + gap;
    let bw = (fw - 2 * gap).min(256 * scale);
    let low = "LOW";
    let high = "HIGH";
    let lw = font::width(low, scale);
    let inner = bw.saturating_sub(lw + font::width(high, scale) + 2 * gap);
    for x in 0..inner {
        let c = inferno(x as f32 / inner.max(1) as f32);
        for y in 0..bar_h {
            out.put_pixel(bx + lw + gap + x, by + y, Rgb(c));
        }
    }
    let white = Rgb([235, 235, 235]);
    let text = |s: &str, x: u32, y: u32, out: &mut RgbImage| {
        font::draw(s, x, y, scale, |px, py| {
            if px < out.width() && py < out.height() {
                out.put_pixel(px, py, white);
            }
        });
    };
    text(low, bx, by + 1, &mut out);
    text(high, bx + lw + 2 * gap + inner, by + 1, &mut out);
    for (i, c) in caption.iter().enumerate() {
        text(c, gap, by + bar_h + line / 2 + line * i as u32, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explain::Method;

    fn map() -> Heatmap {
        Heatmap {
            method: Method::HeadMap,
            class: 0,
            probs: vec![0.8, 0.2],
            grid_w: 4,
            grid_h: 4,
            values: (0..16).map(|i| if i == 5 { 1.0 } else { 0.0 }).collect(),
            image_w: 400,
            image_h: 200,
        }
    }

    #[test]
    fn inferno_runs_dark_to_light() {
        let lum = |c: [u8; 3]| 0.3 * c[0] as f32 + 0.59 * c[1] as f32 + 0.11 * c[2] as f32;
        let mut last = -1.0;
        for i in 0..=20 {
            let l = lum(inferno(i as f32 / 20.0));
            assert!(l > last, "luminance must rise: {l} after {last}");
            last = l;
        }
        assert_eq!(inferno(-1.0), INFERNO[0]);
        assert_eq!(inferno(2.0), INFERNO[9]);
    }

    #[test]
    fn overlay_tints_the_hot_cell_and_leaves_cold_ones() {
        let img = RgbImage::from_pixel(400, 200, Rgb([100, 100, 100]));
        let out = overlay(&img, &map(), false);
        // Cell (1, 1) covers x 100..200, y 50..100: its centre (150, 75) is the peak (cross).
        assert_eq!(out.get_pixel(150, 75), &Rgb([255, 255, 255]));
        // Near the peak but off the cross: tinted; far away: untouched.
        assert_ne!(out.get_pixel(130, 90), &Rgb([100, 100, 100]));
        assert_eq!(out.get_pixel(390, 190), &Rgb([100, 100, 100]));
    }

    #[test]
    fn figure_holds_both_panels_and_the_caption() {
        let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(400, 200, Rgb([90, 90, 90])));
        let f = figure(
            &img,
            &map(),
            &["FRACTURE P=0.800".into(), "NOT FOR CLINICAL USE".into()],
        );
        assert_eq!(f.width(), 808);
        assert!(f.height() > 200 + 2 * 8);
        assert_eq!(f.get_pixel(390, 190), &Rgb([90, 90, 90]));
    }
}
