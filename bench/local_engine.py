"""The ``local_engine`` benchmark: the local completion engine, end to end, on a real source file.

One run, the default model (``ensure_small_model()``), the Python standard library's own
``typing.py`` as the source (``--source`` picks another file). Five figures:

(a) ``decode_ratio`` = ``engine_decode_tok_s`` / ``raw_decode_tok_s``. Raw: in this process, the
    model loaded through llama.cpp's C API with a plain context (the engine's n_ctx, n_batch,
    thread count, flash attention and weight-buffer choice; llama.cpp's defaults otherwise), a
    short prompt prefilled, then N single-token ``llama_decode`` calls, each followed by the
    greedy sampler, timed. Engine: ``Engine.complete(prompt, max_tokens=N + 1,
    speculative=False)`` on the same prompt after ``reset()``; its rate is its decode steps
    (``generated_tokens - 1``: the first token comes from the prefill's logits) over
    ``decode_ms``. Interleaved over ``--rounds`` (order flipped every round), medians.
(b) Latency from the request to the first line of the suggestion *painted* in the editor: a
    real ``CodeEditor`` (offscreen), ``InlineCompletion`` and ``LocalEngine`` (the worker
    subprocess), with the debounce out of the way and ``request_now()`` called directly. The
    clock starts just before ``request_now()`` and stops at the first paint event of the ghost
    overlay showing text (the controller's own ``Outcome.first_line_ms`` is kept per sample).
    The document is the source file up to the cursor, which is cut after ``<name> = `` on an
    assignment line (nothing after the cursor: the default model sees only the prefix, and the
    suggestion is never dropped for repeating the next lines). The prompt is the gemma3
    profile's full budget (1536 tokens).

    Cold: each cold sample is a *fresh region* of the file: its prompt window (the lines
    ``render_prompt`` keeps) starts below the previous sample's cursor, so it shares nothing
    with the KV cache beyond the file header (chunk reuse may still find a repeated run of 16+
    tokens; the Done metrics of every cold sample are kept to show it). Warm: right after a
    cold sample, a one-line edit 40 lines above the cursor (``  # edited`` appended to that
    line), then the same request: plain prefix reuse would re-evaluate everything after the
    edit, so this measures chunk reuse. Samples alternate cold, warm, cold, warm...
(c) ``spec_ratio`` = speculative tokens/s / plain greedy tokens/s (decode steps over
    ``decode_ms``, as in (a)) on a completion that continues a repeated pattern: the entries of
    ``name2codepoint`` in the standard library's ``html/entities.py``, the cursor at the start
    of an entry, the prompt rendered as the worker renders it. Same Engine, same run,
    interleaved, ``reset()`` before each; plus drafted / accepted tokens and whether the
    speculative tokens equal the greedy ones in every round.
(d) ``worker_rss_mb``: the worker's VmRSS after (b) (and ``worker_peak_rss_mb``, its VmHWM), from
    /proc; elsewhere the peak of the finished worker from ``resource``, or null.
(e) ``max_ui_stall_ms`` / ``ui_stall_p99_ms``: while (b)'s requests run, a 2 ms precise QTimer on
    the UI thread; a stall is the gap between consecutive firings minus 2 ms. The probe is
    paused while the harness itself loads a new document into the editor (that is opening a
    file, not completing).

``--quick``: one round, two samples of each kind, 60 lines of context, short decodes (for tests).
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Before Qt is imported: headless unless the caller chose a platform.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from ._common import load_average, median, percentile, wait_with_events

__all__ = ["DEFAULT_ROUNDS", "add_arguments", "run"]

DEFAULT_ROUNDS = 3
DEFAULT_SAMPLES = 7
DEFAULT_DECODE_TOKENS = 64
DEFAULT_SPEC_TOKENS = 96
EDIT_LINES_ABOVE = 40
EDIT_TEXT = "  # edited"
PROBE_INTERVAL_MS = 2
WIDTH, HEIGHT = 1200, 800
SAMPLE_TIMEOUT_S = 120.0
READY_TIMEOUT_S = 180.0
HUGE_DEBOUNCE_MS = 3_600_000  # the debounce never fires: the benchmark calls request_now()

QUICK = {
    "rounds": 1,
    "samples": 2,
    "context_lines": 60,
    "decode_tokens": 16,
    "spec_tokens": 24,
    "spec_budget": 320,
}

# An assignment whose right-hand side starts with a name: the cursor goes after " = " and the
# first half (1 to 4 characters) of that name, as if the user paused while typing it.
_ASSIGNMENT = re.compile(
    r"^(?P<lhs>\s+[A-Za-z_][\w.]*(?:\[[^\]]*\])? = )"
    r"(?P<name>[A-Za-z_]\w*)(?P<rest>.{6,})$"
)


def _cursor_head(m: re.Match[str]) -> str:
    name = m.group("name")
    return m.group("lhs") + name[: max(1, min(4, len(name) // 2))]


# An entry of html.entities.name2codepoint.
_ENTITY = re.compile(r"^    '\w+':\s+0x[0-9a-f]{4},")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes for tests: 1 round, 2 samples, short context",
    )
    parser.add_argument(
        "--samples",
        type=int,
        default=None,
        help=f"cold and warm latency samples, each (default {DEFAULT_SAMPLES})",
    )
    parser.add_argument(
        "--source",
        default=None,
        help="the Python file for the latency samples (default: the standard library's typing.py)",
    )


# --- small helpers -----------------------------------------------------------------------------


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _decode_rate(generated: int, decode_ms: float) -> float:
    """Decode steps per second: the first generated token needs no decode of its own."""
    steps = generated - 1
    return steps / (decode_ms / 1000.0) if steps > 0 and decode_ms > 0 else 0.0


def _proc_status_kb(pid: int, key: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _children_peak_rss_mb() -> float | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if not peak:
        return None
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return round(peak * scale / 2**20, 1)


def _cpu_has_amx() -> bool:
    """As the engine decides its weight buffers (``local_models.llama_runtime``)."""
    from local_models.llama_runtime import cpu_has_amx

    return cpu_has_amx()


# --- (a) raw llama_decode ----------------------------------------------------------------------


class _RawDecoder:
    """The ceiling: llama.cpp's C API with nothing around it."""

    def __init__(self, model_path: Path, n_ctx: int, n_batch: int, n_threads: int) -> None:
        import llama_cpp.llama_cpp as C

        self.C = C
        mparams = C.llama_model_default_params()
        mparams.use_extra_bufts = not _cpu_has_amx()
        self.model = C.llama_model_load_from_file(os.fsencode(str(model_path)), mparams)
        if not self.model:
            raise RuntimeError(f"llama.cpp could not load {model_path}")
        cparams = C.llama_context_default_params()
        cparams.n_ctx = n_ctx
        cparams.n_batch = n_batch
        cparams.n_ubatch = n_batch
        cparams.n_threads = n_threads
        cparams.n_threads_batch = n_threads
        cparams.no_perf = True
        cparams.flash_attn_type = C.LLAMA_FLASH_ATTN_TYPE_ENABLED
        self.ctx = C.llama_init_from_model(self.model, cparams)
        if not self.ctx:
            cparams.flash_attn_type = C.LLAMA_FLASH_ATTN_TYPE_AUTO
            self.ctx = C.llama_init_from_model(self.model, cparams)
        if not self.ctx:
            C.llama_model_free(self.model)
            raise RuntimeError("llama.cpp could not create a context")
        self.n_batch = n_batch
        self.batch = C.llama_batch_init(n_batch, 0, 1)
        for i in range(n_batch):
            self.batch.n_seq_id[i] = 1
            self.batch.seq_id[i][0] = 0
        self.smpl = C.llama_sampler_init_greedy()

    def decode_rate(self, prompt: Sequence[int], steps: int) -> tuple[float, float]:
        """Prefill ``prompt`` into an empty cache, then time ``steps`` single-token decodes
        feeding back the greedy token. Returns (tokens/s, ms)."""
        C, ctx, b = self.C, self.ctx, self.batch
        if len(prompt) > self.n_batch:
            raise ValueError("the raw prompt must fit one batch")
        C.llama_memory_clear(C.llama_get_memory(ctx), True)
        for i, t in enumerate(prompt):
            b.token[i] = t
            b.pos[i] = i
            b.logits[i] = 0
        b.logits[len(prompt) - 1] = 1
        b.n_tokens = len(prompt)
        if C.llama_decode(ctx, b) != 0:
            raise RuntimeError("llama_decode failed during the raw prefill")
        token = C.llama_sampler_sample(self.smpl, ctx, -1)
        tok_p, pos_p, out_p = b.token, b.pos, b.logits
        decode, sample, smpl = C.llama_decode, C.llama_sampler_sample, self.smpl
        pos = len(prompt)
        start = time.perf_counter()
        for _ in range(steps):
            tok_p[0] = token
            pos_p[0] = pos
            out_p[0] = 1
            b.n_tokens = 1
            if decode(ctx, b) != 0:
                raise RuntimeError("llama_decode failed")
            token = sample(smpl, ctx, 0)
            pos += 1
        elapsed = time.perf_counter() - start
        return steps / elapsed, elapsed * 1000.0

    def close(self) -> None:
        C = self.C
        C.llama_sampler_free(self.smpl)
        C.llama_batch_free(self.batch)
        C.llama_free(self.ctx)
        C.llama_model_free(self.model)


def _decode_phase(
    engine: Any, raw: _RawDecoder, prompt: list[int], steps: int, rounds: int
) -> dict[str, Any]:
    raw_rates: list[float] = []
    engine_rates: list[float] = []
    engine_tokens: list[int] = []

    def raw_once() -> None:
        rate, _ms = raw.decode_rate(prompt, steps)
        raw_rates.append(rate)

    def engine_once() -> None:
        engine.reset()
        c = engine.complete(prompt, max_tokens=steps + 1, speculative=False)
        m = c.metrics
        engine_rates.append(_decode_rate(m.generated_tokens, m.decode_ms))
        engine_tokens.append(m.generated_tokens)

    raw_once()  # untimed warm-up of both (first-touch page faults, thread pools)
    engine_once()
    raw_rates.clear()
    engine_rates.clear()
    engine_tokens.clear()
    for r in range(rounds):
        for fn in (raw_once, engine_once) if r % 2 == 0 else (engine_once, raw_once):
            fn()
        gc.collect()
    raw_tok_s, engine_tok_s = median(raw_rates), median(engine_rates)
    return {
        "decode_ratio": _r(engine_tok_s / raw_tok_s),
        # The fastest round of each: less sensitive to bursts of load from other processes.
        "decode_ratio_best": _r(max(engine_rates) / max(raw_rates)),
        "raw_decode_tok_s": _r(raw_tok_s, 2),
        "engine_decode_tok_s": _r(engine_tok_s, 2),
        "decode_steps": steps,
        "decode_prompt_tokens": len(prompt),
        "decode_samples": {
            "raw_tok_s": [_r(x, 2) for x in raw_rates],
            "engine_tok_s": [_r(x, 2) for x in engine_rates],
            "engine_generated_tokens": engine_tokens,
        },
    }


# --- (c) speculative vs greedy -----------------------------------------------------------------


def _spec_phase(engine: Any, prompt: list[int], max_tokens: int, rounds: int) -> dict[str, Any]:
    from local_models.engine.diagnostics import greedy_check, rounding_noise

    greedy_rates: list[float] = []
    spec_rates: list[float] = []
    drafted: list[int] = []
    accepted: list[int] = []
    generated: list[int] = []
    equal: list[bool] = []
    greedy_tokens: list[list[int]] = []
    spec_tokens: list[list[int]] = []
    diverged: list[int] = []  # first differing token index, per round that differed
    text = ""

    def once(speculative: bool) -> None:
        nonlocal text
        engine.reset()
        c = engine.complete(prompt, max_tokens=max_tokens, speculative=speculative)
        m = c.metrics
        rate = _decode_rate(m.generated_tokens, m.decode_ms)
        if speculative:
            spec_rates.append(rate)
            drafted.append(m.drafted_tokens)
            accepted.append(m.accepted_tokens)
            spec_tokens.append(list(c.tokens))
        else:
            greedy_rates.append(rate)
            greedy_tokens.append(list(c.tokens))
            generated.append(m.generated_tokens)
            text = c.text

    for r in range(rounds):
        order = (False, True) if r % 2 == 0 else (True, False)
        for speculative in order:
            once(speculative)
        g, sp = greedy_tokens[-1], spec_tokens[-1]
        equal.append(g == sp)
        if g != sp:
            diverged.append(
                next(
                    (i for i, (a, b) in enumerate(zip(g, sp, strict=False)) if a != b),
                    min(len(g), len(sp)),
                )
            )
        gc.collect()
    greedy, spec = median(greedy_rates), median(spec_rates)
    # Lossless check of the last speculative output, every token teacher-forced against plain
    # single-token greedy decoding, and the rounding noise batched arithmetic has on this prompt.
    noise = rounding_noise(engine, prompt, 91)
    tolerance = max(noise, default=0.0)
    mismatches = greedy_check(engine, prompt, spec_tokens[-1])
    return {
        "spec_ratio": _r(spec / greedy),
        "spec_tok_s": _r(spec, 2),
        "greedy_tok_s": _r(greedy, 2),
        "spec_drafted": int(median(drafted)),
        "spec_accepted": int(median(accepted)),
        "spec_acceptance": _r(sum(accepted) / sum(drafted)) if sum(drafted) else None,
        "spec_equals_greedy": all(equal),
        "spec_first_divergence": min(diverged) if diverged else None,
        "spec_lossless": all(gap <= tolerance for *_, gap in mismatches),
        "spec_rounding_ties": len(mismatches),
        "spec_tie_gaps": [_r(gap, 4) for *_, gap in mismatches],
        "rounding_noise_p50": _r(median(noise), 4) if noise else None,
        "rounding_noise_max": _r(tolerance, 4),
        "lossless_rule": (
            "every speculative token teacher-forced against single-token greedy "
            "decoding; a difference counts as a rounding tie when the greedy "
            "logit beats the emitted one by <= rounding_noise_max (|top-2 gap| "
            "change between single-token and 7-token batched decodes of the "
            "prompt's last 91 positions, same run)"
        ),
        "spec_generated_tokens": int(median(generated)),
        "spec_prompt_tokens": len(prompt),
        "spec_completion_head": text[:160],
        "spec_samples": {
            "greedy_tok_s": [_r(x, 2) for x in greedy_rates],
            "spec_tok_s": [_r(x, 2) for x in spec_rates],
            "drafted": drafted,
            "accepted": accepted,
            "equal": equal,
            "first_divergence": diverged,
        },
    }


# --- choosing the latency samples' cursors -----------------------------------------------------


@dataclass
class _Region:
    """One cursor in the source file and the document the editor holds for it."""

    line: int  # 0-based line of the cursor in the source file
    head: str  # the cursor line's text before the cursor
    first_line: int  # the document's first source line
    window_start: int  # first source line the rendered prompt keeps
    prompt_tokens: int

    def document(self, lines: list[str]) -> str:
        return "\n".join([*lines[self.first_line : self.line], self.head])

    @property
    def cursor_line(self) -> int:
        """The cursor's line in the document."""
        return self.line - self.first_line


def _choose_regions(
    lines: list[str], count: int, context_lines: int, path: str, count_tokens: Callable[[str], int]
) -> list[_Region]:
    """Up to ``count`` cursors, top to bottom, each prompt window starting below the previous
    cursor (so no two prompts share text), each with at least ``EDIT_LINES_ABOVE + 1`` lines
    in its window, preferring windows that fill the prompt budget."""
    from app.ui.inline_completion import CONTEXT_LINES_ABOVE
    from forecode_core.completion.prompt import CompletionInput, render_prompt
    from forecode_core.profiles import get_profile

    profile = get_profile("gemma3")
    regions: list[_Region] = []
    last_cursor = -1
    for i, text in enumerate(lines):
        if len(regions) >= count:
            break
        m = _ASSIGNMENT.match(text)
        if m is None or i <= last_cursor + EDIT_LINES_ABOVE + 1:
            continue
        first = max(0, i - context_lines) if context_lines else 0
        if i - first < EDIT_LINES_ABOVE + 1:
            continue
        above = max(first, i - CONTEXT_LINES_ABOVE)
        head = _cursor_head(m)
        prefix = "\n".join([*lines[above:i], head])
        inp = CompletionInput(path=path, language="python", prefix=prefix, suffix="")
        rendered = render_prompt(inp, profile, count_tokens, profile.prompt_budget)
        window_start = i - rendered.prefix_lines + 1
        if window_start <= last_cursor or rendered.prefix_lines < EDIT_LINES_ABOVE + 1:
            continue
        if not context_lines and rendered.token_estimate < 0.9 * profile.prompt_budget:
            continue  # not enough text above it yet
        regions.append(_Region(i, head, first, window_start, rendered.token_estimate))
        last_cursor = i
    return regions


def _spec_prompt(engine: Any, budget: int) -> tuple[list[int], str]:
    """The prompt for (c): html/entities.py up to the start of an entry of name2codepoint."""
    import html.entities

    from forecode_core.completion.prompt import CompletionInput, render_prompt
    from forecode_core.profiles import get_profile

    path = Path(html.entities.__file__)
    lines = path.read_text(encoding="utf-8").split("\n")
    entries = [i for i, line in enumerate(lines) if _ENTITY.match(line)]
    if len(entries) < 200:
        raise RuntimeError(f"{path} does not look like html/entities.py")
    cursor = entries[len(entries) // 8]  # deep enough for a full prompt of entries
    profile = get_profile("gemma3")
    inp = CompletionInput(
        path="html/entities.py",
        language="python",
        prefix="\n".join([*lines[:cursor], "    "]),
        suffix="",
    )
    rendered = render_prompt(inp, profile, lambda s: len(engine.tokenize(s)), budget)
    return engine.tokenize(
        rendered.text, add_bos=profile.add_bos
    ), f"{path.name}:{cursor + 1} (name2codepoint entries)"


# --- (b) and (e): the editor -------------------------------------------------------------------


@dataclass
class _Sample:
    kind: str  # "cold" | "warm" | "warm-up"
    region: int
    shown_ms: float | None = None  # request -> first paint of the ghost text
    signal_ms: float | None = None  # request -> suggestionChanged with text
    outcome_first_line_ms: float | None = None
    done_ms: float | None = None
    dropped: str | None = None
    first_line: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        keep = (
            "prompt_tokens",
            "reused_prefix_tokens",
            "reused_shifted_tokens",
            "evaluated_tokens",
            "generated_tokens",
            "drafted_tokens",
            "accepted_tokens",
            "prefill_ms",
            "first_token_ms",
            "total_ms",
        )
        return {
            "kind": self.kind,
            "region": self.region,
            "shown_ms": _r(self.shown_ms, 1),
            "signal_ms": _r(self.signal_ms, 1),
            "outcome_first_line_ms": _r(self.outcome_first_line_ms, 1),
            "done_ms": _r(self.done_ms, 1),
            "dropped": self.dropped,
            "first_line": self.first_line[:80],
            "metrics": {
                k: (_r(v, 1) if isinstance(v, float) else v)
                for k, v in self.metrics.items()
                if k in keep
            },
        }


class _EditorRun:
    """The editor, the controller, the worker, the stall probe and the paint watcher."""

    def __init__(self, model_path: Path, source_name: str) -> None:
        from PySide6.QtCore import QElapsedTimer, QObject, Qt, QTimer
        from PySide6.QtWidgets import QApplication

        from app.ui.editor import CodeEditor
        from app.ui.inline_completion import InlineCompletion
        from app.ui.local_engine import LocalEngine
        from forecode_core.store.settings import Settings
        from forecode_core.text.languages import by_id

        _quiet_offscreen_messages()
        app = QApplication.instance() or QApplication(["forecode-bench"])
        assert isinstance(app, QApplication)
        self.app = app
        settings = Settings()
        self.engine = LocalEngine(model_path)
        self.editor = CodeEditor()
        self.editor.set_language(by_id("python"))
        self.editor.resize(WIDTH, HEIGHT)
        self.inline = InlineCompletion(
            self.engine,
            debounce_ms=HUGE_DEBOUNCE_MS,
            max_tokens=settings.completion_max_tokens,
            context=lambda: (source_name, "python", ()),
        )
        self.max_tokens = settings.completion_max_tokens
        self.inline.attach(self.editor)
        self.editor.show()
        self.editor.focus()

        # The stall probe.
        self.gaps_ms: list[float] = []
        self._clock = QElapsedTimer()
        self._clock.start()
        self._last_ns: int | None = None
        self.probe = QTimer()
        self.probe.setTimerType(Qt.TimerType.PreciseTimer)
        self.probe.setInterval(PROBE_INTERVAL_MS)
        self.probe.timeout.connect(self._tick)

        # Paint watcher on the ghost overlay.
        run = self

        class _PaintWatcher(QObject):
            def eventFilter(self, watched: object, event: Any) -> bool:
                from PySide6.QtCore import QEvent

                if event.type() == QEvent.Type.Paint and run.waiting and run.shown_at is None:
                    overlay = run.inline.overlay
                    if overlay is not None and overlay.ghost:
                        run.shown_at = time.perf_counter()
                return False

        self._watcher = _PaintWatcher()
        assert self.inline.overlay is not None
        self.inline.overlay.installEventFilter(self._watcher)
        self.edit_call_ms: list[float] = []
        self.request_call_ms: list[float] = []
        self.waiting = False
        self.shown_at: float | None = None
        self.signal_at: float | None = None
        self.outcome: Any = None
        self.inline.outcome.connect(self._on_outcome)
        self.inline.suggestionChanged.connect(self._on_suggestion)

    # --- probe
    def _tick(self) -> None:
        now = self._clock.nsecsElapsed()
        if self._last_ns is not None:
            self.gaps_ms.append((now - self._last_ns) / 1e6)
        self._last_ns = now

    def probe_on(self) -> None:
        self._last_ns = None
        self.probe.start()

    def probe_off(self) -> None:
        self.probe.stop()
        self._last_ns = None

    # --- signals
    def _on_outcome(self, outcome: object) -> None:
        self.outcome = outcome

    def _on_suggestion(self, text: str) -> None:
        if self.waiting and text and self.signal_at is None:
            self.signal_at = time.perf_counter()

    # --- waiting without spinning
    def wait_until(self, cond: Callable[[], bool], timeout_s: float) -> bool:
        return wait_with_events(cond, timeout_s, poll_ms=10)

    def start_worker(self) -> None:
        self.engine.start()
        if not self.wait_until(self.engine.is_ready, READY_TIMEOUT_S):
            raise RuntimeError(
                f"the engine worker did not become ready: "
                f"{self.engine.client.state} {self.engine.client.state_detail}"
            )
        from PySide6.QtCore import QCoreApplication

        from app.ui.gc_idle import start_gc_policy

        app = QCoreApplication.instance()
        if app is not None:
            start_gc_policy(app)  # as app.main does once the window is up

    def settle(self, ms: int) -> None:
        end = time.monotonic() + ms / 1000.0
        self.wait_until(lambda: time.monotonic() >= end, ms / 1000.0 + 1.0)

    # --- one sample
    def load(self, text: str) -> None:
        """Put ``text`` in the editor with the caret at its end (the harness: not measured)."""
        self.probe_off()
        self.inline.dismiss()
        self.editor.set_text(text)
        self.editor.gotoPos(self.editor.textLength())
        self.editor.scrollCaret()
        self.settle(30)

    def edit_line(self, line: int) -> None:
        pos = self.editor.lineEndPosition(line)
        start = time.perf_counter()
        self.editor.insertText(pos, EDIT_TEXT)
        self.edit_call_ms.append((time.perf_counter() - start) * 1000.0)

    def request(self, sample: _Sample) -> _Sample:
        self.outcome = None
        self.shown_at = self.signal_at = None
        self.waiting = True
        requests = self.inline.requests
        start = time.perf_counter()
        self.inline.request_now()
        self.request_call_ms.append((time.perf_counter() - start) * 1000.0)
        if self.inline.requests == requests:
            self.waiting = False
            sample.dropped = "not requested (caret not eligible)"
            return sample

        def finished() -> bool:
            if self.outcome is None:
                return False
            return self.shown_at is not None or not self.outcome.shown

        ok = self.wait_until(finished, SAMPLE_TIMEOUT_S)
        if ok and self.outcome is not None and self.outcome.shown and self.shown_at is None:
            self.settle(50)
        self.waiting = False
        out = self.outcome
        if out is None:
            self.inline.dismiss()
            sample.dropped = "timed out"
            return sample
        sample.metrics = dict(out.metrics)
        sample.done_ms = out.done_ms
        sample.outcome_first_line_ms = out.first_line_ms
        sample.dropped = out.dropped
        sample.first_line = (out.shown or "").split("\n", 1)[0]
        if self.signal_at is not None:
            sample.signal_ms = (self.signal_at - start) * 1000.0
        if self.shown_at is not None:
            sample.shown_ms = (self.shown_at - start) * 1000.0
        elif sample.signal_ms is not None:
            sample.shown_ms = sample.signal_ms  # shown, but no paint seen: the signal's time
        return sample

    def idle_cost(self, seconds: float) -> dict[str, Any]:
        """With the last suggestion still on screen and nothing else to do: the editor
        process's CPU use and the editor's repaints per second (both should be ~0)."""
        from PySide6.QtCore import QEvent, QObject

        class _Count(QObject):
            paints = 0

            def eventFilter(self, watched: object, event: Any) -> bool:
                if event.type() == QEvent.Type.Paint:
                    _Count.paints += 1
                return False

        counter = _Count()
        viewport = self.editor.viewport()
        viewport.installEventFilter(counter)
        visible = bool(self.inline.suggestion)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        self.settle(int(seconds * 1000))
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        viewport.removeEventFilter(counter)
        return {
            "suggestion_visible": visible,
            "editor_process_cpu_pct": round(100.0 * cpu / wall, 1),
            "editor_paints_per_s": round(_Count.paints / wall, 1),
        }

    def worker_memory(self) -> tuple[float | None, float | None, str]:
        pid = self.engine.client.pid
        if pid is not None:
            rss, hwm = _proc_status_kb(pid, "VmRSS"), _proc_status_kb(pid, "VmHWM")
            if rss is not None:
                return (
                    round(rss / 1024, 1),
                    round(hwm / 1024, 1) if hwm else None,
                    "/proc/<pid>/status VmRSS (VmHWM for the peak)",
                )
        return None, None, "unavailable"

    def close(self) -> None:
        self.probe_off()
        self.inline.dismiss()
        self.inline.attach(None)
        self.engine.close()
        self.editor.close()
        self.editor.deleteLater()
        self.app.processEvents()


def _quiet_offscreen_messages() -> None:
    from PySide6.QtCore import QtMsgType, qInstallMessageHandler

    def handler(kind: QtMsgType, _context: object, message: str) -> None:
        if "propagateSizeHints" in message:
            return
        print(f"qt {kind.name}: {message}", file=sys.stderr)

    qInstallMessageHandler(handler)


def _latency_phase(
    model_path: Path,
    source: Path,
    source_name: str,
    lines: list[str],
    regions: list[_Region],
    samples: int,
) -> dict[str, Any]:
    run = _EditorRun(model_path, source_name)
    all_samples: list[_Sample] = []
    try:
        run.start_worker()
        # Untimed warm-up on the first region: the worker's first request pays one-off costs
        # (page faults in the weights, thread start-up) that are no property of a cold cache.
        warm_up = regions[0]
        run.load(warm_up.document(lines))
        run.probe_on()
        run.request(_Sample("warm-up", 0))
        run.probe_off()
        cold: list[_Sample] = []
        warm: list[_Sample] = []
        gaps_before = len(run.gaps_ms)
        for index, region in enumerate(regions[1:], start=1):
            if len(cold) >= samples and len(warm) >= samples:
                break
            run.load(region.document(lines))
            run.probe_on()
            sample = run.request(_Sample("cold", index))
            all_samples.append(sample)
            if sample.shown_ms is not None:
                cold.append(sample)
            if len(warm) < samples:
                for attempt in range(2):  # a second edit, one line higher, if dropped
                    run.edit_line(region.cursor_line - EDIT_LINES_ABOVE - attempt)
                    w = run.request(_Sample("warm", index))
                    all_samples.append(w)
                    if w.shown_ms is not None:
                        warm.append(w)
                        break
            run.probe_off()
        rss, peak, rss_source = run.worker_memory()
        idle = run.idle_cost(1.0)
        gaps = run.gaps_ms[gaps_before:] or run.gaps_ms
    finally:
        run.close()
    if rss is None:
        peak = _children_peak_rss_mb()
        rss_source = "resource RUSAGE_CHILDREN peak (worker finished)" if peak else "unavailable"
        rss = peak

    def stats(kind: str, got: list[_Sample]) -> dict[str, Any]:
        values = [s.shown_ms for s in got if s.shown_ms is not None]
        if not values:
            return {f"{kind}_p50_ms": None, f"{kind}_p95_ms": None, f"{kind}_samples": 0}
        return {
            f"{kind}_p50_ms": _r(percentile(values, 50), 1),
            f"{kind}_p95_ms": _r(percentile(values, 95), 1),
            f"{kind}_samples": len(values),
        }

    result: dict[str, Any] = {}
    result.update(stats("cold", cold))
    result.update(stats("warm", warm))
    cold_p50, warm_p50 = result["cold_p50_ms"], result["warm_p50_ms"]
    result["warm_over_cold"] = _r(warm_p50 / cold_p50) if cold_p50 and warm_p50 else None
    warm_metrics = [s.metrics for s in warm]

    def med(key: str, ms: list[dict[str, Any]]) -> float | None:
        vals = [float(m[key]) for m in ms if isinstance(m.get(key), int | float)]
        return _r(median(vals), 1) if vals else None

    result["warm_engine_metrics"] = {
        "median": {
            k: med(k, warm_metrics)
            for k in (
                "prompt_tokens",
                "evaluated_tokens",
                "reused_prefix_tokens",
                "reused_shifted_tokens",
                "prefill_ms",
                "first_token_ms",
            )
        },
        "per_sample": [
            {
                k: s.metrics.get(k)
                for k in (
                    "prompt_tokens",
                    "evaluated_tokens",
                    "reused_prefix_tokens",
                    "reused_shifted_tokens",
                )
            }
            for s in warm
        ],
    }
    cold_metrics = [s.metrics for s in cold]
    result["cold_engine_metrics"] = {
        "median": {
            k: med(k, cold_metrics)
            for k in (
                "prompt_tokens",
                "evaluated_tokens",
                "reused_prefix_tokens",
                "reused_shifted_tokens",
                "prefill_ms",
                "first_token_ms",
            )
        },
    }
    result["cold_method"] = (
        "fresh_region: each cold sample's prompt window starts below the previous sample's "
        "cursor in the file (nothing shared with the cache but the file header); same worker"
    )
    result["warm_method"] = (
        f"after the cold sample: {EDIT_TEXT.strip()!r} appended to the line "
        f"{EDIT_LINES_ABOVE} lines above the cursor, then the same request"
    )
    result["latency_measure"] = (
        "request_now() call -> first paint of the ghost overlay with the suggestion's first "
        "line (samples also hold the controller's Outcome.first_line_ms)"
    )
    result["latency_dropped"] = sum(1 for s in all_samples if s.shown_ms is None)
    result["latency_source"] = (
        f"{source} (lines {regions[1].line + 1}..)" if len(regions) > 1 else str(source)
    )
    result["latency_prompt_tokens"] = [r.prompt_tokens for r in regions[1:]]
    result["latency_max_tokens"] = run.max_tokens
    result["latency_samples"] = [s.to_json() for s in all_samples]
    result["idle_with_suggestion"] = idle
    result["worker_rss_mb"] = rss
    result["worker_peak_rss_mb"] = peak
    result["worker_rss_source"] = rss_source
    stalls = [max(0.0, g - PROBE_INTERVAL_MS) for g in gaps]
    result["max_ui_stall_ms"] = _r(max(stalls), 2) if stalls else None
    result["ui_stall_p99_ms"] = _r(percentile(stalls, 99), 2) if stalls else None
    result["ui_stall_probe_ticks"] = len(stalls)
    result["ui_stalls_over_16ms"] = sum(1 for s in stalls if s > 16.0)
    # The UI-thread calls the harness makes (their time shows up as a probe gap too).
    result["request_now_call_max_ms"] = (
        _r(max(run.request_call_ms), 2) if run.request_call_ms else None
    )
    result["edit_call_max_ms"] = _r(max(run.edit_call_ms), 2) if run.edit_call_ms else None
    return result


# --- the run -----------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    import typing

    from forecode_core.profiles import get_profile
    from local_models.engine import Engine
    from local_models.model_store import ensure_small_model

    quick = bool(args.quick)
    rounds = QUICK["rounds"] if quick and args.rounds == DEFAULT_ROUNDS else int(args.rounds)
    samples = args.samples or (QUICK["samples"] if quick else DEFAULT_SAMPLES)
    if samples < 1:
        raise SystemExit("--samples must be at least 1")
    context_lines = QUICK["context_lines"] if quick else 0
    decode_tokens = QUICK["decode_tokens"] if quick else DEFAULT_DECODE_TOKENS
    spec_tokens = QUICK["spec_tokens"] if quick else DEFAULT_SPEC_TOKENS
    profile = get_profile("gemma3")
    spec_budget = QUICK["spec_budget"] if quick else profile.prompt_budget

    started = time.perf_counter()
    model_path = ensure_small_model()
    source = Path(args.source) if args.source else Path(typing.__file__)
    source_name = source.name
    lines = source.read_text(encoding="utf-8").split("\n")

    result: dict[str, Any] = {"quick": quick, "rounds": rounds}
    engine = Engine(model_path, n_ctx=profile.max_context)
    raw: _RawDecoder | None = None
    try:
        regions = _choose_regions(
            lines, samples + 4, context_lines, source_name, lambda s: len(engine.tokenize(s))
        )
        if len(regions) < 2:
            raise SystemExit(f"{source} has too few assignment lines with enough text above")
        raw = _RawDecoder(model_path, engine.n_ctx, engine.n_batch, engine.n_threads)
        # (a) A short prompt: the first lines of a function in the source.
        head = next(i for i, t in enumerate(lines) if t.startswith("def ") and i > 50)
        decode_prompt = engine.tokenize(
            "\n".join(lines[head : head + 12]) + "\n", add_bos=profile.add_bos
        )[:256]
        result.update(_decode_phase(engine, raw, decode_prompt, decode_tokens, rounds))
        raw.close()
        raw = None
        # (c)
        spec_prompt, spec_where = _spec_prompt(engine, spec_budget)
        result.update(_spec_phase(engine, spec_prompt, spec_tokens, rounds))
        result["spec_source"] = spec_where
        result["model_threads"] = engine.n_threads
        # The engine drops to one thread when it sees contention (diagnostic; private state).
        threads = getattr(engine, "_threads", None)
        result["engine_threads_at_end"] = getattr(threads, "now", None)
        result["chunk_reuse"] = bool(getattr(engine, "chunk_reuse", False))
        result["chunk_reuse_note"] = getattr(engine, "chunk_reuse_note", None)
    finally:
        if raw is not None:
            raw.close()
        engine.close()
        gc.collect()
    # (b), (d), (e)
    result.update(_latency_phase(model_path, source, source_name, lines, regions, samples))
    result.update(
        {
            "model": model_path.name,
            "profile": profile.id,
            "prompt_budget": profile.prompt_budget,
            "context_lines": context_lines or "whole file above the cursor",
            "targets": {
                "decode_ratio": ">= 0.9",
                "warm_over_cold": "<= 0.10",
                "warm_p50_ms": "< 400",
                "max_ui_stall_ms": "<= 16",
            },
            "load_average_end": load_average(),
            "wall_s": round(time.perf_counter() - started, 1),
        }
    )
    return result
