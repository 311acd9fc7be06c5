"""Legacy encodings (issue 13, point 13): a coding line is honoured, a legacy file opens
editable and round trips byte for byte, editing one line changes only that line's bytes, and
"Reopen with Encoding" / "Save with Encoding" work from the status bar and the palette (real
window, offscreen)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.ui.main_window import MainWindow
from forecode_core.text.textfile import (
    EDITABLE_ENCODINGS,
    ENCODING_CHOICES,
    declared_encoding,
    decode_bytes,
    encode_text,
    encoding_label,
    normalize_encoding,
)
from tests.helpers.window import folder_window

# ------------------------------------------------------------------------------ pure: rules


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b"# -*- coding: latin-1 -*-\nx = 1\n", "latin-1"),
        (b"#!/usr/bin/env python\n# coding=cp1252\n", "cp1252"),
        (b"\n# vim: set fileencoding=iso-8859-15 :\n", "iso-8859-15"),
        (b"/* -*- coding: windows-1250 -*- */\nint x;\n", "windows-1250"),
        (b'<?xml version="1.0" encoding="ISO-8859-1"?>\n<a/>\n', "ISO-8859-1"),
        (b"x = 1\n# coding: latin-1\n", None),  # PEP 263: line 2 counts after a comment only
        (b"#!/bin/sh\n\n# coding: latin-1\n", None),  # third line
        (b"print('no declaration')\n", None),
        (b"", None),
    ],
)
def test_declared_encoding(data: bytes, name: str | None) -> None:
    assert declared_encoding(data) == name


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("latin-1", "iso8859-1"),
        ("Windows-1252", "cp1252"),
        ("utf8", "utf-8"),
        ("SHIFT-JIS", "shift_jis"),
        ("utf-8-sig", "utf-8-sig"),
        ("klingon", None),
        ("ascii", None),
        ("utf-7", None),
    ],
)
def test_normalize_encoding(name: str, expected: str | None) -> None:
    assert normalize_encoding(name) == expected


def test_every_choice_is_editable_and_labelled() -> None:
    assert {e for e, _ in ENCODING_CHOICES} == EDITABLE_ENCODINGS
    assert encoding_label("cp1252") == "Western (Windows 1252)"
    assert encoding_label("iso8859-1") == "Western (ISO 8859-1)"


def test_a_coding_line_is_honoured() -> None:
    data = b"# -*- coding: latin-1 -*-\nname = 'caf\xe9'\n"
    d = decode_bytes(data)
    assert (d.encoding, d.read_only, d.notice) == ("iso8859-1", False, None)
    assert d.text == "# -*- coding: latin-1 -*-\nname = 'café'\n"
    assert encode_text(d.text, d.encoding) == data


def test_a_coding_line_on_ascii_text_decides_how_new_text_is_saved() -> None:
    d = decode_bytes(b"# coding: cp1252\nx = 1\n")
    assert d.encoding == "cp1252"
    assert encode_text(d.text + "s = '€'\n", d.encoding).endswith(b"s = '\x80'\n")


def test_a_declaration_the_bytes_contradict_is_not_trusted() -> None:
    d = decode_bytes(b"# coding: utf-8\ns = 'caf\xe9'\n")  # declares UTF-8, is not
    assert d.encoding == "cp1252" and d.notice and not d.read_only
    e = decode_bytes("# coding: cp1252\ns = 'Á'\n".encode())  # C3 81: 81 is not cp1252
    assert e.encoding == "utf-8" and e.text.endswith("'Á'\n")


@pytest.mark.parametrize(
    ("data", "encoding", "text"),
    [
        (b"caf\xe9 cr\xe8me br\xfbl\xe9e\n", "cp1252", "café crème brûlée\n"),
        (b"\x93quoted\x94 \x80 5\n", "cp1252", "\u201cquoted\u201d € 5\n"),
        (b"ctrl \x81 \x8d byte\n", "iso8859-1", "ctrl \x81 \x8d byte\n"),  # undefined in cp1252
    ],
)
def test_legacy_8bit_text_is_guessed_editable_and_says_so(
    data: bytes, encoding: str, text: str
) -> None:
    d = decode_bytes(data)
    assert (d.encoding, d.text, d.read_only) == (encoding, text, False)
    assert d.notice and "not valid UTF-8" in d.notice and encoding_label(encoding) in d.notice
    assert encode_text(d.text, d.encoding) == data


def test_damaged_utf8_stays_read_only() -> None:
    d = decode_bytes("déjà vu, naïve\n".encode() + b"\xff\n")
    assert d.read_only and d.encoding == "unknown (invalid UTF-8)"


def test_editing_one_line_of_a_legacy_file_changes_only_that_line() -> None:
    lines = [b"# r\xe9sum\xe9\r\n", b"x = '\x80 na\xefve'\r\n", b"# fin \xe0 la ligne\r\n"]
    data = b"".join(lines)
    d = decode_bytes(data)
    assert d.encoding == "cp1252" and d.eol == "\r\n"
    text_lines = d.text.split("\r\n")
    text_lines[1] = "x = 'œuvre ‰'"
    out = encode_text("\r\n".join(text_lines), d.encoding)
    new_lines = out.splitlines(keepends=True)
    assert new_lines[0] == lines[0] and new_lines[2] == lines[2]
    assert new_lines[1] == "x = 'œuvre ‰'\r\n".encode("cp1252")


@pytest.mark.parametrize("encoding", sorted(EDITABLE_ENCODINGS))
def test_chosen_encodings_round_trip_or_are_read_only(encoding: str) -> None:
    rng = random.Random(encoding)
    editable = 0
    for _ in range(300):
        data = bytes(rng.randrange(1, 256) for _ in range(rng.randrange(0, 30)))
        d = decode_bytes(data, encoding=encoding)
        if d.read_only:
            with pytest.raises(ValueError):
                encode_text(d.text, d.encoding)
        else:
            editable += 1
            assert encode_text(d.text, d.encoding) == data, (encoding, data)
    if encoding in ("iso8859-1", "cp437", "koi8-r", "mac-roman"):
        assert editable == 300  # every byte is a character in these


def test_reopen_with_a_bom_encoding_needs_the_bom() -> None:
    d = decode_bytes(b"a\x00b\x00", encoding="utf-16-le-bom")
    assert d.read_only and "byte order mark" in (d.read_only_reason or "")
    assert decode_bytes(b"\xef\xbb\xbfx", encoding="utf-8").encoding == "utf-8-sig"
    assert decode_bytes(b"x", encoding="utf-8-sig").encoding == "utf-8"
    with pytest.raises(ValueError, match="Unknown encoding"):
        decode_bytes(b"x", encoding="klingon")


def test_unencodable_text_is_refused_with_the_character() -> None:
    with pytest.raises(ValueError, match=r"U\+65E5 at position 2"):
        encode_text("a 日", "cp1252")


# --------------------------------------------------------------------------------------- UI


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "legacy.py").write_bytes(
        b"# -*- coding: latin-1 -*-\nname = 'caf\xe9'\nother = 'cr\xe8me'\n"
    )
    (ws / "notes.txt").write_bytes(b"r\xe9sum\xe9\n\xc0 bient\xf4t\n")  # no declaration
    (ws / "cyrillic.txt").write_bytes("привет мир\n".encode("cp1251"))
    (ws / "plain.txt").write_text("plain ascii\n")
    return ws


@pytest.fixture
def window(qtbot: QtBot, workspace: Path) -> Iterator[MainWindow]:
    yield folder_window(qtbot, workspace)


def _choose(qtbot: QtBot, window: MainWindow, query: str) -> None:
    assert window.picker.is_open()
    qtbot.keyClicks(window.picker.query_edit, query)
    qtbot.keyClick(window.picker.query_edit, Qt.Key.Key_Return)


def test_latin1_file_with_coding_line_edits_and_saves_only_the_edited_line(
    qtbot: QtBot, window: MainWindow, workspace: Path
) -> None:
    path = workspace / "legacy.py"
    original = path.read_bytes()
    doc = window.open_file(path)
    assert doc is not None and not doc.editor.readOnly()
    assert window.status_encoding.text() == "Western (ISO 8859-1)"
    assert doc.editor.line_text(1) == "name = 'café'"
    assert (
        doc.save() and doc.wait_saves() and path.read_bytes() == original
    )  # unedited: byte-identical
    doc.editor.go_to_line(3, 100)
    qtbot.keyClicks(doc.editor, " # ok")
    doc.editor.insertText(doc.editor.currentPos(), " \u00e0 bient\u00f4t")
    assert doc.save() and doc.wait_saves()
    lines = path.read_bytes().splitlines(keepends=True)
    assert lines[:2] == original.splitlines(keepends=True)[:2]
    assert lines[2] == b"other = 'cr\xe8me' # ok \xe0 bient\xf4t\n"


def test_a_guessed_legacy_file_says_so_and_round_trips(
    qtbot: QtBot, window: MainWindow, workspace: Path
) -> None:
    path = workspace / "notes.txt"
    original = path.read_bytes()
    doc = window.open_file(path)
    assert doc is not None and not doc.editor.readOnly()
    assert window.status_encoding.text() == "Western (Windows 1252)"
    assert doc.banner.isVisible() and "a guess" in doc.banner.label.text()
    assert "Reopen with Encoding..." in doc.banner.buttons()
    assert doc.save() and doc.wait_saves() and path.read_bytes() == original


def test_reopen_with_encoding_from_the_status_bar(
    qtbot: QtBot, window: MainWindow, workspace: Path
) -> None:
    path = workspace / "cyrillic.txt"
    original = path.read_bytes()
    doc = window.open_file(path)
    assert doc is not None and doc.editor.text() != "привет мир\n"  # guessed as Windows 1252
    qtbot.mouseClick(window.status_encoding, Qt.MouseButton.LeftButton)
    assert window.picker.is_open()
    assert [i.label for i in window.picker.items()] == [
        "Reopen with Encoding",
        "Save with Encoding",
    ]
    _choose(qtbot, window, "reopen")
    first = window.picker.items()[0]
    assert (first.label, first.detail) == ("Western (Windows 1252)", "Current")
    _choose(qtbot, window, "cyrillic windows")
    assert doc.editor.text() == "привет мир\n"
    assert window.status_encoding.text() == "Cyrillic (Windows 1251)"
    assert not doc.is_dirty() and doc.save() and doc.wait_saves()
    assert path.read_bytes() == original
    doc.editor.insertText(doc.editor.textLength(), "ещё\n")
    assert doc.save() and doc.wait_saves()
    assert path.read_bytes() == original + "ещё\n".encode("cp1251")
    doc.editor.insertText(0, "x")  # a reload after a change on disk keeps the choice
    doc.reload_from_disk()
    assert doc.editor.text() == "привет мир\nещё\n" and doc.encoding == "cp1251"


def test_save_with_encoding_from_the_palette(
    qtbot: QtBot, window: MainWindow, workspace: Path
) -> None:
    path = workspace / "notes.txt"
    doc = window.open_file(path)
    assert doc is not None
    text = doc.editor.text()
    qtbot.keyClick(
        window,
        Qt.Key.Key_P,
        Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
    )
    _choose(qtbot, window, "save with encoding")
    qtbot.waitUntil(lambda: window.picker.is_open(), timeout=2000)
    _choose(qtbot, window, "utf-8")
    qtbot.waitUntil(lambda: not doc.save_pending, timeout=10000)  # written on the writer
    assert path.read_bytes() == text.encode("utf-8")
    assert doc.encoding == "utf-8" and window.status_encoding.text() == "UTF-8"
    assert not doc.is_dirty()


def test_save_with_an_encoding_that_cannot_hold_the_text_changes_nothing(
    qtbot: QtBot, window: MainWindow, workspace: Path
) -> None:
    path = workspace / "plain.txt"
    doc = window.open_file(path)
    assert doc is not None
    doc.editor.insertText(0, "日本 ")
    assert doc.save_with_encoding("cp1252") is False
    assert "Cannot save with Western (Windows 1252)" in doc.banner.label.text()
    assert "U+65E5" in doc.banner.label.text()
    assert path.read_bytes() == b"plain ascii\n" and doc.encoding == "utf-8" and doc.is_dirty()


def test_reopen_is_refused_while_the_buffer_has_unsaved_changes(
    qtbot: QtBot, window: MainWindow, workspace: Path
) -> None:
    doc = window.open_file(workspace / "plain.txt")
    assert doc is not None
    doc.editor.insertText(0, "mine ")
    assert doc.reopen_with_encoding("cp1251") is False
    assert "unsaved changes" in doc.banner.label.text()
    assert doc.editor.text() == "mine plain ascii\n"


def test_damaged_utf8_offers_reopen_with_encoding_from_its_banner(
    qtbot: QtBot, window: MainWindow, workspace: Path
) -> None:
    path = workspace / "damaged.txt"
    path.write_bytes("déjà vu\n".encode() + b"\xe9t\xe9\n")
    doc = window.open_file(path)
    assert doc is not None and doc.editor.readOnly()
    doc.banner.buttons()["Reopen with Encoding..."].click()
    assert window.picker.is_open()
    _choose(qtbot, window, "8859-1")
    assert doc.encoding == "iso8859-1" and not doc.editor.readOnly()
    assert (
        doc.save()
        and doc.wait_saves()
        and path.read_bytes() == "déjà vu\n".encode() + b"\xe9t\xe9\n"
    )


def test_hot_exit_restores_unsaved_text_in_the_encoding_it_was_edited_in(
    qtbot: QtBot, workspace: Path
) -> None:
    from app.ui.document import Document
    from forecode_core.store.hotexit import Backup
    from forecode_core.store.settings import Settings

    path = workspace / "cyrillic.txt"
    original = path.read_bytes()
    first = Document.open(path, Settings())
    qtbot.addWidget(first)
    assert first.reopen_with_encoding("cp1251")
    first.editor.insertText(first.editor.textLength(), "ещё\n")
    backup: Backup = first.make_backup()
    assert backup.encoding == "cp1251"
    # Next session: the file opens with its guess (Windows 1252); the backup brings its own.
    second = Document.open(path, Settings())
    qtbot.addWidget(second)
    assert second.encoding == "cp1252"
    second.restore_backup(backup)
    assert second.encoding == "cp1251" and second.editor.text() == "привет мир\nещё\n"
    assert second.is_dirty() and second.save() and second.wait_saves()
    assert path.read_bytes() == original + "ещё\n".encode("cp1251")
