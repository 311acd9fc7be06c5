"""The codebase index on the service: trees, the chunk cache, and search, behind one interface.

``IndexStore`` is what the ``IndexSync`` servicer talks to; it never sees plaintext (see the
IndexSync section of ``proto/forecode/v1/forecode.proto``). Two kinds, one class, one API
(``open_store(folder, kind)``, ``STORE_KINDS``):

``embedded`` (the default; needs no server)
    Everything in one SQLite file (stdlib ``sqlite3``, WAL journal): trees, chunk cache, BM25
    postings and the embeddings (float32 blobs). Vector search is numpy brute force over a
    matrix kept in memory per workspace: 100k chunks x 384 dims is 150 MB and one
    matrix-vector product of a few milliseconds; exact, so nothing to tune or rebuild.
``milvus``
    The same SQLite file for trees and postings, the embeddings in Milvus through ``pymilvus``:
    Milvus Lite in-process on a local folder (``<folder>/milvus.db``, pure Python, for
    development and CI) or a Milvus cluster (``milvus_uri="http://host:19530"``) for teams
    that outgrow one machine, with the same client calls. Optional extra ``forecode[milvus]``.
    Chosen over Qdrant's local mode, measured here: Qdrant's local mode commits (fsyncs) SQLite
    once per point, 7 ms each (20k points: 205 s against Milvus Lite's 6 s); see the report in
    ``bench/index.py``.

The data model
--------------
* A **workspace** per key id; its **chunk cache** maps a keyed chunk hash to its embedding, its
  length in terms and its postings (keyed term -> count). Shared by every tree of the workspace,
  so a teammate's client that syncs the same code uploads and computes no embedding.
* A **tree** per (workspace, tree id): ``nodes`` (parent path, name, is-dir, hash) and, per
  file, its chunk occurrences (chunk, line range). Folder hashes are computed here from the
  children (``merkle.folder_hash``), never taken from the client.

Commits are atomic and verified
-------------------------------
``commit`` runs in one SQLite transaction: check the base root (another commit since the client
reconciled: ``StaleBase``), apply deletions then writes, recompute exactly the folders on the
changed paths, and compare the new root with the one the client computed. Any mismatch, a
missing chunk or a file/folder clash rolls everything back (``CommitRejected``): a tree is
always one the client had, never half of one. A commit whose ``new_root`` is already the
tree's root succeeds at once (``already_applied``): retries are idempotent. Chunks are stored
by ``put_chunks`` as they arrive, each batch its own transaction: they are content-addressed,
so keeping them when a commit fails is never wrong, and a resumed sync need not send them again.

Search
------
Only over the chunks of one tree, and only for the caller that presents that tree's current root
(``WrongRoot`` otherwise): the holdings proof, see ``IndexSyncServicer``. Vector (cosine),
lexical (BM25 over keyed terms, statistics over the tree's chunks) or both fused by reciprocal
rank (``forecode_core.index.search``); chunks are then expanded to their occurrences (a chunk
in two files is two hits).

Thread-safe: one lock around one SQLite connection (the service's handlers are threads).

Damage, a full disk, and who may read it
----------------------------------------
The store is created atomically (a complete, empty store is written under a temporary name and
linked into place), so the service never leaves an ``index.sqlite3`` that it did not finish:
an existing file that is empty, is not SQLite, fails ``PRAGMA quick_check`` (bounded by
``INTEGRITY_CHECK_S``: a bigger store is checked that long, then trusted) or lacks the store's
tables is damage, and opening it raises ``StoreDamaged`` with the path and what to do (move it
aside or delete it, then let the editors sync again: they hold the source). A damaged file is
never changed or replaced. Damage met later (SQLite's CORRUPT/NOTADB) raises ``StoreDamaged``
too. A full disk (SQLite's FULL, ``OSError`` ENOSPC) raises ``StoreFull`` ("disk full" and the
path): the call's transaction is rolled back, so the previous tree stays searchable, and the
next call after space returns works. The folder is made owner-only (0700; its files 0600,
SQLite's ``-wal``/``-shm`` included: SQLite gives them the database file's mode); looser modes
on an existing store are tightened, with one log line.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from cloud_server.config import StoreKind
from forecode_core.index.merkle import WireEntry, folder_hash
from forecode_core.index.search import LEXICAL_WEIGHT, SearchMode, bm25_idf, bm25_weights, rrf

__all__ = [
    "DEFAULT_DIMENSION",
    "STORE_KINDS",
    "ChunkRecord",
    "ChunkRef",
    "CommitRejected",
    "CommitResult",
    "FileRecord",
    "FolderView",
    "Hit",
    "IndexStore",
    "MilvusVectors",
    "NumpyVectors",
    "StaleBase",
    "StoreDamaged",
    "StoreFull",
    "StoreStats",
    "VectorIndex",
    "WrongRoot",
    "default_index_dir",
    "open_store",
]

log = logging.getLogger("forecode.cloud")

DEFAULT_DIMENSION = 384
SCHEMA_VERSION = 1
DB_NAME = "index.sqlite3"
MILVUS_LITE_NAME = "milvus.db"
MODES: tuple[str, ...] = tuple(SearchMode)
INTEGRITY_CHECK_S = 10.0  # PRAGMA quick_check at open, at most this long
SQLITE_HEADER = b"SQLite format 3\0"
_SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_NOTADB = 11, 13, 26
_PARTIAL = ".new-"  # DB_NAME + this + a random tail: a store being created

_SQL_BATCH = 500  # host parameters per IN (...) query


def default_index_dir() -> Path:
    """Where the service keeps its index unless told: ``$FORECODE_INDEX_DIR``, else
    ``index`` in Forecode's data folder (``$FORECODE_DATA_DIR`` or the platform's, as
    ``forecode_core.store.settings.data_dir``)."""
    env = os.environ.get("FORECODE_INDEX_DIR", "").strip()
    if env:
        return Path(env)
    data = os.environ.get("FORECODE_DATA_DIR", "").strip()
    if data:
        return Path(data) / "index"
    import platformdirs

    return Path(platformdirs.user_data_dir("forecode", appauthor=False)) / "index"


# ---------------------------------------------------------------------------------------------
# records and outcomes


@dataclass(frozen=True)
class ChunkRecord:
    """One entry of the chunk cache: keyed hash, embedding, distinct keyed terms and counts."""

    hash: bytes
    vector: npt.NDArray[np.float32]
    terms: tuple[bytes, ...]
    counts: tuple[int, ...]


@dataclass(frozen=True)
class ChunkRef:
    hash: bytes
    start_line: int
    end_line: int


@dataclass(frozen=True)
class FileRecord:
    path: str  # obfuscated
    hash: bytes
    chunks: tuple[ChunkRef, ...] = ()


@dataclass(frozen=True)
class FolderView:
    path: str
    found: bool
    hash: bytes
    children: tuple[WireEntry, ...]
    complete: bool


@dataclass(frozen=True)
class CommitResult:
    root: bytes
    already_applied: bool
    files_written: int = 0
    paths_deleted: int = 0


@dataclass(frozen=True)
class Hit:
    path: str
    start_line: int
    end_line: int
    chunk_hash: bytes
    score: float
    vector_score: float = 0.0
    lexical_score: float = 0.0
    vector_rank: int = 0
    lexical_rank: int = 0


@dataclass(frozen=True)
class StoreStats:
    root: bytes | None
    files: int
    folders: int
    tree_chunks: int
    cached_chunks: int
    commits: int
    store: str
    dimension: int


class StaleBase(Exception):
    """The tree's root is neither the commit's base nor its result: it changed since the
    client reconciled. Nothing was applied; reconcile again."""


class CommitRejected(Exception):
    """A commit that cannot apply (missing chunks, a file where a folder goes, a result that
    does not add up to its new root). Nothing was applied."""


class WrongRoot(Exception):
    """A search presented a root that is not the tree's current one."""


class StoreDamaged(Exception):
    """The store's file is damaged (empty, not SQLite, failing its integrity check, missing its
    tables). Nothing was changed; the message names the file and what to do."""


class StoreFull(Exception):
    """The disk under the store is full: nothing of the call was applied. The message says
    "disk full" and names the file."""


def _damaged(db: Path, what: str) -> StoreDamaged:
    return StoreDamaged(
        f"the index store {db} is damaged: {what}. It was left as it is. Move it aside (or "
        f"delete it, with any {db.name}-wal and {db.name}-shm beside it) and start the service "
        "again: it makes a new, empty store, and each editor uploads its index again at its "
        "next sync (the source stays on the editors' machines)."
    )


def _full(db: Path, cause: object) -> StoreFull:
    return StoreFull(
        f"disk full: the index store {db} cannot grow ({cause}). Nothing of this call was "
        "applied and the previous index stays searchable; free space on that disk, then sync "
        "again."
    )


def _sqlite_code(exc: sqlite3.Error) -> int:
    return int(getattr(exc, "sqlite_errorcode", -1) or -1) & 0xFF


def _translate(db: Path, exc: BaseException) -> Exception | None:
    """``StoreFull`` / ``StoreDamaged`` for a full disk or a damaged file, else None."""
    if isinstance(exc, sqlite3.Error):
        code = _sqlite_code(exc)
        if code == _SQLITE_FULL or "disk is full" in str(exc):
            return _full(db, f"SQLite: {exc}")
        if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
            return _damaged(db, f"SQLite says {exc!s}")
    elif isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return _full(db, f"{exc.strerror or 'no space left on device'}")
    return None


# ---------------------------------------------------------------------------------------------
# the store's files: owner-only, created atomically, checked before use


def _owner_only(folder: Path) -> int:
    """Make ``folder`` 0700 and everything in it 0700 (folders) / 0600 (files), symlinks left
    alone; returns how many modes were loosened before. No-op on Windows."""
    if os.name == "nt":
        return 0
    tightened = 0

    def tighten(path: str, wanted: int) -> None:
        nonlocal tightened
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode) or stat.S_IMODE(st.st_mode) == wanted:
            return
        try:
            os.chmod(path, wanted)
        except PermissionError:
            raise PermissionError(
                f"cannot make {path} owner-only: it belongs to another user; "
                "keep the index in a folder of your own (--index-dir)"
            ) from None
        tightened += 1

    tighten(str(folder), 0o700)
    for top, dirs, files in os.walk(folder):
        for name in dirs:
            tighten(os.path.join(top, name), 0o700)
        for name in files:
            tighten(os.path.join(top, name), 0o600)
    return tightened


def _fsync_folder(folder: Path) -> None:
    if os.name == "nt":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_partials(folder: Path, older_than_s: float = 60.0) -> None:
    """Stores whose creation never finished (a crash between create and link)."""
    now = time.time()
    for path in folder.glob(DB_NAME + _PARTIAL + "*"):
        with contextlib.suppress(OSError):
            if now - path.lstat().st_mtime > older_than_s:
                path.unlink()


def _create_store(db: Path, meta: dict[str, str]) -> None:
    """A complete, empty store at ``db``, made under a temporary name (mode 0600) and linked
    into place, so ``db`` never exists half-made. If another process made ``db`` meanwhile,
    its file stays and this one is dropped."""
    temp = db.with_name(f"{db.name}{_PARTIAL}{secrets.token_hex(6)}")
    os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        conn = sqlite3.connect(temp, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
            conn.executemany("INSERT INTO meta(key, value) VALUES (?, ?)", list(meta.items()))
        finally:
            conn.close()  # the last connection: checkpointed, -wal and -shm removed
        with open(temp, "rb") as fh:
            os.fsync(fh.fileno())
        try:
            os.link(temp, db)  # fails if db exists: never over another store
        except FileExistsError:
            pass
        except OSError:  # a file system without hard links
            if not os.path.lexists(db):
                os.replace(temp, db)
        _fsync_folder(db.parent)
    finally:
        for extra in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{temp}{extra}")


_TABLES = ("meta", "workspaces", "chunks", "postings", "trees", "nodes", "occurrences")


def _check_store(db: Path, budget_s: float) -> None:
    """``StoreDamaged`` unless ``db`` looks like a whole store: a SQLite header, the store's
    tables, and ``PRAGMA quick_check`` passing (for at most ``budget_s`` seconds). Reads only:
    a read-only connection, which never checkpoints a WAL file into the database."""
    size = db.stat().st_size
    if size == 0:
        raise _damaged(
            db, "the file is empty (0 bytes), but this service only ever makes complete stores"
        )
    with open(db, "rb") as fh:
        header = fh.read(100)
    if len(header) < 100 or not header.startswith(SQLITE_HEADER):
        raise _damaged(db, "it does not start with a SQLite header")
    conn = sqlite3.connect(db.resolve().as_uri() + "?mode=ro", uri=True)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        lacking = [t for t in _TABLES if t not in tables]
        if lacking:
            raise _damaged(
                db, f"it lacks the tables {', '.join(lacking)} (not a Forecode index, or cut short)"
            )
        deadline = time.monotonic() + budget_s
        conn.set_progress_handler(lambda: time.monotonic() > deadline, 10_000)
        try:
            problems = [
                line.strip()
                for r in conn.execute("PRAGMA quick_check(5)")
                for line in str(r[0]).splitlines()
                if line.strip() and not line.startswith("***")
            ]
        except sqlite3.OperationalError as exc:
            if "interrupt" not in str(exc):
                raise
            log.warning(
                "index store %s: the integrity check stopped after %.0f s (a big "
                "store); its header and tables are fine",
                db,
                budget_s,
            )
            problems = ["ok"]
        finally:
            conn.set_progress_handler(None, 0)
    except sqlite3.DatabaseError as exc:
        mapped = _translate(db, exc)
        if isinstance(mapped, StoreDamaged):
            raise mapped from None
        raise
    finally:
        conn.close()
    if problems != ["ok"]:
        raise _damaged(db, "its integrity check failed (" + "; ".join(problems[:3]) + ")")


# ---------------------------------------------------------------------------------------------
# vector indexes


class VectorIndex(Protocol):
    """Where the embeddings live. ``add`` runs inside the store's transaction; ``commit`` /
    ``rollback`` follow it. Vectors are L2-normalised, so inner product is cosine."""

    kind: str

    def add(self, ws: int, ids: Sequence[int], vectors: npt.NDArray[np.float32]) -> None: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...

    def search(
        self, ws: int, query: npt.NDArray[np.float32], allowed: npt.NDArray[np.int64], k: int
    ) -> list[tuple[int, float]]: ...

    def files(self) -> list[Path]: ...

    def close(self) -> None: ...


def _top(
    ids: npt.NDArray[np.int64], scores: npt.NDArray[np.float32], k: int
) -> list[tuple[int, float]]:
    if len(scores) == 0:
        return []
    k = min(k, len(scores))
    part = np.argpartition(-scores, k - 1)[:k]
    order = part[np.lexsort((ids[part], -scores[part]))]  # score, then id: deterministic
    return [(int(ids[i]), float(scores[i])) for i in order]


class NumpyVectors:
    """Embeddings as float32 blobs in the store's SQLite file; a per-workspace matrix in memory
    (loaded on the first search, appended after each commit) searched by brute force."""

    kind: str = StoreKind.EMBEDDED

    def __init__(self, conn: sqlite3.Connection, dimension: int) -> None:
        self._conn = conn
        self._dim = dimension
        self._cache: dict[int, tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], int]] = {}
        self._staged: list[tuple[int, list[int], npt.NDArray[np.float32]]] = []

    def add(self, ws: int, ids: Sequence[int], vectors: npt.NDArray[np.float32]) -> None:
        self._conn.executemany(
            "UPDATE chunks SET vec = ? WHERE id = ?",
            [(v.tobytes(), i) for i, v in zip(ids, vectors, strict=True)],
        )
        self._staged.append((ws, list(ids), vectors))

    def commit(self) -> None:
        staged, self._staged = self._staged, []
        for ws, ids, vectors in staged:
            if ws not in self._cache:
                continue  # loaded whole on the first search
            known, matrix, n = self._cache[ws]
            need = n + len(ids)
            if need > len(matrix):
                grown = np.empty((max(need, 2 * len(matrix), 1024), self._dim), np.float32)
                grown[:n] = matrix[:n]
                matrix = grown
            matrix[n:need] = vectors
            known = np.concatenate([known, np.asarray(ids, np.int64)])
            self._cache[ws] = (known, matrix, need)

    def rollback(self) -> None:
        self._staged.clear()

    def _load(self, ws: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], int]:
        cached = self._cache.get(ws)
        if cached is None:
            rows = self._conn.execute(
                "SELECT id, vec FROM chunks WHERE ws = ? AND vec IS NOT NULL ORDER BY id", (ws,)
            ).fetchall()
            ids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
            matrix = np.empty((max(len(rows), 1024), self._dim), np.float32)
            for i, (_id, blob) in enumerate(rows):
                matrix[i] = np.frombuffer(blob, np.float32)
            cached = (ids, matrix, len(rows))
            self._cache[ws] = cached
        return cached

    def search(
        self, ws: int, query: npt.NDArray[np.float32], allowed: npt.NDArray[np.int64], k: int
    ) -> list[tuple[int, float]]:
        ids, matrix, n = self._load(ws)
        if n == 0 or len(allowed) == 0:
            return []
        rows = np.searchsorted(ids, allowed)
        rows = rows[(rows < n) & (ids[np.minimum(rows, n - 1)] == allowed)]
        scores = (matrix[:n] @ query)[rows]
        return _top(ids[rows], scores, k)

    def files(self) -> list[Path]:
        return []  # inside the store's SQLite file

    def close(self) -> None:
        self._cache.clear()


class MilvusVectors:
    """Embeddings in Milvus (``pymilvus.MilvusClient``): Milvus Lite for a local ``.db``
    folder, a Milvus cluster for an ``http(s)://`` URI. One collection; each point is
    (chunk id, workspace, vector), inner-product metric on normalised vectors.

    A tree's chunks are a subset of its workspace's: a small tree filters by id in Milvus; a
    big one fetches more than it needs (up to Milvus's 16,384 limit) and keeps those of the
    tree."""

    kind: str = StoreKind.MILVUS
    COLLECTION = "forecode_chunks"
    MAX_FILTER_IDS = 2048
    MAX_LIMIT = 16384

    def __init__(self, uri: str, dimension: int, *, token: str | None = None) -> None:
        from pymilvus import DataType, MilvusClient

        self._uri = uri
        self._local = not uri.startswith(("http://", "https://", "tcp://", "unix:"))
        self._client = MilvusClient(uri=uri, token=token or "")
        self._dirty = False
        if not self._client.has_collection(self.COLLECTION):
            schema = self._client.create_schema(auto_id=False)
            schema.add_field("id", DataType.INT64, is_primary=True)
            schema.add_field("ws", DataType.INT64)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
            index = self._client.prepare_index_params()
            index.add_index(
                field_name="vector",
                index_type="FLAT" if self._local else "AUTOINDEX",
                metric_type="IP",
            )
            self._client.create_collection(self.COLLECTION, schema=schema, index_params=index)
        self._client.load_collection(self.COLLECTION)

    def add(self, ws: int, ids: Sequence[int], vectors: npt.NDArray[np.float32]) -> None:
        # Upserted at once (Milvus has no transaction to join). Ids come from the SQLite rows
        # of the same chunks: if the SQLite transaction rolls back, a later chunk that gets the
        # same id upserts over this point.
        rows = [
            {"id": int(i), "ws": int(ws), "vector": v} for i, v in zip(ids, vectors, strict=True)
        ]
        for start in range(0, len(rows), 1000):
            self._client.upsert(self.COLLECTION, rows[start : start + 1000])
        self._dirty = True

    def commit(self) -> None:
        if self._dirty and self._local:
            self._client.flush(self.COLLECTION)  # Milvus Lite searches flushed data fast
        self._dirty = False

    def rollback(self) -> None:
        pass

    def search(
        self, ws: int, query: npt.NDArray[np.float32], allowed: npt.NDArray[np.int64], k: int
    ) -> list[tuple[int, float]]:
        if len(allowed) == 0:
            return []
        if len(allowed) <= self.MAX_FILTER_IDS:
            found = self._query(
                query,
                min(k, len(allowed)),
                f"ws == {int(ws)} and id in [{','.join(map(str, allowed))}]",
            )
            return found[:k]
        limit = min(self.MAX_LIMIT, 4 * k)
        while True:
            found = self._query(query, limit, f"ws == {int(ws)}")
            ids = np.fromiter((i for i, _s in found), np.int64, len(found))
            keep = np.isin(ids, allowed)
            kept = [hit for hit, ok in zip(found, keep, strict=True) if ok]
            if len(kept) >= k or len(found) < limit or limit >= self.MAX_LIMIT:
                return kept[:k]
            limit = min(self.MAX_LIMIT, limit * 4)

    def _query(
        self, query: npt.NDArray[np.float32], limit: int, expr: str
    ) -> list[tuple[int, float]]:
        result = self._client.search(
            self.COLLECTION,
            [query],
            limit=limit,
            filter=expr,
            output_fields=["id"],
            search_params={"metric_type": "IP"},
        )
        return [(int(hit["id"]), float(hit["distance"])) for hit in result[0]]

    def files(self) -> list[Path]:
        return [Path(self._uri)] if self._local else []

    def close(self) -> None:
        self._client.close()
        if self._local:
            try:
                from milvus_lite.server_manager import server_manager_instance
            except ImportError:  # pragma: no cover - an older milvus-lite
                return
            server_manager_instance.release_server(self._uri)


# ---------------------------------------------------------------------------------------------
# the store

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS workspaces(id INTEGER PRIMARY KEY, key_id TEXT UNIQUE NOT NULL);
CREATE TABLE IF NOT EXISTS chunks(
    id INTEGER PRIMARY KEY, ws INTEGER NOT NULL, hash BLOB NOT NULL,
    length INTEGER NOT NULL, vec BLOB, UNIQUE(ws, hash));
CREATE TABLE IF NOT EXISTS postings(
    ws INTEGER NOT NULL, term BLOB NOT NULL, chunk INTEGER NOT NULL, tf INTEGER NOT NULL,
    PRIMARY KEY(ws, term, chunk)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS trees(
    id INTEGER PRIMARY KEY, ws INTEGER NOT NULL, tree_id BLOB NOT NULL, root BLOB,
    generation INTEGER NOT NULL DEFAULT 0, UNIQUE(ws, tree_id));
CREATE TABLE IF NOT EXISTS nodes(
    tree INTEGER NOT NULL, parent TEXT NOT NULL, name TEXT NOT NULL, is_dir INTEGER NOT NULL,
    hash BLOB, PRIMARY KEY(tree, parent, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS occurrences(
    tree INTEGER NOT NULL, path TEXT NOT NULL, seq INTEGER NOT NULL, chunk INTEGER NOT NULL,
    start_line INTEGER NOT NULL, end_line INTEGER NOT NULL,
    PRIMARY KEY(tree, path, seq)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS occurrences_by_chunk ON occurrences(tree, chunk);
"""


def _split(path: str) -> tuple[str, str]:
    parent, _slash, name = path.rpartition("/")
    return parent, name


def _ancestors(folder: str) -> Iterable[str]:
    """``folder`` and every folder above it, up to the root ``""``."""
    while folder:
        yield folder
        folder = folder.rpartition("/")[0]
    yield ""


def _below(path: str) -> tuple[str, str]:
    """The range of paths strictly inside folder ``path`` ('/' is 0x2f, '0' is 0x30)."""
    return path + "/", path + "0"


def _batches(items: Sequence[Any], size: int = _SQL_BATCH) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _Lexicon:
    """A workspace's chunk ids (sorted) and lengths, for BM25."""

    def __init__(self, ids: npt.NDArray[np.int64], lengths: npt.NDArray[np.float64]) -> None:
        self.ids = ids
        self.lengths = lengths

    def rows(self, chunk_ids: npt.NDArray[np.int64]) -> npt.NDArray[np.intp]:
        return np.searchsorted(self.ids, chunk_ids)


class IndexStore:
    """See the module docstring. ``folder`` holds the SQLite file (and Milvus Lite's folder);
    ``vectors`` picks the vector index (``"embedded"``, ``"milvus"``, or a factory taking the
    connection and the dimension)."""

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        kind: str = StoreKind.EMBEDDED,
        dimension: int = DEFAULT_DIMENSION,
        milvus_uri: str | None = None,
        milvus_token: str | None = None,
        integrity_check_s: float = INTEGRITY_CHECK_S,
    ) -> None:
        if kind not in STORE_KINDS:
            raise ValueError(
                f"unknown index store {kind!r}; valid kinds: {', '.join(sorted(STORE_KINDS))}"
            )
        self.folder = Path(folder)
        self.path = self.folder / DB_NAME
        self.dimension = dimension
        self._lock = threading.RLock()
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        loosened = _owner_only(self.folder)
        _remove_partials(self.folder)
        if not os.path.lexists(self.path):
            try:
                _create_store(
                    self.path,
                    {"schema": str(SCHEMA_VERSION), "dimension": str(dimension), "kind": kind},
                )
            except (sqlite3.Error, OSError) as exc:  # a full disk on the first run, in words
                mapped = _translate(self.path, exc)
                if mapped is None:
                    raise
                raise mapped from exc
        _check_store(self.path, integrity_check_s)
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)
            self._check_meta(kind)
        except BaseException:
            self._conn.close()
            raise
        self.kind = kind
        self._vectors: VectorIndex
        if kind == StoreKind.EMBEDDED:
            self._vectors = NumpyVectors(self._conn, dimension)
        else:
            uri = milvus_uri or str(self.folder / MILVUS_LITE_NAME)
            self._vectors = MilvusVectors(uri, dimension, token=milvus_token)
        _owner_only(self.folder)  # what this start made: Milvus Lite's files (not news)
        if loosened:
            log.warning(
                "index store %s: %d files or folders were readable by others; made "
                "owner-only (folders 0700, files 0600)",
                self.folder,
                loosened,
            )
        self._lexicons: dict[int, _Lexicon] = {}
        self._staged_lex: list[tuple[int, list[int], list[int]]] = []
        self._trees: dict[int, tuple[int, npt.NDArray[np.int64], float]] = {}
        self._closed = False

    def _check_meta(self, kind: str) -> None:
        wanted = {"schema": str(SCHEMA_VERSION), "dimension": str(self.dimension), "kind": kind}
        have = dict(self._conn.execute("SELECT key, value FROM meta").fetchall())
        for key, value in wanted.items():
            if key in have and have[key] != value:
                raise ValueError(
                    f"the index in {self.folder} was made with {key} {have[key]}, not {value}"
                )
        self._conn.executemany(
            "INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)", list(wanted.items())
        )

    # -- life cycle -------------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._vectors.close()
            self._conn.close()

    def __enter__(self) -> IndexStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def files(self) -> list[Path]:
        """Every file the store keeps (for audits such as the canary test)."""
        found = [p for p in self.folder.rglob("*") if p.is_file()]
        for extra in self._vectors.files():
            if extra.is_file():
                found.append(extra)
            elif extra.is_dir():
                found.extend(p for p in extra.rglob("*") if p.is_file())
        return sorted(set(found))

    # -- helpers ----------------------------------------------------------------------------------

    def _ws(self, key_id: str, create: bool = False) -> int | None:
        row = self._conn.execute("SELECT id FROM workspaces WHERE key_id = ?", (key_id,)).fetchone()
        if row is not None:
            return int(row[0])
        if not create:
            return None
        cur = self._conn.execute("INSERT INTO workspaces(key_id) VALUES (?)", (key_id,))
        return int(cur.lastrowid or 0)

    def _tree(
        self, ws: int | None, tree_id: bytes, create: bool = False
    ) -> tuple[int, bytes | None, int] | None:
        if ws is None:
            return None
        row = self._conn.execute(
            "SELECT id, root, generation FROM trees WHERE ws = ? AND tree_id = ?", (ws, tree_id)
        ).fetchone()
        if row is not None:
            return int(row[0]), row[1], int(row[2])
        if not create:
            return None
        cur = self._conn.execute("INSERT INTO trees(ws, tree_id) VALUES (?, ?)", (ws, tree_id))
        return int(cur.lastrowid or 0), None, 0

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """A full disk or a damaged file in words (``StoreFull``, ``StoreDamaged``)."""
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            mapped = _translate(self.path, exc)
            if mapped is None:
                raise
            raise mapped from exc

    def _transaction(self, body: Callable[[], Any]) -> Any:
        with self._guard():
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                result = body()
                self._conn.execute("COMMIT")  # can fail too (a full disk): then roll back
            except BaseException:
                # SQLite may have rolled back already (SQLITE_FULL can do that)
                if self._conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self._conn.execute("ROLLBACK")
                self._vectors.rollback()
                self._staged_lex.clear()
                raise
            self._vectors.commit()
            self._commit_lexicons()
            return result

    # -- reading the tree -------------------------------------------------------------------------

    def root(self, key_id: str, tree_id: bytes) -> bytes | None:
        """The tree's root, or None when the store holds no commit of it."""
        with self._lock, self._guard():
            tree = self._tree(self._ws(key_id), tree_id)
            return None if tree is None else tree[1]

    def folders(
        self, key_id: str, tree_id: bytes, queries: Sequence[tuple[str, str]], budget_bytes: int
    ) -> list[FolderView]:
        """The children of each (folder path, after-name) query, in order, until about
        ``budget_bytes`` of names and hashes are spent (at least one child is always sent);
        a folder cut short has ``complete=False``, the folders after it are left out."""
        with self._lock, self._guard():
            tree = self._tree(self._ws(key_id), tree_id)
            out: list[FolderView] = []
            spent = 0
            for path, after in queries:
                spent += len(path) + 48
                if tree is None or tree[1] is None:
                    out.append(FolderView(path, False, b"", (), True))
                    continue
                tree_row, root, _gen = tree
                if path:
                    parent, name = _split(path)
                    node = self._conn.execute(
                        "SELECT is_dir, hash FROM nodes WHERE tree = ? AND parent = ? AND name = ?",
                        (tree_row, parent, name),
                    ).fetchone()
                    if node is None or not node[0]:
                        out.append(FolderView(path, False, b"", (), True))
                        continue
                    own_hash = bytes(node[1])
                else:
                    own_hash = root or b""
                cursor = self._conn.execute(
                    "SELECT name, hash, is_dir FROM nodes WHERE tree = ? AND parent = ? AND "
                    "name > ? ORDER BY name",
                    (tree_row, path, after),
                )
                children: list[WireEntry] = []
                complete = True
                for name, hash_, is_dir in cursor:
                    cost = len(name) + 40
                    if spent + cost > budget_bytes and (children or out):
                        complete = False
                        break
                    spent += cost
                    children.append(WireEntry(name, bytes(hash_), bool(is_dir)))
                cursor.close()
                out.append(FolderView(path, True, own_hash, tuple(children), complete))
                if not complete:
                    break
            return out

    # -- the chunk cache --------------------------------------------------------------------------

    def missing(self, key_id: str, hashes: Sequence[bytes]) -> list[int]:
        """Indexes of the hashes the workspace's chunk cache lacks."""
        with self._lock, self._guard():
            ws = self._ws(key_id)
            if ws is None:
                return list(range(len(hashes)))
            have: set[bytes] = set()
            for batch in _batches(list(dict.fromkeys(hashes))):
                marks = ",".join("?" * len(batch))
                have.update(
                    bytes(r[0])
                    for r in self._conn.execute(
                        f"SELECT hash FROM chunks WHERE ws = ? AND hash IN ({marks})", (ws, *batch)
                    )
                )
            return [i for i, h in enumerate(hashes) if h not in have]

    def put_chunks(self, key_id: str, chunks: Sequence[ChunkRecord]) -> int:
        """Cache chunks (one transaction); those already cached are skipped. Returns how many
        were new."""
        if not chunks:
            return 0
        for chunk in chunks:
            if chunk.vector.shape != (self.dimension,):
                raise ValueError(f"an embedding has {self.dimension} dimensions")

        def body() -> int:
            ws = self._ws(key_id, create=True)
            assert ws is not None
            new_ids: list[int] = []
            vectors: list[npt.NDArray[np.float32]] = []
            lengths: list[int] = []
            postings: list[tuple[int, bytes, int, int]] = []
            for chunk in dict((c.hash, c) for c in chunks).values():
                length = int(sum(chunk.counts))
                cur = self._conn.execute(
                    "INSERT OR IGNORE INTO chunks(ws, hash, length) VALUES (?, ?, ?)",
                    (ws, chunk.hash, length),
                )
                if cur.rowcount != 1:
                    continue
                chunk_id = int(cur.lastrowid or 0)
                new_ids.append(chunk_id)
                lengths.append(length)
                norm = float(np.linalg.norm(chunk.vector))
                vectors.append((chunk.vector / max(norm, 1e-12)).astype(np.float32))
                postings.extend(
                    (ws, t, chunk_id, n) for t, n in zip(chunk.terms, chunk.counts, strict=True)
                )
            if new_ids:
                self._conn.executemany(
                    "INSERT INTO postings(ws, term, chunk, tf) VALUES (?, ?, ?, ?)", postings
                )
                self._vectors.add(ws, new_ids, np.stack(vectors))
                self._staged_lex.append((ws, new_ids, lengths))
            return len(new_ids)

        with self._lock:
            result: int = self._transaction(body)
            return result

    def _commit_lexicons(self) -> None:
        staged, self._staged_lex = self._staged_lex, []
        for ws, ids, lengths in staged:
            lex = self._lexicons.get(ws)
            if lex is not None:
                lex.ids = np.concatenate([lex.ids, np.asarray(ids, np.int64)])
                lex.lengths = np.concatenate([lex.lengths, np.asarray(lengths, np.float64)])

    def _lexicon(self, ws: int) -> _Lexicon:
        lex = self._lexicons.get(ws)
        if lex is None:
            rows = self._conn.execute(
                "SELECT id, length FROM chunks WHERE ws = ? ORDER BY id", (ws,)
            ).fetchall()
            lex = _Lexicon(
                np.fromiter((r[0] for r in rows), np.int64, len(rows)),
                np.fromiter((r[1] for r in rows), np.float64, len(rows)),
            )
            self._lexicons[ws] = lex
        return lex

    # -- commits ----------------------------------------------------------------------------------

    def commit(
        self,
        key_id: str,
        tree_id: bytes,
        base_root: bytes | None,
        new_root: bytes,
        files: Sequence[FileRecord],
        deleted: Sequence[str],
    ) -> CommitResult:
        """Apply one commit atomically (see the module docstring)."""

        def body() -> CommitResult:
            ws = self._ws(key_id, create=True)
            tree = self._tree(ws, tree_id, create=True)
            assert ws is not None and tree is not None
            tree_row, current, generation = tree
            if current == new_root:
                return CommitResult(new_root, True)
            if current != base_root:
                raise StaleBase("the tree changed since it was reconciled")
            deleted_count = self._delete(tree_row, deleted)
            dirty = self._write(ws, tree_row, files)
            for path in deleted:
                dirty.add(_split(path)[0])
            root = self._rehash(tree_row, dirty)
            if root != new_root:
                raise CommitRejected(
                    "the tree after this commit does not add up to its new "
                    "root: nothing was applied (reconcile again)"
                )
            self._conn.execute(
                "UPDATE trees SET root = ?, generation = ? WHERE id = ?",
                (root, generation + 1, tree_row),
            )
            return CommitResult(root, False, len(files), deleted_count)

        with self._lock:
            result: CommitResult = self._transaction(body)
            return result

    def _delete(self, tree_row: int, deleted: Sequence[str]) -> int:
        count = 0
        for path in deleted:
            parent, name = _split(path)
            node = self._conn.execute(
                "SELECT is_dir FROM nodes WHERE tree = ? AND parent = ? AND name = ?",
                (tree_row, parent, name),
            ).fetchone()
            if node is None:
                continue  # already gone: deleting is idempotent
            count += 1
            if node[0]:
                low, high = _below(path)
                self._conn.execute(
                    "DELETE FROM nodes WHERE tree = ? AND (parent = ? OR "
                    "(parent >= ? AND parent < ?))",
                    (tree_row, path, low, high),
                )
                self._conn.execute(
                    "DELETE FROM occurrences WHERE tree = ? AND path >= ? AND path < ?",
                    (tree_row, low, high),
                )
            else:
                self._conn.execute(
                    "DELETE FROM occurrences WHERE tree = ? AND path = ?", (tree_row, path)
                )
            self._conn.execute(
                "DELETE FROM nodes WHERE tree = ? AND parent = ? AND name = ?",
                (tree_row, parent, name),
            )
        return count

    def _chunk_ids(self, ws: int, hashes: Iterable[bytes]) -> dict[bytes, int]:
        wanted = list(dict.fromkeys(hashes))
        found: dict[bytes, int] = {}
        for batch in _batches(wanted):
            marks = ",".join("?" * len(batch))
            found.update(
                (bytes(h), int(i))
                for i, h in self._conn.execute(
                    f"SELECT id, hash FROM chunks WHERE ws = ? AND hash IN ({marks})", (ws, *batch)
                )
            )
        missing = len(wanted) - len(found)
        if missing:
            raise CommitRejected(
                f"{missing} chunks the files refer to are not in the cache: upload them first"
            )
        return found

    def _write(self, ws: int, tree_row: int, files: Sequence[FileRecord]) -> set[str]:
        ids = self._chunk_ids(ws, (c.hash for f in files for c in f.chunks))
        dirty: set[str] = set()
        folders: set[str] = set()
        nodes: list[tuple[int, str, str, int, bytes]] = []
        occurrences: list[tuple[int, str, int, int, int, int]] = []
        for record in files:
            parent, name = _split(record.path)
            self._ensure_folders(tree_row, parent, folders)
            node = self._conn.execute(
                "SELECT is_dir FROM nodes WHERE tree = ? AND parent = ? AND name = ?",
                (tree_row, parent, name),
            ).fetchone()
            if node is not None and node[0]:
                raise CommitRejected(
                    "a file of this commit stands where the tree has a folder "
                    "(delete the folder in the same commit)"
                )
            nodes.append((tree_row, parent, name, 0, record.hash))
            occurrences.extend(
                (tree_row, record.path, seq, ids[c.hash], c.start_line, c.end_line)
                for seq, c in enumerate(record.chunks)
            )
            dirty.add(parent)
        self._conn.executemany(
            "INSERT OR REPLACE INTO nodes(tree, parent, name, is_dir, hash) VALUES (?, ?, ?, ?, ?)",
            nodes,
        )
        self._conn.executemany(
            "DELETE FROM occurrences WHERE tree = ? AND path = ?",
            [(tree_row, r.path) for r in files],
        )
        self._conn.executemany(
            "INSERT INTO occurrences(tree, path, seq, chunk, start_line, "
            "end_line) VALUES (?, ?, ?, ?, ?, ?)",
            occurrences,
        )
        return dirty

    def _ensure_folders(self, tree_row: int, folder: str, known: set[str]) -> None:
        missing: list[str] = []
        for path in _ancestors(folder):
            if not path or path in known:
                break
            missing.append(path)
        for path in reversed(missing):  # from the top down
            parent, name = _split(path)
            node = self._conn.execute(
                "SELECT is_dir FROM nodes WHERE tree = ? AND parent = ? AND name = ?",
                (tree_row, parent, name),
            ).fetchone()
            if node is None:
                self._conn.execute(
                    "INSERT INTO nodes(tree, parent, name, is_dir, hash) VALUES (?, ?, ?, 1, NULL)",
                    (tree_row, parent, name),
                )
            elif not node[0]:
                raise CommitRejected(
                    "a folder of this commit stands where the tree has a file "
                    "(delete the file in the same commit)"
                )
            known.add(path)

    def _rehash(self, tree_row: int, dirty: set[str]) -> bytes:
        """Recompute the hashes of the dirty folders and everything above them, deepest first;
        folders left empty are removed. Returns the root."""
        every: set[str] = set()
        for folder in dirty:
            every.update(_ancestors(folder))
        root = b""
        for folder in sorted(every, key=lambda p: (-(p.count("/") + 1 if p else 0), p)):
            entries = [
                WireEntry(n, b"" if h is None else bytes(h), bool(d))
                for n, h, d in self._conn.execute(
                    "SELECT name, hash, is_dir FROM nodes WHERE tree = ? AND parent = ?",
                    (tree_row, folder),
                )
            ]
            if any(len(e.hash) == 0 for e in entries):  # cannot happen: children come first
                raise CommitRejected("a folder of the tree has no hash")
            digest = folder_hash(entries)
            if not folder:
                root = digest
                continue
            parent, name = _split(folder)
            if entries:
                self._conn.execute(
                    "UPDATE nodes SET hash = ? WHERE tree = ? AND parent = ? AND "
                    "name = ? AND is_dir = 1",
                    (digest, tree_row, parent, name),
                )
            else:
                self._conn.execute(
                    "DELETE FROM nodes WHERE tree = ? AND parent = ? AND name = ? AND is_dir = 1",
                    (tree_row, parent, name),
                )
        return root

    # -- search -----------------------------------------------------------------------------------

    def _tree_chunks(
        self, tree_row: int, generation: int, ws: int
    ) -> tuple[npt.NDArray[np.int64], float]:
        cached = self._trees.get(tree_row)
        if cached is not None and cached[0] == generation:
            return cached[1], cached[2]
        rows = self._conn.execute(
            "SELECT DISTINCT chunk FROM occurrences WHERE tree = ?", (tree_row,)
        ).fetchall()
        allowed = np.unique(np.fromiter((r[0] for r in rows), np.int64, len(rows)))
        lex = self._lexicon(ws)
        avgdl = float(lex.lengths[lex.rows(allowed)].mean()) if len(allowed) else 0.0
        self._trees[tree_row] = (generation, allowed, avgdl)
        return allowed, avgdl

    def _lexical(
        self, ws: int, allowed: npt.NDArray[np.int64], avgdl: float, terms: Sequence[bytes], k: int
    ) -> list[tuple[int, float]]:
        if not terms or len(allowed) == 0:
            return []
        lex = self._lexicon(ws)
        scores: dict[int, float] = {}
        n = len(allowed)
        for term in dict.fromkeys(terms):
            rows = self._conn.execute(
                "SELECT chunk, tf FROM postings WHERE ws = ? AND term = ?", (ws, term)
            ).fetchall()
            if not rows:
                continue
            chunk_ids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
            tf = np.fromiter((r[1] for r in rows), np.float64, len(rows))
            pos = np.searchsorted(allowed, chunk_ids)
            inside = (pos < n) & (allowed[np.minimum(pos, n - 1)] == chunk_ids)
            if not inside.any():
                continue
            chunk_ids, tf = chunk_ids[inside], tf[inside]
            dl = lex.lengths[lex.rows(chunk_ids)]
            weights = bm25_weights(tf, dl, avgdl, bm25_idf(len(chunk_ids), n))
            for chunk_id, weight in zip(chunk_ids.tolist(), weights.tolist(), strict=True):
                scores[chunk_id] = scores.get(chunk_id, 0.0) + weight
        ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
        return ranked[:k]

    def search(
        self,
        key_id: str,
        tree_id: bytes,
        root: bytes,
        vector: npt.NDArray[np.float32] | None,
        terms: Sequence[bytes],
        top_k: int,
        mode: str = SearchMode.COMBINED,
    ) -> tuple[list[Hit], int]:
        """The best ``top_k`` occurrences in the tree, and how many distinct chunks were
        searched. ``WrongRoot`` unless ``root`` is the tree's current root."""
        if mode not in MODES:
            raise ValueError(f"unknown search mode {mode!r}; valid modes: {', '.join(MODES)}")
        mode = SearchMode(mode)
        with self._lock, self._guard():
            ws = self._ws(key_id)
            tree = self._tree(ws, tree_id)
            if ws is None or tree is None or tree[1] is None or tree[1] != root:
                raise WrongRoot("the index holds another version of this tree: sync, then search")
            tree_row, _root, generation = tree
            allowed, avgdl = self._tree_chunks(tree_row, generation, ws)
            depth = max(top_k * 3, 50)
            by_vector: list[tuple[int, float]] = []
            by_terms: list[tuple[int, float]] = []
            if mode.uses_vector and vector is not None and len(vector):
                q = vector.astype(np.float32)
                q = q / max(float(np.linalg.norm(q)), 1e-12)
                by_vector = self._vectors.search(ws, q, allowed, depth)
            if mode.uses_terms:
                by_terms = self._lexical(ws, allowed, avgdl, terms, depth)
            if mode == SearchMode.VECTOR:
                ranking = by_vector
            elif mode == SearchMode.LEXICAL:
                ranking = by_terms
            else:
                ranking = rrf(
                    [[c for c, _s in by_vector], [c for c, _s in by_terms]],
                    weights=(1.0, LEXICAL_WEIGHT),
                )
            vec = {c: (rank, s) for rank, (c, s) in enumerate(by_vector, start=1)}
            lex = {c: (rank, s) for rank, (c, s) in enumerate(by_terms, start=1)}
            hits = self._expand(tree_row, ranking, vec, lex, top_k)
            return hits, len(allowed)

    def _expand(
        self,
        tree_row: int,
        ranking: Sequence[tuple[int, float]],
        vec: dict[int, tuple[int, float]],
        lex: dict[int, tuple[int, float]],
        top_k: int,
    ) -> list[Hit]:
        """The occurrences of the best chunks, best first, up to ``top_k`` (every chunk of a
        tree's ranking occurs in it at least once, so the first ``top_k`` chunks suffice)."""
        best = [chunk_id for chunk_id, _s in ranking[:top_k]]
        if not best:
            return []
        marks = ",".join("?" * len(best))
        found: dict[int, list[tuple[str, int, int, int]]] = {}
        # INDEXED BY: without statistics SQLite would walk the tree's whole primary key.
        for path, seq, start, end, chunk_id in self._conn.execute(
            "SELECT path, seq, start_line, end_line, chunk FROM occurrences INDEXED BY "
            f"occurrences_by_chunk WHERE tree = ? AND chunk IN ({marks})",
            (tree_row, *best),
        ):
            found.setdefault(int(chunk_id), []).append((path, int(seq), int(start), int(end)))
        hashes = {
            int(i): bytes(h)
            for i, h in self._conn.execute(
                f"SELECT id, hash FROM chunks WHERE id IN ({marks})", best
            )
        }
        hits: list[Hit] = []
        for chunk_id, score in ranking[:top_k]:
            v_rank, v_score = vec.get(chunk_id, (0, 0.0))
            l_rank, l_score = lex.get(chunk_id, (0, 0.0))
            for path, _seq, start, end in sorted(found.get(chunk_id, ())):
                hits.append(
                    Hit(
                        path,
                        start,
                        end,
                        hashes[chunk_id],
                        float(score),
                        v_score,
                        l_score,
                        v_rank,
                        l_rank,
                    )
                )
        return hits[:top_k]

    # -- stats ------------------------------------------------------------------------------------

    def stats(self, key_id: str, tree_id: bytes | None = None) -> StoreStats:
        with self._lock, self._guard():
            ws = self._ws(key_id)
            cached = 0
            if ws is not None:
                cached = int(
                    self._conn.execute(
                        "SELECT COUNT(*) FROM chunks WHERE ws = ?", (ws,)
                    ).fetchone()[0]
                )
            tree = self._tree(ws, tree_id) if tree_id else None
            if tree is None or ws is None:
                return StoreStats(None, 0, 0, 0, cached, 0, self.kind, self.dimension)
            tree_row, root, generation = tree
            files, folders = (
                int(n)
                for n in self._conn.execute(
                    "SELECT COALESCE(SUM(is_dir = 0), 0), COALESCE(SUM(is_dir = 1), 0) FROM nodes "
                    "WHERE tree = ?",
                    (tree_row,),
                ).fetchone()
            )
            allowed, _avgdl = self._tree_chunks(tree_row, generation, ws)
            return StoreStats(
                root, files, folders, len(allowed), cached, generation, self.kind, self.dimension
            )


STORE_KINDS: dict[str, str] = {
    StoreKind.EMBEDDED: "SQLite + numpy brute force in one file; no server",
    StoreKind.MILVUS: "SQLite for trees and postings, embeddings in Milvus (Lite locally, or a "
    "cluster by URI); needs forecode[milvus]",
}


def open_store(
    folder: str | os.PathLike[str] | None = None,
    kind: str = StoreKind.EMBEDDED,
    *,
    dimension: int = DEFAULT_DIMENSION,
    milvus_uri: str | None = None,
    milvus_token: str | None = None,
) -> IndexStore:
    """An ``IndexStore`` in ``folder`` (default ``default_index_dir()``); ``kind`` from
    ``STORE_KINDS`` (an unknown one lists the valid ones)."""
    return IndexStore(
        default_index_dir() if folder is None else folder,
        kind=kind,
        dimension=dimension,
        milvus_uri=milvus_uri,
        milvus_token=milvus_token,
    )
