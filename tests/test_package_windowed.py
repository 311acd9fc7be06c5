"""Issue 18, Windows: the frozen executable is windowed (no console window beside the editor);
``build.py --console`` makes the diagnostic console build. The spec takes ``console=`` from
``packaging/freeze/freeze_console.py``, tested here, and the spec's text is checked to use it
(the spec itself runs only inside PyInstaller)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
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
    monkeypatch.setenv(console.CONSOLE_ENV, "")  # restored after the test: main sets it
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


_SPEC_PROBE = """
import json, os, sys
spec = sys.argv[1]
seen = {}
class Step:  # PyInstaller's Analysis/PYZ/COLLECT/BUNDLE, recorded instead of built
    def __init__(self, *args, **kwargs):
        self.binaries, self.datas, self.pure, self.scripts = [], [], [], []
def EXE(*args, **kwargs):
    seen["console"] = kwargs["console"]
    return Step()
import PyInstaller.utils.hooks, tree_sitter_language_pack  # before sys.platform is faked
sys.path.insert(0, os.environ["PROBE_ROOT"])
import forecode_core.entrypoints, forecode_core.index.chunking
sys.platform = os.environ["PROBE_PLATFORM"]
names = {"SPECPATH": os.path.dirname(spec), "Analysis": Step, "PYZ": Step, "EXE": EXE,
         "COLLECT": Step, "BUNDLE": Step}
exec(compile(open(spec).read(), spec, "exec"), names)
print(json.dumps(seen))
"""
FREEZE_PYTHON = ROOT / "build" / "freeze-venv" / "bin" / "python"


@pytest.mark.nightly  # needs build.py's venv with PyInstaller (test_package_linux makes it)
@pytest.mark.parametrize(
    ("platform", "console_env", "expected"),
    [("win32", "", False), ("win32", "1", True), ("linux", "", True)],
)
def test_the_spec_itself_makes_a_windowed_exe_on_windows(
    tmp_path: Path, platform: str, console_env: str, expected: bool
) -> None:
    """The real spec, evaluated by the build venv's Python with PyInstaller's hooks (only the
    build steps recorded instead of run), on a faked ``sys.platform``."""
    assert FREEZE_PYTHON.exists(), "no build venv: run `python3 packaging/build.py dir` first"
    env = dict(
        os.environ,
        PROBE_ROOT=str(ROOT),
        PROBE_PLATFORM=platform,
        FORECODE_FREEZE_MODELS=str(tmp_path),
        FORECODE_FREEZE_CONSOLE=console_env,
    )
    done = subprocess.run(
        [str(FREEZE_PYTHON), "-c", _SPEC_PROBE, str(FREEZE / "forecode.spec")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1]) == {"console": expected}
