# Shared by the scripts in scripts/: paths, the cross build and QEMU command lines.
# shellcheck shell=bash
TOP="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="$TOP/out"
TARGET=aarch64-unknown-none-softfloat
CROSS_DIR="$TOP/target/cross"
say() { echo "[$(basename "$0")] $*" >&2; }

# Cargo for the bare-metal target: rustup's prebuilt target when installed,
# otherwise Debian's rustc-web with -Zbuild-std (see TOOLCHAIN notes in README).
cross_cargo() {
    if command -v rustup >/dev/null 2>&1 && rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
        [ -n "${PVH_QUIET:-}" ] || say "building with rustup's prebuilt $TARGET target"
        cargo "$@" --target "$TARGET" --target-dir "$CROSS_DIR"
    elif [ -x /usr/bin/rustc ] && [ -d /usr/lib/rustlib/src/rust/library ]; then
        [ -n "${PVH_QUIET:-}" ] || say "building with /usr/bin/rustc and -Zbuild-std (no prebuilt $TARGET target)"
        RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 RUSTUP_TOOLCHAIN= /usr/bin/cargo "$@" --target "$TARGET" \
            --target-dir "$CROSS_DIR" \
            -Zbuild-std=core,alloc -Zbuild-std-features=compiler-builtins-mem \
            --config "target.$TARGET.linker=\"ld.lld\""
    else
        say "no way to build for $TARGET: run scripts/setup"
        return 1
    fi
}

# ELF -> raw binary, with the ELF's program headers (no objcopy needed).
elf_to_bin() { python3 "$TOP/scripts/lib/elf2bin.py" "$1" "$2"; }

# Builds the guest kernel and the monitor for every board into out/.
build_all() {
    mkdir -p "$OUT"
    PVH_QUIET=${PVH_QUIET:-} cross_cargo build --release -p guest-kernel
    cp "$CROSS_DIR/$TARGET/release/guest-kernel" "$OUT/guest-kernel.elf"
    elf_to_bin "$OUT/guest-kernel.elf" "$OUT/guest-kernel.img"
    PVH_QUIET=1 PVH_GUEST_ELF="$OUT/guest-kernel.elf" PVH_GUEST_IMAGE="$OUT/guest-kernel.img" \
        cross_cargo build --release -p hyp
    cp "$CROSS_DIR/$TARGET/release/hyp-virt" "$OUT/hyp-virt.elf"
    cp "$CROSS_DIR/$TARGET/release/hyp-rpi4" "$OUT/hyp-rpi4.elf"
    elf_to_bin "$OUT/hyp-rpi4.elf" "$OUT/kernel8.img"
}

rpi4_dtb() {
    local f
    for f in "$TOP/platform/dtb/bcm2711-rpi-4-b.dtb" "${RPI4_DTB_CACHE:-/var/cache/pvh}/bcm2711-rpi-4-b.dtb"; do
        if [ -s "$f" ]; then echo "$f"; return 0; fi
    done
    say "no bcm2711-rpi-4-b.dtb: run scripts/setup"
    return 1
}

# qemu_cmd BOARD -> prints the QEMU argument vector, one per line, for BOARD.
qemu_args() {
    local board="$1"
    case "$board" in
        virt)
            printf '%s\n' qemu-system-aarch64 -M virt,virtualization=on,gic-version=3 -cpu cortex-a72 \
                -m 1G -nographic -no-reboot -kernel "$OUT/hyp-virt.elf" ;;
        virt-gicv2)
            printf '%s\n' qemu-system-aarch64 -M virt,virtualization=on,gic-version=2 -cpu cortex-a72 \
                -m 1G -nographic -no-reboot -kernel "$OUT/hyp-virt.elf" ;;
        raspi4b)
            printf '%s\n' qemu-system-aarch64 -M raspi4b -nographic -no-reboot \
                -kernel "$OUT/hyp-rpi4.elf" -dtb "$(rpi4_dtb)" ;;
        *) say "unknown board '$board' (virt, virt-gicv2, raspi4b)"; return 1 ;;
    esac
}
