"""The codebase index end to end: ``cloud_client.index_sync`` against the real gRPC service on
loopback (token auth, ``IndexSync`` over the embedded store on disk), with the real embedding
model (all-MiniLM-L6-v2 through llama.cpp).

The canary: a repository whose file names and contents hold 1,000 unique markers, plus secrets;
after indexing, syncing and searching it, every byte the service stored, every request message
it received (recorded raw by a server interceptor, before any parsing) and every line it logged
are scanned: no marker, no secret, in plain text, UTF-16, hex or base64.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import numpy.typing as npt
import pytest
from helpers.cloud import free_port

from cloud_client.index_sync import (
    Embed,
    IndexSync,
    IndexSyncClient,
    SyncCancelled,
    SyncError,
    new_tree_id,
)
from cloud_server.config import ServerConfig
from cloud_server.index_store import IndexStore, open_store
from cloud_server.service import RunningServer, start_server
from forecode_core.index.chunking import chunk_text
from forecode_core.index.crypto import WorkspaceKeys, generate_workspace_key
from local_models.index.embed_client import EmbedWorker
from local_models.index.embed_model import ensure_embed_model
from local_models.index.embedder import EmbedCancelled, Embedder
from proto.forecode.v1 import forecode_pb2 as pb
from proto.forecode.v1 import forecode_pb2_grpc as rpc

pytestmark = pytest.mark.slow

TOKEN = "index-sync-test-token-0123456789"
MARKER = re.compile(rb"(?i)zqx\d{4}")
MARKER_UTF16 = re.compile(rb"(?i)z\x00q\x00x\x00\d\x00\d\x00\d\x00\d\x00")
SECRET = re.compile(rb"(?i)sqzsecret\d{2}")


# ---------------------------------------------------------------------------------------------
# the service, recorded


class RawRecorder(grpc.ServerInterceptor):  # type: ignore[misc]
    """Keeps the raw bytes of every request message the service receives, before parsing."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        handler = continuation(details)
        if handler is None:
            return None
        parse = handler.request_deserializer
        method = details.method

        def recording(raw: bytes) -> Any:
            with self._lock:
                self.messages.append((method, bytes(raw)))
            return parse(raw) if parse is not None else raw

        return handler._replace(request_deserializer=recording)

    def received(self, prefix: str = "/forecode.v1.IndexSync/") -> bytes:
        with self._lock:
            return b"".join(raw for method, raw in self.messages if method.startswith(prefix))


class LogLines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


class Service:
    """The real service on a fixed loopback port over a store in ``folder``; ``stop`` and
    ``start`` again restart it on the same port and the same files."""

    def __init__(self, folder: Path, kind: str = "embedded") -> None:
        self.folder = folder
        self.kind = kind
        self.port = free_port()
        self.recorder = RawRecorder()
        self.store: IndexStore | None = None
        self.running: RunningServer | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Service:
        self.store = open_store(self.folder, self.kind)
        config = ServerConfig(
            tokens=(TOKEN,),
            port=self.port,
            backend="openai",
            openai_url="http://127.0.0.1:9",
            openai_model="unused",
            grace_s=0.0,
        )
        self.running = start_server(config, index_store=self.store, interceptors=[self.recorder])
        return self

    def stop(self) -> None:
        if self.running is not None:
            self.running.stop(0)
            self.running = None
        if self.store is not None:
            self.store.close()
            self.store = None


@pytest.fixture
def logs() -> Iterator[LogLines]:
    handler = LogLines()
    logger = logging.getLogger("forecode.cloud")
    old = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(old)


@pytest.fixture
def service(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Service]:
    """The service over an embedded store (or the kind a test asks for, ``indirect``)."""
    running = Service(tmp_path / "service-index", getattr(request, "param", "embedded")).start()
    yield running
    running.stop()


@pytest.fixture
def client(service: Service) -> Iterator[IndexSyncClient]:
    with IndexSyncClient(service.target, TOKEN, timeout=30.0) as c:
        yield c


# ---------------------------------------------------------------------------------------------
# the embedder, counted


@pytest.fixture(scope="module")
def model() -> Iterator[Embedder]:
    with Embedder(ensure_embed_model()) as embedder:
        yield embedder


class Memo:
    """The real embedder, computing each distinct text once per test module (the canary runs
    against two stores)."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.known: dict[str, npt.NDArray[np.float32]] = {}

    def embed(
        self,
        texts: Sequence[str],
        *,
        progress: Callable[[int, int], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> npt.NDArray[np.float32]:
        todo = [t for t in dict.fromkeys(texts) if t not in self.known]
        if todo:
            vectors = self.inner.embed(todo, progress=progress, cancelled=cancelled)
            self.known.update(zip(todo, vectors, strict=True))
        return np.stack([self.known[t] for t in texts])


@pytest.fixture(scope="module")
def memo(model: Embedder) -> Memo:
    return Memo(model)


class Counted:
    """The real embedder, with every text it embedded kept (a cancelled call: the ones it
    finished)."""

    def __init__(self, inner: Embed) -> None:
        self.inner = inner
        self.texts: list[str] = []
        self.calls = 0

    def embed(
        self,
        texts: Sequence[str],
        *,
        progress: Callable[[int, int], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> npt.NDArray[np.float32]:
        self.calls += 1
        try:
            vectors = self.inner.embed(texts, progress=progress, cancelled=cancelled)
        except EmbedCancelled as exc:
            self.texts.extend(texts[: len(exc.vectors)])
            raise
        self.texts.extend(texts)
        return vectors


@pytest.fixture
def embed(model: Embedder) -> Counted:
    return Counted(model)


@pytest.fixture(scope="module")
def worker() -> Iterator[EmbedWorker]:
    """The editor's embedding process (llama.cpp out of the client's process)."""
    with EmbedWorker(nice=0) as process:
        yield process


def make_sync(
    folder: Path, keys: WorkspaceKeys, client: IndexSyncClient, embedder: Counted, **kwargs: Any
) -> IndexSync:
    return IndexSync(folder, keys, client, embedder, tree_id=new_tree_id(), **kwargs)


def write(root: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)


def service_root(service: Service, sync: IndexSync) -> bytes | None:
    assert service.store is not None
    return service.store.root(sync.keys.key_id, sync.tree_id)


# ---------------------------------------------------------------------------------------------
# the canary


PEM = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU sqzsecret{n}\n"
    "-----END OPENSSH PRIVATE KEY-----\n"
)
SECRETS = {
    ".env": "API_TOKEN=sqzsecret01\n",
    "config/.env.production": "DB_PASSWORD=sqzsecret02\n",
    "id_rsa": PEM.format(n="03"),
    "deploy/bootstrap.py": "KEY = '''\n" + PEM.format(n="04") + "'''\n",
    "credentials.json": '{"token": "sqzsecret05"}\n',
    ".ssh/config": "Host sqzsecret06\n",
    ".aws/credentials": "[default]\naws_secret_access_key = sqzsecret07\n",
    "certs/server.pem": "sqzsecret08\n",
}


def canary_repo(root: Path) -> list[str]:
    """10 folders and 90 files named by markers, 10 more markers in each file: 1,000 in all.
    Plus ``SECRETS``, each holding its own secret marker."""
    markers = [f"zqx{i:04d}" for i in range(1000)]
    it = iter(markers)
    for _folder in range(10):
        folder = f"{next(it)}_pkg"
        for k in range(9):
            name = next(it)
            m = [next(it) for _ in range(10)]
            if k % 3 == 2:
                write(
                    root,
                    {
                        f"{folder}/{name}_notes.md": (
                            f"# {m[0]} notes\n\nThe {m[1]} service talks to {m[2]} and {m[3]}.\n"
                            f"- {m[4]}\n- {m[5]} and {m[6]}\n\n`{m[7]}({m[8]})` returns {m[9]}.\n"
                        )
                    },
                )
                continue
            write(
                root,
                {
                    f"{folder}/{name}_mod.py": (
                        f'"""Helpers for {m[0]}."""\n\nimport {m[1]}\n\n\n'
                        f"def {m[2]}_handler({m[3]}, {m[4]}):\n"
                        f'    """Send {m[5]} to the {m[6]} queue."""\n'
                        f'    return {m[1]}.send("{m[7]}", {m[3]} + {m[4]})\n\n\n'
                        f"class {m[8].capitalize()}Store:\n    table = '{m[9]}'\n"
                    )
                },
            )
    assert next(it, None) is None
    write(root, SECRETS)
    return markers


def _b64_forms(data: bytes) -> list[bytes]:
    """Base64 (standard and URL-safe) renderings of ``data`` at the three byte alignments,
    cut to the characters whose 6 bits come from ``data`` alone (8 or 9 for a marker)."""
    forms = []
    for offset in (0, 1, 2):
        encoded = base64.b64encode(b"\0" * offset + data + b"\0\0\0")
        first = -(-8 * offset // 6)
        last = 8 * (offset + len(data)) // 6
        piece = encoded[first:last]
        forms += [piece, piece.replace(b"+", b"-").replace(b"/", b"_")]
    return forms


def leaks(blob: bytes, words: Sequence[str], pattern: re.Pattern[bytes]) -> list[str]:
    """What of ``words`` (and anything matching ``pattern``) appears in ``blob`` in plain text,
    UTF-16, hex or base64."""
    found = [m.group(0).decode() for m in pattern.finditer(blob)]
    lowered = blob.lower()
    for word in words:
        raw = word.encode()
        forms = [raw.hex().encode(), word.encode("utf-16-le"), *_b64_forms(raw)]
        for form in forms:
            haystack = lowered if form.isalnum() and form.lower() == form else blob
            if form in haystack:
                found.append(f"{word} as {form!r}")
    return found


def stored_bytes(store: IndexStore) -> tuple[bytes, list[Path]]:
    files = store.files()
    return b"".join(p.read_bytes() for p in files), files


def test_the_scanner_would_see_a_leak() -> None:
    # The canary's scan can fail: each form of a marker is caught.
    for form in (
        b"..zqx0042..",
        "zqx0042".encode("utf-16-le"),
        b"7a71783030343200",
        base64.b64encode(b"zqx0042"),
        base64.b64encode(b"xzqx0042"),
        base64.urlsafe_b64encode(b"xyzqx0042"),
    ):
        blob = b"\0" * 64 + form + b"\0" * 64
        assert leaks(blob, ["zqx0042"], MARKER) or MARKER_UTF16.search(blob), form


@pytest.mark.parametrize("service", ["embedded", "milvus"], indirect=True)
def test_canary_no_marker_or_secret_reaches_the_service_in_any_form(
    tmp_path: Path, service: Service, client: IndexSyncClient, memo: Memo, logs: LogLines
) -> None:
    repo = tmp_path / "canary"
    markers = canary_repo(repo)
    keys = WorkspaceKeys(generate_workspace_key())
    embed = Counted(memo)
    sync = make_sync(repo, keys, client, embed)
    report = sync.sync()
    assert report.changed and report.files_uploaded == 90
    assert report.chunks_embedded == report.chunks_uploaded == len(set(embed.texts)) > 0
    assert set(report.skipped) == set(SECRETS)
    assert service_root(service, sync) == sync.synced_root
    # The index works on what it received: a marker-named function is found, by name.
    results = sync.search("zqx0115_handler", top_k=3)
    assert results and results[0].path == "zqx0100_pkg/zqx0112_mod.py", results
    assert "def zqx0115_handler" in (results[0].text or "")
    results = sync.search("Send zqx0118 to the zqx0119 queue", top_k=3)
    assert results[0].path == "zqx0100_pkg/zqx0112_mod.py", results

    assert service.store is not None
    stored, files = stored_bytes(service.store)
    received = service.recorder.received()
    logged = "\n".join(logs.lines).encode()
    # Not vacuous: the service holds and received the whole index (embeddings and all).
    assert len(received) > report.chunks_uploaded * 384 * 4
    assert len(stored) > report.chunks_uploaded * 384 * 4
    assert any(f.name.endswith(".sqlite3") for f in files)
    if service.kind == "milvus":  # the vector database's own files are scanned too
        assert any("milvus.db" in f.parts for f in files)
    assert "index Upload" in "\n".join(logs.lines)
    sample = markers[::50]  # hex and base64 forms of a few; the regexes cover all 1,000
    secrets = [f"sqzsecret{n:02d}" for n in range(1, 9)]
    for name, blob in (("stored", stored), ("received", received), ("logged", logged)):
        assert leaks(blob, sample, MARKER) == [], name
        assert MARKER_UTF16.search(blob) is None, name
        assert leaks(blob, secrets, SECRET) == [], name

    # The secrets never left in any form: not their bytes, not their keyed file hashes, not
    # their obfuscated names, not their chunks' hashes, not their embeddings.
    forms: list[bytes] = []
    for rel, content in SECRETS.items():
        data = content.encode()
        forms += [keys.file_hash(hashlib.sha256(data).digest()), keys.obfuscate_path(rel).encode()]
        forms += [keys.chunk_hash(c.content_hash) for c in chunk_text(rel, content)[0]]
    assert not any(form in blob for form in forms for blob in (stored, received))
    assert not any(SECRET.search(text.encode()) for text in embed.texts)


# ---------------------------------------------------------------------------------------------
# incremental sync, a second client, holdings


PROJECT = {
    "README.md": "# Geometry kit\n\nSmall helpers for vectors, angles and shapes.\n",
    "src/geometry/vectors.py": (
        "import math\n\n\n"
        'def dot_product(a, b):\n    """Sum of the products of matching coordinates."""\n'
        "    return sum(x * y for x, y in zip(a, b))\n\n\n"
        'def vector_length(v):\n    """Euclidean norm of a vector."""\n'
        "    return math.sqrt(dot_product(v, v))\n"
    ),
    "src/geometry/angles.py": (
        "import math\n\n\n"
        'def degrees_to_radians(degrees):\n    """Convert an angle from degrees to radians.'
        '"""\n    return degrees * math.pi / 180.0\n'
    ),
    "src/shapes/polygon.py": (
        'def polygon_area(points):\n    """Area of a simple polygon by the shoelace formula.'
        '"""\n    total = 0.0\n    for (x1, y1), (x2, y2) in zip(points, points[1:] + '
        "points[:1]):\n        total += x1 * y2 - x2 * y1\n    return abs(total) / 2.0\n"
    ),
    "src/text/strings.py": (
        'def levenshtein_distance(a, b):\n    """Number of single-character edits that turn '
        'one string into the other."""\n    previous = list(range(len(b) + 1))\n'
        "    for i, ca in enumerate(a, 1):\n        current = [i]\n"
        "        for j, cb in enumerate(b, 1):\n            current.append(min(previous[j] + 1, "
        "current[j - 1] + 1, previous[j - 1] + (ca != cb)))\n        previous = current\n"
        "    return previous[-1]\n"
    ),
    "docs/guide.md": "# Guide\n\nCall polygon_area with a list of (x, y) points.\n",
}


def test_incremental_sync_after_edits_renames_and_deletes(
    tmp_path: Path, service: Service, client: IndexSyncClient, worker: EmbedWorker
) -> None:
    embed = Counted(worker)  # the editor's way: embeddings computed in their own process
    repo = tmp_path / "project"
    write(repo, PROJECT)
    sync = make_sync(repo, WorkspaceKeys(generate_workspace_key()), client, embed)
    first = sync.sync()
    assert (first.files_uploaded, first.paths_deleted) == (len(PROJECT), 0)
    assert first.chunks_embedded == first.chunks_referenced > 0

    # Nothing changed: one round trip, the root hash only.
    same = sync.sync()
    assert not same.changed and same.round_trips == 1 and same.get_nodes_calls == 1
    assert same.bytes_sent < 200

    # An edit: only that file, only its changed chunks, one GetNodes call per level.
    vectors = repo / "src/geometry/vectors.py"
    vectors.write_text(
        PROJECT["src/geometry/vectors.py"].replace(
            "math.sqrt(dot_product(v, v))", "math.hypot(*v)"
        ),
        encoding="utf-8",
    )
    before = len(embed.texts)
    edit = sync.sync()
    assert (edit.files_uploaded, edit.paths_deleted) == (1, 0)
    assert edit.chunks_embedded == len(embed.texts) - before
    assert (edit.chunks_referenced, edit.chunks_embedded) == (3, 1)  # import, dot, length
    assert edit.get_nodes_calls <= 3  # root, src, src/geometry (the file is at depth 3)
    assert service_root(service, sync) == sync.synced_root

    # A rename (file and folder): new paths, old ones deleted, and no embedding at all.
    (repo / "src/shapes/polygon.py").rename(repo / "src/shapes/polygons.py")
    (repo / "docs").rename(repo / "manual")
    before = len(embed.texts)
    rename = sync.sync()
    assert rename.files_uploaded == 2 and rename.paths_deleted == 2
    assert rename.chunks_embedded == 0 and rename.chunks_uploaded == 0
    assert len(embed.texts) == before
    hits = sync.search("polygon_area shoelace", top_k=2)
    assert hits[0].path == "src/shapes/polygons.py" and not hits[0].stale

    # A delete.
    (repo / "README.md").unlink()
    delete = sync.sync()
    assert (delete.files_uploaded, delete.paths_deleted, delete.chunks_embedded) == (0, 1, 0)
    stats = sync.stats()
    assert stats.root_hash == sync.synced_root == service_root(service, sync)
    assert stats.files == len(PROJECT) - 1


def test_a_second_client_with_the_same_key_embeds_and_uploads_nothing(
    tmp_path: Path, service: Service, client: IndexSyncClient, embed: Counted, model: Embedder
) -> None:
    keys = WorkspaceKeys(generate_workspace_key())
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    write(mine, PROJECT)
    first = make_sync(mine, keys, client, embed).sync()
    shutil.copytree(mine, theirs)
    teammate = Counted(model)
    second = make_sync(theirs, keys, client, teammate)
    report = second.sync()
    assert report.changed and report.files_uploaded == len(PROJECT)
    assert report.chunks_missing == report.chunks_embedded == report.chunks_uploaded == 0
    assert teammate.calls == 0 and teammate.texts == []
    # Its upload is its tree alone: paths, hashes, line ranges, no embedding.
    assert report.bytes_sent < first.chunks_referenced * 384 * 4 / 2
    assert second.search("levenshtein_distance", top_k=1)[0].path == "src/text/strings.py"
    # Another key is another workspace: that client embeds everything itself.
    stranger = Counted(model)
    other = make_sync(theirs, WorkspaceKeys(generate_workspace_key()), client, stranger)
    assert other.sync().chunks_embedded == first.chunks_embedded
    assert stranger.calls >= 1


def test_a_client_without_a_files_hash_gets_no_results_from_it(
    tmp_path: Path, service: Service, client: IndexSyncClient, embed: Counted
) -> None:
    keys = WorkspaceKeys(generate_workspace_key())
    full, partial = tmp_path / "full", tmp_path / "partial"
    write(full, PROJECT)
    write(partial, {k: v for k, v in PROJECT.items() if k != "src/text/strings.py"})
    owner = make_sync(full, keys, client, embed)
    owner.sync()
    other = make_sync(partial, keys, client, embed)
    other.sync()
    query = "levenshtein_distance single-character edits"
    assert owner.search(query, top_k=1)[0].path == "src/text/strings.py"
    secret_path = keys.obfuscate_path("src/text/strings.py")  # the same name in both trees
    hits = other.search(query, top_k=10, use_rerank=False)
    assert hits and all(h.obfuscated_path != secret_path for h in hits)

    # Presenting someone else's root, or a root with someone else's tree id, gets nothing.
    stub = rpc.IndexSyncStub(grpc.insecure_channel(service.target))
    metadata = (("authorization", f"Bearer {TOKEN}"),)
    probe = pb.SearchRequest(
        term_hashes=b"".join(dict.fromkeys(keys.token_hashes(query))),
        top_k=5,
        mode=pb.SEARCH_MODE_LEXICAL,
    )
    assert owner.synced_root is not None and other.synced_root is not None
    for tree_id, root in (
        (other.tree_id, owner.synced_root),
        (owner.tree_id, other.synced_root),
        (owner.tree_id, hashlib.sha256(b"guess").digest()),
    ):
        probe.tree.CopyFrom(pb.TreeRef(workspace_id=keys.key_id, tree_id=tree_id))
        probe.root_hash = root
        with pytest.raises(grpc.RpcError) as err:
            stub.Search(probe, metadata=metadata, timeout=10)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "another version of this tree" in (err.value.details() or "")


def test_a_first_index_is_searchable_after_its_first_batch(
    tmp_path: Path, service: Service, client: IndexSyncClient, embed: Counted, model: Embedder
) -> None:
    from cloud_client.index_sync import FIRST_BATCH_CHUNKS

    repo = tmp_path / "big"
    count = FIRST_BATCH_CHUNKS + 10
    write(
        repo,
        {
            f"pkg{i // 10}/m{i:03d}.py": f"def handler_{i:03d}(event):\n"
            f"    return event.value * {i}\n"
            for i in range(count)
        },
    )
    sync = make_sync(repo, WorkspaceKeys(generate_workspace_key()), client, embed)
    query = "event handler"
    vector = model.embed([query])[0]
    early: list[Any] = []

    def progress(stage: str, done: int, total: int) -> None:
        # Still embedding the second batch, and the first one is already searchable.
        if stage == "embed" and sync.synced_root is not None and not early:
            early.append(
                (
                    done,
                    total,
                    sync.stats().files,
                    sync.search(query, top_k=100, embedding=vector, use_rerank=False),
                )
            )

    report = sync.sync(progress=progress)
    assert report.chunks_embedded == count and report.files_uploaded == count
    done, total, held, hits = early[0]
    assert done == held == FIRST_BATCH_CHUNKS < total == count
    assert len(hits) == held  # every file of the first batch, and no other
    assert all((h.text or "").startswith("def handler_") for h in hits)
    final = sync.search("handler_005", top_k=1)
    assert final[0].path == "pkg0/m005.py"
    assert sync.stats().commits == 2  # the first batch, then the rest
    assert sync.stats().files == count and service_root(service, sync) == sync.synced_root


# ---------------------------------------------------------------------------------------------
# search quality with the real model


def test_search_finds_a_function_by_description_by_identifier_and_combined(
    tmp_path: Path, service: Service, client: IndexSyncClient, embed: Counted
) -> None:
    repo = tmp_path / "project"
    write(repo, PROJECT)
    sync = make_sync(repo, WorkspaceKeys(generate_workspace_key()), client, embed)
    sync.sync()
    description = "how many edits turn one word into another"
    by_vector = sync.search(description, top_k=3, mode="vector", use_rerank=False)
    assert by_vector[0].path == "src/text/strings.py", by_vector
    assert by_vector[0].lexical_rank == 0 and by_vector[0].vector_rank == 1
    by_name = sync.search("degrees_to_radians", top_k=3, mode="lexical", use_rerank=False)
    assert by_name[0].path == "src/geometry/angles.py", by_name
    for query, path in (
        (description, "src/text/strings.py"),
        ("degrees_to_radians", "src/geometry/angles.py"),
        ("area of a polygon from its corner points", "src/shapes/polygon.py"),
    ):
        combined = sync.search(query, top_k=3)
        assert combined[0].path == path, (query, combined)
        assert combined[0].text is not None and combined[0].start_line >= 1
    # An edit since the sync: the hit is still mapped, but marked stale (its text changed).
    strings = repo / "src/text/strings.py"
    strings.write_text(
        strings.read_text().replace("previous = current", "previous = current  # the next row"),
        encoding="utf-8",
    )
    stale = sync.search(description, top_k=1, mode="vector")
    assert stale[0].path == "src/text/strings.py"
    assert stale[0].stale and stale[0].text is None


# ---------------------------------------------------------------------------------------------
# a dropped connection, cancellation, auth


def test_a_connection_killed_mid_upload_resumes_to_the_same_root(
    tmp_path: Path, service: Service, embed: Counted
) -> None:
    repo = tmp_path / "project"
    write(repo, PROJECT)
    keys = WorkspaceKeys(generate_workspace_key())
    with IndexSyncClient(service.target, TOKEN, timeout=30.0) as client:
        sync = make_sync(repo, keys, client, embed, max_message_bytes=6000, backoff_s=(0.1, 0.5))
        sync.sync()
        base = sync.synced_root
        # Many new files: their upload takes many messages.
        write(
            repo,
            {
                f"src/more/mod_{i:02d}.py": f"def function_{i}(x):\n    return x + {i}\n"
                for i in range(24)
            },
        )
        seen: list[tuple[str, int, int]] = []
        checked: dict[str, Any] = {}

        def progress(stage: str, done: int, total: int) -> None:
            seen.append((stage, done, total))
            if stage == "upload" and done == 3 and not checked:
                assert service.store is not None
                deadline = time.monotonic() + 30
                while service.store.stats(keys.key_id).cached_chunks == 0:  # message 1 landed
                    assert time.monotonic() < deadline
                    time.sleep(0.01)
                service.stop()  # mid-Upload: the call dies with the server
                with open_store(service.folder) as store:  # what the service kept on disk
                    checked["root"] = store.root(keys.key_id, sync.tree_id)
                    checked["files"] = store.stats(keys.key_id, sync.tree_id).files
                    checked["cached"] = store.stats(keys.key_id).cached_chunks
                service.start()

        embedded_before = len(embed.texts)
        report = sync.sync(progress=progress)
        assert sync.stats().files == len(PROJECT) + 24
    # Nothing of the broken commit was applied: the service held the previous tree ...
    assert checked["root"] == base and checked["files"] == len(PROJECT)
    # ... and kept the chunks that had arrived, so the retry did not send them again.
    assert checked["cached"] > 0
    assert report.attempts == 2
    total_new = len(embed.texts) - embedded_before
    assert total_new == report.chunks_referenced == 24  # each chunk embedded exactly once
    assert 0 < report.chunks_uploaded < total_new
    assert service_root(service, sync) == sync.synced_root != base
    assert ("upload", 3, max(t for s, _d, t in seen if s == "upload")) in seen


def test_a_cancelled_sync_leaves_the_tree_and_keeps_its_embeddings(
    tmp_path: Path, service: Service, client: IndexSyncClient, embed: Counted
) -> None:
    repo = tmp_path / "project"
    write(
        repo,
        {f"pkg/m{i}.py": f"def handler_{i}(event):\n    return event * {i}\n" for i in range(20)},
    )
    sync = make_sync(repo, WorkspaceKeys(generate_workspace_key()), client, embed)
    stop = threading.Event()

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "embed" and done >= 8:
            stop.set()

    with pytest.raises(SyncCancelled):
        sync.sync(progress=progress, cancelled=stop.is_set)
    assert service_root(service, sync) is None  # nothing was committed
    partial = len(embed.texts)
    assert 8 <= partial < 20
    report = sync.sync()
    assert report.chunks_embedded == 20 - partial  # the first run's vectors were kept
    assert len(embed.texts) == 20
    assert service_root(service, sync) == sync.synced_root


def test_a_wrong_token_fails_at_once(tmp_path: Path, service: Service, embed: Counted) -> None:
    write(tmp_path / "p", {"a.py": "x = 1\n"})
    with IndexSyncClient(service.target, "a-wrong-token-of-enough-length", timeout=10) as bad:
        sync = make_sync(tmp_path / "p", WorkspaceKeys(generate_workspace_key()), bad, embed)
        with pytest.raises(SyncError) as err:
            sync.sync()
    assert err.value.code == "UNAUTHENTICATED"
    assert embed.calls == 0


# ---------------------------------------------------------------------------------------------
# malformed input


KEYS = WorkspaceKeys(bytes(range(32)))
SEG = KEYS.obfuscate_segment("src")
GOOD_PATH = KEYS.obfuscate_path("src/main.py")
TREE = pb.TreeRef(workspace_id=KEYS.key_id, tree_id=b"T" * 16)
H = b"\x11" * 32


def _chunk(**overrides: Any) -> pb.ChunkData:
    fields: dict[str, Any] = {
        "chunk_hash": H,
        "embedding": [0.05] * 384,
        "term_hashes": b"\1" * 8,
        "term_counts": [1],
    }
    fields.update(overrides)
    return pb.ChunkData(**fields)


def _upload(*messages: pb.UploadRequest) -> list[pb.UploadRequest]:
    first = pb.UploadRequest(tree=TREE, new_root=H)
    first.MergeFrom(messages[0] if messages else pb.UploadRequest())
    return [first, *messages[1:]]


MALFORMED: list[tuple[str, str, Any, str]] = [
    (
        "GetNodes",
        "bad workspace id",
        pb.GetNodesRequest(tree=pb.TreeRef(workspace_id="Not-Hex", tree_id=b"T" * 16)),
        "workspace_id must be 32 lowercase hex",
    ),
    (
        "GetNodes",
        "short tree id",
        pb.GetNodesRequest(tree=pb.TreeRef(workspace_id=KEYS.key_id, tree_id=b"T" * 15)),
        "tree_id must be 16 bytes, not 15",
    ),
    (
        "GetNodes",
        "root of the wrong length",
        pb.GetNodesRequest(tree=TREE, root_hash=b"\1" * 31),
        "root_hash must be 32 bytes, not 31",
    ),
    (
        "GetNodes",
        "a '..' segment",
        pb.GetNodesRequest(tree=TREE, folders=[pb.FolderQuery(path=f"{SEG}/../{SEG}")]),
        "holds '..'",
    ),
    (
        "GetNodes",
        "an absolute path",
        pb.GetNodesRequest(tree=TREE, folders=[pb.FolderQuery(path=f"/{SEG}")]),
        "is an absolute path",
    ),
    (
        "GetNodes",
        "an empty segment",
        pb.GetNodesRequest(tree=TREE, folders=[pb.FolderQuery(path=f"{SEG}//{SEG}")]),
        "has an empty segment",
    ),
    (
        "HasChunks",
        "a hash of the wrong length",
        pb.HasChunksRequest(workspace_id=KEYS.key_id, chunk_hashes=[H, b"\1" * 33]),
        "chunk_hashes[1] must be 32 bytes, not 33",
    ),
    (
        "HasChunks",
        "too many hashes",
        pb.HasChunksRequest(workspace_id=KEYS.key_id, chunk_hashes=[H] * 50_001),
        "at most 50000 are allowed",
    ),
    (
        "Upload",
        "a plaintext path",
        _upload(
            pb.UploadRequest(files=[pb.FileEntry(path=f"{SEG}/main.py", file_hash=H)], commit=True)
        ),
        "files[0].path has a segment that is not obfuscated",
    ),
    (
        "Upload",
        "a short plaintext name",
        _upload(pb.UploadRequest(files=[pb.FileEntry(path="src/main", file_hash=H)], commit=True)),
        "shorter than 32 characters",
    ),
    (
        "Upload",
        "a '..' deletion",
        _upload(pb.UploadRequest(deleted=[f"{SEG}/.."], commit=True)),
        "deleted[0] holds '..'",
    ),
    (
        "Upload",
        "a file hash of the wrong length",
        _upload(
            pb.UploadRequest(
                files=[pb.FileEntry(path=GOOD_PATH, file_hash=b"\1" * 16)], commit=True
            )
        ),
        "files[0].file_hash must be 32 bytes, not 16",
    ),
    (
        "Upload",
        "an embedding of the wrong dimension",
        _upload(pb.UploadRequest(chunks=[_chunk(embedding=[0.1] * 383)], commit=True)),
        "chunks[0].embedding has 383 dimensions; this index uses 384",
    ),
    (
        "Upload",
        "a NaN in an embedding",
        _upload(pb.UploadRequest(chunks=[_chunk(embedding=[float("nan")] * 384)], commit=True)),
        "must be finite",
    ),
    (
        "Upload",
        "term hashes not in 8-byte units",
        _upload(pb.UploadRequest(chunks=[_chunk(term_hashes=b"\1" * 7)], commit=True)),
        "whole number of 8-byte",
    ),
    (
        "Upload",
        "counts that do not match the terms",
        _upload(pb.UploadRequest(chunks=[_chunk(term_counts=[1, 2])], commit=True)),
        "one count per term hash",
    ),
    (
        "Upload",
        "a line range from 0",
        _upload(
            pb.UploadRequest(
                files=[
                    pb.FileEntry(
                        path=GOOD_PATH,
                        file_hash=H,
                        chunks=[pb.ChunkRef(chunk_hash=H, start_line=0, end_line=3)],
                    )
                ],
                commit=True,
            )
        ),
        "needs 1 <= start_line <= end_line",
    ),
    (
        "Upload",
        "a path twice",
        _upload(
            pb.UploadRequest(
                files=[
                    pb.FileEntry(path=GOOD_PATH, file_hash=H),
                    pb.FileEntry(path=GOOD_PATH, file_hash=H),
                ],
                commit=True,
            )
        ),
        "appears twice",
    ),
    (
        "Upload",
        "no commit message",
        _upload(pb.UploadRequest(files=[pb.FileEntry(path=GOOD_PATH, file_hash=H)])),
        "ended without its commit message",
    ),
    (
        "Search",
        "no query",
        pb.SearchRequest(tree=TREE, root_hash=H),
        "needs an embedding or term hashes",
    ),
    (
        "Search",
        "top_k too big",
        pb.SearchRequest(tree=TREE, root_hash=H, term_hashes=b"\1" * 8, top_k=101),
        "top_k must be at most 100",
    ),
    (
        "Search",
        "a query embedding of the wrong dimension",
        pb.SearchRequest(tree=TREE, root_hash=H, embedding=[0.1] * 10),
        "has 10 dimensions",
    ),
]


def _call(stub: Any, method: str, request: Any) -> grpc.RpcError:
    metadata = (("authorization", f"Bearer {TOKEN}"),)
    arg = iter(request) if isinstance(request, list) else request
    with pytest.raises(grpc.RpcError) as err:
        getattr(stub, method)(arg, metadata=metadata, timeout=20)
    return err.value


@pytest.mark.parametrize(
    ("method", "case", "request_", "message"), MALFORMED, ids=[c for _m, c, _r, _s in MALFORMED]
)
def test_malformed_sync_input_is_rejected_with_a_clear_message(
    service: Service, method: str, case: str, request_: Any, message: str
) -> None:
    with grpc.insecure_channel(service.target) as channel:
        error = _call(rpc.IndexSyncStub(channel), method, request_)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (case, error.details())
    assert message in (error.details() or ""), (case, error.details())
    assert service.store is not None
    stats = service.store.stats(KEYS.key_id, TREE.tree_id)
    assert (stats.root, stats.files, stats.cached_chunks) == (None, 0, 0)


def test_oversized_stale_and_inconsistent_commits_are_refused(service: Service) -> None:
    with grpc.insecure_channel(service.target) as channel:
        stub = rpc.IndexSyncStub(channel)
        big = pb.HasChunksRequest(workspace_id=KEYS.key_id, chunk_hashes=[H] * 140_000)
        assert big.ByteSize() > 4 * 1024 * 1024
        assert _call(stub, "HasChunks", big).code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        # A base root the service never had: the tree moved on (or never was).
        stale = _upload(pb.UploadRequest(base_root=b"\2" * 32, commit=True))
        assert _call(stub, "Upload", stale).code() == grpc.StatusCode.ABORTED
        # A commit whose files do not add up to its new root.
        lie = _upload(
            pb.UploadRequest(files=[pb.FileEntry(path=GOOD_PATH, file_hash=H)], commit=True)
        )
        error = _call(stub, "Upload", lie)
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "does not add up" in (error.details() or "")
    assert service.store is not None and service.store.root(KEYS.key_id, TREE.tree_id) is None
