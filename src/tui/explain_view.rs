//! The heatmap overlay on the preview (`e`): which map is wanted for the selected image (its
//! window and frame as shown, the class `>` picks, the method `M` picks), the maps the worker
//! has sent, bounded like the thumbnails. With no method picked the worker sends the model's
//! one-pass map first and then its default one (`refining` until it arrives).

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;

use osteoai_core::explain::{Heatmap, Method};

use super::images::ViewKey;

/// Maps kept (each is a few hundred floats).
const CAPACITY: usize = 256;

/// One map of one image as shown.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MapKey {
    pub path: PathBuf,
    pub view: Option<ViewKey>,
    pub frame: u32,
    /// `None`: the positive class.
    pub class: Option<usize>,
    /// `None`: the model's one-pass map, then its default one.
    pub method: Option<Method>,
}

#[derive(Clone, Debug)]
pub enum MapEntry {
    /// Asked for; nothing back yet.
    Pending,
    Ready {
        map: Arc<Heatmap>,
        /// A better map (the model's default method) is on its way.
        refining: bool,
    },
    Failed(String),
}

#[derive(Default)]
pub struct ExplainState {
    pub on: bool,
    pub class: Option<usize>,
    pub method: Option<Method>,
    /// The methods the loaded model supports (from the worker's answers).
    pub methods: Vec<Method>,
    cache: HashMap<MapKey, MapEntry>,
    order: VecDeque<MapKey>,
}

impl ExplainState {
    /// `e`: shows or hides the overlay; says what happens.
    pub fn toggle(&mut self) -> &'static str {
        self.on = !self.on;
        if self.on {
            "heatmap on (e or Esc hides · M method · > class)"
        } else {
            "heatmap off"
        }
    }

    /// `M`: the next method the model supports, then back to automatic.
    pub fn next_method(&mut self) -> String {
        self.method = match self.method {
            None => self.methods.first().copied(),
            Some(m) => self
                .methods
                .iter()
                .position(|x| *x == m)
                .and_then(|i| self.methods.get(i + 1).copied()),
        };
        self.on = true;
        match self.method {
            Some(m) => format!("heatmap method: {m}"),
            None => "heatmap method: automatic (fast map first, then the model's default)".into(),
        }
    }

    /// `>`: the next class of `names` (then back to the positive class).
    pub fn next_class(&mut self, names: &[String]) -> String {
        self.class = match self.class {
            None => Some(0),
            Some(c) if c + 1 < names.len() => Some(c + 1),
            Some(_) => None,
        };
        self.on = true;
        match self.class.and_then(|c| names.get(c)) {
            Some(n) => format!("heatmap of class {n}"),
            None => "heatmap of the positive class".into(),
        }
    }

    pub fn key(&self, path: PathBuf, view: Option<ViewKey>, frame: u32) -> MapKey {
        MapKey {
            path,
            view,
            frame,
            class: self.class,
            method: self.method,
        }
    }

    pub fn get(&self, key: &MapKey) -> Option<&MapEntry> {
        self.cache.get(key)
    }

    /// Whether `key` must be asked for (not asked yet); marks it asked.
    pub fn request(&mut self, key: &MapKey) -> bool {
        if self.cache.contains_key(key) {
            return false;
        }
        self.put(key.clone(), MapEntry::Pending);
        true
    }

    /// A map (or why there is none) from the worker.
    pub fn insert(&mut self, key: MapKey, entry: MapEntry, methods: Vec<Method>) {
        if !methods.is_empty() {
            self.methods = methods;
        }
        self.put(key, entry);
    }

    fn put(&mut self, key: MapKey, entry: MapEntry) {
        if self.cache.insert(key.clone(), entry).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.cache.remove(&old);
            }
        }
    }

    /// Forgets every map (another model was loaded).
    pub fn clear(&mut self) {
        self.cache.clear();
        self.order.clear();
        self.methods.clear();
        self.method = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycling_and_requests() {
        let mut s = ExplainState::default();
        assert!(s.toggle().starts_with("heatmap on"));
        s.methods = vec![Method::Occlusion, Method::ShapCam];
        assert_eq!(s.next_method(), "heatmap method: occlusion");
        assert_eq!(s.next_method(), "heatmap method: shap-cam");
        assert!(s.next_method().contains("automatic"));
        let names = vec!["fracture".to_string(), "nofracture".to_string()];
        assert_eq!(s.next_class(&names), "heatmap of class fracture");
        assert_eq!(s.next_class(&names), "heatmap of class nofracture");
        assert_eq!(s.next_class(&names), "heatmap of the positive class");
        let k = s.key("a.png".into(), None, 0);
        assert!(s.request(&k));
        assert!(!s.request(&k), "asked once");
        assert!(matches!(s.get(&k), Some(MapEntry::Pending)));
        for i in 0..CAPACITY + 5 {
            s.request(&s.key(format!("{i}.png").into(), None, 0));
        }
        assert!(s.get(&k).is_none(), "the oldest is dropped");
        s.clear();
        assert!(s.methods.is_empty() && s.method.is_none());
    }
}
