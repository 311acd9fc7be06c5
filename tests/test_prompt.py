"""The completion prompt: its JSON form, what is kept under a token budget, and the exact text.

Golden files: tests/golden/prompts/<case>.txt hold the exact rendered prompt of each case in
``GOLDEN`` and are compared byte for byte (a changed prompt must come with a new
``PROMPT_FORMAT_VERSION``). After a deliberate change, regenerate them with::

    FORECODE_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_prompt.py

and review the diff. The token counter here is a deterministic fake (``fake_tokens``); the real
one is the model's tokenizer.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.golden import check_golden

import forecode_core.completion.prompt as prompt_module
from forecode_core.completion.prompt import (
    HEAD_LINES,
    NEAR_LINES,
    PROMPT_FORMAT_VERSION,
    SUFFIX_LINES,
    WINDOW_GRID,
    CompletionInput,
    RenderedPrompt,
    Snippet,
    comment_style,
    render_prompt,
)
from forecode_core.profiles import PROFILES, ModelProfile, get_profile

GOLDEN_DIR = Path(__file__).parent / "golden" / "prompts"


def fake_tokens(text: str) -> int:
    return len(text.encode()) // 3 + 1


def marked_input(
    marked: str,
    path: str = "src/main.py",
    language: str = "python",
    snippets: tuple[Snippet, ...] = (),
) -> CompletionInput:
    """``prefixˇsuffix`` as an input (the cursor written as ``ˇ``)."""
    assert marked.count("ˇ") == 1, "mark the cursor exactly once"
    prefix, suffix = marked.split("ˇ")
    return CompletionInput(path, language, prefix, suffix, snippets)


def numbered(n: int, start: int = 1, indent: str = "    ") -> str:
    return "".join(f"{indent}v{i} = compute({i}, 'x' * {i})\n" for i in range(start, start + n))


LONG_FILE = "def main():\n" + numbered(150) + "    ˇ\n" + numbered(150, 151) + "\nmain()\n"

UTIL_EDIT = Snippet("src/util.py", "def helper(x):\n    return x * 2\n", 10, "recent_edit")
README = Snippet("README.md", "# Demo\n\nRun `main()`.\n", 1, "open_file")
# What the codebase index found (app.ui.retrieved_context): the lowest priority.
RETRIEVED = Snippet("src/db.py", "def connect(url):\n    return Connection(url)\n", 3, "retrieved")

BIG_FILE = (
    '"""A module docstring: never the stable head."""\nimport os\nfrom util import helper'
    "\n\n\ndef main():\n" + numbered(300) + "    v301 = helper(ˇ)\n" + numbered(50, 302)
)


def big_input(marked: str, snippets: tuple[Snippet, ...] = ()) -> CompletionInput:
    """``marked`` as the editor sends it (``input_at``: a window of lines and the file's head)."""
    offset = marked.index("ˇ")
    return prompt_module.input_at(
        marked.replace("ˇ", ""), offset, path="src/main.py", language="python", snippets=snippets
    )


# case -> (input, profile id, budget)
GOLDEN: dict[str, tuple[CompletionInput, str, int]] = {
    # A big file: the stable start (snippets, header, head past the docstring), then a window
    # on the grid, then (FIM) a few lines below.
    "big_file_fim": (big_input(BIG_FILE, snippets=(README,)), "qwen2.5-coder", 700),
    "big_file_fallback": (big_input(BIG_FILE, snippets=(README,)), "gemma3", 500),
    "short_fallback": (
        marked_input("import os\n\n\ndef main():\n    print(os.getˇ)\n\n\nmain()\n"),
        "gemma3",
        1536,
    ),
    "long_trimmed_fallback": (marked_input(LONG_FILE), "gemma3", 200),
    "snippets_fallback": (
        marked_input("from util import helper\n\nprint(helper(ˇ))\n", snippets=(README, UTIL_EDIT)),
        "gemma3",
        1536,
    ),
    "snippets_fim": (
        marked_input("from util import helper\n\nprint(helper(ˇ))\n", snippets=(README, UTIL_EDIT)),
        "qwen2.5-coder",
        1536,
    ),
    "long_trimmed_fim": (marked_input(LONG_FILE), "codegemma", 200),
    "retrieved_fallback": (
        marked_input(
            "from util import helper\n\nconn = ˇ\n", snippets=(RETRIEVED, README, UTIL_EDIT)
        ),
        "gemma3",
        1536,
    ),
    "retrieved_fim": (
        marked_input(
            "from util import helper\n\nconn = ˇ\n", snippets=(RETRIEVED, README, UTIL_EDIT)
        ),
        "qwen2.5-coder",
        1536,
    ),
    # a budget whose stable share has room for the edit and the open file but not the
    # retrieved code
    "retrieved_cut_first_fallback": (
        marked_input(
            "from util import helper\n\nconn = ˇ\n", snippets=(RETRIEVED, README, UTIL_EDIT)
        ),
        "gemma3",
        150,
    ),
    "non_ascii_fim": (
        marked_input(
            "# Grüße, 世界 🌍\nnames = ['Zoë', 'Ángel']\nfor n in names:\n"
            "    print(f'héllo {ˇ}')\n",
            snippets=(Snippet("docs/notes.md", "Ünïcode ✓\n", 3, "recent_edit"),),
        ),
        "deepseek-coder",
        1536,
    ),
    "crlf_fallback": (
        marked_input(
            "int main(void) {\r\n    int x = 1;\r\n    return ˇ;\r\n}\r\n",
            path="main.c",
            language="c",
            snippets=(Snippet("util.h", "int helper(void);\r\n#define N 3\r\n", 1),),
        ),
        "gemma3",
        1536,
    ),
    "html_block_comments": (
        marked_input(
            '<html>\n  <body>\n    <p class="ˇ"></p>\n',
            path="index.html",
            language="html",
            snippets=(Snippet("style.css", ".big { x: 1 }\n", 1),),
        ),
        "gemma3",
        1536,
    ),
}


@pytest.mark.parametrize("case", sorted(GOLDEN))
def test_golden_prompt(case: str) -> None:
    inp, profile_id, budget = GOLDEN[case]
    rendered = render_prompt(inp, get_profile(profile_id), fake_tokens, budget)
    check_golden(GOLDEN_DIR, case, rendered.text)
    assert rendered.version == PROMPT_FORMAT_VERSION
    assert rendered.token_estimate == fake_tokens(rendered.text) <= budget


def test_golden_files_have_no_strays() -> None:
    assert sorted(p.stem for p in GOLDEN_DIR.glob("*.txt")) == sorted(GOLDEN)


def test_crlf_is_rendered_as_lf() -> None:
    inp, profile_id, budget = GOLDEN["crlf_fallback"]
    text = render_prompt(inp, get_profile(profile_id), fake_tokens, budget).text
    assert "\r" not in text
    assert text.endswith("    int x = 1;\n    return ")


# ---------------------------------------------------------------------------------------------
# Formats


def test_fallback_format() -> None:
    inp = marked_input("x = 1\ny = ˇ\nz = 3\n", snippets=(UTIL_EDIT,))
    rendered = render_prompt(inp, get_profile("gemma3"), fake_tokens, 1536)
    assert rendered.text == (
        "# Path: src/util.py\n"
        "# def helper(x):\n"
        "#     return x * 2\n"
        "# Path: src/main.py\n"
        "x = 1\n"
        "y = "
    )
    assert (rendered.prefix_lines, rendered.suffix_lines) == (2, 0)
    assert rendered.snippets_included == ("src/util.py:10",)


def test_fim_format() -> None:
    inp = marked_input("x = 1\ny = ˇ\nz = 3")
    rendered = render_prompt(inp, get_profile("starcoder2"), fake_tokens, 1536)
    assert rendered.text == (
        "<fim_prefix># Path: src/main.py\nx = 1\ny = <fim_suffix>\nz = 3<fim_middle>"
    )
    assert (rendered.prefix_lines, rendered.suffix_lines) == (2, 2)


@pytest.mark.parametrize(
    ("language", "style"),
    [
        ("python", ("#", "")),
        ("shell", ("#", "")),
        ("yaml", ("#", "")),
        ("toml", ("#", "")),
        ("c", ("//", "")),
        ("typescript", ("//", "")),
        ("go", ("//", "")),
        ("rust", ("//", "")),
        ("java", ("//", "")),
        ("html", ("<!--", "-->")),
        ("markdown", ("<!--", "-->")),
        ("css", ("/*", "*/")),
        ("sql", ("--", "")),
        ("no-such-language", ("#", "")),
    ],
)
def test_comment_style(language: str, style: tuple[str, str]) -> None:
    assert comment_style(language) == style


def test_blank_snippet_lines_get_a_bare_comment_marker() -> None:
    inp = marked_input(
        "ˇ", language="go", path="main.go", snippets=(Snippet("a.go", "func a() {\n\n}", 1),)
    )
    text = render_prompt(inp, get_profile("gemma3"), fake_tokens, 1536).text
    assert text == "// Path: a.go\n// func a() {\n//\n// }\n// Path: main.go\n"


# ---------------------------------------------------------------------------------------------
# What is kept under the budget


def prefix_part(text: str, profile: ModelProfile) -> str:
    """The file's text before the cursor, as shown in a prompt of ``src/main.py``."""
    after_header = text.split("# Path: src/main.py\n", 1)[1]
    return after_header.split(profile.fim.suffix)[0] if profile.fim else after_header


def window_start(inp: CompletionInput) -> int:
    """The 0-based file line of the cursor in ``inp`` (``first_line`` counted)."""
    return inp.first_line + inp.prefix.count("\n")


@pytest.mark.parametrize("profile_id", ["gemma3", "qwen2.5-coder"])
def test_kept_lines_are_contiguous_at_the_cursor_and_grow_with_the_budget(profile_id: str) -> None:
    inp = marked_input(LONG_FILE, snippets=(UTIL_EDIT, README))
    profile = get_profile(profile_id)
    cursor = window_start(inp)
    for budget in range(40, 4000, 37):
        r = render_prompt(inp, profile, fake_tokens, budget)
        assert r.token_estimate <= budget
        kept = prefix_part(r.text, profile)
        window = "\n".join(inp.prefix.split("\n")[-r.prefix_lines :])
        assert kept.endswith(window)
        assert r.window_start == cursor - r.prefix_lines + 1
        # On the grid, unless not even the near window fits (then whole lines that do).
        assert r.window_start % WINDOW_GRID == 0 or r.prefix_lines <= NEAR_LINES + WINDOW_GRID
        head = kept[: len(kept) - len(window)]
        assert inp.prefix.startswith(head)  # the file's first lines
        if profile.fim:
            shown = r.text.split(profile.fim.suffix)[1].removesuffix(profile.fim.middle)
            assert inp.suffix.startswith(shown)
            assert r.suffix_lines == shown.count("\n") + 1 <= SUFFIX_LINES + 1
            assert inp.suffix[len(shown) :].startswith("\n") or shown == inp.suffix
    # With room for everything, everything is shown.
    r = render_prompt(inp, profile, fake_tokens, 10**6)
    assert prefix_part(r.text, profile) == inp.prefix and r.snippets_included


@pytest.mark.parametrize("profile_id", ["gemma3", "qwen2.5-coder"])
@pytest.mark.parametrize("budget", [900, 1536, 3072])
def test_a_caret_a_few_lines_away_keeps_the_start_of_the_prompt(
    profile_id: str, budget: int
) -> None:
    """The window starts on the grid, so moving the caret within a grid step changes nothing
    before the old caret's line (the KV cache's common prefix), and a jump anywhere keeps the
    head and the snippets."""
    profile = get_profile(profile_id)
    text = "import os\nimport sys\n\n\ndef main():\n" + numbered(600)
    lines = text.split("\n")

    def at(line: int) -> tuple[str, str]:
        offset = len("\n".join(lines[:line])) + 1 + 4
        inp = prompt_module.input_at(
            text, offset, path="src/main.py", language="python", snippets=(README,)
        )
        r = render_prompt(inp, profile, fake_tokens, budget)
        cut = r.text.index(lines[line][:4] + (profile.fim.suffix if profile.fim else ""))
        return r.text, r.text[:cut]

    for line in (100, 333, 517):
        base = line - line % WINDOW_GRID + WINDOW_GRID // 2
        _, before = at(base)
        for d in (1, 2, WINDOW_GRID // 2 - 1):
            moved, _ = at(base + d)
            # The same start, or a window a whole number of grid steps shorter.
            assert moved.startswith(before.rsplit("\n", 1)[0]) or (
                r_start(moved) % WINDOW_GRID == r_start(before) % WINDOW_GRID == 0
            ), (line, d)
    far_a, _ = at(200)
    far_b, _ = at(480)
    fim = profile.fim.prefix if profile.fim else ""
    stable = "# Path: src/main.py\nimport os\nimport sys\n\n\ndef main():\n"
    assert stable in far_a and stable in far_b
    if budget >= 1536:
        assert far_a.startswith(fim + "# Path: README.md")
    common = far_a[: far_a.index("# Path: src/main.py\n") + len("# Path: src/main.py\n")]
    assert far_b.startswith(common)


def r_start(text: str) -> int:
    """The file line of the window's first line in a prompt of the test file above."""
    body = text.split("# Path: src/main.py\n", 1)[1]
    numbers = [
        int(line.split("=")[0].strip()[1:])
        for line in body.split("\n")
        if line.startswith("    v") and "=" in line
    ]
    gaps = [b for a, b in itertools.pairwise(numbers) if b != a + 1]
    return (gaps[-1] if gaps else numbers[0]) + 4  # past the head, if it shows one


def test_the_stable_start_keeps_its_share_and_the_near_window_comes_before_far_lines() -> None:
    """The head and the snippets are kept (each whole, by priority) within STABLE_SHARE of the
    budget, whatever the window needs; then the near window, the suffix, the far lines."""
    inp = marked_input(LONG_FILE, snippets=(UTIL_EDIT,))
    profile = get_profile("gemma3")
    cursor = window_start(inp)
    near = cursor - (cursor - NEAR_LINES) % WINDOW_GRID - NEAR_LINES
    near_lines = cursor - near + 1
    block = "# Path: src/util.py\n# def helper(x):\n#     return x * 2\n"
    head = "\n".join(inp.prefix.split("\n")[:HEAD_LINES]) + "\n"
    seen_without = seen_with = False
    for budget in range(20, 3000, 11):
        r = render_prompt(inp, profile, fake_tokens, budget)
        alone = fake_tokens(block + "# Path: src/main.py\n    ")
        assert alone <= budget * prompt_module.STABLE_SHARE or not r.snippets_included
        if (
            fake_tokens(block + "# Path: src/main.py\n" + head + "    ")
            <= budget * prompt_module.STABLE_SHARE
        ):
            assert r.snippets_included
        if r.snippets_included:
            seen_with = True
            assert r.text.startswith(block)
        else:
            seen_without = True
        if r.prefix_lines > near_lines:  # far lines only after the near window
            assert r.window_start % WINDOW_GRID == 0
    assert seen_with and seen_without
    big = render_prompt(inp, profile, fake_tokens, 1200)
    assert big.prefix_lines > near_lines and big.head_lines > 0


def test_the_first_answer_prompt_is_the_full_ones_start_with_fewer_lines() -> None:
    """``far=False`` (the worker's small first-answer prompt) keeps the head and the snippets,
    a few grid-aligned lines above the cursor and a few below."""
    inp = marked_input(LONG_FILE, snippets=(UTIL_EDIT,))
    profile = get_profile("qwen2.5-coder")
    full = render_prompt(inp, profile, fake_tokens, 1500)
    small = render_prompt(
        inp, profile, fake_tokens, 1500, near_lines=8, grid=8, suffix_lines=4, far=False
    )
    assert small.snippets_included == full.snippets_included
    assert small.head_lines == full.head_lines > 0
    assert 9 <= small.prefix_lines <= 16 < full.prefix_lines
    assert small.window_start % 8 == 0 and small.suffix_lines == 5
    stable = small.text[: small.text.index("<|fim_suffix|>")]
    stable = stable[: stable.rindex("# Path: src/main.py\n")]
    assert full.text.startswith(stable)
    assert small.token_estimate < full.token_estimate


def test_recent_edits_outrank_open_files_and_the_best_sits_next_to_the_code() -> None:
    other = Snippet("src/other.py", "Y = 2\n", 1, "open_file")
    edit = Snippet("src/edit.py", "X = 1\n", 5, "recent_edit")
    inp = marked_input("aˇ", snippets=(other, edit))
    r = render_prompt(inp, get_profile("gemma3"), fake_tokens, 1536)
    assert r.snippets_included == ("src/edit.py:5", "src/other.py:1")
    assert r.text.index("src/other.py") < r.text.index("src/edit.py") < r.text.index("src/main")
    # With room for one snippet only, the recent edit is kept.
    small = render_prompt(
        inp,
        get_profile("gemma3"),
        fake_tokens,
        math.ceil(
            fake_tokens("# Path: src/edit.py\n# X = 1\n# Path: src/main.py\na")
            / prompt_module.STABLE_SHARE
        ),
    )
    assert small.snippets_included == ("src/edit.py:5",)


def test_a_snippet_is_whole_or_absent() -> None:
    big = Snippet("src/big.py", numbered(40, indent=""), 1, "recent_edit")
    inp = marked_input("x = ˇ", snippets=(big,))
    for budget in range(5, 600, 13):
        r = render_prompt(inp, get_profile("gemma3"), fake_tokens, budget)
        assert r.text.count("# v") in (0, 40)
        assert bool(r.snippets_included) == (r.text.count("# v") == 40)


def test_a_snippet_of_the_edited_file_inside_the_near_lines_is_dropped() -> None:
    near = Snippet("src/main.py", "    v149 = compute(149, 'x' * 149)\n", 150, "recent_edit")
    far = Snippet("src/main.py", "    v1 = compute(1, 'x' * 1)\n", 2, "recent_edit")
    below = Snippet("src/main.py", "    v160 = compute(160, 'x' * 160)\n", 163, "recent_edit")
    inp = marked_input(LONG_FILE, snippets=(near, far, below))
    fallback = render_prompt(inp, get_profile("gemma3"), fake_tokens, 2200)
    # Without FIM the lines below the cursor are not shown, so that snippet still helps.
    assert fallback.snippets_included == ("src/main.py:2", "src/main.py:163")
    fim = render_prompt(inp, get_profile("codegemma"), fake_tokens, 3000)
    assert fim.snippets_included == ("src/main.py:2",)


def test_a_huge_cursor_line_is_cut_around_the_cursor() -> None:
    line = "var a=" + ",".join(f"f{i}()" for i in range(20_000))
    inp = marked_input(f"{line}ˇ{line}\n", path="app.min.js", language="javascript")
    for profile_id in ("gemma3", "codegemma"):
        r = render_prompt(inp, get_profile(profile_id), fake_tokens, 300)
        assert 250 < r.token_estimate <= 300  # most of the budget is used
        assert r.prefix_lines == 1
        before = r.text.split("// Path: app.min.js\n")[1].split("<|fim_suffix|>")[0]
        assert before and line.endswith(before)
        if profile_id == "codegemma":
            after = r.text.split("<|fim_suffix|>")[1].removesuffix("<|fim_middle|>")
            assert after and line.startswith(after)


def test_headers_alone_over_budget_still_render() -> None:
    r = render_prompt(marked_input("x = ˇ"), get_profile("gemma3"), fake_tokens, 1)
    assert r.text == "# Path: src/main.py\n"
    assert r.token_estimate > 1


def test_empty_file() -> None:
    r = render_prompt(marked_input("ˇ"), get_profile("gemma3"), fake_tokens, 100)
    assert r == RenderedPrompt(
        "# Path: src/main.py\n", 1, 0, (), fake_tokens(r.text), PROMPT_FORMAT_VERSION
    )


def counting(counter: Callable[[str], int]) -> tuple[Callable[[str], int], list[str]]:
    calls: list[str] = []

    def count(text: str) -> int:
        calls.append(text)
        return counter(text)

    return count, calls


@pytest.mark.parametrize("lines", [10, 300, 3000, 20_000])
@pytest.mark.parametrize("profile_id", ["gemma3", "starcoder2"])
def test_count_tokens_is_called_log_n_times_on_whole_prompts(lines: int, profile_id: str) -> None:
    half = lines // 2
    inp = marked_input(
        "def f():\n" + numbered(half) + "    ˇ\n" + numbered(half, half + 1),
        snippets=(UTIL_EDIT, README),
    )
    elements = 2 * half + 4
    bound = 2 * math.ceil(math.log2(elements)) + 3
    for budget in (50, 500, 1536, 10**6):
        count, calls = counting(fake_tokens)
        r = render_prompt(inp, get_profile(profile_id), count, budget)
        assert len(calls) <= bound, (budget, len(calls))
        assert len(set(calls)) == len(calls)  # never the same text twice
        assert all("# Path: src/main.py\n" in c for c in calls)  # whole renderings only
        assert r.text in calls


@pytest.mark.parametrize("chars_per_token", [1, 2, 8, 30])
@pytest.mark.parametrize("profile_id", ["gemma3", "codegemma"])
def test_the_search_finds_the_best_cutoff_whatever_the_tokenizer(
    chars_per_token: int, profile_id: str
) -> None:
    """The character-based first guess only saves calls: the answer is what a linear search
    over the cutoff (through the module's internals) finds."""

    def tokens(text: str) -> int:
        return len(text) // chars_per_token + 1

    inp = marked_input(LONG_FILE, snippets=(UTIL_EDIT, README))
    profile = get_profile(profile_id)
    checked = 0
    for budget in (30, 200, 900, 3000, 6000, 10**4, 10**5):
        plan = prompt_module._fitted_plan(inp, profile, tokens, budget)
        sizes = [
            tokens(prompt_module._text(plan, prompt_module._cut(plan, k)))
            for k in range(1, len(plan.order) + 2)
        ]
        r = render_prompt(inp, profile, tokens, budget)
        if sizes[0] <= budget:
            best = max(k for k, size in enumerate(sizes, 1) if size <= budget)
            if (prompt_module._NEAR, 0) in plan.order[best - 1 :]:
                continue  # not even the near window fits: whole lines (another search)
            assert r.text == prompt_module._text(plan, prompt_module._cut(plan, best))
            checked += 1
    assert checked >= 3


@pytest.mark.parametrize("bias", [0.5, 0.9, 1.0, 1.3, 3.0])
def test_a_piece_estimator_only_saves_calls(bias: float) -> None:
    """``estimate_tokens`` (the worker's cached per-line counts) steers the search; the text is
    the one the exact search finds, however wrong the estimate, and a fair estimate costs a
    handful of whole-prompt counts instead of about ten."""
    inp = marked_input(LONG_FILE, snippets=(UTIL_EDIT, README))
    profile = get_profile("gemma3")

    def estimate(piece: str) -> int:
        return max(1, round(fake_tokens(piece) * bias))

    for budget in (30, 200, 900, 3000, 10**5):
        exact = render_prompt(inp, profile, fake_tokens, budget)
        count, calls = counting(fake_tokens)
        guided = render_prompt(inp, profile, count, budget, estimate_tokens=estimate)
        assert guided.text == exact.text, (bias, budget)
        if bias == 1.0 and budget < 10**5:
            assert len(calls) <= 7, (budget, len(calls))


@pytest.mark.parametrize("n", [1, 2, 7, 100])
def test_largest_fitting_from_any_guess(n: int) -> None:
    for answer in range(n + 1):
        for guess in range(-1, n + 3):
            probes: list[int] = []

            def fits(k: int, probes: list[int] = probes, answer: int = answer) -> bool:
                probes.append(k)
                assert 1 <= k <= n
                return k <= answer

            assert prompt_module._largest_fitting(n, guess, fits) == answer
            if guess == answer >= 1:
                assert len(probes) <= 2


# ---------------------------------------------------------------------------------------------
# The input and its JSON form


def test_same_input_same_bytes_also_after_a_json_round_trip() -> None:
    inp, profile_id, budget = GOLDEN["non_ascii_fim"]
    wire = json.dumps(inp.to_json())
    again = CompletionInput.from_json(json.loads(wire))
    assert again == inp
    profile = get_profile(profile_id)
    assert render_prompt(again, profile, fake_tokens, budget) == render_prompt(
        inp, profile, fake_tokens, budget
    )


def good_json() -> dict[str, object]:
    return {
        "path": "a.py",
        "language": "python",
        "prefix": "x = ",
        "suffix": "\n",
        "snippets": [{"path": "b.py", "text": "y = 1\n", "start_line": 3, "kind": "recent_edit"}],
    }


def with_change(change: Callable[[dict[str, object]], object]) -> dict[str, object]:
    d = good_json()
    change(d)
    return d


def snippet0(d: dict[str, object]) -> dict[str, object]:
    snippets = d["snippets"]
    assert isinstance(snippets, list)
    first = snippets[0]
    assert isinstance(first, dict)
    return first


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "CompletionInput must be a JSON object, got list"),
        (with_change(lambda d: d.pop("prefix")), "CompletionInput: missing key(s) prefix"),
        (with_change(lambda d: d.update(cursor=3)), "CompletionInput: unknown key(s) cursor"),
        (
            with_change(lambda d: d.update(prefix=None)),
            "CompletionInput.prefix must be str, got null",
        ),
        (
            with_change(lambda d: d.update(snippets=())),
            "CompletionInput.snippets must be list, got tuple",
        ),
        (
            with_change(lambda d: d.update(snippets=["x"])),
            "CompletionInput.snippets[0] must be a JSON object, got str",
        ),
        (
            with_change(lambda d: snippet0(d).pop("kind")),
            "CompletionInput.snippets[0]: missing key(s) kind",
        ),
        (
            with_change(lambda d: snippet0(d).update(start_line="3")),
            "CompletionInput.snippets[0].start_line must be int, got str",
        ),
        (
            with_change(lambda d: snippet0(d).update(start_line=True)),
            "CompletionInput.snippets[0].start_line must be int, got bool",
        ),
        (
            with_change(lambda d: snippet0(d).update(start_line=0)),
            "Snippet.start_line must be >= 1, got 0",
        ),
        (
            with_change(lambda d: snippet0(d).update(kind="clipboard")),
            "Snippet.kind must be one of",
        ),
    ],
)
def test_from_json_rejects_bad_input(data: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        CompletionInput.from_json(data)
    assert str(info.value).startswith(message)


def test_from_json_accepts_good_input() -> None:
    inp = CompletionInput.from_json(good_json())
    assert inp.snippets == (Snippet("b.py", "y = 1\n", 3, "recent_edit"),)
    assert inp.to_json() == {**good_json(), "first_line": 0, "head": ""}


def test_constructing_checks_types_too() -> None:
    with pytest.raises(ValueError, match=r"CompletionInput\.snippets must be tuple"):
        CompletionInput("a", "python", "", "", [])  # type: ignore[arg-type]


@pytest.mark.parametrize("profile", list(PROFILES.values()), ids=list(PROFILES))
def test_every_profile_renders_within_its_budget(profile: ModelProfile) -> None:
    inp = marked_input(LONG_FILE, snippets=(UTIL_EDIT, README))
    r = render_prompt(inp, profile, fake_tokens, profile.prompt_budget)
    assert r.token_estimate <= profile.prompt_budget
    if profile.fim:
        assert r.text.startswith(profile.fim.prefix) and r.text.endswith(profile.fim.middle)
    else:
        assert r.suffix_lines == 0 and r.text.endswith("    ")
