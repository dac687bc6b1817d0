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
use osteoai::cache::{DiskCache, Fnv, cache_root, file_key};
use ratatui::layout::Size;
use ratatui_image::Resize;
use ratatui_image::picker::Picker;
use ratatui_image::protocol::Protocol;

use super::event::Event;

/// An image at a size in cells.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImgKey {
    pub path: PathBuf,
    pub cols: u16,
    pub rows: u16,
}

pub enum ImgEntry {
    Ready(Protocol),
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
}

impl Shared {
    fn new(picker: Picker) -> Shared {
        Shared {
            wanted: VecDeque::new(),
            in_progress: HashSet::new(),
            stop: false,
            picker,
            generation: 0,
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
                        let (key, picker, generation) = {
                            let (lock, cv) = &*shared;
                            let mut s = lock.lock().unwrap_or_else(|p| p.into_inner());
                            loop {
                                if s.stop {
                                    return;
                                }
                                if let Some(k) = s.wanted.pop_front() {
                                    if s.in_progress.insert(k.clone()) {
                                        break (k, s.picker.clone(), s.generation);
                                    }
                                    continue;
                                }
                                s = cv.wait(s).unwrap_or_else(|p| p.into_inner());
                            }
                        };
                        let entry = prepare(&picker, &disk, &key);
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

/// Decode (or read the downscaled copy from the disk cache), fit to the cells, encode.
fn prepare(picker: &Picker, disk: &DiskCache, key: &ImgKey) -> ImgEntry {
    let font = picker.font_size();
    let (pw, ph) = (
        key.cols as u32 * font.width as u32,
        key.rows as u32 * font.height as u32,
    );
    if pw == 0 || ph == 0 {
        return ImgEntry::Failed("no room".into());
    }
    let mut salt = Fnv::new();
    salt.write(&pw.to_le_bytes());
    salt.write(&ph.to_le_bytes());
    salt.write(b"thumb-v1");
    let dkey = file_key(&key.path, salt.finish());
    let cached = dkey
        .and_then(|k| disk.get_bytes(k))
        .and_then(|b| image::load_from_memory(&b).ok());
    let img = match cached {
        Some(img) => img,
        None => match osteoai::imaging::decode(&key.path) {
            Ok(img) => {
                // Downscale before encoding: only the pixels the cells can show.
                let small = if img.width() > pw || img.height() > ph {
                    img.thumbnail(pw, ph)
                } else {
                    img
                };
                let small = DynamicImage::ImageRgb8(small.to_rgb8());
                if let Some(k) = dkey {
                    let mut png = Vec::new();
                    if small
                        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
                        .is_ok()
                    {
                        disk.put_bytes(k, &png);
                    }
                }
                small
            }
            Err(e) => return ImgEntry::Failed(e.0),
        },
    };
    match picker.new_protocol(img, Size::new(key.cols, key.rows), fill()) {
        Ok(p) => ImgEntry::Ready(p),
        Err(e) => ImgEntry::Failed(format!("cannot encode for the terminal: {e}")),
    }
}
