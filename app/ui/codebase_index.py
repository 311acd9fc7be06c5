"""``CodebaseIndex``: the open folder's codebase index, synced in the background (issue 6).

One per open workspace folder. It owns one worker thread, and that thread owns everything slow
or not thread-safe: the workspace key (read from or created in the ``TokenStore``: the OS
keyring, or its encrypted file), the ``IndexSync`` engine (``cloud_client.index_sync``), its
gRPC channel and the embedding process (``EmbedWorker``: all-MiniLM-L6-v2 through llama.cpp,
at nice +10). The UI thread only posts requests and receives signals; it never waits.

Life of a sync
    ``start()`` queues the first sync. ``notify_changed()`` (a save in the editor, a change the
    folder watcher saw) restarts a debounce timer (``debounce_ms``, 2 s); when it fires, a sync
    is queued. Requests coalesce: one sync runs at a time, and a request that arrives while
    one runs makes exactly one more run after it. A sync that fails because the service is
    unreachable sets the state "offline" and is retried after a backoff (doubling up to
    ``retry_max_s``) or on the next change, whichever comes first.

Search
    ``search()`` implements ``forecode_core.index.codebase.CodebaseSearch``: it blocks its caller (a
    chat or completion worker thread, never the UI thread), queues the query to the index
    thread and waits for the answer. A running sync is pre-empted: it stops at its next check
    (between files, embedding batches, upload messages), the search runs, and the sync
    resumes at once (IndexSync keeps the embeddings it computed and the service keeps the
    chunks it received, so nothing is done twice). A search before the first commit, or while
    the service is down, raises ``CodebaseUnavailable`` with the reason in words.

Keys and state
    The workspace key is the ``TokenStore`` entry ``index-key:<sha256 of the folder path>`` in
    ``export_key``'s text form; it is made on first use and is never logged, shown or written
    anywhere else (the status tooltip names only its public ``key_id``). ``copy_key`` hands it
    to the UI for the clipboard (for a teammate); ``import_key`` replaces it and starts a fresh
    tree id. The tree id (16 random bytes, not secret) is kept in the editor's data folder
    (``<data>/codebase-index/<first 16 hex of sha256(folder)>.json``) with the key id, so a
    restart resumes the same remote tree.

``close()`` cancels, closes the channel (a call blocked on the network fails at once), joins
the thread and stops the embedding process.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from app.services.threads import UiThread
from forecode_core.index.codebase import (
    CodebaseUnavailable,
    CodeHit,
    SyncSchedule,
    SyncStage,
    sync_failure_state,
)
from forecode_core.index.progress import PassCount
from forecode_core.states import IndexState
from forecode_core.store.atomic import atomic_write
from forecode_core.store.private import PRIVATE_FILE, private_folder
from forecode_core.store.settings import data_dir

__all__ = ["CodebaseIndex", "IndexStatus", "key_name", "state_path"]

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 0.1  # at most ten status updates a second reach the UI


def _folder_digest(folder: Path) -> str:
    resolved = os.path.normcase(str(folder.resolve()))
    return hashlib.sha256(resolved.encode("utf-8", "surrogatepass")).hexdigest()


def key_name(folder: str | os.PathLike[str]) -> str:
    """The ``TokenStore`` name of ``folder``'s workspace key."""
    return "index-key:" + _folder_digest(Path(folder))


def state_path(folder: str | os.PathLike[str], base: Path | None = None) -> Path:
    """Where ``folder``'s tree id is kept (no secret in it)."""
    base = data_dir() / "codebase-index" if base is None else base
    return base / f"{_folder_digest(Path(folder))[:16]}.json"


@dataclass(frozen=True)
class IndexStatus:
    """What the status bar shows: ``state`` the index's ``IndexState``; ``text`` the slot's
    words; ``detail`` the tooltip."""

    state: IndexState
    text: str
    detail: str = ""
    done: int = 0
    total: int = 0


@dataclass
class _Search:
    query: str
    top_k: int
    done: threading.Event = field(default_factory=threading.Event)
    hits: list[CodeHit] | None = None
    error: str = ""
    abandoned: bool = False


class CodebaseIndex(QObject):
    """See the module docstring. Signals arrive on the UI thread."""

    status_changed = Signal(object)  # IndexStatus
    synced = Signal(object)  # SyncReport of each sync that finished
    key_copied = Signal(str)  # the exported key, for the clipboard (never logged)
    message = Signal(str)  # one-off news for the status bar ("key imported", errors)

    def __init__(
        self,
        folder: str | os.PathLike[str],
        target: str,
        token: str,
        *,
        token_store: Any = None,
        state_dir: Path | None = None,
        embedder_factory: Callable[[], Any] | None = None,
        debounce_ms: int = 2000,
        retry_s: float = 5.0,
        retry_max_s: float = 120.0,
        call_timeout_s: float = 20.0,
        sync_attempts: int = 2,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.folder = Path(folder).resolve()
        self._target = target
        self.__token = token
        self._token_store = token_store
        self._state_file = state_path(self.folder, state_dir)
        self._embedder_factory = embedder_factory
        self._call_timeout_s = call_timeout_s
        self._sync_attempts = sync_attempts
        self.status = IndexStatus(IndexState.STARTING, "Index: starting…")
        self.last_report: Any = None  # the last SyncReport
        self.reports: list[Any] = []  # every SyncReport, oldest first
        # shared with the index thread, under _cond
        self._cond = threading.Condition()
        self._schedule = SyncSchedule.idle(retry_s, retry_max_s)  # replaced, never edited
        self._stopping = False
        self._searches: deque[_Search] = deque()
        self._commands: deque[Callable[[], None]] = deque()
        # owned by the index thread
        self._sync: Any = None  # IndexSync
        self._client: Any = None  # IndexSyncClient
        self._embedder: Any = None
        self._keys: Any = None  # WorkspaceKeys
        self._last_emit = 0.0
        # "Indexing n/m" of the pass running (index thread): a sync pre-empted by a search
        # starts again on what is left; the pass's count goes on (forecode_core.index.progress)
        self._pass = PassCount()
        self._thread: threading.Thread | None = None
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(debounce_ms)
        self._debounce.timeout.connect(self.sync_now)

    def __repr__(self) -> str:
        return f"CodebaseIndex({str(self.folder)!r}, state={self.status.state!r})"

    # ----- the UI thread's side ---------------------------------------------------------------
    def start(self) -> None:
        """Start the index thread and queue the first sync; returns at once."""
        if self._thread is not None:
            return
        self._thread = UiThread(target=self._run, name="forecode-codebase-index", daemon=True)
        with self._cond:
            self._schedule = self._schedule.requested()
        self._thread.start()

    def notify_changed(self, _path: str = "") -> None:
        """A file in the folder changed: sync after ``debounce_ms`` of quiet."""
        if not self._stopping:
            self._debounce.start()

    def sync_now(self) -> None:
        """Queue a sync (coalesced with one already queued or running)."""
        with self._cond:
            if self._stopping:
                return
            self._schedule = self._schedule.requested()
            self._cond.notify_all()

    def cancel(self) -> None:
        """Stop the running sync at its next check (no more chunks are embedded); the next
        change or ``sync_now`` resumes it."""
        self._debounce.stop()
        with self._cond:
            self._schedule = self._schedule.cancelled()
            self._cond.notify_all()

    def copy_key(self) -> None:
        """Ask for the workspace key in text form; it arrives through ``key_copied``."""
        self._post(lambda: self._emit(self.key_copied, self._export_key()))

    def import_key(self, text: str) -> None:
        """Replace the workspace key with a teammate's (``export_key`` text); a fresh tree id
        follows, then a full sync. A text that is not a key changes nothing (``message``)."""
        self._post(lambda: self._replace_key(text.strip()))

    def close(self, timeout: float = 5.0) -> None:
        """Cancel and close the channel; the thread then stops the embedding process and ends.
        Waits for it up to ``timeout`` seconds (0: not at all; it ends by itself within a
        batch of embeddings)."""
        self._debounce.stop()
        with self._cond:
            self._stopping = True
            self._schedule = self._schedule.closing()
            for job in self._searches:
                job.error = "the index was closed"
                job.done.set()
            self._searches.clear()
            self._cond.notify_all()
        client = self._client
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()  # a call blocked on the network fails now
        if self._thread is not None and timeout > 0:
            self._thread.join(timeout)
        self._set_status(IndexStatus(IndexState.STOPPED, "Index: stopped"))

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def embedded_total(self) -> int:
        """Chunks embedded so far by this index's sync engine (queries not counted)."""
        sync = self._sync
        return int(sync.embedded_total) if sync is not None else 0

    # ----- CodebaseSearch (any thread but the UI's) -------------------------------------------
    def search(
        self, query: str, *, top_k: int = 8, should_stop: Callable[[], bool] | None = None
    ) -> list[CodeHit]:
        """The ``top_k`` best chunks for ``query``
        (``forecode_core.index.codebase.CodebaseSearch``).
        Blocks until the index thread answers (pre-empting a running sync); never call it on
        the UI thread."""
        job = _Search(query, top_k)
        with self._cond:
            if self._stopping:
                raise CodebaseUnavailable("the codebase index is closed")
            if self.status.state is IndexState.OFFLINE:
                raise CodebaseUnavailable("the index service is offline")
            sync = self._sync
            if sync is None or sync.synced_root is None:
                raise CodebaseUnavailable("the index is still being built")
            self._searches.append(job)
            self._cond.notify_all()
        while not job.done.wait(0.05):
            if should_stop is not None and should_stop():
                with self._cond:
                    job.abandoned = True
                    with contextlib.suppress(ValueError):
                        self._searches.remove(job)
                raise CodebaseUnavailable("the search was cancelled")
        if job.hits is None:
            raise CodebaseUnavailable(job.error or "the index cannot answer")
        return job.hits

    # ----- the index thread ---------------------------------------------------------------------
    def _post(self, command: Callable[[], None]) -> None:
        with self._cond:
            if self._stopping:
                return
            self._commands.append(command)
            self._cond.notify_all()

    def _run(self) -> None:
        try:
            try:
                self._prepare()
            except Exception as exc:  # no key store, no channel: say so, keep the editor going
                log.warning("codebase index: cannot start: %s", type(exc).__name__)
                self._set_status(
                    IndexStatus(
                        IndexState.ERROR,
                        "Index: error",
                        f"The codebase index could not start: {exc}",
                    )
                )
                return
            while True:
                with self._cond:
                    while not self._stopping and not self._ready():
                        self._cond.wait(self._schedule.wait(time.monotonic()))
                    if self._stopping:
                        return
                    command = self._commands.popleft() if self._commands else None
                    search = (
                        self._searches.popleft() if command is None and self._searches else None
                    )
                    if command is None and search is None:
                        self._schedule = self._schedule.started()
                if command is not None:
                    self._guarded(command)
                elif search is not None:
                    self._answer(search)
                else:
                    self._run_sync()
        finally:
            self._shutdown()

    def _ready(self) -> bool:
        due = self._schedule.due(time.monotonic())
        return bool(self._commands or self._searches or due)

    def _guarded(self, command: Callable[[], None]) -> None:
        try:
            command()
        except Exception as exc:
            self._emit(self.message, f"Codebase index: {exc}")

    def _prepare(self) -> None:
        """The key, the tree id, the channel and the sync engine (on the index thread)."""
        from cloud_client.index_sync import IndexSyncClient

        self._client = IndexSyncClient(self._target, self.__token, timeout=self._call_timeout_s)
        if self._stopping:  # closed meanwhile: close() may have missed the client
            self._client.close()
        self._keys = self._load_keys()
        self._make_sync(self._tree_id())

    def _store(self) -> Any:
        if self._token_store is None:
            from cloud_client.tokens import TokenStore

            self._token_store = TokenStore()
        return self._token_store

    def _load_keys(self) -> Any:
        from forecode_core.index.crypto import (
            WorkspaceKeys,
            export_key,
            generate_workspace_key,
            import_key,
        )

        store = self._store()
        name = key_name(self.folder)
        text = store.get(name)
        if text is None:
            key = generate_workspace_key()
            store.set(name, export_key(key))
            log.info("codebase index: a new workspace key was made")
        else:
            key = import_key(text)
        return WorkspaceKeys(key)

    def _tree_id(self, fresh: bool = False) -> bytes:
        """The tree id kept for this folder and key; a new one when there is none, the key
        changed, or ``fresh``."""
        from cloud_client.index_sync import new_tree_id

        key_id = str(self._keys.key_id)
        if not fresh:
            try:
                state = json.loads(self._state_file.read_text("utf-8"))
                if state.get("key_id") == key_id:
                    tree_id = bytes.fromhex(state["tree_id"])
                    if len(tree_id) == 16:
                        return tree_id
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                pass
        tree_id = new_tree_id()
        private_folder(self._state_file.parent)
        atomic_write(
            self._state_file,
            json.dumps(
                {"folder": str(self.folder), "key_id": key_id, "tree_id": tree_id.hex()}, indent=1
            ).encode("utf-8"),
            mode=PRIVATE_FILE,
        )
        return tree_id

    def _make_sync(self, tree_id: bytes) -> None:
        from cloud_client.index_sync import IndexSync

        if self._embedder is None:
            if self._embedder_factory is not None:
                self._embedder = self._embedder_factory()
            else:
                from local_models.index.embed_client import EmbedWorker

                self._embedder = EmbedWorker(nice=10)
        self._sync = IndexSync(
            self.folder,
            self._keys,
            self._client,
            self._embedder,
            tree_id=tree_id,
            max_attempts=self._sync_attempts,
            backoff_s=(0.5, 2.0),
        )

    def _export_key(self) -> str:
        from forecode_core.index.crypto import export_key, import_key

        text = self._store().get(key_name(self.folder))
        if text is None:
            raise RuntimeError("this folder has no index key yet")
        export_key(import_key(text))  # checks it is one
        return str(text)

    def _replace_key(self, text: str) -> None:
        from forecode_core.index.crypto import WorkspaceKeys, export_key, import_key

        try:
            key = import_key(text)
        except ValueError:
            self._emit(self.message, "That is not a Forecode index key; the key was not changed.")
            return
        self._store().set(key_name(self.folder), export_key(key))
        self._keys = WorkspaceKeys(key)
        self._make_sync(self._tree_id(fresh=True))
        self._emit(self.message, "Index key imported; the folder is indexed again with it.")
        with self._cond:
            self._schedule = self._schedule.requested()

    def _progress(self, stage: SyncStage, done: int, total: int) -> None:
        if stage == SyncStage.EMBED:
            self._pass.report(done, total)
        now = time.monotonic()
        if (
            stage != SyncStage.DONE
            and now - self._last_emit < PROGRESS_EVERY_S
            and done not in (0, total)
        ):
            return
        self._last_emit = now
        words = {
            SyncStage.SCAN: "scanning files",
            SyncStage.RECONCILE: "comparing with the service",
            SyncStage.CHUNK: "reading changed files",
            SyncStage.CHECK: "asking which chunks are new",
            SyncStage.UPLOAD: "uploading",
        }
        if stage == SyncStage.EMBED:
            count = self._pass
            more = count.extra
            self._set_status(
                IndexStatus(
                    IndexState.INDEXING,
                    count.label,
                    "Embedding the changed code"
                    + (f" ({more} more chunks changed while indexing)" if more else "")
                    + " (click to cancel)",
                    count.done,
                    count.total + more,
                )
            )
        elif stage in words:
            self._set_status(
                IndexStatus(
                    IndexState.INDEXING,
                    "Indexing…",
                    f"Codebase index: {words[stage]} (click to cancel)",
                    done,
                    total,
                )
            )

    def _stop_check(self) -> bool:
        # a waiting search pre-empts the sync once there is a tree it can search
        return (
            self._stopping
            or self._schedule.user_cancel
            or (
                bool(self._searches)
                and self._sync is not None
                and self._sync.synced_root is not None
            )
        )

    def _run_sync(self) -> None:
        from cloud_client.index_sync import SyncCancelled, SyncError

        sync = self._sync
        outcome = IndexState.SYNCED
        try:
            report = sync.sync(progress=self._progress, cancelled=self._stop_check)
        except SyncCancelled:
            outcome = IndexState.CANCELLED
        except SyncError as exc:
            # offline, or full (the service's disk: retried like offline, search still works)
            outcome, error = sync_failure_state(exc.code, str(exc)), str(exc)
        except Exception as exc:  # the embedding process died, a bad folder...
            outcome, error = IndexState.ERROR, f"{type(exc).__name__}: {exc}"
        with self._cond:
            schedule, delay = self._schedule, self._schedule.retry_delay
            self._schedule = schedule.ended(outcome, time.monotonic(), closing=self._stopping)
            if schedule.preempted(outcome, closing=self._stopping):
                return  # pre-empted by a search: it resumes right after it (the same pass)
        self._pass = PassCount()  # the pass ended: the next sync counts anew
        if self._stopping:
            return
        if outcome is IndexState.SYNCED:
            self.last_report = report
            self.reports.append(report)
            self._set_status(self._synced_status(report))
            self._emit(self.synced, report)
        elif outcome is IndexState.CANCELLED:
            self._set_status(
                IndexStatus(
                    IndexState.CANCELLED,
                    "Index: cancelled",
                    "Indexing was cancelled; it resumes on the next change (or Codebase Index: "
                    "Sync Now)",
                )
            )
        elif outcome is IndexState.OFFLINE:
            log.info("codebase index: the service is unreachable; retry in %.0f s", delay)
            self._set_status(
                IndexStatus(
                    IndexState.OFFLINE,
                    "Index: offline, will retry",
                    f"The index service at {self._target} does not answer; retrying in "
                    f"{delay:.0f} s or on the next change",
                )
            )
        elif outcome is IndexState.FULL:
            log.warning("codebase index: the service's disk is full; retry in %.0f s", delay)
            self._set_status(
                IndexStatus(
                    IndexState.FULL,
                    "Index: service disk full",
                    f"{error[0].upper()}{error[1:]} Searches answer from the last synced index; "
                    f"retrying in {delay:.0f} s or on the next change",
                )
            )
        else:
            log.warning("codebase index: sync failed")
            self._set_status(
                IndexStatus(
                    IndexState.ERROR, "Index: error", f"The codebase index sync failed: {error}"
                )
            )

    def _synced_status(self, report: Any) -> IndexStatus:
        chunks: int | None = None
        with contextlib.suppress(Exception):
            chunks = int(self._sync.stats().tree_chunks)
        count = f"{chunks} chunks" if chunks is not None else "up to date"
        skipped = len(report.skipped)
        detail = (
            f"Codebase index of {self.folder.name}: {count}, synced with {self._target}; "
            f"key id {self._keys.key_id[:12]}"
        )
        if skipped:
            detail += f"; {skipped} files left out (ignored, secret or too big)"
        return IndexStatus(IndexState.SYNCED, f"Index: {count}, synced", detail)

    def _answer(self, job: _Search) -> None:
        from cloud_client.index_sync import SyncError

        if job.abandoned:
            return
        sync = self._sync
        try:
            if sync is None or sync.synced_root is None:
                raise CodebaseUnavailable("the index is still being built")
            results = sync.search(job.query, top_k=job.top_k)
            job.hits = [
                CodeHit(r.path, r.start_line, r.end_line, r.text, r.score)
                for r in results
                if not r.stale and r.text is not None
            ]
        except CodebaseUnavailable as exc:
            job.error = str(exc)
        except SyncError as exc:
            job.error = (
                "the index service is offline"
                if exc.code in ("UNAVAILABLE", "DEADLINE_EXCEEDED")
                else f"the index search failed: {exc}"
            )
        except Exception as exc:
            job.error = f"the index search failed: {type(exc).__name__}: {exc}"
        finally:
            job.done.set()

    def _set_status(self, status: IndexStatus) -> None:
        self.status = status
        self._emit(self.status_changed, status)

    @staticmethod
    def _emit(signal: Any, value: object) -> None:
        with contextlib.suppress(RuntimeError):  # the window is gone (closed while winding down)
            signal.emit(value)

    def _shutdown(self) -> None:
        for part in (self._client, self._embedder):
            if part is not None:
                with contextlib.suppress(Exception):
                    part.close()
