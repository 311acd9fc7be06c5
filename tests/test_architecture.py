"""The import-direction rules of ARCHITECTURE.md, checked by import-linter's contracts."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from conftest import REPO

FORBIDDEN_IN_CORE = (
    "PySide6",
    "shiboken6",
    "pyside6_scintilla",
    "lexilla",
    "grpc",
    "llama_cpp",
    "app",
    "local_models",
    "cloud_client",
    "cloud_server",
    "proto",
    "bench",
)


def test_import_contracts_hold() -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint), "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 6 kept, 0 broken." in result.stdout


def test_core_sources_name_no_forbidden_module() -> None:
    """A second, independent check that also catches imports hidden inside functions."""
    offenders = []
    sources = sorted((REPO / "forecode_core").rglob("*.py"))
    assert len(sources) > 40  # the check reads the real package
    for path in sources:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [
                f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN_IN_CORE
            ]
    assert offenders == []
