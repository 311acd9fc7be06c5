"""forecode_core.terminal.marks: the shell-integration marks found in a stream split anywhere.

Table rows write the raw stream with ``|`` where a read ends; every row is also fed split at
every position and one character at a time, and must give the same result."""

from __future__ import annotations

import pytest

from forecode_core.terminal.marks import (
    CommandTracker,
    Mark,
    MarkKind,
    MarkScanner,
    Piece,
    ShellStream,
    clean_output,
    escape_value,
    unescape_value,
)
from forecode_core.terminal.records import CommandRecord

A, B, C = "\x1b]133;A\x07", "\x1b]133;B\x07", "\x1b]133;C\x07"


def D(code: str) -> str:
    return f"\x1b]133;D;{code}\x07"


def E(line: str) -> str:
    return f"\x1b]633;E;{escape_value(line)}\x07"


def CWD(path: str) -> str:
    return f"\x1b]633;P;Cwd={escape_value(path)}\x1b\\"


def _merged(pieces: list[Piece]) -> list[Piece]:
    out: list[Piece] = []
    for p in pieces:
        if isinstance(p, str) and out and isinstance(out[-1], str):
            out[-1] += p
        elif p != "":
            out.append(p)
    return out


def _scan(chunks: list[str]) -> list[Piece]:
    scanner = MarkScanner()
    pieces: list[Piece] = []
    for chunk in chunks:
        pieces += scanner.feed(chunk)
    return _merged(pieces + scanner.flush())


SCAN_ROWS = [
    # (raw with | at read ends, expected pieces)
    ("plain|text", ["plaintext"]),
    ("\x1b]133;|A\x07$ ", [Mark(MarkKind.PROMPT_START), "$ "]),
    ("x\x1b]133;D;1\x1b|\\y", ["x", Mark(MarkKind.FINISHED, "1"), "y"]),  # ST split in two
    ("\x1b]133;D\x07", [Mark(MarkKind.FINISHED, "")]),
    ("\x1b]633;E;ls \\x3b echo \\\\n\x07", [Mark(MarkKind.COMMAND_LINE, "ls ; echo \\n")]),
    ("\x1b]633;E;a;nonce123\x07", [Mark(MarkKind.COMMAND_LINE, "a")]),  # VS Code's nonce
    ("\x1b]633;P;Cwd=/tmp/a\\x3bb\x1b\\", [Mark(MarkKind.CWD, "/tmp/a;b")]),
    ("\x1b]633;C\x07", [Mark(MarkKind.OUTPUT_START)]),  # 633's A-D are 133's
    ("\x1b[31mred\x1b[0m", ["\x1b[31mred\x1b[0m"]),  # colours stay for the screen
    ("\x1b]0;title\x07x", ["\x1b]0;title\x07x"]),  # another OSC stays
    ("\x1b]13|3;B\x07", [Mark(MarkKind.PROMPT_END)]),  # cut inside the number
    ("\x1b]1;icon\x07", ["\x1b]1;icon\x07"]),  # OSC 1 shares a prefix with 133
    # garbled: a mark cut off by a new sequence is dropped, the new one still read
    ("\x1b]133;D;\x1b]133;A\x07p", [Mark(MarkKind.PROMPT_START), "p"]),
    ("a\x1b]133;C\x18b", ["ab"]),  # CAN cancels it
    ("\x1b]633;Z;unknown\x07ok", ["ok"]),  # a 633 we do not use: dropped
    ("\x1b]133;A", ["\x1b]133;A"]),  # the stream ended inside a mark: shown, not lost
    ("é|\x1b", ["é\x1b"]),
]


@pytest.mark.parametrize(("raw", "expected"), SCAN_ROWS)
def test_the_scanner_finds_marks_however_the_stream_is_split(
    raw: str, expected: list[Piece]
) -> None:
    assert _scan(raw.split("|")) == expected
    whole = raw.replace("|", "")
    assert _scan(list(whole)) == expected
    for cut in range(len(whole) + 1):
        assert _scan([whole[:cut], whole[cut:]]) == expected, cut


def test_a_mark_that_never_ends_is_text_after_the_limit() -> None:
    scanner = MarkScanner()
    junk = "\x1b]133;E;" + "x" * 70_000
    out = _merged(scanner.feed(junk) + scanner.flush())
    assert "".join(p for p in out if isinstance(p, str)) == junk


def _session(*commands: tuple[str, str, str, int | None]) -> str:
    """A bash-like session: (cwd, line, output, exit) each; output with \\n as the PTY's \\r\\n."""
    parts = []
    for cwd, line, output, code in commands:
        parts += [D("0"), CWD(cwd), A, "user$ ", B, line, "\r\n", E(line), C]
        parts += [output.replace("\n", "\r\n"), D("" if code is None else str(code))]
    return "".join(parts)


def _records(raw: str, chunk: int) -> list[CommandRecord]:
    stream = ShellStream("/start")
    data = raw.encode()
    out: list[CommandRecord] = []
    for i in range(0, len(data), chunk):
        out += stream.feed(data[i : i + chunk]).records
    return out


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 4096])
def test_records_from_a_session_read_in_any_size(chunk: int) -> None:
    raw = _session(
        ("/w", "echo hi", "hi\n", 0),
        ("/w", "false", "", 1),
        ("/w", "python3 -c '1/0'", "Traceback\nZeroDivisionError: x\n", 1),
        ("/w", "cd /tmp; printf 'ab'", "ab", 0),
        ("/tmp", "echo é€😀", "é€😀\n", 0),
        ("/tmp", "kill -9 $$", "", None),
    )
    assert _records(raw, chunk) == [
        CommandRecord("echo hi", "/w", "hi\n", 0),
        CommandRecord("false", "/w", "", 1),
        CommandRecord("python3 -c '1/0'", "/w", "Traceback\nZeroDivisionError: x\n", 1),
        CommandRecord("cd /tmp; printf 'ab'", "/w", "ab", 0),
        CommandRecord("echo é€😀", "/tmp", "é€😀\n", 0),
        CommandRecord("kill -9 $$", "/tmp", "", None),
    ]


def test_an_empty_enter_is_no_command() -> None:
    tracker = CommandTracker("/w")
    scanner = MarkScanner()
    assert tracker.feed(scanner.feed(D("0") + A + "$ " + B + "\r\n" + D("0") + A)) == []


def test_without_e_the_typed_line_is_the_command_and_the_start_folder_its_cwd() -> None:
    tracker = CommandTracker("/start")
    raw = A + "$ " + B + "ls -\x1b[Kl\r\n" + C + "out\r\n" + D("2")
    assert tracker.feed(MarkScanner().feed(raw)) == [CommandRecord("ls -l", "/start", "out\n", 2)]


def test_the_tracker_knows_when_the_user_types_a_command() -> None:
    tracker = CommandTracker()
    scanner = MarkScanner()
    tracker.feed(scanner.feed(A + "$ "))
    assert not tracker.at_prompt
    tracker.feed(scanner.feed(B))
    assert tracker.at_prompt and not tracker.running
    tracker.feed(scanner.feed("ls\r\n" + C))
    assert tracker.running and not tracker.at_prompt


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("a\r\nb\r\n", "a\nb\n"),
        ("\x1b[1;32mok\x1b[0m\r\n", "ok\n"),
        ("10%\r50%\r100%\r\n", "100%\n"),
        ("abcdef\rxy\n", "xycdef\n"),
        ("ab\bc", "ac"),
        ("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\", "link"),
        ("bell\x07 tab\there", "bell tab\there"),
        ("\x1b(Bplain", "plain"),
    ],
)
def test_clean_output(raw: str, shown: str) -> None:
    assert clean_output(raw) == shown


@pytest.mark.parametrize("text", ["plain", "a;b", "back\\slash", "new\nline", "\\x3b", ""])
def test_escaping_round_trips(text: str) -> None:
    assert unescape_value(escape_value(text)) == text
    assert ";" not in escape_value(text) and "\n" not in escape_value(text)


NONCE = "5eC7e1"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (f"\x1b]133;A;{NONCE}\x07$ ", [Mark(MarkKind.PROMPT_START), "$ "]),
        (f"\x1b]133;D;2;{NONCE}\x07", [Mark(MarkKind.FINISHED, "2")]),
        (f"\x1b]133;D;;{NONCE}\x07", [Mark(MarkKind.FINISHED, "")]),
        (f"\x1b]633;E;a\\x3bb;{NONCE}\x07", [Mark(MarkKind.COMMAND_LINE, "a;b")]),
        (f"\x1b]633;P;Cwd=/w;{NONCE}\x1b\\", [Mark(MarkKind.CWD, "/w")]),
        # forged by a program's output: no nonce, or another: dropped, not shown
        ("out\x1b]133;D;0\x07put", ["output"]),
        ("\x1b]633;E;rm -rf /;guess\x07", []),
        (f"\x1b]133;C;{NONCE}x\x07", []),
    ],
)
def test_with_a_nonce_only_the_shells_own_marks_count(raw: str, expected: list[Piece]) -> None:
    scanner = MarkScanner(NONCE)
    for cut in range(len(raw) + 1):
        pieces = scanner.feed(raw[:cut]) + scanner.feed(raw[cut:]) + scanner.flush()
        assert _merged(pieces) == expected, cut


def test_a_forged_finish_in_a_commands_output_ends_nothing() -> None:
    def mark(body: str) -> str:
        return f"\x1b]{body};{NONCE}\x07"

    raw = (
        mark("133;A") + "$ " + mark("133;B") + "cat evil\r\n"
        + mark("633;E;cat evil") + mark("133;C")
        + "a\x1b]133;D;0\x07\x1b]133;A\x07\x1b]133;B\x07\x1b]633;E;sudo rm -rf /\x07b\r\n"
        + mark("133;D;1")
    )  # fmt: skip
    stream = ShellStream("/w", NONCE)
    assert stream.feed(raw.encode()).records == [CommandRecord("cat evil", "/w", "ab\n", 1)]
