"""The frozen folder holds one copy of each ggml library (``packaging/build.py``'s
``single_ggml``): PyInstaller's copies in ``_internal/`` and pip's separate ``libggml.so``
gave a portable build's worker two ggml registries and every model failed to load. The
nightly package test (tests/test_package_linux.py) checks the installed app loads its model;
this one checks the folder surgery on a made-up bundle and on the portable build venv's real
libraries when that venv exists."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent


def _build_module() -> Any:
    """``packaging/build.py`` (``packaging`` is also PyPI's package: load it by its path)."""
    spec = importlib.util.spec_from_file_location("forecode_build", REPO / "packaging" / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _build_module()


def _bundle(root: Path) -> tuple[Path, Path]:
    internal = root / "forecode" / "_internal"
    lib = internal / "llama_cpp" / "lib"
    lib.mkdir(parents=True)
    for name, body in (("libggml", b"ggml"), ("libggml-base", b"base")):
        for copy in (lib / f"{name}.so", lib / f"{name}.so.0", internal / f"{name}.so.0"):
            copy.write_bytes(body)
    (lib / "libllama.so").write_bytes(b"llama")
    (lib / "libggml-cpu-zen4.so").write_bytes(b"zen4")
    (internal / "libother.so.1").write_bytes(b"another library")
    return internal, lib


def test_one_copy_of_each_ggml_library_is_left(tmp_path: Path) -> None:
    internal, lib = _bundle(tmp_path)
    changed = build.single_ggml(internal.parent)
    assert not (internal / "libggml.so.0").exists()
    assert not (internal / "libggml-base.so.0").exists()
    for name in ("libggml", "libggml-base"):
        plain = lib / f"{name}.so"
        assert plain.is_symlink() and plain.readlink() == Path(f"{name}.so.0")
        assert (lib / f"{name}.so.0").is_file() and not (lib / f"{name}.so.0").is_symlink()
    assert (lib / "libllama.so").read_bytes() == b"llama"  # no versioned twin: kept
    assert (internal / "libother.so.1").exists()  # not llama.cpp's
    assert len(changed) == 4
    assert build.single_ggml(internal.parent) == []  # done once


def test_a_different_file_of_the_same_name_is_not_touched(tmp_path: Path) -> None:
    internal, lib = _bundle(tmp_path)
    (internal / "libggml.so.0").write_bytes(b"another ggml")
    (lib / "libggml.so").write_bytes(b"another ggml")
    build.single_ggml(internal.parent)
    assert (internal / "libggml.so.0").read_bytes() == b"another ggml"
    assert not (lib / "libggml.so").is_symlink()


PORTABLE_LIB = REPO / "build" / "freeze-venv-portable" / "lib"


@pytest.mark.nightly
def test_the_real_libraries_link_to_the_one_ggml_left(tmp_path: Path) -> None:
    """The portable venv's libraries copied as PyInstaller lays them out, made single: with
    the bootloader's library path the loader resolves libllama's ggml to ``llama_cpp/lib``'s
    (before, to the ``_internal`` copies). Nightly, beside the package build that makes the
    portable venv (``packaging/build.py tarball --portable``); it fails, never skips, without
    it."""
    assert sys.platform.startswith("linux"), "the portable build venv is a Linux build"
    sites = sorted(PORTABLE_LIB.glob("python*/site-packages"))
    assert sites, (
        f"no portable build venv at {PORTABLE_LIB}: run packaging/build.py tarball --portable"
    )
    site = sites[0]
    internal = tmp_path / "forecode" / "_internal"
    lib = internal / "llama_cpp" / "lib"
    shutil.copytree(site / "llama_cpp" / "lib", lib)
    for name in ("libggml.so.0", "libggml-base.so.0"):
        shutil.copy2(lib / name, internal / name)
    build.single_ggml(internal.parent)
    # the frozen app's bootloader puts _internal first on the library path
    env = {"LD_LIBRARY_PATH": str(internal), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(["ldd", str(lib / "libllama.so")], capture_output=True, text=True, env=env)
    ggml = [line for line in out.stdout.splitlines() if "libggml" in line]
    assert ggml and all(str(lib) in line for line in ggml), out.stdout
