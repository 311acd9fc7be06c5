"""One language server process for one workspace root, driven by pygls's ``LanguageClient``.

Everything here runs on the LSP hub's event loop (``hub.LspHub``), never on the UI thread.
The session starts the server, answers the server's own requests (``workspace/configuration``
from the spec's settings, capability registration, progress tokens, folders), keeps each open
document's version and the text last sent (changes go incrementally where the server accepts
them, else whole), drops diagnostics for versions older than the last one sent, restarts a
server that exits with back-off (``forecode_core.lsp.restart``) and kills one that leaves a
request unanswered past its deadline (then it restarts like a crash).

Diagnostics are pulled (``textDocument/diagnostic``) from a server that offers it, statically
or by registration, right after each open and change, else taken as the server pushes them.
Measured with basedpyright (``bench lsp``): pushed, a change waits its fixed 250 ms "user is
typing" back-off before the check starts (and any request meanwhile, such as the caret's
definition look-up, restarts that wait); pulled, the check starts when the request arrives.
A pull's answer carries the version it was asked for and is dropped like a push when the text
moved on; the server's ``workspace/diagnostic/refresh`` (another file or the configuration
changed) pulls every open document again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cattrs import Converter
from lsprotocol import types as lsp
from pygls.io_ import run_async
from pygls.lsp.client import LanguageClient
from pygls.protocol import default_converter

from forecode_core.lsp.diagnostics import Diagnostic, Severity
from forecode_core.lsp.positions import Position
from forecode_core.lsp.restart import RestartPolicy, ServerState
from forecode_core.lsp.servers import ServerSpec, config_section, with_excludes
from forecode_core.lsp.sync import change_between
from forecode_core.workspace.gitignore import IgnoreRules

from .spawn import kill_group as _kill_group
from .spawn import start_process

__all__ = ["OpenDoc", "Session", "SessionEvents"]

log = logging.getLogger(__name__)

CLIENT_NAME = "forecode"
CLIENT_VERSION = "0.1.0"
STDERR_LINES = 20  # the last lines a server wrote, for the message when it dies
# A pull waits this long: a cold check on a loaded machine takes seconds (13 s seen at load
# 15 on 2 cores), and a slow check is not a hung server (hover's deadline kills those).
PULL_TIMEOUT_S = 120.0
# Offer pull diagnostics in ``initialize`` (``bench lsp --push`` turns it off to compare).
PULL_DIAGNOSTICS = True
# A pull that comes back with nothing for the version still shown (an error, or "unchanged"
# to a first pull: basedpyright's answer when the document's open has not reached its
# workspace yet) is tried again, 0.25 s later and doubling, this many times.
PULL_RETRIES = 6


@dataclass
class OpenDoc:
    """A document as the hub knows it: the text and version the editor last sent."""

    uri: str
    language: str
    version: int
    text: str


@dataclass(frozen=True)
class SessionEvents:
    """What a session reports, on the hub's thread: diagnostics (uri, version, server,
    list) and its state (server, state, message)."""

    diagnostics: Callable[[str, int | None, str, list[Diagnostic]], None]
    state: Callable[[str, ServerState, str], None]


_NotebookFilter = (
    str
    | lsp.NotebookDocumentFilterNotebookType
    | lsp.NotebookDocumentFilterScheme
    | lsp.NotebookDocumentFilterPattern
)


def _notebook_filter(value: Any, _type: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    for key, kind in (
        ("notebookType", lsp.NotebookDocumentFilterNotebookType),
        ("scheme", lsp.NotebookDocumentFilterScheme),
    ):
        if key in value:
            return _CONVERTER.structure(value, kind)
    return _CONVERTER.structure(value, lsp.NotebookDocumentFilterPattern)


def _converter() -> Converter:
    """pygls's converter, plus a hook lsprotocol 2025.0.0 lacks: the optional notebook filter
    (``{"notebook": "*", "cells": [...]}``) in ruff's ``notebookDocumentSync``, without which
    ruff's whole initialize answer failed to parse."""
    make: Callable[[], Converter] = default_converter  # pygls leaves it unannotated
    converter = make()
    converter.register_structure_hook(_NotebookFilter | None, _notebook_filter)
    return converter


_CONVERTER = _converter()


class _Client(LanguageClient):
    def __init__(self, on_exit: Callable[[asyncio.subprocess.Process], None]) -> None:
        super().__init__(CLIENT_NAME, CLIENT_VERSION, converter_factory=lambda: _CONVERTER)
        self._on_exit = on_exit

    def attach(self, process: asyncio.subprocess.Process) -> None:
        """Talk LSP over ``process``'s stdin and stdout (started by ``spawn.start_process``,
        perhaps before pygls was imported): pygls's reading loop on its stdout, its writer on
        its stdin, and ``server_exit`` when it ends; what ``start_io`` does after its own
        spawn (pygls 2.1's attributes: ``_server``, ``_stop_event``, ``_async_tasks``)."""
        if process.stdin is None or process.stdout is None:
            raise RuntimeError("the server's process has no piped stdin or stdout")
        self.protocol.set_writer(process.stdin)
        self._server = process
        reading = asyncio.create_task(
            run_async(
                stop_event=self._stop_event,
                reader=process.stdout,
                protocol=self.protocol,
                logger=log,
                error_handler=self.report_server_error,
            )
        )
        exited = asyncio.create_task(self._server_exit())  # type: ignore[no-untyped-call]
        self._async_tasks.extend([reading, exited])

    async def server_exit(self, server: asyncio.subprocess.Process) -> None:
        self._on_exit(server)


@dataclass
class _Pull:
    """A ``textDocument/diagnostic`` in flight: its request id, the version asked for, and
    whether a refresh came meanwhile (pull once more when it answers)."""

    msg_id: str
    version: int
    again: bool = False
    tries: int = 0  # pulls of this version that came back with nothing before it


def _client_capabilities(tells_files: bool = False) -> lsp.ClientCapabilities:
    """``tells_files``: the client sends ``workspace/didChangeWatchedFiles`` itself (the
    shadow's servers, told of each file a check creates or removes, in order, before the
    check). The editor's own servers are not: basedpyright then runs its own watcher over the
    workspace, which also sees files a git checkout or a terminal makes."""
    return lsp.ClientCapabilities(
        general=lsp.GeneralClientCapabilities(position_encodings=[lsp.PositionEncodingKind.Utf16]),
        workspace=lsp.WorkspaceClientCapabilities(
            configuration=True,
            workspace_folders=True,
            did_change_configuration=lsp.DidChangeConfigurationClientCapabilities(
                dynamic_registration=True
            ),
            # a server's import resolution caches the folders it read: without an event, a
            # module a check adds stays "could not be resolved"
            did_change_watched_files=lsp.DidChangeWatchedFilesClientCapabilities(
                dynamic_registration=True
            )
            if tells_files
            else None,
        ),
        text_document=lsp.TextDocumentClientCapabilities(
            synchronization=lsp.TextDocumentSyncClientCapabilities(did_save=True),
            publish_diagnostics=lsp.PublishDiagnosticsClientCapabilities(
                version_support=True, related_information=False
            ),
            # Pull diagnostics: basedpyright takes them only with dynamic registration.
            diagnostic=lsp.DiagnosticClientCapabilities(
                dynamic_registration=True, related_document_support=False
            )
            if PULL_DIAGNOSTICS
            else None,
            hover=lsp.HoverClientCapabilities(
                content_format=[lsp.MarkupKind.Markdown, lsp.MarkupKind.PlainText]
            ),
            definition=lsp.DefinitionClientCapabilities(link_support=False),
            references=lsp.ReferenceClientCapabilities(),
        ),
        window=lsp.WindowClientCapabilities(work_done_progress=True),
    )


def _sync_kind(caps: lsp.ServerCapabilities) -> lsp.TextDocumentSyncKind:
    sync = caps.text_document_sync
    if isinstance(sync, lsp.TextDocumentSyncOptions):
        return sync.change if sync.change is not None else lsp.TextDocumentSyncKind.None_
    if isinstance(sync, lsp.TextDocumentSyncKind):
        return sync
    return lsp.TextDocumentSyncKind.None_


def _save_wanted(caps: lsp.ServerCapabilities) -> tuple[bool, bool]:
    """(send didSave, with the text)."""
    sync = caps.text_document_sync
    if isinstance(sync, lsp.TextDocumentSyncOptions) and sync.save:
        include = isinstance(sync.save, lsp.SaveOptions) and bool(sync.save.include_text)
        return True, include
    return False, False


def to_diagnostic(d: lsp.Diagnostic, default_source: str) -> Diagnostic:
    start, end = d.range.start, d.range.end
    return Diagnostic(
        Position(start.line, start.character),
        Position(end.line, end.character),
        Severity(int(d.severity)) if d.severity is not None else Severity.ERROR,
        d.message,
        d.source or default_source,
        "" if d.code is None else str(d.code),
    )


def _plain(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A fresh function around ``fn``: pygls marks its handlers with attributes, which a bound
    method cannot take."""

    def handler(params: Any) -> Any:
        return fn(params)

    return handler


class Session:
    """One server for one root. All methods run on the hub's loop."""

    def __init__(
        self,
        spec: ServerSpec,
        argv: list[str],
        root: Path,
        events: SessionEvents,
        *,
        init_timeout_s: float,
        request_timeout_s: float,
        policy: RestartPolicy | None = None,
    ) -> None:
        self.spec = spec
        self.tells_files = False  # set by the hub before start: see _client_capabilities
        self.argv = argv
        self.root = root
        self.events = events
        self.init_timeout_s = init_timeout_s
        self.request_timeout_s = request_timeout_s
        self.policy = policy or RestartPolicy()
        self.state = ServerState.STOPPED
        self.docs: dict[str, OpenDoc] = {}  # what the editor wants open here
        self._sent: dict[str, OpenDoc] = {}  # what this server process was told
        self._client: _Client | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._caps = lsp.ServerCapabilities()
        self._started_at = 0.0
        self._stopping = False
        self._stderr: deque[str] = deque(maxlen=STDERR_LINES)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._restart: asyncio.TimerHandle | None = None
        self._spawned: list[asyncio.subprocess.Process] = []  # every process, for abandon()
        self._pull = False  # the server answers textDocument/diagnostic
        self._pulls: dict[str, _Pull] = {}  # uri -> the pull in flight
        self._result_ids: dict[str, str] = {}  # uri -> the server's id of its last report
        self._pull_ids = 0
        self._ignored: list[str] | None = None  # the root's git-ignored folders, read once

    # ----- life cycle -----------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def _set_state(self, state: ServerState, message: str = "") -> None:
        self.state = state
        self.events.state(self.spec.name, state, message)

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: %r", self.spec.name, task.exception())
            self._set_state(ServerState.FAILED, f"{self.spec.name} failed: {task.exception()}")

    def start(self, early: Awaitable[asyncio.subprocess.Process] | None = None) -> None:
        """Start the server; ``early``: its process, which the hub started before pygls was
        imported (``spawn``; a restart starts its own)."""
        self._spawn(self._start(early))

    async def _start(self, early: Awaitable[asyncio.subprocess.Process] | None = None) -> None:
        self._restart = None
        self._set_state(ServerState.STARTING)
        client = _Client(self._on_exit)
        self._register(client)
        self._client = client
        self._sent = {}
        self._pull = False
        self._pulls = {}
        self._result_ids = {}
        try:  # the hub may have started it already, while it imported pygls (``spawn``)
            process = await (early or start_process(self.argv, str(self.root)))
        except OSError as exc:
            self._client = None
            self._set_state(ServerState.FAILED, f"{self.spec.name} could not start: {exc}")
            return
        self._spawned.append(process)
        if client is not self._client or self._stopping:  # stopped while it started
            _kill_group(process)
            return
        client.attach(process)
        self._process = process
        self._started_at = time.monotonic()
        if self._process is not None and self._process.stderr is not None:
            self._spawn(self._drain_stderr(self._process.stderr))
        try:
            result = await asyncio.wait_for(
                client.initialize_async(self._initialize_params()), self.init_timeout_s
            )
        except TimeoutError:
            self._kill(f"{self.spec.name} did not answer initialize in {self.init_timeout_s} s")
            return
        except Exception as exc:  # the process died during initialize: _on_exit restarts it
            log.info("%s: initialize failed: %s", self.spec.name, exc)
            return
        if client is not self._client:
            return
        self._caps = result.capabilities
        self._pull = self._pull or bool(result.capabilities.diagnostic_provider)
        client.initialized(lsp.InitializedParams())
        self._set_state(ServerState.RUNNING)
        for doc in list(self.docs.values()):
            self._send_open(doc)

    def _initialize_params(self) -> lsp.InitializeParams:
        uri = self.root.as_uri()
        return lsp.InitializeParams(
            capabilities=_client_capabilities(self.tells_files),
            process_id=None,
            client_info=lsp.ClientInfo(name=CLIENT_NAME, version=CLIENT_VERSION),
            root_uri=uri,
            root_path=str(self.root),
            workspace_folders=[lsp.WorkspaceFolder(uri=uri, name=self.root.name or uri)],
            initialization_options=dict(self.spec.init_options) or None,
        )

    async def _drain_stderr(self, stream: asyncio.StreamReader) -> None:
        """Read the server's stderr so its pipe never fills (a full pipe stalls the server);
        the last lines explain a crash."""
        while line := await stream.readline():
            self._stderr.append(line.decode("utf-8", "replace").rstrip())

    def _on_exit(self, process: asyncio.subprocess.Process) -> None:
        if process is not self._process:
            return
        self._process = None
        self._client = None
        self._sent = {}
        if self._stopping:
            return
        ran = time.monotonic() - self._started_at
        self.policy = self.policy.after_exit(ran)
        tail = next((line for line in reversed(self._stderr) if line.strip()), "")
        why = f"{self.spec.name} exited (code {process.returncode})" + (
            f": {tail[:200]}" if tail else ""
        )
        if self.policy.gave_up:
            self._set_state(
                ServerState.FAILED, f"{why}; stopped after {self.policy.crashes} crashes"
            )
            return
        delay = self.policy.delay_s()
        self._set_state(ServerState.RESTARTING, f"{why}; restarting in {delay:g} s")
        loop = asyncio.get_running_loop()
        self._restart = loop.call_later(delay, self.start)

    def _kill(self, why: str) -> None:
        """A hung server: killed, then restarted by ``_on_exit`` like a crash."""
        log.warning("%s", why)
        self._stderr.append(why)
        if self._process is not None:
            _kill_group(self._process)

    async def stop(self, timeout_s: float = 2.0) -> None:
        """Shut the server down politely: a third of ``timeout_s`` for ``shutdown``, a third
        to exit, then its process group is killed (the last third to reap it)."""
        self._stopping = True
        if self._restart is not None:
            self._restart.cancel()
        client, process = self._client, self._process
        part = timeout_s / 3
        if client is not None and process is not None and self.state == ServerState.RUNNING:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.shutdown_async(None), part)
                client.exit(None)
        if process is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), part)
            _kill_group(process)  # still running, or anything it left in its group
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), part)
        for task in list(self._tasks):
            task.cancel()
        self._set_state(ServerState.STOPPED)

    def abandon(self) -> None:
        """The loop is closing: kill what still runs, close every process's pipes (a pipe
        whose end of file the loop had no time to read would stay open)."""
        client = self._client
        if client is not None and client._server is not None:  # one still starting
            self._spawned.append(client._server)
        for process in self._spawned:
            if process.returncode is None:
                _kill_group(process)
            transport = getattr(process, "_transport", None)  # asyncio keeps it private
            if transport is not None:
                transport.close()
        self._spawned.clear()

    # ----- the server's requests to us ------------------------------------------------------
    def _register(self, client: _Client) -> None:
        handlers: dict[str, Callable[[Any], Any]] = {
            lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS: self._on_diagnostics,
            lsp.WORKSPACE_CONFIGURATION: self._on_configuration,
            lsp.CLIENT_REGISTER_CAPABILITY: self._on_register,
            lsp.CLIENT_UNREGISTER_CAPABILITY: lambda _p: None,
            lsp.WINDOW_WORK_DONE_PROGRESS_CREATE: lambda _p: None,
            lsp.PROGRESS: lambda _p: None,
            lsp.WINDOW_LOG_MESSAGE: lambda _p: None,
            lsp.WINDOW_SHOW_MESSAGE: self._on_show_message,
            lsp.WINDOW_SHOW_MESSAGE_REQUEST: lambda _p: None,
            lsp.WORKSPACE_WORKSPACE_FOLDERS: self._on_folders,
            lsp.WORKSPACE_DIAGNOSTIC_REFRESH: self._on_refresh,
            lsp.WORKSPACE_SEMANTIC_TOKENS_REFRESH: lambda _p: None,
            lsp.WORKSPACE_INLAY_HINT_REFRESH: lambda _p: None,
            lsp.WORKSPACE_CODE_LENS_REFRESH: lambda _p: None,
            # Edits the server wants made arrive with rename (a follow-up): refused until then.
            lsp.WORKSPACE_APPLY_EDIT: lambda _p: lsp.ApplyWorkspaceEditResult(applied=False),
        }
        for method, handler in handlers.items():
            client.feature(method)(_plain(handler))

    def _ignored_folders(self) -> list[str]:
        """The root's top-level folders git ignores (``build``, ``dist``, a venv not named
        with a dot): read once, on the hub's thread, for the ``exclude_section``."""
        if self._ignored is None:
            self._ignored = []
            try:
                rules = IgnoreRules.for_folder(self.root)
                with os.scandir(self.root) as entries:
                    for entry in entries:
                        if (
                            not entry.name.startswith(".")
                            and entry.is_dir(follow_symlinks=False)
                            and rules.is_dir_ignored(entry.name)
                        ):
                            self._ignored.append(entry.name)
            except OSError as exc:
                log.info("%s: ignore rules of %s not read: %s", self.spec.name, self.root, exc)
            self._ignored.sort()
        return self._ignored

    def _on_configuration(self, params: lsp.ConfigurationParams) -> list[object]:
        settings = dict(self.spec.settings)
        if self.spec.exclude_section:
            settings = dict(
                with_excludes(settings, self.spec.exclude_section, self._ignored_folders())
            )
        venv_python = self.root / ".venv" / "bin" / "python"
        if venv_python.exists():  # the project's own interpreter, for its imports
            settings.setdefault("python", {"pythonPath": str(venv_python)})
        return [config_section(settings, item.section) for item in params.items]

    def _on_register(self, params: lsp.RegistrationParams) -> None:
        """basedpyright registers pull diagnostics after ``initialized``, when the first
        document is usually open already: pull what is open from then on."""
        if any(r.method == lsp.TEXT_DOCUMENT_DIAGNOSTIC for r in params.registrations):
            self._pull = True
            self._pull_all()

    def _on_refresh(self, _params: None) -> None:
        self._pull_all()

    def _pull_all(self) -> None:
        # Later on the loop: the server waits for this request's answer first.
        loop = asyncio.get_running_loop()
        for doc in list(self._sent.values()):
            loop.call_soon(self._pull_soon, doc.uri, doc.version, True)

    def _pull_soon(self, uri: str, version: int, refresh: bool = False, tries: int = 0) -> None:
        """Pull ``uri``'s diagnostics for ``version``. A pull in flight for an older version
        is cancelled (the server stops checking text nobody shows); one for this version is
        kept, and a refresh meanwhile pulls once more after it (basedpyright asks for a
        refresh each time its own timer fires after a change, 250 ms on)."""
        client = self._client
        if not self._pull or client is None:
            return
        flying = self._pulls.get(uri)
        if flying is not None and flying.version >= version:
            flying.again = flying.again or refresh
            return
        if flying is not None:
            client.protocol.notify(lsp.CANCEL_REQUEST, lsp.CancelParams(id=flying.msg_id))
        self._pull_ids += 1
        pull = _Pull(f"forecode-pull-{self._pull_ids}", version, tries=tries)
        self._pulls[uri] = pull
        self._spawn(self._pull_diagnostics(client, uri, pull))

    async def _pull_diagnostics(self, client: _Client, uri: str, pull: _Pull) -> None:
        """One ``textDocument/diagnostic`` for ``pull.version``; reported like a push."""
        previous = self._result_ids.get(uri)
        params = lsp.DocumentDiagnosticParams(
            text_document=lsp.TextDocumentIdentifier(uri), previous_result_id=previous
        )
        try:
            report = await asyncio.wait_for(
                client.protocol.send_request_async(
                    lsp.TEXT_DOCUMENT_DIAGNOSTIC, params, msg_id=pull.msg_id
                ),
                PULL_TIMEOUT_S,
            )
        except Exception as exc:  # cancelled, timed out, or the server died meanwhile
            log.info("%s: diagnostics of %s not pulled: %r", self.spec.name, uri, exc)
            report = None
        if self._pulls.get(uri) is pull:
            del self._pulls[uri]
        sent = self._sent.get(uri)
        if client is not self._client or sent is None:
            return  # another process, or closed
        items = getattr(report, "items", None)
        if pull.again:
            self._pull_soon(uri, sent.version)
        elif sent.version == pull.version and items is None and previous is None:
            self._retry(uri, pull)  # nothing shown yet for this version: ask again
        if sent.version > pull.version or items is None:
            return  # stale, failed, or "unchanged" (what is shown stays)
        result_id = getattr(report, "result_id", None)
        if isinstance(result_id, str):
            self._result_ids[uri] = result_id
        found = [to_diagnostic(d, self.spec.name) for d in items]
        self.events.diagnostics(uri, pull.version, self.spec.name, found)

    def _retry(self, uri: str, pull: _Pull) -> None:
        if pull.tries >= PULL_RETRIES:
            log.warning("%s: no diagnostics for %s after %d pulls", self.spec.name, uri, pull.tries)
            return
        delay = 0.25 * 2**pull.tries
        asyncio.get_running_loop().call_later(
            delay, self._pull_soon, uri, pull.version, False, pull.tries + 1
        )

    def _on_folders(self, _params: None) -> list[lsp.WorkspaceFolder]:
        uri = self.root.as_uri()
        return [lsp.WorkspaceFolder(uri=uri, name=self.root.name or uri)]

    def _on_show_message(self, params: lsp.ShowMessageParams) -> None:
        if params.type == lsp.MessageType.Error:
            self.events.state(self.spec.name, self.state, f"{self.spec.name}: {params.message}")

    def _on_diagnostics(self, params: lsp.PublishDiagnosticsParams) -> None:
        sent = self._sent.get(params.uri)
        if sent is None:  # closed meanwhile
            return
        if params.version is not None and params.version < sent.version:
            return  # stale: the text moved on since
        found = [to_diagnostic(d, self.spec.name) for d in params.diagnostics]
        self.events.diagnostics(params.uri, params.version, self.spec.name, found)

    # ----- documents ------------------------------------------------------------------------
    def open(self, doc: OpenDoc) -> None:
        self.docs[doc.uri] = doc
        if self.state == ServerState.RUNNING:
            self._send_open(doc)

    def _send_open(self, doc: OpenDoc) -> None:
        assert self._client is not None
        self._client.text_document_did_open(
            lsp.DidOpenTextDocumentParams(
                lsp.TextDocumentItem(doc.uri, doc.language, doc.version, doc.text)
            )
        )
        self._sent[doc.uri] = OpenDoc(doc.uri, doc.language, doc.version, doc.text)
        self._pull_soon(doc.uri, doc.version)

    def change(self, uri: str, version: int, text: str) -> None:
        doc = self.docs.get(uri)
        if doc is None:
            return
        self.docs[uri] = OpenDoc(uri, doc.language, version, text)
        sent = self._sent.get(uri)
        if sent is None or self._client is None or self.state != ServerState.RUNNING:
            return  # sent whole when the server (re)starts
        kind = _sync_kind(self._caps)
        if kind == lsp.TextDocumentSyncKind.None_:
            return
        changes: list[lsp.TextDocumentContentChangeEvent] = []
        if kind == lsp.TextDocumentSyncKind.Incremental:
            change = change_between(sent.text, text)
            if change is not None:
                changes.append(
                    lsp.TextDocumentContentChangePartial(
                        range=lsp.Range(lsp.Position(*change.start), lsp.Position(*change.end)),
                        text=change.text,
                    )
                )
        else:
            changes.append(lsp.TextDocumentContentChangeWholeDocument(text=text))
        self._client.text_document_did_change(
            lsp.DidChangeTextDocumentParams(
                lsp.VersionedTextDocumentIdentifier(version=version, uri=uri), changes
            )
        )
        self._sent[uri] = OpenDoc(uri, doc.language, version, text)
        self._pull_soon(uri, version)

    def save(self, uri: str) -> None:
        doc = self._sent.get(uri)
        wanted, with_text = _save_wanted(self._caps)
        if doc is None or self._client is None or not wanted:
            return
        self._client.text_document_did_save(
            lsp.DidSaveTextDocumentParams(
                lsp.TextDocumentIdentifier(uri), doc.text if with_text else None
            )
        )

    def files_changed(self, changes: Sequence[tuple[str, lsp.FileChangeType]]) -> None:
        """``workspace/didChangeWatchedFiles``: files created, changed or deleted on disk (by
        uri). Before the server is up there is nothing to tell: it reads the folder at start."""
        if self._client is None or not changes:
            return
        self._client.workspace_did_change_watched_files(
            lsp.DidChangeWatchedFilesParams(
                changes=[lsp.FileEvent(uri=uri, type=kind) for uri, kind in changes]
            )
        )

    def close(self, uri: str) -> None:
        self.docs.pop(uri, None)
        self._result_ids.pop(uri, None)
        if self._sent.pop(uri, None) is not None and self._client is not None:
            self._client.text_document_did_close(
                lsp.DidCloseTextDocumentParams(lsp.TextDocumentIdentifier(uri))
            )

    # ----- requests -------------------------------------------------------------------------
    def supports(self, capability: str) -> bool:
        """Whether the server said it has ``capability`` (a ``ServerCapabilities`` field)."""
        return bool(getattr(self._caps, capability, None))

    async def request(self, method: str, params: Any) -> Any:
        """One request with the session's deadline; a server that misses it is killed (and
        restarted). Raises ``RuntimeError`` when the server is not running, ``TimeoutError``
        when it hung."""
        client = self._client
        if client is None or self.state != ServerState.RUNNING:
            raise RuntimeError(f"{self.spec.name} is {self.state}")
        try:
            return await asyncio.wait_for(
                client.protocol.send_request_async(method, params), self.request_timeout_s
            )
        except TimeoutError:
            self._kill(f"{self.spec.name} did not answer {method} in {self.request_timeout_s} s")
            raise
