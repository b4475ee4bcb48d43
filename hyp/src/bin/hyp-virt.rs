//! The monitor binary (the board only sets the load address; see build.rs).
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
use hyp as _;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("the monitor runs on aarch64 bare metal: build it with scripts/build");
}
