"""Issue 18, Windows: no console window. Every child process is started with
``forecode_core.windowless.no_window()`` (``CREATE_NO_WINDOW`` on Windows), checked by a scan
of the source, so a new spawn site that bypasses it fails here; a windowed program's missing
standard streams are made safe (``ensure_std_streams``), checked in a real child process whose
streams are closed, as a windowed Windows program's are."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.services import git_status
from app.services.git_status import run_git
from forecode_core.windowless import CREATE_NO_WINDOW, ensure_std_streams, no_window

ROOT = Path(__file__).resolve().parent.parent

# Where the shipped app's code lives (app/tools is the developer's screenshot tool, left out
# of the bundle by the spec).
SCANNED = ("app", "local_models", "cloud_client", "cloud_server", "forecode_core", "proto")
NOT_SHIPPED = ("app/tools/",)

_SUBPROCESS = {"Popen", "run", "call", "check_call", "check_output", "getoutput"}
_ANY_BASE = {"create_subprocess_exec", "create_subprocess_shell", "start_io", "startDetached"}
_OS = {"system", "popen", "startfile", "posix_spawn", "posix_spawnp"}
_OS_PREFIX = ("spawn", "exec")

# Sites that need no flag, each with why: the program started is a windowed (GUI) one, which
# never gets a console window; a stale entry fails test_every_allowed_site_still_exists.
ALLOWED: dict[tuple[str, str], str] = {
    ("app/ui/explorer_ops.py", "QProcess.startDetached"): "explorer.exe / macOS open: GUI",
    ("app/ui/owners/updates.py", "QProcess.startDetached"): "the app itself: windowed",
    ("app/services/update_start.py", "os.execv"): "the app itself after an update: windowed",
}


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_name(node.value)}.{node.attr}"
    return "?"


def _is_spawn(callee: str) -> bool:
    base, _, attr = callee.rpartition(".")
    if attr in _ANY_BASE or (base == "subprocess" and attr in _SUBPROCESS):
        return True
    if base == "os" and (attr in _OS or attr.startswith(_OS_PREFIX)):
        return True
    return not base and attr in {"Popen", "check_output", "create_subprocess_exec", "QProcess"}


def _has_no_window(call: ast.Call) -> bool:
    return any(
        kw.arg is None
        and isinstance(kw.value, ast.Call)
        and _name(kw.value.func).endswith("no_window")
        for kw in call.keywords
    )


def bare_spawns(source: str) -> list[tuple[int, str]]:
    """(line, callee) of each call that starts a process without ``**no_window()``."""
    return [
        (node.lineno, callee)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and _is_spawn(callee := _name(node.func))
        and not _has_no_window(node)
    ]


def _shipped_files() -> list[Path]:
    files = [p for top in SCANNED for p in (ROOT / top).rglob("*.py")]
    files += [ROOT / "packaging" / "freeze" / "forecode_main.py"]
    files += [ROOT / "packaging" / "freeze" / "lsp_check.py"]
    return [p for p in files if not p.relative_to(ROOT).as_posix().startswith(NOT_SHIPPED)]


def _all_bare() -> dict[tuple[str, str], list[int]]:
    found: dict[tuple[str, str], list[int]] = {}
    for path in _shipped_files():
        rel = path.relative_to(ROOT).as_posix()
        for line, callee in bare_spawns(path.read_text(encoding="utf-8")):
            found.setdefault((rel, callee), []).append(line)
    return found


def test_every_spawn_site_in_the_shipped_code_uses_no_window() -> None:
    bare = {site: lines for site, lines in _all_bare().items() if site not in ALLOWED}
    assert bare == {}, (
        "start child processes with **forecode_core.windowless.no_window() (no console window "
        f"on Windows), or add the site to ALLOWED with why: {bare}"
    )


def test_every_allowed_site_still_exists() -> None:
    assert set(ALLOWED) <= set(_all_bare())


def test_the_scan_finds_the_spawn_sites_it_must() -> None:
    # the product's known sites are seen (a scan that saw nothing would pass the test above)
    flagged = {
        callee
        for path in _shipped_files()
        for _, callee in bare_spawns(path.read_text(encoding="utf-8").replace("no_window", "x"))
    }
    assert {"subprocess.Popen", "asyncio.create_subprocess_exec"} <= flagged
    cases = {
        'subprocess.run(["git", "status"])': [(1, "subprocess.run")],
        'subprocess.check_output(["ruff"], text=True)': [(1, "subprocess.check_output")],
        "await asyncio.create_subprocess_exec('node')": [(1, "asyncio.create_subprocess_exec")],
        "os.system('git gc')": [(1, "os.system")],
        "os.spawnv(os.P_NOWAIT, exe, [exe])": [(1, "os.spawnv")],
        "Popen(cmd, stdout=PIPE)": [(1, "Popen")],
        'subprocess.run(["git"], check=True, **no_window())': [],
        "subprocess.Popen(cmd, **windowless.no_window())": [],
        "asyncio.run(main())": [],
        "thread.run()": [],
    }
    for source, expected in cases.items():
        assert bare_spawns(source) == expected, source


# --- the helper ---


@pytest.mark.parametrize(
    ("platform", "expected"),
    [
        ("win32", {"creationflags": 0x08000000}),
        ("linux", {}),
        ("darwin", {}),
        ("cygwin", {}),  # its Popen is POSIX's: creationflags would be refused
    ],
)
def test_no_window_by_platform(platform: str, expected: dict[str, int]) -> None:
    assert no_window(platform) == expected


def test_no_window_reads_sys_platform_at_each_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    assert no_window() == {"creationflags": CREATE_NO_WINDOW}
    monkeypatch.setattr(sys, "platform", "linux")
    assert no_window() == {}


def test_the_flag_is_windows_own() -> None:
    # subprocess defines it on Windows only; the value is the Win32 API's
    assert (
        getattr(subprocess, "CREATE_NO_WINDOW", CREATE_NO_WINDOW) == CREATE_NO_WINDOW == 0x08000000
    )


def test_here_a_child_starts_with_it_and_would_refuse_windows_flags() -> None:
    done = subprocess.run([sys.executable, "-c", "print(7)"], capture_output=True, **no_window())
    assert done.stdout.strip() == b"7"
    if os.name == "posix":  # why the helper gives nothing off Windows
        with pytest.raises(ValueError, match="creationflags"):
            subprocess.run([sys.executable, "-c", ""], **no_window("win32"))


class _Refused(Exception):
    pass


def test_git_is_started_without_a_console_window_on_windows(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A real spawn site (``run_git``) on a faked Windows: Popen gets CREATE_NO_WINDOW."""
    seen: list[dict[str, object]] = []

    def spy(*args: object, **kwargs: object) -> None:
        seen.append(kwargs)
        raise _Refused

    monkeypatch.setattr(subprocess, "Popen", spy)
    monkeypatch.setattr(
        git_status, "git_executable", lambda: "git"
    )  # which() reads PATHEXT on win32
    monkeypatch.setattr(sys, "platform", "win32")
    with pytest.raises(_Refused):
        run_git(["status"], tmp_path)
    monkeypatch.setattr(sys, "platform", "linux")
    with pytest.raises(_Refused):
        run_git(["status"], tmp_path)
    assert seen[0].get("creationflags") == CREATE_NO_WINDOW
    assert "creationflags" not in seen[1]


# --- a windowed program's standard streams ---

_PROBE = """
import faulthandler, json, logging, os, sys
report = {"none": [n for n in ("stdin", "stdout", "stderr") if getattr(sys, n) is None]}
try:
    faulthandler.enable()
    report["faulthandler_before"] = "ok"
except RuntimeError as exc:
    report["faulthandler_before"] = str(exc)
from forecode_core.windowless import ensure_std_streams
report["replaced"] = ensure_std_streams()
report["again"] = ensure_std_streams()
faulthandler.enable()
print("to the null device")
sys.stdout.write("x"); sys.stdout.flush(); sys.stderr.write("y"); sys.stderr.flush()
logging.getLogger("probe").warning("a warning")
report["stdin_read"] = sys.stdin.read()
report["fd1_is_null"] = os.path.samestat(os.fstat(1), os.stat(os.devnull))
os.close(os.dup(1))  # what the worker does to keep its protocol pipe
with open(sys.argv[1], "w") as f:
    json.dump(report, f)
"""


def _closed_stdio() -> None:
    for fd in (0, 1, 2):
        os.close(fd)


def _run_without_streams(cmd: list[str]) -> int:
    """Run ``cmd`` with fds 0-2 closed: Python then starts with ``sys.std*`` None, as a
    windowed Windows program does."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), QT_QPA_PLATFORM="offscreen")
    return subprocess.run(cmd, cwd=ROOT, env=env, preexec_fn=_closed_stdio, timeout=60).returncode


@pytest.mark.skipif(os.name != "posix", reason="closes the child's fds 0-2 with preexec_fn")
def test_a_program_without_standard_streams_gets_null_ones(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    assert _run_without_streams([sys.executable, "-c", _PROBE, str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["none"] == ["stdin", "stdout", "stderr"]  # the windowed condition, for real
    assert report["faulthandler_before"] == "sys.stderr is None"  # what went wrong without it
    assert report["replaced"] == ["stdin", "stdout", "stderr"]
    assert report["again"] == []
    assert report["stdin_read"] == ""
    assert report["fd1_is_null"] is True


def test_streams_that_exist_are_kept() -> None:
    before = (sys.stdin, sys.stdout, sys.stderr)
    assert ensure_std_streams() == []
    assert (sys.stdin, sys.stdout, sys.stderr) == before


@pytest.mark.skipif(os.name != "posix", reason="closes the child's fds 0-2 with preexec_fn")
def test_the_frozen_entry_point_runs_a_child_without_standard_streams() -> None:
    """``forecode_main.py --find-in-files`` (the frozen executable's entry, as a checkout runs
    it) with no streams: it reads requests from ``sys.stdin.buffer``; without the guard that is
    None.buffer and it fails, with it stdin is the null device and it ends at once, cleanly."""
    main = ROOT / "packaging" / "freeze" / "forecode_main.py"
    assert _run_without_streams([sys.executable, str(main), "--find-in-files"]) == 0
    bare = "import sys; sys.stdin.buffer"
    assert _run_without_streams([sys.executable, "-c", bare]) != 0  # the condition fails bare
