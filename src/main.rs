//! `bisenet`: segment images, inspect and create models from the command line.

mod cli;

use std::process::ExitCode;

use clap::Parser;

/// Keeps freed tensor buffers for reuse instead of handing them back to the OS (see Cargo.toml).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc.h's `mi_option_e` (the same in mimalloc 2 and 3).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> ExitCode {
    // Never purge: a training step frees and reallocates the same hundreds of megabytes each
    // iteration, and every purged page comes back through a zero-filling page fault.
    // SAFETY: sets a documented mimalloc option; called before any other thread exists.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
