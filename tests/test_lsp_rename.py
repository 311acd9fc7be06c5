"""Rename Symbol (F2): the WorkspaceEdit conversion (table tests on plain data,
``forecode_core.lsp.workspace_edit``), the lsprotocol shapes (``workspace_changes``), the
name check, and a real basedpyright rename across two files in a real window, reviewed,
accepted and undone in one step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lsprotocol import types as lsp
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.ui.edit_set_review import EditSetReview
from app.ui.main_window import MainWindow
from app.ui.owners.lsp_actions import RenameBox, valid_name, workspace_changes
from forecode_core.edits.events import FileChangeKind
from forecode_core.lsp.positions import Position as P
from forecode_core.lsp.workspace_edit import (
    DocumentEdit,
    FileOperation,
    OperationKind,
    RenameRefused,
    TextEdit,
    apply_text_edits,
    index_of,
    to_file_changes,
)
from tests.helpers.window import folder_window

SERVER_WAIT_MS = 120_000  # a cold basedpyright took 20-40 s at load 25 on two cores


@pytest.fixture
def lsp_window(
    qtbot: QtBot, tmp_path: Path, isolated_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> tuple[MainWindow, Path]:
    """A window on a fresh folder with the language servers on (conftest turns them off)."""
    monkeypatch.delenv("FORECODE_LSP", raising=False)
    values = {"completion.enabled": False, "cloud.autostart": False, "lsp.enabled": True}
    (isolated_dirs["config"] / "settings.json").write_text(json.dumps(values))
    ws = tmp_path / "ws"
    ws.mkdir()
    return folder_window(qtbot, ws), ws


def E(l1: int, c1: int, l2: int, c2: int, text: str) -> TextEdit:
    return TextEdit(P(l1, c1), P(l2, c2), text)


@pytest.mark.parametrize(
    ("text", "position", "index"),
    [
        ("abc\ndef", P(1, 2), 6),
        ("abc\r\ndef", P(1, 0), 5),
        ("abc", P(0, 99), 3),  # past the line's end: the end
        ("abc\n", P(5, 0), 4),  # past the last line: the text's end
        ("a😀b\nx", P(0, 3), 2),  # the emoji is two UTF-16 units, one code point
        ("a😀b", P(0, 2), 1),  # inside the surrogate pair: the emoji's start
        ("é = 1", P(0, 1), 1),
    ],
)
def test_index_of_converts_utf16_positions(text: str, position: P, index: int) -> None:
    assert index_of(text, position) == index


@pytest.mark.parametrize(
    ("text", "edits", "expected"),
    [
        ("old = old + 1\n", [E(0, 0, 0, 3, "new"), E(0, 6, 0, 9, "new")], "new = new + 1\n"),
        # any order: applied from the positions, not the list's order
        ("old = old + 1\n", [E(0, 6, 0, 9, "new"), E(0, 0, 0, 3, "new")], "new = new + 1\n"),
        # two inserts at one position keep their order
        ("ab", [E(0, 1, 0, 1, "1"), E(0, 1, 0, 1, "2")], "a12b"),
        # after an emoji: UTF-16 columns
        ("s = '😀'; x = 1\n", [E(0, 10, 0, 11, "y")], "s = '😀'; y = 1\n"),
        # across lines, CRLF kept
        ("a\r\nb\r\nc", [E(0, 1, 2, 0, "-")], "a-c"),
        ("x", [], "x"),
    ],
)
def test_apply_text_edits_table(text: str, edits: list[TextEdit], expected: str) -> None:
    assert apply_text_edits(text, edits) == expected


def test_overlapping_edits_are_refused() -> None:
    with pytest.raises(RenameRefused, match="overlapping"):
        apply_text_edits("abcdef", [E(0, 0, 0, 3, "x"), E(0, 2, 0, 4, "y")])


FILES = {
    "file:///w/a.py": "def old():\n    pass\n",
    "file:///w/b.py": "from a import old\nold()\n",
}


def _read(uri: str) -> str | None:
    return FILES.get(uri)


def _shown(uri: str) -> str:
    return uri.removeprefix("file:///w/")


def test_changes_in_two_files_become_a_set_in_first_touched_order() -> None:
    changes = [
        DocumentEdit("file:///w/b.py", (E(0, 14, 0, 17, "new"), E(1, 0, 1, 3, "new"))),
        DocumentEdit("file:///w/a.py", (E(0, 4, 0, 7, "new"),), version=3),
    ]
    got = to_file_changes(changes, _read, _shown, {"file:///w/a.py": 3})
    assert [(c.path, c.kind) for c in got] == [
        ("b.py", FileChangeKind.MODIFIED),
        ("a.py", FileChangeKind.MODIFIED),
    ]
    assert got[0].original == FILES["file:///w/b.py"]
    assert got[0].new_text == "from a import new\nnew()\n"
    assert got[1].new_text == "def new():\n    pass\n"


def test_an_edit_for_another_version_refuses_the_whole_set() -> None:
    changes = [DocumentEdit("file:///w/a.py", (E(0, 4, 0, 7, "new"),), version=2)]
    with pytest.raises(RenameRefused, match=r"a\.py changed"):
        to_file_changes(changes, _read, _shown, {"file:///w/a.py": 3})


def test_two_edits_of_one_document_apply_in_sequence_and_no_change_is_left_out() -> None:
    changes = [
        DocumentEdit("file:///w/a.py", (E(0, 4, 0, 7, "mid"),)),
        DocumentEdit("file:///w/a.py", (E(0, 4, 0, 7, "end"),)),
        DocumentEdit("file:///w/b.py", (E(1, 0, 1, 3, "old"),)),  # the same text: no change
    ]
    got = to_file_changes(changes, _read, _shown)
    assert [c.path for c in got] == ["a.py"]
    assert got[0].new_text.startswith("def end():")


@pytest.mark.parametrize(
    ("ops", "kind_or_error"),
    [
        ([FileOperation(OperationKind.CREATE, "file:///w/c.py")], FileChangeKind.NEW),
        ([FileOperation(OperationKind.DELETE, "file:///w/b.py")], FileChangeKind.DELETED),
        ([FileOperation(OperationKind.CREATE, "file:///w/a.py")], "overwrite the existing"),
        ([FileOperation(OperationKind.CREATE, "file:///w/a.py", ignore_if_exists=True)], None),
        (
            [FileOperation(OperationKind.RENAME, "file:///w/a.py", "file:///w/z.py")],
            "renaming files is not supported",
        ),
        ([FileOperation(OperationKind.DELETE, "file:///w/gone.py")], "does not exist"),
        ([FileOperation(OperationKind.DELETE, "file:///w/a.py", recursive=True)], "folder"),
    ],
)
def test_file_operations(ops: list[FileOperation], kind_or_error: object) -> None:
    if isinstance(kind_or_error, str) and not isinstance(kind_or_error, FileChangeKind):
        with pytest.raises(RenameRefused, match=kind_or_error):
            to_file_changes(ops, _read, _shown)
        return
    got = to_file_changes(ops, _read, _shown)
    assert [c.kind for c in got] == ([kind_or_error] if kind_or_error else [])


def test_a_created_file_takes_the_edits_that_follow() -> None:
    changes: list[DocumentEdit | FileOperation] = [
        FileOperation(OperationKind.CREATE, "file:///w/c.py"),
        DocumentEdit("file:///w/c.py", (E(0, 0, 0, 0, "x = 1\n"),)),
    ]
    (got,) = to_file_changes(changes, _read, _shown)
    assert (got.path, got.kind, got.new_text) == ("c.py", FileChangeKind.NEW, "x = 1\n")


def test_an_unreadable_document_refuses_the_set() -> None:
    with pytest.raises(RenameRefused, match="cannot be read"):
        to_file_changes([DocumentEdit("file:///w/nope.py", (E(0, 0, 0, 0, "x"),))], _read, _shown)


def _range(l1: int, c1: int, l2: int, c2: int) -> lsp.Range:
    return lsp.Range(lsp.Position(l1, c1), lsp.Position(l2, c2))


def test_workspace_changes_reads_document_changes_and_changes() -> None:
    edit = lsp.WorkspaceEdit(
        document_changes=[
            lsp.TextDocumentEdit(
                lsp.OptionalVersionedTextDocumentIdentifier(version=4, uri="file:///w/a.py"),
                [lsp.TextEdit(_range(0, 4, 0, 7), "new")],
            ),
            lsp.CreateFile(uri="file:///w/c.py"),
            lsp.RenameFile(old_uri="file:///w/b.py", new_uri="file:///w/d.py"),
            lsp.DeleteFile(uri="file:///w/e.py"),
        ]
    )
    got = workspace_changes(edit)
    assert got[0] == DocumentEdit("file:///w/a.py", (E(0, 4, 0, 7, "new"),), 4)
    assert [getattr(c, "kind", None) for c in got[1:]] == [
        OperationKind.CREATE,
        OperationKind.RENAME,
        OperationKind.DELETE,
    ]
    plain = lsp.WorkspaceEdit(changes={"file:///w/b.py": [lsp.TextEdit(_range(1, 0, 1, 3), "n")]})
    assert workspace_changes(plain) == [DocumentEdit("file:///w/b.py", (E(1, 0, 1, 3, "n"),))]
    assert workspace_changes(None) == []


@pytest.mark.parametrize(
    ("name", "language", "ok"),
    [
        ("new_name", "python", True),
        ("Ünïcode", "python", True),
        ("", "python", False),
        ("1abc", "python", False),
        ("a-b", "python", False),
        ("class", "python", False),
        ("fooBar", "go", True),
        ("foo bar", "go", False),
    ],
)
def test_valid_name(name: str, language: str, ok: bool) -> None:
    assert (valid_name(name, language) == "") is ok


# ----- a real server, a real window ----------------------------------------------------------
def test_f2_renames_across_two_files_reviewed_accepted_and_undone_in_one_step(
    qtbot: QtBot, lsp_window: tuple[MainWindow, Path]
) -> None:
    win, ws = lsp_window
    helpers = ws / "helpers.py"
    helpers.write_text("def helper(x: int) -> int:\n    return x\n")
    main = ws / "main.py"
    main.write_text('from helpers import helper\n\nprint(helper(1), helper(2))\nlabel: int = "x"\n')
    doc = win.open_file(main)
    assert doc is not None
    language = win.language
    qtbot.waitUntil(  # analysed: the type error on the last line is reported
        lambda: any(d.source == "basedpyright" for d in language.store.all_for(main.as_uri())),
        timeout=SERVER_WAIT_MS,
    )
    doc.editor.gotoPos(doc.editor.text().rindex("helper(2)") + 2)
    actions = win.lsp_actions
    win.actions_by_id["editor.rename"].trigger()
    qtbot.waitUntil(lambda: actions.box is not None, timeout=SERVER_WAIT_MS)
    box = actions.box
    assert isinstance(box, RenameBox)
    assert box.text() == "helper" and box.selectedText() == "helper"
    # An invalid name is refused in place: nothing is asked, the box stays.
    box.setText("not valid")
    qtbot.keyClick(box, Qt.Key.Key_Return)  # type: ignore[no-untyped-call]
    assert box.problem and actions.box is box
    box.setText("assist")
    qtbot.keyClick(box, Qt.Key.Key_Return)  # type: ignore[no-untyped-call]
    qtbot.waitUntil(lambda: win.edit_set.review is not None, timeout=SERVER_WAIT_MS)
    review = win.edit_set.review
    assert isinstance(review, EditSetReview)
    assert review.title_label.text() == "<b>Rename helper → assist</b> · 2 files"
    # Nothing changed before the accept.
    assert doc.editor.text() == main.read_text()
    review.run_action("accept_all")
    main_doc = win.docs.find(main.resolve())
    helpers_doc = win.docs.find(helpers.resolve())
    assert main_doc is not None and helpers_doc is not None
    assert main_doc.editor.text() == (
        'from helpers import assist\n\nprint(assist(1), assist(2))\nlabel: int = "x"\n'
    )
    assert helpers_doc.editor.text() == "def assist(x: int) -> int:\n    return x\n"
    assert win.edit_set.undo_last()
    assert main_doc.editor.text() == main.read_text()
    assert helpers_doc.editor.text() == helpers.read_text()
