//! Links the bare-metal guest kernel with `link.ld` (at 0x4008_0000, the
//! arm64 `Image` text offset above guest RAM). Host builds get no script.
use std::{env, path::PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=link.ld");
    println!("cargo:rerun-if-changed=build.rs");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return;
    }
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    println!(
        "cargo:rustc-link-arg-bin=guest-kernel=-T{}",
        dir.join("link.ld").display()
    );
}
