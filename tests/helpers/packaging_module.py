"""``packaging/...py`` loaded by its path, as ``build.py`` loads its siblings (``packaging`` is
also PyPI's package, so it is not imported by name)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]


def load_packaging(relative: str, name: str) -> ModuleType:
    """``REPO/packaging/<relative>`` as the module ``name`` (registered in ``sys.modules``)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "packaging" / relative)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
