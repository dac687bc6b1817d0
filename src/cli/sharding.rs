//! `--shard I/N`, `--shards N` and `--no-shard`: the options every command that runs the CNN
//! over a folder shares, resolved against the scheduler's environment (see `osteoai_core::shard`).

use clap::Args;
use osteoai_core::shard::{self, Shard};

#[derive(Args, Debug, Clone, Default)]
pub struct ShardArgs {
    /// Only shard I of N (I from 0): the images whose path relative to the folder hashes to I,
    /// whatever the scan order. Also from SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// The shard count when the index comes from the scheduler: JOB_COMPLETION_INDEX
    /// (Kubernetes Indexed Job) or SLURM_ARRAY_TASK_ID.
    #[arg(long, value_name = "N", conflicts_with = "no_shard")]
    pub shards: Option<usize>,
    /// Score everything even inside a Slurm job array (ignore SLURM_ARRAY_*).
    #[arg(long, conflicts_with = "shard")]
    pub no_shard: bool,
}

impl ShardArgs {
    /// The shard to run, said on stderr with where it came from.
    pub fn resolve(&self) -> Result<Option<Shard>, String> {
        if self.no_shard {
            return Ok(None);
        }
        let r = shard::resolve(self.shard, self.shards, &shard::process_env)?;
        if let Some(r) = &r {
            eprintln!("osteoai: shard {} (from {})", r.shard, r.source);
            tracing::info!(shard = %r.shard, source = r.source, "shard");
        }
        Ok(r.map(|r| r.shard))
    }
}

/// `audit --shard` and `fit --shard`: this shard's signatures and embeddings into the caches
/// (shared through `OSTEOAI_CACHE` on a cluster); the whole-folder step runs afterwards once.
pub fn precompute_shard(
    command: &str,
    dir: &std::path::Path,
    model: &super::ModelArgs,
    no_model: bool,
    shard: Shard,
) -> Result<i32, String> {
    use osteoai_core::audit::precompute::precompute_default;
    use std::sync::atomic::AtomicBool;
    let engine = if no_model {
        None
    } else {
        let device = super::select_device(model.device)?;
        Some(osteoai_core::engine::Engine::load(
            &super::model_dir(&model.model)?,
            device,
        )?)
    };
    let classes = match &engine {
        Some(e) => e.manifest().classes.clone(),
        None => osteoai_core::labels::ClassSpec::fracture_default(),
    };
    let sc = osteoai_core::shard::scope(&[dir.to_path_buf()], &classes, Some(shard))?;
    let paths: Vec<_> = sc.entries.iter().map(|e| e.path.clone()).collect();
    let bar = std::sync::Mutex::new(super::progress::Progress::new("signatures", paths.len()));
    let never = AtomicBool::new(false);
    let t = std::time::Instant::now();
    let r = precompute_default(
        &paths,
        engine.as_ref().map(|e| &e.backbone),
        &never,
        &|_, d, _| {
            if let Ok(mut b) = bar.lock() {
                b.set(d)
            }
        },
    );
    if let Ok(mut b) = bar.lock() {
        b.finish();
    }
    for (p, e) in &r.failed {
        eprintln!("osteoai: {}: {e}", p.display());
    }
    eprintln!(
        "osteoai: shard {shard}: {} of {} images signed, {} embedded in {:.1} s into {}; \
         when every shard is done, run `osteoai {command} {}` without --shard",
        r.signed,
        r.images,
        r.embedded,
        t.elapsed().as_secs_f64(),
        osteoai_core::cache::cache_root().display(),
        dir.display()
    );
    Ok(0)
}
