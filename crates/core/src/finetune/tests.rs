//! Fine-tuning on generated radiographs (the break is drawn, so the answer is known): it
//! learns the break, and a run stopped and resumed ends where an uninterrupted one does.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::data::{self, Sample};
use super::eval::predict;
use super::{Augment, BatchNormMode, Event, Recipe, finetune};
use crate::decode::model_input::Preprocess;
use crate::metrics::roc_auc;
use crate::model::import::load_burnpack;

fn base_weights() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/lite0/backbone.bpk")
}

/// `n` images per class written under `dir/<class>/`, labels 0 = fracture, 1 = nofracture.
fn write_set(dir: &Path, seed: u64, n: usize) -> Vec<(PathBuf, usize)> {
    let mut items = Vec::new();
    for (label, (class, fracture)) in [("fracture", true), ("nofracture", false)]
        .iter()
        .enumerate()
    {
        let d = dir.join(class);
        std::fs::create_dir_all(&d).unwrap();
        for i in 0..n {
            let img =
                crate::fixtures::radiograph(seed + (label * 1000 + i) as u64, *fracture, 96, 96);
            let p = d.join(format!("{i}.png"));
            img.save(&p).unwrap();
            items.push((p, label));
        }
    }
    items
}

fn samples(items: &[(PathBuf, usize)], size: u32) -> Vec<Sample> {
    let (s, bad) = data::load(items, &Preprocess::imagenet(size));
    assert!(bad.is_empty(), "{bad:?}");
    s
}

fn small_recipe() -> Recipe {
    Recipe {
        epochs: 4,
        batch: 8,
        accum: 1,
        lr: 1e-3,
        head_lr: 3e-3,
        freeze_epochs: 1,
        frozen_blocks: 8,
        patience: 4,
        size: 64,
        seed: 5,
        ..Recipe::default()
    }
}

fn auc_of(probs: &[Result<Vec<f64>, String>], items: &[(PathBuf, usize)]) -> f64 {
    let pos: Vec<bool> = items.iter().map(|i| i.1 == 0).collect();
    let s: Vec<f64> = probs.iter().map(|p| p.as_ref().unwrap()[0]).collect();
    roc_auc(&pos, &s).unwrap()
}

#[test]
fn a_short_finetune_learns_the_drawn_break() {
    learns_the_drawn_break(BatchNormMode::Frozen);
}

#[test]
fn a_short_finetune_with_train_mode_batch_norms_learns_the_drawn_break() {
    learns_the_drawn_break(BatchNormMode::Train);
}

fn learns_the_drawn_break(batch_norm: BatchNormMode) {
    let dir = tempfile::tempdir().unwrap();
    let train = write_set(&dir.path().join("train"), 100, 24);
    let val = write_set(&dir.path().join("val"), 900, 12);
    let device = crate::device::cpu();
    // The backbone learns from the first step, with the linear layer.
    let recipe = Recipe {
        freeze_epochs: 0,
        epochs: 3,
        lr: 3e-4,
        batch_norm,
        ..small_recipe()
    };
    let net = load_burnpack(&base_weights(), true, &device.device).unwrap();
    // Before: the new linear layer is random, the scores say nothing about the break.
    let ad = device.device.clone().autodiff();
    let untrained = super::net::Classifier::new(net.clone(), 2, recipe.seed, &ad);
    let paths: Vec<PathBuf> = val.iter().map(|v| v.0.clone()).collect();
    let before = auc_of(
        &predict(
            &untrained,
            &device,
            &Preprocess::imagenet(64),
            &paths,
            true,
            16,
        )
        .unwrap(),
        &val,
    );
    let mut steps = 0;
    let out = finetune(
        net,
        2,
        0,
        &samples(&train, 64),
        &val,
        &recipe,
        &device,
        None,
        false,
        &AtomicBool::new(false),
        |e| {
            if matches!(e, Event::Step { .. }) {
                steps += 1
            }
        },
    )
    .unwrap();
    let after = auc_of(
        &predict(
            &out.best,
            &device,
            &Preprocess::imagenet(64),
            &paths,
            true,
            16,
        )
        .unwrap(),
        &val,
    );
    eprintln!(
        "val AUC {before:.3} -> {after:.3} in {steps} steps; {:?}",
        out.history
    );
    assert!(steps <= 3 * 6, "{steps} steps");
    assert!(
        before < 0.9,
        "the untrained head already separates: {before}"
    );
    assert!(after >= 0.95, "val AUC {before:.3} -> {after:.3}");
    assert!(
        (after - out.best_auc).abs() < 1e-9,
        "{after} vs {}",
        out.best_auc
    );
    assert_eq!(out.history.len(), 3);
    assert!(
        out.best.backbone.is_folded(),
        "the best model comes back folded"
    );
    // The backbone learned: block 12 has other weights.
    let conv = |n: &crate::model::effnet::EfficientNetLite0, b: usize| {
        n.blocks[b]
            .project
            .conv
            .weight
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    };
    let base = load_burnpack(&base_weights(), true, &device.device).unwrap();
    assert_ne!(
        conv(&out.best.backbone, 12),
        conv(&base, 12),
        "block 12 learns"
    );
    assert_eq!(
        conv(&out.best.backbone, 3),
        conv(&base, 3),
        "blocks before `frozen_blocks` stay frozen"
    );
}

#[test]
fn a_resumed_run_ends_where_an_uninterrupted_one_does() {
    resumes_bit_for_bit(BatchNormMode::Frozen);
}

/// With train-mode batch norms the running statistics are part of the state: the folded best
/// model (statistics folded into its weights) must come out the same too.
#[test]
fn a_resumed_run_with_train_mode_batch_norms_ends_where_an_uninterrupted_one_does() {
    resumes_bit_for_bit(BatchNormMode::Train);
}

fn resumes_bit_for_bit(batch_norm: BatchNormMode) {
    let dir = tempfile::tempdir().unwrap();
    let train = samples(&write_set(&dir.path().join("train"), 300, 8), 64);
    let val = write_set(&dir.path().join("val"), 700, 4);
    let device = crate::device::cpu();
    let recipe = Recipe {
        epochs: 3,
        batch: 4,
        frozen_blocks: 12,
        accum: 2,
        augment: Augment::default(),
        batch_norm,
        ..small_recipe()
    };
    let run = |ckpt: &Path, resume: bool, stop_at: Option<(usize, usize)>| {
        let cancel = AtomicBool::new(false);
        let net = load_burnpack(&base_weights(), true, &device.device).unwrap();
        finetune(
            net,
            2,
            0,
            &train,
            &val,
            &recipe,
            &device,
            Some(ckpt),
            resume,
            &cancel,
            |e| {
                if let (Event::Step { epoch, batch, .. }, Some(at)) = (&e, stop_at)
                    && (*epoch, *batch) == at
                {
                    cancel.store(true, Ordering::Relaxed);
                }
            },
        )
        .unwrap()
    };
    let whole = run(&dir.path().join("a"), false, None);
    // Stopped in the middle of the backbone phase's first epoch, after two optimizer steps.
    let stopped = run(&dir.path().join("b"), false, Some((2, 2)));
    assert!(stopped.interrupted);
    assert_eq!(stopped.history.len(), 1);
    let resumed = run(&dir.path().join("b"), true, None);
    assert!(!resumed.interrupted);
    assert_eq!(resumed.history.len(), whole.history.len());
    let (wa, ba) = whole.best.linear_weights();
    let (wb, bb) = resumed.best.linear_weights();
    let max_diff = wa
        .iter()
        .flatten()
        .zip(wb.iter().flatten())
        .map(|(p, q)| (p - q).abs())
        .fold(0f32, f32::max);
    eprintln!("history whole {:?}", whole.history);
    eprintln!("history resumed {:?}", resumed.history);
    assert!(
        max_diff == 0.0,
        "linear weights differ after resume by up to {max_diff}"
    );
    assert_eq!(ba, bb);
    let conv = |c: &super::net::Classifier| {
        c.backbone.blocks[15]
            .project
            .conv
            .weight
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    };
    let (a, b) = (conv(&whole.best), conv(&resumed.best));
    let differ = a.iter().zip(&b).filter(|(p, q)| p != q).count();
    assert!(
        differ == 0,
        "backbone weights differ after resume: {differ} of {}",
        a.len()
    );
    for (x, y) in whole.history.iter().zip(&resumed.history) {
        assert_eq!(x.val_auc, y.val_auc);
        assert_eq!(x.train_loss, y.train_loss);
    }
    // A resume with another recipe is refused.
    let other = Recipe {
        lr: 2e-3,
        ..recipe.clone()
    };
    let net = load_burnpack(&base_weights(), true, &device.device).unwrap();
    let e = finetune(
        net,
        2,
        0,
        &train,
        &val,
        &other,
        &device,
        Some(&dir.path().join("b")),
        true,
        &AtomicBool::new(false),
        |_| {},
    )
    .err()
    .unwrap();
    assert!(e.contains("another recipe"), "{e}");
}

/// Only the layers from `frozen` on receive gradients; the front and the stem do not.
#[test]
fn gradients_reach_the_trainable_layers_only() {
    use burn::optim::GradientsParams;
    let device = crate::device::cpu();
    let ad = device.device.clone().autodiff();
    let net = load_burnpack(&base_weights(), true, &device.device).unwrap();
    let m = super::net::Classifier::new(super::net::onto(net, &ad).unwrap(), 2, 1, &ad);
    let x = burn::tensor::Tensor::<4>::ones([2, 3, 64, 64], &ad);
    // Straight from loading (the bench's path) and after a head-only phase (the trainer's).
    let m = m.freeze_front(8);
    let g = GradientsParams::from_grads(m.logits_from(x.clone(), 8, true).sum().backward(), &m);
    // Blocks 8..16: expand (if any), depthwise and project, weight and bias; the head conv and
    // the linear layer, weight and bias.
    let trainable: usize = m.backbone.blocks[8..]
        .iter()
        .map(|b| if b.expand.is_some() { 6 } else { 4 })
        .sum::<usize>()
        + 4;
    assert_eq!(g.len(), trainable);
    let m = m.freeze_front(17);
    let g = GradientsParams::from_grads(m.logits_from(x.clone(), 8, true).sum().backward(), &m);
    assert_eq!(g.len(), 2, "head-only: the linear layer's weight and bias");
    let m = m.freeze_front(8);
    let g = GradientsParams::from_grads(m.logits_from(x.clone(), 8, true).sum().backward(), &m);
    assert_eq!(g.len(), trainable);
    let m = m.freeze_front(0);
    let g = GradientsParams::from_grads(m.logits_from(x, 0, true).sum().backward(), &m);
    let all: usize = m
        .backbone
        .blocks
        .iter()
        .map(|b| if b.expand.is_some() { 6 } else { 4 })
        .sum::<usize>()
        + 6;
    assert_eq!(g.len(), all);
}
