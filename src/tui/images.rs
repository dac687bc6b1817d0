//! Images for the dashboard, prepared off the UI thread: workers decode, downscale to the cell
//! size and encode for the terminal's protocol; the UI only draws ready protocols with the
//! stateless `Image` widget. Requests are a "wanted" list the UI replaces every frame (visible
//! items first), so stale requests are dropped rather than queued. Results live in a bounded
//! in-memory cache; downscaled thumbnails also on disk (XDG cache), keyed by file identity and
//! thumbnail parameters.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};

use image::DynamicImage;
use osteoai_core::cache::{DiskCache, Fnv, cache_root, file_key};
use ratatui::layout::Size;
use ratatui_image::Resize;
use ratatui_image::picker::Picker;
use ratatui_image::protocol::Protocol;

use super::event::Event;
use super::window_level::PreviewInfo;
use osteoai_core::decode::window::{Choice, View};

/// An image at a size in cells, with the viewer's window and frame (None and 0: as scored).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImgKey {
    pub path: PathBuf,
    pub cols: u16,
    pub rows: u16,
    pub view: Option<ViewKey>,
    pub frame: u32,
    /// A heatmap drawn over the image (the preview with `e`).
    pub heat: Option<HeatKey>,
}

/// A heatmap as part of an image key: compared and hashed by an identity of its contents.
#[derive(Clone, Debug)]
pub struct HeatKey {
    id: u64,
    pub map: Arc<osteoai_core::explain::Heatmap>,
}

impl HeatKey {
    pub fn new(map: Arc<osteoai_core::explain::Heatmap>) -> HeatKey {
        let mut h = Fnv::new();
        h.write(map.method.name().as_bytes());
        h.write(&(map.class as u64).to_le_bytes());
        h.write(&(map.grid_w as u64).to_le_bytes());
        for v in &map.values {
            h.write(&v.to_bits().to_le_bytes());
        }
        HeatKey {
            id: h.finish(),
            map,
        }
    }
}

impl PartialEq for HeatKey {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for HeatKey {}

impl std::hash::Hash for HeatKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id.hash(state)
    }
}

impl ImgKey {
    /// The image as scored (the rule's window, the first frame).
    pub fn new(path: PathBuf, cols: u16, rows: u16) -> ImgKey {
        ImgKey {
            path,
            cols,
            rows,
            view: None,
            frame: 0,
            heat: None,
        }
    }
}

/// A `View` that can key a cache (its numbers by their bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ViewKey {
    kind: u8,
    index: usize,
    center: u64,
    width: u64,
    invert: bool,
}

impl ViewKey {
    pub fn of(v: &View) -> ViewKey {
        let (kind, index, center, width) = match v.choice {
            Choice::File(i) => (0, i, 0.0, 0.0),
            Choice::Auto => (1, 0, 0.0, 0.0),
            Choice::Full => (2, 0, 0.0, 0.0),
            Choice::Manual { center, width } => (3, 0, center, width),
        };
        ViewKey {
            kind,
            index,
            center: center.to_bits(),
            width: width.to_bits(),
            invert: v.invert,
        }
    }

    pub fn view(&self) -> View {
        let choice = match self.kind {
            0 => Choice::File(self.index),
            1 => Choice::Auto,
            2 => Choice::Full,
            _ => Choice::Manual {
                center: f64::from_bits(self.center),
                width: f64::from_bits(self.width),
            },
        };
        View {
            choice,
            invert: self.invert,
        }
    }
}

pub enum ImgEntry {
    /// Ready to draw, with what the worker learned about the file.
    Ready(Protocol, Option<Arc<PreviewInfo>>),
    Failed(String),
}

struct Shared {
    wanted: VecDeque<ImgKey>,
    in_progress: HashSet<ImgKey>,
    stop: bool,
    /// The protocol images are prepared for; replaced when the terminal's answer arrives.
    picker: Picker,
    /// Bumped with every new picker: results prepared for an older one are dropped.
    generation: u64,
    /// `--show-phi`: read patient data for the metadata panel.
    show_phi: bool,
}

impl Shared {
    fn new(picker: Picker) -> Shared {
        Shared {
            wanted: VecDeque::new(),
            in_progress: HashSet::new(),
            stop: false,
            picker,
            generation: 0,
            show_phi: false,
        }
    }
}

/// The worker pool and the cache of prepared images.
pub struct Images {
    shared: Arc<(Mutex<Shared>, Condvar)>,
    cache: HashMap<ImgKey, ImgEntry>,
    order: VecDeque<ImgKey>,
    capacity: usize,
    /// The last preview drawn, kept until its successor is ready.
    pub last_preview: Option<ImgKey>,
    pub picker: Picker,
    generation: u64,
}

impl Images {
    /// Starts `workers` threads that send `Event::Image` results on `tx`.
    pub fn start(
        picker: Picker,
        workers: usize,
        tx: std::sync::mpsc::Sender<Event>,
        capacity: usize,
    ) -> Images {
        let shared = Arc::new((Mutex::new(Shared::new(picker.clone())), Condvar::new()));
        let disk = DiskCache::new(cache_root().join("thumbnails"));
        for n in 0..workers.max(1) {
            let shared = shared.clone();
            let tx = tx.clone();
            let disk = disk.clone();
            let _ = std::thread::Builder::new()
                .name(format!("images-{n}"))
                .spawn(move || {
                    loop {
                        let (key, picker, generation, show_phi) = {
                            let (lock, cv) = &*shared;
                            let mut s = lock.lock().unwrap_or_else(|p| p.into_inner());
                            loop {
                                if s.stop {
                                    return;
                                }
                                if let Some(k) = s.wanted.pop_front() {
                                    if s.in_progress.insert(k.clone()) {
                                        break (k, s.picker.clone(), s.generation, s.show_phi);
                                    }
                                    continue;
                                }
                                s = cv.wait(s).unwrap_or_else(|p| p.into_inner());
                            }
                        };
                        let entry = prepare(&picker, &disk, &key, show_phi);
                        {
                            let mut s = shared.0.lock().unwrap_or_else(|p| p.into_inner());
                            s.in_progress.remove(&key);
                        }
                        if tx.send(Event::Image(key, entry, generation)).is_err() {
                            return;
                        }
                    }
                });
        }
        Images {
            shared,
            cache: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(8),
            last_preview: None,
            picker,
            generation: 0,
        }
    }

    /// A cache with no workers (tests render from what they insert).
    #[cfg(test)]
    pub fn offline(picker: Picker) -> Images {
        Images {
            shared: Arc::new((Mutex::new(Shared::new(picker.clone())), Condvar::new())),
            cache: HashMap::new(),
            order: VecDeque::new(),
            capacity: 64,
            last_preview: None,
            picker,
            generation: 0,
        }
    }

    pub fn get(&self, key: &ImgKey) -> Option<&ImgEntry> {
        self.cache.get(key)
    }

    /// Stores a prepared image, unless it was made for a picker since replaced.
    pub fn insert(&mut self, key: ImgKey, entry: ImgEntry, generation: u64) {
        if generation != self.generation {
            return;
        }
        if self.cache.insert(key.clone(), entry).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front()
                && Some(&old) != self.last_preview.as_ref()
            {
                self.cache.remove(&old);
            }
        }
    }

    /// Replaces the wanted list (most important first), skipping what is ready.
    pub fn want(&self, keys: Vec<ImgKey>) {
        let (lock, cv) = &*self.shared;
        let mut s = lock.lock().unwrap_or_else(|p| p.into_inner());
        s.wanted = keys
            .into_iter()
            .filter(|k| !self.cache.contains_key(k))
            .collect();
        if !s.wanted.is_empty() {
            cv.notify_all();
        }
    }

    /// Prepares everything from now on for `picker` (the terminal's answer arrived): what was
    /// made for the previous one is dropped and made again as it is wanted.
    pub fn set_picker(&mut self, picker: Picker) {
        self.generation += 1;
        {
            let mut s = self.shared.0.lock().unwrap_or_else(|p| p.into_inner());
            s.picker = picker.clone();
            s.generation = self.generation;
            s.wanted.clear();
        }
        self.picker = picker;
        self.cache.clear();
        self.order.clear();
        self.last_preview = None;
    }

    /// Lets the workers read patient data for the metadata panel (`--show-phi`).
    pub fn set_show_phi(&self, on: bool) {
        self.shared
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .show_phi = on;
    }

    pub fn stop(&self) {
        let (lock, cv) = &*self.shared;
        lock.lock().unwrap_or_else(|p| p.into_inner()).stop = true;
        cv.notify_all();
    }
}

impl Drop for Images {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How an image meets its cells: as large as they allow, aspect kept (small images are scaled up,
/// so a 256-pixel radiograph fills the preview instead of a third of it).
pub fn fill() -> Resize {
    Resize::Scale(Some(image::imageops::FilterType::Triangle))
}

/// Decode (or read the downscaled copy from the disk cache), fit to the cells, encode. Only
/// 8-bit images as scored go to the disk cache: deeper ones and DICOM are windowed again, and
/// their metadata is never written to disk.
pub(super) fn prepare(picker: &Picker, disk: &DiskCache, key: &ImgKey, show_phi: bool) -> ImgEntry {
    let font = picker.font_size();
    let (pw, ph) = (
        key.cols as u32 * font.width as u32,
        key.rows as u32 * font.height as u32,
    );
    if pw == 0 || ph == 0 {
        return ImgEntry::Failed("no room".into());
    }
    let plain = key.view.is_none() && key.frame == 0;
    let mut salt = Fnv::new();
    salt.write(&pw.to_le_bytes());
    salt.write(&ph.to_le_bytes());
    salt.write(b"thumb-v1");
    let dkey = file_key(&key.path, salt.finish()).filter(|_| plain);
    let cached = dkey
        .and_then(|k| disk.get_bytes(k))
        .and_then(|b| image::load_from_memory(&b).ok());
    let (img, info) = match cached {
        // Only 8-bit images are cached: their size from the header is all the panel shows.
        Some(img) => {
            let plain = image::image_dimensions(&key.path)
                .map(|(w, h)| format!("{w} × {h} · 8-bit"))
                .ok();
            let info = PreviewInfo {
                frames: 1,
                plain,
                ..Default::default()
            };
            (img, Some(Arc::new(info)))
        }
        None => {
            let bytes = match osteoai_core::decode::imaging::read_limited(&key.path) {
                Ok(b) => b,
                Err(e) => return ImgEntry::Failed(e.0),
            };
            let d = match osteoai_core::decode::imaging::decode_full(&bytes, key.frame) {
                Ok(d) => d,
                Err(e) => return ImgEntry::Failed(e.0),
            };
            let view = key.view.map(|v| v.view());
            let info = info_of(&d, view, show_phi, &bytes);
            let img = match (&d.deep, view) {
                (Some(g), Some(v)) => DynamicImage::ImageLuma8(g.render(&v)),
                _ => d.image,
            };
            // Downscale before encoding: only the pixels the cells can show.
            let small = if img.width() > pw || img.height() > ph {
                img.thumbnail(pw, ph)
            } else {
                img
            };
            let small = DynamicImage::ImageRgb8(small.to_rgb8());
            if let Some(k) = dkey.filter(|_| d.deep.is_none() && d.dicom.is_none()) {
                let mut png = Vec::new();
                if small
                    .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
                    .is_ok()
                {
                    disk.put_bytes(k, &png);
                }
            }
            (small, Some(Arc::new(info)))
        }
    };
    // The heatmap over the downscaled image: real pixels for kitty/sixel/iTerm2, colour
    // cells for halfblocks (the protocol samples these pixels).
    let img = match &key.heat {
        Some(h) => DynamicImage::ImageRgb8(osteoai_core::explain::overlay::overlay(
            &img.to_rgb8(),
            &h.map,
            false,
        )),
        None => img,
    };
    match picker.new_protocol(img, Size::new(key.cols, key.rows), fill()) {
        Ok(p) => ImgEntry::Ready(p, info),
        Err(e) => ImgEntry::Failed(format!("cannot encode for the terminal: {e}")),
    }
}

/// What the preview shows of a decoded file besides its pixels.
pub fn info_of(
    d: &osteoai_core::decode::imaging::Decoded,
    view: Option<View>,
    show_phi: bool,
    bytes: &[u8],
) -> PreviewInfo {
    let mut info = PreviewInfo {
        frames: 1,
        ..Default::default()
    };
    if let Some(g) = &d.deep {
        let v = view.unwrap_or_else(|| g.default_view());
        info.title = Some(g.describe(&v));
        let cw = |w: osteoai_core::decode::window::Window| (w.center, w.width);
        info.file_windows = (0..g.vois.len())
            .map(|i| g.window_of(Choice::File(i)).map(cw))
            .collect();
        info.auto = g.window_of(Choice::Auto).map(cw);
        info.full = g.window_of(Choice::Full).map(cw);
    }
    match &d.dicom {
        Some(m) => {
            info.frames = m.frames;
            info.frame = m.frame;
            info.meta = Some(m.meta.rows_for_panel());
            if show_phi {
                info.phi = osteoai_core::decode::dicom::phi(bytes);
            }
        }
        None => {
            let depth = if d.deep.is_some() {
                "16-bit gray"
            } else {
                "8-bit"
            };
            info.plain = Some(format!(
                "{} × {} · {depth}",
                d.image.width(),
                d.image.height()
            ));
        }
    }
    info
}
