"""The local completion engine: one llama.cpp model and context (``core.Engine``; its docstring
tells what it adds over a plain llama.cpp loop).

The policy lives apart from the C loop, in pure modules table-tested without a model:
``cache`` (the KV cache's bookkeeping: common prefix, moved runs, replay), ``drafters``
(prompt lookup, speculative edits' drafts, batch lengths), ``output`` (tokens to streamed text
with stop strings), ``threads`` (the one-thread fallback). ``decode`` is the one decode step
and its result type inside an abortable context; ``diagnostics`` holds the checks only tests
and benchmarks call. ``Engine`` satisfies ``forecode_core.completion.model.RewriteModel``.

The names below load ``core`` (and llama.cpp) on first use, so the pure modules import
without llama.cpp.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from local_models.engine.core import Completion, Engine, Metrics, ModelError, RewriteMetrics

__all__ = ["Completion", "Engine", "Metrics", "ModelError", "RewriteMetrics"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("local_models.engine.core"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
