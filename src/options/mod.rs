//! What both front ends share, so that neither imports the other: the dashboard's and the
//! model's command-line options, the configuration file, the log file, the model folder rule
//! (with the bundle built into the binary) and process helpers. `main.rs` hands the parsed
//! options to the command line (`cli`) or the dashboard (`tui`).

mod bundled;
pub mod config;
pub mod logging;

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use osteoai_core::device::DeviceChoice;

#[derive(Args, Debug, Clone)]
pub struct DashboardArgs {
    /// Folder (or image) to open in the dashboard [default: the current folder].
    pub dir: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Inline image protocol.
    #[arg(long, value_enum, default_value_t = Protocol::Auto)]
    pub protocol: Protocol,
    /// Leave the mouse to the terminal (its own selection); also OSTEOAI_NO_MOUSE=1.
    #[arg(long)]
    pub no_mouse: bool,
    /// Show the scores of this file (`classify --output`, `merge`) instead of loading a model:
    /// list, live matrix, filters and review work as usual; audit and fit need a model.
    #[arg(long, value_name = "FILE")]
    pub scores: Option<PathBuf>,
    /// Show patient-identifying DICOM attributes (name, ID, birth date, addresses, accession
    /// number, institution, dates) in the metadata panel. Off by default: they are never
    /// shown, exported or logged otherwise.
    #[arg(long)]
    pub show_phi: bool,
    /// Patients for the dashboard's audit and fit (`A`, `O`): a CSV `path,group` (paths
    /// relative to DIR or absolute), as `audit --groups`; films of one patient across splits
    /// are `same_patient` findings and stay in one fold.
    #[arg(long, value_name = "FILE")]
    pub groups: Option<PathBuf>,
    /// The N-th folder under DIR names the patient (as `audit --group-dir`).
    #[arg(long, value_name = "N")]
    pub group_dir: Option<usize>,
}

#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// Model bundle folder [default: $OSTEOAI_MODEL, else models/default].
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// Where the CNN runs: auto (a hardware GPU when one answers, else the CPU), cpu (osteoai's
    /// kernels), flex or ndarray (burn's CPU backends), gpu, or gpu:K (the K-th GPU of `osteoai
    /// devices`).
    #[arg(long, default_value = "auto", value_name = "DEVICE")]
    pub device: DeviceChoice,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    Auto,
    Kitty,
    Sixel,
    Iterm2,
    Halfblocks,
}

/// `osteoai bench-ui`: the dashboard's responsiveness on a large generated folder.
#[derive(clap::Args, Debug)]
pub struct BenchUiArgs {
    /// Folder to open; generated (and reused) when it does not exist.
    #[arg(long, default_value = "/tmp/osteoai-bench-100k")]
    pub dir: PathBuf,
    /// Images to generate.
    #[arg(long, default_value_t = 100_000)]
    pub images: usize,
    /// Width and height of the generated images (e.g. 2000 for radiograph-sized JPEGs).
    #[arg(long, default_value_t = 64)]
    pub side: u32,
    /// Seconds of key presses while the folder is being classified.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    #[command(flatten)]
    pub model: ModelArgs,
}

/// The model folder: --model, else $OSTEOAI_MODEL, else ./models/default, else the default
/// bundle built into this binary (unpacked into the cache folder).
pub fn model_dir(arg: &Option<PathBuf>) -> Result<PathBuf, String> {
    if let Some(p) = arg {
        return Ok(p.clone());
    }
    if let Some(p) = std::env::var_os("OSTEOAI_MODEL").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let local = PathBuf::from("models/default");
    if local.join("manifest.json").is_file() {
        return Ok(local);
    }
    bundled::default_bundle()
}

/// Peak resident memory of this process (Linux), in MiB.
pub fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// `mi_option_purge_delay` (position 15 of `mi_option_e` in mimalloc 2 and 3's mimalloc.h):
/// milliseconds before freed pages go back to the system; 0 at once, -1 never.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Memory before speed: freed pages go back to the system at once (the dashboard, which keeps
/// its peak RSS under 300 MB and scores a few images at a time).
pub fn return_memory_at_once() {
    // SAFETY: sets one of mimalloc's global options; any thread may do so at any time.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
}

/// Speed before memory while a network learns on the CPU: burn-flex writes every operation's
/// result into a fresh buffer, so each training step frees and allocates the same large
/// activations again; pages given back to the system between steps come back zeroed by the
/// kernel, which was a quarter of a step's time (`perf`: `clear_page_erms`; 182,000 page
/// faults in five steps at 224 px, 7,900 kept). Kept until the guard is dropped; then the
/// previous setting returns and the freed pages go back.
pub struct KeepFreedMemory {
    previous: std::os::raw::c_long,
}

pub fn keep_freed_memory() -> KeepFreedMemory {
    // SAFETY: reads and sets one of mimalloc's global options; any thread may at any time.
    let previous = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
    // SAFETY: as above.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    KeepFreedMemory { previous }
}

impl Drop for KeepFreedMemory {
    fn drop(&mut self) {
        // SAFETY: sets the option back, then asks mimalloc to give freed pages back now.
        unsafe {
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, self.previous);
            libmimalloc_sys::mi_collect(true);
        }
    }
}

/// Where the audit, `split`, `fit` and `train --finetune` learn which films belong to one
/// patient.
#[derive(Args, Debug, Clone, Default)]
pub struct PatientArgs {
    /// Patients from a CSV (`path,group`; paths relative to DIR or absolute): one patient's
    /// films are reported when they cross splits (`same_patient`) and kept in one split.
    #[arg(long, value_name = "FILE")]
    pub groups: Option<PathBuf>,
    /// The N-th folder under DIR names the patient (3 for DIR/train/fracture/patient0042/…).
    #[arg(long, value_name = "N")]
    pub group_dir: Option<usize>,
    /// Do not group DICOM files by PatientID (else StudyInstanceUID); compared as salted
    /// hashes, never shown.
    #[arg(long)]
    pub no_dicom_patients: bool,
}

impl PatientArgs {
    pub fn options(&self) -> osteoai_core::audit::patients::PatientOptions {
        osteoai_core::audit::patients::PatientOptions {
            groups_file: self.groups.clone(),
            group_dir: self.group_dir,
            dicom: !self.no_dicom_patients,
        }
    }
}
