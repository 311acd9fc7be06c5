"""An update's start-up step (issue 18): what ``forecode_core.updates.start.decide_at_start``
decides, carried out on the install folder before Qt loads. Only the frozen app calls it
(``app.main``); it costs one ``stat`` when no update is pending and imports nothing heavy.

The swap stays inside the install folder: the old version's top-level entries (``forecode``,
``_internal``, ``BUILD.json``, ...) move into ``.update/previous`` and the staged ones into
their place, each a ``rename`` on one file system; if one fails the moves are undone and the
old version starts as it was. The new version counts its first start; if it does not reach
its first paint (``confirm_started``, called by the window's update owner) before the next
start, that start restores the old version, says why and never offers that version again.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from forecode_core.store.atomic import atomic_write
from forecode_core.updates.start import (
    Phase,
    StartAction,
    UpdateState,
    decide_at_start,
    state_from_json,
    state_to_json,
)

__all__ = [
    "StartOutcome",
    "apply_at_start",
    "confirm_started",
    "installed_version",
    "read_state",
    "run_at_start",
    "update_dir",
    "write_state",
]

EXECUTABLE = "forecode"


def update_dir(install: Path) -> Path:
    return install / ".update"


def installed_version(install: Path) -> str:
    """The version in the bundle's ``BUILD.json`` ("" when unreadable)."""
    try:
        return str(json.loads((install / "BUILD.json").read_bytes())["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def read_state(install: Path) -> UpdateState | None:
    try:
        return state_from_json((update_dir(install) / "state.json").read_bytes())
    except OSError:
        return None


def write_state(install: Path, state: UpdateState) -> None:
    update_dir(install).mkdir(exist_ok=True)
    atomic_write(update_dir(install) / "state.json", state_to_json(state))


@dataclass(frozen=True)
class StartOutcome:
    action: StartAction
    exec_path: Path | None = None  # start this executable instead (the swapped-in version)
    message: str = ""


def _entries(folder: Path) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n != ".update")


def _move_all(src: Path, dst: Path, done: list[tuple[Path, Path]]) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for name in _entries(src):
        os.rename(src / name, dst / name)
        done.append((src / name, dst / name))


def _undo(done: list[tuple[Path, Path]]) -> None:
    for src, dst in reversed(done):
        with contextlib.suppress(OSError):
            os.rename(dst, src)


def _swap_in(install: Path, incoming: Path, outgoing: Path) -> None:
    """Move the install's entries to ``outgoing`` and ``incoming``'s into the install; on any
    failure every move is undone and the error re-raised."""
    shutil.rmtree(outgoing, ignore_errors=True)
    done: list[tuple[Path, Path]] = []
    try:
        _move_all(install, outgoing, done)
        for name in _entries(incoming):
            os.rename(incoming / name, install / name)
            done.append((incoming / name, install / name))
        if not (install / EXECUTABLE).exists():
            raise OSError(f"the staged version has no {EXECUTABLE}")
    except OSError:
        _undo(done)
        raise


def _apply(install: Path, state: UpdateState, running: str) -> StartOutcome:
    staging = update_dir(install) / "staging" / state.version
    previous = update_dir(install) / "previous"
    try:
        if not staging.is_dir():
            raise OSError(f"the staged files are missing ({staging})")
        _swap_in(install, staging, previous)
    except OSError as exc:
        message = f"The update to {state.version} could not be applied ({exc}); nothing changed."
        write_state(install, _rolled_back(state, message))
        return StartOutcome(StartAction.ROLLBACK, message=message)
    write_state(install, state.with_phase(Phase.TRYING, from_version=running, attempts=0))
    shutil.rmtree(staging.parent, ignore_errors=True)
    return StartOutcome(StartAction.APPLY, exec_path=install / EXECUTABLE)


def _rolled_back(state: UpdateState, message: str) -> UpdateState:
    bad = tuple(dict.fromkeys((*state.bad_versions, state.version)))
    return state.with_phase(Phase.ROLLED_BACK, message=message, bad_versions=bad)


def _rollback(install: Path, state: UpdateState, running: str) -> StartOutcome:
    previous = update_dir(install) / "previous"
    failed = update_dir(install) / "failed"
    message = (
        f"Forecode {state.version} did not start; went back to "
        f"{state.from_version or 'the previous version'}."
    )
    if not previous.is_dir() or not _entries(previous):
        write_state(install, _rolled_back(state, message))
        return StartOutcome(StartAction.ROLLBACK, message=message)
    try:
        _swap_in(install, previous, failed)
    except OSError as exc:
        message = f"Forecode {state.version} did not start, and going back failed: {exc}"
        write_state(install, _rolled_back(state, message))
        return StartOutcome(StartAction.ROLLBACK, message=message)
    write_state(install, _rolled_back(state, message))
    shutil.rmtree(failed, ignore_errors=True)
    restart = install / EXECUTABLE if running == state.version else None
    return StartOutcome(StartAction.ROLLBACK, exec_path=restart, message=message)


def cleanup(install: Path) -> None:
    """The old version's files and any leftovers, once the new version showed its window."""
    for name in ("previous", "failed", "staging", "downloads"):
        shutil.rmtree(update_dir(install) / name, ignore_errors=True)


def apply_at_start(install: Path, running_version: str) -> StartOutcome:
    state = read_state(install)
    action = decide_at_start(state, running_version)
    if state is None or action is StartAction.NOTHING:
        return StartOutcome(StartAction.NOTHING)
    if action is StartAction.APPLY:
        return _apply(install, state, running_version)
    if action is StartAction.ATTEMPT:
        write_state(install, state.with_phase(Phase.TRYING, attempts=state.attempts + 1))
        return StartOutcome(action)
    if action is StartAction.ROLLBACK:
        return _rollback(install, state, running_version)
    cleanup(install)
    return StartOutcome(action)


def confirm_started(install: Path, running_version: str) -> bool:
    """The new version showed its window: the update is done (True when it was one)."""
    state = read_state(install)
    if state is None or state.phase is not Phase.TRYING or state.version != running_version:
        return False
    write_state(install, state.with_phase(Phase.DONE, attempts=0))
    cleanup(install)
    return True


def run_at_start(install: Path, argv: list[str]) -> None:
    """The frozen app's hook: apply / count / roll back, and start the right executable."""
    if not (update_dir(install) / "state.json").exists():
        return
    outcome = apply_at_start(install, installed_version(install))
    if outcome.message:
        print(f"forecode: {outcome.message}", flush=True)
    if outcome.exec_path is not None:
        os.execv(outcome.exec_path, [str(outcome.exec_path), *argv[1:]])
