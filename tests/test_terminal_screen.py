"""app.services.terminal.screen: the panel's screen model over pyte.

Its fast paths (ASCII drawing, a whole-screen scroll) must show exactly what pyte's own code
shows: each row below is fed to our model and to a plain ``pyte.Screen`` and the screens,
cursors and attributes compared; lines scrolled off the top are in the scrollback."""

from __future__ import annotations

import pyte
import pytest

from app.services.terminal.screen import TerminalScreen

ROWS = [
    "plain\r\nlines\r\n",
    "".join(f"{i}\r\n" for i in range(100)),  # scrolls
    "x" * 250,  # wraps twice at 80 columns
    "\x1b[31mred\x1b[0m \x1b[1;44mbold on blue\x1b[0m\r\n" * 30,
    "héllo wörld 中文 😀 e\u0301\r\n" * 5,  # wide and combining: pyte's path
    "\x1b[4h" + "insert" + "\x1b[1;1Hab\x1b[4l",  # insert mode: pyte's path
    "\x1b[?7l" + "n" * 100 + "\r\n",  # no autowrap: pyte's path
    "\x1b[2;5r" + "\x1b[5;1H" + "".join(f"region {i}\r\n" for i in range(10)),  # margins
    "\x1b(0lqqk\x1b(B\r\n",  # DEC line drawing
    "tab\there\rback\x08\x08X\r\n",
    "\x1b[10;70H" + "z" * 30,
]


def _cells(screen: pyte.Screen) -> list[list[tuple[object, ...]]]:
    return [
        [tuple(screen.buffer[y][x]) for x in range(screen.columns)] for y in range(screen.lines)
    ]


@pytest.mark.parametrize("text", ROWS)
@pytest.mark.parametrize("piece", [1, 7, 4096])
def test_the_model_shows_what_pyte_shows(text: str, piece: int) -> None:
    ours = TerminalScreen(24, 80)
    theirs = pyte.Screen(80, 24)
    stream = pyte.Stream(theirs)
    data = text.encode()
    for i in range(0, len(data), piece):
        ours.feed(data[i : i + piece])
    stream.feed(text)
    screen = ours._screen
    assert _cells(screen) == _cells(theirs)
    assert (screen.cursor.x, screen.cursor.y) == (theirs.cursor.x, theirs.cursor.y)


def test_lines_scrolled_off_are_the_scrollback() -> None:
    model = TerminalScreen(5, 20, scrollback=50)
    model.feed("".join(f"line {i}\r\n" for i in range(30)).encode())
    assert model.text().splitlines() == [f"line {i}" for i in range(30)]
    snap = model.snapshot(scroll=10)
    assert ["".join(c.data for c in row).rstrip() for row in snap.rows] == [
        f"line {i}" for i in range(16, 21)
    ]
    assert snap.history == 26 and snap.first == 16


def test_a_shorter_screen_keeps_the_cursor_line_and_the_lines_above_it() -> None:
    model = TerminalScreen(10, 20)
    model.feed(b"one\r\ntwo\r\nthree\r\n$ typed")
    model.resize(2, 20)
    snap = model.snapshot()
    assert ["".join(c.data for c in row).rstrip() for row in snap.rows] == ["three", "$ typed"]
    assert snap.cursor == (snap.first + 1, 7)
    assert model.text().splitlines() == ["one", "two", "three", "$ typed"]
    model.resize(6, 12)
    assert model.text().splitlines()[:4] == ["one", "two", "three", "$ typed"]


def test_the_input_line_is_what_follows_the_prompt_mark() -> None:
    model = TerminalScreen(4, 10)
    model.feed(b"\x1b]133;A\x07$ \x1b]133;B\x07echo abcdefghij")  # wraps past 10 columns
    assert model.input_line() == "echo abcdefghij"
    model.feed(b"\r\n\x1b]133;C\x07")
    assert model.input_line() is None


def test_the_alternate_screen_leaves_the_shell_screen_and_scrollback_as_they_were() -> None:
    model = TerminalScreen(4, 20)
    model.feed(b"".join(b"line %d\r\n" % i for i in range(6)) + b"$ vim")
    before = model.text()
    model.feed(b"\x1b[?1049h\x1b[H\x1b[2J" + b"".join(b"~ %d\r\n" % i for i in range(10)))
    assert model._screen.alternate
    assert "~ 9" in model.text() and "~ 0" not in model.text()  # nothing went to history
    model.feed(b"\x1b[?1049l")
    assert not model._screen.alternate
    assert model.text() == before
    assert model.snapshot().cursor == (model.snapshot().first + 3, 5)


def test_clear_erases_the_scrollback_too() -> None:
    model = TerminalScreen(3, 20)
    model.feed(b"".join(b"old %d\r\n" % i for i in range(10)))
    assert model.snapshot().history > 0
    model.feed(b"\x1b[H\x1b[2J\x1b[3J$ ")  # what `clear` prints
    assert model.snapshot().history == 0 and model.text() == "$"
