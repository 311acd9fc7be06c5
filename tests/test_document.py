"""Open / edit / save round trips through the real editor widget (offscreen)."""

from __future__ import annotations

import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.ui.document import Document
from forecode_core.store.hotexit import BackupStore
from forecode_core.store.settings import Settings

SETTINGS = Settings()


def open_doc(qtbot: QtBot, path: Path, settings: Settings = SETTINGS) -> Document:
    doc = Document.open(path, settings)
    qtbot.addWidget(doc)
    return doc


def type_at_end(qtbot: QtBot, doc: Document, text: str) -> None:
    doc.editor.gotoPos(doc.editor.textLength())
    qtbot.keyClicks(doc.editor, text)


@pytest.mark.parametrize(
    ("data", "encoding", "eol"),
    [
        (b"print('hi')\n", "UTF-8", "LF"),
        (b"a = 1\r\nb = 2\r\n", "UTF-8", "CRLF"),
        (b"old mac\rline\r", "UTF-8", "CR"),
        (b"\xef\xbb\xbfcaf\xc3\xa9\n", "UTF-8 with BOM", "LF"),
        ("\ufeffdéjà vu\r\n".encode("utf-16-le"), "UTF-16 LE", "CRLF"),
        ("\ufeffx\n".encode("utf-16-be"), "UTF-16 BE", "LF"),
        (b"mixed\r\nendings\nhere\r\n", "UTF-8", "CRLF"),
        (b"no newline at end", "UTF-8", "LF"),
    ],
)
def test_edit_and_save_keeps_encoding_and_line_endings(
    qtbot: QtBot, tmp_path: Path, data: bytes, encoding: str, eol: str
) -> None:
    from forecode_core.text.textfile import EOL_NAMES, decode_bytes, encoding_label

    path = tmp_path / "f.txt"
    path.write_bytes(data)
    doc = open_doc(qtbot, path)
    assert encoding_label(doc.encoding) == encoding and EOL_NAMES[doc.eol] == eol
    assert not doc.is_dirty()
    # Save untouched: byte-identical.
    assert doc.save() and doc.wait_saves()
    assert path.read_bytes() == data
    # Type a new line at the start: the new line ending is the file's own.
    doc.editor.gotoPos(0)
    qtbot.keyClicks(doc.editor, "X")
    qtbot.keyClick(doc.editor, Qt.Key.Key_Return)
    assert doc.is_dirty()
    assert doc.save() and doc.wait_saves()
    assert not doc.is_dirty()
    expected = decode_bytes(data)
    again = decode_bytes(path.read_bytes())
    assert again.encoding == expected.encoding
    sep = {"LF": "\n", "CRLF": "\r\n", "CR": "\r"}[eol]
    assert again.text == "X" + sep + expected.text


def test_save_keeps_mode_bits(qtbot: QtBot, tmp_path: Path) -> None:
    path = tmp_path / "run.sh"
    path.write_text("echo hi\n")
    path.chmod(0o750)
    doc = open_doc(qtbot, path)
    type_at_end(qtbot, doc, "echo bye")
    assert doc.save() and doc.wait_saves()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o750
    assert path.read_text() == "echo hi\necho bye"


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"\x7fELF\x02\x01\x00\x00binary", "Binary"),
        # damaged UTF-8 (a legacy 8-bit file opens editable: see test_encodings.py)
        ("naïve ".encode() + b"caf\xe9 latin-1\n", "not valid UTF-8"),
    ],
)
def test_binary_and_invalid_utf8_open_read_only_and_are_never_rewritten(
    qtbot: QtBot, tmp_path: Path, data: bytes, words: str
) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    before = os.stat(path).st_mtime_ns
    doc = open_doc(qtbot, path)
    assert doc.editor.readOnly()
    assert doc.banner.isVisibleTo(doc) and words in doc.banner.label.text()
    qtbot.keyClicks(doc.editor, "typing does nothing")
    assert not doc.is_dirty()
    assert doc.save() is False
    assert path.read_bytes() == data and os.stat(path).st_mtime_ns == before


def test_external_change_reloads_an_unmodified_buffer(qtbot: QtBot, tmp_path: Path) -> None:
    path = tmp_path / "a.py"
    path.write_text("one\n")
    doc = open_doc(qtbot, path)
    path.write_text("two\nlines\n")
    assert doc.check_disk() == "reloaded"
    assert doc.editor.text() == "two\nlines\n"
    assert not doc.is_dirty()


def test_external_change_with_unsaved_edits_is_never_overwritten_silently(
    qtbot: QtBot, tmp_path: Path
) -> None:
    path = tmp_path / "a.py"
    path.write_text("one\n")
    doc = open_doc(qtbot, path)
    type_at_end(qtbot, doc, "mine")
    path.write_text("theirs\n")
    assert doc.check_disk() == "conflict"
    assert doc.editor.text() == "one\nmine"  # the user's text is untouched
    results: list[bool] = []
    assert doc.save(on_done=results.append) and doc.wait_saves()
    assert results == [False]  # no silent overwrite (the writer checked the disk first)
    assert path.read_text() == "theirs\n" and doc.is_dirty()
    assert "changed on disk" in doc.banner.label.text()
    # The user explicitly chooses to overwrite.
    doc.banner.buttons()["Overwrite"].click()
    assert doc.wait_saves() and path.read_text() == "one\nmine" and not doc.is_dirty()


def test_external_change_conflict_reload_takes_the_disk_version(
    qtbot: QtBot, tmp_path: Path
) -> None:
    path = tmp_path / "a.py"
    path.write_text("one\n")
    doc = open_doc(qtbot, path)
    type_at_end(qtbot, doc, "mine")
    path.write_text("theirs\n")
    assert doc.check_disk() == "conflict"
    doc.banner.buttons()["Reload from disk (lose my changes)"].click()
    assert doc.editor.text() == "theirs\n" and not doc.is_dirty()


def test_touch_without_content_change_is_ignored(qtbot: QtBot, tmp_path: Path) -> None:
    path = tmp_path / "a.py"
    path.write_text("same\n")
    doc = open_doc(qtbot, path)
    type_at_end(qtbot, doc, "x")
    os.utime(path, ns=(1, 1))
    assert doc.check_disk() == "same"
    assert doc.save() and doc.wait_saves()  # no conflict: the bytes on disk are what we read


def test_deleted_file_keeps_the_text(qtbot: QtBot, tmp_path: Path) -> None:
    path = tmp_path / "gone.py"
    path.write_text("keep me\n")
    doc = open_doc(qtbot, path)
    path.unlink()
    assert doc.check_disk() == "deleted"
    assert doc.editor.text() == "keep me\n"
    assert "deleted" in doc.banner.label.text()
    assert doc.save() and doc.wait_saves()
    assert path.read_text() == "keep me\n"


def test_undo_redo_round_trip(qtbot: QtBot, tmp_path: Path) -> None:
    path = tmp_path / "u.py"
    path.write_text("x = 1\n")
    doc = open_doc(qtbot, path)
    type_at_end(qtbot, doc, "y = 2")
    doc.editor.undo()
    assert doc.editor.text() == "x = 1\n" and not doc.is_dirty()
    doc.editor.redo()
    assert doc.editor.text() == "x = 1\ny = 2"


def test_trim_and_final_newline_settings_apply_on_save(qtbot: QtBot, tmp_path: Path) -> None:
    path = tmp_path / "t.py"
    path.write_text("a = 1   \nb = 2\t")
    settings = Settings(trim_trailing_whitespace=True, insert_final_newline=True)
    doc = open_doc(qtbot, path, settings)
    type_at_end(qtbot, doc, "  ")
    assert doc.save() and doc.wait_saves()
    assert path.read_text() == "a = 1\nb = 2\n"


def test_unsaved_changes_are_backed_up_and_removed_after_save(qtbot: QtBot, tmp_path: Path) -> None:
    path = tmp_path / "b.py"
    path.write_text("base\n")
    store = BackupStore(tmp_path / "backups")
    with ThreadPoolExecutor(max_workers=1) as pool:
        doc = Document.open(path, Settings(hot_exit_delay_ms=50), store, pool)
        qtbot.addWidget(doc)
        type_at_end(qtbot, doc, "unsaved")

        def backed_up() -> None:
            backups, _ = store.load_all()
            assert [b.text for b in backups] == ["base\nunsaved"]

        qtbot.waitUntil(backed_up, timeout=3000)
        assert doc.save() and doc.wait_saves()
        qtbot.waitUntil(lambda: store.load_all()[0] == [], timeout=3000)
