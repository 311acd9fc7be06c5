"""``forecode [FOLDER]``: open the editor on a folder (default: the current directory)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

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

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from .services.gcpolicy import freeze_startup_heap
    from .ui.main_window import MainWindow

    app = QApplication(sys.argv[:1])
    app.setApplicationName("Forecode")
    app.setOrganizationName("Forecode")
    window = MainWindow()
    if folder is not None:
        window.open_folder(folder)
    for file in args.files:
        window.open_file(file)
    window.show()
    print(
        f"forecode: editing {folder.resolve()}"
        if folder is not None
        else "forecode: no folder (the welcome page)",
        flush=True,
    )
    # Once the first events (the folder, the first paint) are handled.
    QTimer.singleShot(0, freeze_startup_heap)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
