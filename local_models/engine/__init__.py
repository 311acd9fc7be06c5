"""The local completion engine: one llama.cpp model and context (``core.Engine``; its docstring
tells what it adds over a plain llama.cpp loop).

The policy lives apart from the C loop, in pure modules table-tested without a model:
``cache`` (the KV cache's bookkeeping: common prefix, moved runs, replay), ``drafters``
(prompt lookup, speculative edits' drafts, batch lengths), ``output`` (tokens to streamed text
with stop strings), ``threads`` (the one-thread fallback). ``decode`` is the one decode step
and its result type inside an abortable context; ``diagnostics`` holds the checks only tests
and benchmarks call. ``Engine`` satisfies ``forecode_core.completion.model.RewriteModel``.
"""

from local_models.engine.core import Completion, Engine, Metrics, ModelError, RewriteMetrics

__all__ = ["Completion", "Engine", "Metrics", "ModelError", "RewriteMetrics"]
