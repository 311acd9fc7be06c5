"""The language servers' context for the models' prompts: the chooser's table tests
(``forecode_core.lsp.context``) and a real basedpyright in a real window whose type error
near the caret reaches the completion prompt's snippets, the next-edit input's excerpts and
the chat's context."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from app.ui.main_window import MainWindow
from forecode_core.chat.context import SourceKind
from forecode_core.lsp.context import (
    Definition,
    choose_context,
    definition_excerpt,
    names_near,
    near_problems,
)
from forecode_core.lsp.diagnostics import Diagnostic, Severity
from forecode_core.lsp.positions import Position as P
from tests.helpers.window import folder_window

SERVER_WAIT_MS = 120_000  # a cold basedpyright took 20-40 s at load 25 on two cores


def D(line: int, severity: Severity, message: str = "m") -> Diagnostic:
    return Diagnostic(P(line, 0), P(line, 3), severity, message, "src", "C1")


E, W, INFO, H = Severity.ERROR, Severity.WARNING, Severity.INFORMATION, Severity.HINT


@pytest.mark.parametrize(
    ("diags", "caret", "expected"),
    [
        # errors first, then warnings, each nearest the caret first
        ([D(10, W), D(50, E), D(12, E), D(9, E)], 10, [(9, E), (12, E), (50, E), (10, W)]),
        # information and hints are left out
        ([D(5, INFO), D(5, H), D(6, W)], 5, [(6, W)]),
        # beyond the window: out
        ([D(100, E), D(1, W)], 0, [(1, W)]),
        # the same message on one line once
        ([D(3, E, "x"), D(3, E, "x"), D(3, E, "y")], 3, [(3, E), (3, E)]),
        # at most the limit
        ([D(n, E) for n in range(10)], 0, [(n, E) for n in range(4)]),
        ([], 0, []),
    ],
)
def test_near_problems_table(
    diags: list[Diagnostic], caret: int, expected: list[tuple[int, Severity]]
) -> None:
    got = near_problems(diags, caret, window=60)
    assert [(d.start.line, d.severity) for d in got] == expected


def test_a_problem_beyond_the_default_window_is_left_out() -> None:
    assert near_problems([D(45, E)], 0) == []


@pytest.mark.parametrize(
    ("line", "column", "expected"),
    [
        ("total = add(price, tax)", 13, ["price", "add", "tax", "total"]),
        ("total = add(price, tax)", 11, ["add", "price", "total", "tax"]),  # just after a name
        ("x = x + y", 0, ["x", "y"]),
        ("   # 123", 3, []),
    ],
)
def test_names_near_table(line: str, column: int, expected: list[str]) -> None:
    assert names_near(line, column) == expected


@pytest.mark.parametrize(
    ("lines", "start", "expected"),
    [
        (["def f(x):", "    return x", "", "y = 1"], 0, "def f(x):\n    return x\n"),
        (["class A:", "    a = 1", "", "    def m(self):", "        pass", "z"], 0, None),
        (["X = 1", "Y = 2"], 0, "X = 1\n"),
        (["a"], 5, ""),
    ],
)
def test_definition_excerpt_table(lines: list[str], start: int, expected: str | None) -> None:
    got = definition_excerpt(lines, start)
    if expected is None:  # the whole class, its blank line inside kept
        assert got == "\n".join(lines[:5]) + "\n"
    else:
        assert got == expected


LINES = [
    "from shop import add",
    "",
    "def total(price: int) -> int:",
    '    return add(price, "tax")',
]


def test_choose_context_puts_the_problem_and_the_definition_in_the_budget() -> None:
    problem = Diagnostic(P(3, 22), P(3, 27), E, 'Argument "tax" is not int', "basedpyright")
    far = Diagnostic(P(3, 0), P(3, 1), W, "style", "Ruff", "E1")
    add = Definition("add", "shop.py", 0, "def add(a: int, b: int) -> int:\n    return a + b\n")
    ctx = choose_context("cart.py", LINES, (3, 13), [far, problem], {"add": add}, 1000)
    assert ctx.problems.splitlines() == [
        "# Problems the language servers report near the cursor in cart.py:",
        '# line 4: error (basedpyright): Argument "tax" is not int',
        '#     return add(price, "tax")',
        "# line 4: warning (Ruff E1): style",
        '#     return add(price, "tax")',
    ]
    assert ctx.definitions == (add,)
    # A small budget: the problems first, the definition only if it still fits whole.
    small = choose_context("cart.py", LINES, (3, 13), [problem], {"add": add}, 170)
    assert small.problems and small.definitions == ()
    assert small.chars() <= 170
    # No budget at all: nothing, never a cut line.
    assert choose_context("cart.py", LINES, (3, 13), [problem], {"add": add}, 20).empty


def test_a_definition_next_to_the_caret_in_the_same_file_is_left_out() -> None:
    near = Definition("total", "cart.py", 2, "def total(price: int) -> int:\n")
    ctx = choose_context("cart.py", LINES, (3, 13), [], {"total": near}, 1000)
    assert ctx.empty
    ctx = choose_context("cart.py", LINES, (3, 13), [], {}, 1000, comment="//")
    assert ctx.problems == "" and ctx.definitions == ()


# ----- a real server, a real window ----------------------------------------------------------
@pytest.fixture
def lsp_window(
    qtbot: QtBot, tmp_path: Path, isolated_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> tuple[MainWindow, Path]:
    monkeypatch.delenv("FORECODE_LSP", raising=False)
    values = {"completion.enabled": False, "cloud.autostart": False, "lsp.enabled": True}
    (isolated_dirs["config"] / "settings.json").write_text(json.dumps(values))
    ws = tmp_path / "ws"
    ws.mkdir()
    return folder_window(qtbot, ws), ws


@pytest.mark.slow
def test_a_diagnostic_near_the_caret_reaches_the_prompts(
    qtbot: QtBot, lsp_window: tuple[MainWindow, Path]
) -> None:
    win, ws = lsp_window
    (ws / "shop.py").write_text("def add(a: int, b: int) -> int:\n    return a + b\n")
    cart = ws / "cart.py"
    cart.write_text(  # basedpyright: "tax" is not an int; ruff: os is imported, unused
        "import os\n\nfrom shop import add\n\n\ndef total(price: int) -> int:\n"
        '    return add(price, "tax")\n'
    )
    doc = win.open_file(cart)
    assert doc is not None
    language = win.language
    qtbot.waitUntil(
        lambda: (
            {"basedpyright", "ruff"}
            <= {d.source.lower() for d in language.store.all_for(cart.as_uri())}
        ),
        timeout=SERVER_WAIT_MS,
    )
    editor = doc.editor
    editor.gotoPos(editor.text().index("add(price") + 1)  # the caret rests on add
    qtbot.waitUntil(
        lambda: "add" in win.lsp_actions.definitions.get(cart.as_uri(), {}),
        timeout=SERVER_WAIT_MS,
    )
    # Completions: the problem and the definition of add, as snippets before the others.
    _path, _language, snippets = win.completions.completion_context()
    texts = [s.text for s in snippets]
    assert any('"tax"' in t and "basedpyright" in t for t in texts), texts
    assert any("F401" in t for t in texts), texts  # ruff's warning, after the error
    assert any(t.startswith("def add(a: int, b: int) -> int:") for t in texts), texts
    # Next edit: the same as related excerpts of its input.
    inp = win.next_edit._input(win.next_edit._buffers[doc], editor.text())
    related = [e.text for e in inp.related]
    assert any("basedpyright" in t for t in related), related
    # Chat: a source beside the current file.
    sources = win.chat.host.chat_extra_sources()
    assert any(s.kind is SourceKind.FILE and "basedpyright" in s.text for s in sources)
    assert any(s.path == "shop.py" and s.start_line == 1 for s in sources)
