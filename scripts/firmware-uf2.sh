#!/usr/bin/env bash
# Converts the front-panel firmware ELF into a UF2 file for the RP2040's USB boot loader
# (hold BOOTSEL while plugging in, then copy the .uf2 onto the RPI-RP2 drive).
#
# Usage: scripts/firmware-uf2.sh [ELF] [UF2]
#   ELF defaults to firmware/target/thumbv6m-none-eabi/release/lanterne-panel-firmware
#   UF2 defaults to ELF with ".uf2" appended
#
# The converter is the small Python program below (no extra tools needed): it takes every
# loadable ELF segment that lands in the RP2040's XIP flash window (by physical/load address,
# so initialised .data is included), cuts it into 256-byte flash pages and wraps each page in a
# 512-byte UF2 block tagged with the RP2040 family ID. It then reads the file back and checks
# every byte against the ELF before reporting success.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
elf="${1:-$repo/firmware/target/thumbv6m-none-eabi/release/lanterne-panel-firmware}"
uf2="${2:-$elf.uf2}"

[[ -f "$elf" ]] || { echo "firmware-uf2: no ELF at $elf (build with: cd firmware && cargo build --release)" >&2; exit 1; }

python3 - "$elf" "$uf2" <<'PY'
import struct, sys

elf_path, uf2_path = sys.argv[1], sys.argv[2]

FLASH_START, FLASH_END = 0x1000_0000, 0x1100_0000  # RP2040 XIP window
PAGE = 256
FAMILY_RP2040 = 0xE48B_FF56
MAGIC0, MAGIC1, MAGIC_END = 0x0A32_4655, 0x9E5D_5157, 0x0AB1_6F30
FLAG_FAMILY_ID = 0x0000_2000
PT_LOAD = 1

def fail(msg):
    sys.exit(f"firmware-uf2: {msg}")

data = open(elf_path, "rb").read()
if data[:4] != b"\x7fELF":
    fail("not an ELF file")
if data[4] != 1 or data[5] != 1:
    fail("expected a 32-bit little-endian ELF (thumbv6m)")
e_machine = struct.unpack_from("<H", data, 18)[0]
if e_machine != 40:
    fail(f"expected an ARM ELF, got machine {e_machine}")
e_phoff, = struct.unpack_from("<I", data, 28)
e_phentsize, e_phnum = struct.unpack_from("<HH", data, 42)

# Flash image as {page address: bytearray(256)}; gaps inside a page are zero-filled.
pages = {}
image = {}  # byte address -> value, for the read-back check
for i in range(e_phnum):
    p_type, p_offset, p_vaddr, p_paddr, p_filesz = struct.unpack_from(
        "<IIIII", data, e_phoff + i * e_phentsize)
    if p_type != PT_LOAD or p_filesz == 0:
        continue
    if not (FLASH_START <= p_paddr and p_paddr + p_filesz <= FLASH_END):
        # .bss and friends have no file bytes; anything else outside flash is a link error.
        fail(f"loadable segment at {p_paddr:#010x} (+{p_filesz:#x}) is outside flash")
    seg = data[p_offset:p_offset + p_filesz]
    if len(seg) != p_filesz:
        fail("segment runs past the end of the file")
    for off, byte in enumerate(seg):
        addr = p_paddr + off
        if addr in image and image[addr] != byte:
            fail(f"overlapping segments disagree at {addr:#010x}")
        image[addr] = byte
        page = addr - addr % PAGE
        pages.setdefault(page, bytearray(PAGE))[addr - page] = byte

if not pages:
    fail("no loadable flash segments")
if FLASH_START not in pages:
    fail("nothing at the start of flash: the second-stage boot loader (.boot2) is missing")

order = sorted(pages)
with open(uf2_path, "wb") as out:
    for n, addr in enumerate(order):
        header = struct.pack("<IIIIIIII", MAGIC0, MAGIC1, FLAG_FAMILY_ID, addr, PAGE,
                             n, len(order), FAMILY_RP2040)
        block = header + bytes(pages[addr]) + bytes(476 - PAGE) + struct.pack("<I", MAGIC_END)
        assert len(block) == 512
        out.write(block)

# Read back and compare with the ELF, byte for byte.
blob = open(uf2_path, "rb").read()
if len(blob) != 512 * len(order):
    fail("written file has the wrong size")
seen = {}
for n in range(len(order)):
    b = blob[n * 512:(n + 1) * 512]
    m0, m1, flags, addr, size, no, total, fam = struct.unpack_from("<IIIIIIII", b, 0)
    end, = struct.unpack_from("<I", b, 508)
    if (m0, m1, end) != (MAGIC0, MAGIC1, MAGIC_END) or no != n or total != len(order) \
            or fam != FAMILY_RP2040 or size != PAGE or flags != FLAG_FAMILY_ID:
        fail(f"block {n} is malformed")
    for off in range(PAGE):
        seen[addr + off] = b[32 + off]
for addr, byte in image.items():
    if seen.get(addr) != byte:
        fail(f"read-back mismatch at {addr:#010x}")

print(f"firmware-uf2: wrote {uf2_path} ({len(order)} blocks, {len(image)} bytes of flash)")
PY
