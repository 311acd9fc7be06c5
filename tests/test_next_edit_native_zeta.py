"""Zed's Zeta next-edit format (``forecode_core.next_edit.native_zeta``): a GGUF whose metadata
names Zeta gets the ``zeta`` profile and its native prompt; the answer is parsed by Zeta's
parser into the same ``Suggestion`` with the same filters; the region's original text is the
engine's speculative draft.

Golden files: tests/golden/next_edit_zeta/<case>.txt (``FORECODE_UPDATE_GOLDEN=1`` rewrites
them; bump ``ZETA_FORMAT_VERSION`` when the rendered text changes).

Cases are documents with the caret marked ``ˇ``; a suggestion is shown as the document with
``[-removed-]{+inserted+}``.

No Zeta GGUF is on this machine and none is downloaded: the native path runs end to end with a
scripted engine at the model seam, and a real GGUF (Qwen2.5-Coder 0.5B) whose ``general.name``
is rewritten to "Zeta" in a temporary copy (with the ``gguf`` package) runs through the real
worker, which routes it to the native format.
"""

from __future__ import annotations

import dataclasses
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import pytest
from helpers.golden import check_golden

from forecode_core.completion.model import Completion, RewriteMetrics
from forecode_core.next_edit.acceptance import PRIOR, judge
from forecode_core.next_edit.answer import Parsed, Rejected, Suggestion, check_answer
from forecode_core.next_edit.input import (
    CARET as CHAT_CARET,
)
from forecode_core.next_edit.input import (
    REGION_END as CHAT_END,
)
from forecode_core.next_edit.input import (
    EditPair,
    NextEditInput,
    input_at,
    render_next_edit,
    renderer_for,
)
from forecode_core.next_edit.native_zeta import (
    CURSOR,
    REGION_END,
    REGION_START,
    START_OF_FILE,
    ZETA_FORMAT_ID,
    event_section,
    parse_zeta_answer,
    parser_for_format,
    render_zeta_next_edit,
)
from forecode_core.profiles import get_profile, profile_for

GOLDEN_DIR = Path(__file__).parent / "golden" / "next_edit_zeta"
ZETA = get_profile("zeta")


def count(text: str) -> int:
    """A stand-in tokenizer: about four characters a token."""
    return len(text) // 4 + 1


# ---------------------------------------------------------------------------------------------
# the profile


@pytest.mark.parametrize(
    ("architecture", "name", "expected"),
    [
        ("qwen2", "Zeta", "zeta"),  # general.name as Zed's conversion writes it
        ("qwen2", "zed-industries_zeta-Q4_K_M", "zeta"),  # a community GGUF's file name
        ("qwen2", "zeta.Q8_0", "zeta"),
        ("qwen2", "Zeta 7B", "zeta"),
        ("qwen2", "Zeta 2", "generic"),  # Zeta 2 / 2.1: Seed-Coder, another format
        ("llama", "zeta-2.1", "generic"),
        ("llama", "Zeta", "generic"),  # not Qwen2's weights: the name alone is not enough
        ("qwen2", "Zetasql Coder", "generic"),
        ("qwen2", "Qwen2.5 Coder 7B", "qwen2.5-coder"),
    ],
)
def test_a_zeta_gguf_is_recognised_by_its_metadata(
    architecture: str, name: str, expected: str
) -> None:
    profile = profile_for(architecture, name, chat_template="{{ '<|im_start|>' }}")
    assert profile.id == expected


def test_the_zeta_profile_has_the_native_format_and_others_keep_the_chat_one() -> None:
    assert renderer_for(ZETA) is render_zeta_next_edit
    assert renderer_for(get_profile("qwen2.5-coder")) is not render_zeta_next_edit
    assert ZETA.chat.id == "chatml" and ZETA.fim == get_profile("qwen2.5-coder").fim


def _tiny_gguf(path: Path, architecture: str, name: str) -> None:
    """A GGUF with a header and no tensors (enough for the header reader)."""
    import gguf

    w = gguf.GGUFWriter(str(path), architecture)
    w.add_name(name)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def test_a_gguf_picked_from_disk_gets_the_zeta_profile_by_its_header(tmp_path: Path) -> None:
    from forecode_core.profiles import profile_of
    from local_models.gguf_info import read_model_info

    zeta, plain = tmp_path / "mine.gguf", tmp_path / "other.gguf"
    _tiny_gguf(zeta, "qwen2", "Zeta")
    _tiny_gguf(plain, "qwen2", "Qwen2.5 Coder 7B")
    assert profile_of(read_model_info(zeta)).id == "zeta"
    assert profile_of(read_model_info(plain)).id == "qwen2.5-coder"


# ---------------------------------------------------------------------------------------------
# the prompt

SOURCE = """import json


def load(path):
    with open(path) as handle:
        data = json.load(fh)
    return data


def save(path, data):
    with open(path, "w") as fh:
        json.dump(data, fh)
"""
RENAME = EditPair("src/store.py", 4, "    with open(path) as fh:", "    with open(path) as handle:")
OLDER = EditPair("src/store.py", 0, "import os", "import json")


def store_input(events: tuple[EditPair, ...] = (OLDER, RENAME)) -> NextEditInput:
    caret = SOURCE.index("json.load(fh)") + len("json.load(")
    return input_at(SOURCE, caret, path="src/store.py", language="python", events=events)


def long_input() -> NextEditInput:
    head = "".join(f"CONSTANT_{i} = {i}\n" for i in range(40))
    text = head + "\n\n" + SOURCE
    caret = text.index("json.load(fh)") + len("json.load(")
    return input_at(text, caret, path="src/store.py", language="python", events=(OLDER, RENAME))


def crlf_input() -> NextEditInput:
    text = (
        'MARK = "<|editable_region_end|>"\r\n\r\n\r\ndef f(x):\r\n    return x  '
        "# <|user_cursor_is_here|>\r\n"
    )
    caret = text.index("return x") + len("return")
    pair = EditPair("pkg\\mod.py", 3, "def f(y):", "def f(x):")
    return input_at(text, caret, path="pkg\\mod.py", language="python", events=(pair,))


GOLDEN: dict[str, tuple[Callable[[], NextEditInput], int]] = {
    "events_start_of_file": (store_input, 2000),
    "tight_budget": (long_input, 230),
    "markers_crlf": (crlf_input, 2000),
}


@pytest.mark.parametrize("case", sorted(GOLDEN))
def test_golden_prompt(case: str) -> None:
    make, budget = GOLDEN[case]
    rendered = render_next_edit(make(), ZETA, count, budget)
    assert rendered.format_id == ZETA_FORMAT_ID
    check_golden(GOLDEN_DIR, case, rendered.text)


def test_golden_files_have_no_strays() -> None:
    assert sorted(p.stem for p in GOLDEN_DIR.glob("*.txt")) == sorted(GOLDEN)


def test_the_answer_is_prefilled_with_the_excerpt_up_to_the_region() -> None:
    inp = store_input()
    r = render_zeta_next_edit(inp, ZETA, count, 2000)
    excerpt = r.text.split("### User Excerpt:\n\n", 1)[1].split("\n\n### Response:\n", 1)[0]
    head = excerpt[: excerpt.index(REGION_START) + len(REGION_START) + 1]
    assert r.text.endswith("### Response:\n" + head)
    assert head.startswith("```src/store.py\n" + START_OF_FILE + "\nimport json\n")
    # the region with the cursor, then the end marker on its own line
    region = inp.excerpt[inp.region_start : inp.caret] + CURSOR
    region += inp.excerpt[inp.caret : inp.region_end]
    assert head + region + REGION_END + "\n" in excerpt
    assert r.stop[0] == REGION_END and r.end_marker == REGION_END
    # the region's original text, as the model writes it back: the speculative draft
    assert r.draft == region and r.draft.replace(CURSOR, "") == inp.region
    assert not r.add_bos  # Qwen's vocabulary: no BOS


def test_an_edit_is_a_one_hunk_unified_diff() -> None:
    assert event_section(RENAME) == (
        'User edited "src/store.py":\n```diff\n@@ -5 +5 @@\n'
        "-    with open(path) as fh:\n+    with open(path) as handle:\n\n```"
    )
    grown = EditPair("a.py", 9, "x = 1", "x = 1\ny = 2")
    assert "@@ -10 +10,2 @@\n-x = 1\n+x = 1\n+y = 2\n" in event_section(grown)


def test_stable_parts_first_a_new_edit_keeps_the_start() -> None:
    before = render_zeta_next_edit(store_input((OLDER,)), ZETA, count, 2000).text
    after = render_zeta_next_edit(store_input((OLDER, RENAME)), ZETA, count, 2000).text
    common = next(i for i, (a, b) in enumerate(zip(before, after, strict=False)) if a != b)
    assert before[:common].endswith(event_section(OLDER) + "\n\n")


def test_the_budget_is_kept_and_more_budget_shows_more() -> None:
    inp = long_input()
    shown = []
    for budget in (200, 260, 320, 400, 2000):
        r = render_zeta_next_edit(inp, ZETA, count, budget)
        assert r.token_estimate == count(r.text) <= budget
        shown.append(r.lines_above + r.lines_below + r.events_included)
    assert shown == sorted(shown) and shown[0] < shown[-1]
    # the excerpt starts below the file's first line: no start-of-file marker at any budget
    assert inp.first_line > 0 and START_OF_FILE not in r.text


def test_a_file_without_a_final_line_break_drafts_the_region_as_rendered() -> None:
    text = "def f(x):\n    return x"
    inp = input_at(text, len(text), path="f.py", language="python")
    r = render_zeta_next_edit(inp, ZETA, count, 2000)
    assert r.draft == text + CURSOR + "\n"
    assert f"    return x{CURSOR}\n{REGION_END}\n```" in r.text


# ---------------------------------------------------------------------------------------------
# the answer

DOC = """import os


def area(w, h):
    return w * h


def perimeter(w, h):
    return 2 * (w + h)ˇ


def main():
    print(area(2, 3))
    print(perimeter(2, 3))
"""


@pytest.fixture
def answer_region(monkeypatch: pytest.MonkeyPatch) -> None:
    """A region of at least 6 lines, up to 10 above and 12 below (as the chat format's answer
    table's cases: the filters do not depend on the region's size)."""
    import forecode_core.next_edit.input as input_module

    monkeypatch.setattr(input_module, "REGION_MIN_LINES", 6)
    monkeypatch.setattr(input_module, "REGION_MAX_ABOVE", 10)
    monkeypatch.setattr(input_module, "REGION_MAX_BELOW", 12)


def make(marked: str = DOC, events: tuple[EditPair, ...] = ()) -> NextEditInput:
    return input_at(
        marked.replace("ˇ", ""), marked.index("ˇ"), path="geo.py", language="python", events=events
    )


def shown(text: str, s: Suggestion) -> str:
    for e in reversed(s.edits):
        removed = f"[-{text[e.start : e.end]}-]" if e.end > e.start else ""
        inserted = f"{{+{e.text}+}}" if e.text else ""
        text = text[: e.start] + removed + inserted + text[e.end :]
    return text


def zeta(inp: NextEditInput, old: str = "", new: str = "", end: str = REGION_END) -> str:
    """A Zeta answer: the region with ``old`` replaced by ``new``, the caret's cursor marker
    kept where the model often echoes it, then ``end``."""
    caret = inp.caret - inp.region_start
    region = inp.region[:caret] + CURSOR + inp.region[caret:]
    assert old in region, old
    return region.replace(old, new, 1) + end


@pytest.mark.usefixtures("answer_region")
def test_the_doc_region_is_what_the_cases_assume() -> None:
    assert make().region == (
        "def area(w, h):\n    return w * h\n\n\ndef perimeter(w, h):\n    return 2 * (w + h)\n\n\n"
    )


# name -> (answer from the input, finished) -> (marked line, kind, at caret, ghost, line)
SUGGESTIONS: dict[str, tuple[Callable[[NextEditInput], str], tuple[str, str, bool, bool, int]]] = {
    "ghost_at_the_cursor": (
        lambda i: zeta(i, CURSOR + "\n", " + 0" + CURSOR + "\n"),
        ("    return 2 * (w + h){+ + 0+}\n", "insertion", True, True, 8),
    ),
    "replacement_elsewhere": (
        lambda i: zeta(i, "return w * h", "return h * w"),
        ("    return [-w-]{+h+} * [-h-]{+w+}\n", "replacement", False, False, 4),
    ),
    "lines_inserted_above": (
        lambda i: zeta(i, "    return w * h\n", "    assert w >= 0\n    return w * h\n"),
        ("{+    assert w >= 0\n+}    return w * h\n", "insertion", False, False, 4),
    ),
    "the_start_marker_echoed_first": (
        lambda i: REGION_START + "\n" + zeta(i, "perimeter(w, h):", "perimeter(w, h, d):"),
        ("def perimeter(w, h{+, d+}):\n", "insertion", False, False, 7),
    ),
    "the_closing_fence_after_the_end_marker": (
        lambda i: zeta(i, "perimeter(w, h):", "perimeter(w, h, d):", REGION_END + "\n```\n"),
        ("def perimeter(w, h{+, d+}):\n", "insertion", False, False, 7),
    ),
    "no_end_marker_but_the_whole_region": (
        lambda i: zeta(i, "perimeter(w, h):", "perimeter(w, h, d):", ""),
        ("def perimeter(w, h{+, d+}):\n", "insertion", False, False, 7),
    ),
}


@pytest.mark.usefixtures("answer_region")
@pytest.mark.parametrize("case", sorted(SUGGESTIONS))
def test_suggestions(case: str) -> None:
    answer, (marked, kind, at_caret, ghost, line) = SUGGESTIONS[case]
    inp = make()
    text = DOC.replace("ˇ", "")
    got = check_answer(inp, answer(inp), finished=True, parse=parse_zeta_answer)
    assert isinstance(got, Suggestion), got
    assert marked in shown(text, got)
    assert CURSOR not in got.rewrite
    assert (got.kind, got.at_caret, got.ghost, got.line) == (kind, at_caret, ghost, line)


@pytest.mark.usefixtures("answer_region")
@pytest.mark.parametrize("case", sorted(SUGGESTIONS))
def test_a_zeta_answer_is_the_same_suggestion_as_the_chat_answer(case: str) -> None:
    """The same rewrite in either format gives the same ``Suggestion``."""
    inp = make()
    native = SUGGESTIONS[case][0](inp)
    body = native.removeprefix(REGION_START + "\n").replace(CURSOR, CHAT_CARET)
    chat = body.replace(REGION_END, CHAT_END)
    assert check_answer(inp, native, parse=parse_zeta_answer) == check_answer(inp, chat)


REVERT = EditPair("geo.py", 4, "    return h * w", "    return w * h")

# name -> (answer, finished, events) -> (reason, detail substring)
REJECTIONS: dict[str, tuple[Callable[[NextEditInput], str], bool, tuple[str, str]]] = {
    "cut_off_at_the_length_limit": (
        lambda i: zeta(i, "perimeter(w, h):", "perimeter(w, h, d):", "")[:60],
        False,
        ("cut_off", "length limit"),
    ),
    "stopped_short_of_the_regions_end": (
        lambda i: zeta(i, "perimeter(w, h):", "perimeter(w, h, d):", "")[:60] + "\n",
        True,
        ("cut_off", "does not reach"),
    ),
    "a_second_region": (
        lambda i: zeta(i, "def perimeter", REGION_START + "\ndef perimeter"),
        True,
        ("outside_region", "a second region"),
    ),
    "the_start_of_file_again": (
        lambda i: START_OF_FILE + "\n" + zeta(i),
        True,
        ("outside_region", "start-of-file"),
    ),
    "text_after_the_end_marker": (
        lambda i: zeta(i, end=REGION_END + "\ndef main():\n"),
        True,
        ("outside_region", "after the end marker"),
    ),
    "repeats_the_line_above": (
        lambda i: "import os\n" + zeta(i, "def area(w, h):\n", ""),
        True,
        ("outside_region", "above the region"),
    ),
    "a_code_fence_inside": (
        lambda i: zeta(i, "def perimeter", "```\ndef perimeter"),
        True,
        ("outside_region", "code fence"),
    ),
    "no_change": (lambda i: zeta(i), True, ("no_change", "")),
    "reverts_the_last_edit": (
        lambda i: zeta(i, "return w * h", "return h * w"),
        True,
        ("reverts_edit", "line 5"),
    ),
    "changes_most_of_the_region": (
        lambda i: "class Shape:\n    pass\n\n\n" + REGION_END,
        True,
        ("changes_too_much", ""),
    ),
    "unbalances_brackets": (
        lambda i: zeta(i, "(w + h)", "(w + h"),
        True,
        ("unbalances_brackets", ""),
    ),
}


@pytest.mark.usefixtures("answer_region")
@pytest.mark.parametrize("case", sorted(REJECTIONS))
def test_rejections(case: str) -> None:
    answer, finished, (reason, detail) = REJECTIONS[case]
    events = (REVERT,) if case == "reverts_the_last_edit" else ()
    inp = make(events=events)
    got = check_answer(inp, answer(inp), finished=finished, parse=parse_zeta_answer)
    assert isinstance(got, Rejected), got
    assert got.reason == reason and detail in got.detail, got


@pytest.mark.parametrize(
    ("answer", "finished", "expected"),
    [
        ("a\n" + REGION_END, True, Parsed("a\n", True)),
        (f"a{CURSOR}b\n{REGION_END}\n\n", True, Parsed("ab\n", True)),
        (f"  {REGION_START}\na\n{REGION_END}", True, Parsed("a\n", True)),
        ("a\nb\n", True, Parsed("a\nb\n", False)),
        ("a\nb", False, Rejected("cut_off", "stopped at the length limit")),
        # the chat format's markers are plain text in a Zeta answer
        ("<region>\n</region>\n" + REGION_END, True, Parsed("<region>\n</region>\n", True)),
    ],
)
def test_parse_zeta_answer(answer: str, finished: bool, expected: Parsed | Rejected) -> None:
    assert parse_zeta_answer(answer, finished=finished) == expected


@pytest.mark.usefixtures("answer_region")
def test_the_policy_reads_an_answer_by_its_rendering_format() -> None:
    """``judge`` (the editor's and the benchmark's policy) picks the parser by the
    prediction's ``format_id``."""
    inp = make()
    answer = zeta(inp, "return w * h", "return h * w")
    assert parser_for_format(ZETA_FORMAT_ID) is parse_zeta_answer
    open_gate = dataclasses.replace(PRIOR, threshold=0.001)
    native = judge(
        inp,
        answer,
        finished=True,
        metrics={"format_id": ZETA_FORMAT_ID},
        recent_rejects=0,
        gate=open_gate,
    )
    assert native.suggestion is not None, native.reason
    assert [e.text for e in native.suggestion.edits] == ["h", "w"]
    as_chat = judge(
        inp, answer, finished=True, metrics={"format_id": "chat-chatml"}, recent_rejects=0
    )
    # read as the chat format, Zeta's markers are text: never the same suggestion
    assert as_chat.suggestion is None or as_chat.suggestion != native.suggestion


# ---------------------------------------------------------------------------------------------
# the engine path, with a scripted engine at the model seam


class Scripted:
    """A ``NextEditModel`` that writes ``answer`` a line at a time and records the prompt,
    the draft and the stop strings it was given (tokens are code points)."""

    n_ctx = 4096
    max_outputs = 32

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.prompt = self.draft = ""
        self.stop: tuple[str, ...] = ()

    def tokenize(self, text: str, *, add_bos: bool = False) -> list[int]:
        return [ord(c) for c in text]

    def detokenize(self, tokens: Sequence[int]) -> str:
        return "".join(map(chr, tokens))

    def complete(self, prompt: Sequence[int], **kw: object) -> Completion:
        raise AssertionError("predict uses rewrite")

    def warm(self, prompt: Sequence[int], *a: object, **kw: object) -> RewriteMetrics:
        return RewriteMetrics()

    def rewrite(
        self,
        prompt: Sequence[int],
        draft: Sequence[int],
        *,
        max_tokens: int,
        stop: Sequence[str] = (),
        should_stop: Callable[[], bool] | None = None,
        on_text: Callable[[str], None] | None = None,
        margins: list[float] | None = None,
    ) -> Completion:
        self.prompt, self.draft, self.stop = (
            self.detokenize(prompt),
            self.detokenize(draft),
            tuple(stop),
        )
        m = RewriteMetrics(prompt_tokens=len(prompt), draft_tokens=len(draft))
        written, reason = "", "eos"
        for line in self.answer.splitlines(keepends=True):
            written += line
            cut = [written.find(s) for s in stop if s and s in written]
            if cut:
                written, reason = written[: min(cut)], "stop"
                break
            if on_text is not None:
                on_text(line)
        m.generated_tokens = len(written)
        # the draft's verified prefix: what an engine would accept at prefill speed
        m.accepted_tokens = next(
            (i for i, (a, b) in enumerate(zip(written, self.draft, strict=False)) if a != b),
            min(len(written), len(self.draft)),
        )
        return Completion(written, self.tokenize(written), m, reason)


@pytest.mark.usefixtures("answer_region")
def test_the_native_path_end_to_end_through_predict_and_the_policy() -> None:
    from local_models.next_edit import predict

    inp = make()
    engine = Scripted(zeta(inp, "return w * h", "return h * w", REGION_END + "\n```\n"))
    p = predict(cast(Any, engine), ZETA, inp)  # a NextEditModel in all that predict uses
    rendered = render_zeta_next_edit(inp, ZETA, lambda s: len(engine.tokenize(s)), 10_000)
    assert engine.prompt == rendered.text  # the native prompt, prefilled to the region
    # the region's text is the draft (with the cursor marker the model echoes)
    caret = inp.caret - inp.region_start
    assert engine.draft == inp.region[:caret] + CURSOR + inp.region[caret:] + REGION_END
    assert engine.stop[0] == REGION_END
    assert p.metrics["format_id"] == ZETA_FORMAT_ID and p.finished
    assert p.metrics["draft_accepted"] >= 0 and p.metrics["accepted_tokens"] > 20
    judged = judge(
        inp,
        p.text,
        finished=p.finished,
        metrics=p.metrics,
        recent_rejects=0,
        gate=dataclasses.replace(PRIOR, threshold=0.001),
    )
    assert judged.suggestion is not None, judged.reason
    text = DOC.replace("ˇ", "")
    assert "    return [-w-]{+h+} * [-h-]{+w+}\n" in shown(text, judged.suggestion)
    assert judged.suggestion.apply(text) == text.replace("return w * h", "return h * w")


@pytest.mark.usefixtures("answer_region")
def test_an_unchanged_region_through_predict_is_no_change() -> None:
    from local_models.next_edit import predict

    inp = make()
    p = predict(cast(Any, Scripted(zeta(inp))), ZETA, inp)
    got = check_answer(inp, p.text, finished=p.finished, parse=parser_for_format(ZETA_FORMAT_ID))
    assert got == Rejected("no_change")


# ---------------------------------------------------------------------------------------------
# a real GGUF made to look like Zeta, through the real worker


@pytest.fixture
def zeta_named_qwen(tmp_path: Path) -> Iterator[Path]:
    """A copy of the installed Qwen2.5-Coder 0.5B whose ``general.name`` reads "Zeta" (the
    string rewritten in place to its own length, padded with spaces, by ``gguf``)."""
    import gguf

    from local_models.model_store import ensure_model

    copy = tmp_path / "renamed.gguf"
    shutil.copyfile(ensure_model("qwen2.5-coder-0.5b-instruct"), copy)
    reader = gguf.GGUFReader(str(copy), "r+")
    field = reader.fields["general.name"]
    value = field.parts[field.data[0]]
    value[:] = list(b"Zeta".ljust(len(value), b" "))
    reader.data.flush()
    del reader
    yield copy


@pytest.mark.slow
def test_a_real_gguf_renamed_zeta_is_predicted_in_the_native_format(
    zeta_named_qwen: Path,
) -> None:
    from forecode_core.profiles import profile_of
    from local_models.client import EngineClient
    from local_models.gguf_info import read_model_info

    info = read_model_info(zeta_named_qwen)
    assert info.name.strip() == "Zeta" and profile_of(info).id == "zeta"

    answers: list[tuple[str, Any]] = []
    arrived = threading.Event()
    client = EngineClient(str(zeta_named_qwen), request_timeout_s=180, start_timeout_s=180)
    client.start()
    try:
        deadline = time.monotonic() + 180
        while client.profile is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert client.profile == "zeta"  # the real worker read the header: the native format
        inp = store_input()

        def answered(kind: str, what: Any) -> None:
            answers.append((kind, what))
            arrived.set()

        client.next_edit(
            inp,
            on_done=lambda _i, d: answered("done", d),
            on_error=lambda _i, m: answered("error", m),
        )
        assert arrived.wait(240), "no answer"
    finally:
        client.close()
    kind, done = answers[0]
    assert kind == "done", done
    assert done.metrics["format_id"] == ZETA_FORMAT_ID
    assert done.metrics["draft_tokens"] > 0 and done.metrics["generated_tokens"] > 0
    assert done.metrics["draft_accepted"] > 0  # the region's text verified from the draft
    finished = done.stop_reason in ("stop", "eos")
    got = check_answer(inp, done.text, finished=finished, parse=parse_zeta_answer)
    if isinstance(got, Suggestion):  # inside the region, nothing outside it changed
        lo, hi = inp.region_offset, inp.region_offset + len(inp.region)
        assert all(lo <= e.start <= e.end <= hi for e in got.edits)
    else:
        assert got.reason in (
            "cut_off",
            "outside_region",
            "no_change",
            "reverts_edit",
            "changes_too_much",
            "unbalances_brackets",
        )


# ---------------------------------------------------------------------------------------------
# the editor's model source (pytest-qt), a scripted engine at its seam


def test_the_editors_model_source_reads_a_zeta_answer_by_its_format(qtbot: Any) -> None:
    """The owner's ``ModelSource`` judges the worker's answer by the ``format_id`` the
    worker's metrics carry: a Zeta answer (cursor marker echoed, end marker stripped as the
    engine does) is suggested as its edit; the same text said to be chat-format is not that
    suggestion."""
    from test_next_edit_model_source import SURE, TEXT, Engine, Seen, at

    from app.ui.next_edit_model import ModelSource

    engine = Engine()
    source = ModelSource(engine)
    seen = Seen(source)
    inp = at()
    caret = inp.caret - inp.region_start
    answer = (inp.region[:caret] + CURSOR + inp.region[caret:]).replace(
        "json.load(fh)", "json.load(handle)"
    )
    source.request(inp, 1, "buf")
    with qtbot.waitSignal(source.suggested, timeout=3000):
        engine.answer(engine.asked[0][0], answer, {**SURE, "format_id": ZETA_FORMAT_ID})
    kind, version, suggestion, _p, buffer = seen.log[0]
    assert (kind, version, buffer) == ("suggested", 1, "buf")
    assert suggestion.apply(TEXT) == TEXT.replace("json.load(fh)", "json.load(handle)")

    source.request(inp, 2, "buf")
    engine.answer(engine.asked[1][0], answer, {**SURE, "format_id": "chat-chatml"})
    qtbot.waitUntil(lambda: any(e[1] == 2 for e in seen.log), timeout=3000)
    later = [e for e in seen.log if e[1] == 2]
    assert later and (later[0][0] == "declined" or later[0][2] != suggestion)
