"""The quick-input picker (Quick Open / Command Palette / Go to Line), driven by keyboard."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLineEdit, QVBoxLayout, QWidget

from app.ui.picker import Picker, PickerItem

FILES = ["main.py", "main_window.py", "picker.py", "find_bar.py", "editor.py"]


class Harness:
    def __init__(self, qtbot) -> None:
        self.qtbot = qtbot
        self.window = QWidget()
        layout = QVBoxLayout(self.window)
        self.editor = QLineEdit(self.window)  # stands in for the code editor
        layout.addWidget(self.editor)
        layout.addStretch(1)
        self.picker = Picker(self.window)
        qtbot.addWidget(self.window)
        self.window.resize(800, 500)
        self.window.show()
        self.window.activateWindow()
        qtbot.waitUntil(self.window.isActiveWindow, timeout=2000)
        self.editor.setFocus()
        self.queries: list[str] = []
        self.accepted: list[tuple[PickerItem | None, str]] = []
        self.signalled: list[object] = []
        self.picker.accepted.connect(self.signalled.append)

    def files(self, query: str) -> list[PickerItem]:
        self.queries.append(query)
        return [
            PickerItem(name, detail="app/ui", data=name)
            for name in FILES
            if query.lower() in name.lower()
        ]

    def on_accept(self, item: PickerItem | None, query: str) -> None:
        self.accepted.append((item, query))

    def open_files(self, initial: str = "") -> None:
        self.picker.open("Search files by name", self.files, initial, self.on_accept)

    def rows(self) -> list[str]:
        view = self.picker.list_view
        model = view.model()
        if not view.isVisible():
            return []
        return [model.index(r, 0).data() for r in range(model.rowCount())]

    def current(self) -> str:
        return self.picker.list_view.currentIndex().data()

    def key(self, key: Qt.Key) -> None:
        self.qtbot.keyClick(self.picker.query_edit, key)


@pytest.fixture
def h(qtbot) -> Harness:
    return Harness(qtbot)


def test_opens_focused_at_the_top_centre_with_all_rows(h: Harness) -> None:
    h.open_files()
    assert h.picker.is_open() and h.picker.isVisible()
    assert h.picker.query_edit.hasFocus()
    assert h.picker.query_edit.placeholderText() == "Search files by name"
    assert h.queries == [""]
    assert len(h.rows()) == len(FILES)
    assert h.current().startswith("main.py")
    geo = h.picker.geometry()
    assert abs(geo.center().x() - h.window.width() // 2) <= 1
    assert geo.top() < 20 and geo.width() <= 600
    h.window.resize(1000, 500)
    assert abs(h.picker.geometry().center().x() - 500) <= 1


def test_provider_is_called_with_the_typed_text_and_replaces_rows(h: Harness) -> None:
    h.open_files()
    h.qtbot.keyClicks(h.picker.query_edit, "ma")
    assert h.queries == ["", "m", "ma"]
    assert [r.split()[0] for r in h.rows()] == ["main.py", "main_window.py"]
    assert h.current().startswith("main.py")  # the first row is selected again
    h.qtbot.keyClicks(h.picker.query_edit, "zz")
    assert h.rows() == []
    assert h.picker.empty_label.isVisible()


def test_down_then_enter_accepts_the_second_item(h: Harness) -> None:
    h.open_files("py")
    h.key(Qt.Key.Key_Down)
    assert h.current().startswith("main_window.py")
    h.key(Qt.Key.Key_Return)
    item = PickerItem("main_window.py", detail="app/ui", data="main_window.py")
    assert h.accepted == [(item, "py")]
    assert h.signalled == [item]
    assert not h.picker.is_open() and not h.picker.isVisible()
    assert h.editor.hasFocus()  # focus goes back where it was


def test_arrows_wrap_and_pages_clamp(h: Harness) -> None:
    h.open_files()
    h.key(Qt.Key.Key_Up)
    assert h.current().startswith("editor.py")
    h.key(Qt.Key.Key_Down)
    assert h.current().startswith("main.py")
    h.key(Qt.Key.Key_PageDown)
    assert h.current().startswith("editor.py")
    h.key(Qt.Key.Key_PageUp)
    assert h.current().startswith("main.py")


def test_escape_closes_without_accepting(h: Harness) -> None:
    h.open_files()
    h.key(Qt.Key.Key_Down)
    h.key(Qt.Key.Key_Escape)
    assert not h.picker.isVisible()
    assert h.accepted == [] and h.signalled == []
    assert h.editor.hasFocus()


def test_focus_loss_closes_without_accepting(h: Harness) -> None:
    h.open_files()
    h.editor.setFocus()
    assert not h.picker.is_open() and not h.picker.isVisible()
    assert h.accepted == []


def test_clicking_a_row_accepts_it(h: Harness) -> None:
    h.open_files()
    view = h.picker.list_view
    rect = view.visualRect(view.model().index(2, 0))
    h.qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert [item.label for item, _ in h.accepted] == ["picker.py"]


def test_go_to_line_gets_the_query_and_none_on_an_empty_list(h: Harness) -> None:
    def lines(query: str) -> list[PickerItem]:
        digits = query.lstrip(":")
        if digits.isdigit():
            return [PickerItem(f"Go to line {digits}", data=int(digits))]
        return []

    h.picker.open("Type a line number", lines, ":", h.on_accept)
    assert h.rows() == []
    h.qtbot.keyClicks(h.picker.query_edit, "42")
    assert h.rows() == ["Go to line 42"]
    h.key(Qt.Key.Key_Enter)
    assert h.accepted == [(PickerItem("Go to line 42", data=42), ":42")]

    h.picker.open("Type a line number", lines, ":", h.on_accept)
    h.qtbot.keyClicks(h.picker.query_edit, "x")
    h.key(Qt.Key.Key_Return)
    assert h.accepted[-1] == (None, ":x")
    assert h.signalled == [PickerItem("Go to line 42", data=42)]  # nothing emitted for None


def test_reopening_switches_provider(h: Harness) -> None:
    h.open_files()
    commands = [PickerItem("Toggle Line Comment", detail="Ctrl+/", data="comment")]
    h.picker.open("Type a command", lambda q: commands, ">", h.on_accept)
    assert h.picker.query_edit.text() == ">"
    assert h.rows() == ["Toggle Line Comment  Ctrl+/"]
    h.key(Qt.Key.Key_Return)
    assert h.accepted == [(commands[0], ">")]
    assert h.editor.hasFocus()


def test_bold_matched_characters_render_for_non_ascii_labels(h: Harness) -> None:
    label = "日本語_ファイル_😀_naïve.py"
    positions = (0, 2, 4, 9, 11, len(label) - 1, len(label), 999, -3)
    shown = [
        PickerItem("selected row"),
        PickerItem(label, "dossier/é", positions),
        PickerItem(label, "dossier/é"),
        PickerItem(label * 20, "elided", tuple(range(0, 400, 3))),
    ]
    h.picker.open("Search", lambda q: shown)
    view = h.picker.list_view
    image = view.viewport().grab().toImage()
    rows = [view.visualRect(view.model().index(r, 0)) for r in (1, 2)]
    bold_row, plain_row = (image.copy(r) for r in rows)
    assert not bold_row.isNull() and bold_row.size() == plain_row.size()
    assert bold_row != plain_row  # the matched characters look different
