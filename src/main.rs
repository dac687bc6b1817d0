//! The `osteoai` binary: the dashboard (`osteoai [DIR]`) and the headless commands, a thin
//! layer over the library. Not for clinical use.

mod cli;
mod tui;

fn main() {
    let code = cli::main();
    std::process::exit(code);
}
