//! Terminal input as one byte stream: keys and the terminal's answers to the image-capability
//! query are decoded by the same reader, so a key typed before, during or after the query is
//! never eaten by it, and a terminal that never answers (tmux without a client, a slow SSH link)
//! delays nothing: the dashboard draws at once with halfblocks and upgrades the protocol if and
//! when the answer arrives.
//!
//! Why not crossterm's reader: it turns the kitty graphics answer (an APC string) into a burst of
//! Alt- and letter keys and hides the device-attribute parameters that say "sixel"; and
//! ratatui-image's query reads stdin on a thread that outlives its timeout and swallows the next
//! key. The answers themselves are interpreted by ratatui-image's own response parser.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};

/// One decoded unit of input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Key(KeyEvent),
    /// A mouse event (SGR reporting, `CSI < b ; x ; y M/m`).
    Mouse(MouseEvent),
    /// A control sequence the terminal sent on its own (an answer to a query), raw bytes.
    Reply(Vec<u8>),
}

/// Longest control string kept while waiting for its end (a hostile or broken stream is dropped).
const MAX_SEQUENCE: usize = 64 * 1024;

/// Incremental decoder: feed bytes as they arrive; an incomplete sequence waits for more.
#[derive(Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

enum Step {
    /// Need more bytes.
    Incomplete,
    /// `n` bytes consumed, maybe producing an input.
    Done(usize, Option<Input>),
}

fn key(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
    KeyEvent::new(code, modifiers)
}

impl Decoder {
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<Input>) {
        self.buf.extend_from_slice(bytes);
        let mut at = 0;
        while at < self.buf.len() {
            match step(&self.buf[at..]) {
                Step::Incomplete => {
                    if self.buf.len() - at > MAX_SEQUENCE {
                        at = self.buf.len();
                    }
                    break;
                }
                Step::Done(n, input) => {
                    at += n.max(1);
                    out.extend(input);
                }
            }
        }
        self.buf.drain(..at);
    }

    /// How long to wait for the rest of a partial sequence before [`Decoder::flush`]: briefly
    /// for a lone ESC (the Esc key, or the start of a sequence split across reads), longer for
    /// anything else (an answer cut by a slow link).
    pub fn wait_for_more(&self) -> Option<std::time::Duration> {
        match self.buf.as_slice() {
            [] => None,
            [0x1b] => Some(std::time::Duration::from_millis(30)),
            _ => Some(std::time::Duration::from_millis(1000)),
        }
    }

    /// Nothing more came: a lone ESC is the Esc key; any other partial sequence is dropped.
    pub fn flush(&mut self, out: &mut Vec<Input>) {
        if self.buf == [0x1b] {
            out.push(Input::Key(key(KeyCode::Esc, KeyModifiers::NONE)));
        }
        self.buf.clear();
    }
}

/// Decodes the sequence at the start of `b` (non-empty).
fn step(b: &[u8]) -> Step {
    if b[0] != 0x1b {
        return plain(b, KeyModifiers::NONE);
    }
    let Some(&second) = b.get(1) else {
        return Step::Incomplete;
    };
    match second {
        b'[' => csi(b),
        b'O' => match b.get(2) {
            None => Step::Incomplete,
            Some(&c) => Step::Done(3, ss3(c).map(|k| Input::Key(key(k, KeyModifiers::NONE)))),
        },
        // APC (kitty graphics answers), DCS, OSC, PM, SOS: strings up to ST or BEL.
        b'_' | b'P' | b']' | b'^' | b'X' => string(b),
        0x1b => Step::Done(1, Some(Input::Key(key(KeyCode::Esc, KeyModifiers::NONE)))),
        _ => match plain(&b[1..], KeyModifiers::ALT) {
            Step::Incomplete => Step::Incomplete,
            Step::Done(n, input) => Step::Done(n + 1, input),
        },
    }
}

/// A byte or UTF-8 character outside any escape sequence.
fn plain(b: &[u8], mods: KeyModifiers) -> Step {
    let c = b[0];
    let k = |code| Step::Done(1, Some(Input::Key(key(code, mods))));
    match c {
        b'\r' | b'\n' => k(KeyCode::Enter),
        b'\t' => k(KeyCode::Tab),
        0x7f | 0x08 => k(KeyCode::Backspace),
        0x00 => Step::Done(
            1,
            Some(Input::Key(key(
                KeyCode::Char(' '),
                mods | KeyModifiers::CONTROL,
            ))),
        ),
        0x01..=0x1a => Step::Done(
            1,
            Some(Input::Key(key(
                KeyCode::Char((c - 1 + b'a') as char),
                mods | KeyModifiers::CONTROL,
            ))),
        ),
        0x1b => k(KeyCode::Esc),
        0x1c..=0x1f => Step::Done(
            1,
            Some(Input::Key(key(
                KeyCode::Char((c - 0x1c + b'4') as char),
                mods | KeyModifiers::CONTROL,
            ))),
        ),
        b'A'..=b'Z' => Step::Done(
            1,
            Some(Input::Key(key(
                KeyCode::Char(c as char),
                mods | KeyModifiers::SHIFT,
            ))),
        ),
        0x20..=0x7e => k(KeyCode::Char(c as char)),
        _ => {
            let len = match c {
                0xc2..=0xdf => 2,
                0xe0..=0xef => 3,
                0xf0..=0xf4 => 4,
                _ => return Step::Done(1, None),
            };
            if b.len() < len {
                return Step::Incomplete;
            }
            match std::str::from_utf8(&b[..len])
                .ok()
                .and_then(|s| s.chars().next())
            {
                Some(ch) => Step::Done(len, Some(Input::Key(key(KeyCode::Char(ch), mods)))),
                None => Step::Done(1, None),
            }
        }
    }
}

fn ss3(c: u8) -> Option<KeyCode> {
    Some(match c {
        b'A' => KeyCode::Up,
        b'B' => KeyCode::Down,
        b'C' => KeyCode::Right,
        b'D' => KeyCode::Left,
        b'H' => KeyCode::Home,
        b'F' => KeyCode::End,
        b'P'..=b'S' => KeyCode::F(1 + c - b'P'),
        _ => return None,
    })
}

/// A string sequence (`ESC _ … ESC \` and the like, or ended by BEL): always a reply.
fn string(b: &[u8]) -> Step {
    let mut i = 2;
    while i < b.len() {
        match b[i] {
            0x07 => return Step::Done(i + 1, Some(Input::Reply(b[..=i].to_vec()))),
            0x1b => match b.get(i + 1) {
                None => return Step::Incomplete,
                Some(b'\\') => return Step::Done(i + 2, Some(Input::Reply(b[..i + 2].to_vec()))),
                // A new sequence inside a string: the string was cut off; drop it.
                Some(_) => return Step::Done(i, None),
            },
            _ => i += 1,
        }
    }
    Step::Incomplete
}

/// `ESC [ params intermediates final`.
fn csi(b: &[u8]) -> Step {
    let Some(end) = b[2..].iter().position(|c| (0x40..=0x7e).contains(c)) else {
        // Only parameter and intermediate bytes may come before the final byte.
        return match b[2..].iter().all(|c| (0x20..=0x3f).contains(c)) {
            true => Step::Incomplete,
            false => Step::Done(2, None),
        };
    };
    let end = end + 2;
    let n = end + 1;
    let fin = b[end];
    let params = &b[2..end];
    let reply = || Step::Done(n, Some(Input::Reply(b[..n].to_vec())));
    if params.first() == Some(&b'<') && (fin == b'M' || fin == b'm') {
        return Step::Done(n, sgr_mouse(&params[1..], fin == b'M').map(Input::Mouse));
    }
    // Answers: device attributes (`?…c`), window/cell size (`…t`), status and cursor reports,
    // keyboard-protocol flags (`?…u`).
    match (params.first(), fin) {
        (Some(b'?' | b'>' | b'='), _) | (_, b't' | b'n' | b'R' | b'c') => return reply(),
        _ => {}
    }
    let nums: Vec<u16> = std::str::from_utf8(params)
        .unwrap_or("")
        .split(';')
        .map(|s| s.parse().unwrap_or(0))
        .collect();
    let mods = modifiers(nums.get(1).copied().unwrap_or(1));
    let code = match fin {
        b'A' | b'B' | b'C' | b'D' | b'H' | b'F' | b'P' | b'Q' | b'S' => ss3(fin),
        b'Z' => {
            return Step::Done(
                n,
                Some(Input::Key(key(
                    KeyCode::BackTab,
                    mods | KeyModifiers::SHIFT,
                ))),
            );
        }
        b'~' => match nums.first().copied().unwrap_or(0) {
            1 | 7 => Some(KeyCode::Home),
            2 => Some(KeyCode::Insert),
            3 => Some(KeyCode::Delete),
            4 | 8 => Some(KeyCode::End),
            5 => Some(KeyCode::PageUp),
            6 => Some(KeyCode::PageDown),
            k @ 11..=15 => Some(KeyCode::F((k - 10) as u8)),
            k @ 17..=21 => Some(KeyCode::F((k - 11) as u8)),
            k @ 23..=26 => Some(KeyCode::F((k - 12) as u8)),
            k @ 28..=29 => Some(KeyCode::F((k - 13) as u8)),
            k @ 31..=34 => Some(KeyCode::F((k - 14) as u8)),
            _ => None,
        },
        _ => None,
    };
    Step::Done(n, code.map(|c| Input::Key(key(c, mods))))
}

/// `b;x;y` of an SGR mouse report (1-based cells); `press` for `M`, release for `m`.
fn sgr_mouse(params: &[u8], press: bool) -> Option<MouseEvent> {
    let v: Vec<u16> = std::str::from_utf8(params)
        .ok()?
        .split(';')
        .map(|s| s.parse().ok())
        .collect::<Option<_>>()?;
    let [b, x, y] = v[..] else { return None };
    let button = match b & 3 {
        1 => MouseButton::Middle,
        2 => MouseButton::Right,
        _ => MouseButton::Left,
    };
    let kind = if b & 64 != 0 {
        match b & 3 {
            0 => MouseEventKind::ScrollUp,
            1 => MouseEventKind::ScrollDown,
            2 => MouseEventKind::ScrollLeft,
            _ => MouseEventKind::ScrollRight,
        }
    } else if b & 32 != 0 {
        if b & 3 == 3 {
            MouseEventKind::Moved
        } else {
            MouseEventKind::Drag(button)
        }
    } else if press {
        MouseEventKind::Down(button)
    } else {
        MouseEventKind::Up(button)
    };
    let mut modifiers = KeyModifiers::NONE;
    if b & 4 != 0 {
        modifiers |= KeyModifiers::SHIFT;
    }
    if b & 8 != 0 {
        modifiers |= KeyModifiers::ALT;
    }
    if b & 16 != 0 {
        modifiers |= KeyModifiers::CONTROL;
    }
    Some(MouseEvent {
        kind,
        column: x.saturating_sub(1),
        row: y.saturating_sub(1),
        modifiers,
    })
}

/// xterm's modifier parameter: 1 + (shift 1, alt 2, ctrl 4).
fn modifiers(p: u16) -> KeyModifiers {
    let bits = p.saturating_sub(1);
    let mut m = KeyModifiers::NONE;
    if bits & 1 != 0 {
        m |= KeyModifiers::SHIFT;
    }
    if bits & 2 != 0 {
        m |= KeyModifiers::ALT;
    }
    if bits & 4 != 0 {
        m |= KeyModifiers::CONTROL;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(chunks: &[&[u8]]) -> Vec<Input> {
        let mut d = Decoder::default();
        let mut out = Vec::new();
        for c in chunks {
            d.feed(c, &mut out);
        }
        d.flush(&mut out);
        out
    }

    fn k(code: KeyCode) -> Input {
        Input::Key(key(code, KeyModifiers::NONE))
    }

    #[test]
    fn keys_and_the_capability_answers_are_told_apart_in_one_stream() {
        // A key typed before the answers, the kitty answer, device attributes with sixel, the
        // cell size, the status report, then keys typed after.
        let stream: &[u8] = b"j\x1b_Gi=31;OK\x1b\\\x1b[?62;4;22c\x1b[6;20;10t\x1b[0na\x1b[B";
        let got = decode(&[stream]);
        assert_eq!(got[0], k(KeyCode::Char('j')));
        assert_eq!(got[1], Input::Reply(b"\x1b_Gi=31;OK\x1b\\".to_vec()));
        assert_eq!(got[2], Input::Reply(b"\x1b[?62;4;22c".to_vec()));
        assert_eq!(got[3], Input::Reply(b"\x1b[6;20;10t".to_vec()));
        assert_eq!(got[4], Input::Reply(b"\x1b[0n".to_vec()));
        assert_eq!(got[5], k(KeyCode::Char('a')));
        assert_eq!(got[6], k(KeyCode::Down));
        assert_eq!(got.len(), 7);
    }

    #[test]
    fn sequences_split_across_reads_wait_for_their_end() {
        let got = decode(&[
            b"\x1b",
            b"_Gi=31;O",
            b"K\x1b",
            b"\\",
            b"\x1b[",
            b"5~",
            b"\xc3",
            b"\xa9",
        ]);
        assert_eq!(
            got,
            vec![
                Input::Reply(b"\x1b_Gi=31;OK\x1b\\".to_vec()),
                k(KeyCode::PageUp),
                k(KeyCode::Char('é')),
            ]
        );
    }

    #[test]
    fn a_lone_escape_is_the_esc_key_once_nothing_follows() {
        let mut d = Decoder::default();
        let mut out = Vec::new();
        d.feed(b"\x1b", &mut out);
        assert!(out.is_empty() && d.wait_for_more().is_some());
        d.flush(&mut out);
        assert_eq!(out, vec![k(KeyCode::Esc)]);
        assert!(d.wait_for_more().is_none());
        // Alt+x, and Esc pressed twice.
        assert_eq!(
            decode(&[b"\x1bx"]),
            vec![Input::Key(key(KeyCode::Char('x'), KeyModifiers::ALT))]
        );
        assert_eq!(
            decode(&[b"\x1b\x1b"]),
            vec![k(KeyCode::Esc), k(KeyCode::Esc)]
        );
    }

    #[test]
    fn control_shift_and_modified_keys_match_crossterm() {
        let got = decode(&[b"\x03G\r\t\x7f\x1b[1;5A\x1b[Z\x1bOH"]);
        assert_eq!(
            got,
            vec![
                Input::Key(key(KeyCode::Char('c'), KeyModifiers::CONTROL)),
                Input::Key(key(KeyCode::Char('G'), KeyModifiers::SHIFT)),
                k(KeyCode::Enter),
                k(KeyCode::Tab),
                k(KeyCode::Backspace),
                Input::Key(key(KeyCode::Up, KeyModifiers::CONTROL)),
                Input::Key(key(KeyCode::BackTab, KeyModifiers::SHIFT)),
                k(KeyCode::Home),
            ]
        );
    }

    #[test]
    fn sgr_mouse_reports_become_clicks_and_wheel_events() {
        let got = decode(&[b"\x1b[<0;10;5M\x1b[<0;10;5m\x1b[<65;3;4M\x1b[<64;3;4M"]);
        let m = |kind, column, row| {
            Input::Mouse(MouseEvent {
                kind,
                column,
                row,
                modifiers: KeyModifiers::NONE,
            })
        };
        assert_eq!(
            got,
            vec![
                m(MouseEventKind::Down(MouseButton::Left), 9, 4),
                m(MouseEventKind::Up(MouseButton::Left), 9, 4),
                m(MouseEventKind::ScrollDown, 2, 3),
                m(MouseEventKind::ScrollUp, 2, 3),
            ]
        );
        // A broken report is dropped, and what follows still decodes.
        assert_eq!(decode(&[b"\x1b[<0;;M", b"q"]), vec![k(KeyCode::Char('q'))]);
    }

    #[test]
    fn hostile_bytes_never_panic_and_never_grow_without_bound() {
        // Deterministic pseudo-random streams, fed in uneven chunks.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..200 {
            let mut d = Decoder::default();
            let mut out = Vec::new();
            for _ in 0..64 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let len = (x % 97) as usize;
                let bytes: Vec<u8> = (0..len).map(|i| (x >> (i % 56)) as u8).collect();
                d.feed(&bytes, &mut out);
                assert!(d.buf.len() <= MAX_SEQUENCE + 97);
            }
            d.flush(&mut out);
        }
        // An APC string that never ends is dropped once it passes the bound.
        let mut d = Decoder::default();
        let mut out = Vec::new();
        d.feed(b"\x1b_G", &mut out);
        d.feed(&vec![b'A'; MAX_SEQUENCE + 10], &mut out);
        assert!(d.wait_for_more().is_none());
        d.feed(b"q", &mut out);
        assert_eq!(out, vec![k(KeyCode::Char('q'))]);
    }
}
