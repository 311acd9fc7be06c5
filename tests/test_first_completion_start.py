"""Issue 18: the first completion after launch never waits for the models' measurement.

On a first run (no calibration cache) the editor used to measure every installed model in its
probe process and only then start the worker: the frozen app's first ghost text came 16-24 s
after launch on this 2-core machine, nearly all of it the measurement. Now the engine owner
starts the model chosen from what is known at once (the smallest file on a first run) and the
measurement runs once that model answers, on the real worker, probe and model here (Gemma 3
270M, the frozen app's bundled model); the measured pick then replaces it when it differs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from app.ui.owners.documents import Documents
from app.ui.owners.engine import EngineController
from app.ui.owners.workspace import Workspace
from app.ui.picker import Picker
from forecode_core.completion.prompt import CompletionInput
from forecode_core.store.settings import Settings
from local_models import calibrate
from local_models.model_store import MODELS, SMALL_MODEL, ensure_model


def _controller(qtbot: QtBot, settings: Settings) -> EngineController:
    """The engine owner as the window builds it, on a bare widget."""
    host = QWidget()
    qtbot.addWidget(host)
    workspace = Workspace(lambda: settings.files_exclude, Picker(host), host)
    return EngineController(lambda: settings, Documents(lambda: settings, workspace, host))


@pytest.mark.timeout(600)
def test_a_first_run_answers_from_the_small_model_before_measuring_it(
    qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    gemma = ensure_model(SMALL_MODEL)  # the real model (fails, never skips, when it is broken)
    monkeypatch.setattr(calibrate, "installed_models", lambda: [MODELS[SMALL_MODEL]])
    cache = calibrate.default_cache_path()  # the test's own data folder (conftest)
    assert not cache.exists()
    settings = Settings(completion_enabled=True, cloud_autostart=False)
    controller = _controller(qtbot, settings)
    statuses: list[str] = []
    controller.status.connect(lambda text, _tip: statuses.append(text))
    at_ready: list[tuple[bool, calibrate.Choice | None]] = []

    def on_engine() -> None:
        engine = controller.engine
        if engine is not None and engine.is_ready() and not at_ready:
            at_ready.append((cache.exists(), controller.model_choice))

    controller.engine_changed.connect(on_engine)
    # the window starts the chat service this way: after the completion model answers
    chat_started: list[bool] = []
    try:
        controller.start()
        controller.after_ready(
            lambda: chat_started.append(
                controller.engine is not None and controller.engine.is_ready()
            )
        )
        assert chat_started == []  # nothing answers yet: the service waits
        qtbot.waitUntil(lambda: bool(at_ready), timeout=300_000)
        qtbot.waitUntil(lambda: bool(chat_started), timeout=5_000)
        assert chat_started == [True]
        measured_before, choice = at_ready[0]
        assert not measured_before, "the model answered only after the measurement"
        assert choice is not None and choice.provisional and choice.path == str(gemma)
        assert "first run" in choice.measure_reason
        engine = controller.engine
        assert engine is not None
        # a completion from the real worker before the measurement (it waits
        # MEASURE_AFTER_READY_MS after READY: the first completions get the cores)
        answers: list[object] = []
        errors: list[str] = []
        engine.done.connect(lambda _rid, done: answers.append(done))
        engine.error.connect(lambda _rid, message: errors.append(message))
        prefix = "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return"
        engine.complete(CompletionInput("m.py", "python", prefix, "\n"), max_tokens=16)
        qtbot.waitUntil(lambda: bool(answers or errors), timeout=300_000)
        assert not errors and answers
        # then the measurement ends: the cache is written, the same model stays (no restart)
        qtbot.waitUntil(
            lambda: controller.model_choice is not None and not controller.model_choice.provisional,
            timeout=300_000,
        )
        final = controller.model_choice
        assert final is not None and final.measured and final.path == str(gemma)
        assert cache.exists()
        assert controller.engine is engine and engine.is_ready()
        # while it measured, the status bar named the model that answered
        assert any(s.startswith("●") and "measuring" in s for s in statuses), statuses
        assert "◌ Measuring models…" not in statuses, statuses
        assert chat_started == [True]  # once
    finally:
        controller.shutdown()
        controller.close_engine()


def test_the_provisional_choice_is_never_a_file_that_is_not_installed(tmp_path: Path) -> None:
    """A deferred call with nothing installed raises as before (the owner shows 'No model')."""
    with pytest.raises(RuntimeError, match="no completion model"):
        calibrate.load_or_run(500, cache_path=tmp_path / "c.json", models=[], defer=True)


def test_with_completions_off_the_chat_service_does_not_wait(qtbot: QtBot) -> None:
    settings = Settings(completion_enabled=False, cloud_autostart=False)
    controller = _controller(qtbot, settings)
    ran: list[int] = []
    controller.after_ready(lambda: ran.append(1))
    assert ran == [1]


def test_a_model_that_never_answers_holds_the_chat_service_only_until_the_timeout(
    qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No model could be chosen (nothing installed here): the service starts after the
    timeout all the same."""
    monkeypatch.setattr(calibrate, "installed_models", lambda: [])
    settings = Settings(completion_enabled=True, cloud_autostart=False)
    controller = _controller(qtbot, settings)
    ran: list[int] = []
    controller.start()
    controller.after_ready(lambda: ran.append(1), timeout_ms=300)
    assert ran == []
    qtbot.waitUntil(lambda: ran == [1], timeout=5_000)
    qtbot.wait(400)
    assert ran == [1]
    controller.shutdown()
