"""The ``cloud`` benchmark: chat streams through the real gRPC service on loopback.

One run, the default model, one ``LlamaBackend`` (``--slots`` engines, default 2) served by
``cloud_server.service.start_server`` on 127.0.0.1 with a fresh token, reached through the
editor's own client (``cloud_client.client.CloudClient``).

(a) Concurrency: 1, 4 and 16 chat streams started at once (each its own conversation and
    question, so no stream reuses another's answer), ``--rounds`` times. Per stream the time to
    first token (call -> first ``ChatDelta``); per wave the total completion tokens over the
    wave's wall time. Keys ``ttft_p50_ms``, ``ttft_p95_ms`` and ``tokens_per_s``, each a dict
    by stream count ("1", "4", "16"). More streams than slots wait in the service's queue, so
    TTFT grows with the count while tokens/s shows what batching the slots buys.
(b) ``grpc_overhead``: the same backend called in-process (``backend.stream_chat``) against the
    same call through gRPC (client -> loopback -> service -> backend), one stream at a time,
    interleaved in pairs with the order flipped every pair; each call has its own question of
    the same token length and runs to ``max_tokens`` (questions that ask for long answers), so
    both sides do the same work. ``grpc_overhead`` = median(gRPC call ms) / median(in-process
    call ms) - 1 (target <= 0.05).

``--quick``: one round, short replies (for tests).
"""

from __future__ import annotations

import argparse
import secrets
import threading
import time
from typing import Any

from bench._common import median, percentile

DEFAULT_ROUNDS = 3
STREAM_COUNTS = (1, 4, 16)

QUESTION = (
    "Question {n}: write a long, complete Python module for an inventory system with "
    "classes, docstrings and tests. Start at once."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="one round, short replies")
    parser.add_argument(
        "--model",
        default="",
        help="model id from the registry (default: the service's default "
        "model; --quick: qwen2.5-coder-0.5b-instruct)",
    )
    parser.add_argument("--slots", type=int, default=2, help="the service's model slots")
    parser.add_argument(
        "--max-tokens", type=int, default=None, help="tokens per reply (default 32; 6 with --quick)"
    )
    parser.add_argument(
        "--pairs",
        type=int,
        default=None,
        help="in-process / gRPC call pairs for grpc_overhead (default 8)",
    )


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


class _Counter:
    def __init__(self, start: int) -> None:
        self._n = start
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            self._n += 1
            return self._n


def _params(n: int, max_tokens: int) -> Any:
    from forecode_core.chat.types import ChatMessage, ChatParams, Role

    return ChatParams(
        conversation_id=f"bench-{n}",
        max_tokens=max_tokens,
        messages=(ChatMessage(Role.USER, QUESTION.format(n=n)),),
    )


def _consume(events: Any, began: float) -> tuple[float | None, int, float, str]:
    """(ms to the first delta, completion tokens, ms to done, finish reason)."""
    from forecode_core.chat.types import ChatDelta, ChatDone

    first: float | None = None
    tokens, reason = 0, "none"
    for event in events:
        if isinstance(event, ChatDelta) and first is None:
            first = (time.perf_counter() - began) * 1000.0
        elif isinstance(event, ChatDone):
            tokens = int(event.usage.get("completion_tokens", 0))
            reason = event.finish_reason
    return first, tokens, (time.perf_counter() - began) * 1000.0, reason


def _wave(client: Any, count: int, numbers: _Counter, max_tokens: int) -> dict[str, Any]:
    results: list[tuple[float | None, int, float, str]] = [(None, 0, 0.0, "none")] * count
    errors: list[str] = []
    gate = threading.Barrier(count + 1)

    def stream(i: int) -> None:
        params = _params(numbers.next(), max_tokens)
        gate.wait()
        began = time.perf_counter()
        try:
            results[i] = _consume(client.chat(params, timeout=600.0), began)
        except Exception as exc:  # reported in the JSON, not raised: one failure is a figure
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=stream, args=(i,), daemon=True) for i in range(count)]
    for t in threads:
        t.start()
    gate.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    ttfts = [r[0] for r in results if r[0] is not None]
    tokens = sum(r[1] for r in results)
    return {"ttft_ms": ttfts, "tokens": tokens, "wall_s": wall, "errors": errors}


def run(args: argparse.Namespace) -> dict[str, Any]:
    from cloud_client.client import CloudClient
    from cloud_server.backends import LlamaBackend
    from cloud_server.config import ServerConfig
    from cloud_server.service import start_server
    from local_models.model_store import SERVICE_MODEL, ensure_model

    quick = bool(args.quick)
    rounds = 1 if quick else args.rounds
    max_tokens = args.max_tokens or (6 if quick else 32)
    pairs = args.pairs or (3 if quick else 8)
    # An instruction-tuned model: a base model's reply is stopped by the reply guard after a
    # few tokens (it recites its instructions), which would skew tokens/s.
    model_id = args.model or ("qwen2.5-coder-0.5b-instruct" if quick else SERVICE_MODEL)
    model = ensure_model(model_id)
    token = secrets.token_urlsafe(32)
    config = ServerConfig(
        tokens=(token,),
        slots=args.slots,
        n_ctx=1024,
        max_queue=max(STREAM_COUNTS),
        default_max_tokens=max_tokens,
        model_path=str(model),
    )
    backend = LlamaBackend(config)
    server = start_server(config, backend=backend)
    client = CloudClient(server.address, token)
    numbers = _Counter(1000)  # four digits: every question has the same token count
    started = time.perf_counter()
    try:
        _consume(client.chat(_params(numbers.next(), max_tokens)), time.perf_counter())  # warm-up
        waves: dict[int, list[dict[str, Any]]] = {n: [] for n in STREAM_COUNTS}
        for r in range(rounds):
            order = STREAM_COUNTS if r % 2 == 0 else tuple(reversed(STREAM_COUNTS))
            for count in order:
                waves[count].append(_wave(client, count, numbers, max_tokens))

        in_process: list[float] = []
        over_grpc: list[float] = []
        token_counts: list[tuple[int, int]] = []
        for p in range(pairs):
            pair: dict[str, tuple[float | None, int, float, str]] = {}
            for path in ("local", "grpc") if p % 2 == 0 else ("grpc", "local"):
                params = _params(numbers.next(), max_tokens)
                began = time.perf_counter()
                if path == "local":
                    events = backend.stream_chat(params, should_stop=lambda: False)
                else:
                    events = client.chat(params)
                pair[path] = _consume(events, began)
            in_process.append(pair["local"][2])
            over_grpc.append(pair["grpc"][2])
            token_counts.append((pair["local"][1], pair["grpc"][1]))
        info = client.info()
    finally:
        client.close()
        server.stop(grace=1.0)

    def by_count(fn: Any) -> dict[str, float | None]:
        return {str(n): fn(waves[n]) for n in STREAM_COUNTS}

    def ttfts(ws: list[dict[str, Any]]) -> list[float]:
        return [t for w in ws for t in w["ttft_ms"]]

    overhead = median(over_grpc) / median(in_process) - 1.0
    return {
        "quick": quick,
        "rounds": rounds,
        "ttft_p50_ms": by_count(lambda ws: _r(percentile(ttfts(ws), 50), 1) if ttfts(ws) else None),
        "ttft_p95_ms": by_count(lambda ws: _r(percentile(ttfts(ws), 95), 1) if ttfts(ws) else None),
        "tokens_per_s": by_count(
            lambda ws: _r(sum(w["tokens"] for w in ws) / sum(w["wall_s"] for w in ws), 2)
        ),
        "stream_errors": {
            str(n): [e for w in waves[n] for e in w["errors"]] for n in STREAM_COUNTS
        },
        "grpc_overhead": _r(overhead, 4),
        "grpc_call_ms_p50": _r(median(over_grpc), 1),
        "in_process_call_ms_p50": _r(median(in_process), 1),
        "overhead_samples": {
            "grpc_ms": [_r(x, 1) for x in over_grpc],
            "in_process_ms": [_r(x, 1) for x in in_process],
            "completion_tokens": token_counts,
        },
        "max_tokens": max_tokens,
        "slots": args.slots,
        "model": model.name,
        "service": info,
        "targets": {"grpc_overhead": "<= 0.05"},
        "wall_s": _r(time.perf_counter() - started, 1),
    }
