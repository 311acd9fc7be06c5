#!/usr/bin/env python3
"""The glibc floor of a frozen Linux bundle: the newest ``GLIBC_x.y`` symbol version any of its
ELF files needs (issue 18's supported-systems table says "glibc >= X"; this is where X comes
from, measured on what was built rather than assumed from a wheel's tag).

    python3 packaging/elf_floor.py FOLDER            # prints {"glibc_floor": "2.34", ...}
    python3 packaging/elf_floor.py FOLDER --record   # also writes it into FOLDER/BUILD.json

How: every regular file of the folder that starts with ELF's magic is read with binutils'
``readelf -V -W`` (the build already needs binutils: ``readelf -d`` for the GPU pack), and the
version NEEDS of its ``.gnu.version_r`` section are collected -- only the needs: a library's
own version definitions and its symbol table's references are not requirements. The needs
named ``GLIBC_x.y[.z]`` (from libc, libm, libpthread, libdl, librt or the dynamic loader) are
compared as numbers; ``GLIBC_PRIVATE`` is not a version. pyelftools would read the same
section, but it is not a Forecode dependency and readelf is on every Linux build machine.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ELF_MAGIC = b"\x7fELF"
_NEED = re.compile(r"^\s*0x[0-9a-f]+:\s+Name: (\S+)\s+Flags:", re.I)
_GLIBC = re.compile(r"^GLIBC_(\d+(?:\.\d+)+)$")

Version = tuple[int, ...]


@dataclass(frozen=True)
class Floor:
    """The newest glibc version needed, the bundle's files that need it (relative paths,
    sorted) and how many ELF files were read."""

    version: Version | None
    needed_by: tuple[str, ...]
    elf_files: int

    def text(self) -> str | None:
        return None if self.version is None else ".".join(map(str, self.version))


def needed_versions(readelf_v: str) -> set[str]:
    """The version names in the "Version needs" sections of ``readelf -V`` output (one file's
    or several files')."""
    names: set[str] = set()
    in_needs = False
    for line in readelf_v.splitlines():
        if line.startswith(("Version ", "File: ")):
            in_needs = line.startswith("Version needs section")
            continue
        match = _NEED.match(line) if in_needs else None
        if match:
            names.add(match.group(1))
    return names


def glibc_version(name: str) -> Version | None:
    """``GLIBC_2.34`` -> (2, 34); anything else (``GLIBC_PRIVATE``, ``GLIBCXX_3.4``) -> None."""
    match = _GLIBC.match(name)
    return tuple(int(p) for p in match.group(1).split(".")) if match else None


def newest_glibc(names: Iterable[str]) -> Version | None:
    versions = [v for v in map(glibc_version, names) if v is not None]
    return max(versions, default=None)


def is_elf(path: Path) -> bool:
    if path.is_symlink() or not path.is_file():
        return False
    with path.open("rb") as f:
        return f.read(4) == ELF_MAGIC


def file_needs(path: Path) -> set[str]:
    """The version needs of one ELF file (``readelf -V -W``)."""
    out = subprocess.run(
        ["readelf", "-V", "-W", str(path)], capture_output=True, text=True, check=True
    ).stdout
    return needed_versions(out)


def scan(folder: Path) -> Floor:
    """The glibc floor of every ELF file under ``folder`` (links not followed)."""
    newest: Version | None = None
    by: list[str] = []
    count = 0
    for path in sorted(folder.rglob("*")):
        if not is_elf(path):
            continue
        count += 1
        version = newest_glibc(file_needs(path))
        if version is None or (newest is not None and version < newest):
            continue
        if newest is None or version > newest:
            newest, by = version, []
        by.append(path.relative_to(folder).as_posix())
    return Floor(newest, tuple(by), count)


def record(bundle: Path) -> Floor:
    """Scan ``bundle`` and add ``glibc_floor`` (and the files that set it) to its
    ``BUILD.json``."""
    floor = scan(bundle)
    info_file = bundle / "BUILD.json"
    info = json.loads(info_file.read_text(encoding="utf-8")) if info_file.exists() else {}
    info.update(as_json(floor))
    info_file.write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    return floor


def as_json(floor: Floor) -> dict[str, object]:
    return {
        "glibc_floor": floor.text(),
        "glibc_floor_needed_by": list(floor.needed_by[:5]),
        "glibc_floor_elf_files": floor.elf_files,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--record", action="store_true", help="write it into FOLDER/BUILD.json")
    args = parser.parse_args(argv)
    floor = record(args.folder) if args.record else scan(args.folder)
    print(json.dumps(as_json(floor), indent=1))
    return 0 if floor.elf_files else 1


if __name__ == "__main__":
    sys.exit(main())
