//! LightGBM's own messages into the log file, never onto the terminal: the library prints
//! warnings (e.g. "There are no meaningful features…" on a tiny data set) with `printf` while
//! building a data set, before any `verbosity` parameter applies — through a dashboard's
//! screen. Its log hook is per thread, so every function that builds LightGBM data sets or
//! boosters calls [`route_to_tracing`] first on its own thread.

use std::cell::{Cell, RefCell};
use std::ffi::{CStr, c_char};

thread_local! {
    static ROUTED: Cell<bool> = const { Cell::new(false) };
    /// The pieces of the message being written (LightGBM sends prefix, text and newline apart).
    static LINE: RefCell<String> = const { RefCell::new(String::new()) };
    /// Whole messages received on this thread.
    static RECEIVED: Cell<usize> = const { Cell::new(0) };
}

extern "C" fn on_message(msg: *const c_char) {
    if msg.is_null() {
        return;
    }
    // SAFETY: LightGBM passes a NUL-terminated buffer that lives for the call.
    let piece = unsafe { CStr::from_ptr(msg) }.to_string_lossy();
    LINE.with(|l| {
        let mut l = l.borrow_mut();
        l.push_str(&piece);
        if l.ends_with('\n') {
            let line = l.trim().to_string();
            l.clear();
            RECEIVED.with(|n| n.set(n.get() + 1));
            if line.contains("[Warning]") {
                tracing::warn!(target: "lightgbm", "{line}");
            } else if !line.is_empty() {
                tracing::debug!(target: "lightgbm", "{line}");
            }
        }
    });
}

/// Sends LightGBM's messages on this thread to the log (`tracing`) instead of stdout.
pub fn route_to_tracing() {
    if ROUTED.with(|r| r.replace(true)) {
        return;
    }
    // SAFETY: registers a plain function for this thread's LightGBM log.
    unsafe {
        lightgbm3_sys::LGBM_RegisterLogCallback(Some(
            on_message as unsafe extern "C" fn(*const c_char),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A data set LightGBM warns about (one constant feature): the warning reaches the
    /// callback whole (so not stdout), on this thread only once routed.
    #[test]
    fn lightgbm_warnings_go_through_the_callback() {
        let x = vec![1.0f32; 8];
        let y = vec![0.0f32, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0];
        route_to_tracing();
        let _ = lightgbm3::Dataset::from_slice(&x, &y, 1, true);
        assert!(
            RECEIVED.with(Cell::get) > 0,
            "no message reached the callback"
        );
        LINE.with(|l| assert!(l.borrow().is_empty(), "{:?}", l.borrow()));
    }
}
