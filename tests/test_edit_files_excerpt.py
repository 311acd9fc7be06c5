"""The editable excerpt of a file too big for a multi-file edit (forecode_core.edits.excerpt):
which lines are chosen (a table on marked text), how the excerpt travels and is shown in the
prompt, and the service's resolution against the whole file (placed, refused outside)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from forecode_core.apply.block import ApplyInput
from forecode_core.apply.pipeline import PipelineCall
from forecode_core.chat.context import ContextSource, SourceKind, Status, assemble_context
from forecode_core.chat.types import ChatMessage, ChatParams, ContextItem, ContextKind, Role
from forecode_core.edits.events import EditsDone, FileChangeKind
from forecode_core.edits.excerpt import (
    choose_excerpt,
    excerpt_range,
    outside_excerpt,
    symbol_line,
)
from forecode_core.edits.prompt import edits_chat_params, sent_files
from forecode_core.edits.resolve import stream_edits
from forecode_core.streams import Delta, Done, Event, FinishReason

# Marked text: the lines between ">>>" and "<<<" are the expected excerpt, "|" is the focus.
SMALL_FUNCS = """\
import os


def alpha():
    a = 1
    return a

>>>
def beta():
    b = 2|
    return b
<<<

def gamma():
    c = 3
    return c
"""

CLASS_METHODS = """\
class Big:
    def one(self):
        return 1
>>>
    def two(self):
        x = 2|
        return x
<<<
    def three(self):
        return 3
"""

GROWN = """\
x = 1

>>>
def a():
    return 1


def b():
    return 2|


def c():
    return 3
<<<

def d():
    return 4
"""


def _marked(text: str) -> tuple[str, int, tuple[int, int]]:
    """The text without marks, the focus line (0-based), the expected (first, last)."""
    lines: list[str] = []
    focus = 0
    first = last = 0
    for line in text.split("\n"):
        if line == ">>>":
            first = len(lines) + 1
            continue
        if line == "<<<":
            last = len(lines)
            continue
        if "|" in line:
            focus = len(lines)
            line = line.replace("|", "")
        lines.append(line)
    return "\n".join(lines), focus, (first, last)


@pytest.mark.parametrize(
    ("marked", "max_chars"),
    [
        pytest.param(SMALL_FUNCS, 50, id="the caret's function, whole"),
        pytest.param(CLASS_METHODS, 60, id="a method when its class does not fit"),
        pytest.param(GROWN, 75, id="grown by whole neighbouring functions, below first"),
    ],
)
def test_the_excerpt_is_whole_definitions_around_the_focus(marked: str, max_chars: int) -> None:
    text, focus, expected = _marked(marked)
    assert choose_excerpt(text, max_chars, focus) == expected


def test_a_function_bigger_than_the_budget_is_cut_around_the_focus() -> None:
    text = "def huge():\n" + "".join(f"    v{i} = {i}\n" for i in range(40))
    first, last = choose_excerpt(text, 60, 20)
    assert first <= 21 <= last and 3 <= last - first + 1 <= 5


def test_a_mention_is_cut_around_the_definition_the_question_names() -> None:
    text, _focus, expected = _marked(SMALL_FUNCS)
    line = symbol_line(text, "add a parameter to beta in @mod.py")
    assert line == 7  # "def beta():" (0-based)
    assert choose_excerpt(text, 50, line) == expected
    assert symbol_line(text, "rename everything") == 0  # none named: the top


def _big(n: int = 700) -> str:
    body = []
    for i in range(n // 4):
        body.append(f"def f{i}(x):\n    y = x + {i}\n    return y\n\n")
    return "".join(body)


def test_in_edit_mode_a_file_over_the_budget_travels_whole_with_its_excerpt() -> None:
    text = _big()
    focus = text.split("\n").index("def f150(x):") + 1
    source = ContextSource(SourceKind.CURRENT_FILE, "big.py", text, "python", focus_line=focus)
    plan = assemble_context([source], 400, excerpts=True)
    (item,) = plan.items
    assert item.text == text and not item.truncated
    assert excerpt_range(item) == (item.start_line, item.end_line)
    assert item.start_line <= focus + 1 <= item.end_line
    (report,) = plan.reports
    assert report.status == Status.TRUNCATED and plan.used_tokens <= 400
    assert f"(editable excerpt: lines {item.start_line}–{item.end_line})" in report.label
    # outside edit mode the same file is a truncated, read-only part
    (chat_item,) = assemble_context([source], 400).items
    assert chat_item.truncated and excerpt_range(chat_item) is None


def test_a_range_item_is_never_read_as_an_excerpt() -> None:
    part = ContextItem(ContextKind.FILE, "a.py", "x = 1\ny = 2", 5, 6)
    assert excerpt_range(part) is None  # a codebase hit: its text is its lines
    cut = ContextItem(ContextKind.FILE, "a.py", "a\nb\nc\nd", 1, 2, truncated=True)
    assert excerpt_range(cut) is None
    sel = ContextItem(ContextKind.SELECTION, "a.py", "a\nb\nc\nd", 1, 2)
    assert excerpt_range(sel) is None


def _excerpt_params(text: str, first: int, last: int, task: str) -> ChatParams:
    item = ContextItem(ContextKind.CURRENT_FILE, "big.py", text, first, last, "python")
    return ChatParams("c", (ChatMessage(Role.USER, task),), (item,))


def test_the_prompt_shows_only_the_excerpt_marked_as_editable() -> None:
    text = _big()
    params = _excerpt_params(text, 601, 604, "make f150 add twice")
    chat, files = edits_chat_params(params)
    assert files["big.py"].editable and files["big.py"].excerpt == (601, 604)
    turn = chat.messages[-1].content
    assert "An excerpt of the next file, lines 601-604 of its 701" in turn
    assert "def f150(x):" in turn and "def f10(x):" not in turn
    assert "Read-only context" not in turn
    # a whole file of the same path wins over its excerpt
    whole = ContextItem(ContextKind.FILE, "big.py", text)
    both = sent_files((params.context[0], whole))
    assert both["big.py"].excerpt is None and both["big.py"].editable


def _apply(request: ApplyInput) -> Iterator[Event]:
    yield from PipelineCall(request, None)


def _edit(text: str, first: int, last: int, answer: str) -> EditsDone:
    def chat(_params: ChatParams) -> Iterator[Event]:
        yield Delta(answer)
        yield Done(FinishReason.STOP, {})

    params = _excerpt_params(text, first, last, "task")
    events = list(stream_edits(params, chat=chat, apply=_apply, should_stop=lambda: False))
    done = events[-1]
    assert isinstance(done, EditsDone)
    return done


def test_the_edit_is_resolved_against_the_whole_file() -> None:
    text = _big()
    answer = (
        "FILE: big.py\n```python\n# ... existing code ...\ndef f150(x, twice=False):\n"
        "    y = x + 150\n    return y\n# ... existing code ...\n```\n"
    )
    (change,) = _edit(text, 599, 606, answer).files
    assert change.kind is FileChangeKind.MODIFIED and change.original == text
    expected = text.replace("def f150(x):", "def f150(x, twice=False):")
    assert change.new_text == expected


def test_an_edit_outside_the_excerpt_is_refused_with_the_reason() -> None:
    text = _big()
    answer = "FILE: big.py\n```python\ndef f3(x, z):\n    y = x + 3\n    return y\n```\n"
    (change,) = _edit(text, 599, 606, answer).files
    assert change.kind is FileChangeKind.FAILED
    assert "lines 599-606" in change.error and "outside" in change.error


def test_outside_excerpt_allows_lines_added_at_its_edges() -> None:
    old = "a\nb\nc\nd\ne\n"
    assert not outside_excerpt(old, "a\nb\nX\nc\nd\ne\n", 2, 3)
    assert not outside_excerpt(old, "a\nb\nc\nX\nd\ne\n", 2, 3)
    assert outside_excerpt(old, "a\nb\nc\nd\nE\n", 2, 3)


def test_deleting_a_file_sent_as_an_excerpt_is_refused() -> None:
    from forecode_core.edits.answer import EditsAnswerError, parse_edits

    files = sent_files(_excerpt_params(_big(), 599, 606, "task").context)
    with pytest.raises(EditsAnswerError, match="sent only as an excerpt"):
        parse_edits("DELETE FILE: big.py\n", files)
