//! The real terminal around the dashboard: the input thread (keys and answers from one byte
//! stream, see [`super::input`]), the image-capability query written after the first frame and
//! answered whenever the terminal likes, and the signals that end a session over SSH (SIGTERM,
//! SIGHUP, SIGINT, SIGQUIT) and resize it (SIGWINCH).

use std::io::{IsTerminal, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::mpsc::Sender;
use std::time::Duration;

use ratatui_image::FontSize;
use ratatui_image::picker::cap_parser::{Parser, QueryStdioOptions, Response};
use ratatui_image::picker::{Picker, ProtocolType};

use super::event::Event;
use super::input::{Decoder, Input};
use crate::options::Protocol;

const MOUSE_ON: &str = "\x1b[?1000h\x1b[?1002h\x1b[?1006h";
const MOUSE_OFF: &str = "\x1b[?1006l\x1b[?1002l\x1b[?1000l";

/// Clicks, wheel and drags reported as SGR sequences (no bare motion: it would flood the input).
pub fn enable_mouse() {
    let mut out = std::io::stdout();
    let _ = out.write_all(MOUSE_ON.as_bytes()).and_then(|_| out.flush());
}

/// Leaves the terminal as it was found: mouse reporting off, main screen, cursor shown, cooked
/// mode. Safe to call more than once and from any thread.
pub fn restore() {
    let mut out = std::io::stdout();
    let _ = out
        .write_all(MOUSE_OFF.as_bytes())
        .and_then(|_| out.flush());
    ratatui::restore();
}

/// Chains a terminal restore (mouse included) before the panic hook already installed
/// (ratatui's, which restores the screen, then the default report).
pub fn install_panic_restore() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let mut out = std::io::stdout();
        let _ = out
            .write_all(MOUSE_OFF.as_bytes())
            .and_then(|_| out.flush());
        previous(info);
    }));
}

/// Whether we run inside tmux (its queries need the passthrough wrapper).
pub fn in_tmux() -> bool {
    std::env::var("TERM").is_ok_and(|t| t.starts_with("tmux"))
        || std::env::var("TERM_PROGRAM").is_ok_and(|t| t == "tmux")
}

/// The capability query to write after the first frame, or None when nothing is to be asked
/// (halfblocks chosen, or no terminal).
pub fn query(protocol: Protocol) -> Option<String> {
    if protocol == Protocol::Halfblocks
        || !std::io::stdout().is_terminal()
        || !std::io::stdin().is_terminal()
    {
        return None;
    }
    let mut options = QueryStdioOptions::default();
    // As ratatui-image: WezTerm and Konsole draw iTerm2 images better than their kitty/sixel.
    let env_set = |k: &str| std::env::var(k).is_ok_and(|v| !v.is_empty());
    if env_set("WEZTERM_EXECUTABLE") || env_set("KONSOLE_VERSION") {
        options.blacklist_protocols = vec![ProtocolType::Kitty, ProtocolType::Sixel];
    }
    Some(Parser::query(in_tmux(), options))
}

/// What the terminal said, gathered until its status report closes the answer.
#[derive(Default)]
pub struct Answers {
    responses: Vec<Response>,
    done: bool,
}

impl Answers {
    /// Takes one reply; returns true when the answer is complete (status report seen).
    pub fn push(&mut self, reply: &[u8]) -> bool {
        if self.done {
            return false;
        }
        let mut parser = Parser::new();
        for &b in reply {
            for r in parser.push(char::from(b)) {
                if r == Response::Status {
                    self.done = true;
                } else {
                    self.responses.push(r);
                }
            }
        }
        self.done
    }

    /// The best protocol the answers allow and the cell size in pixels, if known.
    pub fn detected(&self) -> (Option<ProtocolType>, Option<FontSize>) {
        let mut proto = None;
        let mut font = None;
        for r in &self.responses {
            match r {
                Response::Kitty => proto = Some(ProtocolType::Kitty),
                Response::Sixel if proto.is_none() => proto = Some(ProtocolType::Sixel),
                Response::CellSize(Some((w, h))) if *w > 0 && *h > 0 => {
                    font = Some(FontSize::new(*w, *h))
                }
                _ => {}
            }
        }
        (proto, font)
    }
}

/// iTerm2-protocol terminals known from the environment (they do not answer the query).
fn iterm2_from_env() -> bool {
    let program = std::env::var("TERM_PROGRAM").unwrap_or_default();
    [
        "iTerm",
        "WezTerm",
        "mintty",
        "vscode",
        "Tabby",
        "Hyper",
        "rio",
        "WarpTerminal",
    ]
    .iter()
    .any(|p| program.contains(p))
        || std::env::var("LC_TERMINAL").is_ok_and(|t| t.contains("iTerm"))
}

/// The cell size from the terminal driver, when the terminal reports pixels.
fn font_from_ioctl() -> Option<FontSize> {
    let w = crossterm::terminal::window_size().ok()?;
    (w.width > 0 && w.height > 0 && w.columns > 0 && w.rows > 0)
        .then(|| FontSize::new(w.width / w.columns, w.height / w.rows))
}

/// The picker for a complete answer: what the user forced, else what the terminal supports;
/// None when halfblocks (already in use) stays the best choice.
pub fn picker_from(answers: &Answers, forced: Protocol) -> Option<Picker> {
    let (found, font) = answers.detected();
    let font = font.or_else(font_from_ioctl)?;
    let proto = match forced {
        Protocol::Kitty => ProtocolType::Kitty,
        Protocol::Sixel => ProtocolType::Sixel,
        Protocol::Iterm2 => ProtocolType::Iterm2,
        Protocol::Halfblocks => return None,
        Protocol::Auto => found.or(iterm2_from_env().then_some(ProtocolType::Iterm2))?,
    };
    // `from_fontsize` is the one constructor that takes a measured cell size without querying
    // again (it also detects tmux, for the passthrough wrapper).
    #[allow(deprecated)]
    let mut picker = Picker::from_fontsize(font);
    picker.set_protocol_type(proto);
    Some(picker)
}

/// The terminal's input: stdin when it is a terminal, else the controlling terminal.
fn open_tty() -> Option<std::fs::File> {
    if std::io::stdin().is_terminal() {
        // SAFETY: fd 0 stays open for the life of the process; the duplicate is ours to close.
        let fd = unsafe { libc::dup(std::io::stdin().as_raw_fd()) };
        (fd >= 0).then(|| unsafe { std::fs::File::from_raw_fd(fd) })
    } else {
        std::fs::File::open("/dev/tty").ok()
    }
}

/// Waits up to `timeout` (None: for ever) for `fd` to be readable.
fn readable(fd: i32, timeout: Option<Duration>) -> bool {
    let ms = timeout.map_or(-1, |t| t.as_millis().min(i32::MAX as u128) as i32);
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd for the duration of the call.
        let r = unsafe { libc::poll(&mut p, 1, ms) };
        if r >= 0 {
            return r > 0;
        }
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return true; // let read() report the error
        }
    }
}

/// Reads the terminal on its own thread: every byte goes through one decoder, keys become
/// `Event::Key`, answers `Event::Reply`. Ends when the terminal closes or the UI is gone.
pub fn spawn_input(tx: Sender<Event>) {
    let _ = std::thread::Builder::new()
        .name("input".into())
        .spawn(move || {
            let Some(mut tty) = open_tty() else { return };
            let fd = tty.as_raw_fd();
            let mut decoder = Decoder::default();
            let mut buf = [0u8; 4096];
            let mut out = Vec::new();
            loop {
                let wait = decoder.wait_for_more();
                if readable(fd, wait) {
                    match tty.read(&mut buf) {
                        Ok(0) => return,
                        Ok(n) => decoder.feed(&buf[..n], &mut out),
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(_) => return,
                    }
                } else {
                    decoder.flush(&mut out);
                }
                let now = std::time::Instant::now();
                for input in out.drain(..) {
                    let ev = match input {
                        Input::Key(k) => Event::Key(k, now),
                        Input::Reply(r) => Event::Reply(r),
                        Input::Mouse(m) => Event::Mouse(m),
                    };
                    if tx.send(ev).is_err() {
                        return;
                    }
                }
            }
        });
}

/// Turns SIGTERM, SIGHUP, SIGINT and SIGQUIT into `Event::Signal` (the UI loop ends, the
/// terminal is restored, the exit status is 128 + the signal) and SIGWINCH into a redraw. Should
/// the UI not end within 3 s, or a second signal come, this thread restores the terminal itself
/// and exits.
pub fn spawn_signals(tx: Sender<Event>) {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGWINCH};
    let Ok(mut signals) =
        signal_hook::iterator::Signals::new([SIGTERM, SIGHUP, SIGINT, SIGQUIT, SIGWINCH])
    else {
        return;
    };
    let _ = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut ending = false;
            for sig in signals.forever() {
                if sig == SIGWINCH {
                    let _ = tx.send(Event::Resize);
                    continue;
                }
                if ending {
                    restore();
                    std::process::exit(128 + sig);
                }
                ending = true;
                let _ = tx.send(Event::Signal(sig));
                // Grace for the UI thread to finish the current event and leave by itself.
                let _ = std::thread::Builder::new()
                    .name("signal-grace".into())
                    .spawn(move || {
                        std::thread::sleep(Duration::from_secs(3));
                        ratatui::restore();
                        std::process::exit(128 + sig);
                    });
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(a: &Answers) -> (Option<ProtocolType>, Option<(u16, u16)>) {
        let (p, f) = a.detected();
        (p, f.map(|f| (f.width, f.height)))
    }

    #[test]
    fn answers_of_a_kitty_terminal_pick_kitty_with_its_cell_size() {
        let mut a = Answers::default();
        assert!(!a.push(b"\x1b_Gi=31;OK\x1b\\"));
        assert!(!a.push(b"\x1b[?62;4;22c"));
        assert!(!a.push(b"\x1b[6;20;10t"));
        assert!(a.push(b"\x1b[0n"));
        assert_eq!(d(&a), (Some(ProtocolType::Kitty), Some((10, 20))));
        let p = picker_from(&a, Protocol::Auto).expect("a picker");
        assert_eq!(p.protocol_type(), ProtocolType::Kitty);
        assert_eq!((p.font_size().width, p.font_size().height), (10, 20));
        // Forced by the user, whatever the terminal said.
        let p = picker_from(&a, Protocol::Iterm2).unwrap();
        assert_eq!(p.protocol_type(), ProtocolType::Iterm2);
    }

    #[test]
    fn a_sixel_terminal_gets_sixel_and_a_plain_one_keeps_halfblocks() {
        let mut a = Answers::default();
        a.push(b"\x1b[?62;4c");
        a.push(b"\x1b[6;16;8t");
        a.push(b"\x1b[0n");
        assert_eq!(d(&a), (Some(ProtocolType::Sixel), Some((8, 16))));
        let mut plain = Answers::default();
        plain.push(b"\x1b[?62;22c");
        plain.push(b"\x1b[6;16;8t");
        assert!(plain.push(b"\x1b[0n"));
        assert_eq!(d(&plain), (None, Some((8, 16))));
        // Answers after the status report are ignored.
        assert!(!plain.push(b"\x1b_Gi=31;OK\x1b\\"));
        assert_eq!(plain.detected().0, None);
    }
}
