#!/usr/bin/env python3
"""Writes the loadable segments of a little-endian ELF64 file as one flat
binary image starting at the lowest segment's physical address (what
`objcopy -O binary` does), so the scripts need no cross binutils."""
import struct
import sys


def main(src, dst):
    data = open(src, "rb").read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        sys.exit(f"{src}: not a little-endian ELF64 file")
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    segs = []
    for i in range(phnum):
        p_type, _flags, off, _vaddr, paddr, filesz, _memsz, _align = struct.unpack_from(
            "<IIQQQQQQ", data, phoff + i * phentsize)
        if p_type == 1 and filesz > 0:  # PT_LOAD
            segs.append((paddr, data[off:off + filesz]))
    if not segs:
        sys.exit(f"{src}: no loadable segments")
    base = min(p for p, _ in segs)
    end = max(p + len(b) for p, b in segs)
    out = bytearray(end - base)
    for p, b in segs:
        out[p - base:p - base + len(b)] = b
    open(dst, "wb").write(out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
