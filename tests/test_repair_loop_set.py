"""The repair loop of a multi-file set (``app.ui.repair_loop``): the request it sends back
through the Edits RPC, how an answer merges into the set, and the loop's decisions with a
model fake at the seam and a checker fake (the window test with the real service and shadow is
tests/test_edit_set_repair.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from app.services.shadow import CheckStatus, Verdict
from app.ui.repair_loop import merge_repair, repair_set, set_repair_params
from forecode_core.chat.types import ChatMessage, ChatParams, ContextItem, ContextKind, Role
from forecode_core.edits.events import FileChange, FileChangeKind
from forecode_core.streams import FailureCode, StreamError
from forecode_core.workspace.diagnostics_diff import Diagnostic, Severity

M, N, D, F = (
    FileChangeKind.MODIFIED,
    FileChangeKind.NEW,
    FileChangeKind.DELETED,
    FileChangeKind.FAILED,
)

PARAMS = ChatParams(
    "edits-1",
    (ChatMessage(Role.USER, "earlier"), ChatMessage(Role.USER, "Make main shout")),
    (
        ContextItem(ContextKind.CURRENT_FILE, "app/main.py", "old main\n", language="python"),
        ContextItem(ContextKind.FILE, "README.md", "readme\n", language="markdown"),
    ),
)
SET = (
    FileChange("app/main.py", M, "old main\n", "main calls shout_loudly\n"),
    FileChange("app/loud.py", N, "", "def shout(t): ...\n"),
)


def _diag(path: str, message: str, code: str = "F821") -> Diagnostic:
    return Diagnostic(
        path, 0, message, Severity.ERROR, code, "ruff", column=0, end_line=0, end_column=1
    )


def test_the_request_sends_the_proposed_files_and_quotes_the_report() -> None:
    new = [_diag("app/main.py", "Undefined name `shout_loudly`")]
    params = set_repair_params(PARAMS, SET, new, 1)
    files = {c.path: c for c in params.context}
    assert files["app/main.py"].text == "main calls shout_loudly\n"  # the model's own version
    assert files["app/loud.py"].text == "def shout(t): ...\n"  # a new file sent as a file
    assert files["app/main.py"].kind is ContextKind.FILE
    assert files["README.md"].text == "readme\n"  # other context kept
    assert params.messages[0].content == "earlier"  # history kept, the last turn replaced
    last = params.messages[-1].content
    assert last.startswith("Make main shout\n\nRepair round 1:")
    # the report is quoted data, its backticks made quotes (no fence can open)
    assert "> app/main.py:1:1: error: Undefined name 'shout_loudly' [F821]" in last, last
    assert "`" not in last


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        # a modified file takes the answer's text, still against the user's original
        (
            [FileChange("app/main.py", M, "main calls shout_loudly\n", "fixed\n")],
            [
                ("app/main.py", M, "old main\n", "fixed\n"),
                ("app/loud.py", N, "", "def shout(t): ...\n"),
            ],
        ),
        # a file the set created stays new
        (
            [FileChange("app/loud.py", M, "def shout(t): ...\n", "def shout(t): return t\n")],
            [
                ("app/main.py", M, "old main\n", "main calls shout_loudly\n"),
                ("app/loud.py", N, "", "def shout(t): return t\n"),
            ],
        ),
        # deleting a file the set created drops it; a new file is added
        (
            [FileChange("app/loud.py", D, "def shout(t): ...\n"), FileChange("x.py", N, "", "x\n")],
            [("app/main.py", M, "old main\n", "main calls shout_loudly\n"), ("x.py", N, "", "x\n")],
        ),
        # deleting a modified file deletes the user's file
        (
            [FileChange("app/main.py", D, "main calls shout_loudly\n")],
            [("app/main.py", D, "old main\n", ""), ("app/loud.py", N, "", "def shout(t): ...\n")],
        ),
    ],
)
def test_merge_repair(answer: list[FileChange], expected: list[tuple[str, str, str, str]]) -> None:
    merged = merge_repair(SET, answer)
    assert not isinstance(merged, str)
    assert [(c.path, c.kind, c.original, c.new_text) for c in merged] == expected


def test_a_file_the_answer_cannot_resolve_fails_the_round() -> None:
    merged = merge_repair(SET, [FileChange("app/main.py", F, "x", error="no anchor")])
    assert merged == "app/main.py could not be changed (no anchor)"


class _Model:
    """The Edits RPC at the seam: one scripted answer per round (a StreamError raised)."""

    def __init__(self, *answers: Sequence[FileChange] | StreamError) -> None:
        self.answers = list(answers)
        self.asked: list[ChatParams] = []

    def ask(self, params: ChatParams) -> Sequence[FileChange]:
        self.asked.append(params)
        answer = self.answers.pop(0)
        if isinstance(answer, StreamError):
            raise answer
        return answer


def _checker(
    problems: dict[str, int],
) -> tuple[list[tuple[FileChange, ...]], Callable[[Sequence[FileChange]], Verdict]]:
    """A check fake: each file's text names how many new errors it has (``problems``)."""
    seen: list[tuple[FileChange, ...]] = []

    def check(changes: Sequence[FileChange]) -> Verdict:
        seen.append(tuple(changes))
        new = [
            _diag(c.path, f"problem {k} of {c.new_text.strip()}")
            for c in changes
            for k in range(problems.get(c.new_text.strip(), 0))
        ]
        return Verdict(CheckStatus.CHECKED, tuple(new))

    return seen, check


def _first(
    texts: dict[str, str], problems: dict[str, int]
) -> tuple[tuple[FileChange, ...], Verdict]:
    changes = tuple(FileChange(p, M, "orig\n", t + "\n") for p, t in texts.items())
    _seen, check = _checker(problems)
    return changes, check(changes)


def test_a_round_that_fixes_every_file_is_the_set_offered() -> None:
    problems = {"a-broken": 1, "b-broken": 2}
    changes, verdict = _first({"a.py": "a-broken", "b.py": "b-broken"}, problems)
    model = _Model(
        [
            FileChange("a.py", M, "a-broken\n", "a-fixed\n"),
            FileChange("b.py", M, "b-broken\n", "b-fixed\n"),
        ]
    )
    seen, check = _checker(problems)
    out = repair_set(changes, verdict, PARAMS, check=check, ask=model.ask, rounds=2)
    assert out.rounds == 1
    assert [c.new_text for c in out.changes] == ["a-fixed\n", "b-fixed\n"]
    assert [c.original for c in out.changes] == ["orig\n", "orig\n"]
    assert out.verdict.new == ()
    # every file's new diagnostics went back in the one request
    last = model.asked[0].messages[-1].content
    assert "problem 0 of a-broken" in last and "problem 1 of b-broken" in last
    assert out.report.startswith("1 repair round: fixed F821 problem 0 of a-broken")
    assert len(seen) == 1


def test_a_round_that_makes_it_worse_is_never_the_set_offered() -> None:
    problems = {"a-broken": 1, "a-worse": 3}
    changes, verdict = _first({"a.py": "a-broken"}, problems)
    model = _Model([FileChange("a.py", M, "a-broken\n", "a-worse\n")])
    _seen, check = _checker(problems)
    out = repair_set(changes, verdict, PARAMS, check=check, ask=model.ask, rounds=2)
    assert [c.new_text for c in out.changes] == ["a-broken\n"]  # the version before it
    assert out.verdict is verdict
    assert out.rounds == 1
    assert "repair round 1 made it worse (3 problems): the version before it is shown" in out.report


def test_rounds_stop_at_n_and_a_failed_round_keeps_the_last_checked_set() -> None:
    problems = {"v0": 3, "v1": 2, "v2": 1}
    changes, verdict = _first({"a.py": "v0"}, problems)
    model = _Model([FileChange("a.py", M, "v0\n", "v1\n")], [FileChange("a.py", M, "v1\n", "v2\n")])
    _seen, check = _checker(problems)
    out = repair_set(changes, verdict, PARAMS, check=check, ask=model.ask, rounds=2)
    assert (out.rounds, out.changes[0].new_text, len(out.verdict.new)) == (2, "v2\n", 1)
    assert model.answers == [] and len(model.asked) == 2
    assert out.report.startswith("2 repair rounds: fixed") and "1 problem remains" in out.report

    failing = _Model(StreamError(FailureCode.INCOMPLETE, "the answer was cut off"))
    out = repair_set(changes, verdict, PARAMS, check=check, ask=failing.ask, rounds=2)
    assert out.changes == changes and out.verdict is verdict
    assert out.report.endswith("repair round 1 failed: the answer was cut off")


def test_no_round_without_errors_with_zero_rounds_or_when_the_review_closed() -> None:
    problems = {"a-broken": 1}
    changes, verdict = _first({"a.py": "a-broken"}, problems)
    _seen, check = _checker(problems)
    model = _Model()
    for rounds, going in ((0, True), (2, False)):
        out = repair_set(
            changes,
            verdict,
            PARAMS,
            check=check,
            ask=model.ask,
            rounds=rounds,
            going=lambda _n, _new, g=going: g,  # type: ignore[misc]
        )
        assert (out.rounds, out.changes, out.report) == (0, changes, "")
    clean, ok = _first({"a.py": "fine"}, problems)
    out = repair_set(clean, ok, PARAMS, check=check, ask=model.ask, rounds=2)
    assert out.rounds == 0 and model.asked == []
