//! The configuration file, `$XDG_CONFIG_HOME/osteoai/config.toml` (else `~/.config/osteoai/`;
//! `OSTEOAI_CONFIG` names another file). Every key is optional; `osteoai config --default`
//! prints the documented default, which is also what an absent file means. An unknown key or a
//! bad value is an error that names its line: never ignored, and the dashboard does not start
//! with it. Shared by the command line and the dashboard.

use std::path::PathBuf;

use clap::ValueEnum;
use serde::Deserialize;
use toml::Spanned;

/// The documented default (`osteoai config --default`); a test parses it back.
pub const DEFAULT_TOML: &str = r##"# osteoai configuration: $XDG_CONFIG_HOME/osteoai/config.toml (or $OSTEOAI_CONFIG).
# Every key is optional; these are the defaults. Unknown keys are errors.

[model]
# Model bundle folder for every command; "" means $OSTEOAI_MODEL, else ./models/default,
# else the model built into the binary.
bundle = ""
# Where the CNN runs unless --device says: auto, cpu, flex, ndarray, gpu, gpu:K.
device = "auto"

[dashboard]
# Inline image protocol unless --protocol says: auto, kitty, sixel, iterm2, halfblocks.
protocol = "auto"
# Clicks and the wheel (false leaves the mouse to the terminal, as --no-mouse).
mouse = true
# Threshold step of + - ] [ (the { } keys step five times as far).
threshold_step = 0.01
# Grid thumbnail cell, in columns and rows.
thumbnail = [18, 9]

[finetune]
# What T in the dashboard fine-tunes with (as `osteoai train --finetune`); 0 means the default:
# 8 epochs, 320 px, batch 16.
epochs = 0
size = 0
batch = 0
# Blocks (of 16) kept frozen; unset: 0 on a GPU, 6 on the CPU.
# frozen_blocks = 6
# Unless the folder came from `osteoai split`, the audit first counts val/test images with a
# copy or the same patient in train; true re-splits in memory so none crosses (as --regroup).
regroup = false
# Batch norms while the backbone learns: "frozen" (folded) or "train" (as --batch-norm).
batch_norm = "frozen"

[colors]
# Names (red, light-green, dark-gray, ...), indexes ("42") or "#rrggbb". NO_COLOR turns all off.
title = "cyan"
warning = "yellow"
good = "green"
bad = "red"
dim = "dark-gray"
selected_bg = "blue"
selected_fg = "white"
focus = "yellow"
positive = "light-red"
negative = "light-green"

[keys]
# One character each ("space" for the space bar), for the list, grid and ROC views.
quit = "q"
help = "?"
down = "j"
up = "k"
first = "g"
last = "G"
classify = "c"
classify_all = "a"
filter_next = "f"
filter_previous = "F"
filter_label = "b"
filter_split = "p"
sort = "s"
search = "/"
matrix = "m"
clear_cell = "C"
view = "v"
zoom = "z"
review = "space"
flag = "x"
relabel = "R"
undo = "u"
export = "E"
audit = "A"
fit = "O"
scores = "o"
fine_tune = "T"
heatmap = "e"
heatmap_method = "M"
heatmap_class = ">"
"##;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct File {
    model: ModelSection,
    dashboard: DashboardSection,
    finetune: FinetuneSection,
    colors: std::collections::BTreeMap<String, Spanned<String>>,
    keys: std::collections::BTreeMap<String, Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct ModelSection {
    bundle: Option<String>,
    device: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct DashboardSection {
    protocol: Option<Spanned<String>>,
    mouse: Option<bool>,
    threshold_step: Option<Spanned<f64>>,
    thumbnail: Option<Spanned<[u16; 2]>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct FinetuneSection {
    epochs: Option<Spanned<usize>>,
    size: Option<Spanned<u32>>,
    batch: Option<Spanned<usize>>,
    frozen_blocks: Option<Spanned<usize>>,
    regroup: Option<bool>,
    batch_norm: Option<Spanned<String>>,
}

/// The actions of `[keys]` and their default characters.
pub const ACTIONS: &[(&str, char)] = &[
    ("quit", 'q'),
    ("help", '?'),
    ("down", 'j'),
    ("up", 'k'),
    ("first", 'g'),
    ("last", 'G'),
    ("classify", 'c'),
    ("classify_all", 'a'),
    ("filter_next", 'f'),
    ("filter_previous", 'F'),
    ("filter_label", 'b'),
    ("filter_split", 'p'),
    ("sort", 's'),
    ("search", '/'),
    ("matrix", 'm'),
    ("clear_cell", 'C'),
    ("view", 'v'),
    ("zoom", 'z'),
    ("review", ' '),
    ("flag", 'x'),
    ("relabel", 'R'),
    ("undo", 'u'),
    ("export", 'E'),
    ("audit", 'A'),
    ("fit", 'O'),
    ("scores", 'o'),
    ("fine_tune", 'T'),
    ("heatmap", 'e'),
    ("heatmap_method", 'M'),
    ("heatmap_class", '>'),
];

/// The colour names of `[colors]`.
pub const COLORS: &[&str] = &[
    "title",
    "warning",
    "good",
    "bad",
    "dim",
    "selected_bg",
    "selected_fg",
    "focus",
    "positive",
    "negative",
];

/// The settings, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub bundle: Option<PathBuf>,
    pub device: osteoai_core::device::DeviceChoice,
    pub protocol: crate::options::Protocol,
    pub mouse: bool,
    pub threshold_step: f64,
    pub thumbnail: (u16, u16),
    /// Colours set in the file, by name.
    pub colors: Vec<(String, ratatui::style::Color)>,
    /// Pressed character → the default character of its action (only where they differ, plus
    /// defaults left unbound, mapped to None).
    pub keymap: Vec<(char, Option<char>)>,
    /// `[finetune]`: the dashboard's fine-tuning recipe settings.
    pub finetune: osteoai_core::finetune::Overrides,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            bundle: None,
            device: osteoai_core::device::DeviceChoice::Auto,
            protocol: crate::options::Protocol::Auto,
            mouse: true,
            threshold_step: 0.01,
            thumbnail: (18, 9),
            colors: Vec::new(),
            keymap: Vec::new(),
            finetune: Default::default(),
        }
    }
}

/// Where the file is looked for.
pub fn path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("OSTEOAI_CONFIG").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(p));
    }
    Some(osteoai_core::cache::config_root()?.join("config.toml"))
}

/// Reads the file (absent: the defaults).
pub fn load() -> Result<Config, String> {
    let Some(p) = path() else {
        return Ok(Config::default());
    };
    match std::fs::read_to_string(&p) {
        Ok(text) => parse(&text).map_err(|e| format!("{}: {e}", p.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
        Err(e) => Err(format!("cannot read {}: {e}", p.display())),
    }
}

fn line_of(text: &str, at: usize) -> usize {
    text[..at.min(text.len())].matches('\n').count() + 1
}

/// Parses and validates a configuration text.
pub fn parse(text: &str) -> Result<Config, String> {
    let file: File = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| format!("line {}: ", line_of(text, s.start)));
        format!("{}{}", line.unwrap_or_default(), e.message())
    })?;
    let bad = |span: std::ops::Range<usize>, what: String| {
        format!("line {}: {what}", line_of(text, span.start))
    };
    let mut c = Config::default();
    if let Some(b) = file.model.bundle.filter(|b| !b.is_empty()) {
        c.bundle = Some(PathBuf::from(b));
    }
    if let Some(d) = &file.model.device {
        c.device = d
            .get_ref()
            .parse::<osteoai_core::device::DeviceChoice>()
            .map_err(|_| {
                bad(
                    d.span(),
                    format!(
                        "device {:?}: auto, cpu, flex, ndarray, gpu or gpu:K",
                        d.get_ref()
                    ),
                )
            })?;
    }
    if let Some(p) = &file.dashboard.protocol {
        c.protocol = crate::options::Protocol::from_str(p.get_ref(), true).map_err(|_| {
            bad(
                p.span(),
                format!(
                    "protocol {:?}: auto, kitty, sixel, iterm2 or halfblocks",
                    p.get_ref()
                ),
            )
        })?;
    }
    if let Some(m) = file.dashboard.mouse {
        c.mouse = m;
    }
    if let Some(s) = &file.dashboard.threshold_step {
        let v = *s.get_ref();
        if !(0.001..=0.5).contains(&v) {
            return Err(bad(
                s.span(),
                format!("threshold_step {v}: between 0.001 and 0.5"),
            ));
        }
        c.threshold_step = v;
    }
    if let Some(t) = &file.dashboard.thumbnail {
        let [w, h] = *t.get_ref();
        if !(6..=80).contains(&w) || !(4..=40).contains(&h) {
            return Err(bad(
                t.span(),
                format!("thumbnail [{w}, {h}]: 6-80 columns, 4-40 rows"),
            ));
        }
        c.thumbnail = (w, h);
    }
    let ft = &file.finetune;
    let nonzero =
        |v: &Option<Spanned<usize>>, max: usize, what: &str| -> Result<Option<usize>, String> {
            match v {
                None => Ok(None),
                Some(x) if *x.get_ref() == 0 => Ok(None),
                Some(x) if *x.get_ref() <= max => Ok(Some(*x.get_ref())),
                Some(x) => Err(bad(
                    x.span(),
                    format!("{what} {}: at most {max}", x.get_ref()),
                )),
            }
        };
    c.finetune.epochs = nonzero(&ft.epochs, 1000, "epochs")?;
    c.finetune.batch = nonzero(&ft.batch, 1024, "batch")?;
    c.finetune.regroup = ft.regroup.unwrap_or(false);
    if let Some(m) = &ft.batch_norm {
        c.finetune.batch_norm = osteoai_core::finetune::BatchNormMode::parse(m.get_ref())
            .map_err(|e| bad(m.span(), e))?;
    }
    if let Some(x) = &ft.frozen_blocks {
        if *x.get_ref() > 16 {
            return Err(bad(
                x.span(),
                format!("frozen_blocks {}: 0 to 16", x.get_ref()),
            ));
        }
        c.finetune.frozen_blocks = Some(*x.get_ref());
    }
    if let Some(z) = &ft.size
        && *z.get_ref() != 0
    {
        let v = *z.get_ref();
        if !(32..=1024).contains(&v) || !v.is_multiple_of(32) {
            return Err(bad(
                z.span(),
                format!("size {v}: a multiple of 32 from 32 to 1024"),
            ));
        }
        c.finetune.size = Some(v);
    }
    for (name, v) in &file.colors {
        if !COLORS.contains(&name.as_str()) {
            return Err(bad(
                v.span(),
                format!("unknown colour {name:?}; known: {}", COLORS.join(", ")),
            ));
        }
        let color = v.get_ref().parse::<ratatui::style::Color>().map_err(|_| {
            bad(
                v.span(),
                format!("{name} = {:?} is not a colour", v.get_ref()),
            )
        })?;
        c.colors.push((name.clone(), color));
    }
    let mut chosen: Vec<(&str, char, char)> = Vec::new(); // action, pressed, default
    for (action, default) in ACTIONS {
        let pressed = match file.keys.get(*action) {
            Some(v) => {
                let s = v.get_ref();
                let mut chars = s.chars();
                match (s.as_str(), chars.next(), chars.next()) {
                    ("space", _, _) => ' ',
                    (_, Some(ch), None) if !ch.is_control() => ch,
                    _ => {
                        return Err(bad(
                            v.span(),
                            format!("key {s:?} for {action}: one character, or \"space\""),
                        ));
                    }
                }
            }
            None => *default,
        };
        if let Some((other, ..)) = chosen.iter().find(|(_, p, _)| *p == pressed) {
            let span = file.keys.get(*action).or_else(|| file.keys.get(*other));
            let what = format!("{pressed:?} is bound to both {other} and {action}");
            return Err(match span {
                Some(v) => bad(v.span(), what),
                None => what,
            });
        }
        chosen.push((action, pressed, *default));
    }
    for (name, v) in &file.keys {
        if !ACTIONS.iter().any(|(a, _)| a == name) {
            let known: Vec<&str> = ACTIONS.iter().map(|(a, _)| *a).collect();
            return Err(bad(
                v.span(),
                format!("unknown action {name:?}; known: {}", known.join(", ")),
            ));
        }
    }
    for (_, pressed, default) in &chosen {
        if pressed != default {
            c.keymap.push((*pressed, Some(*default)));
        }
    }
    // A default key moved to another action and taken by none does nothing.
    for (_, _, default) in &chosen {
        if !chosen.iter().any(|(_, p, _)| p == default) {
            c.keymap.push((*default, None));
        }
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_and_bad_values_name_their_line() {
        let e = parse("[dashboard]\nmouse = true\nmuose = false\n").unwrap_err();
        assert!(e.starts_with("line 3:") && e.contains("muose"), "{e}");
        let e = parse("[model]\ndevice = \"tpu\"\n").unwrap_err();
        assert!(e.starts_with("line 2:") && e.contains("tpu"), "{e}");
        let e = parse("[colors]\ngood = \"grean\"\n").unwrap_err();
        assert!(e.starts_with("line 2:") && e.contains("grean"), "{e}");
        let e = parse("[keys]\n\nquit = \"x\"\n").unwrap_err();
        assert!(e.starts_with("line 3:") && e.contains("flag"), "{e}");
        let e = parse("[keys]\nteleport = \"t\"\n").unwrap_err();
        assert!(e.starts_with("line 2:") && e.contains("teleport"), "{e}");
        let e = parse("[dashboard]\nthumbnail = [2, 9]\n").unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
        let e = parse("[nonsense]\n").unwrap_err();
        assert!(e.starts_with("line 1:") && e.contains("nonsense"), "{e}");
        let e = parse("[finetune]\nepochs = 2\nbatch_norm = \"folded\"\n").unwrap_err();
        assert!(e.starts_with("line 3:") && e.contains("folded"), "{e}");
        let c = parse("[finetune]\nbatch_norm = \"train\"\n").unwrap();
        assert_eq!(
            c.finetune.batch_norm,
            osteoai_core::finetune::BatchNormMode::Train
        );
    }

    #[test]
    fn a_rebound_key_maps_to_its_action_and_the_old_key_goes_quiet() {
        let c = parse("[keys]\nquit = \"Q\"\nreview = \"r\"\n").unwrap();
        assert!(c.keymap.contains(&('Q', Some('q'))));
        assert!(c.keymap.contains(&('r', Some(' '))));
        assert!(c.keymap.contains(&('q', None)));
        assert!(c.keymap.contains(&(' ', None)));
        // Swapping two keys is fine.
        let c = parse("[keys]\ndown = \"k\"\nup = \"j\"\n").unwrap();
        assert!(c.keymap.contains(&('k', Some('j'))) && c.keymap.contains(&('j', Some('k'))));
        assert!(!c.keymap.iter().any(|(_, to)| to.is_none()));
    }
}
