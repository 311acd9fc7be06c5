"""A scripted stand-in for ``local_models.engine.Engine``, for worker and client tests.

The worker builds it when ``FORECODE_FAKE_ENGINE=tests.helpers.fake_engine:make``. Tokens are
Unicode code points, so the prompt text reaches ``complete`` intact, and each request is
scripted by directives written anywhere in the completion input (usually the prefix)::

    @@chunks=N        emit N chunks "t0 ", "t1 ", … (default 3; capped by max_tokens)
    @@delay=S         sleep S seconds before each chunk (default 0.01)
    @@hang_after=N    after N chunks, hang forever ignoring cancellation (stuck in C code)
    @@exit_after=N    after N chunks, os._exit(17) (a crash without a word)
    @@abort_after=N   after N chunks, os.abort() (SIGABRT, like a GGML_ASSERT)
    @@raise           raise RuntimeError("fake engine failure") (a failed request)
    @@busy=S          spin the CPU for S seconds before the first chunk (a long prefill on a
                      loaded machine: silent, but working)
    @@warm_delay=S    Warm takes S seconds (checking cancellation every 10 ms)
    @@rewrite_delay=S a next-edit rewrite takes S seconds (checking cancellation every 10 ms);
                      it answers the draft up to its first stop string (the region unchanged)

Loading is scripted by the model path: a name containing ``bad`` raises ModelError (as a
corrupt GGUF does), ``crash`` makes the load os._exit(17), ``slow`` makes it take 1 s.
"""

from __future__ import annotations

import os
import re
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forecode_core.completion.model import Completion, Metrics, RewriteMetrics

if TYPE_CHECKING:
    from forecode_core.completion.model import CompletionModel

try:
    from local_models.engine import ModelError
except ImportError:  # the real engine has not landed: the worker also accepts ours

    class ModelError(Exception):  # type: ignore[no-redef]
        """Stand-in for local_models.engine.ModelError."""


@dataclass
class ModelInfo:
    path: str
    name: str = "fake"
    architecture: str = "fake"
    context_length: int = 4096
    n_vocab: int = 0x110000
    bos_id: int | None = 2
    eos_id: int | None = 1
    fim_prefix_id: int | None = None
    fim_suffix_id: int | None = None
    fim_middle_id: int | None = None
    chat_template: str | None = None
    sliding_window: int | None = None
    file_size: int = 0


_DIRECTIVE = re.compile(r"@@(\w+)(?:=([0-9.]+))?")


def _directives(text: str) -> dict[str, float]:
    return {m.group(1): float(m.group(2)) if m.group(2) else 1.0 for m in _DIRECTIVE.finditer(text)}


class FakeEngine:
    """Satisfies ``forecode_core.completion.model.CompletionModel`` (mypy checks it, see the
    end of this file; tests/test_completion_model.py checks the signatures): the worker drives
    it exactly as it drives ``Engine``. Its cache holds everything: ``reuse_cost`` is 0, so the
    worker always answers from the full context."""

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        **_: Any,
    ) -> None:
        name = Path(model_path).name
        if "bad" in name:
            raise ModelError(f"{model_path}: not a GGUF file (fake engine)")
        if "crash" in name:
            os._exit(17)
        if "slow" in name:
            time.sleep(1.0)
        self.info = ModelInfo(path=str(model_path), name=name, context_length=n_ctx)
        self.n_ctx = n_ctx
        self.totals = Metrics()
        self.closed = False
        self.max_outputs = 64

    def tokenize(self, text: str, *, add_bos: bool = False) -> list[int]:
        return ([self.info.bos_id or 0] if add_bos else []) + [ord(c) for c in text]

    def detokenize(self, tokens: Sequence[int]) -> str:
        return "".join(chr(t) for t in tokens if t >= 32 or t in (9, 10, 13))

    def warm(
        self,
        prompt: Sequence[int],
        should_stop: Callable[[], bool] | None = None,
        *,
        keep_on_cancel: bool = False,
        fresh_from: int | None = None,
    ) -> Metrics:
        script = _directives(self.detokenize(prompt))
        end = time.monotonic() + script.get("warm_delay", 0.0)
        while time.monotonic() < end and not (should_stop and should_stop()):
            time.sleep(0.01)
        return Metrics(prompt_tokens=len(prompt), evaluated_tokens=len(prompt))

    def reuse_cost(self, prompt: Sequence[int], fresh_from: int | None = None) -> int:
        return 0

    def complete(  # the protocol's signature (listed in pyproject, as completion/model.py)
        self,
        prompt: Sequence[int],
        *,
        max_tokens: int = 64,
        stop: Sequence[str] = (),
        speculative: bool = False,
        should_stop: Callable[[], bool] | None = None,
        on_text: Callable[[str], None] | None = None,
        fresh_from: int | None = None,
        force_prefix: str = "",
    ) -> Completion:
        script = _directives(self.detokenize(prompt))
        if "raise" in script:
            raise RuntimeError("fake engine failure")
        started = time.monotonic()
        busy_until = started + script.get("busy", 0.0)
        while time.monotonic() < busy_until:  # computing, not sleeping: CPU time goes up
            pass
        count = min(int(script.get("chunks", 3)), max_tokens)
        delay = script.get("delay", 0.01)
        pieces: list[str] = []
        reason = "length" if count == max_tokens else "eos"
        for i in range(count):
            _scripted_failure(script, i)
            if should_stop is not None and should_stop():
                reason = "cancelled"
                break
            time.sleep(delay)
            piece = f"t{i} "
            pieces.append(piece)
            if on_text is not None:
                on_text(piece)
        metrics = Metrics(
            prompt_tokens=len(prompt),
            evaluated_tokens=len(prompt),
            generated_tokens=len(pieces),
            total_ms=(time.monotonic() - started) * 1000.0,
        )
        return Completion("".join(pieces), [], metrics, reason)

    def rewrite(
        self,
        prompt: Sequence[int],
        draft: Sequence[int],
        *,
        max_tokens: int,
        stop: Sequence[str] = (),
        should_stop: Callable[[], bool] | None = None,
        on_text: Callable[[str], None] | None = None,
        margins: list[float] | None = None,
    ) -> Completion:
        """Next-edit's rewrite (the keywords ``local_models.next_edit.NextEditModel`` uses):
        the draft up to a stop string, its characters passed to ``on_text`` one every 0.1 s
        during ``@@rewrite_delay`` and the rest at the end."""
        script = _directives(self.detokenize(prompt))
        if "raise" in script:
            raise RuntimeError("fake engine failure")
        text, reason = self.detokenize(draft), "eos"
        cuts = [text.find(s) for s in stop if s in text]
        if cuts:
            text, reason = text[: min(cuts)], "stop"
        sent, next_at = 0, time.monotonic() + 0.1
        end = time.monotonic() + script.get("rewrite_delay", 0.0)
        while time.monotonic() < end:
            if should_stop is not None and should_stop():
                return Completion("", [], RewriteMetrics(prompt_tokens=len(prompt)), "cancelled")
            if on_text is not None and time.monotonic() >= next_at and sent < len(text) - 1:
                on_text(text[sent])
                sent, next_at = sent + 1, next_at + 0.1
            time.sleep(0.01)
        if on_text is not None and text[sent:]:
            on_text(text[sent:])
        metrics = RewriteMetrics(
            prompt_tokens=len(prompt),
            evaluated_tokens=len(prompt),
            generated_tokens=len(text),
            drafted_tokens=len(text),
            accepted_tokens=len(text),
            draft_tokens=len(draft),
            draft_accepted=len(text),
        )
        return Completion(text, [ord(c) for c in text], metrics, reason)

    def reset(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def _scripted_failure(script: dict[str, float], chunk: int) -> None:
    """Hang, exit or abort before chunk ``chunk`` when the script says so."""
    for action, kill in (
        ("hang_after", None),
        ("exit_after", _exit),
        ("abort_after", _abort),
    ):
        if action in script and chunk == int(script[action]):
            if kill is None:
                while True:  # stuck: no should_stop check, like a hang in llama.cpp
                    time.sleep(3600)
            kill()


def _exit() -> None:
    os._exit(17)


def _abort() -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file for an expected abort
    os.abort()


def make(model_path: str | os.PathLike[str], **kwargs: Any) -> FakeEngine:
    return FakeEngine(model_path, **kwargs)


if TYPE_CHECKING:

    def _conforms(engine: FakeEngine) -> CompletionModel:
        return engine  # mypy: the fake is a CompletionModel

    from local_models.next_edit import NextEditModel

    def _predicts(engine: FakeEngine) -> NextEditModel:
        return engine  # mypy: the fake can serve next-edit requests
