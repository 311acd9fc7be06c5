"""``EngineApply``: the apply model path on an engine in the test process, behind the editor's
``ApplyBackend`` seam. The editor itself never loads a model (its model path is the service's,
``ServiceApply``); this runs the same ``local_models.apply_model.rewrite_file`` the service's
backends run, so a real-model test of the review needs no service process."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

from app.ui.apply_backend import ApplyDelta, ApplyDone, ApplyError, ApplyEvent
from forecode_core.apply.block import ApplyInput


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
                        on_text=lambda t: out.put(ApplyDelta(t)),
                        should_stop=self._stop.is_set,
                    )
                out.put(done)
            except ApplyTooLarge as exc:
                out.put(ApplyError("too_large", str(exc)))
            except Exception as exc:
                out.put(ApplyError("internal", f"{type(exc).__name__}: {exc}"))
            finally:
                out.put(end)

        threading.Thread(target=work, name="forecode-apply-engine", daemon=True).start()
        while True:
            item = out.get()
            if item is end:
                return
            if isinstance(item, ApplyError):
                raise item
            if isinstance(item, ApplyDelta):
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
                raise ApplyError("incomplete", why[:1].upper() + why[1:] + ". Nothing was changed.")
            m = done.metrics
            yield ApplyDone(
                "model",
                {
                    "generated_tokens": m.generated_tokens,
                    "accepted_tokens": m.accepted_tokens,
                    "drafted_tokens": m.drafted_tokens,
                    "prefill_ms": round(m.prefill_ms),
                    "decode_ms": round(m.decode_ms),
                },
            )
