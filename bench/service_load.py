"""The ``service_load`` benchmark: fuzz and load the real gRPC service on loopback.

The service runs as a user runs it (``python -m cloud_server``, the token in its environment,
an embedded index store in a temporary folder) with the ``openai`` backend pointed at
``FakeUpstream``: an OpenAI-compatible server in this process that streams a short reply a
few milliseconds per token. The real backend code, slots, queue and cancellation run; only the
model is fake, so a chat costs milliseconds instead of seconds (a real model goes through the
service in ``tests/test_cloud_service.py``).

1. Fuzz: ``--fuzz`` messages (default 3,000) across every method of every ``forecode.v1``
   service and both health methods: random bytes, random well-formed protobuf of the method's
   request type (every field filled at random: huge and negative numbers, NaN, non-ASCII and
   long strings, bytes of every length) and such messages cut or with bytes flipped; streamed
   requests (IndexSync Upload) get several per call; one call in ten carries no token.
2. Load: ``--clients`` (default 50) clients, each its own channel, for ``--seconds`` (default
   8): chats read to the end, chats cancelled after the first event, chats never read (left
   to their deadline or cancelled), applies, small committed uploads, uploads that never commit
   (cancelled, or stalled until their deadline), index and info calls. A prober asks health
   every 20 ms throughout.
3. After: the service must still answer, its upstream connections (one per chat or apply in
   a slot) drain to zero, and ``slots`` chats at once all run.

Figures: ``calls`` (fuzz + load), ``statuses`` (count by gRPC status name), ``crashes``
(the service process died), ``hangs`` (calls that outlived their deadline by 10 s), ``internal``
(INTERNAL or UNKNOWN statuses: a handler failed), ``tracebacks`` (in the service's log),
``health_p50_ms`` / ``health_p99_ms`` / ``health_failures``, ``rss_mb_before`` /
``rss_mb_peak`` / ``rss_mb_after`` (the service process, before the fuzz, sampled throughout,
after the load), ``upstream_open_after``, ``log_bytes``.

``run_load`` is also what ``tests/test_service_fuzz.py`` runs (smaller) against a service it
starts in-process.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import json
import math
import os
import random
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench._common import percentile

DEFAULT_ROUNDS = 1
REPO = Path(__file__).resolve().parent.parent
HEALTH = "grpc.health.v1.Health"
BAD = ("INTERNAL", "UNKNOWN")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fuzz", type=int, default=3000, help="fuzzed messages (default 3000)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (50)")
    parser.add_argument("--seconds", type=float, default=8.0, help="load duration (8 s)")
    parser.add_argument("--slots", type=int, default=4, help="the service's slots (4)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--keep-log", metavar="PATH", help="copy the service's log to PATH")


# ---------------------------------------------------------------------------------------------
# an OpenAI-compatible upstream that answers at once


class FakeUpstream:
    """``POST /v1/chat/completions`` streamed as server-sent events: ``tokens`` deltas,
    ``delay_s`` apart, then a finish and ``[DONE]``. ``open`` is the number of requests being
    answered right now (a chat or apply holding a slot holds one)."""

    def __init__(self, tokens: int = 8, delay_s: float = 0.004) -> None:
        self.tokens = tokens
        self.delay_s = delay_s
        self._lock = threading.Lock()
        self.open = 0
        self.requests = 0
        upstream = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                body = b'{"data": [{"id": "fake"}]}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                with upstream._lock:
                    upstream.open += 1
                    upstream.requests += 1
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                    self.rfile.read(length)
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()
                    for i in range(upstream.tokens):
                        event = {"choices": [{"delta": {"content": f"x{i} "}}]}
                        self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                        self.wfile.flush()
                        time.sleep(upstream.delay_s)
                    done = {
                        "choices": [{"delta": {}, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 5, "completion_tokens": upstream.tokens},
                    }
                    self.wfile.write(f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n".encode())
                    self.wfile.flush()
                except OSError:
                    pass  # the service hung up (a cancelled call)
                finally:
                    with upstream._lock:
                        upstream.open -= 1

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, daemon=True, name="fake-upstream"
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_idle(self, timeout: float) -> int:
        """Wait until no request is being answered; the number still open."""
        deadline = time.monotonic() + timeout
        while self.open and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.open

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# ---------------------------------------------------------------------------------------------
# fuzzed requests


def _methods() -> list[tuple[str, Any, bool, bool]]:
    """(path, request class, request streaming, response streaming) of every method."""
    from google.protobuf import message_factory
    from grpc_health.v1 import health_pb2

    from proto.forecode.v1 import forecode_pb2 as pb

    out = []
    for descriptor in (
        *pb.DESCRIPTOR.services_by_name.values(),
        health_pb2.DESCRIPTOR.services_by_name["Health"],
    ):
        for method in descriptor.methods:
            out.append(
                (
                    f"/{descriptor.full_name}/{method.name}",
                    message_factory.GetMessageClass(method.input_type),
                    method.client_streaming,
                    method.server_streaming,
                )
            )
    return out


_INTS = (0, 1, -1, 2, 7, 31, 32, 2**31 - 1, -(2**31), 2**63 - 1, -(2**63), 10**6)
_FLOATS = (0.0, -0.0, 1.0, -1.0, 1e38, -1e-38, math.nan, math.inf, -math.inf, 0.5)


def _string(rng: random.Random) -> str:
    kind = rng.randrange(6)
    if kind == 0:
        return ""
    if kind == 1:
        return "".join(rng.choice("abcdef0123456789") for _ in range(32))  # hex, like an id
    if kind == 2:
        return "/".join("A" * rng.randint(30, 50) for _ in range(rng.randint(1, 3)))
    if kind == 3:
        return "".join(chr(rng.randint(1, 0x2FFF)) for _ in range(rng.randint(1, 40)))
    if kind == 4:
        return rng.choice(["..", ".", "/abs", "a//b", "main.py", "\x00", "x" * 5000])
    return "def f():\n    return 1\n" * rng.randint(1, 5)


def _bytes(rng: random.Random) -> bytes:
    return os.urandom(rng.choice((0, 1, 8, 16, 24, 31, 32, 33, 64, 200)))


def _scalar(fd: Any, rng: random.Random) -> Any:
    """A random value for a scalar field (numbers at and past their edges)."""
    from google.protobuf.descriptor import FieldDescriptor as F

    t = fd.cpp_type
    if t in (F.CPPTYPE_INT32, F.CPPTYPE_INT64, F.CPPTYPE_UINT32, F.CPPTYPE_UINT64):
        v = rng.choice(_INTS)
        if t == F.CPPTYPE_INT32:
            v = max(-(2**31), min(2**31 - 1, v))
        elif t == F.CPPTYPE_UINT32:
            v = abs(v) % 2**32
        elif t == F.CPPTYPE_UINT64:
            v = abs(v) % 2**64
        return v
    if t in (F.CPPTYPE_FLOAT, F.CPPTYPE_DOUBLE):
        return rng.choice(_FLOATS)
    if t == F.CPPTYPE_BOOL:
        return rng.random() < 0.5
    if t == F.CPPTYPE_ENUM:
        return rng.choice([v.number for v in fd.enum_type.values] + [99])
    if fd.type == F.TYPE_BYTES:
        return _bytes(rng)
    return _string(rng)


def random_message(cls: Any, rng: random.Random, depth: int = 0) -> Any:
    """A well-formed message of ``cls`` with fields chosen at random."""
    from google.protobuf.descriptor import FieldDescriptor as F

    message = cls()
    for fd in message.DESCRIPTOR.fields:
        if rng.random() < 0.4:
            continue
        count = rng.randint(0, 4 if depth < 2 else 1) if fd.is_repeated else 1

        for _ in range(count):
            if fd.cpp_type == F.CPPTYPE_MESSAGE:
                if depth > 3:
                    break
                child = random_message(fd.message_type._concrete_class, rng, depth + 1)
                if fd.is_repeated:
                    getattr(message, fd.name).add().CopyFrom(child)
                else:
                    getattr(message, fd.name).CopyFrom(child)
            elif fd.is_repeated:
                if fd.cpp_type in (F.CPPTYPE_FLOAT, F.CPPTYPE_DOUBLE) and rng.random() < 0.3:
                    getattr(message, fd.name).extend(rng.random() for _ in range(384))
                else:
                    getattr(message, fd.name).append(_scalar(fd, rng))
            else:
                setattr(message, fd.name, _scalar(fd, rng))
    return message


def fuzz_bytes(cls: Any, rng: random.Random) -> bytes:
    """Random bytes, a random well-formed message, or one cut or with bytes flipped."""
    kind = rng.randrange(4)
    if kind == 0:
        return os.urandom(rng.randint(0, 300))
    data: bytes = random_message(cls, rng).SerializeToString()
    if kind == 1 or not data:
        return data
    if kind == 2:
        return data[: rng.randrange(len(data))]
    flipped = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        flipped[rng.randrange(len(flipped))] = rng.randrange(256)
    return bytes(flipped)


# ---------------------------------------------------------------------------------------------
# the driver


@dataclass
class Tally:
    statuses: Counter[str] = field(default_factory=Counter)
    hangs: int = 0
    calls: int = 0
    health_ms: list[float] = field(default_factory=list)
    health_failures: int = 0
    examples: dict[str, str] = field(default_factory=dict)  # a bad status: the method
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, method: str, status: str) -> None:
        with self.lock:
            self.calls += 1
            self.statuses[status] += 1
            if status in BAD:
                self.examples.setdefault(status, method)

    @property
    def internal(self) -> int:
        return sum(self.statuses[s] for s in BAD)


def _status(exc: BaseException) -> str:
    import grpc

    code = exc.code() if isinstance(exc, grpc.RpcError) and hasattr(exc, "code") else None
    return code.name if isinstance(code, grpc.StatusCode) else f"client {type(exc).__name__}"


class Driver:
    """Fuzz and load one service at ``target`` with ``token``; every outcome into ``tally``."""

    HANG_SLACK_S = 10.0

    def __init__(self, target: str, token: str, *, seed: int = 13) -> None:
        self.target = target
        self.token = token
        self.seed = seed
        self.tally = Tally()
        self._methods = _methods()

    def channel(self) -> Any:
        import grpc

        return grpc.insecure_channel(
            self.target,
            options=[
                ("grpc.max_send_message_length", 8 << 20),
                ("grpc.max_receive_message_length", 8 << 20),
            ],
        )

    @property
    def auth(self) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self.token}")]

    def _timed(self, method: str, deadline: float, call: Callable[[], str]) -> None:
        """Run ``call`` (returns a status name) on a thread; a hang if it outlives its
        deadline by ``HANG_SLACK_S``."""
        out: list[str] = []

        def run() -> None:
            try:
                out.append(call())
            except Exception as exc:
                out.append(_status(exc))

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        worker.join(deadline + self.HANG_SLACK_S)
        if worker.is_alive():
            with self.tally.lock:
                self.tally.hangs += 1
            self.tally.add(method, "HANG")
            return
        self.tally.add(method, out[0])

    # -- fuzz -----------------------------------------------------------------------------------

    def fuzz(self, messages: int, workers: int = 6) -> None:
        """About ``messages`` fuzzed messages, spread evenly over every method."""
        per_method = max(1, messages // len(self._methods))
        jobs: list[tuple[str, Any, bool, bool, int]] = []
        for path, cls, req_stream, resp_stream in self._methods:
            sent = 0
            while sent < per_method:
                n = min(per_method - sent, 4) if req_stream else 1
                jobs.append((path, cls, req_stream, resp_stream, n))
                sent += n
        random.Random(self.seed).shuffle(jobs)
        lock = threading.Lock()

        def work(index: int) -> None:
            rng = random.Random(self.seed * 1000 + index)
            channel = self.channel()
            try:
                while True:
                    with lock:
                        if not jobs:
                            return
                        job = jobs.pop()
                    self._fuzz_one(channel, rng, *job)
            finally:
                channel.close()

        threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def _fuzz_one(
        self,
        channel: Any,
        rng: random.Random,
        path: str,
        cls: Any,
        req_stream: bool,
        resp_stream: bool,
        n: int,
    ) -> None:
        metadata = None if rng.random() < 0.1 else self.auth
        deadline = 1.0 if path.endswith("/Watch") else 5.0
        raws = [fuzz_bytes(cls, rng) for _ in range(n)]

        def call() -> str:
            if req_stream and resp_stream:
                it = channel.stream_stream(path)(iter(raws), metadata=metadata, timeout=deadline)
                for _ in it:
                    pass
            elif req_stream:
                channel.stream_unary(path)(iter(raws), metadata=metadata, timeout=deadline)
            elif resp_stream:
                for _ in channel.unary_stream(path)(raws[0], metadata=metadata, timeout=deadline):
                    pass
            else:
                channel.unary_unary(path)(raws[0], metadata=metadata, timeout=deadline)
            return "OK"

        self._timed(path, deadline, call)

    # -- load -----------------------------------------------------------------------------------

    def load(self, clients: int, seconds: float) -> None:
        """``clients`` clients for ``seconds``, a health prober throughout."""
        stop = threading.Event()
        prober = threading.Thread(target=self._probe_health, args=(stop,), daemon=True)
        prober.start()
        end = time.monotonic() + seconds
        threads = [
            threading.Thread(target=self._client, args=(i, end), daemon=True)
            for i in range(clients)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(seconds + 60)
        stop.set()
        prober.join(10)

    def _probe_health(self, stop: threading.Event) -> None:
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        channel = self.channel()
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            while not stop.wait(0.02):
                began = time.perf_counter()
                try:
                    reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
                    ok = reply.status == health_pb2.HealthCheckResponse.SERVING
                except Exception:
                    ok = False
                took = (time.perf_counter() - began) * 1000.0
                with self.tally.lock:
                    self.tally.health_ms.append(took)
                    if not ok:
                        self.tally.health_failures += 1
        finally:
            channel.close()

    def health_ok(self) -> bool:
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        channel = self.channel()
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=10
            )
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
        except Exception:
            return False
        finally:
            channel.close()

    def _client(self, index: int, end: float) -> None:
        rng = random.Random(self.seed * 7919 + index)
        channel = self.channel()
        actions: list[tuple[str, Callable[[Any, random.Random], None], int]] = [
            ("chat", self._chat_read, 4),
            ("chat cancelled", self._chat_cancel, 3),
            ("chat never read", self._chat_never_read, 2),
            ("apply", self._apply, 2),
            ("upload", self._upload, 2),
            ("upload never commits", self._upload_abandoned, 2),
            ("index calls", self._index_calls, 2),
            ("info", self._info, 1),
        ]
        weights = [w for _, _, w in actions]
        try:
            while time.monotonic() < end:
                _name, action, _w = rng.choices(actions, weights)[0]
                action(channel, rng)
        finally:
            channel.close()

    def _chat_request(self, rng: random.Random) -> Any:
        from proto.forecode.v1 import forecode_pb2 as pb

        return pb.ChatRequest(
            conversation_id=f"c{rng.randrange(20)}",
            max_tokens=8,
            messages=[pb.ChatMessage(role=pb.ROLE_USER, content="Add two numbers in Python.")],
        )

    def _chat_read(self, channel: Any, rng: random.Random) -> None:
        from proto.forecode.v1 import forecode_pb2_grpc as rpc

        def call() -> str:
            for _ in rpc.ChatStub(channel).Stream(
                self._chat_request(rng), metadata=self.auth, timeout=10
            ):
                pass
            return "OK"

        self._timed("/forecode.v1.Chat/Stream", 10, call)

    def _chat_cancel(self, channel: Any, rng: random.Random) -> None:
        from proto.forecode.v1 import forecode_pb2_grpc as rpc

        def call() -> str:
            it = rpc.ChatStub(channel).Stream(
                self._chat_request(rng), metadata=self.auth, timeout=10
            )
            next(it)
            it.cancel()
            for _ in it:
                pass
            return "OK"

        self._timed("/forecode.v1.Chat/Stream", 10, call)

    def _chat_never_read(self, channel: Any, rng: random.Random) -> None:
        """Start a chat and never read it: cancelled after a while, or left to its deadline."""
        from proto.forecode.v1 import forecode_pb2_grpc as rpc

        it = rpc.ChatStub(channel).Stream(self._chat_request(rng), metadata=self.auth, timeout=1.0)
        time.sleep(rng.uniform(0.05, 0.4))
        if rng.random() < 0.5:
            it.cancel()
            self.tally.add("/forecode.v1.Chat/Stream", "CANCELLED")
            return
        self._timed("/forecode.v1.Chat/Stream", 1.0, lambda: _drain_status(it))

    def _apply(self, channel: Any, rng: random.Random) -> None:
        from proto.forecode.v1 import forecode_pb2 as pb
        from proto.forecode.v1 import forecode_pb2_grpc as rpc

        original = "".join(f"def f{i}(x):\n    return x + {i}\n\n\n" for i in range(6))
        block = "def f3(x):\n    return x * 3\n" if rng.random() < 0.7 else "class New:\n    pass\n"
        request = pb.ApplyRequest(path="m.py", language="python", original=original, block=block)

        def call() -> str:
            for _ in rpc.ApplyStub(channel).Apply(request, metadata=self.auth, timeout=10):
                pass
            return "OK"

        self._timed("/forecode.v1.Apply/Apply", 10, call)

    def _upload(self, channel: Any, rng: random.Random) -> None:
        """A real one-file commit of a fresh tree (no chunk: no embedding needed)."""
        from forecode_core.index.crypto import WorkspaceKeys, generate_workspace_key
        from forecode_core.index.merkle import MerkleTree
        from proto.forecode.v1 import forecode_pb2 as pb
        from proto.forecode.v1 import forecode_pb2_grpc as rpc

        keys = WorkspaceKeys(generate_workspace_key())
        tree = MerkleTree(keys)
        tree.set_file(f"empty{rng.randrange(100)}.txt", b"")
        path = next(iter(dict(tree.files())))
        ref = pb.TreeRef(workspace_id=keys.key_id, tree_id=os.urandom(16))
        message = pb.UploadRequest(
            tree=ref,
            new_root=tree.root_hash,
            commit=True,
            files=[pb.FileEntry(path=tree.obfuscated(path), file_hash=tree.node_hash(path))],
        )

        def call() -> str:
            rpc.IndexSyncStub(channel).Upload(iter([message]), metadata=self.auth, timeout=10)
            return "OK"

        self._timed("/forecode.v1.IndexSync/Upload", 10, call)

    def _upload_abandoned(self, channel: Any, rng: random.Random) -> None:
        """File entries streamed, then the client stalls: cancelled, or left to its
        deadline. The service must give back what it held."""
        from proto.forecode.v1 import forecode_pb2 as pb
        from proto.forecode.v1 import forecode_pb2_grpc as rpc

        ref = pb.TreeRef(workspace_id=os.urandom(16).hex(), tree_id=os.urandom(16))
        seg = "B" * 40
        release = threading.Event()

        def messages() -> Iterator[Any]:
            first = pb.UploadRequest(tree=ref, new_root=os.urandom(32))
            for i in range(200):
                first.files.add(path=f"{seg}/{i:08d}{'C' * 32}", file_hash=os.urandom(32))
            yield first
            release.wait(5)  # never commits

        future = rpc.IndexSyncStub(channel).Upload.future(
            messages(), metadata=self.auth, timeout=1.0
        )
        time.sleep(rng.uniform(0.05, 0.3))
        if rng.random() < 0.5:
            future.cancel()
        release.set()
        self._timed("/forecode.v1.IndexSync/Upload", 1.0, lambda: _future_status(future))

    def _index_calls(self, channel: Any, rng: random.Random) -> None:
        from proto.forecode.v1 import forecode_pb2 as pb
        from proto.forecode.v1 import forecode_pb2_grpc as rpc

        stub = rpc.IndexSyncStub(channel)
        ref = pb.TreeRef(workspace_id=os.urandom(16).hex(), tree_id=os.urandom(16))
        self._timed(
            "/forecode.v1.IndexSync/Stats",
            5,
            lambda: _ok(stub.Stats(pb.StatsRequest(tree=ref), metadata=self.auth, timeout=5)),
        )
        self._timed(
            "/forecode.v1.IndexSync/GetNodes",
            5,
            lambda: _ok(
                stub.GetNodes(
                    pb.GetNodesRequest(tree=ref, folders=[pb.FolderQuery(path="")]),
                    metadata=self.auth,
                    timeout=5,
                )
            ),
        )

    def _info(self, channel: Any, rng: random.Random) -> None:
        from proto.forecode.v1 import forecode_pb2 as pb
        from proto.forecode.v1 import forecode_pb2_grpc as rpc

        self._timed(
            "/forecode.v1.Info/GetInfo",
            5,
            lambda: _ok(
                rpc.InfoStub(channel).GetInfo(pb.GetInfoRequest(), metadata=self.auth, timeout=5)
            ),
        )

    def slots_all_run(self, slots: int) -> bool:
        """``slots`` chats at once all run to their end (no slot was left taken)."""
        results: list[bool] = []
        lock = threading.Lock()

        def one(i: int) -> None:
            from proto.forecode.v1 import forecode_pb2_grpc as rpc

            channel = self.channel()
            try:
                events = list(
                    rpc.ChatStub(channel).Stream(
                        self._chat_request(random.Random(i)), metadata=self.auth, timeout=20
                    )
                )
                ok = bool(events) and events[-1].HasField("done")
            except Exception:
                ok = False
            finally:
                channel.close()
            with lock:
                results.append(ok)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(slots)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(40)
        return len(results) == slots and all(results)


def _ok(_reply: Any) -> str:
    return "OK"


def _drain_status(it: Any) -> str:
    for _ in it:
        pass
    return "OK"


def _future_status(future: Any) -> str:
    import grpc

    try:
        future.result()
    except grpc.FutureCancelledError:
        return "CANCELLED"
    return "OK"


# ---------------------------------------------------------------------------------------------
# the benchmark: a service process


def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024.0, 1)
    except OSError:
        return None
    return None


class _Service:
    """``python -m cloud_server`` with the openai backend on ``upstream``."""

    def __init__(self, upstream: FakeUpstream, token: str, slots: int, folder: Path) -> None:
        env = dict(
            os.environ,
            FORECODE_CLOUD_TOKEN=token,
            PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        )
        env.pop("FORECODE_OPENAI_API_KEY", None)
        self.log_path = folder / "service.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cloud_server",
                "--port",
                "0",
                "--backend",
                "openai",
                "--openai-url",
                upstream.url,
                "--openai-model",
                "fake",
                "--slots",
                str(slots),
                "--max-queue",
                "64",
                "--index-dir",
                str(folder / "index"),
                "--grace",
                "1",
            ],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        match = re.match(r"forecode-cloud listening on (\S+):(\d+)", line)
        if not match:
            self.stop()
            raise RuntimeError("the service did not start:\n" + self.log()[-3000:])
        self.target = f"127.0.0.1:{match[2]}"

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            code = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = None
        self._log.close()
        return code


def figures(driver: Driver) -> dict[str, Any]:
    tally = driver.tally
    health = tally.health_ms or [math.nan]
    return {
        "calls": tally.calls,
        "statuses": dict(sorted(tally.statuses.items())),
        "hangs": tally.hangs,
        "internal": tally.internal,
        "bad_examples": tally.examples,
        "health_checks": len(tally.health_ms),
        "health_failures": tally.health_failures,
        "health_p50_ms": round(percentile(health, 50), 2),
        "health_p99_ms": round(percentile(health, 99), 2),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    token = secrets.token_urlsafe(32)
    upstream = FakeUpstream()
    with tempfile.TemporaryDirectory(prefix="forecode-load-") as tmp:
        service = _Service(upstream, token, args.slots, Path(tmp))
        try:
            driver = Driver(service.target, token, seed=args.seed)
            rss_before = rss_mb(service.proc.pid)
            peak = [rss_before or 0.0]
            sampling = threading.Event()

            def sample() -> None:
                while not sampling.wait(0.1):
                    value = rss_mb(service.proc.pid)
                    if value is not None:
                        peak[0] = max(peak[0], value)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            began = time.monotonic()
            driver.fuzz(args.fuzz)
            fuzz_s = time.monotonic() - began
            fuzz_calls = driver.tally.calls
            began = time.monotonic()
            driver.load(args.clients, args.seconds)
            load_s = time.monotonic() - began
            open_after = upstream.wait_idle(15)
            slots_ok = driver.slots_all_run(args.slots)
            healthy = driver.health_ok()
            time.sleep(0.5)
            sampling.set()
            sampler.join()
            rss_after = rss_mb(service.proc.pid)
            crashed = not service.alive
        finally:
            code = service.stop()
            upstream.close()
        log = service.log()
        if args.keep_log:
            Path(args.keep_log).write_text(log, encoding="utf-8")
    result = figures(driver)
    result.update(
        {
            "fuzz_calls": fuzz_calls,
            "fuzz_seconds": round(fuzz_s, 2),
            "load_calls": driver.tally.calls - fuzz_calls,
            "load_seconds": round(load_s, 2),
            "clients": args.clients,
            "slots": args.slots,
            "crashes": int(crashed),
            "exit_code": code,
            "healthy_after": healthy,
            "slots_all_run_after": slots_ok,
            "upstream_open_after": open_after,
            "upstream_requests": upstream.requests,
            "tracebacks": log.count("Traceback"),
            "log_bytes": len(log.encode()),
            "log_lines": log.count("\n"),
            "rss_mb_before": rss_before,
            "rss_mb_peak": peak[0],
            "rss_mb_after": rss_after,
        }
    )
    with contextlib.suppress(Exception):
        print(
            json.dumps({k: result[k] for k in ("calls", "internal", "hangs", "crashes")}),
            file=sys.stderr,
        )
    return result
