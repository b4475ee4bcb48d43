//! Links each board's monitor binary at its load address and, for the
//! bare-metal build, embeds the default guest kernel images.
use std::{env, fs, path::PathBuf};

/// Load address of each board binary: where the loader puts the image.
/// virt: QEMU loads an ELF at its link address and places the device tree at
/// the start of RAM (0x4000_0000), so the monitor sits 2 MiB above it.
/// rpi4: the Raspberry Pi firmware (and QEMU's raspi4b) loads kernel8.img at
/// 0x8_0000.
const BOARDS: &[(&str, u64)] = &[("hyp-virt", 0x4020_0000), ("hyp-rpi4", 0x8_0000)];

fn main() {
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let template = include_str!("src/arch/aarch64/link.ld.in");
    println!("cargo:rerun-if-changed=src/arch/aarch64/link.ld.in");
    println!("cargo:rustc-check-cfg=cfg(has_guest)");
    let bare = env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none");
    if !bare {
        return;
    }
    for (bin, base) in BOARDS {
        let script = out.join(format!("{bin}.ld"));
        fs::write(&script, template.replace("@BASE@", &format!("{base:#x}"))).unwrap();
        println!("cargo:rustc-link-arg-bin={bin}=-T{}", script.display());
    }
    println!("cargo:rerun-if-env-changed=PVH_GUEST_ELF");
    println!("cargo:rerun-if-env-changed=PVH_GUEST_IMAGE");
    if let (Ok(elf), Ok(img)) = (env::var("PVH_GUEST_ELF"), env::var("PVH_GUEST_IMAGE")) {
        println!("cargo:rerun-if-changed={elf}");
        println!("cargo:rerun-if-changed={img}");
        println!("cargo:rustc-env=PVH_GUEST_ELF_PATH={elf}");
        println!("cargo:rustc-env=PVH_GUEST_IMAGE_PATH={img}");
        println!("cargo:rustc-cfg=has_guest");
    }
}
