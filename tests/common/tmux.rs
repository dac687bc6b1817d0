//! A dashboard in a real terminal: tmux sessions driven by keys and read back with
//! capture-pane.

use std::process::Command;
use std::time::{Duration, Instant};

/// The environment a dashboard under test gets: its own cache, log and configuration folders,
/// no colour.
pub fn isolated_env(cache: &std::path::Path) -> String {
    let c = cache.display();
    format!("XDG_CACHE_HOME={c} XDG_STATE_HOME={c}/state XDG_CONFIG_HOME={c}/config NO_COLOR=1")
}

/// The checkout's dashboard on `dir` (CPU, half blocks, isolated folders, `extra` arguments) in
/// a new session.
pub fn dashboard(name: &str, dir: &std::path::Path, cache: &std::path::Path, extra: &str) -> Tmux {
    let cmd = format!(
        "cd {} && {} {} {} --device cpu --protocol halfblocks {extra}",
        super::root().display(),
        isolated_env(cache),
        env!("CARGO_BIN_EXE_osteoai"),
        dir.display()
    );
    Tmux::start(name, &cmd)
}

pub struct Tmux {
    pub name: String,
}

impl Tmux {
    /// A detached session of 120x40 running `cmd` (a terminal that never answers queries: no
    /// client is attached).
    pub fn start(name: &str, cmd: &str) -> Tmux {
        let t = Tmux {
            name: format!("osteoai-{name}-{}", std::process::id()),
        };
        let ok = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &t.name,
                "-x",
                "120",
                "-y",
                "40",
                cmd,
            ])
            .status()
            .unwrap()
            .success();
        assert!(ok, "tmux new-session");
        t
    }
    /// Bytes as the terminal would send them (e.g. a mouse report), not as key names.
    pub fn literal(&self, bytes: &str) {
        let ok = Command::new("tmux")
            .args(["send-keys", "-l", "-t", &self.name, bytes])
            .status()
            .unwrap()
            .success();
        assert!(ok, "tmux send-keys -l");
        std::thread::sleep(Duration::from_millis(150));
    }
    /// A tmux format of the pane, e.g. `#{alternate_on}`.
    pub fn display(&self, format: &str) -> String {
        let o = Command::new("tmux")
            .args(["display-message", "-p", "-t", &self.name, format])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }
    pub fn keys(&self, keys: &[&str]) {
        for k in keys {
            let ok = Command::new("tmux")
                .args(["send-keys", "-t", &self.name, k])
                .status()
                .unwrap()
                .success();
            assert!(ok, "tmux send-keys {k}");
            std::thread::sleep(Duration::from_millis(150));
        }
    }
    pub fn screen(&self) -> String {
        let o = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
    /// The screen with its colours (SGR escape sequences), as `capture-pane -e`.
    pub fn screen_with_colours(&self) -> String {
        let o = Command::new("tmux")
            .args(["capture-pane", "-e", "-p", "-t", &self.name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
    pub fn wait_for(&self, what: &str, f: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if f(&s) {
                return s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(180),
                "timed out waiting for {what}; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    pub fn alive(&self) -> bool {
        Command::new("tmux")
            .args(["has-session", "-t", &self.name])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.name])
            .output();
    }
}

/// Whether tmux is here (required under CI).
pub fn have_tmux() -> bool {
    if Command::new("tmux").arg("-V").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "tmux is required in CI (scripts/setup.sh installs it)"
        );
        eprintln!("SKIPPED: tmux is not installed");
        return false;
    }
    true
}

pub fn quit(t: &Tmux) {
    t.keys(&["q"]);
    let start = Instant::now();
    while t.alive() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!t.alive(), "the dashboard quits on q");
}
