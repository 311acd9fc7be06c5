"""The idle collector (``app.services.gcpolicy``): the rule's decisions as a table with a fake
clock, the policy's collections on the real collector (a cycle frozen by a light collection is
freed by the deep one; memory stays bounded under repeated cyclic garbage), and the real driver
(``app.ui.gc_idle``) in a real window: no full collection while keys are typed, one at idle."""

from __future__ import annotations

import gc
import time
import weakref
from collections.abc import Iterator
from dataclasses import replace

import pytest
from pytestqt.qtbot import QtBot

from app.services.gcpolicy import OFF_THRESHOLD, Action, GcLog, GcPolicy, IdleRule, IdleState


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


RULE = IdleRule(
    idle_s=1.0,
    deep_idle_s=120.0,
    deep_every_s=300.0,
    deep_overdue_s=1800.0,
    overdue_idle_s=5.0,
    cap_pending=500,
)

# (seconds since input, since the last deep collection, window active, lights since the deep
#  one, pending young collections) -> action
DECISIONS = [
    (0.2, 10.0, True, 0, 3, Action.NONE),  # typing: nothing, however much is pending
    (0.2, 10.0, True, 0, 499, Action.NONE),
    (0.2, 10.0, True, 0, 500, Action.LIGHT),  # ... up to the cap: bounded memory
    (0.2, 4000.0, True, 5, 600, Action.LIGHT),  # overdue deep, but typing: light only
    (1.0, 10.0, True, 0, 0, Action.NONE),  # idle, nothing pending
    (1.0, 10.0, True, 0, 1, Action.LIGHT),  # idle, something pending
    (5.0, 400.0, True, 3, 1, Action.LIGHT),  # idle briefly: deep not yet (user still here)
    # Before 2026-12-05 23:04 (deep_idle_s 30) this was DEEP: 83-86 ms on the UI thread of a
    # user who was only reading (bench lsp --ui --ui-rounds 500, which sent no input events)
    (30.0, 400.0, True, 3, 0, Action.NONE),
    (30.0, 400.0, True, 3, 2, Action.LIGHT),
    (119.0, 400.0, True, 3, 2, Action.LIGHT),
    (120.0, 400.0, True, 3, 0, Action.DEEP),  # away from the desk, deep due
    (120.0, 200.0, True, 3, 2, Action.LIGHT),  # away, deep done recently
    (120.0, 400.0, True, 0, 0, Action.NONE),  # nothing happened since the last deep one
    (2.0, 400.0, False, 1, 0, Action.DEEP),  # window inactive: deep at once when due
    (2.0, 100.0, False, 1, 4, Action.LIGHT),  # inactive, deep recent: light
    (0.5, 400.0, False, 1, 4, Action.NONE),  # inactive but input just now: wait
    # overdue: only at a pause of overdue_idle_s, never at a 1-s breath (before: DEEP at 1.5 s)
    (1.5, 1800.0, True, 2, 0, Action.NONE),
    (4.9, 1800.0, True, 2, 1, Action.LIGHT),
    (5.0, 1800.0, True, 2, 0, Action.DEEP),
    (5.0, 1800.0, True, 0, 0, Action.NONE),  # overdue, but nothing collected since
]

# (since input, since deep, active) -> the path that fires (the bench's log: ``gc_deep_log``)
REASONS = [
    (2.0, 300.0, False, "inactive"),
    (120.0, 300.0, True, "away"),
    (5.0, 1800.0, True, "overdue"),
    (2.0, 1800.0, True, ""),
    (119.0, 1000.0, True, ""),
]


@pytest.mark.parametrize(("since_input", "since_deep", "active", "reason"), REASONS)
def test_the_rule_names_the_path_that_fires(
    since_input: float, since_deep: float, active: bool, reason: str
) -> None:
    now = 10_000.0
    state = IdleState(last_input=now - since_input, last_deep=now - since_deep, active=active)
    assert RULE.deep_reason(state, now) == reason


@pytest.mark.parametrize(
    ("since_input", "since_deep", "active", "lights", "pending", "action"), DECISIONS
)
def test_the_rule_decides(
    since_input: float, since_deep: float, active: bool, lights: int, pending: int, action: Action
) -> None:
    now = 10_000.0
    state = IdleState(
        last_input=now - since_input,
        last_deep=now - since_deep,
        active=active,
        lights_since_deep=lights,
    )
    assert RULE.decide(state, now, pending) is action


@pytest.fixture
def policy() -> Iterator[tuple[GcPolicy, _Clock]]:
    clock = _Clock()
    pol = GcPolicy(rule=RULE, clock=clock)
    before = gc.get_threshold()
    pol.install()
    try:
        yield pol, clock
    finally:
        pol.uninstall()
        gc.unfreeze()
        assert gc.get_threshold() == before


def _pend() -> None:
    """Enough surviving allocations for young collections to run (``gc.get_count()[2]`` > 0)."""
    keep = [[i] for i in range(20_000)]
    del keep
    for _ in range(3):
        gc.collect(1)


def test_install_turns_automatic_full_collections_off(policy: tuple[GcPolicy, _Clock]) -> None:
    pol, _clock = policy
    assert gc.get_threshold()[2] == OFF_THRESHOLD
    assert gc.get_threshold()[:2] == pol._thresholds[:2]  # type: ignore[index]
    assert gc.get_freeze_count() > 1000  # the start-up heap


def test_light_frees_new_cycles_and_deep_frees_frozen_ones(policy: tuple[GcPolicy, _Clock]) -> None:
    pol, clock = policy
    _pend()
    fresh = _Node()
    fresh_ref = weakref.ref(fresh)
    del fresh
    pol.note_input()
    assert pol.tick() is Action.NONE  # typing
    assert fresh_ref() is not None
    clock.now += 1.5
    assert pol.tick() is Action.LIGHT
    assert fresh_ref() is None  # made after the freeze: collected at idle

    frozen = _Node()
    frozen_ref = weakref.ref(frozen)
    _pend()
    clock.now += 0.1
    assert pol.tick() is Action.LIGHT  # ``frozen`` is alive: frozen with the survivors
    del frozen
    _pend()
    clock.now += 0.1
    assert pol.tick() is Action.LIGHT
    assert frozen_ref() is not None  # garbage now, but frozen: a light collection skips it
    clock.now += 400.0  # no input for minutes, deep due
    assert pol.tick() is Action.DEEP
    assert frozen_ref() is None
    assert pol.collections[Action.DEEP] == 1


@pytest.mark.parametrize(
    ("rule", "pause_s", "every"),
    [
        (RULE, RULE.deep_idle_s + 10.0, 3),  # a user who leaves the desk: deep every 300 s
        # a user who never leaves: the overdue path at 5-s pauses (overdue shortened to 100 s)
        (replace(RULE, deep_overdue_s=100.0), RULE.overdue_idle_s + 1.0, 11),
    ],
)
def test_memory_stays_bounded_under_repeated_cyclic_garbage(
    policy: tuple[GcPolicy, _Clock], rule: IdleRule, pause_s: float, every: int
) -> None:
    """Cycles made and dropped while typing (the cap), and cycles that live across a freeze and
    die later (the deep collections): the tracked objects do not grow with the rounds."""
    pol, clock = policy
    pol.rule = rule

    def round_() -> None:
        survivors = [_Node() for _ in range(2000)]  # alive across the next light collection
        for _ in range(20):
            pol.note_input()
            garbage = [_Node() for _ in range(1000)]
            del garbage
            pol.tick()  # typing: only the cap collects
            clock.now += 0.1
        clock.now += 2.0
        pol.tick()  # idle: light, freezes the survivors
        del survivors  # now frozen garbage
        clock.now += pause_s  # a pause
        pol.tick()

    def alive() -> int:
        return len(gc.get_objects()) + gc.get_freeze_count()

    round_()
    _pend()
    clock.now += 400.0
    assert pol.tick() is Action.DEEP
    start = alive()
    sizes = []
    for _ in range(21):
        round_()
        sizes.append(alive())
    _pend()
    clock.now += 400.0
    assert pol.tick() is Action.DEEP
    end = alive()
    assert pol.collections[Action.DEEP] >= 2 + 21 // every
    assert pol.collections[Action.LIGHT] >= 21
    # 21 rounds each dropped 22,000 cyclic objects, 2,000 of them frozen when they died:
    # between two deep collections at most ``every`` rounds' 2,000 wait; after one, none is left
    assert max(sizes) < start + every * 2000 + 1000, (start, sizes)
    assert end < start + 1000, (start, end)


def test_the_idle_collection_runs_at_idle_not_while_typing(qtbot: QtBot) -> None:
    """A real window and editor: keys typed 60 ms apart for over a second while cyclic garbage
    piles up (enough for the default thresholds to run full collections), then the user stops.
    By gc callbacks: no generation-2 collection on any thread while typing; one on the UI
    thread after ``idle_s`` without input, by the policy's tick."""
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from app.ui.gc_idle import start_gc_policy
    from app.ui.main_window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    doc = win.new_untitled()
    editor = doc.editor
    editor.focus()
    app = QApplication.instance()
    assert app is not None
    idle = start_gc_policy(app, GcPolicy(rule=IdleRule(idle_s=1.0)))
    assert idle is not None
    log = GcLog().install()
    kept: list[object] = []
    try:
        typing_from = time.perf_counter()
        for i in range(20):
            # at the window, as a user's key arrives (the policy watches windows, not widgets)
            QTest.keyClick(win.windowHandle(), (Qt.Key.Key_A, Qt.Key.Key_B)[i % 2])
            kept.extend(_Node() for _ in range(6000))  # survivors: young collections run
            kept = kept[-12000:]
            qtbot.wait(60)
        typing_to = time.perf_counter()
        qtbot.waitUntil(lambda: idle.policy.collections[Action.LIGHT] > 0, timeout=5000)
        done = time.perf_counter()
    finally:
        log.remove()
        idle.stop()
        gc.unfreeze()
    assert "abab" in editor.text()
    full = [c for c in log.collections if c.generation == 2]
    assert not [c for c in full if typing_from <= c.start_s <= typing_to], full
    at_idle = [c for c in full if typing_to < c.start_s <= done]
    assert at_idle and all(c.thread == "MainThread" for c in at_idle)
    assert at_idle[0].start_s - typing_to >= 0.8  # after the pause, not at the last key


def test_the_policy_sees_only_its_windows_events_not_every_objects(qtbot: QtBot) -> None:
    """The input filter sits on the top-level windows, not on the application: events sent to
    a widget (a timer's, a paint's, a layout's: hundreds a second) never run Python for the
    policy, while a key at the window does. An application filter made each of them take the
    GIL, which another thread's import held (``app.ui.gc_idle``'s docstring)."""
    from PySide6.QtCore import QEvent, Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication, QWidget

    from app.ui import gc_idle

    calls: list[QEvent.Type] = []

    class Counting(gc_idle.GcIdle):
        def eventFilter(self, watched: object, event: QEvent) -> bool:
            calls.append(event.type())
            return super().eventFilter(watched, event)  # type: ignore[arg-type]

    win = QWidget()
    qtbot.addWidget(win)
    child = QWidget(win)
    win.show()
    qtbot.waitExposed(win)
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    ticks = iter(range(1, 10_000))
    idle = Counting(app, GcPolicy(rule=IdleRule(idle_s=60.0), clock=lambda: float(next(ticks))))
    try:
        for _ in range(200):
            QApplication.sendEvent(child, QEvent(QEvent.Type.User))
        assert QEvent.Type.User not in calls
        before = idle.policy.state.last_input
        QTest.keyClick(win.windowHandle(), Qt.Key.Key_A)
        assert QEvent.Type.KeyPress in calls
        assert idle.policy.state.last_input > before  # the key told the policy
    finally:
        idle.stop()
        gc.unfreeze()
    calls.clear()
    QTest.keyClick(win.windowHandle(), Qt.Key.Key_B)
    assert not calls  # stop() took the filters off
