//! Snapshots of fine-tuning in the dashboard: the confirmation, the panel with the audit's
//! finding and its learning curves mid-run, and the end (the new model's scores replace the old ones).

use crossterm::event::KeyCode;
use osteoai_core::finetune::{EpochStats, Phase};

use super::app::{Effect, Mode, Task};
use super::snapshots::{app, key, offline, render};
use super::train_view::TrainUpdate;

fn epoch(e: usize, auc: f64, train: f64, val: f64) -> EpochStats {
    EpochStats {
        epoch: e,
        phase: if e == 1 { Phase::Head } else { Phase::Backbone },
        train_loss: train,
        val_loss: val,
        val_auc: auc,
        lr: 3e-4,
        seconds: 60.0,
        train_img_s: 20.0,
    }
}

#[test]
fn fine_tuning_asks_then_shows_its_learning_curves() {
    let mut a = app();
    assert!(a.on_key(key(KeyCode::Char('T'))).is_empty());
    assert_eq!(a.mode, Mode::ConfirmTrain);
    insta::assert_snapshot!("train_confirm", render(&mut a, &mut offline(), 100, 30));
    let fx = a.on_key(key(KeyCode::Char('y')));
    let Some(Effect::Run(Task::Train { run, .. })) = fx.first().cloned() else {
        panic!("y starts the job: {fx:?}");
    };
    // What the audit before the run found stays on the panel; a stale run's note does not.
    a.train_note(
        run,
        "424 of 615 val images (68.9%) have a verified copy or the same patient in train".into(),
    );
    a.train_note(run + 7, "stale".into());
    assert_eq!(a.train.as_ref().unwrap().notes.len(), 1);
    for (i, (auc, tl, vl)) in [(0.81, 0.62, 0.55), (0.86, 0.48, 0.47), (0.89, 0.39, 0.44)]
        .into_iter()
        .enumerate()
    {
        a.train_update(run, TrainUpdate::Epoch(epoch(i + 1, auc, tl, vl)));
    }
    a.train_update(
        run,
        TrainUpdate::Step {
            epoch: 4,
            epochs: 8,
            batch: 40,
            batches: 154,
            loss: 0.3512,
            img_s: 21.4,
            eta_s: 85.0,
        },
    );
    // A stale run's update is ignored.
    a.train_update(run + 7, TrainUpdate::Epoch(epoch(9, 0.1, 9.0, 9.0)));
    assert_eq!(a.train.as_ref().unwrap().history.len(), 3);
    insta::assert_snapshot!("train_panel", render(&mut a, &mut offline(), 100, 30));
    // The end: every image is scored again with the new model, the panel says so.
    let fx = a.train_done(
        run,
        Ok(std::path::PathBuf::from(
            "/data/wrist/.osteoai/models/finetuned",
        )),
    );
    assert!(
        matches!(fx.first(), Some(Effect::Run(Task::Classify { replace: true, items, .. })) if items.len() == a.items.len()),
        "{fx:?}"
    );
    assert!(a.items.iter().all(|i| i.score.is_none()));
    assert!(a.bg.is_none());
    insta::assert_snapshot!("train_done", render(&mut a, &mut offline(), 100, 30));
    a.on_key(key(KeyCode::Esc));
    assert!(a.train.is_none(), "Esc closes the finished panel");
}

#[test]
fn any_other_key_does_not_start_fine_tuning() {
    let mut a = app();
    a.on_key(key(KeyCode::Char('T')));
    assert!(a.on_key(key(KeyCode::Char('n'))).is_empty());
    assert_eq!(a.mode, Mode::Normal);
    assert!(a.train.is_none() && a.bg.is_none());
}
