//! `osteoai bench-ui`: the dashboard's responsiveness on a large generated folder, headless
//! (ratatui's TestBackend at 160x48, halfblocks): time to the first frame, key-to-frame latency
//! while a whole-folder classification runs, and peak memory. A benchmark, not a test.

use std::path::Path;
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui_image::picker::Picker;

use super::event::Event;
use super::theme::Theme;
use super::{LoopStats, event_loop, start_session};

pub use crate::options::BenchUiArgs;

/// Writes `n` JPEG radiographs of `side` x `side` (64 distinct drawings, cycled) into
/// fracture/ and nofracture/ under train/ val/ test/.
fn generate(dir: &Path, n: usize, side: u32) -> std::io::Result<()> {
    let tiles: Vec<(bool, Vec<u8>)> = (0..64u64)
        .map(|s| {
            let frac = s % 2 == 0;
            let img = image::DynamicImage::ImageLuma8(osteoai_core::fixtures::radiograph(
                1000 + s,
                frac,
                side,
                side,
            ));
            let mut v = Vec::new();
            img.write_to(&mut std::io::Cursor::new(&mut v), image::ImageFormat::Jpeg)
                .expect("jpeg");
            (frac, v)
        })
        .collect();
    let splits = ["train", "val", "test"];
    for i in 0..n {
        let (frac, bytes) = &tiles[i % tiles.len()];
        let sub = format!(
            "{}/{}",
            splits[i % 3],
            if *frac { "fracture" } else { "nofracture" }
        );
        let d = dir.join(sub);
        if i < 6 {
            std::fs::create_dir_all(&d)?;
        }
        std::fs::write(d.join(format!("img_{i:06}.jpg")), bytes)?;
    }
    std::fs::write(dir.join(".complete"), format!("{n} {side}"))
}

fn key(c: char) -> Event {
    Event::Key(
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE),
        Instant::now(),
    )
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

pub fn run(a: BenchUiArgs) -> Result<i32, String> {
    // As the dashboard itself.
    crate::options::return_memory_at_once();
    if std::fs::read_to_string(a.dir.join(".complete"))
        .ok()
        .as_deref()
        .map(str::trim)
        != Some(format!("{} {}", a.images, a.side).as_str())
    {
        let t = Instant::now();
        let _ = std::fs::remove_dir_all(&a.dir);
        generate(&a.dir, a.images, a.side)
            .map_err(|e| format!("cannot generate {}: {e}", a.dir.display()))?;
        eprintln!(
            "generated {} images in {} in {:.1} s",
            a.images,
            a.dir.display(),
            t.elapsed().as_secs_f64()
        );
    }
    // Scores must be computed, not read from an earlier run's cache.
    let cache = std::env::temp_dir().join(format!("osteoai-bench-ui-cache-{}", std::process::id()));
    // SAFETY: single-threaded at this point; no other thread reads the environment yet.
    unsafe { std::env::set_var("XDG_CACHE_HOME", &cache) };
    let started = Instant::now();
    let mut s = start_session(&a.dir, &a.model.model, a.model.device, Picker::halfblocks());
    let mut terminal = Terminal::new(TestBackend::new(160, 48)).map_err(|e| e.to_string())?;
    let tx = s.tx.clone();
    let seconds = a.seconds;
    // Keys: wait for the model, classify all, then move up and down every 25 ms, then quit.
    let injector = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(3));
        let _ = tx.send(key('a'));
        let end = Instant::now() + Duration::from_secs(seconds);
        let mut down = true;
        while Instant::now() < end {
            std::thread::sleep(Duration::from_millis(25));
            let _ = tx.send(key(if down { 'j' } else { 'k' }));
            down = !down;
        }
        let _ = tx.send(key('q'));
    });
    let mut stats = LoopStats::default();
    event_loop(&mut terminal, &mut s, Theme::new(true), started, &mut stats)?;
    let _ = injector.join();
    let scanned = s.app.items.len();
    let classified = s.app.items.iter().filter(|i| i.score.is_some()).count();
    s.images.stop();
    let _ = std::fs::remove_dir_all(&cache);
    let mut lat = stats.key_latencies.clone();
    lat.sort();
    let peak = crate::options::peak_rss_mib();
    println!(
        "osteoai bench-ui — {} ({} images found), TestBackend 160x48, {}",
        a.dir.display(),
        scanned,
        s.app
            .model
            .as_ref()
            .map(|m| m.device.as_str())
            .unwrap_or("no model")
    );
    println!(
        "time to first frame      {:.1} ms",
        stats.first_frame.unwrap_or_default().as_secs_f64() * 1000.0
    );
    println!(
        "key-to-frame latency     p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms  ({} keys while classifying; {} images scored meanwhile)",
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        pct(&lat, 1.0),
        lat.len(),
        classified
    );
    println!("frames drawn             {}", stats.frames);
    match (s.app.job.as_ref(), s.app.last_run) {
        (Some(j), _) => println!(
            "classification           {}/{} when the keys stopped, {} img/s",
            j.done,
            j.total,
            s.app
                .rate()
                .map(|r| format!("{r:.1}"))
                .unwrap_or("-".into())
        ),
        (None, Some((done, total, rate))) => println!(
            "last run                 {done}/{total}, {} img/s (the status bar's figure)",
            rate.map(|r| format!("{r:.1}")).unwrap_or("cached".into())
        ),
        (None, None) => println!("classification           not started"),
    }
    println!(
        "peak RSS                 {}",
        peak.map(|p| format!("{p:.0} MiB"))
            .unwrap_or_else(|| "unknown".into())
    );
    Ok(0)
}
