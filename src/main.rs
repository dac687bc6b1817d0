//! The `osteoai` binary: the dashboard (`osteoai [DIR]`) and the headless commands, a thin
//! layer over the library. Not for clinical use.

mod cli;
mod options;
mod tui;

/// mimalloc instead of glibc's allocator: burn-flex writes every op into a fresh buffer, and
/// glibc maps and page-faults the large early activations again at every call. mimalloc keeps
/// freed pages for reuse (1.7x on the backbone, for ~20% more peak memory).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    tui::PROCESS_START.get_or_init(std::time::Instant::now);
    // A closed pipe (`osteoai split … | head`) ends the process quietly, as it ends any Unix
    // tool, instead of a panic at the next `println!` (Rust ignores SIGPIPE by default).
    #[cfg(unix)]
    // SAFETY: first thing in main, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Mesa's Vulkan loader complains on stderr when XDG_RUNTIME_DIR is unset (common over SSH and
    // in containers) while osteoai probes for a GPU; give it a private folder.
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        let user = std::env::var("USER").unwrap_or_else(|_| "user".into());
        let dir = std::env::temp_dir().join(format!("osteoai-runtime-{user}"));
        #[cfg(unix)]
        let private = {
            use std::os::unix::fs::PermissionsExt;
            // Only a folder of our own (setting its mode fails on someone else's).
            std::fs::create_dir_all(&dir).is_ok()
                && std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).is_ok()
        };
        #[cfg(not(unix))]
        let private = false;
        if private {
            // SAFETY: first thing in main, before any other thread exists.
            unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
        }
    }
    let code = cli::main(cli::FrontEnds {
        dashboard: tui::run,
        bench_ui: tui::bench::run,
    });
    std::process::exit(code);
}
