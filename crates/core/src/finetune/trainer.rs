//! The training loop: phases, batches, gradient accumulation, the optimizer and scheduler,
//! validation after each epoch, early stopping, checkpoints and resume.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::lr_scheduler::cosine::CosineAnnealingLrSchedulerConfig;
use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsAccumulator, GradientsParams};
use burn::tensor::{Device, Tensor, TensorData};
use rayon::prelude::*;

use super::augment::Rng;
use super::batch_norm::prepare;
use super::checkpoint::{self as ck, State};
use super::data::{Sample, class_weights};
use super::eval::{log_loss, predict};
use super::net::{Classifier, tensor4};
use super::{EpochStats, Event, Phase, Recipe};
use crate::decode::model_input::Preprocess;
use crate::device::Selected;
use crate::metrics::roc_auc;
use crate::model::effnet::EfficientNetLite0;

/// What a fine-tune returns: the best model (by val AUC) and the learning curve.
pub struct Outcome {
    pub best: Classifier,
    pub history: Vec<EpochStats>,
    pub best_epoch: usize,
    pub best_auc: f64,
    /// Stopped by the cancel flag before the last epoch (the checkpoint can resume it).
    pub interrupted: bool,
    /// The val probabilities of the best model, in `val` order.
    pub val_probs: Vec<Vec<f64>>,
}

/// Identifies the training data.
pub fn fingerprint(train: &[Sample]) -> u64 {
    let mut h = crate::cache::Fnv::new();
    for s in train {
        h.write(s.path.to_string_lossy().as_bytes());
        h.write_u64(s.label as u64);
    }
    h.finish()
}

/// Fine-tunes `base` (a folded backbone on `device`) to `classes` classes on `train`, selecting
/// on `val` (paths and labels; scored through the inference pipeline); the best model comes
/// back folded whatever the recipe's batch norms. With `ckpt`, writes a
/// checkpoint there after every epoch and at a cancel, and continues from one when `resume`.
#[allow(clippy::too_many_arguments)]
pub fn finetune(
    base: EfficientNetLite0,
    classes: usize,
    positive: usize,
    train: &[Sample],
    val: &[(std::path::PathBuf, usize)],
    recipe: &Recipe,
    device: &Selected,
    ckpt: Option<&Path>,
    resume: bool,
    cancel: &AtomicBool,
    mut on: impl FnMut(Event),
) -> Result<Outcome, String> {
    recipe.validate()?;
    if !base.is_folded() {
        return Err("fine-tuning starts from a folded backbone".into());
    }
    if train.is_empty() || val.is_empty() {
        return Err("fine-tuning needs training and validation images".into());
    }
    let pre = Preprocess::imagenet(recipe.size);
    let ad: Device = device.device.clone().autodiff();
    // The frozen front, on the kernels (CPU) - packed once, it never changes.
    let front = if device.native {
        Some(crate::model::native::pack(&base)?)
    } else {
        None
    };
    let s = recipe.size as usize;
    // Calibration images in train mode: a seeded draw of train, augmented as in training.
    let base = prepare(base, recipe.batch_norm, |n| {
        let order = Rng::for_item(recipe.seed, usize::MAX, 0xB17).permutation(train.len());
        let idx = &order[..n.min(train.len())];
        let inputs: Vec<f32> = idx
            .par_iter()
            .flat_map_iter(|&i| {
                let mut r = Rng::for_item(recipe.seed, usize::MAX - 1, i);
                recipe.augment.apply(&train[i].pixels, &pre, &mut r)
            })
            .collect();
        tensor4(inputs, [idx.len(), 3, s, s], &device.device)
    })?;
    let mut model = Classifier::new(super::net::onto(base, &ad)?, classes, recipe.seed, &ad);
    let labels: Vec<usize> = train.iter().map(|s| s.label).collect();
    let weights = if recipe.class_weights {
        class_weights(&labels, classes)
    } else {
        vec![1.0; classes]
    };
    let mut optim = AdamWConfig::new()
        .with_weight_decay(recipe.weight_decay)
        .init();
    let batches = train.len().div_ceil(recipe.batch);
    let steps_per_epoch = batches.div_ceil(recipe.accum);
    let backbone_epochs = recipe.epochs.saturating_sub(recipe.freeze_epochs).max(1);
    let mut sched =
        CosineAnnealingLrSchedulerConfig::new(recipe.lr, backbone_epochs * steps_per_epoch)
            .with_min_lr(recipe.lr * recipe.min_lr_factor)
            .init()?;
    let fp = fingerprint(train);
    let mut st = State {
        recipe: recipe.clone(),
        epoch: 0,
        batch: 0,
        backbone_steps: 0,
        history: Vec::new(),
        best_auc: f64::NEG_INFINITY,
        best_epoch: 0,
        epoch_loss_sum: 0.0,
        epoch_images: 0,
        data_fingerprint: fp,
    };
    let mut best = model.own_copy();
    if let (Some(dir), true) = (ckpt, resume)
        && let Some(saved) = ck::read_state(dir)?
    {
        if saved.recipe != *recipe {
            return Err(format!(
                "the checkpoint in {} was made with another recipe; start afresh without --resume",
                dir.display()
            ));
        }
        if saved.data_fingerprint != fp {
            return Err(format!(
                "the checkpoint in {} was made on other training images",
                dir.display()
            ));
        }
        model = model
            .try_load_file(dir.join(ck::MODEL))
            .map_err(|e| format!("cannot load the checkpoint's model: {e:?}"))?;
        optim = optim
            .load(dir.join(ck::OPTIM))
            .map_err(|e| format!("cannot load the checkpoint's optimizer: {e:?}"))?;
        if dir.join(ck::SCHED).is_file() {
            let rec = burn::lr_scheduler::LrSchedulerRecord::load(dir.join(ck::SCHED))
                .map_err(|e| format!("cannot load the checkpoint's scheduler: {e:?}"))?;
            sched = sched.load_record(rec);
        }
        best = if dir.join(ck::BEST).is_file() {
            model
                .own_copy()
                .try_load_file(dir.join(ck::BEST))
                .map_err(|e| format!("cannot load the checkpoint's best model: {e:?}"))?
        } else {
            model.own_copy()
        };
        st = saved;
        on(Event::Resumed {
            epoch: st.epoch,
            batch: st.batch,
        });
    }
    let save = |st: &State,
                model: &Classifier,
                best: Option<&Classifier>,
                optim: &burn::optim::ModuleOptimizer,
                sched: &burn::lr_scheduler::module_lr_scheduler::ModuleLrScheduler|
     -> Result<(), String> {
        let Some(dir) = ckpt else { return Ok(()) };
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let t = ck::tmp(dir, ck::MODEL);
        model.sync_running_stats();
        model
            .clone()
            .save_file(&t)
            .map_err(|e| format!("cannot write {}: {e:?}", t.display()))?;
        ck::commit(dir, &t, ck::MODEL)?;
        if let Some(b) = best {
            let t = ck::tmp(dir, ck::BEST);
            b.clone()
                .save_file(&t)
                .map_err(|e| format!("cannot write {}: {e:?}", t.display()))?;
            ck::commit(dir, &t, ck::BEST)?;
        }
        let t = ck::tmp(dir, ck::OPTIM);
        optim
            .save(&t)
            .map_err(|e| format!("cannot write {}: {e:?}", t.display()))?;
        ck::commit(dir, &t, ck::OPTIM)?;
        let t = ck::tmp(dir, ck::SCHED);
        sched
            .to_record()
            .save(&t)
            .map_err(|e| format!("cannot write {}: {e:?}", t.display()))?;
        ck::commit(dir, &t, ck::SCHED)?;
        ck::write_state(dir, st)
    };

    let positive_of = |p: &Vec<f64>| p[positive];
    let mut interrupted = false;
    let mut since_best = st
        .history
        .iter()
        .rev()
        .take_while(|e| e.epoch > st.best_epoch)
        .count();
    'epochs: while st.epoch < recipe.epochs {
        if since_best >= recipe.patience && st.epoch > recipe.freeze_epochs {
            break;
        }
        let epoch = st.epoch;
        let phase = if epoch < recipe.freeze_epochs {
            Phase::Head
        } else {
            Phase::Backbone
        };
        let frozen = match phase {
            // Every block and the head: only the new linear layer learns.
            Phase::Head => usize::MAX,
            Phase::Backbone => recipe.frozen_blocks,
        };
        model = model.freeze_front(frozen);
        let order = Rng::for_item(recipe.seed, epoch, usize::MAX).permutation(train.len());
        let t0 = Instant::now();
        let start_batch = st.batch;
        let mut acc = GradientsAccumulator::<Classifier>::new();
        let mut pending = 0usize;
        let mut lr = match phase {
            Phase::Head => recipe.head_lr,
            Phase::Backbone => 0.0,
        };
        for (b, idx) in order.chunks(recipe.batch).enumerate().skip(start_batch) {
            let n = idx.len();
            let inputs: Vec<f32> = idx
                .par_iter()
                .flat_map_iter(|&i| {
                    let mut r = Rng::for_item(recipe.seed, epoch, i);
                    recipe.augment.apply(&train[i].pixels, &pre, &mut r)
                })
                .collect();
            let mut target = vec![0f32; n * classes];
            for (k, &i) in idx.iter().enumerate() {
                target[k * classes + train[i].label] = weights[train[i].label];
            }
            let wsum: f32 = target.iter().sum::<f32>().max(1e-6);
            let logits = match (phase, &front) {
                (Phase::Head, Some(net)) => {
                    let f = crate::model::native::features(
                        net,
                        &inputs,
                        n,
                        s,
                        &super::eval::feature_spec(false),
                    )?;
                    model.logits_of_features(Tensor::from_data(
                        TensorData::new(f, [n, crate::model::effnet::HEAD_CHANNELS]),
                        &ad,
                    ))
                }
                (Phase::Head, None) => {
                    let x = tensor4(inputs, [n, 3, s, s], &ad);
                    let f = super::net::pool(model.backbone.extract_features(x)).detach();
                    model.logits_of_features(f)
                }
                (Phase::Backbone, Some(net)) if frozen > 0 => {
                    let (maps, (c, oh, ow)) = net
                        .prefix(osteoai_kernels::isa::active(), &inputs, n, s, s, frozen)
                        .map_err(|e| e.to_string())?;
                    model.logits_from(tensor4(maps, [n, c, oh, ow], &ad), frozen, false)
                }
                (Phase::Backbone, _) => {
                    model.logits_from(tensor4(inputs, [n, 3, s, s], &ad), frozen, true)
                }
            };
            let logp = burn::tensor::activation::log_softmax(logits, 1);
            let t = Tensor::<2>::from_data(TensorData::new(target, [n, classes]), &ad);
            let loss = (logp * t).sum().neg().div_scalar(wsum);
            let loss_value = loss.clone().into_scalar::<f32>() as f64;
            if !loss_value.is_finite() {
                return Err(format!(
                    "the loss became {loss_value} in epoch {} batch {b}; try a lower --lr",
                    epoch + 1
                ));
            }
            let grads = GradientsParams::from_grads(
                loss.div_scalar(recipe.accum as f32).backward(),
                &model,
            );
            acc.accumulate(&model, grads);
            pending += 1;
            st.epoch_loss_sum += loss_value * n as f64;
            st.epoch_images += n;
            let last = b + 1 == batches;
            if pending == recipe.accum || last {
                let g = acc.grads();
                model = match phase {
                    Phase::Head => optim.step(recipe.head_lr, model, g),
                    Phase::Backbone => {
                        let l = sched.step();
                        lr = l.base();
                        st.backbone_steps += 1;
                        optim.step(l, model, g)
                    }
                };
                pending = 0;
                st.batch = b + 1;
                let done = (b + 1 - start_batch) as f64;
                let secs = t0.elapsed().as_secs_f64();
                let seen: usize = order
                    .chunks(recipe.batch)
                    .skip(start_batch)
                    .take(b + 1 - start_batch)
                    .map(|c| c.len())
                    .sum();
                on(Event::Step {
                    epoch: epoch + 1,
                    epochs: recipe.epochs,
                    batch: b + 1,
                    batches,
                    loss: st.epoch_loss_sum / st.epoch_images.max(1) as f64,
                    img_s: seen as f64 / secs.max(1e-9),
                    eta_s: secs / done * (batches - b - 1) as f64,
                });
                if cancel.load(Ordering::Relaxed) && !last {
                    save(&st, &model, None, &optim, &sched)?;
                    on(Event::Checkpoint {
                        epoch,
                        batch: st.batch,
                    });
                    interrupted = true;
                    break 'epochs;
                }
            }
        }
        let seconds = t0.elapsed().as_secs_f64();
        let images = st.epoch_images;
        on(Event::Evaluating { epoch: epoch + 1 });
        let val_paths: Vec<_> = val.iter().map(|v| v.0.clone()).collect();
        let probs = predict(&model, device, &pre, &val_paths, recipe.flip_average, 16)?;
        let (mut vp, mut vl) = (Vec::new(), Vec::new());
        for (p, (_, l)) in probs.into_iter().zip(val) {
            if let Ok(p) = p {
                vp.push(p);
                vl.push(*l);
            }
        }
        let pos: Vec<bool> = vl.iter().map(|&l| l == positive).collect();
        let scores: Vec<f64> = vp.iter().map(positive_of).collect();
        let auc = roc_auc(&pos, &scores).unwrap_or(f64::NAN);
        let stats = EpochStats {
            epoch: epoch + 1,
            phase,
            train_loss: st.epoch_loss_sum / images.max(1) as f64,
            val_loss: log_loss(&vp, &vl),
            val_auc: auc,
            lr,
            seconds,
            train_img_s: images as f64 / seconds.max(1e-9),
        };
        st.history.push(stats.clone());
        // Selection on val ROC AUC; on the val loss where the AUC is undefined (one class).
        // Ties on AUC (e.g. a saturated 1.0) go to the lower val loss.
        let best_loss = st
            .best_epoch
            .checked_sub(1)
            .and_then(|i| st.history.get(i))
            .map_or(f64::INFINITY, |e| e.val_loss);
        let improved = if auc.is_finite() {
            auc > st.best_auc
                || !st.best_auc.is_finite()
                || (auc == st.best_auc && stats.val_loss < best_loss)
        } else {
            st.best_epoch == 0 || stats.val_loss < st.history[st.best_epoch - 1].val_loss
        };
        if improved {
            st.best_auc = auc;
            st.best_epoch = epoch + 1;
            best = model.own_copy();
            since_best = 0;
        } else {
            since_best += 1;
        }
        st.epoch += 1;
        st.batch = 0;
        st.epoch_loss_sum = 0.0;
        st.epoch_images = 0;
        save(&st, &model, improved.then_some(&best), &optim, &sched)?;
        on(Event::Epoch(stats));
        on(Event::Checkpoint {
            epoch: st.epoch,
            batch: 0,
        });
        if cancel.load(Ordering::Relaxed) && st.epoch < recipe.epochs {
            interrupted = true;
            break;
        }
    }
    // Train-mode batch norms go back into the convolutions: the bundle's layout.
    let best = best.folded();
    let val_paths: Vec<_> = val.iter().map(|v| v.0.clone()).collect();
    let val_probs = predict(&best, device, &pre, &val_paths, recipe.flip_average, 16)?
        .into_iter()
        .map(|p| p.unwrap_or_default())
        .collect();
    Ok(Outcome {
        best,
        history: st.history,
        best_epoch: st.best_epoch,
        best_auc: st.best_auc,
        interrupted,
        val_probs,
    })
}
