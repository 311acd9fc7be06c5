"""forecode_core.lsp's pure rules, as tables: LSP UTF-16 positions <-> UTF-8 bytes (astral
characters, CRLF, combining marks), the one incremental change between two texts, the
stale-version rule and the store, the server table's setting, the restart back-off."""

from __future__ import annotations

import pytest

from forecode_core.lsp.diagnostics import (
    Counts,
    Diagnostic,
    DiagnosticStore,
    Severity,
    count,
    is_stale,
)
from forecode_core.lsp.positions import (
    Position,
    byte_col_from_utf16,
    byte_offset,
    line_spans,
    position_at,
    position_of_byte,
    utf16_col_from_byte,
    utf16_len,
)
from forecode_core.lsp.restart import RestartPolicy
from forecode_core.lsp.servers import (
    PRESETS,
    RUFF_BUG_RULES,
    config_section,
    dump_table,
    parse_table,
    servers_for,
)
from forecode_core.lsp.sync import change_between

EMOJI = "😀"  # U+1F600: 2 UTF-16 units, 4 UTF-8 bytes
E_ACUTE = "e\u0301"  # e + combining acute: 2 code points, 2 units, 3 bytes

# (line text, UTF-16 column, UTF-8 byte column)
COLUMNS = [
    ("abc", 0, 0),
    ("abc", 2, 2),
    ("abc", 3, 3),
    ("abc", 99, 3),  # past the end: clamped
    (f"{EMOJI}x", 2, 4),  # after the emoji
    (f"{EMOJI}x", 3, 5),
    (f"a{EMOJI}b", 1, 1),
    (f"a{EMOJI}b", 3, 5),
    (f"{E_ACUTE}z", 1, 1),  # between e and its combining mark (a code-point boundary)
    (f"{E_ACUTE}z", 2, 3),
    ("é", 1, 2),  # precomposed: one unit, two bytes
    ("中文", 1, 3),
    ("中文", 2, 6),
]


@pytest.mark.parametrize(("line", "units", "byte"), COLUMNS)
def test_utf16_columns_and_bytes(line: str, units: int, byte: int) -> None:
    assert byte_col_from_utf16(line, units) == byte
    if units <= utf16_len(line):
        assert utf16_col_from_byte(line.encode(), byte) == units


def test_inside_a_surrogate_pair_or_a_character_snaps_to_its_start() -> None:
    line = f"a{EMOJI}b"
    assert byte_col_from_utf16(line, 2) == 1  # the pair's second unit: the emoji's start
    for inside in (2, 3, 4):  # bytes inside the emoji
        assert utf16_col_from_byte(line.encode(), inside) == 1
    assert utf16_col_from_byte("中".encode(), 1) == 0


# (text, LSP position, byte offset in the whole text)
OFFSETS = [
    ("a\nb", Position(1, 0), 2),
    ("a\r\nb", Position(1, 0), 3),  # CRLF is one line end, two bytes
    ("a\r\nb", Position(0, 5), 1),  # past the line's end: its end, not into the next line
    ("a\rb", Position(1, 1), 3),  # a lone CR ends a line too
    (f"{EMOJI}\r\n{EMOJI}x", Position(1, 2), 10),
    (f"x\n{E_ACUTE}y", Position(1, 2), 5),
    ("a\n", Position(1, 0), 2),  # the empty last line
    ("a\n", Position(7, 0), 2),  # past the last line: the end
]


@pytest.mark.parametrize(("text", "position", "offset"), OFFSETS)
def test_positions_to_byte_offsets(text: str, position: Position, offset: int) -> None:
    assert byte_offset(text, position) == offset


@pytest.mark.parametrize(
    ("text", "offset", "position"),
    [
        ("a\r\nb", 3, Position(1, 0)),
        ("a\r\nb", 2, Position(0, 1)),  # between CR and LF: the line's end
        (f"{EMOJI}\r\n{EMOJI}x", 10, Position(1, 2)),
        (f"{EMOJI}x", 2, Position(0, 0)),  # inside the emoji: its start
        (f"x\n{E_ACUTE}y", 5, Position(1, 2)),
    ],
)
def test_byte_offsets_to_positions(text: str, offset: int, position: Position) -> None:
    assert position_of_byte(text, offset) == position


def test_line_spans_follow_lsp_line_ends() -> None:
    assert line_spans("a\r\nb\rc\nd") == [(0, 1), (3, 4), (5, 6), (7, 8)]
    assert line_spans("x\n") == [(0, 1), (2, 2)]
    assert position_at("a\r\nb", 2) == Position(0, 1)


LONG = "a" * 2000 + "\n" + "b" * 1000 + "\n" + "c" * 2999
LONG_CR = "a" * 2000 + "\r\n" + "b" * 3000

# (old, new, (start, end, inserted))
CHANGES = [
    ("abc", "abXc", (Position(0, 2), Position(0, 2), "X")),
    ("abc", "ac", (Position(0, 1), Position(0, 2), "")),
    ("a\nb\n", "a\nB\n", (Position(1, 0), Position(1, 1), "B")),
    (f"{EMOJI}a", f"{EMOJI}ba", (Position(0, 2), Position(0, 2), "b")),
    ("a\r\nb", "a\nb", (Position(0, 1), Position(1, 0), "\n")),  # CRLF -> LF: whole ending
    ("a\nb", "a\r\nb", (Position(0, 1), Position(0, 1), "\r")),
    ("a\r\nb", "a\rX\nb", (Position(0, 1), Position(1, 0), "\rX\n")),  # never inside CRLF
    ("a\r\nb", "a\r\n\r\nb", (Position(1, 0), Position(1, 0), "\r\n")),
    ("aaa", "aaaa", (Position(0, 3), Position(0, 3), "a")),
    # long texts: the common prefix and suffix are compared a chunk (1024) at a time
    (LONG, LONG[:1024] + "Z" + LONG[1024:], (Position(0, 1024), Position(0, 1024), "Z")),
    (LONG, LONG[:2050] + LONG[2051:], (Position(1, 999), Position(1, 1000), "")),  # a run: its end
    (LONG, LONG[:-1024] + "Z" + LONG[-1024:], (Position(2, 1975), Position(2, 1975), "Z")),
    (LONG_CR, LONG_CR[:2002] + "Z" + LONG_CR[2002:], (Position(1, 0), Position(1, 0), "Z")),
]


@pytest.mark.parametrize(("old", "new", "expected"), CHANGES)
def test_one_incremental_change(
    old: str, new: str, expected: tuple[Position, Position, str]
) -> None:
    change = change_between(old, new)
    assert change is not None
    assert (change.start, change.end, change.text) == expected
    # Applying it to the old text gives the new one.
    start = byte_offset(old, change.start)
    end = byte_offset(old, change.end)
    data = old.encode()
    assert (data[:start] + change.text.encode() + data[end:]).decode() == new


def test_no_change_is_none() -> None:
    assert change_between("same", "same") is None


def _d(line: int, severity: Severity = Severity.ERROR, message: str = "m") -> Diagnostic:
    return Diagnostic(Position(line, 0), Position(line, 1), severity, message, "src", "C1")


def test_stale_rule() -> None:
    assert is_stale(3, 4)
    assert not is_stale(4, 4)
    assert not is_stale(None, 4)  # a server without versions is trusted
    assert not is_stale(5, None)


def test_store_keeps_each_servers_list_and_counts() -> None:
    store = DiagnosticStore()
    store.put("u", "ruff", [_d(3, Severity.WARNING), _d(1)])
    store.put("u", "pyright", [_d(2, Severity.HINT)])
    assert [d.start.line for d in store.all_for("u")] == [1, 2, 3]
    assert store.counts() == Counts(1, 1, 1)
    store.put("u", "ruff", [])  # ruff's list replaced, pyright's kept
    assert [d.start.line for d in store.all_for("u")] == [2]
    store.forget("u")
    assert store.docs() == []
    assert count([_d(0), _d(1, Severity.INFORMATION)]) == Counts(1, 0, 1)
    assert _d(0).label() == "m (src C1)"


def test_server_table_setting() -> None:
    table = parse_table(
        {
            "cpp": "clangd",
            "go": ["gopls", "-remote=auto"],  # one command with an argument
            "python": ["basedpyright", "ruff"],  # two presets
            "rust": [["rust-analyzer"], "my-lsp --stdio"],
            "java": [],
            "c": None,
        }
    )
    assert dict(table)["go"] == (("gopls", "-remote=auto"),)
    assert dict(table)["rust"] == (("rust-analyzer",), ("my-lsp", "--stdio"))
    assert [s.name for s in servers_for("python")] == ["basedpyright", "ruff"]
    assert servers_for("python", parse_table({"python": []})) == ()
    assert servers_for("cpp", table) == (PRESETS["clangd"],)
    assert servers_for("go", table)[0].command == ("gopls", "-remote=auto")
    assert servers_for("java", table) == ()
    assert servers_for("markdown", table) == ()
    assert parse_table(dump_table(table)) == table
    for bad in (3, {"cpp": 3}, {"cpp": [""]}, {"cpp": [[1]]}):
        with pytest.raises(ValueError):
            parse_table(bad)


def test_ruff_bug_rules_and_configuration_sections() -> None:
    ruff = PRESETS["ruff"]
    assert ruff.init_options["settings"]["lint"]["extendSelect"] == list(RUFF_BUG_RULES)
    assert {"F821", "F841", "B006", "B023"} <= set(RUFF_BUG_RULES)
    settings = PRESETS["basedpyright"].settings
    analysis = config_section(settings, "basedpyright.analysis")
    assert isinstance(analysis, dict) and analysis["typeCheckingMode"] == "standard"
    assert config_section(settings, "nothing.here") is None
    assert config_section({"a.b": 1}, "a.b") == 1


@pytest.mark.parametrize(
    ("runs", "delays", "gave_up"),
    [
        ([1.0], [0.5], False),
        ([1.0, 1.0, 1.0], [0.5, 1.0, 2.0], False),
        ([1.0, 1.0, 120.0], [0.5, 1.0, 0.5], False),  # a long run resets the back-off
        ([1.0] * 5, [0.5, 1.0, 2.0, 4.0, 8.0], True),
        ([1.0] * 9, [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0], True),
    ],
)
def test_restart_back_off(runs: list[float], delays: list[float], gave_up: bool) -> None:
    policy = RestartPolicy()
    assert policy.delay_s() == 0.0
    seen = []
    for ran in runs:
        policy = policy.after_exit(ran)
        seen.append(policy.delay_s())
    assert seen == delays
    assert policy.gave_up is gave_up
