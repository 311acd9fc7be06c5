"""A Windows executable's subsystem, read from its PE header: GUI (windowed: no console
window) or console. ``installer.build_installer`` refuses a console ``forecode.exe`` (the
diagnostic ``build.py dir --console`` build is never shipped) and CI checks the frozen one.

The header, as Microsoft's PE format documents it: the ``MZ`` stub's 32-bit offset at 0x3C
points to ``PE\\0\\0``; the 20-byte COFF header follows, then the optional header (magic 0x10B
for PE32, 0x20B for PE32+), whose 16-bit ``Subsystem`` field is at offset 68 in both.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

GUI = 2  # IMAGE_SUBSYSTEM_WINDOWS_GUI
CONSOLE = 3  # IMAGE_SUBSYSTEM_WINDOWS_CUI
NAMES = {GUI: "windows-gui", CONSOLE: "windows-console"}


def subsystem(path: Path) -> int:
    """The ``Subsystem`` field of the PE file ``path``; ValueError when it is not one."""
    with path.open("rb") as f:
        head = f.read(64)
        if len(head) < 64 or head[:2] != b"MZ":
            raise ValueError(f"{path}: not a Windows executable (no MZ header)")
        (pe_at,) = struct.unpack_from("<I", head, 0x3C)
        f.seek(pe_at)
        pe = f.read(4 + 20 + 70)
    if len(pe) < 94 or pe[:4] != b"PE\0\0":
        raise ValueError(f"{path}: not a Windows executable (no PE header)")
    optional = pe[24:]
    (magic,) = struct.unpack_from("<H", optional, 0)
    if magic not in (0x10B, 0x20B):
        raise ValueError(f"{path}: unknown optional header magic {magic:#x}")
    (value,) = struct.unpack_from("<H", optional, 68)
    return int(value)


def main(argv: list[str]) -> int:
    """``python packaging/windows/pe.py EXE [--expect windows-gui]``: print the subsystem;
    exit 1 when it is not the expected one."""
    path = Path(argv[0])
    name = NAMES.get(subsystem(path), "other")
    print(f"{path.name}: {name}")
    if len(argv) == 3 and argv[1] == "--expect" and argv[2] != name:
        print(f"{path.name}: expected {argv[2]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
