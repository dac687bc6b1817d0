//! The log file: `$XDG_STATE_HOME/osteoai/osteoai.YYYY-MM-DD.log` (else
//! `~/.local/state/osteoai/`), a new file each day, the last 7 kept. Never the terminal: the
//! dashboard owns it, and headless commands keep stdout for data. The level comes from
//! `--log-level` or `OSTEOAI_LOG` (error, warn, info, debug, trace, off; default info); other
//! crates log at warn and above. Device choice, worker errors, the duration of long jobs and every
//! file operation on your folders go there, so a problem met over SSH can be reported.

use std::path::PathBuf;

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::prelude::*;

/// Where logs go.
pub fn log_dir() -> Option<PathBuf> {
    osteoai_core::cache::state_root()
}

fn parse_level(s: &str) -> Result<LevelFilter, String> {
    s.trim()
        .parse::<LevelFilter>()
        .map_err(|_| format!("unknown log level {s:?}: error, warn, info, debug, trace or off"))
}

/// Starts the file logger; the guard flushes it when dropped (keep it until exit). None when
/// logging is off or the folder cannot be made (a note on stderr, outside the dashboard).
pub fn init(
    flag: Option<&str>,
    dashboard: bool,
) -> Result<Option<tracing_appender::non_blocking::WorkerGuard>, String> {
    let env = std::env::var("OSTEOAI_LOG").ok().filter(|v| !v.is_empty());
    let level = match flag.or(env.as_deref()) {
        Some(s) => parse_level(s)?,
        None => LevelFilter::INFO,
    };
    if level == LevelFilter::OFF {
        return Ok(None);
    }
    let Some(dir) = log_dir() else {
        return Ok(None);
    };
    // Made first: the appender reads the folder (to prune old files) before it writes.
    let _ = std::fs::create_dir_all(&dir);
    let appender = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("osteoai")
        .filename_suffix("log")
        .max_log_files(7)
        .build(&dir);
    let appender = match appender {
        Ok(a) => a,
        Err(e) => {
            if !dashboard {
                eprintln!("osteoai: no log file ({}): {e}", dir.display());
            }
            return Ok(None);
        }
    };
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter = Targets::new()
        .with_default(LevelFilter::WARN.min(level))
        .with_target("osteoai", level)
        .with_target("osteoai_core", level);
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(false)
        .with_thread_names(true);
    let _ = tracing_subscriber::registry()
        .with(layer.with_filter(filter))
        .try_init();
    Ok(Some(guard))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_and_unknown_ones_are_refused_with_the_list() {
        assert_eq!(parse_level("debug").unwrap(), LevelFilter::DEBUG);
        assert_eq!(parse_level(" OFF ").unwrap(), LevelFilter::OFF);
        let e = parse_level("loud").unwrap_err();
        assert!(e.contains("\"loud\"") && e.contains("trace"), "{e}");
    }
}
