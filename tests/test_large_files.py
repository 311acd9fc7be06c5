"""Big files (issue 13, point 2): refused above the hard limit, read off the UI thread with
progress and Cancel above 1 MiB, read-only large-file mode above 20 MiB; the editor never freezes
or runs out of memory.

The UI tests go through the real window (``MainWindow.open_file``, what the explorer, quick open
and the command line use) with real widgets offscreen. Stalls are measured as the UI thread's
own event-loop gaps (a 10 ms QTimer) with generous bounds; memory as RSS growth.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from app.ui.document import Document
from app.ui.main_window import MainWindow
from forecode_core.text.large_files import (
    LARGE_FILE_BYTES,
    PIECE_CHARS,
    SYNC_READ_MAX_BYTES,
    FileTooLargeError,
    LoadDone,
    LoadHeader,
    OpenPlan,
    content_digest,
    hard_limit_bytes,
    human_size,
    load_file,
    plan_open,
    refusal_message,
)
from forecode_core.text.textfile import decode_bytes

MiB = 1 << 20
GiB = 1 << 30


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class GapMeter:
    """The longest time the UI thread went without running a 10 ms timer."""

    def __init__(self) -> None:
        self.gaps: list[float] = []
        self.samples: list[str] = []  # what the callback saw (e.g. the progress text)
        self.sample = lambda: ""
        self._last = time.monotonic()
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = time.monotonic()
        self.gaps.append(now - self._last)
        self._last = now
        self.samples.append(self.sample())

    def start(self) -> None:
        self._last = time.monotonic()
        self.timer.start()

    def stop(self) -> float:
        self.timer.stop()
        return max(self.gaps, default=0.0)


# ------------------------------------------------------------------------------ pure: plan


def test_plan_by_size() -> None:
    limit = 256 * MiB
    assert plan_open(0, limit) is OpenPlan.SYNC
    assert plan_open(SYNC_READ_MAX_BYTES, limit) is OpenPlan.SYNC
    assert plan_open(SYNC_READ_MAX_BYTES + 1, limit) is OpenPlan.BACKGROUND
    assert plan_open(LARGE_FILE_BYTES, limit) is OpenPlan.BACKGROUND
    assert plan_open(LARGE_FILE_BYTES + 1, limit) is OpenPlan.LARGE
    assert plan_open(limit, limit) is OpenPlan.LARGE
    assert plan_open(limit + 1, limit) is OpenPlan.REFUSE
    assert plan_open(2 * GiB) is OpenPlan.REFUSE  # whatever the machine
    assert [p.value for p in OpenPlan] == ["sync", "background", "large", "refuse"]


@pytest.mark.parametrize(
    ("memory", "limit"),
    [
        (64 * GiB, 256 * MiB),
        (4 * GiB, 256 * MiB),
        (2 * GiB, 128 * MiB),
        (256 * MiB, 2 * LARGE_FILE_BYTES),
        (None, None),
    ],
)
def test_hard_limit_is_a_fraction_of_memory(memory: int | None, limit: int | None) -> None:
    if memory is None:
        assert 2 * LARGE_FILE_BYTES <= hard_limit_bytes() <= 256 * MiB
    else:
        assert hard_limit_bytes(memory) == limit


def test_refusal_message_says_size_limit_and_what_to_do() -> None:
    message = refusal_message("dump.log", 2 * GiB, 256 * MiB)
    assert message == (
        "dump.log is too large to open: 2.0 GB, the limit is 256 MB. Use a pager such as less."
    )
    assert human_size(1023) == "1023 bytes" and human_size(1536) == "1.5 KB"
    assert human_size(50 * MiB + MiB // 2) == "50.5 MB"


# ------------------------------------------------------------------------ pure: load_file


def _split(items: list[LoadHeader | str | LoadDone]) -> tuple[LoadHeader, str, LoadDone]:
    header, *pieces, done = items
    assert isinstance(header, LoadHeader) and isinstance(done, LoadDone)
    assert all(isinstance(p, str) and len(p) <= PIECE_CHARS for p in pieces)
    return header, "".join(str(p) for p in pieces), done


def test_load_file_normal_mode_is_decode_bytes_in_pieces(tmp_path: Path) -> None:
    data = "".join(f"línea {i}\r\n" for i in range(120_000)).encode()
    path = tmp_path / "mid.txt"
    path.write_bytes(data)
    seen: list[tuple[int, int]] = []
    header, text, done = _split(list(load_file(path, progress=lambda d, t: seen.append((d, t)))))
    expected = decode_bytes(data)
    assert text == expected.text
    assert (header.encoding, header.eol, header.large) == ("utf-8", "\r\n", False)
    assert header.read_only_reason is None and header.first_line == "línea 0\r"
    assert done.digest == content_digest(data) and done.size == len(data)
    assert seen[-1] == (len(data), len(data)) and len(seen) >= 2


def test_load_file_normal_mode_keeps_the_decoding_rules(tmp_path: Path) -> None:
    path = tmp_path / "legacy.txt"
    path.write_bytes(b"caf\xe9\n" * 1000)
    header, text, _done = _split(list(load_file(path)))
    assert header.encoding == "cp1252" and header.notice and text == "café\n" * 1000


@pytest.mark.parametrize(
    ("data", "encoding", "expected"),
    [
        (("ünïcode\n" * 40_000).encode(), "utf-8", "ünïcode\n" * 40_000),
        (b"\xef\xbb\xbf" + b"bom\n" * 90_000, "utf-8-sig", "bom\n" * 90_000),
        (
            "\ufeffwide\n".encode("utf-16-le") + "wide\n".encode("utf-16-le") * 50_000,
            "utf-16-le-bom",
            "wide\n" * 50_001,
        ),
        (b"caf\xe9\n" * 70_000, "cp1252", "café\n" * 70_000),
        (b"bin\x00ary\n" * 50_000, "binary", "bin\u2400ary\n" * 50_000),
    ],
)
def test_load_file_large_mode_decodes_piece_by_piece(
    tmp_path: Path, data: bytes, encoding: str, expected: str
) -> None:
    path = tmp_path / "big"
    path.write_bytes(data)
    header, text, done = _split(list(load_file(path, large=True)))
    assert header.large and header.encoding == encoding
    assert header.read_only_reason and "large-file mode" in header.read_only_reason
    assert text == expected
    assert done.digest == content_digest(data)


def test_load_file_stops_when_cancelled(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_bytes(b"x" * (3 * MiB))
    stop = threading.Event()
    items: list[object] = []
    for item in load_file(path, large=True, cancelled=stop.is_set):
        items.append(item)
        stop.set()  # after the header
    assert len(items) == 1 and isinstance(items[0], LoadHeader)


def test_load_file_refuses_a_file_that_grows_past_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "growing.log"
    path.write_bytes(b"y\n" * (2 * MiB))
    with pytest.raises(FileTooLargeError, match="too large to open"):
        list(load_file(path, large=True, hard_limit=3 * MiB))


# ------------------------------------------------------------------------------------ UI


@pytest.fixture(scope="module")
def big_text(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """About 24 MiB of text: over the large-file threshold."""
    line_pieces = [f"{i:07d} café 日本 " + "x" * (i % 70) + "\n" for i in range(400_000)]
    data = "".join(line_pieces).encode()
    assert len(data) > LARGE_FILE_BYTES
    path = tmp_path_factory.mktemp("big") / "server.log"
    path.write_bytes(data)
    return path, data


@pytest.fixture
def window(qtbot: QtBot, tmp_path: Path) -> Iterator[MainWindow]:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "small.py").write_text("x = 1\n")
    win = MainWindow()
    qtbot.addWidget(win)
    win.resize(1000, 700)
    win.show()
    win.open_folder(ws)
    qtbot.waitUntil(lambda: win.workspace.files_complete, timeout=5000)
    win.open_file(ws / "small.py")  # fonts and the first paint are behind us
    qtbot.wait(200)
    yield win


def test_a_2gb_sparse_file_is_refused_with_a_clear_message_and_no_stall(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    huge = tmp_path / "ws" / "dump.bin"
    with open(huge, "wb") as f:
        f.truncate(2 * GiB)  # sparse: no disk used
    tabs = window.tabs.count()
    before = rss_bytes()
    meter = GapMeter()
    meter.start()
    results: list[Document | None] = []
    QTimer.singleShot(30, lambda: results.append(window.open_file(huge)))
    qtbot.waitUntil(lambda: bool(results), timeout=5000)
    qtbot.wait(200)
    worst = meter.stop()
    assert results == [None] and window.tabs.count() == tabs
    message = window.statusBar().currentMessage()
    assert message.startswith("dump.bin is too large to open: 2.0 GB, the limit is")
    assert message.endswith("Use a pager such as less.")
    assert worst < 1.0, worst  # generous: opening is one stat() here
    assert rss_bytes() - before < 64 * MiB


def test_a_large_file_opens_read_only_in_large_file_mode_without_freezing(
    qtbot: QtBot, window: MainWindow, big_text: tuple[Path, bytes]
) -> None:
    path, data = big_text
    before = rss_bytes()
    meter = GapMeter()
    meter.sample = lambda: (
        window.current_document().banner.label.text()
        # type: ignore[union-attr]
        if (window.current_document() is not None)
        else ""
    )
    meter.start()
    doc = window.open_file(path)
    assert doc is not None and doc.loading  # open_file returned before the text was read
    qtbot.waitUntil(lambda: not doc.loading, timeout=60_000)
    qtbot.wait(100)
    worst = meter.stop()
    # The UI thread kept running its timer while 24 MiB went into the widget. On a quiet
    # machine the worst gap is ~60 ms (growing Scintilla's buffer); the bound is generous.
    assert worst < 1.0, worst
    assert any("%" in s and "Opening server.log" in s for s in meter.samples)  # progress shown
    growth = rss_bytes() - before
    assert growth < 3 * len(data) + 64 * MiB, growth / MiB
    assert doc.large and doc.editor.readOnly() and doc.read_only_reason
    assert "large-file mode" in doc.banner.label.text() and doc.banner.isVisible()
    assert doc.editor.textLength() == len(data)
    assert doc.editor.line_text(399_999).startswith("0399999 café 日本 ")
    assert doc.editor.language.id == "plaintext"
    assert window.status_encoding.text() == "UTF-8 (read-only)"
    assert not doc.is_dirty() and doc.save() is False
    assert path.read_bytes() == data


def test_a_large_tab_does_no_idle_work(
    qtbot: QtBot, window: MainWindow, big_text: tuple[Path, bytes]
) -> None:
    doc = window.open_file(big_text[0])
    assert doc is not None
    qtbot.waitUntil(lambda: not doc.loading, timeout=60_000)
    qtbot.wait(300)

    class Count(QObject):
        n = 0

        def eventFilter(self, _o: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.Timer:
                Count.n += 1
            return False

    counter = Count()
    app = QApplication.instance()
    assert app is not None
    app.installEventFilter(counter)
    qtbot.wait(1000)
    app.removeEventFilter(counter)
    assert Count.n < 100, Count.n


def test_a_mid_size_file_loads_in_the_background_and_stays_editable(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    path = tmp_path / "ws" / "generated.py"
    data = "".join(f"value_{i} = {i}  # é\n" for i in range(150_000)).encode()
    assert SYNC_READ_MAX_BYTES < len(data) < LARGE_FILE_BYTES
    path.write_bytes(data)
    doc = window.open_file(path)
    assert doc is not None and doc.loading
    assert not doc.is_dirty() and doc.save() is False  # a partial buffer is never saved
    qtbot.waitUntil(lambda: not doc.loading, timeout=30_000)
    assert not doc.large and not doc.read_only_reason and not doc.editor.readOnly()
    assert doc.editor.language.id == "python" and not doc.is_dirty()
    assert doc.editor.text_bytes() == data
    assert doc.save() and doc.wait_saves() and path.read_bytes() == data  # unedited: byte-identical
    doc.editor.gotoPos(0)
    doc.editor.insertText(0, "# top\n")
    assert doc.is_dirty() and doc.save() and doc.wait_saves()
    assert path.read_bytes() == b"# top\n" + data


def test_cancel_closes_the_tab_and_stops_the_reader(
    qtbot: QtBot, window: MainWindow, big_text: tuple[Path, bytes]
) -> None:
    tabs = window.tabs.count()
    doc = window.open_file(big_text[0])
    assert doc is not None and doc._load is not None
    thread = doc._load.thread
    assert window.tabs.count() == tabs + 1
    doc.banner.buttons()["Cancel"].click()
    qtbot.waitUntil(lambda: window.tabs.count() == tabs, timeout=5000)
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_closing_a_loading_tab_stops_the_reader(
    qtbot: QtBot, window: MainWindow, big_text: tuple[Path, bytes]
) -> None:
    doc = window.open_file(big_text[0])
    assert doc is not None and doc._load is not None
    thread = doc._load.thread
    window.close_tab(window.tabs.indexOf(doc))
    qtbot.wait(50)  # deleteLater runs: the document's destroyed signal cancels the reader
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_a_changed_large_file_is_offered_a_reload_not_reread_on_the_ui_thread(
    qtbot: QtBot, window: MainWindow, big_text: tuple[Path, bytes], tmp_path: Path
) -> None:
    path = tmp_path / "ws" / "copy.log"
    path.write_bytes(big_text[1])
    doc = window.open_file(path)
    assert doc is not None
    qtbot.waitUntil(lambda: not doc.loading, timeout=60_000)
    with open(path, "ab") as f:
        f.write(b"one more line\n")
    assert doc.check_disk() == "changed"
    assert not doc.loading and "changed on disk" in doc.banner.label.text()
    doc.banner.buttons()["Reload from disk"].click()
    assert doc.loading
    qtbot.waitUntil(lambda: not doc.loading, timeout=60_000)
    assert doc.editor.textLength() == len(big_text[1]) + len(b"one more line\n")
    assert doc.large and doc.editor.readOnly()


def test_a_fifo_is_refused_not_read_for_ever(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    fifo = tmp_path / "ws" / "pipe"
    os.mkfifo(fifo)  # reading it would block the UI thread until a writer came and went
    tabs = window.tabs.count()
    assert window.open_file(fifo) is None and window.tabs.count() == tabs
    assert "not a regular file" in window.statusBar().currentMessage()


def test_a_changed_mid_size_file_with_unsaved_edits_asks(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    path = tmp_path / "ws" / "data.csv"
    data = b"".join(b"%d,%d\n" % (i, i * i) for i in range(300_000))
    path.write_bytes(data)
    doc = window.open_file(path)
    assert doc is not None
    qtbot.waitUntil(lambda: not doc.loading, timeout=30_000)
    doc.editor.insertText(0, "id,square\n")
    path.write_bytes(data + b"300000,90000000000\n")
    assert doc.check_disk() == "conflict" and not doc.loading
    assert set(doc.banner.buttons()) == {"Reload from disk (lose my changes)", "Keep my changes"}
    assert doc.editor.text_bytes() == b"id,square\n" + data  # the user's text is untouched
    doc.banner.buttons()["Keep my changes"].click()
    assert doc.save() and doc.wait_saves() and path.read_bytes() == b"id,square\n" + data


def test_a_large_file_that_shrinks_is_highlighted_and_editable_again(
    qtbot: QtBot, window: MainWindow, big_text: tuple[Path, bytes], tmp_path: Path
) -> None:
    path = tmp_path / "ws" / "shrinks.py"
    path.write_bytes(big_text[1])
    doc = window.open_file(path)
    assert doc is not None
    qtbot.waitUntil(lambda: not doc.loading, timeout=60_000)
    assert doc.large and doc.editor.documentOptions() != 0  # no style bytes
    path.write_text("def small():\n    return 1\n")
    doc.reload_from_disk()
    assert not doc.large and not doc.editor.readOnly() and doc.editor.documentOptions() == 0
    assert doc.editor.language.id == "python" and doc.editor.text() == path.read_text()
    doc.editor.colourise(0, -1)
    assert doc.editor.styleAt(0) != 0  # "def" is styled as a keyword


# ------------------------------------------------------------------------------ long lines


def test_line_breaker_breaks_only_long_lines_and_streams_consistently() -> None:
    import random

    from forecode_core.text.large_files import LineBreaker

    rng = random.Random(7)
    for _ in range(200):
        text = "".join(
            rng.choice(["a" * rng.randrange(0, 40), "\n", "\r\n", "\r", "é"])
            for _ in range(rng.randrange(0, 60))
        )
        whole = LineBreaker(25)
        expected = whole.feed(text)
        streamed = LineBreaker(25)
        cuts = sorted(rng.sample(range(len(text) + 1), min(len(text) + 1, 5)))
        pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        assert "".join(streamed.feed(p) for p in pieces) == expected
        assert (streamed.broken, streamed.longest) == (whole.broken, whole.longest)
        lines = expected.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        assert all(len(line) <= 25 for line in lines)
        assert expected.count("\n") - text.count("\n") == whole.broken
        original_lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        assert whole.longest == max(map(len, original_lines))
        if whole.longest <= 25:
            assert expected == text


def test_break_long_lines_makes_a_one_line_file_read_only_for_display() -> None:
    from forecode_core.text.large_files import LONG_LINE_CHARS, break_long_lines

    short = decode_bytes(b"x = 1\n" * 1000)
    assert break_long_lines(short) is short
    one_line = decode_bytes(b"[" + b"1," * 30_000 + b"1]")
    shown = break_long_lines(one_line)
    assert shown.read_only and shown.encoding == "utf-8"
    assert shown.read_only_reason is not None and "60,003" in shown.read_only_reason
    assert shown.text.replace("\n", "") == one_line.text
    assert max(map(len, shown.text.split("\n"))) == LONG_LINE_CHARS


def test_load_file_breaks_long_lines_in_both_modes(tmp_path: Path) -> None:
    path = tmp_path / "bundle.min.js"
    data = b"var a=1;" * 400_000  # 3.2 MB, one line
    path.write_bytes(data)
    header, text, done = _split(list(load_file(path)))
    assert header.long_lines and header.read_only_reason and done.longest_broken == 0
    assert text.replace("\n", "") == data.decode()
    header, text, done = _split(list(load_file(path, long_lines=True)))
    assert not header.long_lines and header.read_only_reason is None and text == data.decode()
    header, text, done = _split(list(load_file(path, large=True)))
    assert done.longest_broken == len(data) and text.replace("\n", "") == data.decode()


@pytest.mark.parametrize("size", [300_000, 3_000_000])  # read at once, and in the background
def test_a_one_line_file_opens_without_freezing_and_can_be_edited_anyway(
    qtbot: QtBot, window: MainWindow, tmp_path: Path, size: int
) -> None:
    path = tmp_path / "ws" / "data.min.json"
    data = ("[" + ",".join(str(i % 10) for i in range(size // 2)) + "]").encode()
    path.write_bytes(data)
    meter = GapMeter()
    meter.start()
    doc = window.open_file(path)
    assert doc is not None
    qtbot.waitUntil(lambda: not doc.loading, timeout=30_000)
    qtbot.wait(200)
    worst = meter.stop()
    assert worst < 2.0, worst  # before: 9-14 s with the UI thread frozen for a 6.5 MB line
    assert doc.editor.readOnly() and "shown broken every 10,000" in doc.banner.label.text()
    assert doc.editor.lineCount() == len(data) // 10_000 + 1
    assert doc.editor.language.id == "plaintext"  # broken lines are not lexed
    doc.banner.buttons()["Edit Anyway (may be slow)"].click()
    qtbot.waitUntil(lambda: not doc.loading, timeout=30_000)
    assert not doc.editor.readOnly() and doc.editor.lineCount() == 1
    assert doc.editor.language.id == "json"
    assert doc.editor.text_bytes() == data
    assert doc.save() and doc.wait_saves() and path.read_bytes() == data


def test_a_load_that_fails_unexpectedly_ends_with_a_message(
    qtbot: QtBot, window: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app.ui.document as document_module

    def broken_load(*_args: object, **_kwargs: object) -> Iterator[object]:
        raise RuntimeError("decoder exploded")
        yield  # a generator, like the real one

    monkeypatch.setattr(document_module, "load_file", broken_load)
    path = tmp_path / "ws" / "big.txt"
    path.write_bytes(b"x\n" * SYNC_READ_MAX_BYTES)
    doc = window.open_file(path)
    assert doc is not None
    qtbot.waitUntil(lambda: not doc.loading, timeout=10_000)
    assert "RuntimeError: decoder exploded" in doc.banner.label.text()
    assert doc.editor.readOnly() and doc.save() is False
    assert path.read_bytes() == b"x\n" * SYNC_READ_MAX_BYTES
