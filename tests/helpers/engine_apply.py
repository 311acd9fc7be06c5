"""``EngineApply``: the service's apply model path on an engine in the test process, behind the
editor's pipeline (``forecode_core.apply.pipeline.PipelineCall``). The editor itself never loads
a model (its model path is the service's, ``ServiceApply``); this runs the service's own code
(``cloud_server.backends.LlamaBackend.stream_apply``: ``local_models.apply_model.rewrite_file``
on a slot, its end as an ``ApplyDone``) without the gRPC hop, so a real-model test of the
review needs no service process. ``run_apply`` is the whole pipeline, blocking."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

from cloud_server.backends import LlamaBackend
from cloud_server.config import ServerConfig
from forecode_core.apply.block import ApplyInput
from forecode_core.apply.events import ApplyEvent
from forecode_core.apply.pipeline import ApplyResult, PipelineCall, consume_apply
from forecode_core.streams import Event

IN_PROCESS_TOKEN = "in-process-no-service-listens-for-it"  # a config must name one; unused


def run_apply(
    engine: Any, request: ApplyInput, *, on_event: Callable[[Event], None] | None = None
) -> ApplyResult | None:
    """The editor's apply pipeline with ``engine`` behind the service's model path, to the
    end: the review's data (``on_event`` gets the deltas and notices as they come);
    ``StreamError`` ("incomplete", "too_large", ...) when there is nothing to review."""
    call = PipelineCall(request, EngineApply(lambda: engine))
    return consume_apply(call, request, on_event=on_event or (lambda event: None))


class EngineApply:
    """The service's model path (``LlamaBackend.stream_apply``, one slot) on the engine that
    ``engine()`` gives: called on the apply's worker thread, never the UI thread (it may load
    the model); the backend is made on the first call, and warms the engine as the service
    does. The engine stays the caller's (the backend is never closed). ``cancel`` stops a
    request within a decode step, as a cancelled gRPC call does."""

    def __init__(self, engine: Callable[[], Any]) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._backend: LlamaBackend | None = None

    def backend(self) -> LlamaBackend:
        with self._lock:
            if self._backend is None:
                engine = self._engine()
                config = ServerConfig(
                    tokens=(IN_PROCESS_TOKEN,), slots=1, n_ctx=int(engine.n_ctx), model_path="-"
                )
                self._backend = LlamaBackend(config, engine_factory=lambda *a, **k: engine)
            return self._backend

    def __call__(self, request: ApplyInput) -> _EngineCall:
        return _EngineCall(self, request)


class _EngineCall:
    def __init__(self, owner: EngineApply, request: ApplyInput) -> None:
        self._owner = owner
        self._request = request
        self._stop = threading.Event()

    def cancel(self) -> None:
        self._stop.set()

    def __iter__(self) -> Iterator[ApplyEvent]:
        backend = self._owner.backend()
        yield from backend.stream_apply(self._request, should_stop=self._stop.is_set)
