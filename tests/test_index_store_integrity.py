"""The index store's files: damage refused at start, a full disk in words, owner-only modes
(issue 13, points 5, 6 and 8).

Real SQLite files throughout; the service is the real ``forecode-cloud`` process (damage) or the
real gRPC service in-process on loopback with the real ``IndexSync`` client (a full disk). The
full disk is SQLite's own SQLITE_FULL ("database or disk is full"), the error a full file
system gives, raised by lowering the connection's ``max_page_count`` to the pages it holds and
lifted again to "free space"; ENOSPC from the OS is simulated at the store's connection seam.
The embedder in the full-disk tests is a deterministic bag of words (the real model is not
what is tested there; it is in tests/test_index_vector_privacy.py).
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import sqlite3
import stat
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from helpers.cloud import free_port, run_service

from app.ui.codebase_index import CodebaseIndex
from cloud_client.index_sync import IndexSync, IndexSyncClient, SyncError, new_tree_id
from cloud_server.config import ServerConfig
from cloud_server.index_store import (
    DB_NAME,
    ChunkRecord,
    IndexStore,
    StoreDamaged,
    StoreFull,
    open_store,
)
from cloud_server.service import RunningServer, start_server
from forecode_core.index.codebase import CodeHit
from forecode_core.index.crypto import WorkspaceKeys, generate_workspace_key

TOKEN = "index-integrity-test-token-0123456789"
OPENAI = [
    "--backend",
    "openai",
    "--openai-url",
    "http://127.0.0.1:9",
    "--openai-model",
    "unused",
    "--grace",
    "0",
]
DIM = 384
KEYS = WorkspaceKeys(bytes(range(32)))


def bag_vector(text: str) -> npt.NDArray[np.float32]:
    vector = np.zeros(DIM, np.float32)
    for word in text.lower().split():
        vector[int.from_bytes(hashlib.sha256(word.encode()).digest()[:4], "little") % DIM] += 1
    if not vector.any():
        vector[0] = 1.0
    return vector / np.linalg.norm(vector)


class BagEmbedder:
    def embed(
        self,
        texts: Sequence[str],
        *,
        progress: Callable[[int, int], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> npt.NDArray[np.float32]:
        return np.stack([bag_vector(t) for t in texts]) if texts else np.zeros((0, DIM), np.float32)

    def close(self) -> None:
        pass


def records(count: int, salt: str = "") -> list[ChunkRecord]:
    out = []
    for i in range(count):
        text = f"def function_{salt}{i}(value): return value * {i} + {len(salt)}"
        counts = Counter(KEYS.token_hashes(text))
        out.append(
            ChunkRecord(
                KEYS.chunk_hash(hashlib.sha256(text.encode()).digest()),
                bag_vector(text),
                tuple(counts),
                tuple(counts.values()),
            )
        )
    return out


def digest(path: Path) -> tuple[int, str]:
    data = path.read_bytes()
    return len(data), hashlib.sha256(data).hexdigest()


def filled_store(folder: Path, chunks: int = 3000) -> Path:
    """A real store holding ``chunks`` chunks (several MB), closed; its database file."""
    with open_store(folder) as store:
        batch = records(chunks)
        for start in range(0, chunks, 500):
            store.put_chunks(KEYS.key_id, batch[start : start + 500])
        path = store.path
    return path


# ---------------------------------------------------------------------------------------------
# damage (point 5)


def test_a_new_store_is_whole_from_the_start_and_a_crash_while_making_it_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "index"
    with open_store(folder) as store:
        assert store.path == folder / DB_NAME
    # made complete, then linked into place: even closed at once it is a whole store
    with sqlite3.connect(folder / DB_NAME) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    db.close()
    assert {"meta", "chunks", "trees", "nodes", "occurrences"} <= tables
    assert sorted(p.name for p in folder.iterdir()) == [DB_NAME]

    # a crash (here: an error) while a store is being made leaves no index.sqlite3 at all,
    # so a later start never finds a half-made one
    other = tmp_path / "other"
    real_connect = sqlite3.connect

    def failing(path: Any, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        if ".new-" in str(path):
            raise sqlite3.OperationalError("simulated crash while creating")
        return real_connect(path, *args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", failing)
    with pytest.raises(sqlite3.OperationalError, match="simulated crash"):
        open_store(other)
    monkeypatch.undo()
    assert list(other.iterdir()) == []
    # a leftover of a crashed creation from long ago is cleaned up at the next start
    leftover = other / f"{DB_NAME}.new-0123456789ab"
    leftover.write_bytes(b"")
    os.utime(leftover, (1, 1))
    with open_store(other):
        pass
    assert sorted(p.name for p in other.iterdir()) == [DB_NAME]


@pytest.mark.parametrize("damage", ["empty", "garbage-header", "foreign-sqlite", "middle"])
def test_a_damaged_store_is_refused_with_its_path_and_left_as_it_is(
    tmp_path: Path, damage: str
) -> None:
    folder = tmp_path / "index"
    folder.mkdir(mode=0o700)
    db = folder / DB_NAME
    if damage == "empty":
        db.write_bytes(b"")
        expected = r"empty \(0 bytes\)"
    elif damage == "garbage-header":
        db.write_bytes(os.urandom(8192))
        expected = "SQLite header"
    elif damage == "foreign-sqlite":
        foreign = sqlite3.connect(db)
        foreign.execute("CREATE TABLE notes(body TEXT)")
        foreign.commit()
        foreign.close()
        expected = "lacks the tables"
    else:
        filled_store(folder)
        size = db.stat().st_size
        assert size > 1 << 20
        with open(db, "r+b") as fh:  # 4 KB of garbage in the middle
            fh.seek(size // 2 + 123)
            fh.write(np.random.default_rng(7).bytes(4096))
        expected = "integrity check failed|malformed"
    before = digest(db)
    with pytest.raises(StoreDamaged) as caught:
        open_store(folder)
    message = str(caught.value)
    assert str(db) in message
    assert re.search(expected, message), message
    assert "Move it aside" in message and "sync" in message
    assert digest(db) == before  # never replaced, never written
    assert sorted(p.name for p in folder.iterdir() if not p.name.endswith(("-wal", "-shm"))) == [
        DB_NAME
    ]


@pytest.mark.parametrize("damage", ["empty", "middle"])
def test_the_service_does_not_start_on_a_damaged_store(tmp_path: Path, damage: str) -> None:
    folder = tmp_path / "index"
    folder.mkdir(mode=0o700)
    db = folder / DB_NAME
    if damage == "empty":
        db.write_bytes(b"")
    else:
        filled_store(folder)
        size = db.stat().st_size
        with open(db, "r+b") as fh:
            fh.seek(size // 2)
            fh.write(np.random.default_rng(11).bytes(4096))
    before = digest(db)
    done = run_service(["--port", "0", "--index-dir", str(folder), *OPENAI], token=TOKEN)
    assert done.returncode == 2, done.stderr
    assert "listening" not in done.stdout  # it never served (no SERVING, no port)
    assert str(db) in done.stderr and "is damaged" in done.stderr, done.stderr
    assert "Move it aside" in done.stderr
    assert "Traceback" not in done.stderr
    assert digest(db) == before


def test_a_big_store_is_checked_for_a_bounded_time_then_trusted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "index"
    filled_store(folder)
    with (
        caplog.at_level(logging.WARNING, "forecode.cloud"),
        IndexStore(folder, integrity_check_s=0.0) as store,
    ):
        assert store.stats(KEYS.key_id).cached_chunks == 3000
    assert any("integrity check stopped" in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------------------------------------
# a full disk (point 6)


def fill_disk(store: IndexStore) -> None:
    """The store's file cannot grow: SQLite answers SQLITE_FULL, as on a full file system."""
    with store._lock:
        pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
        store._conn.execute(f"PRAGMA max_page_count = {pages}")


def free_disk(store: IndexStore) -> None:
    with store._lock:
        store._conn.execute("PRAGMA max_page_count = 1073741823")


def test_a_full_disk_is_store_full_with_the_path_and_nothing_half_applied(tmp_path: Path) -> None:
    with open_store(tmp_path / "index") as store:
        store.put_chunks(KEYS.key_id, records(10))
        fill_disk(store)
        with pytest.raises(StoreFull) as caught:
            store.put_chunks(KEYS.key_id, records(400, "more"))
        assert "disk full" in str(caught.value) and str(store.path) in str(caught.value)
        assert store.stats(KEYS.key_id).cached_chunks == 10  # rolled back, still readable
        free_disk(store)
        assert store.put_chunks(KEYS.key_id, records(400, "more")) == 400


def test_a_full_disk_at_the_first_start_says_disk_full_and_leaves_no_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open

    def no_space(path: Any, flags: int, mode: int = 0o777, **kwargs: Any) -> int:
        if ".new-" in str(path):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real_open(path, flags, mode, **kwargs)

    monkeypatch.setattr(os, "open", no_space)
    folder = tmp_path / "index"
    with pytest.raises(StoreFull, match="disk full") as caught:
        open_store(folder)
    monkeypatch.undo()
    assert str(folder / DB_NAME) in str(caught.value)
    assert list(folder.iterdir()) == []


class NoSpace:
    """The store's connection, whose writes fail as a full file system's do (ENOSPC)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, *args: Any) -> Any:
        if sql.startswith("INSERT"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def test_enospc_from_the_os_is_disk_full_too(tmp_path: Path) -> None:
    with open_store(tmp_path / "index") as store:
        real = store._conn
        store._conn = NoSpace(real)  # type: ignore[assignment]
        try:
            with pytest.raises(StoreFull, match="disk full") as caught:
                store.put_chunks(KEYS.key_id, records(3))
            assert str(store.path) in str(caught.value)
        finally:
            store._conn = real
        assert not real.in_transaction
        assert store.put_chunks(KEYS.key_id, records(3)) == 3


class Service:
    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.store = open_store(folder)
        config = ServerConfig(
            tokens=(TOKEN,),
            port=self.port,
            backend="openai",
            openai_url="http://127.0.0.1:9",
            openai_model="unused",
            grace_s=0.0,
        )
        self.running: RunningServer = start_server(config, index_store=self.store)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.running.stop(0)
        self.store.close()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    running = Service(tmp_path / "service-index")
    yield running
    running.stop()


def write_module(root: Path, name: str, functions: int) -> None:
    root.mkdir(parents=True, exist_ok=True)
    body = "".join(
        f"\n\ndef {name}_{i}(value):\n    return value * {i} + len('{name}')\n"
        for i in range(functions)
    )
    (root / f"{name}.py").write_text(f'"""{name}."""\n' + body)


def test_a_full_service_disk_says_disk_full_keeps_the_last_tree_searchable_and_recovers(
    tmp_path: Path, service: Service
) -> None:
    repo = tmp_path / "repo"
    write_module(repo, "parsers", 5)
    keys = WorkspaceKeys(generate_workspace_key())
    with IndexSyncClient(service.target, TOKEN, timeout=30) as client:
        sync = IndexSync(
            repo,
            keys,
            client,
            BagEmbedder(),
            tree_id=new_tree_id(),
            max_attempts=2,
            backoff_s=(0.05, 0.1),
        )
        sync.sync()
        old_root = sync.synced_root
        assert [h.path for h in sync.search("parsers_3 value", top_k=1, mode="lexical")] == [
            "parsers.py"
        ]

        for n in range(8):  # more code than the full disk can take
            write_module(repo / "pkg", f"renderers{n}", 40)
        fill_disk(service.store)
        with pytest.raises(SyncError) as caught:
            sync.sync()
        assert caught.value.code == "RESOURCE_EXHAUSTED"
        assert "disk full" in str(caught.value)
        assert str(service.store.path) in str(caught.value)
        # the previous tree is untouched and still answers
        assert sync.synced_root == old_root
        assert service.store.root(keys.key_id, sync.tree_id) == old_root
        hits = sync.search("parsers_3 value", top_k=1, mode="lexical")
        assert [(h.path, h.stale) for h in hits] == [("parsers.py", False)]

        free_disk(service.store)  # space returns
        report = sync.sync()
        assert report.changed and report.files_uploaded == 8
        assert [h.path for h in sync.search("renderers5_7", top_k=1, mode="lexical")] == [
            "pkg/renderers5.py"
        ]


def test_the_editor_shows_service_disk_full_and_recovers(
    qtbot: Any, tmp_path: Path, service: Service, isolated_dirs: dict[str, Path]
) -> None:
    import keyring
    from keyring.backends import null

    old = keyring.get_keyring()
    keyring.set_keyring(null.Keyring())
    repo = tmp_path / "ws"
    write_module(repo, "parsers", 5)
    index = CodebaseIndex(
        repo,
        service.target,
        TOKEN,
        embedder_factory=BagEmbedder,
        debounce_ms=50,
        retry_s=60.0,
        call_timeout_s=20.0,
    )
    try:
        index.start()
        qtbot.waitUntil(lambda: index.status.state in ("synced", "error"), timeout=60000)
        assert index.status.state == "synced", index.status.detail
        for n in range(8):
            write_module(repo / "pkg", f"renderers{n}", 40)
        fill_disk(service.store)
        index.sync_now()
        qtbot.waitUntil(lambda: index.status.state in ("full", "error"), timeout=60000)
        assert index.status.state == "full", index.status.detail
        assert index.status.text == "Index: service disk full"
        assert "disk full" in index.status.detail
        assert str(service.store.path) in index.status.detail
        # searches still answer from the last synced index
        found: list[list[CodeHit]] = []
        thread = threading.Thread(target=lambda: found.append(index.search("parsers_3 value")))
        thread.start()
        qtbot.waitUntil(lambda: bool(found), timeout=30000)
        thread.join()
        assert found[0] and found[0][0].path == "parsers.py"

        free_disk(service.store)
        index.sync_now()
        qtbot.waitUntil(lambda: index.status.state == "synced", timeout=60000)
        assert index.last_report.files_uploaded == 8
    finally:
        index.close()
        keyring.set_keyring(old)


# ---------------------------------------------------------------------------------------------
# owner-only (point 8)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.mark.skipif(os.name == "nt", reason="POSIX modes")
def test_a_new_store_is_owner_only_wal_and_shm_included(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)  # a usual umask: 0755 folders, 0644 files by default
    try:
        folder = tmp_path / "data" / "index"
        with open_store(folder) as store:
            store.put_chunks(KEYS.key_id, records(50))  # the WAL file exists while open
            files = sorted(p.name for p in folder.iterdir())
            assert f"{DB_NAME}-wal" in files and f"{DB_NAME}-shm" in files
            assert mode(folder) == 0o700
            for name in files:
                assert mode(folder / name) == 0o600, name
    finally:
        os.umask(old_umask)


@pytest.mark.skipif(os.name == "nt", reason="POSIX modes")
def test_a_loose_existing_store_is_tightened_with_one_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "index"
    with open_store(folder) as store:
        store.put_chunks(KEYS.key_id, records(5))
    (folder / "notes.txt").write_text("an operator's note")
    (folder / "sub").mkdir()
    (folder / "sub" / "x.bin").write_bytes(b"x")
    os.chmod(folder, 0o755)
    os.chmod(folder / "sub", 0o755)
    for path in (folder / DB_NAME, folder / "notes.txt", folder / "sub" / "x.bin"):
        os.chmod(path, 0o644)
    with caplog.at_level(logging.WARNING, "forecode.cloud"), open_store(folder) as store:
        assert store.stats(KEYS.key_id).cached_chunks == 5
        assert mode(folder) == 0o700 and mode(folder / "sub") == 0o700
        for path in folder.rglob("*"):
            if path.is_file():
                assert mode(path) == 0o600, path
    lines = [r.getMessage() for r in caplog.records if "owner-only" in r.getMessage()]
    assert len(lines) == 1 and "5 files or folders" in lines[0], lines
    caplog.clear()
    with caplog.at_level(logging.WARNING, "forecode.cloud"), open_store(folder):
        pass
    assert not [r for r in caplog.records if "owner-only" in r.getMessage()]  # once


def test_damage_met_after_start_is_data_loss_in_words_not_a_bare_internal_error(
    tmp_path: Path,
) -> None:
    """A store trusted at start (its check ran out of time) whose damage shows up later: the
    call fails with DATA_LOSS naming the file, not INTERNAL "the index store failed"."""
    import grpc

    from cloud_server.index_store import ChunkRef, FileRecord
    from forecode_core.index.merkle import MerkleTree
    from proto.forecode.v1 import forecode_pb2 as pb
    from proto.forecode.v1 import forecode_pb2_grpc as rpc

    folder = tmp_path / "index"
    chunks = records(3000)
    tree = MerkleTree(KEYS)
    for i in range(len(chunks)):
        tree.set_file(f"pkg{i // 100}/m{i}.py", b"%d" % i)
    files = [
        FileRecord(obf, leaf, (ChunkRef(chunks[int(path.rsplit("m", 1)[1][:-3])].hash, 1, 1),))
        for path, obf, leaf in tree.wire_files()
    ]
    tree_id = b"T" * 16
    with open_store(folder) as store:
        for start in range(0, len(chunks), 500):
            store.put_chunks(KEYS.key_id, chunks[start : start + 500])
        store.commit(KEYS.key_id, tree_id, None, tree.root_hash, files, [])
        db = store.path
    size = db.stat().st_size
    with open(db, "r+b") as fh:
        fh.seek(size // 2)
        fh.write(np.random.default_rng(5).bytes(4096))
    store = IndexStore(folder, integrity_check_s=0.0)
    port = free_port()
    running = start_server(
        ServerConfig(
            tokens=(TOKEN,),
            port=port,
            backend="openai",
            openai_url="http://127.0.0.1:9",
            openai_model="unused",
            grace_s=0.0,
        ),
        index_store=store,
    )
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = rpc.IndexSyncStub(channel)
            with pytest.raises(grpc.RpcError) as caught:
                stub.Search(
                    pb.SearchRequest(
                        tree=pb.TreeRef(workspace_id=KEYS.key_id, tree_id=tree_id),
                        root_hash=tree.root_hash,
                        embedding=bag_vector("value").tolist(),
                        mode=pb.SEARCH_MODE_VECTOR,
                        top_k=5,
                    ),
                    metadata=(("authorization", f"Bearer {TOKEN}"),),
                    timeout=30,
                )
        assert caught.value.code() == grpc.StatusCode.DATA_LOSS
        assert str(db) in (caught.value.details() or "")
        assert "is damaged" in (caught.value.details() or "")
    finally:
        running.stop(0)
        store.close()
