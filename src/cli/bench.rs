//! `osteoai bench`: throughput of each stage and end to end, measured in one process, with
//! peak memory. Timings are medians over `--repeat` runs after one warm-up.

use crate::options::peak_rss_mib;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use clap::Args;
use osteoai_core::engine::Engine;
use osteoai_core::model::effnet::FeatureSpec;
use osteoai_core::scan::scan;
use rayon::prelude::*;

use super::output::table;
use super::{ModelArgs, model_dir, select_device};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Folder of images [default: fixtures/demo].
    #[arg(default_value = "fixtures/demo")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Backbone batch sizes to time.
    #[arg(long, value_delimiter = ',', default_values_t = vec![1usize, 8, 16])]
    pub batch_sizes: Vec<usize>,
    /// Use at most this many images.
    #[arg(long, default_value_t = 64)]
    pub limit: usize,
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Also print one JSON line with every figure.
    #[arg(long)]
    pub json: bool,
    /// Time fine-tuning steps instead (forward + backward + AdamW, the batch sizes given),
    /// reported as `train_img_s` (and `train_img_s_<batch>` per batch size).
    #[arg(long)]
    pub train: bool,
    /// With --train: blocks kept frozen (0 trains every layer, as the PyTorch peer does).
    #[arg(long, default_value_t = 0)]
    pub frozen_blocks: usize,
    /// With --train: timed steps per batch size.
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// With --train: batch norms `frozen` (folded) or in `train` mode.
    #[arg(long, value_name = "MODE", default_value = "frozen", value_parser = osteoai_core::finetune::BatchNormMode::parse)]
    pub batch_norm: osteoai_core::finetune::BatchNormMode,
}

/// `bench --train`: training images per second per batch size, one JSON line with --json.
fn run_train(a: &BenchArgs, engine: &Engine, inputs: &[Vec<f32>]) -> Result<i32, String> {
    let _memory = crate::options::keep_freed_memory();
    let size = engine.backbone.preprocess.size as usize;
    let mut json = serde_json::Map::new();
    let mut first = None;
    for &bs in &a.batch_sizes {
        let v = osteoai_core::finetune::bench::train_img_s(
            engine.backbone.net.clone(),
            &engine.backbone.device,
            inputs,
            osteoai_core::finetune::bench::Steps {
                size,
                batch: bs.max(1),
                frozen: a.frozen_blocks,
                steps: a.steps.max(1),
                batch_norm: a.batch_norm,
            },
        )?;
        println!(
            "train batch {bs}: {v:.2} img/s (forward + backward + AdamW, {} of {} blocks frozen, batch norms {}, {size} px, {})",
            a.frozen_blocks,
            engine.backbone.net.block_count(),
            a.batch_norm.name(),
            engine.backbone.device.description
        );
        first.get_or_insert(v);
        json.insert(format!("train_img_s_{bs}"), v.into());
    }
    let peak = peak_rss_mib();
    println!(
        "peak RSS {}",
        peak.map(|p| format!("{p:.0} MiB"))
            .unwrap_or_else(|| "unknown".into())
    );
    if a.json {
        json.insert("train_img_s".into(), first.into());
        json.insert("frozen_blocks".into(), a.frozen_blocks.into());
        json.insert("batch_norm".into(), a.batch_norm.name().into());
        json.insert("size".into(), size.into());
        json.insert(
            "device".into(),
            engine.backbone.device.description.clone().into(),
        );
        json.insert("peak_rss_mib".into(), peak.into());
        println!("{}", serde_json::Value::Object(json));
    }
    Ok(0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn timed(repeat: usize, mut f: impl FnMut()) -> f64 {
    f();
    median(
        (0..repeat.max(1))
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

pub fn run(a: BenchArgs) -> Result<i32, String> {
    let device = select_device(a.model.device)?;
    let mut engine = Engine::load(&model_dir(&a.model.model)?, device)?;
    let m = engine.manifest().clone();
    let mut paths: Vec<PathBuf> = scan(&a.dir, &m.classes)
        .entries
        .into_iter()
        .map(|e| e.path)
        .collect();
    paths.truncate(a.limit);
    if paths.is_empty() {
        return Err(format!("no images under {}", a.dir.display()));
    }
    let n = paths.len();
    let pre = m.preprocess.clone();
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut json = serde_json::Map::new();
    let mut add = |stage: &str,
                   items: usize,
                   secs: f64,
                   json: &mut serde_json::Map<String, serde_json::Value>| {
        rows.push(vec![
            stage.to_string(),
            items.to_string(),
            format!("{secs:.3}"),
            format!("{:.1}", items as f64 / secs),
        ]);
        json.insert(
            stage.to_string(),
            serde_json::json!({"items": items, "seconds": secs, "per_second": items as f64 / secs}),
        );
    };

    let mut inputs: Vec<Vec<f32>> = Vec::new();
    let t = timed(a.repeat, || {
        inputs = paths.par_iter().filter_map(|p| pre.load(p).ok()).collect()
    });
    add("decode+preprocess", n, t, &mut json);
    let ok = inputs.len();
    if ok == 0 {
        return Err("no image decoded".into());
    }
    if a.train {
        return run_train(&a, &engine, &inputs);
    }
    // The backbone alone with the classic recipe (one forward, global average pool of the head):
    // the same work as the PyTorch peer (`../shared/bench/peer_effnet.py`).
    let recipe = engine.backbone.features.clone();
    let mut specs: Vec<(String, FeatureSpec, Vec<usize>)> = vec![(
        "backbone classic".into(),
        FeatureSpec::classic(),
        a.batch_sizes.clone(),
    )];
    if recipe != FeatureSpec::classic() {
        let flip = if recipe.flip_average {
            ", flip-averaged"
        } else {
            ""
        };
        let largest = a.batch_sizes.iter().copied().max().unwrap_or(16);
        specs.push((
            format!("backbone model recipe ({} taps{flip})", recipe.taps.len()),
            recipe.clone(),
            vec![largest],
        ));
    }
    for (label, spec, sizes) in specs {
        engine.backbone.features = spec;
        for bs in sizes {
            let bs = bs.max(1);
            // Fresh input tensors each time (some devices cache repeated identical work).
            let mut k = 0usize;
            let batches = ok.div_ceil(bs);
            let t = timed(a.repeat, || {
                for b in 0..batches {
                    let take: Vec<f32> = (0..bs)
                        .flat_map(|j| inputs[(b * bs + j + k) % ok].iter().copied())
                        .collect();
                    engine
                        .backbone
                        .features_of_inputs(take, bs)
                        .expect("backbone runs");
                }
                k += 1;
            });
            add(&format!("{label} batch {bs}"), batches * bs, t, &mut json);
        }
    }
    engine.backbone.features = recipe;
    let feats = engine.backbone.features_of_inputs(
        inputs.iter().take(16).flatten().copied().collect(),
        ok.min(16),
    )?;
    let reps = 64;
    let t = timed(a.repeat, || {
        for _ in 0..reps {
            engine.bundle.head.predict(&feats).expect("head runs");
        }
    });
    add("head (LightGBM)", reps * ok.min(16), t, &mut json);
    engine.backbone.batch_size = *a.batch_sizes.iter().max().unwrap_or(&16);
    let never = AtomicBool::new(false);
    let t = timed(a.repeat, || {
        engine.classify_stream(&paths, &never, |_, _| {});
    });
    add(
        &format!("end to end (batch {})", engine.backbone.batch_size),
        n,
        t,
        &mut json,
    );
    println!(
        "osteoai bench — {} images from {}, device {}, model {}",
        n,
        a.dir.display(),
        engine.backbone.device.description,
        engine.bundle.name()
    );
    print!(
        "{}",
        table(&["stage", "items", "seconds", "items/s"], &rows)
    );
    let peak = peak_rss_mib();
    println!(
        "peak RSS {}",
        peak.map(|p| format!("{p:.0} MiB"))
            .unwrap_or_else(|| "unknown".into())
    );
    if a.json {
        json.insert(
            "device".into(),
            engine.backbone.device.description.clone().into(),
        );
        json.insert("images".into(), n.into());
        json.insert("peak_rss_mib".into(), peak.into());
        println!("{}", serde_json::Value::Object(json));
    }
    Ok(0)
}
