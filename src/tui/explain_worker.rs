//! The heatmap jobs of the classification worker (it owns the engine): the map of the image
//! the preview shows, the fast one first, then the model's default unless the person moved on.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;

use osteoai_core::engine::Engine;

use super::event::Event;
use super::explain_view::MapKey;

/// The heatmap of one image as shown (its window and frame): with no method asked for, the
/// model's one-pass map at once, then its default map unless a newer request came meanwhile.
pub(super) fn explain_job(
    engine: &Engine,
    key: MapKey,
    generation: u64,
    latest: &AtomicU64,
    events: &Sender<Event>,
) {
    use osteoai_core::explain::{Explainer, HeadKind, Method};
    let kind = HeadKind::of(&engine.bundle.head);
    let methods: Vec<Method> = match key.method {
        Some(m) => vec![m],
        None => {
            let (fast, best) = (Method::fast_for(kind), Method::default_for(kind));
            if fast == best {
                vec![best]
            } else {
                vec![fast, best]
            }
        }
    };
    let supported = Method::supported(kind);
    let send = |result: Result<(Arc<osteoai_core::explain::Heatmap>, bool), String>| {
        let _ = events.send(Event::Heatmap {
            key: key.clone(),
            result,
            methods: supported.clone(),
        });
    };
    let input = match explain_input(engine, &key) {
        Ok(x) => x,
        Err(e) => return send(Err(e)),
    };
    for (i, &method) in methods.iter().enumerate() {
        if i > 0 && latest.load(Ordering::SeqCst) != generation {
            return; // the person moved on: the refined map would be stale
        }
        let t = std::time::Instant::now();
        let ex = Explainer {
            engine,
            method,
            class: key.class,
        };
        let r = ex.check().and_then(|_| ex.input(&input.0, input.1));
        tracing::debug!(%method, ms = t.elapsed().as_secs_f64() * 1e3, "heatmap");
        send(r.map(|m| (Arc::new(m), i + 1 < methods.len())));
    }
}

/// The model input of an image as the preview shows it and its size: the file as classified
/// (the same score), or rendered with the viewer's window and frame.
fn explain_input(engine: &Engine, key: &MapKey) -> Result<(Vec<f32>, (u32, u32)), String> {
    let bytes = osteoai_core::decode::imaging::read_limited(&key.path).map_err(|e| e.0)?;
    let d = osteoai_core::decode::imaging::decode_full(&bytes, key.frame).map_err(|e| e.0)?;
    let pre = &engine.backbone.preprocess;
    let img = match (&d.deep, key.view) {
        (Some(g), Some(v)) => image::DynamicImage::ImageLuma8(g.render(&v.view())),
        _ => d.image,
    };
    let input = if key.view.is_none() && key.frame == 0 {
        pre.load_bytes(&bytes).map_err(|e| e.0)?
    } else {
        pre.apply(&img)
    };
    Ok((input, (img.width(), img.height())))
}
