"""The agent's workspace side (issue 17): files read from the workspace (confined), edits
put in the shadow workspace, approved commands run in the shadow's copy, and the loop on a
thread of its own with the approval cards answered from another thread. No Qt.

``ShadowTools`` (``forecode_core.agent.loop.AgentTools``):
- ``read``: the workspace file, after ``paths.inside`` (no ``..``, no absolute path, no
  link out); never a file outside.
- ``write``: the agent's files checked in the shadow (``ShadowWorkspace.check``: the new
  problems they cause), then laid in the copy as overlays (``push_buffer``) so the next
  command sees them; ``close`` takes them out again (``drop_buffer``). The user's files are
  never written.
- ``search``, ``definition``, ``diagnostics``: ``app.services.agent_lookup.AgentLookup``
  where ``lookup`` is set (the window sets it), else "not available".
- ``run``: the command in the copy's root (never the user's folder), in a new process group,
  with the environment from the ``RunEnvironment`` seam (a database branch from
  ``app.services.dbbranch.branch_for_run`` where that module exists and finds a database;
  else the editor's environment), a timeout, the output's tail kept (bounded), killable
  (``kill``: the whole group). A plain command (``allow.argv``) runs without a shell; one
  with shell syntax runs through ``/bin/sh -c`` (only ever after the user approved its exact
  text: the allow-list never matches it).

``AgentRun``: ``drive`` on a daemon thread; ``decide(step, decision)`` answers the card the
loop waits on; ``stop()`` ends the wait, kills a running command and ends the loop.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Protocol

from forecode_core.agent.allow import argv
from forecode_core.agent.loop import (
    AgentLoop,
    AgentModel,
    AgentOutcome,
    Card,
    CommandResult,
    Decision,
    StepEvent,
    drive,
)
from forecode_core.agent.paths import PathRefused, inside, relative_path
from forecode_core.windowless import no_window
from forecode_core.workspace.gitignore import IgnoreRules
from forecode_core.workspace.walk import walk_files

__all__ = [
    "AgentRun",
    "BranchEnvironment",
    "PlainEnvironment",
    "RunEnvironment",
    "ShadowTools",
    "environment_for",
    "listing",
    "preview_text",
    "problem_line",
    "run_command",
]

OUTPUT_LIMIT = 64 * 1024  # bytes of a command's output kept (its tail)
MAX_READ_BYTES = 2 * 1024 * 1024


class RunEnvironment(Protocol):
    """Where a command's environment comes from: ``env()`` before each run, ``preview()``
    after it (what the run changed, "" when nothing to say), ``close()`` at the loop's end."""

    def env(self) -> Mapping[str, str]: ...

    def preview(self) -> str: ...

    def close(self) -> None: ...


class PlainEnvironment:
    """The editor's own environment (no database branch); ``path_first``: a folder put first
    on ``PATH`` (the bench's and the tests' interpreter, so ``python`` is this one)."""

    def __init__(self, path_first: str = "") -> None:
        self.path_first = path_first

    def env(self) -> Mapping[str, str]:
        env = dict(os.environ)
        if self.path_first:
            env["PATH"] = os.pathsep.join(filter(None, [self.path_first, env.get("PATH", "")]))
        return env

    def preview(self) -> str:
        return ""

    def close(self) -> None:
        pass


class BranchEnvironment:
    """A database branch for the agent's runs (``app.services.dbbranch.Branch``): its
    ``env`` over the editor's, what each run changed in it (``preview_text``), dropped at the
    loop's end unless the user kept it (``Branch.close``)."""

    def __init__(self, branch: Any) -> None:
        self.branch = branch

    def env(self) -> Mapping[str, str]:
        return {**os.environ, **dict(self.branch.env)}

    def preview(self) -> str:
        return preview_text(self.branch.found.label, self.branch.preview())

    def close(self) -> None:
        self.branch.close()


def preview_text(label: str, preview: Any) -> str:
    """A database branch's preview in a few lines: the tables the run changed."""
    changed = preview.changed
    lines = [f"Database branch of {label}: " + ("no table changed" if not changed else "")]
    for t in changed:
        note = f" ({t.note})" if t.note else ""
        lines.append(f"  {t.table}: +{t.inserted} ~{t.updated} -{t.deleted}{note}")
    lines.extend(f"  {n}" for n in preview.notes)
    return "\n".join(lines)


def listing(root: Path, rules: IgnoreRules | None = None, limit: int = 200) -> tuple[str, ...]:
    """The workspace's files the model is shown (``rules``: the workspace's ignore rules),
    at most ``limit``; links are left out (they may lead outside)."""
    rules = rules or IgnoreRules.for_folder(root)
    found = walk_files(root, rules, links="report", limit=limit * 2)
    return tuple(rel for rel, entry in found if not entry.is_symlink())[:limit]


def environment_for(workspace: Path, shadow_root: Path) -> RunEnvironment:
    """A branch of the project's development database where ``app.services.dbbranch``
    finds one (its ``BranchError`` is raised: the runs never fall back to the real
    database), else the plain environment."""
    try:
        dbbranch = importlib.import_module("app.services.dbbranch")
    except ImportError:
        return PlainEnvironment()
    branch = dbbranch.branch_for_run(workspace, shadow_root)
    return PlainEnvironment() if branch is None else BranchEnvironment(branch)


class _Tail:
    """The last ``limit`` bytes of a stream, read on a thread."""

    def __init__(self, stream: Any, limit: int) -> None:
        self.data = bytearray()
        self.dropped = 0
        self._limit = limit
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream: Any) -> None:
        with contextlib.suppress(OSError, ValueError):
            while chunk := stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536):
                self.data += chunk
                extra = len(self.data) - self._limit
                if extra > 0:
                    self.dropped += extra
                    del self.data[:extra]

    def text(self) -> str:
        head = f"[... {self.dropped} bytes of output before this ...]\n" if self.dropped else ""
        return head + self.data.decode("utf-8", "replace")


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """The command and what it started in its group (POSIX); on Windows the command."""
    if os.name == "nt":
        with contextlib.suppress(OSError):
            proc.kill()
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def run_command(
    command: str,
    cwd: Path,
    env: Mapping[str, str],
    *,
    timeout_s: float,
    started: Callable[[subprocess.Popen[bytes]], None] | None = None,
) -> CommandResult:
    """``command`` in ``cwd`` (module docstring: no shell for a plain command), killed with
    its whole group at ``timeout_s``; its output's tail."""
    words = argv(command)
    shell = ["cmd", "/c", command] if os.name == "nt" else ["/bin/sh", "-c", command]
    args = words if words is not None else shell
    began = time.monotonic()
    try:
        proc = subprocess.Popen(
            args,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **no_window(),
        )
    except OSError as exc:
        return CommandResult(command, 127, f"could not start: {exc.strerror or exc}")
    if started is not None:
        started(proc)
    tail = _Tail(proc.stdout, OUTPUT_LIMIT)
    timed_out = False
    try:
        code: int | None = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc)
        proc.wait()
        code = None
    _kill_group(proc)  # what it left running in its group goes with it
    tail.thread.join(5.0)
    if proc.stdout is not None:
        proc.stdout.close()
    if code is not None and code < 0:
        code = None  # killed by a signal (Stop)
    return CommandResult(command, code, tail.text(), timed_out, time.monotonic() - began)


class ShadowTools:
    """``AgentTools`` over the workspace at ``root`` and its ``shadow``
    (``app.services.shadow.ShadowWorkspace``); runs from the agent's thread (blocking)."""

    def __init__(
        self,
        root: Path,
        shadow: Any,
        environment: RunEnvironment | None = None,
        *,
        timeout_s: float = 120.0,
    ) -> None:
        self.root = Path(root).resolve()
        self.shadow = shadow
        self.environment = environment or PlainEnvironment()
        self.timeout_s = timeout_s
        self.pushed: set[str] = set()
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._killed = False
        # SEARCH / DEFINITION / DIAGNOSTICS (``app.services.agent_lookup.AgentLookup``);
        # None: the loop answers "not available"
        self.lookup: Any | None = None

    def search(self, query: str) -> str:
        return self.lookup.search(query) if self.lookup is not None else "not available"

    def definition(self, symbol: str) -> str:
        return self.lookup.definition(symbol) if self.lookup is not None else "not available"

    def diagnostics(self, path: str) -> str:
        inside(self.root, path)
        return self.lookup.diagnostics(path) if self.lookup is not None else "not available"

    def read(self, path: str) -> str:
        target = inside(self.root, path)
        rel = relative_path(path)
        if rel in self.pushed:
            return self._copy_text(rel)
        if target.stat().st_size > MAX_READ_BYTES:
            raise OSError("the file is too large to read")
        return target.read_text(encoding="utf-8")

    def _copy_text(self, rel: str) -> str:
        return (Path(self.shadow.tree) / rel).read_text(encoding="utf-8")

    def exists(self, path: str) -> bool:
        return inside(self.root, path).exists()

    def write(self, texts: Mapping[str, str], originals: Mapping[str, str]) -> str:
        for rel in texts:
            inside(self.root, rel)
            if not self.shadow.in_copy(rel):
                raise PathRefused(rel, "is not a file of the workspace's copy")
        edited = {rel: originals[rel] for rel in texts if originals.get(rel)}
        verdict = self.shadow.check(dict(texts), edited)
        futures: list[Future[object]] = []
        for rel, text in texts.items():
            futures.append(self.shadow.push_buffer(rel, text))
            self.pushed.add(rel)
        for future in futures:
            future.result(timeout=60.0)
        return _describe(verdict)

    def run(self, command: str) -> CommandResult:
        with self._lock:
            if self._killed:
                return CommandResult(command, None, "stopped before it ran")
        env = self.environment.env()
        result = run_command(
            command, Path(self.shadow.tree), env, timeout_s=self.timeout_s, started=self._started
        )
        with self._lock:
            self._proc = None
        preview = self.environment.preview()
        return dataclasses.replace(result, preview=preview) if preview else result

    def _started(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._proc = proc
            killed = self._killed
        if killed:
            _kill_group(proc)

    def kill(self) -> None:
        """Stop: a running command's whole group is killed; no later one starts."""
        with self._lock:
            self._killed = True
            proc = self._proc
        if proc is not None:
            _kill_group(proc)

    def close(self) -> None:
        """The copy back to the workspace's files; the environment's branch dropped."""
        futures = [self.shadow.drop_buffer(rel) for rel in sorted(self.pushed)]
        for future in futures:
            with contextlib.suppress(Exception):
                future.result(timeout=60.0)
        self.pushed.clear()
        if self.lookup is not None:
            with contextlib.suppress(Exception):
                self.lookup.close()
        self.environment.close()


def _describe(verdict: Any) -> str:
    status = str(getattr(verdict, "status", ""))
    if status != "checked":
        return f"not checked ({getattr(verdict, 'note', '') or status})"
    return "\n".join(problem_line(d) for d in verdict.new) or "none"


def problem_line(d: Any) -> str:
    """A shadow ``Diagnostic`` as the model reads it: ``path:line: severity: message [code]``."""
    return f"{d.path}:{d.line + 1}: {d.severity}: {d.message}" + (f" [{d.code}]" if d.code else "")


class AgentRun:
    """One task's loop on its own thread. ``on_event`` and ``on_end`` are called from that
    thread (the window hands them to the UI thread by signals)."""

    def __init__(
        self,
        loop: AgentLoop | Callable[[], AgentLoop],
        model: AgentModel,
        tools: ShadowTools,
        *,
        on_event: Callable[[StepEvent], None],
        on_end: Callable[[AgentOutcome | BaseException], None],
    ) -> None:
        """``loop``: the loop, or what makes it on the agent's thread (the workspace's
        listing and the database branch are found there, off the UI thread)."""
        self._make_loop = loop if callable(loop) else (lambda: loop)
        self.loop: AgentLoop | None = None
        self.model = model
        self.tools = tools
        self._on_event = on_event
        self._on_end = on_end
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._decisions: dict[int, Decision] = {}
        self.thread = threading.Thread(target=self._main, daemon=True, name="forecode-agent")

    def start(self) -> None:
        self.thread.start()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def decide(self, step: int, decision: Decision) -> None:
        """The user's click on the card of ``step`` (from any thread)."""
        with self._cond:
            self._decisions[step] = decision
            self._cond.notify_all()

    def stop(self) -> None:
        self._stop.set()
        self.tools.kill()
        with self._cond:
            self._cond.notify_all()

    def _approve(self, card: Card) -> Decision:
        with self._cond:
            while card.step not in self._decisions and not self._stop.is_set():
                self._cond.wait(1.0)
            return self._decisions.pop(card.step, Decision.REJECT)

    def _main(self) -> None:
        result: AgentOutcome | BaseException
        try:
            self.loop = loop = self._make_loop()
            result = drive(
                loop,
                self.model,
                self.tools,
                self._approve,
                should_stop=self._stop.is_set,
                on_event=self._on_event,
            )
        except Exception as exc:  # the loop's failure is the run's end, shown to the user
            result = exc
        finally:
            with contextlib.suppress(Exception):
                self.tools.close()
        self._on_end(result)
