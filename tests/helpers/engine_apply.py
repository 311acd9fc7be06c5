"""``EngineApply``: the apply model path on an engine in the test process, behind the editor's
pipeline (``forecode_core.apply.pipeline.PipelineCall``). The editor itself never loads a model
(its model path is the service's, ``ServiceApply``); this runs the same
``local_models.apply_model.rewrite_file`` the service's backends run, so a real-model test of
the review needs no service process. ``run_apply`` is the whole pipeline, blocking."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

from forecode_core.apply.block import ApplyInput
from forecode_core.apply.events import ApplyDone, ApplyEvent
from forecode_core.apply.pipeline import ApplyResult, PipelineCall, consume_apply
from forecode_core.streams import Delta, Event, StreamError


def run_apply(
    engine: Any, request: ApplyInput, *, on_event: Callable[[Event], None] | None = None
) -> ApplyResult | None:
    """The editor's apply pipeline with ``engine`` as its model path, to the end: the review's
    data (``on_event`` gets the deltas and notices as they come); ``StreamError``
    ("incomplete", "too_large", ...) when there is nothing to review."""
    call = PipelineCall(request, EngineApply(lambda: engine))
    return consume_apply(call, request, on_event=on_event or (lambda event: None))


class EngineApply:
    """The model path on an engine in this process: ``local_models.apply_model.rewrite_file``
    (the windows the block or selection addresses, rewritten with speculative edits), the
    same code the service's ``llama`` backend, the tests and ``bench apply`` run. ``engine``
    gives the engine (called on the apply's worker thread, never the UI thread; it may load
    the model). A request runs on a thread of its own; ``cancel`` stops it within a decode
    step."""

    def __init__(self, engine: Callable[[], Any]) -> None:
        self._engine = engine
        self._lock = threading.Lock()  # one rewrite at a time on the engine

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
        import queue

        from local_models.apply_model import ApplyTooLarge, rewrite_file, unfinished_message

        out: queue.SimpleQueue[object] = queue.SimpleQueue()
        end = object()

        def work() -> None:
            try:
                with self._owner._lock:
                    engine = self._owner._engine()
                    done = rewrite_file(
                        engine,
                        self._request,
                        on_text=lambda t: out.put(Delta(t)),
                        should_stop=self._stop.is_set,
                    )
                out.put(done)
            except ApplyTooLarge as exc:
                out.put(StreamError("too_large", str(exc)))
            except Exception as exc:
                out.put(StreamError("internal", f"{type(exc).__name__}: {exc}"))
            finally:
                out.put(end)

        threading.Thread(target=work, name="forecode-apply-engine", daemon=True).start()
        while True:
            item = out.get()
            if item is end:
                return
            if isinstance(item, StreamError):
                raise item
            if isinstance(item, Delta):
                yield item
                continue
            done: Any = item
            if self._stop.is_set() or done.stop_reason == "cancelled":
                continue
            if not done.complete:
                why = (
                    done.defect.message
                    if done.defect is not None
                    else unfinished_message(done.stop_reason)
                )
                raise StreamError(
                    "incomplete", why[:1].upper() + why[1:] + ". Nothing was changed."
                )
            m = done.metrics
            yield ApplyDone(
                "stop",
                {"completion_tokens": int(m.generated_tokens)},
                source="model",
                accepted_tokens=int(m.accepted_tokens),
                drafted_tokens=int(m.drafted_tokens),
                batches=int(m.batches),
                rejoins=int(m.rejoins),
                prefill_ms=round(m.prefill_ms),
                decode_ms=round(m.decode_ms),
            )
