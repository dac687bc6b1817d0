//! `osteoai inspect`: what each file is and how it decodes — DICOM technical attributes
//! (transfer syntax, bits, photometric interpretation, windows), the window the rule scores
//! with, decode time — with no model. Patient data only with `--show-phi`.

use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, ValueEnum};
use osteoai_core::decode::imaging::{decode_full, read_limited};
use osteoai_core::labels::ClassSpec;
use osteoai_core::scan::scan_all;

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum InspectFormat {
    Table,
    Jsonl,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Files or folders (folders are scanned as everywhere else).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = InspectFormat::Table)]
    pub format: InspectFormat,
    /// Decode each file this many times and report the median time (decode speed).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub repeat: usize,
    /// Also print patient-identifying DICOM attributes. Off by default.
    #[arg(long)]
    pub show_phi: bool,
}

#[derive(serde::Serialize)]
struct Row {
    path: String,
    kind: &'static str,
    width: Option<u32>,
    height: Option<u32>,
    /// The window the rule scores with (None for 8-bit images).
    window: Option<String>,
    /// The file's own windows and LUTs, in the order the dashboard offers them.
    file_windows: Vec<String>,
    dicom: Option<osteoai_core::decode::dicom::Meta>,
    decode_ms: Option<f64>,
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phi: Option<Vec<(String, String)>>,
}

pub fn run(a: InspectArgs) -> Result<i32, String> {
    let report = scan_all(&a.paths, &ClassSpec::fracture_default());
    for i in &report.issues {
        eprintln!("osteoai: {}: {}", i.path.display(), i.message);
    }
    let mut failed = 0;
    for e in &report.entries {
        let row = inspect(&e.path, a.repeat.max(1), a.show_phi);
        failed += row.error.is_some() as usize;
        match a.format {
            InspectFormat::Jsonl => {
                println!(
                    "{}",
                    serde_json::to_string(&row).map_err(|e| e.to_string())?
                )
            }
            InspectFormat::Table => print_table(&row),
        }
    }
    eprintln!(
        "osteoai: {} file(s), {failed} unreadable",
        report.entries.len()
    );
    Ok(if failed > 0 { 1 } else { 0 })
}

fn inspect(path: &std::path::Path, repeat: usize, show_phi: bool) -> Row {
    let mut row = Row {
        path: path.display().to_string(),
        kind: "image",
        width: None,
        height: None,
        window: None,
        file_windows: Vec::new(),
        dicom: None,
        decode_ms: None,
        error: None,
        phi: None,
    };
    let bytes = match read_limited(path) {
        Ok(b) => b,
        Err(e) => {
            row.error = Some(e.0);
            return row;
        }
    };
    if osteoai_core::decode::dicom::is_dicom(&bytes) {
        row.kind = "dicom";
        if show_phi {
            row.phi = Some(
                osteoai_core::decode::dicom::phi(&bytes)
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
            );
        }
    }
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..repeat {
        let t = Instant::now();
        let r = decode_full(&bytes, 0);
        times.push(t.elapsed().as_secs_f64() * 1e3);
        last = Some(r);
    }
    times.sort_by(f64::total_cmp);
    match last {
        Some(Ok(d)) => {
            row.decode_ms = Some(times[times.len() / 2]);
            row.width = Some(d.image.width());
            row.height = Some(d.image.height());
            if let Some(g) = &d.deep {
                row.window = Some(g.describe(&g.default_view()));
                row.file_windows = g.vois.iter().map(|v| v.describe()).collect();
                if row.kind == "image" {
                    row.kind = "image (16-bit gray)";
                }
            }
            if let Some(info) = d.dicom {
                row.dicom = Some(info.meta);
            }
        }
        Some(Err(e)) => {
            row.error = Some(e.0);
            // The header alone, when the pixels are what failed.
            if row.kind == "dicom" {
                row.dicom = osteoai_core::decode::dicom::read_meta(&bytes).ok();
            }
        }
        None => {}
    }
    row
}

fn print_table(r: &Row) {
    println!("{}", r.path);
    let line = |k: &str, v: String| println!("  {k:<16} {v}");
    if let Some(e) = &r.error {
        line("error", e.clone());
    }
    line("kind", r.kind.into());
    if let (Some(w), Some(h)) = (r.width, r.height) {
        line("size", format!("{w} × {h}"));
    }
    if let Some(m) = &r.dicom {
        for (k, v) in m.rows_for_panel() {
            if k != "Size" {
                line(k, v);
            }
        }
    }
    if let Some(w) = &r.window {
        line("scored window", w.clone());
    }
    if r.file_windows.len() > 1 {
        line("file windows", r.file_windows.join(" | "));
    }
    if let Some(ms) = r.decode_ms {
        line("decode", format!("{ms:.1} ms"));
    }
    if let Some(phi) = &r.phi {
        for (k, v) in phi {
            line(k, v.clone());
        }
    }
}
