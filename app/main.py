"""``forecode [FOLDER]``: open the editor on a folder (default: the current directory)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from forecode_core.store.private import private_at_start

_IMPORTED_AT = time.time()

__all__ = ["display_problem", "main", "missing_x11_libraries"]


def display_problem(env: dict[str, str] | os._Environ[str], platform: str) -> str | None:
    """One clear line when there is no screen to open a window on, else None."""
    if not platform.startswith("linux") or env.get("QT_QPA_PLATFORM"):
        return None
    if env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        return None
    return (
        "forecode: no display found (neither DISPLAY nor WAYLAND_DISPLAY is set). "
        "On a headless machine run it under a virtual display: "
        "xvfb-run -a python3 packaging/bootstrap.py run [FOLDER]"
    )


# Libraries Qt's X11 plugin loads (Qt aborts with a long message when one is missing), with the
# Debian/Ubuntu package that provides each.
_XCB_LIBS = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
}


def missing_x11_libraries(env: dict[str, str] | os._Environ[str], platform: str) -> list[str]:
    """Packages to install before Qt can open a window on X11 (empty when all is there)."""
    if not platform.startswith("linux") or env.get("QT_QPA_PLATFORM") or not env.get("DISPLAY"):
        return []
    if env.get("WAYLAND_DISPLAY"):
        return []
    import ctypes

    missing = []
    for soname, package in _XCB_LIBS.items():
        try:
            ctypes.CDLL(soname)
        except OSError:
            missing.append(package)
    return missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="forecode", description=__doc__)
    parser.add_argument(
        "folder",
        nargs="?",
        default=None,
        help="folder to open (none: the welcome page, with recent folders)",
    )
    parser.add_argument("files", nargs="*", help="files to open in tabs")
    args = parser.parse_args(argv)
    folder = Path(args.folder) if args.folder is not None else None
    if folder is not None and not folder.is_dir():
        if folder.is_file():
            args.files.insert(0, str(folder))
            folder = folder.parent
        else:
            print(f"forecode: {folder} is not a folder", file=sys.stderr)
            return 2
    if getattr(sys, "frozen", False):  # an approved update is put in place (issue 18)
        from .services.update_start import run_at_start

        run_at_start(Path(sys.executable).parent, sys.argv)
    problem = display_problem(os.environ, sys.platform)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    missing = missing_x11_libraries(os.environ, sys.platform)
    if missing:
        print(
            "forecode: Qt needs system libraries that are missing for X11: "
            f"{' '.join(missing)} (Debian/Ubuntu: sudo apt-get install {' '.join(missing)})",
            file=sys.stderr,
        )
        return 2

    trace = _trace if os.environ.get(TRACE_ENV) else None
    private_at_start()  # the data and settings folders owner-only (older versions' too)
    from PySide6.QtWidgets import QApplication

    from .ui import startup
    from .ui.gc_idle import start_gc_policy
    from .ui.main_window import MainWindow
    from .ui.window_layout import WindowLayout

    if trace:
        trace("imported")
    app = QApplication(sys.argv[:1])
    app.setApplicationName("Forecode")
    app.setOrganizationName("Forecode")
    # The window paints first; the engine, the chat service and the language servers start
    # after its first frame (``app.ui.startup``).
    startup.hold()
    window = MainWindow()
    window.layout_store = WindowLayout()
    window.layout_store.restore(window)  # last run's size, panes and chat panel
    if folder is not None:
        window.open_folder(folder)
    for file in args.files:
        window.open_file(file)
    if trace:
        trace("window built")
        _trace_first_ghost(window, trace)
    window.show()
    print(
        f"forecode: editing {folder.resolve()}"
        if folder is not None
        else "forecode: no folder (the welcome page)",
        flush=True,
    )

    def painted() -> None:
        if trace:
            trace("first paint")
        startup.release()
        # after the first events (the folder, the first paint): the start-up heap frozen,
        # full collections only at idle (app.services.gcpolicy)
        start_gc_policy(app)

    startup.FirstPaint(window, painted)
    return app.exec()


# ``FORECODE_TRACE_STARTUP=1``: one line on stderr per start-up phase (seconds since the
# process started), and when the first ghost text (an inline completion) is shown. Read by
# ``bench/package.py`` (``first_completion_s``) and by hand with ``python -X importtime``.
TRACE_ENV = "FORECODE_TRACE_STARTUP"


def _trace(phase: str) -> None:
    since = time.time() - _process_start()
    print(f"forecode-trace: {phase} {since:.3f}", file=sys.stderr, flush=True)


def _process_start() -> float:
    """When this process started (wall clock), from /proc; now where there is none."""
    try:
        with open(f"/proc/{os.getpid()}/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return _IMPORTED_AT


def _trace_first_ghost(window: Any, trace: Callable[[str], None]) -> None:
    """Trace when the engine is first ready and the first non-empty inline suggestion of
    whichever engine the window starts."""
    seen: list[object] = []
    done: list[bool] = []
    ready: list[bool] = []

    def on_suggestion(text: str) -> None:
        if text and not done:
            done.append(True)
            trace("first ghost")

    def on_engine() -> None:
        engine = window.completions.engine
        if not ready and engine is not None and engine.is_ready():
            ready.append(True)
            trace("engine ready")
        inline = window.completions.inline
        if inline is not None and not any(i is inline for i in seen):
            seen.append(inline)
            inline.suggestionChanged.connect(on_suggestion)

    window.completions.engine_changed.connect(on_engine)
    # where the time to the first completion goes: the model's status-bar states
    window.completions.status.connect(lambda text, _tip: trace(f"model: {text}"))
    on_engine()


if __name__ == "__main__":
    sys.exit(main())
