"""Related files in the editor: the files that usually change together with the current one
(issue 15), from the open folder's git history.

``RelatedFiles`` keeps the co-change table (``forecode_core.next_edit.related.CoChange``) of the
workspace's repository. Git runs on a thread of its own only (``forecode-related``, one per
window, so a slow history never holds one of the shared pool's threads: on two cores there
are two; ``app.services.related_history``: at most 2,000 commits, a deadline and a byte
cap); the UI thread asks the finished table, which costs a dictionary lookup. Results carry
a generation: a result for an older folder or an older request is dropped.

- **Refresh.** A folder opened reads its history. ``check_head`` (the window calls it when it
  becomes active and after a save: cheap) asks ``git rev-parse HEAD`` on the worker; when HEAD
  moved, only the new commits are learned (``update_related`` on a copy of the table, which
  replaces the shown one when done); a rewritten history (rebase, amend, reset) is read again.
  A check while a read runs waits for it and runs after it.
- **States** (``RelatedState``): ``loading``, ``ready``, ``partial`` (the history is too big
  for the deadline or the byte cap: the newest commits read are used, and the message says
  so), ``empty`` (no commits yet), ``not_repo`` ("not a git repository"), ``no_git`` ("git is
  not installed"), ``no_folder``, ``failed``. ``related`` answers [] in every state without a
  table; ``state_changed`` says when it changes, with a sentence. ``partial`` and ``failed``
  also go to the status bar (``message``); a folder without git or commits is normal and
  says nothing.
- **Paths.** The table holds paths relative to the repository's top level; the workspace
  may be a folder inside it. ``related(path)`` takes and gives workspace-relative POSIX paths
  (the ones quick open, chat and the completion context use) and leaves out files outside the
  workspace.
- **Excerpts.** ``set_current(path)`` also reads the current file's top related files
  (``SOURCE_FILES`` of them, each at most ``MAX_SOURCE_BYTES``, never binary; an open buffer's
  text rather than the disk's) on the worker, and indexes their definitions
  (``forecode_core.next_edit.related_context.RelatedSource``). ``excerpts_for(path, text,
  caret, budget_chars)`` then chooses, on the UI thread and without reading anything, the
  parts of them that matter at the caret: the next-edit input's ``related`` excerpts. An
  edit to an open related buffer is seen at the next ``set_current`` or save.
- ``cancel``/``shutdown`` stop a git run at once (it is killed with its process group).

The rules count only relations with at least one shared commit: a "related" mark in quick
open means the two files did change together. Confidence is the share of this file's
(recency-weighted) commits that also changed the other (ROSE's confidence).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import os
import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from app.services.git_status import git_executable, read_repo_info, run_git
from app.services.related_history import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_COMMITS,
    DEFAULT_TIMEOUT_S,
    HistoryResult,
    build_related,
    update_related,
)
from app.services.threads import SerialExecutor
from forecode_core.completion.prompt import Snippet
from forecode_core.next_edit.input import EditPair, RelatedExcerpt
from forecode_core.next_edit.related import CoChange, Params
from forecode_core.next_edit.related_context import FAR_LINES, RelatedSource, related_excerpts
from forecode_core.text.textfile import binary_by_name, read_text_file

from .editor import CodeEditor
from .owners.commands import Command

__all__ = ["MAX_SOURCE_BYTES", "SOURCE_FILES", "RelatedFiles", "RelatedState"]

SOURCE_FILES = 3  # related files read for excerpts
SOURCES_AFTER_MS = 250  # the current file's related sources are read this long after
MAX_SOURCE_BYTES = 512 * 1024
DEFAULT_K = 10
CACHED_K = 20  # answers kept per path, until the table changes
MAX_CACHED = 1024
COMPLETION_CHARS = 1200  # related excerpts in a completion prompt (about 300 tokens)


class RelatedState(StrEnum):
    NO_FOLDER = "no_folder"
    LOADING = "loading"
    READY = "ready"
    PARTIAL = "partial"  # the history was too big: its newest commits are used
    EMPTY = "empty"  # a repository without commits
    NOT_REPO = "not_repo"
    NO_GIT = "no_git"
    FAILED = "failed"


_FROM_HISTORY = {
    "ok": RelatedState.READY,
    "partial": RelatedState.PARTIAL,
    "empty": RelatedState.EMPTY,
    "not_repo": RelatedState.NOT_REPO,
    "no_git": RelatedState.NO_GIT,
}


@dataclass(frozen=True)
class _Table:
    model: CoChange
    head: str  # HEAD when it was read ("" unknown)
    since: str  # the newest commit learned ("" none)
    prefix: str  # the workspace's folder in the repository ("" at the top)
    state: RelatedState
    message: str
    # known paths (repository-relative) not in the working tree when the table was read: a
    # file deleted but not yet committed is never offered (a user run's chat chips offered
    # two deleted .pyc files)
    missing: frozenset[str] = frozenset()


@dataclass(frozen=True)
class _Unchanged:
    pass


@dataclass(frozen=True)
class _Sources:
    for_path: str
    sources: tuple[RelatedSource, ...]


class _Bridge(QObject):
    done = Signal(int, object)  # generation, result
    failed = Signal(int, str)


class _Job(QObject):
    """One cancellable job at a time on ``executor`` (``BackgroundTask``'s contract on a
    thread of our own): starting one cancels the previous; ``done``/``failed`` arrive on the
    UI thread, never for a job that was cancelled or replaced."""

    done = Signal(object)
    failed = Signal(str)

    def __init__(self, executor: SerialExecutor, parent: QObject) -> None:
        super().__init__(parent)
        self._executor = executor
        self._generation = 0
        self._cancel: threading.Event | None = None
        self._bridge = _Bridge(self)
        self._bridge.done.connect(self._deliver)
        self._bridge.failed.connect(self._fail)

    def start(self, fn: Callable[[threading.Event], object]) -> None:
        self.cancel()
        self._generation += 1
        generation = self._generation
        cancel = self._cancel = threading.Event()
        bridge = self._bridge

        def run() -> None:
            if cancel.is_set():
                return
            try:
                result = fn(cancel)
            except Exception as exc:  # reported to the UI, never raised on the thread
                with contextlib.suppress(RuntimeError):  # the window went away meanwhile
                    bridge.failed.emit(generation, f"{type(exc).__name__}: {exc}")
                return
            if not cancel.is_set():
                with contextlib.suppress(RuntimeError):
                    bridge.done.emit(generation, result)

        with contextlib.suppress(RuntimeError):  # shut down: the window is closing
            self._executor.submit(run)

    def cancel(self) -> None:
        if self._cancel is not None:
            self._cancel.set()
            self._cancel = None

    def _deliver(self, generation: int, result: object) -> None:
        if generation == self._generation and self._cancel is not None:
            self.done.emit(result)

    def _fail(self, generation: int, message: str) -> None:
        if generation == self._generation and self._cancel is not None:
            self.failed.emit(message)


class RelatedFiles(QObject):
    """The related-files table of the open folder. ``buffer_text(path)``: the open buffer's
    text of a file (an absolute, resolved path; None when it is not open), read on the UI
    thread."""

    changed = Signal()  # a new table (or none): ask ``related`` again
    state_changed = Signal(str, str)  # RelatedState, a sentence about it
    sources_changed = Signal()  # the excerpts' sources for the current file were read
    message = Signal(str, int)

    def __init__(
        self,
        buffer_text: Callable[[Path], str | None] | None = None,
        parent: QObject | None = None,
        *,
        params: Params | None = None,
        max_commits: int = DEFAULT_MAX_COMMITS,
        timeout: float = DEFAULT_TIMEOUT_S,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        super().__init__(parent)
        self._buffer_text = buffer_text
        self._params = params
        self._limits = (max_commits, timeout, max_bytes)
        self.root: Path | None = None
        self.state = RelatedState.NO_FOLDER
        self.state_message = "no folder is open"
        self._table: _Table | None = None
        self._answers: dict[str, list[tuple[str, float]]] = {}  # for ``_answers_of``
        self._answers_of: _Table | None = None
        self._busy = False
        self._check_pending = False
        self._executor = SerialExecutor("forecode-related")
        self._history = _Job(self._executor, self)
        self._history.done.connect(self._on_history)
        self._history.failed.connect(self._on_history_failed)
        self._current: str | None = None
        self._sources: dict[str, RelatedSource] = {}
        self._reader = _Job(self._executor, self)
        self._reader.done.connect(self._on_sources)
        # The current file's related sources are read a pause after it becomes current: the
        # reading (a worker parsing a few files) ran beside the new tab's first paint and
        # made it ~3 ms slower, and Ctrl+Tab through tabs read each one's for nothing.
        self._sources_soon = QTimer(self)
        self._sources_soon.setSingleShot(True)
        self._sources_soon.setInterval(SOURCES_AFTER_MS)
        self._sources_soon.timeout.connect(self._read_sources)

    def commands(self) -> list[Command]:
        return [
            Command(
                "relatedFiles.refresh",
                "Related Files: Read the Git History Again",
                "",
                self.reload,
            )
        ]

    # ----- the folder and its history --------------------------------------------------------
    def set_root(self, root: str | os.PathLike[str] | None) -> None:
        """The open folder (None: none); its history is read on the worker."""
        self.root = Path(root).resolve() if root is not None else None
        self._table = None
        self._sources = {}
        self._reader.cancel()
        self.changed.emit()
        if self.root is None:
            self._history.cancel()
            self._busy = False
            self._set_state(RelatedState.NO_FOLDER, "no folder is open")
            return
        self.reload()

    def reload(self) -> None:
        """Read the whole history again (a new folder, or the user asked)."""
        if self.root is None:
            return
        self._set_state(RelatedState.LOADING, "reading the git history")
        self._start(None)

    def check_head(self) -> None:
        """Cheap: learn the new commits when HEAD moved (after a save, on focus)."""
        if self.root is None or self._table is None:
            return
        if self._busy:
            self._check_pending = True
            return
        self._start(self._table)

    def _start(self, table: _Table | None) -> None:
        root = self.root
        assert root is not None
        params = self._params
        max_commits, timeout, max_bytes = self._limits
        self._busy = True
        self._check_pending = False

        def job(cancel: threading.Event) -> _Table | _Unchanged | None:
            if table is not None:
                return _update(table, root, cancel, self._limits)
            return _build(root, params, cancel, (max_commits, timeout, max_bytes))

        self._history.start(job)

    def _on_history(self, result: object) -> None:
        self._busy = False
        if isinstance(result, _Table):
            self._table = result
            self._set_state(result.state, result.message)
            self.changed.emit()
            self._read_sources()
        elif result is None:  # rewritten history: read it again
            self.reload()
            return
        if self._check_pending:
            self.check_head()

    def _on_history_failed(self, message: str) -> None:
        self._busy = False
        self._set_state(RelatedState.FAILED, f"reading the git history failed: {message}")

    def _set_state(self, state: RelatedState, message: str) -> None:
        if (state, message) != (self.state, self.state_message):
            self.state = state
            self.state_message = message
            self.state_changed.emit(str(state), message)
            if state in (RelatedState.PARTIAL, RelatedState.FAILED):  # worth a status line
                self.message.emit(f"Related files: {message}", 10000)

    def cancel(self) -> None:
        """Stop a git run now (killed); the table shown stays."""
        self._history.cancel()
        self._reader.cancel()
        self._busy = False
        self._check_pending = False

    def shutdown(self) -> None:
        self._sources_soon.stop()
        self.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)

    # ----- asking ------------------------------------------------------------------------------
    def related(self, path: str, k: int = DEFAULT_K) -> list[tuple[str, float]]:
        """The files (workspace-relative) that usually change with ``path``, most likely
        first, with their confidence (0..1); [] without a table."""
        table = self._table
        if table is None or not path:
            return []
        if k > CACHED_K:
            return _answer(table, path, k)
        if table is not self._answers_of or len(self._answers) > MAX_CACHED:
            self._answers_of = table
            self._answers = {}
        answer = self._answers.get(path)
        if answer is None:  # a file changed with thousands of others costs milliseconds
            answer = self._answers[path] = _answer(table, path, CACHED_K)
        return answer[:k]

    def related_paths(self, path: str) -> list[str]:
        """``related_if_current`` without the confidences (the completion context's)."""
        return [other for other, _ in self.related_if_current(path)]

    def current_related(self) -> list[tuple[str, float]]:
        """``related`` for the current file (``set_current``)."""
        return self.related(self._current, DEFAULT_K) if self._current else []

    def related_if_current(self, path: str) -> list[tuple[str, float]]:
        """``related`` when ``path`` is the current file's workspace path, else [] (a file
        outside the folder is named by its bare name elsewhere, which could name another)."""
        return self.current_related() if path and path == self._current else []

    # ----- excerpts for the next-edit input --------------------------------------------------
    def set_current(self, path: Path | None) -> None:
        """The current file (None: none, or a file outside the folder): its related files
        are read for ``excerpts_for`` on the worker."""
        self._current = self.relative(path)
        self._sources_soon.start()

    def relative(self, path: Path | None) -> str | None:
        """``path`` relative to the folder (POSIX), None outside it."""
        if path is None or self.root is None:
            return None
        try:
            return path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            return None

    def file_saved(self) -> None:
        """A save: HEAD may have moved (a commit from a terminal shows at the next save or
        focus) and a related file's text changed."""
        self.check_head()
        self._read_sources()

    def _read_sources(self) -> None:
        path, root = self._current, self.root
        if not path or root is None:
            self._reader.cancel()
            return
        wanted = [p for p, _ in self.related(path, SOURCE_FILES)]
        if not wanted:
            self._reader.cancel()
            self._sources = {}
            return
        open_texts = {p: t for p in wanted if (t := self._text_of(root / p)) is not None}

        def job(cancel: threading.Event) -> _Sources:
            found: list[RelatedSource] = []
            for rel in wanted:
                if cancel.is_set():
                    break
                text = open_texts.get(rel)
                if text is None:
                    text = _read_source(root / rel)
                if text is not None:
                    found.append(RelatedSource.of(rel, text))
            return _Sources(path, tuple(found))

        self._reader.start(job)

    def _text_of(self, path: Path) -> str | None:
        return self._buffer_text(path) if self._buffer_text is not None else None

    def _on_sources(self, result: object) -> None:
        assert isinstance(result, _Sources)
        self._sources = {source.path: source for source in result.sources}
        self.sources_changed.emit()

    def excerpts_for(
        self,
        path: str,
        text: str,
        caret: int,
        budget_chars: int,
        recent: Sequence[EditPair] = (),
    ) -> tuple[RelatedExcerpt, ...]:
        """Excerpts of the related files of ``path`` (the current file's workspace path: any
        other gets none) for a caret at offset ``caret`` of ``text``, within ``budget_chars``
        characters: the wanted definitions (the names near the caret and in ``recent``, the
        input's edit pairs), then the files' heads (``forecode_core.next_edit
        .related_context``). Only files already read (``set_current``) count: this never
        reads a file or runs git."""
        sources = [
            source
            for rel, _ in self.related_if_current(path)[:SOURCE_FILES]
            if (source := self._sources.get(rel)) is not None
        ]
        if not sources or budget_chars <= 0:
            return ()
        return related_excerpts(sources, text, caret, budget_chars, recent)

    def completion_snippets(
        self,
        path: str,
        editor: CodeEditor,
        skip: Collection[str] = (),
        budget_chars: int = COMPLETION_CHARS,
    ) -> list[Snippet]:
        """``excerpts_for`` the caret of ``editor`` (``path``'s), as the completion prompt's
        ``retrieved`` snippets (code that matters at the caret, the first to give way to the
        budget), leaving out files in ``skip`` (the open tabs already sent). Reads only the
        lines whose names are wanted (``FAR_LINES`` each side of the caret) from the editor."""
        if not self._sources or budget_chars <= 0:
            return []
        line = editor.lineFromPosition(editor.currentPos())
        first = max(0, line - FAR_LINES)
        last = min(editor.lineCount() - 1, line + FAR_LINES)
        start = editor.positionFromLine(first)
        window = _decoded(editor, start, editor.lineEndPosition(last))
        caret = len(_decoded(editor, start, editor.currentPos()))
        excerpts = self.excerpts_for(path, window, caret, budget_chars)
        return [
            Snippet(e.path, e.text, e.start_line + 1, "retrieved")
            for e in excerpts
            if e.path not in skip
        ]


def _decoded(editor: CodeEditor, start: int, end: int) -> str:
    return bytes(editor.textRange(start, end).data()).decode("utf-8", "replace")


# ----- the worker's side (no Qt) ---------------------------------------------------------------


def _answer(table: _Table, path: str, k: int) -> list[tuple[str, float]]:
    prefix = table.prefix + "/" if table.prefix else ""
    ask = k if not prefix else 4 * k + 20  # files outside the folder are left out
    out = [
        (item.path[len(prefix) :], item.confidence)
        for item in table.model.related(prefix + path, ask + len(table.missing))
        if item.path.startswith(prefix) and item.path not in table.missing
    ]
    return out[:k]


def _missing(model: CoChange, root: Path, prefix: str) -> frozenset[str]:
    """The known paths of the workspace's folder never offered: not files in it now (on the
    worker: a stat each), or compiled/binary by their name (``binary_by_name``: a user run's
    chat offered ``@__init__.cpython-311.opt-1.pyc`` of a repository that had committed its
    ``__pycache__``)."""
    lead = prefix + "/" if prefix else ""
    return frozenset(
        path
        for path in model.known_paths()
        if path.startswith(lead)
        and (binary_by_name(path) or not (root / path[len(lead) :]).is_file())
    )


def _read_source(path: Path) -> str | None:
    try:
        if not path.is_file() or path.stat().st_size > MAX_SOURCE_BYTES:
            return None
        decoded, _raw = read_text_file(path)
    except OSError:
        return None
    return None if decoded.read_only_reason else decoded.text


def _head(root: Path, cancel: threading.Event, timeout: float) -> str:
    try:
        out = run_git(
            ["rev-parse", "--verify", "-q", "HEAD"],
            root,
            timeout=timeout,
            max_bytes=1 << 12,
            abort=cancel,
        )
    except OSError:
        return ""
    return out.stdout.decode("ascii", "replace").strip() if out.returncode == 0 else ""


def _table_of(model: CoChange, history: HistoryResult, head: str, prefix: str) -> _Table:
    state = _FROM_HISTORY.get(history.state, RelatedState.FAILED)
    since = history.commits[-1].sha if history.commits else ""
    message = history.message
    if state == RelatedState.READY:
        message = f"{model.commits_seen} commits read"
        if model.commits_skipped:
            message += f" ({model.commits_skipped} with more than {model.params.max_files} "
            message += "files not counted)"
    return _Table(model, head, since, prefix, state, message)


def _build(
    root: Path,
    params: Params | None,
    cancel: threading.Event,
    limits: tuple[int, float, int],
) -> _Table:
    max_commits, timeout, max_bytes = limits
    if git_executable() is None:
        return _Table(CoChange(params), "", "", "", RelatedState.NO_GIT, "git is not installed")
    repo = read_repo_info(root, timeout=timeout, abort=cancel)
    if repo is None:
        return _Table(CoChange(params), "", "", "", RelatedState.NOT_REPO, "not a git repository")
    head = _head(root, cancel, timeout)
    model, history = build_related(
        root,
        params,
        max_commits=max_commits,
        timeout=timeout,
        max_bytes=max_bytes,
        abort=cancel,
    )
    table = _table_of(model, history, head, repo.prefix)
    return dataclasses.replace(table, missing=_missing(model, root, repo.prefix))


def _update(
    table: _Table, root: Path, cancel: threading.Event, limits: tuple[int, float, int]
) -> _Table | _Unchanged | None:
    """The table with the commits after ``table.since``; ``_Unchanged`` when HEAD has not
    moved; None when the history was rewritten (read it all again)."""
    max_commits, timeout, max_bytes = limits
    head = _head(root, cancel, timeout)
    if head == table.head or cancel.is_set():
        return _Unchanged()
    if not table.since or not head:
        return None
    model = copy.deepcopy(table.model)  # the shown table is read on the UI thread meanwhile
    history = update_related(
        model,
        root,
        table.since,
        max_commits=max_commits,
        timeout=timeout,
        max_bytes=max_bytes,
        abort=cancel,
    )
    if history.state == "rewritten" or history.state not in ("ok", "partial"):
        return None
    since = history.commits[-1].sha if history.commits else table.since
    missing = _missing(model, root, table.prefix)
    return _Table(model, head, since, table.prefix, table.state, table.message, missing)
