"""The gRPC service against a hostile or careless client (issue 13, points 3, 4 and 7), on a
real server on loopback: ``start_server`` in this process (so the upload ledger, the refusal
counts and every log record, gRPC's own included, can be read) with the ``openai`` backend on
``bench.service_load.FakeUpstream`` and a real embedded index store; the memory test runs
``python -m cloud_server`` as a child process and reads its resident size.

3. Uploads that never commit: refused with RESOURCE_EXHAUSTED at the limit per call and per
   token, and whatever a refused or cancelled call held is given back; the client commits in
   batches under the service's limit.
4. Malformed requests (bytes that are not the message, or well-formed messages with invalid
   values) to every method, streams and health included: INVALID_ARGUMENT, one short line,
   never a traceback.
7. Without a token health answers only for the whole service; refused calls are counted and
   logged at a bounded rate.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import numpy.typing as npt
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from helpers.cloud import ServiceProcess, free_port

from bench.service_load import FakeUpstream, rss_mb
from cloud_client.index_sync import IndexSync, IndexSyncClient, new_tree_id
from cloud_server.config import ServerConfig
from cloud_server.guard import RefusalLog
from cloud_server.index_store import DEFAULT_DIMENSION, open_store
from cloud_server.service import RunningServer, start_server
from cloud_server.upload_budget import OverBudget, UploadBudget
from forecode_core.index.crypto import WorkspaceKeys, generate_workspace_key
from proto.forecode.v1 import forecode_pb2 as pb
from proto.forecode.v1 import forecode_pb2_grpc as rpc

TOKEN = "hardening-test-token-0123456789"
OTHER = "hardening-other-token-9876543210"
SEGMENT = "A" * 40  # looks obfuscated (base64url, >= 32 characters)
KIB = 1024


def bearer(token: str = TOKEN) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    fake = FakeUpstream()
    yield fake
    fake.close()


class Served:
    def __init__(self, running: RunningServer, store: Any) -> None:
        self.running = running
        self.store = store
        self.channel = grpc.insecure_channel(
            f"127.0.0.1:{running.port}", options=[("grpc.max_send_message_length", 8 << 20)]
        )

    @property
    def index(self) -> Any:
        return rpc.IndexSyncStub(self.channel)

    @property
    def health(self) -> Any:
        return health_pb2_grpc.HealthStub(self.channel)

    def close(self) -> None:
        self.channel.close()
        self.running.stop(0)
        self.store.close()


@pytest.fixture
def serve(tmp_path: Path, upstream: FakeUpstream) -> Iterator[Callable[..., Served]]:
    started: list[Served] = []

    def start(**config: Any) -> Served:
        store = open_store(tmp_path / f"index{len(started)}")
        cfg = ServerConfig(
            tokens=(TOKEN, OTHER),
            backend="openai",
            openai_url=upstream.url,
            openai_model="fake",
            slots=2,
            grace_s=0,
            **config,
        )
        served = Served(start_server(cfg, index_store=store), store)
        started.append(served)
        return served

    yield start
    for served in started:
        served.close()


@pytest.fixture
def records(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    for record in caplog.records:
        assert record.exc_info is None, (record.name, record.getMessage())
        assert "Traceback" not in caplog.text
        assert record.levelno < logging.ERROR, (record.name, record.getMessage())


def wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


# ---------------------------------------------------------------------------------------------
# 3. pending uploads


def entries(count: int, refs: int, salt: int = 0) -> list[pb.FileEntry]:
    """Valid file entries (obfuscated-looking paths, 32-byte hashes) of ``refs`` chunks each."""
    out = []
    for i in range(count):
        entry = pb.FileEntry(
            path=f"{SEGMENT}/{salt:06d}{i:06d}{'B' * 30}",
            file_hash=hashlib.sha256(b"%d-%d" % (salt, i)).digest(),
        )
        for j in range(refs):
            entry.chunks.add(
                chunk_hash=hashlib.sha256(b"%d-%d-%d" % (salt, i, j)).digest(),
                start_line=j + 1,
                end_line=j + 1,
            )
        out.append(entry)
    return out


def tree_ref() -> pb.TreeRef:
    return pb.TreeRef(workspace_id=generate_workspace_key()[:16].hex(), tree_id=new_tree_id())


class Stalled:
    """An upload's messages: ``messages`` of file entries (about ``kib`` KiB each), then
    the stream stalls (never commits) until ``release``; ``sent`` counts those taken."""

    def __init__(self, messages: int, kib: int, salt: int = 0) -> None:
        self.release = threading.Event()
        self.sent = 0
        self._messages = messages
        self._count = max(1, kib * KIB // 150)
        self._salt = salt
        self._ref = tree_ref()

    def __iter__(self) -> Iterator[pb.UploadRequest]:
        for m in range(self._messages):
            message = pb.UploadRequest(files=entries(self._count, 1, self._salt * 1000 + m))
            if m == 0:
                message.tree.CopyFrom(self._ref)
                message.new_root = hashlib.sha256(b"root").digest()
            self.sent += 1
            yield message
        self.release.wait(20)


def test_an_upload_that_never_commits_is_refused_at_the_limit_per_call(
    serve: Callable[..., Served], records: pytest.LogCaptureFixture
) -> None:
    served = serve(max_upload_pending_bytes=256 * KIB, max_upload_pending_bytes_per_token=512 * KIB)
    stream = Stalled(messages=40, kib=100)
    try:
        with pytest.raises(grpc.RpcError) as err:
            served.index.Upload(iter(stream), metadata=bearer(), timeout=30)
    finally:
        stream.release.set()
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "limit per call" in err.value.details()
    assert "smaller batches" in err.value.details()
    budget = served.running.uploads
    assert 0 < budget.peak <= 256 * KIB  # never held more than the limit
    assert budget.held() == 0  # ... and gave it all back
    assert stream.sent < 40  # refused early: the client did not get to send everything
    assert "refused (over the limit per call)" in records.text
    no_traceback(records)


def test_the_limit_per_token_holds_across_parallel_uploads(
    serve: Callable[..., Served], records: pytest.LogCaptureFixture
) -> None:
    served = serve(max_upload_pending_bytes=256 * KIB, max_upload_pending_bytes_per_token=384 * KIB)
    budget = served.running.uploads
    first = Stalled(messages=1, kib=200, salt=1)
    call_first = served.index.Upload.future(iter(first), metadata=bearer(), timeout=30)
    other = Stalled(messages=1, kib=200, salt=2)
    call_other = served.index.Upload.future(iter(other), metadata=bearer(OTHER), timeout=30)
    try:
        assert wait_until(lambda: budget.held() >= 2 * 190 * KIB), budget.held()
        # The same token again: within the limit per call, over the limit per token.
        second = Stalled(messages=1, kib=200, salt=3)
        second.release.set()
        with pytest.raises(grpc.RpcError) as err:
            served.index.Upload(iter(second), metadata=bearer(), timeout=30)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "limit per token" in err.value.details()
        assert budget.held() >= 2 * 190 * KIB  # the other token's upload was not touched
    finally:
        first.release.set()
        other.release.set()
    for call in (call_first, call_other):  # they end without a commit: nothing applied
        with pytest.raises(grpc.RpcError) as ended:
            call.result(timeout=30)
        assert ended.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert wait_until(lambda: budget.held() == 0)
    no_traceback(records)


def test_a_cancelled_upload_gives_back_what_it_held(serve: Callable[..., Served]) -> None:
    served = serve(max_upload_pending_bytes=1024 * KIB)
    budget = served.running.uploads
    stream = Stalled(messages=2, kib=200)
    call = served.index.Upload.future(iter(stream), metadata=bearer(), timeout=30)
    try:
        assert wait_until(lambda: budget.held() >= 390 * KIB), budget.held()
        call.cancel()
        assert wait_until(lambda: budget.held() == 0), budget.held()
    finally:
        stream.release.set()
    # and the service goes on: a later upload may hold as much again
    again = Stalled(messages=2, kib=200, salt=5)
    call = served.index.Upload.future(iter(again), metadata=bearer(), timeout=30)
    try:
        assert wait_until(lambda: budget.held() >= 390 * KIB), budget.held()
    finally:
        again.release.set()
    with pytest.raises(grpc.RpcError):
        call.result(timeout=30)
    assert wait_until(lambda: budget.held() == 0)


def test_uploads_at_once_are_bounded_and_health_still_answers(
    serve: Callable[..., Served], records: pytest.LogCaptureFixture
) -> None:
    """Stalled uploads hold a handler thread each; past ``max_uploads`` they are refused, so
    health and the other calls keep their threads."""
    served = serve(max_uploads=3)
    budget = served.running.uploads
    stalled = [Stalled(messages=1, kib=1, salt=10 + i) for i in range(3)]
    calls = [served.index.Upload.future(iter(s), metadata=bearer(), timeout=30) for s in stalled]
    try:
        assert wait_until(lambda: budget.calls == 3), budget.calls
        extra = Stalled(messages=1, kib=1, salt=20)
        extra.release.set()
        with pytest.raises(grpc.RpcError) as err:
            served.index.Upload(iter(extra), metadata=bearer(), timeout=30)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "uploads at once" in err.value.details()
        for _ in range(20):  # health and the quick calls are served meanwhile
            assert (
                served.health.Check(health_pb2.HealthCheckRequest(), timeout=5).status
                == health_pb2.HealthCheckResponse.SERVING
            )
        rpc.InfoStub(served.channel).GetInfo(pb.GetInfoRequest(), metadata=bearer(), timeout=5)
    finally:
        for s in stalled:
            s.release.set()
    for call in calls:
        with pytest.raises(grpc.RpcError):
            call.result(timeout=30)
    assert wait_until(lambda: budget.calls == 0 and budget.held() == 0)
    no_traceback(records)


def test_a_committed_upload_still_works_and_holds_nothing_after(
    serve: Callable[..., Served],
) -> None:
    from forecode_core.index.merkle import MerkleTree

    served = serve(max_upload_pending_bytes=64 * KIB)
    keys = WorkspaceKeys(generate_workspace_key())
    tree = MerkleTree(keys)
    for i in range(40):
        tree.set_file(f"dir/file{i}.txt", b"")
    ref = pb.TreeRef(workspace_id=keys.key_id, tree_id=new_tree_id())
    files = [
        pb.FileEntry(path=tree.obfuscated(p), file_hash=tree.node_hash(p)) for p, _d in tree.files()
    ]
    reply = served.index.Upload(
        iter(
            [
                pb.UploadRequest(tree=ref, new_root=tree.root_hash, files=files[:20]),
                pb.UploadRequest(files=files[20:], commit=True),
            ]
        ),
        metadata=bearer(),
        timeout=30,
    )
    assert reply.root_hash == tree.root_hash and reply.files_written == 40
    assert served.running.uploads.held() == 0 and served.running.uploads.peak > 0


def test_the_service_process_memory_stays_bounded_under_an_upload_that_never_commits(
    tmp_path: Path,
) -> None:
    """The issue's case: 25 messages of 3.6 MB of file entries, never committed (it took the
    service from 66 to 578 MB). With the default limits the service refuses it early; its
    resident size grows by a bounded amount and comes back down."""
    service = ServiceProcess(
        [
            "--port",
            "0",
            "--index-dir",
            str(tmp_path / "index"),
            "--backend",
            "openai",
            "--openai-url",
            f"http://127.0.0.1:{free_port()}",
            "--openai-model",
            "unused",
            "--grace",
            "0",
        ],
        token=TOKEN,
    ).start()
    assert service.proc is not None
    pid = service.proc.pid
    channel = grpc.insecure_channel(
        service.target, options=[("grpc.max_send_message_length", 8 << 20)]
    )
    try:
        # Warm the service's IndexSync path (store opened, modules loaded) before measuring.
        with pytest.raises(grpc.RpcError):
            rpc.IndexSyncStub(channel).Stats(pb.StatsRequest(), metadata=bearer(), timeout=30)
        before = rss_mb(pid)
        assert before is not None
        peak = [before]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.02):
                value = rss_mb(pid)
                if value is not None:
                    peak[0] = max(peak[0], value)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        ref = tree_ref()
        sent = [0]

        def messages() -> Iterator[pb.UploadRequest]:
            for m in range(25):
                message = pb.UploadRequest(files=entries(90, 1000, salt=m))
                if m == 0:
                    message.tree.CopyFrom(ref)
                    message.new_root = hashlib.sha256(b"root").digest()
                assert 3_400_000 < message.ByteSize() < 4 * 1024 * 1024
                sent[0] += 1
                yield message

        with pytest.raises(grpc.RpcError) as err:
            rpc.IndexSyncStub(channel).Upload(messages(), metadata=bearer(), timeout=120)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        time.sleep(0.5)
        done.set()
        sampler.join()
        after = rss_mb(pid)
        assert after is not None
    finally:
        channel.close()
        assert service.stop() == 0
    assert sent[0] < 25
    # 8 MiB of entries held in wire form, plus the messages in flight: far below the 500 MB
    # this took before.
    assert peak[0] - before < 120, (before, peak[0], after)
    assert after - before < 80, (before, peak[0], after)
    assert "refused (over the limit per call)" in service.log()
    assert "Traceback" not in service.log()


# -- the client commits in batches under the limit


DIM = DEFAULT_DIMENSION


class HashEmbedder:
    def embed(
        self,
        texts: Sequence[str],
        *,
        progress: Callable[[int, int], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> npt.NDArray[np.float32]:
        out = np.zeros((len(texts), DIM), np.float32)
        for i, text in enumerate(texts):
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
            out[i] = np.random.default_rng(seed).standard_normal(DIM)
            out[i] /= np.linalg.norm(out[i])
        return out


def test_the_client_commits_in_batches_under_the_service_limit(
    serve: Callable[..., Served], tmp_path: Path, records: pytest.LogCaptureFixture
) -> None:
    served = serve(max_upload_pending_bytes=64 * KIB, max_upload_pending_bytes_per_token=64 * KIB)
    folder = tmp_path / "repo"
    for d in range(10):
        (folder / f"package{d}").mkdir(parents=True)
        for f in range(150):
            (folder / f"package{d}" / f"notes_{f}.txt").write_text(f"note {d} {f}\n")
    keys = WorkspaceKeys(generate_workspace_key())
    with IndexSyncClient(f"127.0.0.1:{served.running.port}", TOKEN, timeout=30) as client:
        sync = IndexSync(
            folder, keys, client, HashEmbedder(), tree_id=new_tree_id(), backoff_s=(0.01, 0.05)
        )
        first = sync.sync()
        assert first.changed and sync.stats().files == 1500
        assert sync.max_commit_bytes <= 32 * KIB  # learnt from the refusal
        assert client.traffic.calls["Upload"] >= 4  # several commits
        # A change with replaced files and deletions, too big for one commit.
        for d in range(10):
            for f in range(150):
                path = folder / f"package{d}" / f"notes_{f}.txt"
                if f % 10 == 0:
                    path.unlink()
                else:
                    path.write_text(f"changed note {d} {f}\n")
        second = sync.sync()
        assert second.changed and second.attempts == 1  # it knew the limit by now
        assert second.files_uploaded == 1350 and second.paths_deleted == 150
        assert sync.stats().files == 1350
        third = sync.sync()
        assert not third.changed  # the service's tree is the folder's
        hits = sync.search("changed note 3 7", top_k=3)
        assert hits and hits[0].text is not None
    assert served.running.uploads.peak <= 64 * KIB
    assert served.running.uploads.held() == 0
    no_traceback(records)


# ---------------------------------------------------------------------------------------------
# 4. malformed requests


def all_methods() -> list[tuple[str, Any, bool, bool]]:
    """(path, request class, request streaming, response streaming) of every method."""
    from google.protobuf import message_factory

    out = []
    for service in (
        *pb.DESCRIPTOR.services_by_name.values(),
        health_pb2.DESCRIPTOR.services_by_name["Health"],
    ):
        for method in service.methods:
            out.append(
                (
                    f"/{service.full_name}/{method.name}",
                    message_factory.GetMessageClass(method.input_type),
                    method.client_streaming,
                    method.server_streaming,
                )
            )
    return out


def parses(cls: Any, data: bytes) -> bool:
    try:
        cls.FromString(data)
    except Exception:
        return False
    return True


GARBAGE = [
    b"\x0a\xff\xff\xff\xff\x0f",  # field 1, a length far past the end
    b"\x12\x04\x08\x02\x12",  # a message cut in the middle
    b"\x0a\x02\xff\xfe",  # a string field that is not UTF-8
    b"\xff" * 64,  # not protobuf at all
]


def raw_call(
    channel: grpc.Channel,
    path: str,
    streams: tuple[bool, bool],
    payloads: list[bytes],
    metadata: list[tuple[str, str]] | None,
) -> grpc.StatusCode:
    request_streaming, response_streaming = streams
    try:
        if request_streaming:
            call = (channel.stream_stream if response_streaming else channel.stream_unary)(path)
            result = call(iter(payloads), metadata=metadata, timeout=10)
            if response_streaming:
                list(result)
        elif response_streaming:
            list(channel.unary_stream(path)(payloads[0], metadata=metadata, timeout=10))
        else:
            channel.unary_unary(path)(payloads[0], metadata=metadata, timeout=10)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def test_garbage_bytes_to_every_method_are_invalid_argument_without_a_traceback(
    serve: Callable[..., Served], records: pytest.LogCaptureFixture
) -> None:
    served = serve()
    first = len(records.records)  # after the service's start-up lines
    methods = all_methods()
    assert "/forecode.v1.IndexSync/Upload" in {m for m, _, _, _ in methods}
    assert "/grpc.health.v1.Health/Check" in {m for m, _, _, _ in methods}
    calls = 0
    for path, cls, request_streaming, response_streaming in methods:
        for garbage in GARBAGE:
            if parses(cls, garbage):
                continue  # valid for this message (an unknown field of an empty message)
            payloads = (
                [
                    pb.UploadRequest(tree=tree_ref(), new_root=b"\x01" * 32).SerializeToString(),
                    garbage,
                ]
                if request_streaming
                else [garbage]
            )  # a good message, then a bad one
            for metadata in [bearer(), None] if path.startswith("/grpc.health") else [bearer()]:
                code = raw_call(
                    served.channel,
                    path,
                    (request_streaming, response_streaming),
                    payloads,
                    metadata,
                )
                assert code == grpc.StatusCode.INVALID_ARGUMENT, (path, garbage, code)
                calls += 1
    lines = [r for r in records.records if "that are not its request" in r.getMessage()]
    assert len(lines) == calls  # one line each ...
    assert len([r for r in records.records[first:] if r.name == "forecode.cloud"]) == calls
    assert all(len(r.getMessage()) < 160 for r in lines)  # ... and a short one
    no_traceback(records)
    # the service goes on
    reply = served.health.Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_the_health_list_method_is_plainly_unimplemented(
    serve: Callable[..., Served], records: pytest.LogCaptureFixture
) -> None:
    served = serve()
    for metadata in (bearer(), None):
        with pytest.raises(grpc.RpcError) as err:
            served.health.List(health_pb2.HealthListRequest(), metadata=metadata, timeout=10)
        assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    no_traceback(records)


def chunk(**fields: Any) -> pb.ChunkData:
    values = {
        "chunk_hash": b"\x01" * 32,
        "embedding": [0.5] * DIM,
        "term_hashes": b"\x02" * 8,
        "term_counts": [1],
    }
    values.update(fields)
    return pb.ChunkData(**values)


def upload_of(*, first: dict[str, Any] | None = None, **fields: Any) -> list[pb.UploadRequest]:
    head = {"tree": tree_ref(), "new_root": b"\x03" * 32}
    head.update(first or {})
    return [pb.UploadRequest(**head, **fields, commit=True)]


INVALID_UPLOADS = {
    "tree id of 3 bytes": upload_of(
        first={"tree": pb.TreeRef(workspace_id="0" * 32, tree_id=b"abc")}
    ),
    "workspace id not hex": upload_of(
        first={"tree": pb.TreeRef(workspace_id="Z" * 32, tree_id=b"\x01" * 16)}
    ),
    "new root of 5 bytes": upload_of(first={"new_root": b"12345"}),
    "NaN in an embedding": upload_of(chunks=[chunk(embedding=[math.nan] * DIM)]),
    "infinite embedding": upload_of(chunks=[chunk(embedding=[math.inf] * DIM)]),
    "embedding of 3 dimensions": upload_of(chunks=[chunk(embedding=[1.0, 2.0, 3.0])]),
    "all-zero embedding": upload_of(chunks=[chunk(embedding=[0.0] * DIM)]),
    "term hashes not whole": upload_of(chunks=[chunk(term_hashes=b"\x02" * 7)]),
    "term count zero": upload_of(chunks=[chunk(term_counts=[0])]),
    "term counts missing": upload_of(chunks=[chunk(term_counts=[])]),
    "path with ..": upload_of(files=[pb.FileEntry(path="..", file_hash=b"\x01" * 32)]),
    "absolute path": upload_of(files=[pb.FileEntry(path="/" + SEGMENT, file_hash=b"\x01" * 32)]),
    "plaintext path": upload_of(files=[pb.FileEntry(path="main.py", file_hash=b"\x01" * 32)]),
    "lines backwards": upload_of(
        files=[
            pb.FileEntry(
                path=SEGMENT,
                file_hash=b"\x01" * 32,
                chunks=[pb.ChunkRef(chunk_hash=b"\x01" * 32, start_line=9, end_line=2)],
            )
        ]
    ),
    "line zero": upload_of(
        files=[
            pb.FileEntry(
                path=SEGMENT,
                file_hash=b"\x01" * 32,
                chunks=[pb.ChunkRef(chunk_hash=b"\x01" * 32, start_line=0, end_line=2**32 - 1)],
            )
        ]
    ),
    "deleted path empty": upload_of(deleted=[""]),
    "the same path twice": upload_of(
        files=[
            pb.FileEntry(path=SEGMENT, file_hash=b"\x01" * 32),
            pb.FileEntry(path=SEGMENT, file_hash=b"\x02" * 32),
        ]
    ),
}


@pytest.mark.parametrize("what", sorted(INVALID_UPLOADS))
def test_well_formed_uploads_with_invalid_values_are_invalid_argument(
    serve: Callable[..., Served], records: pytest.LogCaptureFixture, what: str
) -> None:
    served = serve()
    with pytest.raises(grpc.RpcError) as err:
        served.index.Upload(iter(INVALID_UPLOADS[what]), metadata=bearer(), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    assert served.running.uploads.held() == 0
    no_traceback(records)


def test_well_formed_requests_with_invalid_values_elsewhere_are_invalid_argument(
    serve: Callable[..., Served], records: pytest.LogCaptureFixture
) -> None:
    served = serve()
    index = served.index
    good = tree_ref()
    cases: list[tuple[Callable[..., Any], Any]] = [
        (
            index.Search,
            pb.SearchRequest(tree=good, root_hash=b"\x01" * 32, embedding=[math.nan] * DIM),
        ),
        (
            index.Search,
            pb.SearchRequest(
                tree=good, root_hash=b"\x01" * 32, top_k=10**6, term_hashes=b"\x01" * 8
            ),
        ),
        (
            index.Search,
            pb.SearchRequest(tree=good, root_hash=b"\x01" * 32, mode=99, term_hashes=b"\x01" * 8),
        ),
        (index.GetNodes, pb.GetNodesRequest(tree=good, folders=[pb.FolderQuery(path="../x")])),
        (index.GetNodes, pb.GetNodesRequest(tree=good, root_hash=b"\x01")),
        (
            index.HasChunks,
            pb.HasChunksRequest(workspace_id=good.workspace_id, chunk_hashes=[b"short"]),
        ),
        (index.Stats, pb.StatsRequest(tree=pb.TreeRef(workspace_id="x"))),
        (rpc.ChatStub(served.channel).Stream, pb.ChatRequest()),
        (rpc.ApplyStub(served.channel).Apply, pb.ApplyRequest(path="a\x00b", block="x")),
    ]
    for call, request in cases:
        with pytest.raises(grpc.RpcError) as err:
            result = call(request, metadata=bearer(), timeout=10)
            if isinstance(result, Iterator):
                list(result)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (request, err.value)
    no_traceback(records)


# ---------------------------------------------------------------------------------------------
# 7. what strangers learn, and what they cost the log


def test_health_without_a_token_answers_only_for_the_whole_service(
    serve: Callable[..., Served],
) -> None:
    served = serve()
    health = served.health
    SERVING = health_pb2.HealthCheckResponse.SERVING
    NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
    # One service turned off: only a caller with a token is told so, by name.
    served.running._health.set("forecode.v1.Chat", NOT_SERVING)
    for metadata in (None, bearer("not-the-token-at-all-0000")):
        for name in ("", "forecode.v1.Chat", "forecode.v1.IndexSync", "no.such.Service"):
            reply = health.Check(
                health_pb2.HealthCheckRequest(service=name), metadata=metadata, timeout=10
            )
            assert reply.status == SERVING, (name, metadata)  # the whole service: up
        watch = health.Watch(
            health_pb2.HealthCheckRequest(service="no.such.Service"), metadata=metadata, timeout=10
        )
        assert next(watch).status == SERVING
        watch.cancel()
    # With the token, per service, as grpc.health.v1 says.
    assert (
        health.Check(
            health_pb2.HealthCheckRequest(service="forecode.v1.Chat"), metadata=bearer(), timeout=10
        ).status
        == NOT_SERVING
    )
    with pytest.raises(grpc.RpcError) as err:
        health.Check(
            health_pb2.HealthCheckRequest(service="no.such.Service"), metadata=bearer(), timeout=10
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    # Going down is told to everyone.
    served.running._health.set("", NOT_SERVING)
    assert (
        health.Check(health_pb2.HealthCheckRequest(service="forecode.v1.Info"), timeout=10).status
        == NOT_SERVING
    )


REFUSAL_LINE = re.compile(r"refused a call to \S+: (missing|a wrong) bearer token")
SUMMARY_LINE = re.compile(r"refused (\d+) more calls in the last")


def test_refused_calls_are_counted_and_logged_at_a_bounded_rate(
    serve: Callable[..., Served], records: pytest.LogCaptureFixture
) -> None:
    interval = 0.5
    served = serve(refusal_log_interval_s=interval)
    info = served.channel.unary_unary("/forecode.v1.Info/GetInfo")
    began = time.monotonic()
    refused = 0
    while refused < 400:
        metadata = None if refused % 2 else bearer("a-wrong-token-0123456789")
        with pytest.raises(grpc.RpcError) as err:
            info(b"", metadata=metadata, timeout=10)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        refused += 1
    elapsed = time.monotonic() - began
    assert served.running.refusals.total == 400
    assert served.running.refusals.by_reason() == {
        "missing bearer token": 200,
        "a wrong bearer token": 200,
    }
    served.running.stop(0)  # writes what is still counted
    lines = [
        r.getMessage()
        for r in records.records
        if r.name == "forecode.cloud"
        and r.levelno == logging.WARNING
        and "refused" in r.getMessage()
    ]
    # At most one line at once and one summary per interval, whatever the rate.
    assert len(lines) <= 2 * (elapsed / interval + 2), (len(lines), elapsed)
    assert len(lines) < 100  # (400 refusals)
    counted = sum(
        1 if REFUSAL_LINE.search(line) else int(SUMMARY_LINE.search(line)[1]) for line in lines
    )
    assert counted == 400  # every refusal is in the log's counts
    assert "0123456789" not in records.text  # never the token


def test_the_refusal_log_writes_one_summary_per_interval() -> None:
    logger = logging.getLogger("test.refusals")
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    handler = Keep()
    logger.addHandler(handler)
    try:
        log = RefusalLog(0.2, logger)
        for _ in range(1000):
            log.refused("/m", "missing bearer token")
        assert len(lines) == 1  # the first at once; the rest wait for the interval
        assert wait_until(lambda: len(lines) == 2, 5)
        assert "refused 999 more calls" in lines[1] and "1000 since the start" in lines[1]
        time.sleep(0.3)
        log.refused("/m", "a wrong bearer token")  # after a quiet interval: at once
        assert len(lines) == 3 and "a wrong bearer token" in lines[2]
        log.close()
        assert len(lines) == 3 and log.total == 1001
    finally:
        logger.removeHandler(handler)


def test_the_upload_budget_counts_per_call_and_per_token() -> None:
    budget = UploadBudget(per_call=100, per_token=150)
    a = budget.call("token-a")
    a.reserve(60)
    with pytest.raises(OverBudget) as over:
        a.reserve(41)
    assert over.value.scope == "call" and a.held == 60
    b = budget.call("token-a")
    b.reserve(90)
    with pytest.raises(OverBudget) as over:
        b.reserve(1)
    assert over.value.scope == "token"
    other = budget.call("token-b")
    other.reserve(100)  # another token has its own share
    assert budget.held("token-a") == 150 and budget.held() == 250
    a.release()
    a.release()  # idempotent
    b.reserve(10)
    with b:
        pass
    other.release()
    assert budget.held() == 0 and budget.peak == 250 and budget.calls == 0
    few = UploadBudget(per_call=10, per_token=10, max_calls=2)
    one, two = few.call("t"), few.call("t")
    with pytest.raises(OverBudget) as over:
        few.call("u")
    assert over.value.scope == "uploads"
    one.release()
    few.call("u").release()
    two.release()
    assert few.calls == 0
