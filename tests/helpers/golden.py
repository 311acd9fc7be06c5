"""Golden files: a rendered prompt compared byte for byte with its file under tests/golden/
(``FORECODE_UPDATE_GOLDEN=1`` rewrites the files instead)."""

from __future__ import annotations

import os
from pathlib import Path

UPDATE = os.environ.get("FORECODE_UPDATE_GOLDEN") == "1"


def check_golden(golden_dir: Path, case: str, text: str) -> None:
    got = text.encode("utf-8")
    path = golden_dir / f"{case}.txt"
    if UPDATE:
        golden_dir.mkdir(parents=True, exist_ok=True)
        path.write_bytes(got)
    assert path.exists(), f"no golden file {path}; run with FORECODE_UPDATE_GOLDEN=1"
    assert got == path.read_bytes(), f"{case}: the prompt changed; see the module docstring"
