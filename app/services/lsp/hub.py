"""The LSP hub: every language server of a window on ONE worker thread with its own asyncio
loop (pygls is asyncio-only). The editor calls in from any thread and never waits: each call
posts work to the loop and returns; results come back through the callbacks given to the hub,
called on the hub's thread (``app.ui.lsp_bridge`` turns them into Qt signals).

Documents are routed by language id to the servers of ``forecode_core.lsp.servers``' table,
one process per (server, workspace root). The hub numbers each document's versions: ``open``
and ``change`` return the version they send, so the caller can drop results for older ones
as well (the hub already drops diagnostics older than the last change it sent)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import sys
import threading
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.services.threads import UiThread
from forecode_core.lsp.diagnostics import Diagnostic
from forecode_core.lsp.restart import ServerState
from forecode_core.lsp.servers import ServerSpec, ServerTable, missing_hint, servers_for

from .spawn import kill_group, start_process

if TYPE_CHECKING:  # imported on the hub's thread when a server starts: pygls and lsprotocol
    # take a second to import, which the editor's start-up does not wait for (issue 18)
    from .session import OpenDoc, Session

__all__ = ["GatedHub", "LspHub", "ServerStatus", "resolve_command"]

log = logging.getLogger(__name__)

GATE_MAX_S = 1.0  # the longest the hub's first work waits for its gate (``LspHub._first``)


@dataclass(frozen=True)
class ServerStatus:
    """A server's state change: ``server`` (its name), ``language``, ``state``, a message for
    the status bar ("" when there is nothing to say)."""

    server: str
    state: ServerState
    message: str


def resolve_command(argv: tuple[str, ...]) -> list[str] | None:
    """The argv with its program found: an absolute path as it is; a bare name in this
    interpreter's folder first (the servers installed with Forecode live beside its python),
    then on PATH. None when it is nowhere."""
    program = argv[0]
    if os.path.isabs(program):
        return list(argv) if os.access(program, os.X_OK) else None
    folders = [str(Path(sys.executable).parent), os.environ.get("PATH", "")]
    found = shutil.which(program, path=os.pathsep.join(folders))
    return [found, *argv[1:]] if found else None


class LspHub:
    """See the module docstring. ``on_diagnostics(uri, version, server, diagnostics)`` and
    ``on_status(ServerStatus)`` are called on the hub's thread."""

    _gate: threading.Event | None = None  # ``GatedHub``'s: the first work waits for it

    def __init__(
        self,
        on_diagnostics: Callable[[str, int | None, str, list[Diagnostic]], None],
        on_status: Callable[[ServerStatus], None],
        table: ServerTable = (),
        *,
        init_timeout_s: float = 60.0,
        request_timeout_s: float = 10.0,
        resolve: Callable[[tuple[str, ...]], list[str] | None] = resolve_command,
        tells_files: bool = False,
    ) -> None:
        self._on_diagnostics = on_diagnostics
        self._on_status = on_status
        self.table = table
        self.init_timeout_s = init_timeout_s
        self.request_timeout_s = request_timeout_s
        self._resolve = resolve
        self.tells_files = tells_files  # see ``files_changed``
        self._lock = threading.Lock()
        self._versions: dict[str, int] = {}  # by uri, numbered on the caller's thread
        self._docs: dict[str, tuple[OpenDoc, Path]] = {}  # loop thread only
        self._sessions: dict[tuple[str, Path], Session] = {}  # loop thread only
        self._missing: set[str] = set()  # servers already reported missing
        # Until ``_first`` has prepared the client's libraries, the callers' calls wait (in
        # order) in ``_held`` and their requests on ``_ready_event``; the servers of the
        # documents opened meanwhile (``_wanted``, under the lock) start at once (``_early``).
        self._ready = False
        self._ready_event = asyncio.Event()
        self._held: list[tuple[Callable[..., None], tuple[Any, ...]]] = []
        self._wanted: list[tuple[str, Path]] = []
        self._early: dict[tuple[str, Path], asyncio.Task[asyncio.subprocess.Process]] = {}
        self._loop = asyncio.new_event_loop()
        # the loop's first work, queued before any caller's (callbacks run in order)
        self._first_task = self._loop.create_task(self._first())
        self._thread = UiThread(target=self._run, name="forecode-lsp", daemon=True)
        self._thread.start()
        self._closed = False

    def _run(self) -> None:
        loop = self._loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:  # stopped by shutdown: what is left is killed and cancelled, then closed
            for session in self._sessions.values():
                session.abandon()
            self._drop_early()
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(asyncio.sleep(0.05))  # pipes' closing callbacks run
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _first(self) -> None:
        """The hub's first work: pygls, lsprotocol and cattrs imported and the converter's code
        generated with the GIL handed over every 0.1 ms (``warm.prepare``); a ``GatedHub``'s
        once its gate opens (at most ``GATE_MAX_S`` later): the editor's bridge opens it when
        the UI thread is free. A hub is made as the first file of a served language opens,
        while the window lays out and paints it; the import meanwhile, Python on this thread,
        made each of the UI thread's GIL takes wait: measured 2026-12-05 (``bench lsp --ui``
        in a fresh process, load 7-9), the first stall 49-82 ms at once, 10-23 ms when the
        same work started 150 ms later. Calls made meanwhile wait behind it, in order.

        The servers of the documents opened by then are started first (``spawn``): they
        boot (Node loads basedpyright, about a second) while this thread imports, where
        they used to start after it."""
        from .warm import prepare, prepared

        if self._gate is not None and not prepared():
            self._gate.wait(GATE_MAX_S)  # the loop waits: every call is held until ready
        try:
            started = self._start_early()
        except Exception:  # a head start only: the sessions start their own processes
            log.exception("language servers: starting them early failed")
            started = False
        if started:
            await asyncio.sleep(0)  # their first step: the processes are spawned
        try:
            prepare()
        except Exception:  # a broken install: the sessions' own imports report it
            log.exception("language servers: preparing the client failed")
        self._ready = True
        held, self._held = self._held, []
        for fn, args in held:
            self._call(fn, args)
        self._ready_event.set()
        self._drop_early()  # started for a document whose open then used other servers

    def _start_early(self) -> bool:
        """Start the processes of the servers the documents opened so far need (their
        sessions start later, on these processes); whether any was started."""
        with self._lock:
            wanted, self._wanted = self._wanted, []
        for language, root in dict.fromkeys(wanted):
            for spec in servers_for(language, self.table):
                key = (spec.name, root)
                argv = self._resolve(spec.command)
                if argv is not None and key not in self._early:
                    self._early[key] = self._loop.create_task(start_process(argv, str(root)))
        return bool(self._early)

    def _drop_early(self) -> None:
        """Kill the early processes no session took (a shutdown before they were used)."""
        early, self._early = self._early, {}
        for task in early.values():
            task.add_done_callback(_kill_started)

    def _call(self, fn: Callable[..., None], args: tuple[Any, ...]) -> None:
        """A caller's posted call, on the loop; held until the hub is ready. One that raises
        is logged: the calls behind it still run."""
        if not self._ready:
            self._held.append((fn, args))
            return
        try:
            fn(*args)
        except Exception:
            log.exception("language servers: %s failed", getattr(fn, "__name__", fn))

    async def _when_ready(self, coro: Coroutine[Any, Any, Any]) -> Any:
        try:
            if not self._ready:
                await self._ready_event.wait()
        except BaseException:  # cancelled by a shutdown before the hub was ready
            coro.close()
            raise
        return await coro

    def _submit(self, coro: Coroutine[Any, Any, Any]) -> Future[Any]:
        """``coro`` run on the hub's loop; once the hub is shut down (a late timer of a closing
        window) a future that has already failed, never an exception in the caller."""
        if not self._closed:
            try:
                return asyncio.run_coroutine_threadsafe(self._when_ready(coro), self._loop)
            except RuntimeError:  # the loop closed between the check and the call
                pass
        coro.close()
        failed: Future[Any] = Future()
        failed.set_exception(RuntimeError("the language servers are stopped"))
        return failed

    def _post(self, fn: Callable[..., None], *args: Any) -> None:
        if not self._closed:
            # RuntimeError: the loop closed between the check and the call
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._call, fn, args)

    def _next_version(self, uri: str, first: bool) -> int:
        with self._lock:
            version = 1 if first and uri not in self._versions else self._versions[uri] + 1
            self._versions[uri] = version
            return version

    # ----- the editor's calls (any thread; none waits) --------------------------------------
    def open(self, uri: str, language: str, text: str, root: Path) -> int:
        """Open a document (``language``: the editor's language id); its version."""
        version = self._next_version(uri, first=True)
        self._want(language, root)
        self._post(self._open_new, uri, language, version, text, root)
        return version

    def warm(self, language: str, root: Path) -> None:
        """Start ``language``'s servers for ``root`` before any of its documents opens (the
        folder has such files): the import, Node's boot and ``initialize`` are then done when
        the user opens one, as VS Code's Python extension starts for a folder that has them."""
        self._want(language, root)
        self._post(self._warm, language, root)

    def _want(self, language: str, root: Path) -> None:
        """Before the hub is ready: ``language``'s servers for ``root`` start early (``_first``)."""
        with self._lock:
            if not self._ready:
                self._wanted.append((language, root))

    def _warm(self, language: str, root: Path) -> None:
        for spec in servers_for(language, self.table):
            self._session(spec, root)

    def change(self, uri: str, text: str) -> int:
        """The document's whole new text (the change sent is incremental where the server
        takes it); the new version."""
        version = self._next_version(uri, first=False)
        self._post(self._change, uri, version, text)
        return version

    def set_table(self, table: ServerTable) -> None:
        """A new ``lsp.servers`` table: files opened from now on use it (open ones keep their
        servers until reopened)."""
        self._post(self._set_table, table)

    def _set_table(self, table: ServerTable) -> None:
        self.table = table
        self._missing.clear()

    def save(self, uri: str) -> None:
        self._post(self._save, uri)

    def files_changed(self, root: Path, changes: Sequence[tuple[str, int]]) -> None:
        """Files created (1), changed (2) or deleted (3) on disk under ``root`` (uri, kind),
        told to the servers rooted there (LSP's ``FileChangeType`` numbers). For a hub made
        with ``tells_files`` (the shadow's): its servers then rely on these events, not on a
        watcher of their own."""
        self._post(self._files_changed, root, list(changes))

    def close(self, uri: str) -> None:
        with self._lock:
            self._versions.pop(uri, None)
        self._post(self._close, uri)

    def version(self, uri: str) -> int | None:
        with self._lock:
            return self._versions.get(uri)

    def request(self, uri: str, server: str, method: str, params: Any) -> Future[Any]:
        """A request to one of the document's servers; the future (never waited on by the
        UI thread: add a done callback) fails when the server is not running or hung."""
        return self._submit(self._request(uri, server, method, params))

    def ask(self, uri: str, capability: str, method: str, params: Any) -> Future[Any]:
        """A request to the first of the document's running servers whose capabilities have
        ``capability`` (e.g. ``hover_provider``); the future fails with ``LookupError`` when
        none has."""
        return self._submit(self._ask(uri, capability, method, params))

    def call(self, fn: Callable[[], Any]) -> Future[Any]:
        """Run ``fn`` on the hub's thread (tests, and reading the sessions' state)."""

        async def run() -> Any:
            return fn()

        return self._submit(run())

    def shutdown(self, timeout_s: float = 3.0) -> None:
        """Stop every server (killed after ``timeout_s``) and the thread. Blocks at most about
        ``timeout_s``: the window calls it while closing."""
        if self._closed:
            return
        future = asyncio.run_coroutine_threadsafe(self._stop_all(timeout_s * 0.8), self._loop)
        self._closed = True
        try:
            future.result(timeout_s)
        except Exception as exc:  # a server that would not stop: the thread is a daemon
            log.warning("language servers did not stop in time: %s", exc)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout_s)

    # ----- the loop's side ------------------------------------------------------------------
    def sessions(self) -> list[Session]:
        """The sessions (call on the hub's thread, e.g. through ``call``)."""
        return list(self._sessions.values())

    def _session(self, spec: ServerSpec, root: Path) -> Session | None:
        from app.services.gcpolicy import freeze_after_import

        from .session import Session, SessionEvents

        freeze_after_import("lsp")  # pygls, lsprotocol, cattrs: long-lived, never garbage

        key = (spec.name, root)
        session = self._sessions.get(key)
        if session is not None:
            return session
        argv = self._resolve(spec.command)
        if argv is None:
            if spec.name not in self._missing:
                self._missing.add(spec.name)
                advice = missing_hint(spec, bool(getattr(sys, "frozen", False)))
                hint = f" ({advice})" if advice else ""
                self._status(
                    spec.name,
                    ServerState.MISSING,
                    f"Language server {spec.name} not found: {spec.command[0]} is not "
                    f"installed{hint}",
                )
            return None
        events = SessionEvents(self._on_diagnostics, self._status)
        session = Session(
            spec,
            argv,
            root,
            events,
            init_timeout_s=self.init_timeout_s,
            request_timeout_s=self.request_timeout_s,
        )
        session.tells_files = self.tells_files
        self._sessions[key] = session
        session.start(self._early.pop(key, None))
        return session

    def _status(self, server: str, state: ServerState, message: str) -> None:
        self._on_status(ServerStatus(server, state, message))

    def _sessions_of(self, uri: str) -> list[Session]:
        known = self._docs.get(uri)
        if known is None:
            return []
        doc, root = known
        found = (
            self._sessions.get((spec.name, root)) for spec in servers_for(doc.language, self.table)
        )
        return [s for s in found if s is not None]

    def _open_new(self, uri: str, language: str, version: int, text: str, root: Path) -> None:
        from .session import OpenDoc

        self._open(OpenDoc(uri, language, version, text), root)

    def _open(self, doc: OpenDoc, root: Path) -> None:
        self._docs[doc.uri] = (doc, root)
        for spec in servers_for(doc.language, self.table):
            session = self._session(spec, root)
            if session is not None:
                session.open(doc)

    def _change(self, uri: str, version: int, text: str) -> None:
        from .session import OpenDoc

        known = self._docs.get(uri)
        if known is None:
            return
        doc, root = known
        self._docs[uri] = (OpenDoc(uri, doc.language, version, text), root)
        for session in self._sessions_of(uri):
            session.change(uri, version, text)

    def _save(self, uri: str) -> None:
        for session in self._sessions_of(uri):
            session.save(uri)

    def _files_changed(self, root: Path, changes: list[tuple[str, int]]) -> None:
        from lsprotocol import types as lsp

        typed = [(uri, lsp.FileChangeType(kind)) for uri, kind in changes]
        for (_name, session_root), session in self._sessions.items():
            if session_root == root:
                session.files_changed(typed)

    def _close(self, uri: str) -> None:
        for session in self._sessions_of(uri):
            session.close(uri)
        self._docs.pop(uri, None)

    async def _request(self, uri: str, server: str, method: str, params: Any) -> Any:
        for session in self._sessions_of(uri):
            if session.spec.name == server:
                return await session.request(method, params)
        raise RuntimeError(f"{server} does not serve {uri}")

    async def _ask(self, uri: str, capability: str, method: str, params: Any) -> Any:
        for session in self._sessions_of(uri):
            if session.state == ServerState.RUNNING and session.supports(capability):
                return await session.request(method, params)
        raise LookupError(f"no running language server of {uri} has {capability}")

    async def _stop_all(self, timeout_s: float) -> None:
        sessions = list(self._sessions.values())
        await asyncio.gather(*(s.stop(timeout_s) for s in sessions), return_exceptions=True)


def _kill_started(task: asyncio.Task[asyncio.subprocess.Process]) -> None:
    """An early process that no session took, killed once started (nothing if it failed)."""
    if not task.cancelled() and task.exception() is None:
        kill_group(task.result())


class GatedHub(LspHub):
    """An ``LspHub`` whose first work (``LspHub._first``) waits until ``open_gate()`` (at
    most ``GATE_MAX_S``): the editor's, opened when its UI thread is free
    (``app.ui.lsp_bridge``). Calls made meanwhile queue behind it; none waits."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._gate = threading.Event()  # before the thread starts
        super().__init__(*args, **kwargs)

    def open_gate(self) -> None:
        """Let the first work start (any thread)."""
        assert self._gate is not None
        self._gate.set()
