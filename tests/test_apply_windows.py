"""Window finding and stitching for the windowed model apply (pure; marked text)."""

from __future__ import annotations

from forecode_core.apply.windows import (
    Window,
    WindowPlan,
    definition_extent,
    file_lines,
    format_window_prompt,
    plan_windows,
    repeats_context,
    selection_lines,
    stitch,
    stream_pieces,
    unique_selection,
)


def big_file(n_funcs: int = 60) -> str:
    """A Python file of ``n_funcs`` top-level functions and a class with methods."""
    out = ["import os", "import sys", "", ""]
    for k in range(n_funcs):
        out += [
            f"def func_{k}(a, b):",
            f"    total = a * {k} + b",
            f"    if total > {k}:",
            f"        return total - {k}",
            "    return total",
            "",
            "",
        ]
    out += ["class Store(Base, metaclass=Meta):", '    """A store."""', ""]
    for k in range(10):
        out += [
            "    @property",
            f"    def item_{k}(self):",
            f"        value = self.get({k})",
            f"        return value or {k}",
            "",
        ]
    out += ["", "def main():", "    print(func_1(1, 2))", ""]
    return "\n".join(out) + "\n"


def line_of(text: str, needle: str) -> int:
    return next(j for j, x in enumerate(file_lines(text)) if needle in x)


def test_definition_extent_takes_decorators_and_body() -> None:
    lines = file_lines(big_file())
    header = line_of(big_file(), "def item_3(")
    start, end = definition_extent(lines, header)
    assert lines[start].strip() == "@property"
    assert lines[end - 1].strip() == "return value or 3"


def test_definition_extent_brace_language() -> None:
    text = "function a() {\n  return 1;\n}\n\nfunction b() {\n  return 2;\n}\n"
    assert definition_extent(file_lines(text), 0) == (0, 3)


def test_small_file_is_one_whole_window() -> None:
    text = "def f():\n    return 1\n"
    plan = plan_windows(text, "def f():\n    return 2\n")
    assert plan is not None and plan.whole and plan.windows[0].end == 2


def test_changed_function_is_its_own_window() -> None:
    text = big_file()
    block = "def func_30(a, b):\n    total = a * 30 - b\n    return total\n"
    plan = plan_windows(text, block)
    assert plan is not None and len(plan.windows) == 1
    w = plan.windows[0]
    header = line_of(text, "def func_30(")
    assert w.how == "definition"
    assert w.start <= header < header + 5 <= w.end <= header + 8
    assert w.block == block


def test_shorthand_class_wrapper_is_an_anchor_not_the_window() -> None:
    text = big_file()
    block = (
        "class Store:\n    # ... existing code ...\n    def item_7(self):\n"
        "        return self.get(7) or -1\n    # ... existing code ...\n"
    )
    plan = plan_windows(text, block)
    assert plan is not None and len(plan.windows) == 1
    w = plan.windows[0]
    header = line_of(text, "def item_7(")
    klass = line_of(text, "class Store(")
    assert w.start > klass + 1  # not the class line: it stays as the file has it
    # the block shows the method without its @property: the decorator stays outside the window
    assert w.start == header < header + 3 <= w.end <= header + 6


def test_two_segments_two_windows_and_imports() -> None:
    text = big_file()
    block = (
        "import re\n\n# ... existing code ...\n\ndef func_10(a, b):\n    return a\n\n"
        "# ... existing code ...\n\ndef func_50(a, b):\n    return b\n"
    )
    plan = plan_windows(text, block)
    assert plan is not None
    assert [w.how for w in plan.windows] == ["imports", "definition", "definition"]
    assert plan.windows[0].start == 0 and plan.windows[0].end <= 5
    assert "func_10" in plan.windows[1].block and "func_50" not in plan.windows[1].block


def test_new_function_after_a_changed_one_joins_its_window() -> None:
    text = big_file()
    block = "def func_20(a, b):\n    return a + b\n\n\ndef brand_new():\n    return 0\n"
    plan = plan_windows(text, block)
    assert plan is not None and len(plan.windows) == 1
    assert "brand_new" in plan.windows[0].block


def test_anchor_lines_without_a_definition() -> None:
    text = big_file()
    block = "    total = a * 44 + b\n    if total > 100:\n"
    plan = plan_windows(text, block)
    assert plan is not None and plan.windows[0].how == "anchors"
    assert plan.windows[0].start <= line_of(text, "a * 44 + b") < plan.windows[0].end


def test_fuzzy_match_when_no_line_is_exact() -> None:
    text = big_file()
    block = "        return total - 4444  # changed\n"
    plan = plan_windows(text, block)
    assert plan is None or plan.windows[0].how == "fuzzy"
    block = "    total = a * 17 + bb  # tweaked\n"
    plan = plan_windows(text, block)
    assert plan is not None and plan.windows[0].how == "fuzzy"
    assert plan.windows[0].start <= line_of(text, "a * 17 + b") < plan.windows[0].end


def test_unplaceable_block_in_a_big_file_is_none() -> None:
    assert plan_windows(big_file(), "x = 1\ny = 2\n") is None


def test_selection_window_is_exactly_the_selection() -> None:
    text = big_file()
    sel = "    total = a * 12 + b\n    if total > 12:\n"
    plan = plan_windows(text, sel, "use subtraction")
    start = line_of(text, "a * 12 + b")
    assert plan is not None and plan.windows == (Window(start, start + 2, "", "selection"),)
    # a small file with an instruction still rewrites only the selection
    small = "a = 1\nb = 2\nc = 3\n"
    plan = plan_windows(small, "b = 2\n", "double it")
    assert plan is not None and (plan.windows[0].start, plan.windows[0].end) == (1, 2)


def test_selection_lines_partial_and_ambiguous() -> None:
    text = "x = 1\ny = compute(x)\nz = y\n"
    assert selection_lines(text, "compute(x)\nz") == (1, 3)
    assert selection_lines("a\na\n", "a") is None
    assert selection_lines(text, "nothing") is None


def test_stitch_keeps_everything_outside_the_windows() -> None:
    text = "a\nb\nc\nd\ne\n"
    plan = WindowPlan((Window(1, 2, "", "anchors"), Window(3, 4, "", "anchors")), 5)
    assert stitch(text, plan, ["B\nB2\n", "D"]) == "a\nB\nB2\nc\nD\ne\n"
    assert "".join(stream_pieces(text, plan)) == "a\nc\ne\n"


def test_stitch_without_final_newline() -> None:
    text = "a\nb"
    plan = WindowPlan((Window(1, 2, "", "selection"),), 2)
    assert stitch(text, plan, ["B\n"]) == "a\nB"


def test_window_prompt_has_context_and_draft() -> None:
    text = big_file()
    plan = plan_windows(text, "def func_30(a, b):\n    return 0\n")
    assert plan is not None
    prompt = format_window_prompt(text, plan.windows[0], path="m.py", language="python")
    w = plan.windows[0]
    part = "".join(file_lines(text)[w.start : w.end])
    assert prompt.draft_text == part + "```"
    assert f"Lines {w.start + 1}-{w.end}, the part to rewrite" in prompt.text
    assert prompt.text.endswith(f"Answer with the new text of lines {w.start + 1}-{w.end}.")
    # version 2 opens with the fixed rules: the same tokens for every window (cached)
    from forecode_core.apply.windows import WINDOW_RULES_EDIT

    assert prompt.text.startswith(WINDOW_RULES_EDIT)
    other = format_window_prompt(
        text,
        plan_windows(text, "def func_40(a, b):\n    pass\n").windows[0],
        path="n.py",
        language="python",
    )  # type: ignore[union-attr]
    assert other.text.startswith(WINDOW_RULES_EDIT)
    assert "return total - 29" in prompt.text  # context above
    assert "def func_31" in prompt.text  # context below
    assert prompt.response_prefix == "```python\n"


def test_unique_selection_widens_until_found_once() -> None:
    text = "def a():\n    return 1\n\n\ndef b():\n    return 1\n"
    assert unique_selection(text, 4, 4) == "def b():\n"  # already unique
    widened = unique_selection(text, 5, 5)  # "    return 1" occurs twice
    assert widened.endswith("    return 1\n") and widened.count("\n") >= 2
    lo, hi = selection_lines(text, widened)  # type: ignore[misc]
    assert hi == 6 and lo < 5
    plan = plan_windows(text, widened, "return 2")
    assert plan is not None and plan.windows[0].end == 6


def test_an_answer_that_copies_the_context_is_caught() -> None:
    above = "def a(x):\n    return x + 1\n\n\n"
    part = "def b(x):\n    return x * 2\n"
    below = "\n\ndef c(x):\n    y = x * 3\n    return y\n"
    assert not repeats_context("def b(x):\n    return x * 3\n", part, above, below)
    assert repeats_context("def c(x):\n    y = x * 3\n", part, above, below)
    assert repeats_context("def a(x):\n    return x + 1\ndef b(x):\n", part, above, below)
    # lines the block itself asks for do not count
    assert not repeats_context(
        "def c(x):\n    y = x * 3\n", part, above, below, block="def c(x):\n    y = x * 3\n"
    )


# ----- the pipeline over a scripted model (the seam: apply_model.WindowModel) ------------------


class ScriptedModel:
    """Answers each window prompt with the next scripted text (closing the fence)."""

    def __init__(self, *answers: tuple[str, str]) -> None:
        self.answers = list(answers)
        self.prompts: list[tuple[str, str]] = []

    def rewrite(
        self,
        user_text: str,
        response_prefix: str,
        stop: tuple[str, ...],
        draft_text: str,
        extra_tokens: int,
        *,
        on_text: object,
        should_stop: object,
        alt_text: str = "",
    ) -> object:
        from local_models.apply_model import WindowAnswer
        from local_models.engine import RewriteMetrics

        self.prompts.append((user_text, draft_text))
        text, reason = self.answers.pop(0)
        assert callable(on_text)
        for line in text.splitlines(keepends=True):
            on_text(line)
        return WindowAnswer(text, reason, RewriteMetrics(generated_tokens=len(text)))


def test_rewrite_windows_streams_the_file_in_order_and_stitches() -> None:
    from forecode_core.apply.block import ApplyInput
    from local_models.apply_model import rewrite_windows

    text = big_file()
    block = (
        "def func_10(a, b):\n    return a\n\n# ... existing code ...\n\n"
        "def func_50(a, b):\n    return b\n"
    )
    plan = plan_windows(text, block)
    assert plan is not None and len(plan.windows) == 2
    model = ScriptedModel(
        ("def func_10(a, b):\n    return a\n", "stop"),
        ("def func_50(a, b):\n    return b\n", "stop"),
    )
    streamed: list[str] = []
    done = rewrite_windows(
        model,
        ApplyInput("m.py", "python", text, block),
        plan,  # type: ignore[arg-type]
        on_text=streamed.append,
    )
    assert done.complete and done.text == "".join(streamed)
    expected = stitch(
        text, plan, ["def func_10(a, b):\n    return a\n", "def func_50(a, b):\n    return b\n"]
    )
    assert done.text == expected
    assert "def func_11(a, b):" in done.text and "a * 10 + b" not in done.text
    # each prompt holds its own window as the draft, never the whole file
    assert all(len(draft) < 400 for _, draft in model.prompts)


def test_rewrite_windows_refuses_an_unclosed_window_or_copied_context() -> None:
    from forecode_core.apply.block import ApplyInput
    from local_models.apply_model import rewrite_windows

    text = big_file()
    block = "def func_10(a, b):\n    return a\n"
    plan = plan_windows(text, block)
    assert plan is not None
    inp = ApplyInput("m.py", "python", text, block)
    unclosed = rewrite_windows(
        ScriptedModel(("def func_10(a, b):\n", "length")),  # type: ignore[arg-type]
        inp,
        plan,
    )
    assert not unclosed.complete and unclosed.stop_reason == "length"
    copied = rewrite_windows(
        ScriptedModel(  # type: ignore[arg-type]
            ("def func_11(a, b):\n    total = a * 11 + b\n", "stop")
        ),
        inp,
        plan,
    )
    assert not copied.complete and copied.stop_reason == "context"
    placeholder = rewrite_windows(
        ScriptedModel(  # type: ignore[arg-type]
            ("def func_10(a, b):\n    # ... existing code ...\n", "stop")
        ),
        inp,
        plan,
    )
    assert not placeholder.complete and placeholder.stop_reason == "elision"


def test_lines_of_a_wrapped_function_make_the_whole_function_the_window() -> None:
    """``def f(self, ...):`` then an elision then the function's last lines: where the new
    lines end is unknown, so the window is that whole function (not the one anchor line)."""
    text = big_file()
    block = (
        "class Store:\n    # ... existing code ...\n    def item_4(self, ...):\n"
        "        # ... existing code ...\n        value = self.get(4)\n"
        "        extra = 1\n        return value + extra\n    # ... existing code ...\n"
    )
    plan = plan_windows(text, block)
    assert plan is not None and len(plan.windows) == 1
    w = plan.windows[0]
    header = line_of(text, "def item_4(")
    assert w.start <= header and w.end >= header + 3, w


def test_wrapper_lines_read_as_the_files_header_or_are_left_out() -> None:
    """The window's part of the block: a shorthand header inside the window is the file's own
    line; a wrapper outside it (the class around a method) is left out with its elision."""
    text = big_file()
    block = (
        "class Store:\n    # ... existing code ...\n    def item_4(self, ...):\n"
        "        # ... existing code ...\n        extra = 1\n"
        "        return value + extra\n    # ... existing code ...\n"
    )
    plan = plan_windows(text, block)
    assert plan is not None and len(plan.windows) == 1
    part = plan.windows[0].block
    assert part.startswith("    def item_4(self):\n        # ... existing code ...\n")
    assert "class Store" not in part and "(self, ...)" not in part


# ----- drafts and the window's part of the block -------------------------------------------


def test_expected_answer_merges_the_block_into_the_part() -> None:
    from forecode_core.apply.windows import expected_answer

    part = "def f(a):\n    x = a + 1\n    y = x * 2\n    return y\n"
    # a line added, one replaced; an elision keeps the part's lines
    block = "def f(a):\n    x = a + 1\n    # ... existing code ...\n    log(y)\n    return y\n"
    assert expected_answer(part, block) == (
        "def f(a):\n    x = a + 1\n    y = x * 2\n    log(y)\n    return y\n"
    )
    assert expected_answer(part, "def f(a):\n    return 0\n") == "def f(a):\n    return 0\n"
    assert expected_answer(part, "") == part
    # a method given without its class: its new lines take the file's indentation
    method = "    def f(self):\n        a = 1\n        return a\n"
    assert expected_answer(method, "def f(self):\n    a = 1\n    b = 2\n    return a\n") == (
        "    def f(self):\n        a = 1\n        b = 2\n        return a\n"
    )


def test_an_elision_between_two_lines_of_the_part_is_filled_in() -> None:
    from forecode_core.apply.windows import fill_elisions

    part = "def f(a):\n    x = a + 1\n\n    y = x * 2\n    return y\n"
    block = "def f(a):\n    x = a + 1\n    # ... existing code ...\n    return y + 1\n"
    # 'return y + 1' is new: the elision has no second anchor and stays
    assert fill_elisions(part, block) == block
    block = "def f(a):\n    # ... existing code ...\n    y = x * 2\n    return y + 1\n"
    assert fill_elisions(part, block) == (
        "def f(a):\n    x = a + 1\n\n    y = x * 2\n    return y + 1\n"
    )
    # an anchor found twice in the part settles nothing
    twice = "def f(a):\n    x = 1\n    pass\n    x = 1\n    return x\n"
    block = "    x = 1\n    # ...\n    return x\n"
    assert fill_elisions(twice, block) == block


def test_a_function_rewritten_with_new_nested_definitions_is_its_own_window() -> None:
    """A function restructured into a decorator factory (nested ``def`` the file's function
    lacks): not a wrapper; the window is the whole function and the block's own header (a new
    signature) is what the model is given."""
    text = big_file()
    block = (
        "def func_20(a, b, *, scale=1):\n    def inner(x):\n        return x * scale\n"
        "    total = inner(a) + b\n    return total\n"
    )
    plan = plan_windows(text, block)
    assert plan is not None and len(plan.windows) == 1
    w = plan.windows[0]
    header = line_of(text, "def func_20(")
    assert w.start <= header < header + 5 <= w.end
    assert w.block.startswith("def func_20(a, b, *, scale=1):\n")


def test_a_window_answer_that_leaves_out_a_line_of_the_edit_is_refused() -> None:
    from forecode_core.apply.block import ApplyInput
    from local_models.apply_model import rewrite_windows

    text = big_file()
    block = "def func_10(a, b):\n    total = a * 10 + b\n    log(total)\n    # ...\n"
    plan = plan_windows(text, block)
    assert plan is not None
    inp = ApplyInput("m.py", "python", text, block)
    window = plan.windows[0]
    part = "".join(file_lines(text)[window.start : window.end])
    kept = rewrite_windows(ScriptedModel((part, "stop")), inp, plan)  # type: ignore[arg-type]
    assert not kept.complete and kept.stop_reason == "missed"
    assert kept.defect is not None and "log(total)" in kept.defect.message
    done = rewrite_windows(
        ScriptedModel(  # type: ignore[arg-type]
            (part.replace("a * 10 + b\n", "a * 10 + b\n    log(total)\n"), "stop")
        ),
        inp,
        plan,
    )
    assert done.complete and "    log(total)\n" in done.text


def test_a_long_function_given_back_whole_is_rewritten_around_its_change() -> None:
    body = [f"    step_{k} = compute({k})\n" for k in range(60)]
    text = (
        "import os\n\n\ndef long(a):\n" + "".join(body) + "    return a\n\n\ndef other():\n"
        "    pass\n"
    )
    block = (
        "def long(a):\n"
        + "".join(body).replace("compute(30)", "compute(30, fast=True)")
        + "    return a\n"
    )
    plan = plan_windows(text, block)
    assert plan is not None and len(plan.windows) == 1
    w = plan.windows[0]
    changed = line_of(text, "compute(30)")
    assert w.start <= changed < w.end and w.end - w.start <= 8, w
    assert "compute(30, fast=True)" in w.block and "def long" not in w.block
    # the stitched answer is the whole edit
    lines = file_lines(text)
    answer = "".join(lines[w.start : w.end]).replace("compute(30)", "compute(30, fast=True)")
    assert stitch(text, plan, [answer]) == text.replace("compute(30)", "compute(30, fast=True)")


def test_a_signature_closed_at_the_headers_indentation_keeps_the_body() -> None:
    text = (
        "class P:\n    def tokenize(\n        self, state, start: int, silent: bool = False\n"
        "    ) -> None:\n        rules = self.rules\n        line = start\n"
        "        return None\n\n    def other(self):\n        pass\n"
    )
    lines = file_lines(text)
    assert definition_extent(lines, 1) == (1, 7)


def test_a_long_function_changed_at_both_ends_is_two_small_windows() -> None:
    body = [f"    step_{k} = compute({k})\n" for k in range(60)]
    text = (
        "import os\n\n\ndef long(a):\n"
        + "".join(body)
        + "    return a\n\n\ndef other():\n    pass\n"
    )

    def edit(s: str) -> str:  # four lines changed near the top, four near the bottom
        for k in (8, 9, 10, 11):
            s = s.replace(f"compute({k})", f"compute({k}, x=1)")
        for k in (52, 53, 54, 55):
            s = s.replace(f"compute({k})", f"compute({k}, y=2)")
        return s

    block = "def long(a):\n" + edit("".join(body)) + "    return a\n"
    plan = plan_windows(text, block)
    assert plan is not None and len(plan.windows) == 2, plan
    first, second = plan.windows
    assert first.start <= line_of(text, "compute(8)") and line_of(text, "compute(11)") < first.end
    assert (
        second.start <= line_of(text, "compute(52)") and line_of(text, "compute(55)") < second.end
    )
    # the run between them is left to the file: neither window holds it
    assert first.end - first.start <= 10 and second.end - second.start <= 10, plan
    assert "compute(30)" not in first.block + second.block
    # each window's part of the block is the block's text for the same lines
    lines = file_lines(text)
    answers = [edit("".join(lines[w.start : w.end])) for w in plan.windows]
    assert [w.block for w in plan.windows] == answers
    assert stitch(text, plan, answers) == edit(text)
    # a piece would be cut too short (one changed line): one window
    short = "def long(a):\n" + "".join(body).replace("compute(8)", "compute(8, x=1)")
    short = short.replace("compute(55)", "compute(55, y=2)") + "    return a\n"
    plan = plan_windows(text, short)
    assert plan is not None and len(plan.windows) == 1, plan


def test_a_part_with_an_elision_or_a_short_unchanged_run_is_not_split() -> None:
    body = [f"    step_{k} = compute({k})\n" for k in range(40)]
    text = (
        "import os\n\n\ndef long(a):\n"
        + "".join(body)
        + "    return a\n\n\ndef other():\n    pass\n"
    )
    # changes 8 lines apart: one window
    block = (
        "def long(a):\n"
        + "".join(body)
        .replace("compute(10)", "compute(10, x=1)")
        .replace("compute(18)", "compute(18, y=2)")
        + "    return a\n"
    )
    plan = plan_windows(text, block)
    assert plan is not None and len(plan.windows) == 1, plan
    # an elision inside: which lines it keeps is not known line by line, so no split
    from forecode_core.apply.windows import _split

    lines = file_lines(text)
    new = "".join(lines[3:45])
    for k in (3, 4, 5, 6):
        new = new.replace(f"compute({k})", f"compute({k}, x=1)")
    for k in (33, 34, 35, 36):
        new = new.replace(f"compute({k})", f"compute({k}, y=2)")
    assert len(_split(lines, 3, 45, new)) == 2  # the same part without an elision splits
    elided = file_lines(new)
    elided[20] = "    # ... existing code ...\n"
    assert _split(lines, 3, 45, "".join(elided)) == [(3, 45, "".join(elided))]
