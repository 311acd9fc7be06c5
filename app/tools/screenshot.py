"""Render the main window offscreen to a PNG (the README's screenshot).

    .venv/bin/python -m app.tools.screenshot docs/screenshot.png [--folder docs/sample]
        [--file docs/sample/inventory.py] [--theme dark|light]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--folder", type=Path, default=REPO / "docs" / "sample")
    parser.add_argument("--file", type=Path, default=None)
    parser.add_argument("--theme", choices=("dark", "light"), default="dark")
    parser.add_argument("--size", default="1280x800")
    parser.add_argument("--type", default="", metavar="TEXT",
                        help="type TEXT at the end of line 34 and wait for the local model's "
                             "ghost-text suggestion before the shot")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    # A screenshot must not depend on (or touch) the user's settings and backups.
    scratch = Path(os.environ.get("TMPDIR", "/tmp")) / f"forecode-shot-{os.getpid()}"
    os.environ["FORECODE_CONFIG_DIR"] = str(scratch / "config")
    os.environ["FORECODE_DATA_DIR"] = str(scratch / "data")

    from dataclasses import replace

    from PySide6.QtCore import Qt, QThread
    from PySide6.QtWidgets import QApplication

    from app.ui.main_window import MainWindow

    app = QApplication(sys.argv[:1])
    window = MainWindow()
    window.apply_settings(replace(window.settings, theme=args.theme))
    width, height = (int(v) for v in args.size.split("x"))
    window.resize(width, height)
    window.open_folder(args.folder)
    file = args.file or next(iter(sorted(args.folder.glob("*.py"))), None)
    doc = window.open_file(file) if file is not None else None
    window.show()

    def settle() -> None:  # let the file model list the folder and the editor paint
        for _ in range(25):
            app.processEvents()
            QThread.msleep(20)

    settle()
    if doc is not None and args.type:
        from PySide6.QtTest import QTest

        for _ in range(1500):  # the engine loads in the background (at most ~30 s)
            if window.engine is not None and window.engine.is_ready():
                break
            settle()
        doc.editor.go_to_line(34, 1)
        doc.editor.gotoPos(doc.editor.lineEndPosition(33))
        QTest.keyClick(doc.editor, Qt.Key.Key_Return)
        QTest.keyClicks(doc.editor, args.type)
        for _ in range(300):
            if window.inline is not None and window.inline.suggestion:
                break
            settle()
        settle()
    elif doc is not None:
        doc.editor.go_to_line(17, 9)
        settle()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    ok = window.grab().save(str(args.out))
    window.close()
    print(f"wrote {args.out}" if ok else f"could not write {args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
