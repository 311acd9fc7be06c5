"""The glibc floor of a frozen bundle (``packaging/elf_floor.py``, issue 18): the newest
``GLIBC_x.y`` version its ELF files NEED, read with ``readelf -V``; table tests on readelf's
text, then real system libraries copied into a made-up bundle."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parent.parent


def _load(name: str) -> ModuleType:
    """``packaging/NAME.py`` by its path (``packaging`` is also PyPI's package)."""
    spec = importlib.util.spec_from_file_location(
        f"forecode_{name}", REPO / "packaging" / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


elf_floor = _load("elf_floor")

# readelf -V -W of a library that defines GLIBC_2.99 and needs 2.14 from libc, 2.35 from ld.so
READELF = """
Version symbols section '.gnu.version' contains 4 entries:
  000:   0 (*local*)      10 (GLIBC_2.40)  11 (GLIBC_2.2.5)  11 (GLIBC_2.2.5)

Version definition section '.gnu.version_d' contains 2 entries:
  000000: Rev: 1  Flags: BASE  Index: 1  Cnt: 1  Name: libfake.so.1
  0x001c: Rev: 1  Flags: none  Index: 2  Cnt: 1  Name: GLIBC_2.99

Version needs section '.gnu.version_r' contains 2 entries:
  000000: Version: 1  File: libc.so.6  Cnt: 2
  0x0010:   Name: GLIBC_2.14  Flags: none  Version: 19
  0x0020:   Name: GLIBC_2.2.5  Flags: none  Version: 18
  0x0030: Version: 1  File: ld-linux-x86-64.so.2  Cnt: 2
  0x0040:   Name: GLIBC_2.35  Flags: none  Version: 20
  0x0050:   Name: GLIBC_PRIVATE  Flags: none  Version: 21
  0x0060: Version: 1  File: libstdc++.so.6  Cnt: 1
  0x0070:   Name: GLIBCXX_3.4.30  Flags: none  Version: 22
"""


def test_only_the_needs_section_counts() -> None:
    names = elf_floor.needed_versions(READELF)
    assert names == {"GLIBC_2.14", "GLIBC_2.2.5", "GLIBC_2.35", "GLIBC_PRIVATE", "GLIBCXX_3.4.30"}
    assert elf_floor.newest_glibc(names) == (2, 35)  # not the definition's 2.99, nor 2.40
    # several files' output (readelf's "File:" headers): each file's needs section counts
    two = "File: a.so\n" + READELF + "\nFile: b.so\n" + READELF.replace("GLIBC_2.35", "GLIBC_2.38")
    assert elf_floor.newest_glibc(elf_floor.needed_versions(two)) == (2, 38)


@pytest.mark.parametrize(
    ("name", "version"),
    [
        ("GLIBC_2.34", (2, 34)),
        ("GLIBC_2.2.5", (2, 2, 5)),
        ("GLIBC_2.9", (2, 9)),
        ("GLIBC_PRIVATE", None),
        ("GLIBCXX_3.4.30", None),
        ("GLIBC_ABI_DT_RELR", None),
        ("ZLIB_1.2.9", None),
    ],
)
def test_glibc_version(name: str, version: tuple[int, ...] | None) -> None:
    assert elf_floor.glibc_version(name) == version


@pytest.mark.parametrize(
    ("names", "newest"),
    [
        (["GLIBC_2.9", "GLIBC_2.14"], (2, 14)),  # compared as numbers, not text
        (["GLIBC_2.2.5", "GLIBC_2.3"], (2, 3)),
        (["GLIBC_PRIVATE", "ZLIB_1.2.9"], None),
        ([], None),
    ],
)
def test_newest_glibc(names: list[str], newest: tuple[int, ...] | None) -> None:
    assert elf_floor.newest_glibc(names) == newest


def _system_lib(name: str) -> Path:
    out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=False).stdout
    for line in out.splitlines():
        if line.strip().startswith(name) and "x86-64" in line:
            return Path(line.rsplit("=>", 1)[1].strip()).resolve()
    pytest.fail(f"{name} not found by ldconfig -p")


def _defined_glibc(lib: Path) -> tuple[int, ...]:
    """The newest GLIBC version ``lib`` DEFINES (read independently of elf_floor)."""
    out = subprocess.run(["readelf", "-V", "-W", str(lib)], capture_output=True, text=True).stdout
    defs = out.split("Version definition section", 1)[1].split("Version needs section", 1)[0]
    return max(tuple(map(int, v.split("."))) for v in re.findall(r"GLIBC_(\d+(?:\.\d+)+)", defs))


def test_a_bundle_of_real_libraries(tmp_path: Path) -> None:
    """libz and libc copied into a made-up bundle (with a link and a text file): the floor is
    the newest version either NEEDS -- libc's needs from ld.so, below the versions libc
    itself defines -- and BUILD.json gets it."""
    if shutil.which("readelf") is None or not sys.platform.startswith("linux"):
        pytest.skip("readelf (binutils) on Linux")
    libc, libz = _system_lib("libc.so.6"), _system_lib("libz.so.1")
    bundle = tmp_path / "forecode"
    (bundle / "_internal").mkdir(parents=True)
    shutil.copy2(libc, bundle / "_internal" / "libc.so.6")
    shutil.copy2(libz, bundle / "_internal" / "libz.so.1")
    (bundle / "_internal" / "libz.so").symlink_to("libz.so.1")
    (bundle / "BUILD.json").write_text(json.dumps({"version": "0.1.0"}))

    floor = elf_floor.record(bundle)

    needs = {
        "_internal/libc.so.6": elf_floor.newest_glibc(elf_floor.file_needs(libc)),
        "_internal/libz.so.1": elf_floor.newest_glibc(elf_floor.file_needs(libz)),
    }
    expected = max(v for v in needs.values() if v is not None)
    assert floor.version == expected
    assert floor.elf_files == 2  # the link and BUILD.json are not read
    assert floor.version < _defined_glibc(libc)  # definitions are not needs
    assert set(floor.needed_by) == {name for name, v in needs.items() if v == expected}
    info = json.loads((bundle / "BUILD.json").read_text())
    assert info["version"] == "0.1.0"
    assert info["glibc_floor"] == ".".join(map(str, expected))


def test_bench_package_reports_the_floor(tmp_path: Path) -> None:
    """``bench package``'s ``glibc_floor``: the build's record in BUILD.json, else a scan."""
    from bench.package import glibc_floor

    install = tmp_path / "forecode"
    install.mkdir()
    (install / "BUILD.json").write_text(json.dumps({"glibc_floor": "2.31"}))
    assert glibc_floor(install)["glibc_floor"] == "2.31"
    if shutil.which("readelf") is None or not sys.platform.startswith("linux"):
        return
    (install / "BUILD.json").write_text("{}")  # an older build: scanned
    libz = _system_lib("libz.so.1")
    shutil.copy2(libz, install / "libz.so.1")
    expected = elf_floor.newest_glibc(elf_floor.file_needs(libz))
    assert glibc_floor(install) == {
        "glibc_floor": ".".join(map(str, expected)),
        "glibc_floor_needed_by": ["libz.so.1"],
    }
