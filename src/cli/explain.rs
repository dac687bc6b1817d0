//! `osteoai explain PATH... | DIR`: where the model looks. One row per image and method (the
//! class, its probability, the map's peak and hot box in the image's pixels) and an overlay PNG
//! per image (original and overlay side by side, colour bar, score, method). With `--boxes`
//! the maps are checked against annotations instead (the pointing game, per method).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use clap::{Args, ValueEnum};
use osteoai_core::engine::Engine;
use osteoai_core::explain::pointing::{self, Summary};
use osteoai_core::explain::{Explainer, HeadKind, Heatmap, Method, overlay};
use rayon::prelude::*;

use super::classify::stop_on_signals;
use super::output::{csv_field, emit, table};
use super::{ModelArgs, model_dir, select_device};
use osteoai_core::shard::scope;

#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// Images or folders (searched recursively).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Methods, comma separated: grad-cam, cam (linear heads: fine-tuned models), shap-cam
    /// (binary LightGBM heads), occlusion, head-map, feature-occlusion (any), or `all` the
    /// model supports [default: grad-cam for linear heads, occlusion otherwise].
    #[arg(long)]
    pub method: Option<String>,
    /// The class to explain [default: the positive class].
    #[arg(long)]
    pub class: Option<String>,
    /// Folder for the overlay PNGs (created; files named after the image's path under its
    /// root, then the method) [default: ./osteoai-explain].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write no overlay PNGs (the table only).
    #[arg(long)]
    pub no_images: bool,
    /// Output format of the rows.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write the rows (or the pointing-game summary) to this file instead of stdout.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Check the maps against boxes (CSV `path,x,y,w,h` in pixels, several rows per image
    /// allowed; paths relative to the folder given, absolute, or unique file names): prints
    /// per method the pointing-game hit rate (peak inside a box padded by 5% of the longer
    /// side), the image-centre baseline and the share of the map's mass inside the boxes.
    /// Images without boxes are skipped.
    #[arg(long, value_name = "FILE")]
    pub boxes: Option<PathBuf>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

const HEADER: [&str; 13] = [
    "path", "class", "p", "method", "peak_x", "peak_y", "box_x", "box_y", "box_w", "box_h", "ms",
    "overlay", "error",
];

pub fn run(a: ExplainArgs) -> Result<i32, String> {
    let dir = model_dir(&a.model.model)?;
    let device = select_device(a.model.device)?;
    let engine = Engine::load(&dir, device).map_err(|e| e.to_string())?;
    let m = engine.manifest().clone();
    let kind = HeadKind::of(&engine.bundle.head);
    let methods = match a.method.as_deref() {
        None => vec![Method::default_for(kind)],
        Some("all") => Method::supported(kind),
        Some(s) => s
            .split(',')
            .map(Method::parse)
            .collect::<Result<Vec<_>, _>>()?,
    };
    let class = match &a.class {
        None => None,
        Some(c) => Some(m.classes.class_of_folder(c).ok_or_else(|| {
            format!(
                "no class {c:?} (this model's: {})",
                m.classes.names.join(", ")
            )
        })?),
    };
    for &method in &methods {
        Explainer {
            engine: &engine,
            method,
            class,
        }
        .check()?;
    }
    let boxes = match &a.boxes {
        Some(p) => Some(pointing::read_boxes(
            &std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?,
        )?),
        None => None,
    };
    let sc = scope(&a.paths, &m.classes, None)?;
    for i in &sc.issues {
        eprintln!("osteoai: {}: {}", i.path.display(), i.message);
    }
    let out_dir = (!a.no_images && boxes.is_none()).then(|| {
        a.out
            .clone()
            .unwrap_or_else(|| PathBuf::from("osteoai-explain"))
    });
    if let Some(d) = &out_dir {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
        eprintln!("osteoai: overlays go to {}", d.display());
    }
    let cancel = Arc::new(AtomicBool::new(false));
    let _ = stop_on_signals(&cancel);
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut summaries: Vec<(Method, Summary, f64)> = methods
        .iter()
        .map(|m| (*m, Summary::default(), 0.0))
        .collect();
    let mut failed = 0usize;
    // A few images at a time, one per thread (each image's network then runs on its thread):
    // rows stay in scan order, a stop takes effect between groups.
    let group = 2 * rayon::current_num_threads().max(1);
    let work: Vec<usize> = (0..sc.entries.len()).collect();
    for (gi, idxs) in work.chunks(group).enumerate() {
        if cancel.load(Ordering::Relaxed) {
            eprintln!("osteoai: stopped after {} images", gi * group);
            break;
        }
        let done: Vec<Vec<Outcome>> = idxs
            .par_iter()
            .map(|&k| {
                let path = &sc.entries[k].path;
                let theirs = match &boxes {
                    Some(b) => match pointing::boxes_for(b, &root_of(&sc.roots, path), path) {
                        Some(v) => Some(v.clone()),
                        None => return Vec::new(),
                    },
                    None => None,
                };
                let t = Instant::now();
                let loaded = load(&engine, path);
                let load_ms = t.elapsed().as_secs_f64() * 1e3;
                methods
                    .iter()
                    .enumerate()
                    .map(|(mi, &method)| {
                        let (input, decoded) = match &loaded {
                            Ok(x) => x,
                            Err(e) => return Outcome::failed(path, method, e.clone()),
                        };
                        let ex = Explainer {
                            engine: &engine,
                            method,
                            class,
                        };
                        let t = Instant::now();
                        let dims = (decoded.image.width(), decoded.image.height());
                        let hm = match ex.input(input, dims) {
                            Ok(hm) => hm,
                            Err(e) => return Outcome::failed(path, method, e),
                        };
                        let ms = load_ms + t.elapsed().as_secs_f64() * 1e3;
                        let score = theirs.as_ref().map(|b| pointing::score(&hm, b));
                        let png = match &out_dir {
                            Some(d) => {
                                let file = overlay_path(d, &sc.rels[k], method);
                                let caption = caption(&hm, &m.classes.names, engine.bundle.name());
                                let fig = overlay::figure(&decoded.image, &hm, &caption);
                                match save_png(&file, &fig) {
                                    Ok(()) => file.display().to_string(),
                                    Err(err) => {
                                        eprintln!("osteoai: {err}");
                                        String::new()
                                    }
                                }
                            }
                            None => String::new(),
                        };
                        Outcome {
                            method: mi,
                            row: row(path, &hm, &m.classes.names, ms, png),
                            score,
                            ms,
                            error: None,
                        }
                    })
                    .collect()
            })
            .collect();
        for o in done.into_iter().flatten() {
            if let Some(e) = &o.error {
                failed += 1;
                eprintln!("osteoai: {}: {e}", o.row[0]);
            }
            if let Some(s) = &o.score {
                summaries[o.method].1.add(s);
                summaries[o.method].2 += o.ms;
            }
            rows.push(o.row);
        }
    }
    let text = match &boxes {
        Some(_) => summary_text(&summaries, a.format),
        None => rows_text(&rows, a.format),
    };
    emit(a.output.as_deref(), &text)?;
    if boxes.is_some() && summaries.iter().all(|s| s.1.images == 0) {
        return Err("no image under the given paths has a box in the boxes file".into());
    }
    Ok(if failed > 0 { 1 } else { 0 })
}

/// One image and method: its row, and its pointing-game score when it has boxes.
struct Outcome {
    method: usize,
    row: Vec<String>,
    score: Option<pointing::Score>,
    ms: f64,
    error: Option<String>,
}

impl Outcome {
    fn failed(path: &Path, method: Method, err: String) -> Outcome {
        let mut row = vec![String::new(); HEADER.len()];
        row[0] = path.display().to_string();
        row[3] = method.name().into();
        row[12] = err.clone();
        Outcome {
            method: 0,
            row,
            score: None,
            ms: 0.0,
            error: Some(err),
        }
    }
}

/// The model input (as `classify` makes it) and the decoded image (for sizes and overlays).
fn load(
    engine: &Engine,
    path: &Path,
) -> Result<(Vec<f32>, osteoai_core::decode::imaging::Decoded), String> {
    let bytes = osteoai_core::decode::imaging::read_limited(path).map_err(|e| e.0)?;
    let decoded = osteoai_core::decode::imaging::decode_full(&bytes, 0).map_err(|e| e.0)?;
    let input = engine
        .backbone
        .preprocess
        .load_bytes(&bytes)
        .map_err(|e| e.0)?;
    Ok((input, decoded))
}

fn root_of(roots: &[PathBuf], path: &Path) -> PathBuf {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    roots
        .iter()
        .filter(|r| abs.starts_with(r))
        .max_by_key(|r| r.as_os_str().len())
        .cloned()
        .unwrap_or_default()
}

/// `OUT/<path under its root>.<method>.png` (a file given alone: its name).
fn overlay_path(out: &Path, rel: &Path, method: Method) -> PathBuf {
    let rel = if rel.as_os_str().is_empty() || rel.is_absolute() {
        PathBuf::from(rel.file_name().unwrap_or_default())
    } else {
        rel.to_path_buf()
    };
    let mut name = rel.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.png", method.name()));
    out.join(rel.with_file_name(name))
}

fn save_png(path: &Path, img: &image::RgbImage) -> Result<(), String> {
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .map_err(|e| format!("{}: cannot encode: {e}", path.display()))?;
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    osteoai_core::train::atomic_write(path, &bytes)
}

/// The lines under an overlay: the class and score, the method, the warning.
pub fn caption(hm: &Heatmap, names: &[String], model: &str) -> Vec<String> {
    let name = names.get(hm.class).map(String::as_str).unwrap_or("?");
    let p = hm.probs.get(hm.class).copied().unwrap_or(f64::NAN);
    let b = hm.hot_box(0.5);
    let (px, py) = hm.peak();
    vec![
        format!("{name} p={p:.3}  method {}  model {model}", hm.method),
        format!(
            "peak ({px:.0}, {py:.0})  box {:.0},{:.0} {:.0}x{:.0}",
            b.x, b.y, b.w, b.h
        ),
        "not for clinical use".into(),
    ]
}

fn row(path: &Path, hm: &Heatmap, names: &[String], ms: f64, png: String) -> Vec<String> {
    let (px, py) = hm.peak();
    let b = hm.hot_box(0.5);
    vec![
        path.display().to_string(),
        names.get(hm.class).cloned().unwrap_or_default(),
        format!("{:.4}", hm.probs.get(hm.class).copied().unwrap_or(f64::NAN)),
        hm.method.name().into(),
        format!("{px:.1}"),
        format!("{py:.1}"),
        format!("{:.1}", b.x),
        format!("{:.1}", b.y),
        format!("{:.1}", b.w),
        format!("{:.1}", b.h),
        format!("{ms:.0}"),
        png,
        String::new(),
    ]
}

fn rows_text(rows: &[Vec<String>], format: Format) -> String {
    match format {
        Format::Table => table(&HEADER, rows),
        Format::Csv => {
            let mut s = HEADER.join(",") + "\n";
            for r in rows {
                s += &r.iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(",");
                s.push('\n');
            }
            s
        }
        Format::Json => {
            let mut s = String::new();
            for r in rows {
                let mut obj = serde_json::Map::new();
                for (h, v) in HEADER.iter().zip(r) {
                    let val = match v.parse::<f64>() {
                        Ok(x) if *h != "path" && *h != "class" => serde_json::json!(x),
                        _ if v.is_empty() => serde_json::Value::Null,
                        _ => serde_json::json!(v),
                    };
                    obj.insert(h.to_string(), val);
                }
                s += &serde_json::Value::Object(obj).to_string();
                s.push('\n');
            }
            s
        }
    }
}

fn summary_text(s: &[(Method, Summary, f64)], format: Format) -> String {
    let header = [
        "method",
        "images",
        "pointing",
        "centre",
        "mass_in_boxes",
        "area_of_boxes",
        "ms_per_image",
    ];
    let rows: Vec<Vec<String>> = s
        .iter()
        .map(|(m, x, ms)| {
            vec![
                m.name().to_string(),
                x.images.to_string(),
                format!("{:.3}", x.hit_rate()),
                format!("{:.3}", x.centre_rate()),
                format!("{:.3}", x.mean_mass),
                format!("{:.3}", x.mean_area),
                format!("{:.0}", ms / x.images.max(1) as f64),
            ]
        })
        .collect();
    match format {
        Format::Table => table(&header, &rows),
        Format::Csv => {
            let mut t = header.join(",") + "\n";
            for r in rows {
                t += &(r.join(",") + "\n");
            }
            t
        }
        Format::Json => {
            let mut t = String::new();
            for (m, x, ms) in s {
                t += &serde_json::json!({
                    "method": m.name(),
                    "images": x.images,
                    "pointing": x.hit_rate(),
                    "centre": x.centre_rate(),
                    "mass_in_boxes": x.mean_mass,
                    "area_of_boxes": x.mean_area,
                    "ms_per_image": ms / x.images.max(1) as f64,
                })
                .to_string();
                t.push('\n');
            }
            t
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_files_keep_the_folder_structure() {
        let out = Path::new("/o");
        assert_eq!(
            overlay_path(out, Path::new("train/fracture/a.jpg"), Method::HeadMap),
            PathBuf::from("/o/train/fracture/a.jpg.head-map.png")
        );
        assert_eq!(
            overlay_path(out, Path::new("/abs/b.png"), Method::Cam),
            PathBuf::from("/o/b.png.cam.png")
        );
    }
}
