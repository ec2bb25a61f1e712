//! Tells the tests whether this checkout has the project's shared data (`../shared/data`: the
//! CamVid copy and sample media). Tests that need it are built `#[ignore]`d without it
//! (`#[cfg_attr(not(shared_data), ignore = "...")]`), so that `cargo test` on a clone reports
//! them as ignored rather than passing them unchecked. After adding the data to a checkout
//! that had none, `touch build.rs` to have it seen.

use std::path::Path;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(shared_data)");
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    if Path::new(&manifest).join("../shared/data").is_dir() {
        println!("cargo::rustc-cfg=shared_data");
        println!("cargo::rerun-if-changed=../shared/data");
    } else {
        // Watching a missing path would rerun this script, and rebuild the crate, every time.
        println!("cargo::rerun-if-changed=build.rs");
    }
}
