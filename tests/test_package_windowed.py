"""Issue 18, Windows: the frozen executable is windowed (no console window beside the editor);
``build.py --console`` makes the diagnostic console build. The spec takes ``console=`` from
``packaging/freeze/freeze_console.py``, tested here, and the spec's text is checked to use it
(the spec itself runs only inside PyInstaller)."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from tests.helpers.packaging_module import load_packaging

ROOT = Path(__file__).resolve().parent.parent
FREEZE = ROOT / "packaging" / "freeze"


console = load_packaging("freeze/freeze_console.py", "forecode_freeze_console")


@pytest.mark.parametrize(
    ("platform", "env", "expected"),
    [
        ("win32", {}, False),  # the release: windowed
        ("win32", {"FORECODE_FREEZE_CONSOLE": "1"}, True),  # build.py --console
        ("win32", {"FORECODE_FREEZE_CONSOLE": "0"}, False),
        ("win32", {"FORECODE_FREEZE_CONSOLE": ""}, False),
        ("linux", {}, True),  # no subsystem on Linux: as before
        ("darwin", {}, True),  # inside Forecode.app, as before
    ],
)
def test_console_by_platform(platform: str, env: dict[str, str], expected: bool) -> None:
    assert console.wants_console(platform, env) is expected


def test_the_spec_takes_console_from_it() -> None:
    tree = ast.parse((FREEZE / "forecode.spec").read_text(encoding="utf-8"))
    exe = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "EXE"
    ]
    assert len(exe) == 1
    value = {kw.arg: kw.value for kw in exe[0].keywords}["console"]
    assert ast.unparse(value) == "wants_console(sys.platform, os.environ)"


def test_build_console_flag_sets_the_spec_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    build = load_packaging("build.py", "forecode_build_windowed")
    assert build.CONSOLE_ENV == console.CONSOLE_ENV
    monkeypatch.delenv(console.CONSOLE_ENV, raising=False)
    # a target refused before any freezing: only the flag's effect is left to see
    monkeypatch.setattr(build.sys, "platform", "win32")
    assert build.main(["tarball", "--console"]) == 2
    assert os.environ[console.CONSOLE_ENV] == "1"
    assert console.wants_console("win32", os.environ) is True


def test_the_entry_point_guards_the_streams_before_anything_else() -> None:
    tree = ast.parse((FREEZE / "forecode_main.py").read_text(encoding="utf-8"))
    main = next(n for n in tree.body if isinstance(n, ast.If))
    first = main.body[0]
    assert ast.unparse(first) == "ensure_std_streams()"
