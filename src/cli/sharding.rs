//! `--shard I/N`, `--shards N` and `--no-shard`: the options every command that runs the CNN
//! over a folder shares, resolved against the scheduler's environment (see `osteoai::shard`).

use clap::Args;
use osteoai::shard::{self, Shard};

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
