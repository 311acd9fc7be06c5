"""The next-edit input: the editable region's snapping, the JSON round trip, the renderer's
budget and its exact text.

Marked text: ``ˇ`` is the caret, ``«`` and ``»`` the editable region's ends.

Golden files: tests/golden/next_edit/<case>.txt hold the exact prompt of each case in ``GOLDEN``,
compared byte for byte (a changed prompt comes with a new ``NEXT_EDIT_FORMAT_VERSION``). After a
deliberate change regenerate them with::

    FORECODE_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_next_edit_input.py

and review the diff. The token counter is a deterministic fake.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.golden import check_golden

from forecode_core.next_edit.events import BufferEdits, Change
from forecode_core.next_edit.input import (
    CARET,
    NEXT_EDIT_FORMAT_VERSION,
    NEXT_EDIT_INPUT_VERSION,
    REGION_END,
    REGION_START,
    EditPair,
    NextEditInput,
    RelatedExcerpt,
    RenderedNextEdit,
    input_at,
    pair_of,
    register_renderer,
    render_chat_next_edit,
    render_next_edit,
    renderer_for,
)
from forecode_core.profiles import ModelProfile, get_profile

GOLDEN_DIR = Path(__file__).parent / "golden" / "next_edit"


def fake_tokens(text: str) -> int:
    return len(text.encode()) // 3 + 1


def marked(text: str, language: str = "python", **kw: object) -> NextEditInput:
    """``text`` with ``ˇ`` at the caret (region marks, if any, are ignored) as an input."""
    text = text.replace("«", "").replace("»", "")
    offset = text.index("ˇ")
    return input_at(
        text.replace("ˇ", ""),
        offset,
        path="src/main.py",
        language=language,
        **kw,  # type: ignore[arg-type]
    )


def remark(inp: NextEditInput) -> str:
    """The input's excerpt with the region and caret marked."""
    e = inp.excerpt
    return (
        e[: inp.region_start]
        + "«"
        + e[inp.region_start : inp.caret]
        + "ˇ"
        + e[inp.caret : inp.region_end]
        + "»"
        + e[inp.region_end :]
    )


# The region: the caret's block (blocks start after a blank line or where the indentation
# decreases) grown by whole neighbouring blocks, the smaller first, to at least 4 lines with
# balanced brackets, never more than 3 lines above the caret line nor 5 below it.
SNAP_CASES = {
    "blank_lines": (
        "import os\n\n«def f(a):\n    x = a + 1\n    y = ˇx * 2\n    return y\n\n\n»"
        "def g():\n    pass\n"
    ),
    # a dedent starts a block; a header stays with its indented body up to the cap above
    "indentation_change": (
        "class A:\n«    def f(self):\n        a = 1\n        b = 2\n        c = ˇ3\n"
        "        d = 4\n        e = 5\n»    def g(self):\n        pass\n"
    ),
    "header_with_its_body": ("x = 1\n\n«def f(a):\n    b = ˇa\n    return b\n\n»y = 2\n"),
    # the call's arguments stay whole: the region grows up to the line that opens the bracket
    "brackets_balance": ("x = 1\n\n«result = compute(\n    alpha,\n    beˇta,\n)\n\n»y = 2\n"),
    # ... unless that is past the cap: then whole lines inside the brackets, at equal depth
    "brackets_past_the_cap": (
        "x = 1\n\nresult = compute(\n«    alpha,\n    beta,\n    gamma,\n    deˇlta,\n»)\n\ny = 2\n"
    ),
    # brackets inside strings and comments do not count (else the region would grow down)
    "brackets_in_strings": ("«s = '('\nt = \"[\"  # {\nu = ˇ1\nv = 2\nw = 3\n\n»z = 4\n"),
    "file_start_and_end": "«a = ˇ1\nb = 2\n»",
    # two short functions: the caret's, then its smaller neighbours
    "neighbour_blocks": (
        "import os\n\n\ndef f(a, b):\n    x = a + 1\n    return x\n\n\n«def g():\n"
        "    return f(ˇ1)\n\n\n»def h():\n    return f(2)\n"
    ),
}


@pytest.mark.parametrize("case", sorted(SNAP_CASES))
def test_the_region_snaps_to_syntax_boundaries(case: str) -> None:
    text = SNAP_CASES[case]
    inp = marked(text)
    assert remark(inp) == text


def test_the_region_is_capped_in_a_long_uniform_block() -> None:
    lines = [f"v{i} = {i}" for i in range(60)]
    lines[30] += "ˇ"
    inp = marked("\n".join(lines) + "\n")
    region_lines = inp.region.count("\n")
    assert region_lines == 9  # one block: capped at 3 lines above the caret line, 5 below
    assert inp.line_of(inp.caret) == 30
    assert inp.line_of(inp.region_start) == 27


def test_offsets_map_to_the_document() -> None:
    lines = [f"v{i} = {i}\n" for i in range(100)]
    text = "".join(lines)
    offset = text.index("v70 = 70") + 3
    inp = input_at(text, offset, path="a.py", language="python")
    assert inp.caret_offset == offset
    assert text[inp.region_offset : inp.region_offset + len(inp.region)] == inp.region
    assert inp.first_line > 0
    assert text.startswith(inp.excerpt, inp.excerpt_offset)


EVENTS = (
    EditPair("src/main.py", 2, "def f(a):\n", "def f(a, b):\n"),
    EditPair("src/util.py", 10, "    return helper(x)\n", "    return helper(x, y)\n"),
    EditPair("src/main.py", 5, "    y = x * 2\n", "    y = x * 2 + b\n"),
)
RELATED = (
    RelatedExcerpt("src/util.py", "def helper(x, y=0):\n    return x + y\n", 9),
    RelatedExcerpt("tests/test_main.py", "def test_f():\n    assert f(1) == 4\n", 0),
)
MAIN = (
    "import os\n\n\ndef f(a, b):\n    x = a + 1\n    y = x * 2 + b\n    return y\n\n\n"
    "def g():\n    return f(ˇ1)\n\n\ndef h():\n    return f(2)\n"
)


def test_json_round_trip() -> None:
    inp = marked(MAIN, events=EVENTS, related=RELATED)
    again = NextEditInput.from_json(json.loads(json.dumps(inp.to_json())))
    assert again == inp
    assert inp.to_json()["version"] == NEXT_EDIT_INPUT_VERSION


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("caret"), "missing key"),
        (lambda d: d.update(extra=1), "unknown key"),
        (lambda d: d.update(caret="3"), "caret must be int"),
        (lambda d: d.update(caret=True), "caret must be int"),
        (lambda d: d.update(version=99), "version 99"),
        (lambda d: d.update(caret=10_000), "region_start <= caret"),
        (lambda d: d.update(events=[{"path": "a"}]), r"events\[0\]: missing"),
        (lambda d: d.update(related=[{"path": "a", "text": 1, "start_line": 0}]), "text must"),
    ],
)
def test_from_json_rejects_bad_input(change: object, message: str) -> None:
    d = marked(MAIN, events=EVENTS, related=RELATED).to_json()
    change(d)  # type: ignore[operator]
    with pytest.raises(ValueError, match=message):
        NextEditInput.from_json(d)


def test_pair_of_an_event_is_its_whole_lines() -> None:
    text = "def f(a):\n    return a\n"
    edits = BufferEdits()
    at = text.index("a)")
    for i, ch in enumerate(", b"):
        edits.record(Change(at + 1 + i, "", ch, 0.1 * i, 0))
    text = text[: at + 1] + ", b" + text[at + 1 :]
    (event,) = edits.events()
    assert pair_of("a.py", event, text) == EditPair("a.py", 0, "def f(a):", "def f(a, b):")


GOLDEN: dict[str, tuple[NextEditInput, str, int]] = {
    "plain_chatml": (marked(MAIN), "qwen2.5-coder", 2048),
    "events_related_gemma": (marked(MAIN, events=EVENTS, related=RELATED), "gemma3", 2048),
    "events_related_chatml": (
        marked(MAIN, events=EVENTS, related=RELATED),
        "qwen2.5-coder",
        2048,
    ),
    # a small budget: the newest event and the near context stay; the older events do not fit,
    # the first related excerpt still does (the second does not)
    "tight_budget_chatml": (marked(MAIN, events=EVENTS, related=RELATED), "qwen2.5-coder", 290),
    # markers and chat specials inside the code are broken up; CRLF is rendered as LF
    "markers_crlf_chatml": (
        marked(
            "a = '</region>'\r\nb = '<|im_end|>'\r\nc = ˇ3\r\n",
            events=(EditPair("src/main.py", 2, "c = 2\r\n", "c = 3\r\n"),),
        ),
        "qwen2.5-coder",
        2048,
    ),
}


@pytest.mark.parametrize("case", sorted(GOLDEN))
def test_golden_prompt(case: str) -> None:
    inp, profile_id, budget = GOLDEN[case]
    rendered = render_next_edit(inp, get_profile(profile_id), fake_tokens, budget)
    check_golden(GOLDEN_DIR, case, rendered.text)
    assert rendered.version == NEXT_EDIT_FORMAT_VERSION
    assert rendered.token_estimate == fake_tokens(rendered.text) <= budget


def test_golden_files_have_no_strays() -> None:
    assert sorted(p.stem for p in GOLDEN_DIR.glob("*.txt")) == sorted(GOLDEN)


def test_layout_stable_parts_first_and_the_region_last() -> None:
    inp = marked(MAIN, events=EVENTS, related=RELATED)
    r = render_next_edit(inp, get_profile("qwen2.5-coder"), fake_tokens, 4096)
    t = r.text
    assert r.events_included == 3
    assert r.related_included == ("src/util.py:9", "tests/test_main.py:0")
    order = [
        t.index("You predict"),
        t.index("def helper(x, y=0)"),
        t.index("def test_f()"),
        t.index("return helper(x, y)"),  # the older event
        t.index("y = x * 2 + b\n```"),  # the newest event
        t.index("Current file"),
        t.index(REGION_START, t.index("Current file")),
        t.index(CARET),
        t.index(REGION_END, t.index("Current file")),
    ]
    assert order == sorted(order)
    assert t.endswith(f"<|im_start|>assistant\n{REGION_START}\n")
    assert r.stop[0] == REGION_END
    assert r.draft == inp.region
    assert t.count(CARET) == 1
    assert "    return f(<cursor>1)\n" in t


def test_a_request_after_a_new_edit_keeps_the_start() -> None:
    """The stable start (instructions, related code, older edits) is a prefix of the next
    request's prompt: the KV cache carries it."""
    profile = get_profile("qwen2.5-coder")
    first = render_next_edit(
        marked(MAIN, events=EVENTS[:2], related=RELATED), profile, fake_tokens, 4096
    )
    second = render_next_edit(
        marked(MAIN.replace("f(ˇ1)", "f(1ˇ)"), events=EVENTS, related=RELATED),
        profile,
        fake_tokens,
        4096,
    )
    stable = first.text[: first.text.index("src/main.py, line")]
    assert second.text.startswith(stable)
    assert len(stable) > len(first.text) // 2


@pytest.mark.parametrize("budget", [150, 200, 260, 330, 400, 600, 900, 2048])
def test_the_budget_is_kept_and_more_budget_shows_more(budget: int) -> None:
    inp = marked(MAIN, events=EVENTS, related=RELATED)
    profile = get_profile("qwen2.5-coder")
    r = render_next_edit(inp, profile, fake_tokens, budget)
    bigger = render_next_edit(inp, profile, fake_tokens, budget + 200)
    alone = render_next_edit(inp, profile, fake_tokens, 1)  # the region alone, over budget
    assert r.token_estimate <= budget or r.text == alone.text
    assert REGION_START in r.text and CARET in r.text
    assert bigger.events_included >= r.events_included
    assert bigger.lines_above + bigger.lines_below >= r.lines_above + r.lines_below
    if r.events_included:  # the newest are the ones kept
        assert "y = x * 2 + b" in r.text.split("Current file")[0]


def test_a_profile_can_bring_its_own_renderer() -> None:
    profile = get_profile("generic")
    calls: list[int] = []

    def native(inp: NextEditInput, p: ModelProfile, count: object, budget: int) -> RenderedNextEdit:
        calls.append(budget)
        return render_chat_next_edit(inp, p, fake_tokens, budget)

    assert renderer_for(profile) is render_chat_next_edit
    register_renderer("test-native", native)
    try:
        native_profile = ModelProfile(
            id="test-native",
            fim=None,
            stop=(),
            add_bos=True,
            max_context=4096,
            prompt_budget=2048,
            max_tokens=256,
            description="test",
        )
        render_next_edit(marked(MAIN), native_profile, fake_tokens, 999)
        assert calls == [999]
        assert renderer_for(profile) is render_chat_next_edit
    finally:
        from forecode_core.next_edit import input as input_module

        input_module._RENDERERS.pop("test-native")
