//! Checking maps against annotations: the pointing game (is the peak inside a box, padded by
//! 5% of the image's longer side?), the same for the image centre (the baseline a map must
//! beat), and the share of the map's mass inside the boxes (against the boxes' share of the
//! area, what a flat map would give).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{Box2, Heatmap};

/// Padding of the boxes for the pointing game, as a fraction of the image's longer side.
pub const PAD: f64 = 0.05;

/// Boxes by image, from a CSV with a header naming `path,x,y,w,h` (any column order, other
/// columns ignored; several rows per image allowed; pixel coordinates, `x, y` the top-left).
pub fn read_boxes(text: &str) -> Result<HashMap<String, Vec<Box2>>, String> {
    let mut rd = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header = rd
        .headers()
        .map_err(|e| format!("boxes: {e}"))?
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect::<Vec<_>>();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| format!("boxes: no `{name}` column (need path,x,y,w,h)"))
    };
    let (p, x, y, w, h) = (col("path")?, col("x")?, col("y")?, col("w")?, col("h")?);
    let mut out: HashMap<String, Vec<Box2>> = HashMap::new();
    for (i, rec) in rd.records().enumerate() {
        let rec = rec.map_err(|e| format!("boxes line {}: {e}", i + 2))?;
        let num = |c: usize| -> Result<f64, String> {
            rec.get(c)
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|v| v.is_finite())
                .ok_or_else(|| format!("boxes line {}: not a number in column {}", i + 2, c + 1))
        };
        let b = Box2 {
            x: num(x)?,
            y: num(y)?,
            w: num(w)?,
            h: num(h)?,
        };
        if b.w < 0.0 || b.h < 0.0 {
            return Err(format!("boxes line {}: negative width or height", i + 2));
        }
        let path = rec.get(p).unwrap_or_default();
        let path = path.strip_prefix("./").unwrap_or(path).to_string();
        if path.is_empty() {
            return Err(format!("boxes line {}: empty path", i + 2));
        }
        out.entry(path).or_default().push(b);
    }
    Ok(out)
}

/// The boxes of `file` found under `root`: its path relative to `root`, as given, absolute,
/// or (when no other key matches and the name is unique among the keys) its file name.
pub fn boxes_for<'a>(
    boxes: &'a HashMap<String, Vec<Box2>>,
    root: &Path,
    file: &Path,
) -> Option<&'a Vec<Box2>> {
    let rel = file.strip_prefix(root).unwrap_or(file);
    let keys = [
        rel.to_string_lossy().to_string(),
        file.to_string_lossy().to_string(),
        std::path::absolute(file)
            .unwrap_or_else(|_| PathBuf::from(file))
            .to_string_lossy()
            .to_string(),
    ];
    if let Some(b) = keys.iter().find_map(|k| boxes.get(k)) {
        return Some(b);
    }
    let name = file.file_name()?.to_string_lossy().to_string();
    let mut by_name = boxes.iter().filter(|(k, _)| {
        Path::new(k).file_name().map(|n| n.to_string_lossy()) == Some(name.as_str().into())
    });
    let first = by_name.next()?;
    by_name.next().is_none().then_some(first.1)
}

/// One image's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Score {
    pub hit: bool,
    pub centre_hit: bool,
    /// Share of the map's mass inside the (unpadded) boxes.
    pub mass: f64,
    /// Share of the image's area inside the boxes (a flat map's mass).
    pub area: f64,
}

pub fn score(hm: &Heatmap, boxes: &[Box2]) -> Score {
    let pad = PAD * hm.image_w.max(hm.image_h) as f64;
    let padded: Vec<Box2> = boxes.iter().map(|b| b.padded(pad)).collect();
    let inside = |x: f64, y: f64| padded.iter().any(|b| b.contains(x, y));
    let (px, py) = hm.peak();
    let area = area_share(boxes, hm.image_w as f64, hm.image_h as f64);
    Score {
        hit: inside(px, py),
        centre_hit: inside(hm.image_w as f64 / 2.0, hm.image_h as f64 / 2.0),
        mass: hm.mass_inside(boxes),
        area,
    }
}

/// The share of a `w x h` image inside the union of `boxes` (on a 256 x 256 raster).
pub fn area_share(boxes: &[Box2], w: f64, h: f64) -> f64 {
    const N: usize = 256;
    let mut inside = 0usize;
    for j in 0..N {
        for i in 0..N {
            let (x, y) = (
                (i as f64 + 0.5) * w / N as f64,
                (j as f64 + 0.5) * h / N as f64,
            );
            inside += boxes.iter().any(|b| b.contains(x, y)) as usize;
        }
    }
    inside as f64 / (N * N) as f64
}

/// A method's results over a set of images.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    pub images: usize,
    pub hits: usize,
    pub centre_hits: usize,
    pub mean_mass: f64,
    pub mean_area: f64,
}

impl Summary {
    pub fn add(&mut self, s: &Score) {
        let n = self.images as f64;
        self.images += 1;
        self.hits += s.hit as usize;
        self.centre_hits += s.centre_hit as usize;
        self.mean_mass = (self.mean_mass * n + s.mass) / (n + 1.0);
        self.mean_area = (self.mean_area * n + s.area) / (n + 1.0);
    }

    pub fn hit_rate(&self) -> f64 {
        self.hits as f64 / self.images.max(1) as f64
    }

    pub fn centre_rate(&self) -> f64 {
        self.centre_hits as f64 / self.images.max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explain::Method;

    #[test]
    fn boxes_parse_in_any_column_order_with_several_rows_per_image() {
        let b = read_boxes(
            "y,x,path,h,w,note\n10,20,a/b.png,5,6,x\n1,2,a/b.png,3,4,\n0,0,c.png,1,1,\n",
        )
        .unwrap();
        assert_eq!(b["a/b.png"].len(), 2);
        assert_eq!(
            b["a/b.png"][0],
            Box2 {
                x: 20.0,
                y: 10.0,
                w: 6.0,
                h: 5.0
            }
        );
        assert!(read_boxes("path,x,y,w\n").unwrap_err().contains("`h`"));
        assert!(
            read_boxes("path,x,y,w,h\na.png,1,2,x,4\n")
                .unwrap_err()
                .contains("line 2")
        );
        let root = Path::new("/data");
        assert!(boxes_for(&b, root, Path::new("/data/a/b.png")).is_some());
        assert!(boxes_for(&b, root, Path::new("/elsewhere/c.png")).is_some());
        assert!(boxes_for(&b, root, Path::new("/data/zzz.png")).is_none());
    }

    #[test]
    fn pointing_game_pads_by_five_percent_and_counts_the_centre() {
        // Hot cell (3, 0) of a 4 x 4 grid over 400 x 400: peak at (350, 50).
        let mut values = vec![0.0; 16];
        values[3] = 1.0;
        let hm = Heatmap {
            method: Method::HeadMap,
            class: 0,
            probs: vec![0.9, 0.1],
            grid_w: 4,
            grid_h: 4,
            values,
            image_w: 400,
            image_h: 400,
        };
        // A box ending 15 px left of the peak: inside once padded by 20 px.
        let near = Box2 {
            x: 300.0,
            y: 30.0,
            w: 35.0,
            h: 40.0,
        };
        let s = score(&hm, &[near]);
        assert!(s.hit && !s.centre_hit);
        let far = Box2 {
            x: 0.0,
            y: 300.0,
            w: 50.0,
            h: 50.0,
        };
        assert!(!score(&hm, &[far]).hit);
        let centre = Box2 {
            x: 190.0,
            y: 190.0,
            w: 20.0,
            h: 20.0,
        };
        let s = score(&hm, &[far, centre]);
        assert!(!s.hit && s.centre_hit);
        // The mass sits in the top-right quarter; a flat map spreads it by area.
        let q = Box2 {
            x: 200.0,
            y: 0.0,
            w: 200.0,
            h: 200.0,
        };
        let s = score(&hm, &[q]);
        assert!(s.mass > 0.9, "{}", s.mass);
        assert!((s.area - 0.25).abs() < 0.02, "{}", s.area);
        let mut sum = Summary::default();
        sum.add(&s);
        sum.add(&score(&hm, &[far]));
        assert_eq!((sum.images, sum.hits), (2, 1));
        assert!((sum.hit_rate() - 0.5).abs() < 1e-12);
    }
}
