"""Child process for the hot-exit test: open a workspace in the real main window, type into a
file and into an untitled buffer, say "typed", then keep running until killed."""

import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from app.ui.main_window import MainWindow


def main() -> None:
    workspace, file_name = sys.argv[1], sys.argv[2]
    app = QApplication([])
    window = MainWindow()
    window.open_folder(workspace)
    window.show()
    doc = window.open_file(os.path.join(workspace, file_name))
    assert doc is not None
    doc.editor.gotoPos(doc.editor.textLength())
    QTest.keyClicks(doc.editor, "unsaved ")
    doc.editor.replaceSel("édit")  # QTest types ASCII only; this is an ordinary user edit
    untitled = window.new_untitled()
    QTest.keyClicks(untitled.editor, "scratch notes")
    print("typed", flush=True)
    app.exec()


main()
