"""The .deb's Depends line follows the bundle's measured glibc floor (BUILD.json's
``glibc_floor``): a package built on Debian 12 needs glibc 2.36, and apt must refuse it on an
older system instead of installing an app that cannot start."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent


def _build_module() -> Any:
    spec = importlib.util.spec_from_file_location(
        "forecode_build_deb", REPO / "packaging" / "build.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _build_module()


@pytest.mark.parametrize(
    ("floor", "libc"),
    [
        ("2.36", "libc6 (>= 2.36)"),  # built here: Debian 12's libstdc++ and libexpat
        ("2.35", "libc6 (>= 2.35)"),
        ("2.28", "libc6 (>= 2.34)"),  # never below PySide6's own floor
        ("2.34", "libc6 (>= 2.34)"),
        (None, "libc6 (>= 2.34)"),  # no BUILD.json figure: the known floor
        ("2.4", "libc6 (>= 2.34)"),  # numeric, not text, comparison
    ],
)
def test_libc_follows_the_floor(floor: str | None, libc: str) -> None:
    deps = build.deb_depends(floor)
    assert deps[0] == libc
    assert deps[1:] == build.DEB_DEPENDS[1:]


def test_the_control_file_reads_the_bundles_floor(tmp_path: Path) -> None:
    bundle = tmp_path / "forecode"
    bundle.mkdir()
    (bundle / "BUILD.json").write_text(json.dumps({"glibc_floor": "2.36"}))
    control = build._control(1000, build._glibc_floor(bundle))
    assert "Depends: libc6 (>= 2.36), libegl1" in control
    assert build._glibc_floor(tmp_path) is None  # no BUILD.json
