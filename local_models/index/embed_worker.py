"""``python -m local_models.index.embed_worker``: the code index's embedding process.

One ``Embedder`` in a process of its own, at a lower CPU priority (``nice``, default +10) than
the editor and the completion worker, so indexing a workspace never makes typing or completions
wait: on a busy machine the scheduler gives it what the others leave. It speaks newline-
delimited JSON on stdin/stdout (``embed_client.EmbedWorker`` is the other side):

requests (stdin)
    ``{"op": "embed", "id": N, "texts": [...]}``, ``{"op": "cancel", "id": N}``,
    ``{"op": "shutdown"}`` (or EOF: the editor died)
events (stdout)
    ``{"event": "converting", "done": i, "total": n}`` while the GGUF is written the first time;
    ``{"event": "ready", "dim": 384, "max_tokens": 256, "batch_size": 8}``;
    per batch ``{"event": "vectors", "id": N, "start": i, "data": "<base64 float32 LE>"}`` and
    ``{"event": "progress", "id": N, "done": i, "total": n}``; then ``{"event": "done", "id": N}``,
    ``{"event": "cancelled", "id": N, "done": i}`` or ``{"event": "failed", "id": N, "error": s}``.
    A model that cannot be loaded: ``{"event": "failed", "error": s}`` and exit status 3.

Vectors are streamed batch by batch, so what was computed before a cancel is kept. Requests run
one at a time in order; a cancel for a queued request drops it. Texts and vectors never reach a
log: stderr carries only llama.cpp's own messages.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import queue
import sys
import threading
from typing import Any, BinaryIO

from forecode_core.index.embed_protocol import EmbedEvent, EmbedOp

__all__ = ["main"]

EXIT_BAD_MODEL = 3


class _Output:
    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def send(self, **event: Any) -> None:
        line = json.dumps(event, separators=(",", ":")).encode() + b"\n"
        # a gone client is not an error here: stdin's EOF ends the process
        with self._lock, contextlib.suppress(OSError):
            self._stream.write(line)


class _Requests:
    """The stdin reader: embed requests queue up; cancels act at once."""

    def __init__(self) -> None:
        self.queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._cancelled: set[int] = set()

    def cancelled(self, rid: int) -> bool:
        with self._lock:
            return rid in self._cancelled

    def forget(self, rid: int) -> None:
        with self._lock:
            self._cancelled.discard(rid)

    def read(self, stream: BinaryIO, out: _Output) -> None:
        for raw in stream:
            try:
                msg = json.loads(raw)
                op = msg["op"]
            except (ValueError, KeyError, TypeError):
                out.send(event=EmbedEvent.FAILED, error="malformed request line")
                continue
            if op == EmbedOp.EMBED:
                self.queue.put(msg)
            elif op == EmbedOp.CANCEL:
                with self._lock:
                    self._cancelled.add(int(msg.get("id", -1)))
            elif op == EmbedOp.SHUTDOWN:
                break
            else:
                out.send(event=EmbedEvent.FAILED, id=msg.get("id"), error=f"unknown op {op!r}")
        self.queue.put(None)


def _serve(out: _Output, requests: _Requests, embedder: Any) -> None:
    import numpy as np

    while (msg := requests.queue.get()) is not None:
        rid = int(msg.get("id", -1))
        texts = msg.get("texts")
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            out.send(event=EmbedEvent.FAILED, id=rid, error="texts must be a list of strings")
            continue
        done = 0
        try:
            while done < len(texts):
                if requests.cancelled(rid):
                    out.send(event=EmbedEvent.CANCELLED, id=rid, done=done)
                    break
                batch = texts[done : done + embedder.batch_size]
                vectors = np.ascontiguousarray(embedder.embed(batch), dtype="<f4")
                out.send(
                    event=EmbedEvent.VECTORS,
                    id=rid,
                    start=done,
                    data=base64.b64encode(vectors.tobytes()).decode("ascii"),
                )
                done += len(batch)
                out.send(event=EmbedEvent.PROGRESS, id=rid, done=done, total=len(texts))
            else:
                out.send(event=EmbedEvent.DONE, id=rid)
        except Exception as exc:  # one bad request must not end the process
            out.send(event=EmbedEvent.FAILED, id=rid, error=f"{type(exc).__name__}: {exc}")
        finally:
            requests.forget(rid)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_models.index.embed_worker")
    parser.add_argument("--model", help="a BERT GGUF (default: the converted all-MiniLM-L6-v2)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--nice", type=int, default=10, help="CPU priority offset (default 10)")
    args = parser.parse_args(argv)

    # Protocol output goes to a private copy of stdout; fd 1 (and sys.stdout) now go to stderr,
    # so nothing a native library prints can corrupt the protocol.
    sys.stdout.flush()
    proto_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    out = _Output(os.fdopen(proto_fd, "wb", buffering=0))
    if args.nice and hasattr(os, "nice"):
        with contextlib.suppress(OSError):
            os.nice(args.nice)

    from local_models.gguf_info import ModelError
    from local_models.index.embed_model import ConversionError, ensure_embed_model
    from local_models.index.embedder import DEFAULT_BATCH_SIZE, DEFAULT_THREADS, Embedder

    try:
        path = args.model or ensure_embed_model(
            lambda done, total: out.send(event=EmbedEvent.CONVERTING, done=done, total=total)
        )
        embedder = Embedder(
            path,
            n_threads=args.threads or DEFAULT_THREADS,
            batch_size=args.batch_size or DEFAULT_BATCH_SIZE,
        )
    except (ModelError, ConversionError, ValueError) as exc:
        out.send(event=EmbedEvent.FAILED, error=str(exc))
        return EXIT_BAD_MODEL
    requests = _Requests()
    reader = threading.Thread(
        target=requests.read, args=(sys.stdin.buffer, out), name="embed-stdin", daemon=True
    )
    reader.start()
    out.send(
        event=EmbedEvent.READY,
        dim=embedder.dim,
        max_tokens=embedder.max_tokens,
        batch_size=embedder.batch_size,
    )
    try:
        _serve(out, requests, embedder)
    finally:
        embedder.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
