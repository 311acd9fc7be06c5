"""Completion tiers chosen by measurement: which installed model answers completions here.

Every installed model (``model_store.installed_models()``) is measured on this machine -- its
prefill and decode rates (tokens/s) through the real ``Engine``, with the engine's own thread
count and GPU offload, in a separate process (``local_models.calibrate_probe``) -- and the pick
is the model with the best measured quality (``ModelSpec.exact_match``) whose predicted
completion latency fits the budget (``completion.latencyBudgetMs``, 500 ms by default: issue
11's target p50). When none fits, the fastest answers -- except that a model below
``USEFUL_EXACT_MATCH`` (right less than a quarter of the time) is passed over while a useful
model is within ``PATIENCE`` times the budget: a right suggestion late beats a wrong one on
time. The setting ``completion.model`` (a model
id instead of "auto") overrides the pick; ``completion.modelPath`` overrides everything and is
handled by the editor, not here. Models are measured smallest file first, and in "auto" a model
at least as large as a useful one that already misses ``PATIENCE`` times the budget is not
measured at all (on one machine the rates fall as the weights grow).

Predicted latency (``RequestCost``) is the cost of the request the targets bind on: the caret
jumped to a new place in the file. The worker then answers first from a small context near the
caret (``local_models.worker.FIRST_PROMPT``: 8-15 lines above, 4 below, after the file's
stable start, which is cached) and warms the full context afterwards. Measured with the real
renderer and tokenizers over 40 random Python standard-library files of 150+ lines (a jump of
60+ lines after a full prompt elsewhere in the file; evaluated = the near prompt's tokens past
its common prefix with the cache): median 176 tokens for Gemma 3, 171 for Qwen2.5-Coder
(quartiles 121-443). Then the first line's decode (measured: 10.1-10.6 tokens per non-blank
line with both tokenizers; the first token comes from the prefill, so about 10 decode steps);
then the worker's prompt work, about four whole-prompt tokenizations of the profile's
``prompt_budget`` (it prices the full prompt and the near one, two to five exact counts each,
the near one a third the size), at the tokenizer rate the probe measures; plus 5 ms for the
pipe and the paint. The default ``DEFAULT_REQUEST`` holds these numbers; nothing else does.

Results are cached in ``<data dir>/cache/calibration.json`` (owner-only), per model, keyed by
the model file (size, mtime, pinned sha256) and by the machine (llama.cpp's version and library
files, the CPU, the GPUs): a new, changed or removed model re-measures that model; a rebuilt
llama.cpp (``FORECODE_GPU``) or another processor re-measures all. The budget and the quality
figures are not in the key: the pick is recomputed from the cached rates every time (a looser
budget measures the models it had left out). The rates are one sample of a noisy quantity: a
measurement taken while the machine was busy errs towards a smaller, faster model until the
next one (*Completions: Recalibrate Models*).

``load_or_run`` is the whole thing (it blocks: call it off the UI thread; ``chosen_model()``
is it with the defaults, for benchmarks); ``choose`` is the pure decision over given rates.
No model-name checks here: titles and quality come from the registry, prompt sizes from the
profile registry.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import importlib.util
import json
import os
import platform
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from forecode_core.entrypoints import child_command
from forecode_core.profiles import profile_of
from forecode_core.windowless import no_window
from local_models.gguf_info import ModelError, read_model_info
from local_models.model_store import ModelSpec, ensure_model, installed_models

__all__ = [
    "AUTO",
    "CACHE_VERSION",
    "DEFAULT_BUDGET_MS",
    "DEFAULT_REQUEST",
    "Candidate",
    "Choice",
    "Rates",
    "RequestCost",
    "Tier",
    "choose",
    "chosen_model",
    "default_cache_path",
    "load_or_run",
    "machine_key",
    "run_probe",
]

AUTO = "auto"
DEFAULT_BUDGET_MS = 500
USEFUL_EXACT_MATCH = 0.25
"""A model whose suggestions are right less often than this is a tier of last resort: users
judged a model right about 1 time in 8 (Gemma 3 270M) as not helping at all. When a model at or
above it is installed, one below it answers only if no useful model can be measured."""
PATIENCE = 10
"""A useful model that misses the budget still answers when its predicted latency is within
``PATIENCE`` times the budget (5 s at 500 ms): a right suggestion late beats a wrong one on
time. Beyond that it would feel broken, and the fastest model answers."""
CACHE_VERSION = 2
"""Bump when the probe measures differently: old caches are then measured again."""
PROBE_TIMEOUT_S = 120.0
"""One model's measurement (load included) may take this long before it counts as failed."""
BUSY_LOAD_PER_CORE = 1.5
"""A measurement taken while other programs kept the processor this busy (the 1-minute load
average per core, read just before the measurement starts) is kept for that session but
measured again at a later start once the load has at least halved: rates measured on a busy
machine are several times too slow, and a cache that keeps them would leave the editor on the
wrong model, or none, for good (seen in a user run at load 35 on 2 cores: Gemma at 1 token/s,
both Qwen models "timed out", no completion in any later session)."""


def load_per_core() -> float | None:
    """The 1-minute load average per core; None where the system has none (Windows)."""
    try:
        return os.getloadavg()[0] / max(1, os.cpu_count() or 1)
    except (AttributeError, OSError):
        return None


def measured_while_busy(cached_load: object, now: float | None) -> bool:
    """Whether a cache measured at ``cached_load`` (per core) should be measured again now."""
    if isinstance(cached_load, bool) or not isinstance(cached_load, int | float) or now is None:
        return False
    return cached_load >= BUSY_LOAD_PER_CORE and now <= cached_load / 2


@dataclass(frozen=True)
class Rates:
    """One model's measured speeds on this machine."""

    prefill_tok_s: float
    decode_tok_s: float
    load_s: float = 0.0  # loading the model and creating its context
    threads: int = 0  # llama.cpp threads the engine used
    gpu_offload: bool = False  # llama.cpp was built with GPU offload (the engine uses it)
    prefill_tokens: int = 0  # how many tokens the rates were measured on
    decode_tokens: int = 0
    took_s: float = 0.0  # this model's whole measurement
    tokenize_tok_s: float = 0.0  # the tokenizer's rate (0: not measured)

    def __post_init__(self) -> None:
        if not (self.prefill_tok_s > 0 and self.decode_tok_s > 0):
            raise ValueError("rates must be positive")

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Rates:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in obj.items() if k in names})


@dataclass(frozen=True)
class RequestCost:
    """What one completion request costs, in work: see the module docstring.

    ``context_tokens``: prompt tokens evaluated (None: the model profile's whole
    ``prompt_budget``, what a request with nothing cached evaluates). ``first_line_tokens``:
    decode steps to the end of the suggestion's first line. ``tokenizations``: whole-prompt
    tokenizations (of ``prompt_budget`` tokens) the worker's rendering costs. ``overhead_ms``:
    the pipe and the paint.
    """

    context_tokens: int | None = 176
    first_line_tokens: int = 10
    tokenizations: float = 4.0
    overhead_ms: float = 5.0

    def tokens(self, prompt_budget: int) -> int:
        if self.context_tokens is None:
            return prompt_budget
        return min(self.context_tokens, prompt_budget)

    def predict_ms(self, rates: Rates, prompt_budget: int) -> float:
        ms = (
            self.overhead_ms
            + 1000.0 * self.tokens(prompt_budget) / rates.prefill_tok_s
            + 1000.0 * self.first_line_tokens / rates.decode_tok_s
        )
        if rates.tokenize_tok_s > 0:
            ms += 1000.0 * self.tokenizations * prompt_budget / rates.tokenize_tok_s
        return ms


DEFAULT_REQUEST = RequestCost()


@dataclass(frozen=True)
class Candidate:
    """An installed model, as ``choose`` sees it."""

    model_id: str
    title: str  # short, for the status bar
    path: str
    exact_match: float | None  # completion quality (0..1), None when never measured
    quality_source: str
    prompt_budget: int  # its profile's
    rates: Rates | None  # None: not measured (see ``error``)
    error: str = ""
    size: int = 0  # file size: the last resort's ranking when nothing could be measured


@dataclass(frozen=True)
class Tier:
    """One model's figures in a choice."""

    model_id: str
    title: str
    path: str
    exact_match: float | None
    quality_source: str
    rates: Rates | None
    predicted_ms: float | None
    fits: bool
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "exact_match": self.exact_match,
            "quality_source": self.quality_source,
            "prefill_tok_s": None if self.rates is None else round(self.rates.prefill_tok_s, 1),
            "decode_tok_s": None if self.rates is None else round(self.rates.decode_tok_s, 1),
            "gpu_offload": None if self.rates is None else self.rates.gpu_offload,
            "threads": None if self.rates is None else self.rates.threads,
            "predicted_ms": None if self.predicted_ms is None else round(self.predicted_ms),
            "fits": self.fits,
            "error": self.error,
        }


@dataclass(frozen=True)
class Choice:
    """The model that answers completions, why, and every installed model's figures."""

    model_id: str
    title: str
    path: str
    reason: str  # one sentence
    budget_ms: int
    tiers: tuple[Tier, ...]
    measured: bool = False  # this call ran the measurement (else the rates came from the cache)
    measure_reason: str = ""  # why it measured ("first run", ...)
    calibration_s: float = 0.0  # the last measurement's wall time
    measured_at: str = ""  # when (UTC, ISO 8601)
    request: RequestCost = field(default=DEFAULT_REQUEST)
    # Chosen before a measurement that is due (``load_or_run(defer=True)``): answer with it
    # now, measure (``measure_reason``) once it is loaded, then choose again.
    provisional: bool = False

    @property
    def tier(self) -> Tier:
        return next(t for t in self.tiers if t.model_id == self.model_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "chosen": self.model_id,
            "reason": self.reason,
            "budget_ms": self.budget_ms,
            "request": dataclasses.asdict(self.request),
            "measured": self.measured,
            "measure_reason": self.measure_reason,
            "calibration_s": round(self.calibration_s, 2),
            "measured_at": self.measured_at,
            "provisional": self.provisional,
            "models": {t.model_id: t.to_json() for t in self.tiers},
        }

    def describe(self) -> str:
        """A few lines for a tooltip: the reason and each model's measured figures."""
        lines = [self.reason]
        for t in self.tiers:
            mark = "●" if t.model_id == self.model_id else "·"
            quality = "quality ?" if t.exact_match is None else f"{t.exact_match:.1%} exact"
            if t.rates is None:
                lines.append(f"{mark} {t.title}: not measured ({t.error or 'no rates'})")
                continue
            where = "GPU" if t.rates.gpu_offload else f"CPU, {t.rates.threads} threads"
            lines.append(
                f"{mark} {t.title}: prefill {t.rates.prefill_tok_s:.0f} tok/s, decode "
                f"{t.rates.decode_tok_s:.0f} tok/s ({where}); predicted "
                f"{_fmt_ms(t.predicted_ms)}; {quality}"
            )
        if self.measured_at:
            lines.append(
                f"Measured {self.measured_at} in {self.calibration_s:.1f} s; budget "
                f"{self.budget_ms} ms (completion.latencyBudgetMs). Quality: "
                "next-line exact match."
            )
        return "\n".join(lines)


def _fmt_ms(ms: float | None) -> str:
    if ms is None:
        return "?"
    return f"{ms / 1000:.1f} s" if ms >= 1000 else f"{ms:.0f} ms"


# --- the decision (pure) -----------------------------------------------------------------------


def choose(
    candidates: Sequence[Candidate],
    budget_ms: int,
    *,
    setting: str = AUTO,
    request: RequestCost = DEFAULT_REQUEST,
) -> Choice:
    """The model for completions among ``candidates`` (at least one).

    ``setting`` a model id: that model, when it is among the candidates. "auto": the best
    quality among the measured models whose predicted latency fits ``budget_ms`` (ties: the
    faster), counting only useful models (``USEFUL_EXACT_MATCH``) when there are any; no useful
    model fits: the fastest useful one if it is within ``PATIENCE`` times the budget; else the
    fastest; none measured: the smallest file.
    """
    if not candidates:
        raise ValueError("no model to choose from")
    tiers = tuple(_tier(c, budget_ms, request) for c in candidates)
    by_id = {t.model_id: t for t in tiers}

    def done(tier: Tier, reason: str) -> Choice:
        return Choice(
            tier.model_id, tier.title, tier.path, reason, budget_ms, tiers, request=request
        )

    note = ""
    if setting != AUTO:
        if setting in by_id:
            return done(by_id[setting], f"completion.model is set to {setting}")
        note = f"completion.model {setting!r} is not installed; "
    measured = [t for t in tiers if t.predicted_ms is not None]
    if not measured:
        smallest = min(candidates, key=lambda c: c.size)
        return done(
            by_id[smallest.model_id], f"{note}no model could be measured; the smallest answers"
        )
    useful = [
        t for t in measured if t.exact_match is not None and t.exact_match >= USEFUL_EXACT_MATCH
    ]
    fitting = [t for t in (useful or measured) if t.fits]
    if useful and not fitting:
        fastest_useful = min(useful, key=lambda t: t.predicted_ms or 0.0)
        if (fastest_useful.predicted_ms or 0.0) <= PATIENCE * budget_ms:
            return done(
                fastest_useful,
                (
                    f"{note}no model right at least {USEFUL_EXACT_MATCH:.0%} of the time fits "
                    f"the {budget_ms} ms budget on this machine; the fastest that is "
                    f"({fastest_useful.exact_match:.1%} next-line exact match) answers, "
                    f"predicted {_fmt_ms(fastest_useful.predicted_ms)}"
                ),
            )
        fastest = min(measured, key=lambda t: t.predicted_ms or 0.0)
        return done(
            fastest,
            (
                f"{note}no model right at least {USEFUL_EXACT_MATCH:.0%} of the time comes within "
                f"{PATIENCE}x the {budget_ms} ms budget on this machine; the fastest answers "
                f"(predicted {_fmt_ms(fastest.predicted_ms)})"
            ),
        )
    if fitting:
        best = max(
            fitting,
            key=lambda t: (
                -1.0 if t.exact_match is None else t.exact_match,
                -(t.predicted_ms or 0.0),
            ),
        )
        quality = (
            "unknown quality"
            if best.exact_match is None
            else f"{best.exact_match:.1%} next-line exact match"
        )
        return done(
            best,
            f"{note}the best quality ({quality}) whose predicted latency "
            f"({_fmt_ms(best.predicted_ms)}) fits the {budget_ms} ms budget",
        )
    fastest = min(measured, key=lambda t: t.predicted_ms or 0.0)
    return done(
        fastest,
        f"{note}no model fits the {budget_ms} ms budget on this machine; "
        f"the fastest answers (predicted {_fmt_ms(fastest.predicted_ms)})",
    )


def _tier(c: Candidate, budget_ms: int, request: RequestCost) -> Tier:
    predicted = None if c.rates is None else request.predict_ms(c.rates, c.prompt_budget)
    return Tier(
        c.model_id,
        c.title,
        c.path,
        c.exact_match,
        c.quality_source,
        c.rates,
        predicted,
        predicted is not None and predicted <= budget_ms,
        c.error,
    )


# --- the cache key -----------------------------------------------------------------------------


def default_cache_path() -> Path:
    """``<data dir>/cache/calibration.json``; the data dir is the editor's
    (``forecode_core.store.settings.data_dir``: ``$FORECODE_DATA_DIR``, else the platform's)."""
    env = os.environ.get("FORECODE_DATA_DIR")
    base = Path(env) if env else Path(platformdirs.user_data_dir("forecode", appauthor=False))
    return base / "cache" / "calibration.json"


def machine_key() -> dict[str, str]:
    """What the rates depend on besides the model: llama.cpp's build and the hardware.
    Cheap (a few small file reads); never imports llama.cpp."""
    return {
        "cache_version": str(CACHE_VERSION),
        "llama_cpp": _llama_build(),
        "cpu": _cpu(),
        "gpu": _gpus(),
        "python": platform.python_version(),
    }


def _llama_build() -> str:
    try:
        version = importlib.metadata.version("llama_cpp_python")
    except importlib.metadata.PackageNotFoundError:
        version = "?"
    try:
        spec = importlib.util.find_spec("llama_cpp")  # locates the package, imports nothing
    except (ImportError, ValueError):
        spec = None
    libs: list[str] = []
    if spec is not None and spec.submodule_search_locations:
        lib_dir = Path(next(iter(spec.submodule_search_locations))) / "lib"
        with contextlib.suppress(OSError):
            for entry in sorted(lib_dir.iterdir()):
                if entry.is_file() and not entry.is_symlink():
                    st = entry.stat()
                    libs.append(f"{entry.name}:{st.st_size}:{st.st_mtime_ns}")
    return f"{version} " + ",".join(libs)


def _cpu() -> str:
    name = platform.processor() or ""
    with (
        contextlib.suppress(OSError),
        open("/proc/cpuinfo", encoding="ascii", errors="replace") as f,
    ):
        for line in f:
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 0
    return f"{platform.system()} {platform.machine()} {name} x{usable}"


def _gpus() -> str:
    found: list[str] = []
    nvidia = Path("/proc/driver/nvidia/gpus")
    with contextlib.suppress(OSError):
        for gpu in sorted(nvidia.iterdir()):
            with contextlib.suppress(OSError):
                for line in (gpu / "information").read_text(errors="replace").splitlines():
                    if line.startswith("Model:"):
                        found.append(line.split(":", 1)[1].strip())
    drm = Path("/sys/class/drm")
    with contextlib.suppress(OSError):
        for card in sorted(drm.glob("card[0-9]*")):
            dev = card / "device"
            with contextlib.suppress(OSError):
                found.append(
                    (dev / "vendor").read_text().strip()
                    + ":"
                    + (dev / "device").read_text().strip()
                )
    return ",".join(found)


def _file_key(spec: ModelSpec, path: Path) -> dict[str, Any]:
    st = path.stat()
    return {
        "path": str(path),
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "sha256": spec.sha256,
    }


# --- measuring ---------------------------------------------------------------------------------

KeepGoing = Callable[[str, "Rates | str"], bool]
"""``keep_going(path, rates_or_error)``, called after each model: False ends the measurement."""
Measure = Callable[[Sequence[Path], Callable[[], bool], KeepGoing], "dict[str, Rates | str]"]
"""``measure(paths, should_stop, keep_going)`` -> for each path measured (as ``str``), its rates
or an error; models in ``paths`` order, stopping when ``keep_going`` says so."""


def run_probe(
    paths: Sequence[Path],
    should_stop: Callable[[], bool] = lambda: False,
    keep_going: KeepGoing | None = None,
    *,
    threads: int | None = None,
) -> dict[str, Rates | str]:
    """Measure each model in ``python -m local_models.calibrate_probe`` (one process, one
    model after the other, at the engine worker's lower CPU priority). Returns each measured
    path's rates, or why it has none. ``should_stop()`` (polled) kills the process, as does
    ``keep_going(path, result)`` answering False after a model (the rest are left out)."""
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    options = ["--threads", str(threads)] if threads else []
    args = child_command("local_models.calibrate_probe", [*options, *map(str, paths)])
    results: dict[str, Rates | str] = {}
    lines: list[bytes] = []
    stopped = ""
    enough = False
    with (
        tempfile.TemporaryFile() as err,
        subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            env=env,
            **no_window(),
        ) as proc,
    ):
        out = proc.stdout
        assert out is not None
        reader = threading.Thread(target=lambda: lines.extend(out), daemon=True)
        reader.start()
        deadline = time.monotonic() + PROBE_TIMEOUT_S * max(1, len(paths))
        seen = 0

        def take_lines() -> None:
            nonlocal seen, enough
            while seen < len(lines) and not enough:  # a model's line has come
                path, result = _parse_line(lines[seen])
                seen += 1
                if path:
                    results[path] = result
                    enough = keep_going is not None and not keep_going(path, result)

        while proc.poll() is None:
            take_lines()
            if should_stop():
                stopped = "cancelled"
            elif time.monotonic() > deadline:
                stopped = "the measurement timed out"
            if stopped or enough:
                proc.kill()
                break
            time.sleep(0.05)
        proc.wait()
        reader.join(5.0)
        take_lines()
        err.seek(0)
        tail = err.read()[-400:].decode("utf-8", "replace").strip().splitlines()
    if enough:
        return results
    why = stopped or (
        f"the measuring process failed (exit {proc.returncode}"
        + (f": {tail[-1]}" if tail else "")
        + ")"
    )
    for path in map(str, paths):
        results.setdefault(path, why)
    return results


def _parse_line(raw: bytes) -> tuple[str, Rates | str]:
    """A probe line -> (path, rates or error); ("", "") for a line that is not one."""
    try:
        obj = json.loads(raw)
        path = str(obj["path"])
        if obj.get("error"):
            return path, str(obj["error"])
        return path, Rates.from_json(obj["rates"])
    except (ValueError, KeyError, TypeError):
        return "", ""


# --- the whole thing ---------------------------------------------------------------------------


def load_or_run(
    budget_ms: int = DEFAULT_BUDGET_MS,
    *,
    setting: str = AUTO,
    force: bool = False,
    cache_path: Path | None = None,
    models: Sequence[tuple[ModelSpec, Path]] | None = None,
    threads: int | None = None,
    measure: Measure | None = None,
    on_measure: Callable[[str], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    request: RequestCost = DEFAULT_REQUEST,
    load: Callable[[], float | None] = load_per_core,
    defer: bool = False,
) -> Choice:
    """Choose the completion model: the cached rates when they are still valid, else measure
    (``on_measure(reason)`` is called first). Blocks for seconds when it measures: never on
    the UI thread. ``defer``: when a measurement is due (and not ``force``d), do not measure;
    return at once a ``provisional`` choice from the rates known (``_provisional``: the
    cache's valid rates, a busy measurement's; none, the smallest file) with the reason in
    ``measure_reason``: the editor starts that model and calls again without ``defer`` once
    it is loaded, so the first completion never waits for the measurement.
    ``setting`` is ``completion.model``: a model id skips the measurement
    (unless ``force``) and picks that model. ``threads``: llama.cpp threads for the
    measurement (default: the engine's). ``models`` (default: the installed ones, assembled
    and verified by ``ensure_model``), ``measure`` (default: ``run_probe``) and
    ``cache_path`` are seams for tests; ``load``, the load per core (``BUSY_LOAD_PER_CORE``:
    a cache measured on a busy machine is measured again once the machine is quieter).

    Raises ``RuntimeError`` when no model is installed or none can be prepared."""
    problems: dict[str, str] = {}
    pairs: list[tuple[ModelSpec, Path]] = []
    if models is None:
        for spec in installed_models():
            try:
                pairs.append((spec, ensure_model(spec.id)))
            except (OSError, RuntimeError) as exc:  # a damaged install: say so, go on
                problems[spec.id] = str(exc)
    else:
        pairs = list(models)
    budgets: dict[str, int] = {}
    for spec, file in pairs:
        try:
            budgets[spec.id] = _prompt_budget(file)
        except (OSError, ModelError) as exc:  # the worker could not load it either
            problems[spec.id] = str(exc)
    pairs = [(s, f) for s, f in pairs if s.id in budgets]
    if not pairs:
        detail = "; ".join(f"{k}: {v}" for k, v in problems.items())
        raise RuntimeError(
            "no completion model is installed"
            + (
                f" that can be used ({detail})"
                if detail
                else "; run: python3 packaging/bootstrap.py run"
            )
        )
    path = cache_path or default_cache_path()
    machine = machine_key()
    cache = _read_cache(path)
    same_machine = cache.get("machine") == machine
    load_now = load()
    was_busy = same_machine and measured_while_busy(cache.get("load_per_core"), load_now)
    cached: dict[str, Any] = cache.get("models", {}) if same_machine and not was_busy else {}

    rates: dict[str, Rates] = {}
    stale: list[tuple[ModelSpec, Path]] = []
    for spec, file in pairs:
        entry = cached.get(spec.id)
        if not force and isinstance(entry, dict) and entry.get("file") == _file_key(spec, file):
            try:
                rates[spec.id] = Rates.from_json(entry["rates"])
                continue
            except (KeyError, TypeError, ValueError):
                pass
        stale.append((spec, file))

    installed = {spec.id for spec, _ in pairs}
    measured = False
    reason = ""
    took = float(cache.get("took_s", 0.0) or 0.0) if same_machine else 0.0
    when = str(cache.get("measured_at", "")) if same_machine else ""
    # Smallest file first. In "auto", a model at least as large as one that already misses the
    # budget would miss it too (on one machine the rates fall with the weights' size): it is
    # left out, which spares the slowest measurements where they are slowest.
    stale.sort(key=lambda sf: sf[1].stat().st_size)
    prune = not force and setting == AUTO

    def outrun(file: Path) -> str:
        """Why measuring ``file`` is pointless ("" if it is not)."""
        size = file.stat().st_size
        for spec, other in pairs:
            r = rates.get(spec.id)
            if (
                r is not None
                and other.stat().st_size <= size
                and (spec.exact_match or 0.0) >= USEFUL_EXACT_MATCH
                and request.predict_ms(r, budgets[spec.id]) > PATIENCE * budget_ms
            ):
                return (
                    f"at least as large as {spec.name}, which already misses "
                    f"{PATIENCE}x the {budget_ms} ms budget"
                )
        return ""

    if prune:
        for spec, file in stale:
            if why_not := outrun(file):
                problems[spec.id] = why_not
        stale = [(s, f) for s, f in stale if s.id not in problems]
    if stale and (force or setting == AUTO or setting not in installed) and not should_stop():
        reason = _why(force, cache, same_machine, [s for s, _ in stale], len(pairs))
        if was_busy and not force:
            reason = (
                f"the last measurement ran while the machine was busy (load "
                f"{float(cache['load_per_core']):.1f} a core); it is quieter now: measuring again"
            )
        if defer and not force:
            old = cache.get("models", {}) if same_machine else {}
            return _provisional(
                pairs, budgets, rates, old, problems, budget_ms, setting, request, reason
            )
        if on_measure is not None:
            on_measure(reason)
        by_path = {str(f): s for s, f in stale}
        remaining = [f for _, f in stale]

        def keep_going(path: str, result: Rates | str) -> bool:
            if path in by_path and isinstance(result, Rates):
                rates[by_path[path].id] = result
            with contextlib.suppress(ValueError):
                remaining.remove(Path(path))
            return not (prune and remaining and outrun(remaining[0]))

        began = time.monotonic()
        if measure is None:
            got = run_probe([f for _, f in stale], should_stop, keep_going, threads=threads)
        else:
            got = measure([f for _, f in stale], should_stop, keep_going)
        took = time.monotonic() - began
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        measured = True
        for spec, file in stale:
            result = got.get(str(file))
            if isinstance(result, Rates):
                rates[spec.id] = result
            else:
                problems[spec.id] = result or outrun(file) or "not measured"
        if not should_stop():
            _write_cache(
                path,
                {
                    "version": CACHE_VERSION,
                    "machine": machine,
                    "measured_at": when,
                    "took_s": round(took, 3),
                    "load_per_core": None if load_now is None else round(load_now, 2),
                    "models": {
                        s.id: {"file": _file_key(s, f), "rates": dataclasses.asdict(rates[s.id])}
                        for s, f in pairs
                        if s.id in rates
                    },
                },
            )

    candidates = _candidates(pairs, budgets, rates, problems)
    choice = choose(candidates, budget_ms, setting=setting, request=request)
    return dataclasses.replace(
        choice, measured=measured, measure_reason=reason, calibration_s=took, measured_at=when
    )


def _candidates(
    pairs: Sequence[tuple[ModelSpec, Path]],
    budgets: Mapping[str, int],
    rates: Mapping[str, Rates],
    problems: Mapping[str, str],
) -> list[Candidate]:
    return [
        Candidate(
            s.id,
            s.name,
            str(f),
            s.exact_match,
            s.quality_source,
            budgets[s.id],
            rates.get(s.id),
            problems.get(s.id, ""),
            s.size or f.stat().st_size,
        )
        for s, f in pairs
    ]


def _provisional(
    pairs: Sequence[tuple[ModelSpec, Path]],
    budgets: Mapping[str, int],
    rates: Mapping[str, Rates],
    old: Mapping[str, Any],
    problems: Mapping[str, str],
    budget_ms: int,
    setting: str,
    request: RequestCost,
    reason: str,
) -> Choice:
    """The choice before a due measurement (``load_or_run(defer=True)``): ``choose`` over the
    rates known now -- the cache's valid ones, and for a model due again only because the
    last measurement ran on a busy machine, that measurement (too slow, yet better than
    none). With none known (a first run), ``choose``'s last resort: the smallest file, the
    fastest to load and to answer."""
    known = dict(rates)
    for spec, file in pairs:
        entry = old.get(spec.id)
        if spec.id in known or not isinstance(entry, dict):
            continue
        if entry.get("file") == _file_key(spec, file):
            with contextlib.suppress(KeyError, TypeError, ValueError):
                known[spec.id] = Rates.from_json(entry["rates"])
    waiting = {
        s.id: problems.get(s.id) or "not measured yet" for s, _ in pairs if s.id not in known
    }
    candidates = _candidates(pairs, budgets, known, {**problems, **waiting})
    choice = choose(candidates, budget_ms, setting=setting, request=request)
    return dataclasses.replace(
        choice,
        reason=f"{choice.reason} (until the measurement: {reason})",
        measure_reason=reason,
        provisional=True,
    )


def chosen_model(budget_ms: int = DEFAULT_BUDGET_MS) -> Choice:
    """The tier this machine gets with the default settings (``completion.model`` "auto"):
    ``load_or_run`` from the editor's cache, measuring first when it is stale. For the
    benchmarks (``Choice.model_id``, ``Choice.to_json()``)."""
    return load_or_run(budget_ms)


def _prompt_budget(path: Path) -> int:
    """The prompt budget of the profile the worker will use for this GGUF (its header says
    which; ``gguf_info.ModelError`` when it is no GGUF)."""
    return profile_of(read_model_info(path)).prompt_budget


def _why(
    force: bool,
    cache: Mapping[str, Any],
    same_machine: bool,
    stale: Sequence[ModelSpec],
    total: int,
) -> str:
    if force:
        return "asked to recalibrate"
    if not cache:
        return "first run: measuring each installed model's speed on this machine"
    if not same_machine:
        return "llama.cpp, the processor or the GPU changed since the last measurement"
    if len(stale) == total:
        return "the installed models changed"
    return "new or changed model: " + ", ".join(s.name for s in stale)


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(obj, dict) or obj.get("version") != CACHE_VERSION:
        return {}
    return obj


def _write_cache(path: Path, obj: Mapping[str, Any]) -> None:
    """Atomically, readable by the owner only. A failure is not an error: the next start
    measures again."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".calibration-", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(obj, f, indent=1, sort_keys=True)
                f.write("\n")
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError:
        pass
