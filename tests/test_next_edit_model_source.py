"""``app.ui.next_edit_model.ModelSource`` with a scripted engine at the seam (pytest-qt): what
the next-edit owner gets for each answer of the engine, stale and cancelled requests, the cache,
prefetch, outcomes. The real engine behind it: tests/test_next_edit_engine.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from app.services.next_edit_outcomes import OutcomeLog
from app.ui.inline_completion import CompletionEngine
from app.ui.next_edit_model import BufferAt, ModelSource, ModelSources, judge
from app.ui.owners.next_edit import ModelPort
from forecode_core.completion.prompt import CompletionInput
from forecode_core.next_edit.acceptance import PRIOR, Features
from forecode_core.next_edit.answer import Suggestion
from forecode_core.next_edit.events import EditEvent
from forecode_core.next_edit.input import REGION_END, NextEditInput, RelatedExcerpt, input_at
from forecode_core.protocol import Done

TEXT = """import json


def load(path):
    with open(path) as handle:
        data = json.load(fh)
    return data


def save(path, data):
    with open(path, "w") as fh:
        json.dump(data, fh)
"""
SURE = {"margin_mean": 0.95, "margin_min": 0.8}
UNSURE = {"margin_mean": 0.3, "margin_min": 0.05}


def at(text: str = TEXT) -> NextEditInput:
    return input_at(text, text.index("handle:") + 6, path="a.py", language="python")


def fixed(inp: NextEditInput) -> str:
    """The model's answer with the rename carried on (the end marker stripped, as the engine
    does)."""
    return inp.region.replace("json.load(fh)", "json.load(handle)")


class Engine(CompletionEngine):
    """The seam: remembers next-edit requests; the test answers them."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[tuple[int, NextEditInput]] = []
        self.cancelled: list[int] = []
        self.ready = True
        self.fail: Exception | None = None

    def next_edit(self, inp: NextEditInput, max_tokens: int | None = None) -> int:
        if self.fail is not None:
            raise self.fail
        rid = 100 + len(self.asked)
        self.asked.append((rid, inp))
        return rid

    def complete(self, inp: CompletionInput, max_tokens: int) -> int:
        raise AssertionError("no completions here")

    def cancel(self, request_id: int) -> None:
        self.cancelled.append(request_id)

    def is_ready(self) -> bool:
        return self.ready

    def answer(self, rid: int, text: str, metrics: dict[str, Any], reason: str = "stop") -> None:
        self.next_edit_done.emit(rid, Done(rid, text, reason, dict(metrics)))


class Seen:
    def __init__(self, source: ModelSource) -> None:
        self.log: list[tuple[Any, ...]] = []
        source.suggested.connect(lambda v, s, p, b: self.log.append(("suggested", v, s, p, b)))
        source.declined.connect(lambda v, r, b: self.log.append(("declined", v, r, b)))


@pytest.fixture
def rig(qtbot: QtBot, tmp_path: Path) -> Iterator[tuple[Engine, ModelSource, Seen, OutcomeLog]]:
    engine = Engine()
    log = OutcomeLog(tmp_path / "outcomes.jsonl")
    source = ModelSource(engine, log=log)
    yield engine, source, Seen(source), log
    log.close()


def test_the_source_is_the_owners_model_port(rig: Any) -> None:
    _, source, _, _ = rig
    port: ModelPort = source  # mypy checks the owner's protocol
    assert port.is_ready()


def test_a_likely_rewrite_is_suggested_and_recorded_as_shown(rig: Any, qtbot: QtBot) -> None:
    engine, source, seen, log = rig
    inp = at()
    source.request(inp, 3, "buf-1")
    assert [i for _, i in engine.asked] == [inp]
    with qtbot.waitSignal(source.suggested, timeout=3000):
        engine.answer(engine.asked[0][0], fixed(inp), SURE)
    kind, version, suggestion, p, buffer = seen.log[0]
    assert (kind, version, buffer) == ("suggested", 3, "buf-1")
    assert isinstance(suggestion, Suggestion) and p >= PRIOR.threshold
    assert suggestion.apply(TEXT) == TEXT.replace("json.load(fh)", "json.load(handle)")
    assert log.flush(timeout=120) and [r.event for r in log.read()] == ["shown"]
    assert source.last_metrics["margin_mean"] == 0.95 and source.last_latency_ms is not None


@pytest.mark.parametrize(
    ("answer", "metrics", "reason"),
    [
        (lambda inp: inp.region, SURE, "no_change"),
        (fixed, UNSURE, "unlikely (p="),
        (lambda inp: fixed(inp)[:20], SURE, "cut_off"),  # stopped at the token cap below
        (lambda inp: fixed(inp) + REGION_END + "\nprint(1)\n", SURE, "outside_region"),
    ],
)
def test_what_the_filters_or_the_gate_refuse_is_declined_with_why(
    rig: Any, qtbot: QtBot, answer: Any, metrics: dict[str, Any], reason: str
) -> None:
    engine, source, seen, log = rig
    inp = at()
    source.request(inp, 1, "b")
    stop = "length" if reason == "cut_off" else "stop"
    with qtbot.waitSignal(source.declined, timeout=3000):
        engine.answer(engine.asked[0][0], answer(inp), metrics, stop)
    assert seen.log[0][0] == "declined" and seen.log[0][2].startswith(reason), seen.log
    assert log.flush(timeout=120) and log.read() == []


def test_a_stale_answer_is_dropped_and_only_the_newest_version_answered(
    rig: Any, qtbot: QtBot
) -> None:
    engine, source, seen, _ = rig
    source.request(at(), 1, "b")
    source.request(at(), 2, "b")
    (old, _), (new, inp) = engine.asked
    engine.answer(old, fixed(inp), SURE)  # the engine superseded it; were it to answer anyway
    with qtbot.waitSignal(source.suggested, timeout=3000):
        engine.answer(new, fixed(inp), SURE)
    qtbot.wait(50)
    assert [(e[0], e[1]) for e in seen.log] == [("suggested", 2)]


def test_a_cancelled_request_never_answers(rig: Any, qtbot: QtBot) -> None:
    engine, source, seen, _ = rig
    source.request(at(), 1, "b")
    rid = engine.asked[0][0]
    source.cancel()
    assert engine.cancelled == [rid]
    engine.answer(rid, fixed(at()), SURE)
    engine.answer(rid, "", {}, "cancelled")
    qtbot.wait(100)
    assert seen.log == []


def test_answers_are_cached_by_buffer_and_version(rig: Any, qtbot: QtBot) -> None:
    engine, source, seen, _ = rig
    inp = at()
    source.request(inp, 4, "b")
    with qtbot.waitSignal(source.suggested, timeout=3000):
        engine.answer(engine.asked[0][0], fixed(inp), SURE)
    with qtbot.waitSignal(source.suggested, timeout=3000):
        source.request(inp, 4, "b")  # Esc, then asked again: no second request
        assert seen.log[1:] == []  # answered on the next event-loop turn, not inside the call
    assert len(engine.asked) == 1 and [e[1] for e in seen.log] == [4, 4]
    source.request(inp, 4, "other buffer")  # another buffer's version 4 is another question
    assert len(engine.asked) == 2


def test_a_prefetch_is_answered_once_when_the_request_follows(rig: Any, qtbot: QtBot) -> None:
    engine, source, seen, _ = rig
    inp = at()
    source.prefetch(inp, 7, "b")  # right after an accept
    source.request(inp, 7, "b")  # the pause: the same version, already on its way
    assert len(engine.asked) == 1
    with qtbot.waitSignal(source.suggested, timeout=3000):
        engine.answer(engine.asked[0][0], fixed(inp), SURE)
    qtbot.wait(50)
    assert len(seen.log) == 1 and source.last_metrics["prefetch"] is True


def test_request_at_builds_the_input_from_the_buffer(rig: Any) -> None:
    engine, source, _, _ = rig
    event = EditEvent(TEXT.index("handle:"), "fh", "handle", 4, 0.0, 0.5, 4)
    related = (RelatedExcerpt("lib/io.py", "def load(path): ...\n", 3),)
    inp = source.request_at(
        "b",
        9,
        BufferAt(TEXT, TEXT.index("handle:"), "a.py", "python", [event], related),
    )
    assert engine.asked == [(engine.asked[0][0], inp)]
    assert inp.events[0].before == "    with open(path) as fh:"
    assert inp.events[0].after == "    with open(path) as handle:"
    assert inp.related == related and inp.caret_offset == TEXT.index("handle:")


def test_outcomes_are_logged_and_rejects_lower_the_estimate(rig: Any, qtbot: QtBot) -> None:
    engine, source, seen, log = rig
    inp = at()
    p_first = None
    for version in range(1, 4):
        source.request(inp, version, "b")
        with qtbot.waitSignal(source.suggested, timeout=3000):
            engine.answer(engine.asked[-1][0], fixed(inp), SURE)
        if p_first is None:
            p_first = seen.log[-1][3]
        source.outcome(version, accepted=False)
    assert source.recent.rejects == 3
    source.request(inp, 4, "b")
    with qtbot.waitSignals([source.declined], timeout=3000):
        engine.answer(engine.asked[-1][0], fixed(inp), {"margin_mean": 0.7, "margin_min": 0.3})
    source.outcome(4, accepted=True)  # nothing was shown for 4: no record
    assert log.flush(timeout=120)
    events = [(r.event, r.features.recent_rejects) for r in log.read()]
    assert events == [
        ("shown", 0),
        ("rejected", 0),
        ("shown", 1),
        ("rejected", 1),
        ("shown", 2),
        ("rejected", 2),
    ]
    assert seen.log[2][3] < p_first  # the third showing, after two rejects


def test_engine_errors_and_engines_without_next_edit_decline(rig: Any, qtbot: QtBot) -> None:
    engine, source, seen, _ = rig
    source.request(at(), 1, "b")
    with qtbot.waitSignal(source.declined, timeout=3000):
        engine.next_edit_error.emit(engine.asked[0][0], "the engine stopped")
    assert seen.log[-1] == ("declined", 1, "engine: the engine stopped", "b")
    engine.fail = NotImplementedError()
    with qtbot.waitSignal(source.declined, timeout=3000):
        source.request(at(), 2, "b")
    assert seen.log[-1] == ("declined", 2, "this engine cannot predict edits", "b")


def test_judge_is_pure_and_reports_its_features() -> None:
    inp = at()
    got = judge(inp, fixed(inp), finished=True, metrics=SURE, recent_rejects=0)
    assert got.suggestion is not None and got.reason == ""
    assert got.features == Features(0.95, 0.8, 2 + 6, 1, "replacement", False, 0)
    refused = judge(inp, inp.region, finished=True, metrics=SURE, recent_rejects=0)
    assert (refused.suggestion, refused.reason, refused.features) == (None, "no_change", None)


def test_sources_follow_the_engine_and_take_the_refit_gate(qtbot: QtBot, tmp_path: Path) -> None:
    from forecode_core.next_edit.acceptance import MIN_RECORDS

    log = OutcomeLog(tmp_path / "o.jsonl")
    for i in range(MIN_RECORDS * 2):  # this user takes only tiny edits
        f = Features(0.9, 0.7, 2 if i % 2 else 80, 1, "replacement", False, 0)
        log.record("accepted" if i % 2 else "rejected", f, probability=0.5)
    assert log.flush(timeout=120)
    engines: list[Engine | None] = [None]
    sources = ModelSources(lambda: engines[0], log=log)
    assert sources() is None
    qtbot.waitUntil(lambda: sources.gate is not PRIOR, timeout=5000)
    engines[0] = Engine()
    first = sources()
    assert first is not None and first is sources() and first.engine is engines[0]
    assert first.gate is sources.gate and first.gate.fitted_on == MIN_RECORDS * 2
    engines[0] = Engine()
    second = sources()
    assert second is not None and second is not first and second.engine is engines[0]
    log.close()


def test_the_owner_shows_what_the_source_suggests_and_tab_accepts_it(
    qtbot: QtBot, tmp_path: Path
) -> None:
    """The real next-edit owner with this source as its model (the engine scripted)."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QVBoxLayout, QWidget

    from app.ui.owners.documents import Documents
    from app.ui.owners.next_edit import NextEditController
    from app.ui.owners.workspace import Workspace
    from app.ui.picker import Picker
    from forecode_core.store.settings import Settings

    settings = Settings(completion_enabled=False, cloud_autostart=False)
    host = QWidget()
    qtbot.addWidget(host)
    workspace = Workspace(lambda: (), Picker(host), host)
    workspace.open(tmp_path)
    docs = Documents(lambda: settings, workspace, host)
    QVBoxLayout(host).addWidget(docs.tabs)
    engine = Engine()
    sources = ModelSources(lambda: engine)
    ctl = NextEditController(lambda: settings, docs, workspace, model=sources, parent=host)
    host.show()
    (tmp_path / "a.py").write_text(TEXT, encoding="utf-8")
    doc = docs.open_file(tmp_path / "a.py")
    assert doc is not None
    ed = doc.editor
    ed.gotoPos(TEXT.index("handle:") + 6)
    ed.focus()
    ctl.predict_now()
    qtbot.waitUntil(lambda: bool(engine.asked), timeout=3000)
    rid, inp = engine.asked[-1]
    engine.answer(rid, fixed(inp), SURE)
    qtbot.waitUntil(lambda: ctl.buffer_session(doc).shown is not None, timeout=3000)
    before = ed.text()
    qtbot.keyClick(ed, Qt.Key.Key_Tab)  # jump to the edit's line
    if ed.text() == before:
        qtbot.keyClick(ed, Qt.Key.Key_Tab)  # accept
    assert ed.text() == TEXT.replace("json.load(fh)", "json.load(handle)")
    ctl.shutdown()
