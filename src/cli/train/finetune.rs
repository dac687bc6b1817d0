//! `osteoai train DIR --finetune --out M`: fine-tune the CNN end to end on a labelled folder
//! (the library's `finetune`), with progress, checkpoints, SIGTERM/SIGINT and `--resume`.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use clap::Args;
use osteoai_core::finetune::folder::{FolderConfig, finetune_folder};
use osteoai_core::finetune::{BatchNormMode, Event, Recipe};
use osteoai_core::model::Manifest;

use super::TrainArgs;
use crate::cli::classify::{EXIT_STOPPED, signal_name, stop_on_signals};
use crate::cli::progress::with_stages;
use crate::cli::select_device;
use osteoai_core::audit::AuditParams;
use osteoai_core::device::Selected;
use osteoai_core::engine::Engine;
use osteoai_core::finetune::head_choice::HeadMode;
use osteoai_core::finetune::regroup::{check, leak_line, leaked, needs_check};
use osteoai_core::labels::Split;
use osteoai_core::train::Splits;

#[derive(Args, Debug, Default)]
pub struct FinetuneArgs {
    /// Fine-tune the CNN end to end (a linear head on the fine-tuned backbone) instead of
    /// training a LightGBM head on frozen features.
    #[arg(long)]
    pub finetune: bool,
    /// Epochs in all, the head-only ones included [default: 8].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Epochs that train only the new linear layer, backbone frozen [default: 1].
    #[arg(long)]
    pub freeze_epochs: Option<usize>,
    /// Peak learning rate of the backbone phase (AdamW, cosine decay) [default: 1e-4].
    #[arg(long)]
    pub lr: Option<f64>,
    /// Learning rate of the head-only phase [default: 1e-3].
    #[arg(long)]
    pub head_lr: Option<f64>,
    /// Batches whose gradients are summed per optimizer step [default: 2].
    #[arg(long)]
    pub accum: Option<usize>,
    /// Blocks (of 16; 21 in Lite1/2) kept frozen in the backbone phase; 0 trains all layers [default: 0 on a
    /// GPU, 6 on the CPU].
    #[arg(long)]
    pub frozen_blocks: Option<usize>,
    /// Input side in pixels, a multiple of 32 [default: 320, chosen on grouped val].
    #[arg(long)]
    pub size: Option<u32>,
    /// Epochs without a better val ROC AUC before stopping early [default: 3].
    #[arg(long)]
    pub patience: Option<usize>,
    /// Continue from the checkpoint (same recipe and data) instead of starting afresh.
    #[arg(long)]
    pub resume: bool,
    /// Checkpoint folder [default: <out>.checkpoint].
    #[arg(long)]
    pub checkpoint: Option<std::path::PathBuf>,
    /// No augmentation (a plain resize, as for inference).
    #[arg(long)]
    pub no_augment: bool,
    /// Batch norms while the backbone learns: `frozen` (folded, ImageNet statistics) or
    /// `train` (batch statistics, calibrated on the training images, folded into the bundle).
    #[arg(long, value_name = "MODE", default_value = "frozen", value_parser = BatchNormMode::parse)]
    pub batch_norm: BatchNormMode,
    /// Re-split the folder in memory (nothing moved) so that no group of copies or patient
    /// crosses train/val/test, keeping the folder's proportions: honest val selection on a
    /// folder whose splits leak.
    #[arg(long)]
    pub regroup: bool,
    /// Skip the audit that counts the val and test images with a copy in train.
    #[arg(long, conflicts_with = "regroup")]
    pub no_audit: bool,
    /// The bundle's head: `auto` (the linear layer or a LightGBM head on the fine-tuned
    /// features, whichever has the higher val ROC AUC), `linear`, `lightgbm`.
    #[arg(long, value_name = "HEAD", default_value = "auto", value_parser = HeadMode::parse)]
    pub head: HeadMode,
    #[command(flatten)]
    pub patients: crate::options::PatientArgs,
}

/// The audit's view of the folder's splits: how many held-out images have a copy (or the same
/// patient) in an earlier split; with `--regroup`, the grouped re-split that replaces them.
fn check_copies(
    a: &TrainArgs,
    base_dir: &Path,
    device: &Selected,
) -> Result<Option<Splits>, String> {
    let f = &a.finetune;
    if f.no_audit {
        return Ok(None);
    }
    let classes = osteoai_core::model::Bundle::read_manifest(base_dir)
        .map(|m| m.classes)
        .unwrap_or_else(|_| osteoai_core::labels::ClassSpec::fracture_default());
    // A folder without train/ and val/ fails with its own message before any audit.
    if !needs_check(&a.dir, &classes, f.regroup) {
        return Ok(None);
    }
    // The model's embeddings find rotated and cropped copies; without a loadable model the
    // audit falls back to perceptual hashes.
    let engine = Engine::load(base_dir, device.clone()).ok();
    eprintln!(
        "osteoai: auditing {} for copies across its splits (--no-audit skips it)",
        a.dir.display()
    );
    let params = AuditParams {
        patients: f.patients.options(),
        ..AuditParams::default()
    };
    let found = with_stages(|never, progress| {
        check(
            &a.dir,
            engine.as_ref(),
            &classes,
            &params,
            f.regroup,
            a.seed,
            never,
            progress,
        )
    })?;
    for l in &found.leakage {
        eprintln!("osteoai: {}", leak_line(l));
    }
    if let Some(splits) = found.splits {
        let n = |s: Split| splits.values().filter(|v| **v == s).count();
        eprintln!(
            "osteoai: --regroup: {} train, {} val, {} test in memory, no group across them",
            n(Split::Train),
            n(Split::Val),
            n(Split::Test)
        );
        return Ok(Some(splits));
    }
    if leaked(&found.leakage) > 0 {
        eprintln!(
            "osteoai: val ROC AUC (the epoch and head selection) is optimistic where val holds copies of train: \
             --regroup re-splits in memory, `osteoai split` on disk"
        );
    }
    Ok(None)
}

/// The recipe from the defaults, the device and the flags.
pub fn recipe(a: &TrainArgs, gpu: bool) -> Recipe {
    let f = &a.finetune;
    let d = Recipe::default();
    Recipe {
        epochs: f.epochs.unwrap_or(d.epochs),
        batch: a.batch.unwrap_or(d.batch).max(1),
        accum: f.accum.unwrap_or(d.accum).max(1),
        lr: f.lr.unwrap_or(d.lr),
        head_lr: f.head_lr.unwrap_or(d.head_lr),
        freeze_epochs: f.freeze_epochs.unwrap_or(d.freeze_epochs),
        frozen_blocks: f
            .frozen_blocks
            .unwrap_or(if gpu { 0 } else { CPU_FROZEN_BLOCKS }),
        patience: f.patience.unwrap_or(d.patience),
        seed: a.seed,
        size: f.size.unwrap_or(d.size),
        augment: if f.no_augment {
            osteoai_core::finetune::Augment::none()
        } else {
            d.augment.clone()
        },
        batch_norm: f.batch_norm,
        ..d
    }
}

pub use osteoai_core::finetune::CPU_FROZEN_BLOCKS;

pub fn run(a: &TrainArgs, base_dir: &Path, base: &Manifest) -> Result<i32, String> {
    let _memory = crate::options::keep_freed_memory();
    let device = select_device(a.device)?;
    let recipe = recipe(a, device.is_gpu);
    recipe.validate()?;
    let cfg = FolderConfig {
        data: a.dir.clone(),
        out: a.out.clone(),
        recipe: recipe.clone(),
        checkpoint: a.finetune.checkpoint.clone(),
        resume: a.finetune.resume,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        head: a.finetune.head,
        splits: check_copies(a, base_dir, &device)?,
    };
    eprintln!(
        "osteoai: fine-tuning {} epochs ({} head only), batch {} x {} accumulated, lr {:.1e}, {} of {} blocks frozen, batch norms {}, {} px, {}, seed {}",
        recipe.epochs,
        recipe.freeze_epochs,
        recipe.batch,
        recipe.accum,
        recipe.lr,
        recipe.frozen_blocks,
        base.arch()?.block_count(),
        recipe.batch_norm.name(),
        recipe.size,
        base.backbone.kind,
        recipe.seed
    );
    let cancel = Arc::new(AtomicBool::new(false));
    let which = stop_on_signals(&cancel);
    let tty = std::io::stderr().is_terminal();
    let mut last_print = std::time::Instant::now();
    let on = |e: Event| match e {
        Event::Step {
            epoch,
            epochs,
            batch,
            batches,
            loss,
            img_s,
            eta_s,
        } => {
            let every = if tty { 0.2 } else { 30.0 };
            if last_print.elapsed().as_secs_f64() >= every || batch == batches {
                last_print = std::time::Instant::now();
                let line = format!(
                    "epoch {epoch}/{epochs} step {batch}/{batches} loss {loss:.4} {img_s:.1} img/s, {:.0} s left in the epoch",
                    eta_s
                );
                if tty {
                    eprint!("\r\x1b[2Kosteoai: {line}");
                } else {
                    eprintln!("osteoai: {line}");
                }
            }
        }
        Event::Evaluating { epoch } => {
            if tty {
                eprintln!();
            }
            eprintln!("osteoai: epoch {epoch}: scoring val/");
        }
        Event::Epoch(s) => eprintln!(
            "osteoai: epoch {} ({:?}): train loss {:.4}, val loss {:.4}, val ROC AUC {:.4}, lr {:.2e}, {:.0} s, {:.1} img/s",
            s.epoch, s.phase, s.train_loss, s.val_loss, s.val_auc, s.lr, s.seconds, s.train_img_s
        ),
        Event::Resumed { epoch, batch } => eprintln!(
            "osteoai: resuming from the checkpoint: {epoch} epochs and {batch} batches done"
        ),
        Event::Checkpoint { epoch, batch } => {
            tracing::info!(epoch, batch, "checkpoint written");
        }
    };
    let report = finetune_folder(base_dir, base, &device, &cfg, &cancel, on, |m| {
        eprintln!("osteoai: {m}")
    })?;
    for (p, e) in &report.skipped {
        eprintln!("osteoai: skipped {}: {e}", p.display());
    }
    let o = &report.outcome;
    if let Some(manifest) = &report.manifest {
        println!(
            "wrote {} (fine-tuned, best val ROC AUC {:.4} at epoch {}, {} head, threshold {:.4}); learning curves in {} and curves.png",
            a.out.display(),
            o.best_auc,
            o.best_epoch,
            manifest.head.kind,
            manifest.threshold,
            a.out.join("curves.csv").display()
        );
        if let Some(h) = &report.heads {
            println!(
                "  heads on val: linear ROC AUC {:.4}, LightGBM on the fine-tuned features {:.4} ({} rounds): {} kept",
                h.linear_val_auc, h.lightgbm_val_auc, h.lightgbm_rounds, h.chosen
            );
        }
        print!("{}", chart(&o.history));
        super::print_metrics(manifest, &report.counts);
    } else {
        println!("no epoch finished: no bundle written");
    }
    if o.interrupted {
        let sig = which.load(std::sync::atomic::Ordering::Relaxed);
        eprintln!(
            "osteoai: stopped by {}; the checkpoint in {} continues with --resume (the bundle holds the best model so far)",
            signal_name(sig),
            report.checkpoint.display()
        );
        return Ok(EXIT_STOPPED);
    }
    Ok(0)
}

/// The learning curve as a terminal chart: one row per epoch, val AUC and losses as bars.
pub fn chart(history: &[osteoai_core::finetune::EpochStats]) -> String {
    let max_loss = history
        .iter()
        .flat_map(|e| [e.train_loss, e.val_loss])
        .filter(|v| v.is_finite())
        .fold(1e-9, f64::max);
    let bar = |v: f64, full: f64, ch: char| -> String {
        let n = if v.is_finite() {
            ((v / full).clamp(0.0, 1.0) * 24.0).round() as usize
        } else {
            0
        };
        format!("{:<24}", ch.to_string().repeat(n))
    };
    let mut s = String::from(
        "  epoch phase     val AUC (0.5..1)           train loss                val loss\n",
    );
    for e in history {
        let auc = ((e.val_auc - 0.5) * 2.0).max(0.0);
        s += &format!(
            "  {:>5} {:<9} {} {:.4} {} {:.3} {} {:.3}\n",
            e.epoch,
            format!("{:?}", e.phase).to_lowercase(),
            bar(auc, 1.0, '#'),
            e.val_auc,
            bar(e.train_loss, max_loss, '='),
            e.train_loss,
            bar(e.val_loss, max_loss, '-'),
            e.val_loss
        );
    }
    s
}
