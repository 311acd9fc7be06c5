"""The shadow workspace (issue 16): one hidden copy of a workspace where AI edits are checked
before the user sees them. No Qt (the services contract): the editor submits work and gets
``concurrent.futures.Future``s back; everything runs on the shadow's own worker thread.

Where and what
    ``<data>/shadow/<name>-<hash of the path>/tree`` (``forecode_core.store.settings.data_dir``;
    folders made owner-only), outside the workspace. What the copy holds is
    ``forecode_core.workspace.shadow_plan``'s rule: the files ``IgnoreRules`` keeps, copied
    (a copy-on-write clone where the filesystem has one: ``FICLONE`` on Linux btrfs/xfs,
    ``clonefile`` on macOS APFS, detected once per filesystem; a plain copy otherwise, as on
    ext4), ignored folders (``.venv``, ``node_modules``, ``.git``, build trees) referenced by a
    symlink to the user's folder, small ignored files copied, and a file a tool may rewrite in
    place (a SQLite database by its header or suffix, the fixtures of ``fixtures``) never
    linked or cloned: a database is copied with SQLite's backup (rows still in ``-wal`` come
    along), its ``-wal``/``-shm`` files are left out. An ignored folder that holds such a file
    is a folder of links in the copy instead of one link (``shadow_plan.guarded_entries``), so
    the file is never reachable for writing through a reference. The walk is the core's one walker
    (``walk_files``) with the workspace's ``IgnoreRules``.

Kept in step
    The first ``sync`` compares the workspace with the copy's own stats (copies carry the
    source's size and mtime), so a copy left by an earlier session is brought in step, not
    rebuilt. Later ones compare with the stamps recorded at the last sync (size, mtime, inode:
    an atomic save changes the inode). Saves (``note_saved``) and file events (``note_changed``)
    copy just those paths; a scan by stamps runs every ``scan_every_s`` while idle and before a
    check whose last whole scan is older than ``resync_s`` (10 s; else the check's own files
    are brought in step). An unsaved buffer pushed in (``push_buffer``) overlays its file until
    ``drop_buffer``.

Checking an edit
    ``check(edits)`` (path -> new text) writes the edit into the copy (the user's files are
    never opened for writing), asks the ``Checker`` for the touched files' diagnostics before
    and after it, puts the copy back, and returns a ``Verdict`` with only the NEW errors and
    warnings (``forecode_core.workspace.diagnostics_diff.new_diagnostics``; hints and
    information are not problems). The checker is a seam:
    ``CliChecker`` runs ``ruff check --output-format json`` and ``basedpyright --outputjson``
    on the copy (both at once, killed at the deadline); an LSP-based checker rooted in the copy
    drops in with the same ``diagnostics`` method. ``prepare`` computes the "before" half ahead
    (while an apply streams), cached until the copy changes; ``warm`` does it earlier, when
    the editor focuses a file, the inline edit prompt opens, a chat answer with a code block
    for the file finishes or the chat's "Edit files" mode is turned on, so the shadow's
    servers have started and opened the file before the review asks (their cold start is
    seconds). ``submit_check_each`` reports a partial verdict as each server answers. Where
    the workspace has no pyright configuration the copy gets a ``pyrightconfig.json`` with
    the standard checking mode (basedpyright's own default flags untyped code everywhere).

The repair loop
    ``check_and_repair``: the pure ``RepairPolicy`` decides; the ``RepairModel`` seam gets the
    new diagnostics (``repair_message``) and answers new edits, for up to ``rounds`` rounds.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import errno
import fcntl
import hashlib
import logging
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from app.services.lsp.hub import LspHub, ServerStatus, resolve_command
from forecode_core.lsp.diagnostics import Diagnostic as LspDiagnostic
from forecode_core.lsp.restart import ServerState
from forecode_core.lsp.servers import ServerTable, servers_for
from forecode_core.store.private import private_folder
from forecode_core.store.settings import data_dir
from forecode_core.text.file_languages import language_id_for_path
from forecode_core.windowless import no_window
from forecode_core.workspace.diagnostics_diff import (
    Diagnostic,
    Next,
    RepairPolicy,
    Severity,
    line_map,
    new_diagnostics,
    parse_pyright_json,
    parse_ruff_json,
    repair_message,
)
from forecode_core.workspace.gitignore import IgnoreRules
from forecode_core.workspace.shadow_plan import (
    DATABASE_SIDE_FILES,
    DATABASE_SUFFIXES,
    IGNORED_FILE_MAX,
    REFERENCED_DIRS,
    SQLITE_HEADER,
    Action,
    Kind,
    Source,
    Step,
    copy_mode,
    guarded_entries,
    ignored_dir_kind,
    is_big_tree,
    plan_sync,
    rewrites_in_place,
    shadow_key,
)
from forecode_core.workspace.walk import walk_files

__all__ = [
    "CheckStatus",
    "Checker",
    "CliChecker",
    "CloneMethod",
    "LspChecker",
    "RepairModel",
    "RepairOutcome",
    "ShadowWorkspace",
    "Verdict",
    "check_and_repair",
    "default_checker",
    "detect_clone",
]

log = logging.getLogger(__name__)

FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int)
CHUNK = 1 << 16
# A build's copies run on this many threads (the system calls release the GIL; a file's
# creation is kernel CPU time, so more cores copy faster), from this many copies up.
COPY_THREADS = 4
PARALLEL_COPIES = 64
# copy_file_range's refusals that mean "copy through memory instead"
_NO_RANGE_COPY = {errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL, errno.EBADF}
PYRIGHT_CONFIG = "pyrightconfig.json"
# A check scans the whole workspace only when the last whole scan is older than this (seconds);
# the copy is that stale at most, at a check, for files no save or file event told of.
RESYNC_S = 10.0
REHEARSAL = "\n# forecode: warming the shadow's servers\n"  # the first warm's throwaway edit
STANDARD_PYRIGHT = '{\n  "typeCheckingMode": "standard"\n}\n'
DB_SIDE_FILES = DATABASE_SIDE_FILES


class CloneMethod(StrEnum):
    FICLONE = "ficlone"  # Linux: btrfs, xfs (reflink)
    CLONEFILE = "clonefile"  # macOS: APFS
    COPY = "copy"


class CheckStatus(StrEnum):
    CHECKED = "checked"
    TIMED_OUT = "timed_out"
    FAILED = "failed"
    NO_CHECKER = "no_checker"  # neither tool is installed


@dataclass(frozen=True)
class Verdict:
    """What checking an edit found: ``new`` the diagnostics it introduced (all files it
    touched), ``before``/``after`` how many there were in those files."""

    status: CheckStatus
    new: tuple[Diagnostic, ...] = ()
    before: int = 0
    after: int = 0
    paths: tuple[str, ...] = ()
    seconds: float = 0.0
    note: str = ""
    waiting: tuple[str, ...] = ()  # a partial verdict: the servers not answered yet

    @property
    def partial(self) -> bool:
        return bool(self.waiting)

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.new if d.severity == "error")


# ----- the checker seam ------------------------------------------------------------------------


class CheckTimeout(Exception):
    pass


class Checker(Protocol):
    """Diagnostics of ``paths`` (workspace-relative) in the tree at ``root``, by ``deadline``
    (``time.monotonic()``; raise ``CheckTimeout`` past it)."""

    @property
    def available(self) -> bool: ...

    def diagnostics(
        self, root: Path, paths: Sequence[str], deadline: float
    ) -> list[Diagnostic]: ...


def _tool(name: str) -> str | None:
    """A command installed beside this interpreter (the editor's venv), else on PATH."""
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else shutil.which(name)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(OSError):
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    with contextlib.suppress(Exception):
        proc.wait(timeout=5)


class CliChecker:
    """ruff and basedpyright as command-line tools on the copy, run side by side. A tool
    that is not installed is left out (``missing`` names it)."""

    def __init__(self, python: Callable[[Path], str | None] | None = None) -> None:
        self.ruff = _tool("ruff")
        self.pyright = _tool("basedpyright")
        self._python = python or _workspace_python
        self._nice = ["nice", "-n", "10"] if os.name == "posix" and shutil.which("nice") else []
        self._running: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()

    def cancel(self) -> None:
        """Kill the checks that run now (the shadow is closing)."""
        with self._lock:
            running = list(self._running)
        for proc in running:
            _kill(proc)

    @property
    def available(self) -> bool:
        return bool(self.ruff or self.pyright)

    @property
    def missing(self) -> list[str]:
        return [n for n, p in (("ruff", self.ruff), ("basedpyright", self.pyright)) if not p]

    def diagnostics(self, root: Path, paths: Sequence[str], deadline: float) -> list[Diagnostic]:
        files = [p for p in paths if (root / p).is_file()]
        if not files:
            return []
        runs: list[tuple[subprocess.Popen[bytes], Callable[[str, str], list[Diagnostic]]]] = []
        if self.ruff:
            cmd = [self.ruff, "check", "--output-format", "json", "--no-cache", "--exit-zero"]
            runs.append((self._spawn([*cmd, "--", *files], root), parse_ruff_json))
        py_files = [f for f in files if f.endswith((".py", ".pyi"))]
        if self.pyright and py_files:
            cmd = [self.pyright, "--outputjson"]
            python = self._python(root)
            if python:
                cmd += ["--pythonpath", python]
            runs.append((self._spawn([*cmd, *py_files], root), parse_pyright_json))
        out: list[Diagnostic] = []
        try:
            for proc, parse in runs:
                try:
                    stdout, _ = proc.communicate(timeout=max(0.05, deadline - time.monotonic()))
                except subprocess.TimeoutExpired as exc:
                    raise CheckTimeout from exc
                out.extend(parse(stdout.decode("utf-8", "replace"), str(root)))
        finally:
            for proc, _ in runs:
                if proc.poll() is None:
                    _kill(proc)
                if proc.stdout is not None:
                    proc.stdout.close()
                with self._lock:
                    self._running.discard(proc)
        return out

    def _spawn(self, cmd: list[str], cwd: Path) -> subprocess.Popen[bytes]:
        """At nice +10, in a session of its own (killed as a group)."""
        proc = subprocess.Popen(
            [*self._nice, *cmd],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=os.name == "posix",
            **no_window(),
        )
        with self._lock:
            self._running.add(proc)
        return proc


_LSP_SEVERITY = {1: Severity.ERROR, 2: Severity.WARNING, 3: Severity.INFORMATION, 4: Severity.HINT}
_DOWN = {ServerState.MISSING, ServerState.FAILED, ServerState.STOPPED}


class LspChecker:
    """The language servers of ``app.services.lsp`` (a hub of its own: basedpyright and
    ``ruff server`` for Python, or whatever ``table`` names), rooted in the copy: a file is
    opened once and changed after, and the diagnostics every running server publishes for
    the version sent are the answer. Warm servers re-diagnose in a few hundred
    milliseconds, where the command-line tools start afresh each time."""

    def __init__(self, table: ServerTable = ()) -> None:
        self.table = table
        self._cond = threading.Condition()
        self._got: dict[tuple[str, str], tuple[int | None, list[LspDiagnostic]]] = {}
        self._down: set[str] = set()
        self._open: dict[str, tuple[int, str]] = {}  # uri -> the version and text last sent
        self._hub: LspHub | None = None

    @property
    def available(self) -> bool:
        return bool(self._servers("x.py"))

    def serves(self, path: str) -> bool:
        """Whether a server of this checker checks ``path`` (what ``ShadowWorkspace.warm``
        asks: a file no server checks has nothing to warm)."""
        return bool(self._servers(path))

    def _servers(self, path: str) -> list[str]:
        language = language_id_for_path(path)
        return [
            spec.name
            for spec in servers_for(language, self.table)
            if spec.name not in self._down and resolve_command(spec.command) is not None
        ]

    def _on_diagnostics(
        self, uri: str, version: int | None, server: str, found: list[LspDiagnostic]
    ) -> None:
        with self._cond:
            self._got[(uri, server)] = (version, found)
            self._cond.notify_all()

    def _on_status(self, status: ServerStatus) -> None:
        with self._cond:
            if status.state in _DOWN:
                self._down.add(status.server)
            else:
                self._down.discard(status.server)
            self._cond.notify_all()

    def diagnostics(self, root: Path, paths: Sequence[str], deadline: float) -> list[Diagnostic]:
        return self.diagnostics_each(root, paths, deadline, None)

    def diagnostics_each(
        self,
        root: Path,
        paths: Sequence[str],
        deadline: float,
        each: Callable[[list[Diagnostic], tuple[str, ...]], None] | None,
    ) -> list[Diagnostic]:
        """``diagnostics``, taking the servers' answers in the order they come; ``each`` gets
        the diagnostics so far and the servers still awaited after each answer but the last
        (ruff answers in milliseconds, basedpyright in hundreds)."""
        if self._hub is None:
            self._hub = LspHub(self._on_diagnostics, self._on_status, self.table, tells_files=True)
        sent: dict[str, tuple[str, int]] = {}  # rel -> (uri, version)
        for rel in paths:
            path = root / rel
            if path.is_file():
                uri = path.as_uri()
                sent[rel] = (uri, self._send(uri, rel, path.read_text("utf-8", "replace"), root))
        out: list[Diagnostic] = []
        with self._cond:
            pending = [
                (rel, uri, version, server)
                for rel, (uri, version) in sent.items()
                for server in self._servers(rel)
            ]
        while pending:
            with self._cond:
                answered = self._answered(pending, deadline)
            for item, found in answered:
                pending.remove(item)
                out.extend(found)
            if each is not None and pending:
                each(list(out), tuple(sorted({server for *_, server in pending})))
        return out

    def _answered(
        self, pending: Sequence[tuple[str, str, int, str]], deadline: float
    ) -> list[tuple[tuple[str, str, int, str], list[Diagnostic]]]:
        """The pending (file, server) pairs that have answered (at least one; the condition
        held): each with its diagnostics of the version sent."""
        while True:
            out = []
            for item in pending:
                rel, uri, version, server = item
                got = self._got.get((uri, server))
                if got is not None and (got[0] is None or got[0] >= version):
                    out.append((item, [_from_lsp(rel, d) for d in got[1]]))
                elif server in self._down:
                    out.append((item, []))
            if out:
                return out
            left = deadline - time.monotonic()
            if left <= 0:
                late = sorted({server for *_, server in pending})
                raise CheckTimeout(f"{', '.join(late)} gave no diagnostics in time")
            self._cond.wait(left)

    def _send(self, uri: str, rel: str, text: str, root: Path) -> int:
        """Open or change the document; an unchanged text is not sent again (a server does
        not answer an empty change), its last version's diagnostics still hold."""
        assert self._hub is not None
        last = self._open.get(uri)
        if last is not None and last[1] == text:
            return last[0]
        if last is None:
            version = self._hub.open(uri, language_id_for_path(rel), text, root)
        else:
            version = self._hub.change(uri, text)
        self._open[uri] = (version, text)
        return version

    def files_changed(self, root: Path, paths: Sequence[str], kind: int) -> None:
        """Files of the copy created (1) or deleted (3): the servers' import resolution
        caches the folders it read, so a module an edit adds must be announced before the
        files that import it are checked."""
        if self._hub is not None:
            self._hub.files_changed(root, [((root / rel).as_uri(), kind) for rel in paths])

    def release(self, root: Path, paths: Sequence[str]) -> None:
        """The check is over and the copy put back: the servers get the files' texts as they
        are again (else they would keep the edited text for the files that import them).
        The documents stay open, so versions only grow and a late answer for an older one is
        never taken for a newer one's."""
        hub = self._hub
        if hub is None:
            return
        for rel in paths:
            path = root / rel
            uri = path.as_uri()
            if uri in self._open:
                try:
                    self._send(uri, rel, path.read_text("utf-8", "replace"), root)
                except OSError:  # the edit made a new file: gone again
                    del self._open[uri]
                    hub.close(uri)

    def cancel(self) -> None:
        """Stop the servers (on a thread of their own: it may take a few seconds)."""
        hub, self._hub = self._hub, None
        if hub is not None:
            threading.Thread(target=hub.shutdown, daemon=True, name="forecode-shadow-lsp").start()


_CREATED, _DELETED = 1, 3  # LSP's FileChangeType


def _tell_files(checker: Checker, root: Path, paths: Sequence[str], kind: int) -> None:
    """Tell a checker that keeps servers running (``files_changed``) of files the check
    created in the copy, or removed again after it."""
    tell = getattr(checker, "files_changed", None)
    if paths and callable(tell):
        tell(root, paths, kind)


def _from_lsp(rel: str, d: LspDiagnostic) -> Diagnostic:
    return Diagnostic(
        path=rel,
        line=d.start.line,
        column=d.start.character,
        end_line=d.end.line,
        end_column=d.end.character,
        message=d.message,
        severity=_LSP_SEVERITY.get(int(d.severity), Severity.ERROR),
        code=d.code,
        source=d.source.lower(),
    )


def default_checker() -> Checker:
    """Language servers rooted in the copy where they are installed (and not turned off by
    ``FORECODE_LSP=0``), else the command-line tools."""
    if os.environ.get("FORECODE_LSP", "1") != "0":
        lsp = LspChecker()
        if lsp.available:
            return lsp
    return CliChecker()


def _workspace_python(root: Path) -> str | None:
    """The workspace's own interpreter (its virtual environment), if it has one."""
    for venv in (".venv", "venv", "env"):
        for exe in ("bin/python", "Scripts/python.exe"):
            candidate = root / venv / exe
            if candidate.exists():
                return str(candidate)
    return None


# ----- copying -----------------------------------------------------------------------------------

_CLONE_BY_DEVICE: dict[int, CloneMethod] = {}


def _clonefile() -> Callable[[bytes, bytes, int], int] | None:
    if sys.platform != "darwin":
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        func = libc.clonefile
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int]
    func.restype = ctypes.c_int
    return func


def _clone_into(src_fd: int, src: str, dst: str, method: CloneMethod) -> bool:
    """Clone ``src`` to ``dst`` (which must not exist); False when the filesystem refused."""
    if method is CloneMethod.FICLONE:
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            fcntl.ioctl(fd, FICLONE, src_fd)
            return True
        except OSError:
            os.unlink(dst)
            return False
        finally:
            os.close(fd)
    if method is CloneMethod.CLONEFILE:
        func = _clonefile()
        return func is not None and func(os.fsencode(src), os.fsencode(dst), 0) == 0
    return False


def detect_clone(folder: Path) -> CloneMethod:
    """How files are cloned on ``folder``'s filesystem (tried once per device)."""
    device = folder.stat().st_dev
    known = _CLONE_BY_DEVICE.get(device)
    if known is not None:
        return known
    method = CloneMethod.COPY
    probe, copy = folder / ".clone-probe", folder / ".clone-probe.copy"
    try:
        probe.write_bytes(b"probe")
        with contextlib.suppress(FileNotFoundError):
            copy.unlink()
        candidates = [CloneMethod.CLONEFILE] if sys.platform == "darwin" else []
        if sys.platform.startswith("linux"):
            candidates = [CloneMethod.FICLONE]
        for candidate in candidates:
            with open(probe, "rb") as src:
                if _clone_into(src.fileno(), str(probe), str(copy), candidate):
                    method = candidate
                    break
    except OSError:
        pass
    finally:
        for path in (probe, copy):
            with contextlib.suppress(OSError):
                path.unlink()
    _CLONE_BY_DEVICE[device] = method
    return method


def snapshot_database(src: str, dst: str) -> bool:
    """A consistent copy of a SQLite database (its WAL included) by SQLite's backup; False
    when ``src`` is not a database SQLite can read."""
    tmp = dst + ".snapshot"
    try:
        _remove(tmp)
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # SQLite keeps it
        source = sqlite3.connect(f"file:{src}?mode=ro", uri=True, timeout=1.0)
        try:
            target = sqlite3.connect(tmp)
            try:
                source.backup(target)
            finally:
                target.close()
        finally:
            source.close()
    except (sqlite3.Error, OSError):
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        return False
    os.replace(tmp, dst)
    return True


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _open_fresh(dst: str) -> int:
    """``dst`` opened for writing, empty, never through a link (a link or a folder in its
    place is removed first: writing through one could reach the user's files)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    try:
        return os.open(dst, flags, 0o600)
    except OSError:
        if not os.path.lexists(dst):
            raise
        _remove(dst)
        return os.open(dst, flags, 0o600)


def _write_atomic(path: Path, data: bytes) -> None:
    """Into the copy, as a new file (never through whatever ``path`` was), with the mode the
    copy's file had (the user's owner bits, from the sync: an unsaved buffer of an executable
    script stays executable), else owner-only read and write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".fc-tmp")
    try:
        st = os.lstat(path)
        mode = copy_mode(st.st_mode) if stat.S_ISREG(st.st_mode) else 0o600
    except OSError:
        mode = 0o600
    _remove(str(tmp))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, mode)
        _write_all(fd, data)
    finally:
        os.close(fd)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    os.replace(tmp, path)


# ----- the workspace scan ------------------------------------------------------------------------


class _NoticingRules(IgnoreRules):
    """The workspace's rules, telling ``noticed`` of each folder and file they ignore (the walk
    never enters an ignored folder, so each is told once)."""

    def __init__(
        self,
        inner: IgnoreRules,
        noticed: Callable[[str, bool], None],
        files: dict[str, bool] | None = None,
    ) -> None:
        # Deliberately not IgnoreRules.__init__: every decision is the inner rules'.
        self._inner = inner
        self._noticed = noticed
        self._files = {} if files is None else files  # file decisions kept between scans
        self.root = inner.root

    def is_dir_ignored(self, rel_dir: str) -> bool:
        ignored = self._inner.is_dir_ignored(rel_dir)
        if ignored:
            self._noticed(rel_dir, True)
        return ignored

    def is_file_ignored(self, rel_path: str) -> bool:
        ignored = self._files.get(rel_path)
        if ignored is None:
            ignored = self._files[rel_path] = self._inner.is_file_ignored(rel_path)
        if ignored:
            self._noticed(rel_path, False)
        return ignored


class _Scan:
    """One walk of the workspace into what its copy should hold."""

    def __init__(self, root: Path, fixtures: Sequence[str]) -> None:
        self.top = str(root)
        self.fixtures = fixtures
        self.wanted: dict[str, Source] = {}

    def reference(self, rel: str) -> None:
        self.wanted[rel] = Source(Kind.REFERENCE, target=os.path.join(self.top, rel))

    def noticed(self, rel: str, is_dir: bool) -> None:
        """An ignored folder is referenced (a cache left out; one holding a file a tool may
        rewrite in place is a folder of links instead, ``guarded_entries``); a small ignored
        file copied."""
        if is_dir:
            if ignored_dir_kind(rel.rsplit("/", 1)[-1]) is Kind.REFERENCE:
                full = os.path.join(self.top, rel)
                guarded = {} if is_big_tree(full) else guarded_entries(self.top, rel, self.fixtures)
                if guarded:
                    self.wanted.update(guarded)
                else:
                    self.reference(rel)
            return
        with contextlib.suppress(OSError):
            st = os.stat(os.path.join(self.top, rel))
            if st.st_size <= IGNORED_FILE_MAX and not rel.endswith(DB_SIDE_FILES):
                self.wanted[rel] = _file_source(rel, st, self.fixtures)

    def skip(self, rel: str) -> bool:
        """A virtual environment or ``node_modules`` no ignore file names: referenced too."""
        name = rel.rsplit("/", 1)[-1]
        if name not in REFERENCED_DIRS and "." in name:
            return False  # the common case, without a system call
        full = os.path.join(self.top, rel)
        venv = name not in REFERENCED_DIRS and os.path.isfile(os.path.join(full, "pyvenv.cfg"))
        if (name in REFERENCED_DIRS or venv) and os.path.isdir(full):
            self.reference(rel)
            return True
        return False

    def add(self, rel: str, entry: os.DirEntry[str]) -> None:
        try:
            if entry.is_symlink():
                self.wanted[rel] = Source(Kind.LINK, target=os.readlink(entry.path))
                return
            st = entry.stat(follow_symlinks=False)
        except OSError:
            return
        if not rel.endswith(DB_SIDE_FILES) or not _has_database(self.wanted, rel, self.top):
            self.wanted[rel] = _file_source(rel, st, self.fixtures)


def scan_workspace(
    root: Path,
    rules: IgnoreRules,
    fixtures: Sequence[str] = (),
    should_stop: Callable[[], bool] | None = None,
    decisions: dict[str, bool] | None = None,
) -> dict[str, Source]:
    """What the copy of ``root`` should hold (``shadow_plan``'s rule), by relative path.
    ``decisions``: the files' ignore decisions of earlier scans with the same rules (filled)."""
    scan = _Scan(root, fixtures)
    noticing = _NoticingRules(rules, scan.noticed, decisions)
    for rel, entry in walk_files(
        root, noticing, links="report", skip=scan.skip, should_stop=should_stop
    ):
        scan.add(rel, entry)
    return scan.wanted


def _has_database(wanted: Mapping[str, Source], rel: str, top: str) -> bool:
    for suffix in DB_SIDE_FILES:
        if rel.endswith(suffix):
            base = rel[: -len(suffix)]
            return base in wanted or os.path.isfile(os.path.join(top, base))
    return False


def _file_source(rel: str, st: os.stat_result, fixtures: Sequence[str]) -> Source:
    maybe = fixtures or rel.lower().endswith(DATABASE_SUFFIXES)
    kind = Kind.DATABASE if maybe and rewrites_in_place(rel, b"", fixtures) else Kind.FILE
    return Source(kind, st.st_size, st.st_mtime_ns, st.st_ino, mode=copy_mode(st.st_mode))


def scan_copy(tree: Path) -> dict[str, Source]:
    """What the copy at ``tree`` holds (its own stats; links as links), by relative path."""
    found: dict[str, Source] = {}
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        try:
            with os.scandir(tree / rel_dir if rel_dir else tree) as it:
                entries = list(it)
        except OSError:
            continue
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            try:
                if entry.is_symlink():
                    target = os.readlink(entry.path)
                    kind = Kind.REFERENCE if os.path.isabs(target) else Kind.LINK
                    found[rel] = Source(kind, target=target)
                elif entry.is_dir(follow_symlinks=False):
                    stack.append(rel)
                else:
                    st = entry.stat(follow_symlinks=False)
                    # the raw bits: a group bit of an older copy differs from what is wanted
                    mode = stat.S_IMODE(st.st_mode)
                    found[rel] = Source(Kind.FILE, st.st_size, st.st_mtime_ns, mode=mode)
            except OSError:
                continue
    return found


def _same_kind(wanted: Mapping[str, Source], have: Mapping[str, Source]) -> dict[str, Source]:
    """The copy's cold stats typed as the workspace wants them (a database's copy is a file on
    disk; a workspace link to an absolute path looks like a reference)."""
    out = dict(have)
    for rel, held in have.items():
        want = wanted.get(rel)
        if want is not None and want.kind != held.kind:
            pair = {want.kind, held.kind}
            if pair in ({Kind.FILE, Kind.DATABASE}, {Kind.LINK, Kind.REFERENCE}):
                out[rel] = Source(
                    want.kind, held.size, held.mtime_ns, target=held.target, mode=held.mode
                )
    return out


# ----- the shadow --------------------------------------------------------------------------------


@dataclass
class _State:
    """The worker thread's own (never touched from another thread)."""

    have: dict[str, Source] | None = None  # the workspace's stamps at the last sync
    generation: int = 0  # bumped whenever the copy changes
    before: dict[tuple[str, str, int], list[Diagnostic]] = field(default_factory=dict)


class ShadowWorkspace:
    """The hidden copy of the workspace at ``root``; see the module docstring. Every method
    returns at once (work goes to the shadow's thread, a ``Future`` comes back) except
    ``check``, ``sync`` and ``sync_paths``, which run on the calling thread under the
    shadow's lock (the worker itself, benchmarks, tests; never the UI thread). ``rules``: the
    workspace's ``IgnoreRules``, or a function giving the current ones."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        rules: IgnoreRules | Callable[[], IgnoreRules | None] | None = None,
        base: Path | None = None,
        checker: Checker | None = None,
        fixtures: Sequence[str] = (),
        scan_every_s: float | None = 30.0,
        check_timeout_s: float = 60.0,
    ) -> None:
        self.root = Path(root).resolve()
        own = IgnoreRules.for_folder(self.root) if rules is None else None
        # the workspace's rules now (the editor makes new ones when .gitignore changes)
        self._rules = rules if callable(rules) else (lambda: rules or own)
        self._decisions: tuple[IgnoreRules | None, dict[str, bool]] = (None, {})
        self.fixtures = tuple(fixtures)
        self.checker: Checker = checker or default_checker()
        self.check_timeout_s = check_timeout_s
        self.resync_s = RESYNC_S  # see _sync_for_check (0: a whole scan before each check)
        self._synced_at: float | None = None  # when the last whole sync ended (monotonic)
        self._warming: Future[object] | None = None
        self._rehearsed = False  # see _warm
        self._reviews_queued = 0  # a review's prepare or check submitted, not started (_warm)
        self._queued_lock = threading.Lock()
        home = (base or data_dir() / "shadow") / shadow_key(str(self.root))
        self.folder = home
        self.tree = home / "tree"
        self._lock = threading.RLock()
        self._state = _State()
        self._overlays: dict[str, bytes] = {}
        self._closed = threading.Event()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="forecode-shadow")
        self._method: CloneMethod | None = None
        self.last_sync: list[Action] = []
        self.last_scan_s = 0.0
        if scan_every_s:
            threading.Thread(
                target=self._scan_loop,
                args=(scan_every_s,),
                daemon=True,
                name="forecode-shadow-scan",
            ).start()

    # ----- the worker thread's queue ---------------------------------------------------------
    def submit(self, work: Callable[[], object]) -> Future[object]:
        """``work`` on the shadow's thread; once closed, a cancelled future instead (a save or
        a file event can still arrive from the window after the shadow closed)."""
        if not self._closed.is_set():
            with contextlib.suppress(RuntimeError):  # closed meanwhile: the pool refuses
                return self._pool.submit(work)
        done: Future[object] = Future()
        done.cancel()
        return done

    def start(self) -> Future[object]:
        """Build (or bring in step) the copy off the calling thread."""
        return self.submit(self.sync)

    def note_saved(self, rel: str) -> Future[object]:
        """The editor saved ``rel``: its overlay goes, the saved file is copied."""
        return self.submit(lambda: self.sync_paths([rel], drop_overlay=True))

    def note_changed(self, rels: Iterable[str]) -> Future[object]:
        """File events for ``rels`` (changed, created or deleted on disk)."""
        paths = list(rels)
        return self.submit(lambda: self.sync_paths(paths))

    def push_buffer(self, rel: str, text: str | bytes) -> Future[object]:
        """An unsaved buffer's content overlays ``rel`` in the copy."""
        data = text.encode("utf-8") if isinstance(text, str) else text
        return self.submit(lambda: self._overlay(rel, data))

    def drop_buffer(self, rel: str) -> Future[object]:
        """The buffer was closed unsaved: the copy goes back to the file on disk."""
        return self.submit(lambda: self.sync_paths([rel], drop_overlay=True))

    def submit_check(
        self, edits: Mapping[str, str], originals: Mapping[str, str] | None = None
    ) -> Future[Verdict]:
        return self.submit_check_each(edits, originals, None)

    def _submit_review(self, work: Callable[[], Verdict], closed_ok: bool) -> Future[Any]:
        """``work`` (a review's prepare or check) on the shadow's thread, counted while it
        waits in the queue (``_warm`` leaves its rehearsal to a review waiting behind it).
        Once closed: a cancelled future (``closed_ok``), else the pool's RuntimeError."""
        with self._queued_lock:
            self._reviews_queued += 1
        started = threading.Event()

        def run() -> Verdict:
            started.set()
            self._review_dequeued()
            return work()

        def dropped(future: Future[Verdict]) -> None:
            if future.cancelled() and not started.is_set():  # cancelled before it ran
                self._review_dequeued()

        try:
            if closed_ok and self._closed.is_set():
                raise RuntimeError("the shadow is closed")
            future = self._pool.submit(run)
        except RuntimeError:
            self._review_dequeued()
            if not closed_ok:
                raise
            done: Future[Verdict] = Future()
            done.cancel()
            return done
        future.add_done_callback(dropped)
        return future

    def _review_dequeued(self) -> None:
        with self._queued_lock:
            self._reviews_queued -= 1

    def submit_check_each(
        self,
        edits: Mapping[str, str],
        originals: Mapping[str, str] | None,
        progress: Callable[[Verdict], None] | None,
    ) -> Future[Verdict]:
        """``submit_check``, with ``progress`` (None: none) called on the shadow's thread
        with a partial ``Verdict`` (``waiting``: the servers not answered yet) as each server
        but the last answers the edited files: the new problems so far, each as new as in the
        final verdict (a problem is compared with its own server's "before")."""
        return self._submit_review(
            lambda: self.check(edits, originals, progress=progress), closed_ok=False
        )

    def prepare(self, originals: Mapping[str, str]) -> Future[object]:
        """Compute the "before" diagnostics of these files (their buffers' texts) ahead."""
        return self._submit_review(
            lambda: self.check({}, originals, before_only=True), closed_ok=True
        )

    def warm(self, originals: Mapping[str, str]) -> Future[object]:
        """``prepare`` for a file a review may soon start on (the editor focused it, the inline
        edit prompt opened): the shadow's servers start and open it, and its "before" is
        ready when the review asks. A warm still queued when the next one comes is dropped
        (switching tabs quickly queues one check, not one per tab). Only a checker that keeps
        servers running warms (``serves``: the command-line tools would run whole each time),
        and only for files it has a server for; else a cancelled future."""
        serves = getattr(self.checker, "serves", None)
        if not callable(serves) or not originals or not all(map(serves, originals)):
            done: Future[object] = Future()
            done.cancel()
            return done
        pending = self._warming
        if pending is not None:
            pending.cancel()  # only a warm that has not started: a running one finishes
        self._warming = self.submit(lambda: self._warm(originals))
        return self._warming

    def _warm(self, originals: Mapping[str, str]) -> Verdict:
        """The "before" half; the first time, one throwaway edit (a comment line appended)
        checked after it too. A server's first re-check after its start is slow (basedpyright
        on Node, at load 17-20 on 2 cores: 4.3 s, then 2.1, 1.3, 1.0 s; after one rehearsal
        the first real one took 1.2 s): the rehearsal pays that on the idle warm-up, not in
        the review's wait. A review already waiting behind the warm (a chat Apply clicked a
        second after the answer: ``bench shadow``'s ``first_review_chat_apply``) goes first:
        the rehearsal would only delay its own first re-check."""
        verdict = self.check({}, originals, before_only=True)
        with self._queued_lock:
            review_waiting = self._reviews_queued > 0
        if not self._rehearsed and not review_waiting and verdict.status is CheckStatus.CHECKED:
            self._rehearsed = True
            self.check({rel: text + REHEARSAL for rel, text in originals.items()}, originals)
        return verdict

    def close(self) -> None:
        """Stop the scans and the thread (queued work is dropped; the copy stays on disk)."""
        self._closed.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
        cancel = getattr(self.checker, "cancel", None)
        if callable(cancel):
            cancel()

    def _scan_loop(self, every: float) -> None:
        """A scan every ``every`` seconds while idle, never more than 2 % of the time."""
        while not self._closed.wait(max(every, 50 * self.last_scan_s)):
            if self._state.have is not None and self._pool._work_queue.empty():
                with contextlib.suppress(RuntimeError):  # closed meanwhile
                    self.submit(self.sync)

    # ----- syncing -----------------------------------------------------------------------------
    def sync(self) -> list[Action]:
        """Bring the whole copy in step with the workspace (a scan by stamps); the steps
        taken."""
        with self._lock:
            started = time.monotonic()
            self._make_home()
            rules = self.rules
            if self._decisions[0] is not rules:
                self._decisions = (rules, {})
            wanted = scan_workspace(
                self.root, rules, self.fixtures, self._closed.is_set, self._decisions[1]
            )
            if self._closed.is_set():
                return []
            cold = self._state.have is None
            have = _same_kind(wanted, scan_copy(self.tree)) if cold else self._state.have or {}
            keep = set(self._overlays)
            if cold and self._needs_pyright_config(wanted):
                keep.add(PYRIGHT_CONFIG)
            actions = plan_sync(wanted, have, keep)
            self._run(actions)
            if cold:
                self._write_pyright_config(wanted)
            self._state.have = wanted
            self.last_sync = actions
            self._synced_at = time.monotonic()
            self.last_scan_s = self._synced_at - started
            return actions

    def sync_paths(self, rels: Iterable[str], drop_overlay: bool = False) -> list[Action]:
        """Bring just ``rels`` in step (a save, a file event)."""
        with self._lock:
            if self._state.have is None:
                return self.sync()
            wanted_all = self._state.have
            wanted: dict[str, Source] = {}
            have: dict[str, Source] = {}
            rels = list(rels)
            were = {rel for rel in rels if self.in_copy(rel) and (self.tree / rel).is_file()}
            for rel in rels:
                if drop_overlay and self._overlays.pop(rel, None) is not None:
                    have[rel] = Source(Kind.FILE, -1)  # whatever the copy holds: replace it
                elif rel in wanted_all:
                    have[rel] = wanted_all[rel]
                full = self.root / rel
                if not self.in_copy(rel) or not full.is_file():
                    continue
                if rel not in wanted_all and self.rules.is_ignored(rel):
                    continue  # the scan decides what an ignored path is in the copy
                wanted[rel] = _file_source(rel, full.stat(), self.fixtures)
            actions = plan_sync(wanted, have, set(self._overlays))
            self._run(actions)
            for rel in have.keys() - wanted.keys():
                wanted_all.pop(rel, None)
            wanted_all.update(wanted)
            self._tell_changed(rels, were)
            return actions

    def _tell_changed(self, rels: Sequence[str], were: set[str]) -> None:
        """Tell a checker that keeps servers running of the files among ``rels`` the copy
        gained or lost (``were``: those it held before): a server rooted in the copy resolves
        imports from what it last heard, so a module the agent (or the user) adds would stay
        "could not be resolved" in every later check."""
        now = {rel for rel in rels if self.in_copy(rel) and (self.tree / rel).is_file()}
        _tell_files(self.checker, self.tree, sorted(now - were), _CREATED)
        _tell_files(self.checker, self.tree, sorted(were - now), _DELETED)

    @property
    def rules(self) -> IgnoreRules:
        return self._rules() or IgnoreRules.for_folder(self.root)

    def in_copy(self, rel: str) -> bool:
        """Whether ``rel`` is a path the copy may write: relative, without ``..``, and no link
        on the way (a referenced folder is the user's own: writing there would write into
        the user's files)."""
        parts = rel.split("/")
        if not rel or os.path.isabs(rel) or "\\" in rel or {"", ".", ".."} & set(parts):
            return False
        path = self.tree
        for part in parts:
            path = path / part
            if path.is_symlink():
                return False
        return True

    def _make_home(self) -> None:
        base = self.folder.parent
        for folder in (base, self.folder, self.tree):
            private_folder(folder)  # each level owner-only, the data folder's too
        if self._method is None:
            self._method = detect_clone(self.folder)

    @property
    def clone_method(self) -> CloneMethod:
        self._make_home()
        assert self._method is not None
        return self._method

    def _needs_pyright_config(self, wanted: Mapping[str, Source]) -> bool:
        if PYRIGHT_CONFIG in wanted:
            return False
        pyproject = self.root / "pyproject.toml"
        with contextlib.suppress(OSError):
            text = pyproject.read_text("utf-8", "replace")
            if "[tool.pyright" in text or "[tool.basedpyright" in text:
                return False
        return True

    def _write_pyright_config(self, wanted: Mapping[str, Source]) -> None:
        target = self.tree / PYRIGHT_CONFIG
        if self._needs_pyright_config(wanted) and not target.exists():
            _write_atomic(target, STANDARD_PYRIGHT.encode("utf-8"))

    def _run(self, actions: Sequence[Action]) -> None:
        """Removals first (in the plan's order), then the folders the rest need, then the
        copies and links: on ``COPY_THREADS`` threads when there are many (a first build)."""
        if not actions:
            return
        tree = str(self.tree)
        creations = [a for a in actions if a.step is not Step.REMOVE]
        for action in actions:
            if action.step is Step.REMOVE:
                self._step(action, tree)
        parents = {os.path.dirname(a.rel) for a in creations}
        for parent in sorted(parents - {""}):
            with contextlib.suppress(OSError):  # a failure shows as its files' failures
                os.makedirs(os.path.join(tree, parent), exist_ok=True)
        if len(creations) >= PARALLEL_COPIES:
            size = -(-len(creations) // (COPY_THREADS * 4))
            batches = [creations[i : i + size] for i in range(0, len(creations), size)]
            with ThreadPoolExecutor(
                COPY_THREADS, thread_name_prefix="forecode-shadow-copy"
            ) as pool:
                list(pool.map(lambda batch: self._steps(batch, tree), batches))
        else:
            for action in creations:
                self._step(action, tree)
        self._state.generation += 1

    def _steps(self, actions: Sequence[Action], tree: str) -> None:
        for action in actions:
            self._step(action, tree)

    def _step(self, action: Action, tree: str) -> None:
        if self._closed.is_set():
            return
        dst = os.path.join(tree, action.rel)
        try:
            if action.step is Step.REMOVE:
                _remove(dst)
            else:
                self._create(action, dst)
        except OSError as exc:
            log.warning("shadow: %s of %s failed: %s", action.step, action.rel, exc.strerror)

    def _create(self, action: Action, dst: str) -> None:
        source = action.source
        assert source is not None
        src = os.path.join(self.root, action.rel)
        if action.step is Step.COPY:
            self._copy_file(src, dst, source)
            return
        if os.path.lexists(dst):
            _remove(dst)
        if action.step in (Step.LINK, Step.REFERENCE):
            os.symlink(source.target, dst)
        elif not snapshot_database(src, dst):
            self._copy_file(src, dst, source, clone=False)  # not a database after all
        else:
            _stamp_like(src, dst, source.mode)

    def _copy_file(self, src: str, dst: str, source: Source, clone: bool = True) -> None:
        """``src`` into ``dst`` as a file of its own (a clone where the filesystem can), with
        the source's mtime; a SQLite database under any name is snapshotted instead."""
        method = self._method or CloneMethod.COPY
        fs = os.open(src, os.O_RDONLY)
        try:
            head = os.read(fs, CHUNK)
            if head.startswith(SQLITE_HEADER):
                _remove(dst)
                if snapshot_database(src, dst):
                    _stamp_like(src, dst, source.mode)
                    return
                clone = False
            if clone and method is CloneMethod.CLONEFILE:
                _remove(dst)
                if _clone_into(fs, src, dst, method):
                    _stamp_like(src, dst, source.mode)  # clonefile copies the group bits
                    return
            fd = _open_fresh(dst)
            try:
                cloned = False
                if clone and method is CloneMethod.FICLONE:
                    with contextlib.suppress(OSError):
                        fcntl.ioctl(fd, FICLONE, fs)
                        cloned = True
                if not cloned:
                    _write_all(fd, head)
                    if len(head) == CHUNK:
                        _copy_rest(fs, fd)
                mtime = source.mtime_ns or os.fstat(fs).st_mtime_ns
                os.utime(fd, ns=(mtime, mtime))
                os.fchmod(fd, source.mode or copy_mode(os.fstat(fs).st_mode))
            finally:
                os.close(fd)
        finally:
            os.close(fs)

    def _overlay(self, rel: str, data: bytes) -> None:
        with self._lock:
            if self._state.have is None:
                self.sync()
            if not self.in_copy(rel):
                return  # a file in a referenced tree (a venv's): the copy has the user's own
            if self._overlays.get(rel) == data:
                return  # pushed again unchanged (each review pushes the unsaved buffers)
            were = {rel} if (self.tree / rel).is_file() else set()
            self._overlays[rel] = data
            _write_atomic(self.tree / rel, data)
            self._state.generation += 1
            self._tell_changed([rel], were)

    # ----- checking --------------------------------------------------------------------------
    def check(
        self,
        edits: Mapping[str, str],
        originals: Mapping[str, str] | None = None,
        *,
        before_only: bool = False,
        progress: Callable[[Verdict], None] | None = None,
    ) -> Verdict:
        """The new diagnostics ``edits`` (path -> new text) cause, against ``originals``
        (path -> the buffer's text; else the copy's file). The copy is put back after.
        ``progress``: see ``submit_check_each``."""
        started = time.monotonic()
        originals = dict(originals or {})
        paths = tuple(sorted({*edits, *originals}))
        if not self.checker.available:
            return Verdict(CheckStatus.NO_CHECKER, paths=paths, note="no checker is installed")
        with self._lock:
            self._sync_for_check(paths)
            outside = [rel for rel in paths if not self.in_copy(rel)]
            if outside:
                return Verdict(
                    CheckStatus.FAILED,
                    paths=paths,
                    note=f"{outside[0]} is not a file of the workspace's copy (outside it, "
                    "or in a referenced folder such as a virtual environment)",
                )
            deadline = started + self.check_timeout_s
            saved = {rel: self._read_copy(rel) for rel in paths}
            created = [rel for rel in edits if saved.get(rel) is None]  # new in the copy
            try:
                bases = self._put_originals(paths, originals, saved)
                before = self._before(paths, bases, deadline)
                if before_only:
                    return Verdict(CheckStatus.CHECKED, before=len(before), paths=paths)
                for rel, text in edits.items():
                    _write_atomic(self.tree / rel, text.encode("utf-8"))
                _tell_files(self.checker, self.tree, created, _CREATED)
                after = self._after(edits, before, bases, deadline, started, progress)
            except CheckTimeout:
                return Verdict(
                    CheckStatus.TIMED_OUT,
                    paths=paths,
                    seconds=time.monotonic() - started,
                    note=f"the check took over {self.check_timeout_s:g} s",
                )
            except (OSError, ValueError) as exc:
                return Verdict(CheckStatus.FAILED, paths=paths, note=str(exc))
            finally:
                self._restore(saved)
                _tell_files(self.checker, self.tree, created, _DELETED)  # removed again
                release = getattr(self.checker, "release", None)
                if callable(release):
                    release(self.tree, paths)
        new = _new_problems(edits, before, after, bases)
        self._rehearsed = True  # a re-check ran: the servers' slow first one is paid (_warm)
        return Verdict(
            CheckStatus.CHECKED,
            tuple(new),
            len(before),
            len(after),
            paths,
            time.monotonic() - started,
        )

    def _after(
        self,
        edits: Mapping[str, str],
        before: list[Diagnostic],
        bases: Mapping[str, str],
        deadline: float,
        started: float,
        progress: Callable[[Verdict], None] | None,
    ) -> list[Diagnostic]:
        """The edited files' diagnostics; with ``progress`` and a checker that answers server
        by server (``diagnostics_each``), a partial verdict after each answer but the last."""
        each_of = getattr(self.checker, "diagnostics_each", None)
        if progress is None or not callable(each_of):
            return self.checker.diagnostics(self.tree, list(edits), deadline)
        paths = tuple(sorted({*edits, *bases}))

        def each(so_far: list[Diagnostic], waiting: tuple[str, ...]) -> None:
            new = _new_problems(edits, before, so_far, bases)
            seconds = time.monotonic() - started
            partial = Verdict(CheckStatus.CHECKED, tuple(new), len(before), len(so_far), paths)
            progress(dataclasses.replace(partial, seconds=seconds, waiting=waiting))

        found: list[Diagnostic] = each_of(self.tree, list(edits), deadline, each)
        return found

    def _sync_for_check(self, paths: Sequence[str]) -> None:
        """Changes the editor was not told of (another program, a git checkout): the whole
        workspace is scanned when the last whole scan is older than ``resync_s``, else just
        the checked files are (a review's "before" half, run when it started, scanned a
        moment ago: a second scan of a 10k-file tree is 80 ms of the verdict's wait at load
        4, several hundred at load 35)."""
        synced = self._synced_at
        if synced is None or time.monotonic() - synced >= self.resync_s:
            self.sync()
        else:
            self.sync_paths([rel for rel in paths if self.in_copy(rel)])

    def _read_copy(self, rel: str) -> bytes | None:
        path = self.tree / rel
        try:
            return None if path.is_symlink() else path.read_bytes()
        except OSError:
            return None

    def _put_originals(
        self, paths: Sequence[str], originals: Mapping[str, str], saved: Mapping[str, bytes | None]
    ) -> dict[str, str]:
        bases: dict[str, str] = {}
        for rel in paths:
            if rel in originals:
                data = originals[rel].encode("utf-8")
                if saved.get(rel) != data:
                    _write_atomic(self.tree / rel, data)
                bases[rel] = originals[rel]
            else:
                held = saved.get(rel)
                bases[rel] = held.decode("utf-8", "replace") if held is not None else ""
        return bases

    def _before(
        self, paths: Sequence[str], bases: Mapping[str, str], deadline: float
    ) -> list[Diagnostic]:
        state = self._state
        out: list[Diagnostic] = []
        todo: list[str] = []
        for rel in paths:
            key = (rel, hashlib.sha256(bases[rel].encode("utf-8")).hexdigest(), state.generation)
            cached = state.before.get(key)
            if cached is None:
                todo.append(rel)
            else:
                out.extend(cached)
        if todo:
            found = self.checker.diagnostics(self.tree, todo, deadline)
            for rel in todo:
                key = (
                    rel,
                    hashlib.sha256(bases[rel].encode("utf-8")).hexdigest(),
                    state.generation,
                )
                mine = [d for d in found if d.path == rel]
                state.before = {k: v for k, v in state.before.items() if k[2] == state.generation}
                state.before[key] = mine
                out.extend(mine)
        return out

    def _restore(self, saved: Mapping[str, bytes | None]) -> None:
        for rel, data in saved.items():
            path = self.tree / rel
            try:
                if data is None:
                    if path.exists() and not path.is_symlink():
                        path.unlink()
                elif self._read_copy(rel) != data:
                    _write_atomic(path, data)
                    src = self.root / rel
                    if rel not in self._overlays and src.is_file():
                        _stamp_like(str(src), str(path))
            except OSError as exc:
                log.warning("shadow: restoring %s failed: %s", rel, exc.strerror)


def _new_problems(
    edits: Mapping[str, str],
    before: Sequence[Diagnostic],
    after: Sequence[Diagnostic],
    bases: Mapping[str, str],
) -> list[Diagnostic]:
    """The errors and warnings of ``after`` that ``before`` did not have (VS Code's rule: a
    hint such as "x is not accessed" is no problem to show or to send back), lines mapped
    through each edit. A subset of the servers' answers gives the subset of the final answer:
    a problem only matches one of its own source."""
    maps = {rel: line_map(bases.get(rel, ""), text) for rel, text in edits.items()}
    problems = [d for d in after if d.severity.rank <= Severity.WARNING.rank]
    return new_diagnostics(list(before), problems, maps)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _copy_rest(src: int, dst: int) -> None:
    """The rest of ``src`` (from its offset) onto ``dst``: in the kernel by
    ``copy_file_range`` where it can (no bytes through Python), else by reads and writes."""
    if hasattr(os, "copy_file_range"):
        try:
            while os.copy_file_range(src, dst, 1 << 30):
                pass
            return
        except OSError as exc:
            if exc.errno not in _NO_RANGE_COPY:
                raise
    while data := os.read(src, CHUNK):
        _write_all(dst, data)


def _stamp_like(src: str, dst: str, mode: int = 0) -> None:
    """``src``'s times onto ``dst``, and its mode for the copy (``copy_mode``)."""
    st = os.stat(src)
    os.chmod(dst, mode or copy_mode(st.st_mode))
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))


# ----- the repair loop ---------------------------------------------------------------------------


class RepairModel(Protocol):
    """The model at the repair seam: new edits for ``message`` (the new diagnostics), or None
    when it has none."""

    def repair(self, edits: Mapping[str, str], message: str) -> Mapping[str, str] | None: ...


@dataclass(frozen=True)
class RepairOutcome:
    edits: dict[str, str]
    verdict: Verdict
    next: Next
    rounds: int


def check_and_repair(
    shadow: ShadowWorkspace,
    edits: Mapping[str, str],
    model: RepairModel,
    policy: RepairPolicy | None = None,
    originals: Mapping[str, str] | None = None,
) -> RepairOutcome:
    """Check ``edits``; while the policy says so, send the new diagnostics to ``model`` and
    check its answer. Returns the last edits, their verdict and what comes next (show the
    review, or ask the user)."""
    policy = policy or RepairPolicy()
    current = dict(edits)
    rounds = 0
    while True:
        verdict = shadow.check(current, originals)
        if verdict.status is not CheckStatus.CHECKED:
            return RepairOutcome(current, verdict, Next.ASK_USER, rounds)
        step, policy = policy.next(verdict.new)
        if step is not Next.REPAIR:
            return RepairOutcome(current, verdict, step, rounds)
        answer = model.repair(current, repair_message(verdict.new))
        rounds += 1
        if not answer:
            return RepairOutcome(current, verdict, Next.ASK_USER, rounds)
        current = {**current, **answer}
