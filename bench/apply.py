"""The ``apply`` benchmark: speculative edits against plain greedy decoding, and apply accuracy.

One run, the default model, one engine made for apply (``local_models.apply_model``:
verify batches up to ``APPLY_MAX_OUTPUTS`` rows), on real files of the Python standard library
with code blocks built from real edits (``bench.apply_cases``: elided bodies, added parameters,
new methods, import additions; the expected file is known).

(a) Speed, on ``--speed-cases`` cases (one per kind first): for each, from a cold cache and in
    alternating order, the model path's whole-file rewrite with speculative edits
    (``Engine.rewrite`` as ``whole_file_request`` sets it up: the file with the block merged in
    as the draft, the file as it is as the second draft) and plain greedy decoding of the same
    prompt for as many tokens (``Engine.complete``, one token per decode). ``spec_over_greedy``
    = generated tokens per second of decoding, pooled over the cases, speculative ÷ greedy.
    ``spec_over_prefill`` = the same speculative rate ÷ the prefill rate of the same prompts
    (prompt tokens ÷ prefill time of the cold rewrites, same run). ``spec_over_ceiling`` divides
    by a rewrite whose draft is its own answer (every draft token accepted: the best speculative
    edits can do with logits for every row; on this model they cost more than a prefill, where
    only the last row gets logits: the output layer is 262k x 640, more multiply-adds than the
    rest of the model). Lossless check: every speculative token teacher-forced against
    single-token greedy decoding (``greedy_check``); a difference counts as a rounding tie when
    the greedy token's logit beats the emitted one by no more than the rounding noise of batches
    of that size, measured on the same rewrite (``rounding_noise`` over its last positions).
    ``tie_rate`` = differences ÷ tokens. With ``--rounds N`` the speculative rewrite and the
    oracle run N times each, alternating, and each keeps its fastest decode.
(b) Accuracy on every case: the deterministic path alone (``apply_deterministic``), the model
    path alone (the rewrite forced), and the combined apply (the deterministic path when it
    anchors, else the model); exact match of the whole file. ``model_flagged``: model results
    the safety check flags (code removed that the block does not account for).
(c) ``first_hunk_ms``: from the start of an apply to the first hunk of the review that can no
    longer change (``forecode_core.apply.review.final_hunks`` on the text streamed so far), median
    over the combined applies; also by path.

``--quick``: one speed case, one case of each kind, windows of 25 lines of four small modules
(for tests).

Cases (``--cases``): ``real`` (the default without ``--quick``): blocks built from real commits
of real projects (``bench.apply_real_cases``: consecutive PyPI releases, downloaded into a cache
at bench time and checked against the manifest's sha256; shorthand class wrappers, elided
hunks, reflowed imports, whole rewritten functions; several files over 2,000 lines);
``stdlib``: the standard-library windows above (``bench.apply_cases``).

Never silently wrong: every path's result is judged as the editor would offer it. A result is
*offered as clean* when it is the deterministic path's, or a complete model answer with no
rewrite defect (``find_rewrite_defect``) and no unaccounted removal (the safety check);
``silent_wrong`` counts clean results that differ from the expected file (per path and
combined), ``refused`` the deterministic path's refusals (the model path runs on those) and the
model answers refused as not a file. ``--deterministic-only`` measures the deterministic path
alone in seconds, without a model (``model`` and ``combined`` are then null).
"""

from __future__ import annotations

import argparse
import gc
import time
from dataclasses import asdict
from typing import Any

from bench._common import load_average, median

DEFAULT_ROUNDS = 1
QUICK: dict[str, Any] = {
    "per_kind": 1,
    "max_lines": 25,
    "min_lines": 8,
    "speed_cases": 1,
    "noise_positions": 64,
    "files": ("reprlib.py", "copy.py", "colorsys.py", "netrc.py"),
}
FULL: dict[str, Any] = {
    "per_kind": 8,
    "max_lines": 100,
    "min_lines": 15,
    "speed_cases": 4,
    "noise_positions": 128,
    "files": None,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quick", action="store_true", help="one speed case, one case per kind, small files"
    )
    parser.add_argument(
        "--per-kind",
        type=int,
        default=None,
        help="accuracy cases per kind (default 8; 1 with --quick)",
    )
    parser.add_argument(
        "--max-lines",
        type=int,
        default=None,
        help="lines per file window (default 100; 25 with --quick)",
    )
    parser.add_argument(
        "--speed-cases",
        type=int,
        default=None,
        help="cases timed against greedy decoding (default 4; 1 with --quick)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="llama.cpp threads (default 1: steady ratios on a shared machine)",
    )
    parser.add_argument(
        "--max-batch",
        type=int,
        default=None,
        help="largest verify batch (default: the apply engine's maximum)",
    )
    parser.add_argument(
        "--no-check",
        action="store_true",
        help="skip the teacher-forced lossless check (halves the time)",
    )
    parser.add_argument(
        "--cases",
        choices=("real", "stdlib"),
        default=None,
        help="real: blocks from consecutive PyPI releases (default); stdlib: "
        "standard-library windows (the default with --quick)",
    )
    parser.add_argument(
        "--deterministic-only",
        action="store_true",
        help="the deterministic path alone, no model (seconds)",
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help="at most this many cases (spread evenly over the list)",
    )
    parser.add_argument(
        "--model",
        default="",
        help="model id from the registry (default: the service's default "
        "model, which apply uses; --quick: the small model)",
    )
    parser.add_argument(
        "--model-on",
        choices=("all", "refused"),
        default="all",
        help="run the model path on every case (model accuracy) or only where "
        "the deterministic path refuses (combined accuracy, faster)",
    )


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _rate(tokens: int, ms: float) -> float | None:
    return tokens / (ms / 1000.0) if ms > 0 and tokens > 0 else None


def _first_final_ms(original_lf: str, chunks: list[tuple[float, int]], text: str) -> float | None:
    """The time of the first streamed chunk after which ``final_hunks`` has a hunk (binary
    search: once final, a hunk stays final as more text arrives)."""
    from forecode_core.apply.review import final_hunks

    lo, hi = 0, len(chunks)
    while lo < hi:
        mid = (lo + hi) // 2
        if final_hunks(original_lf, text[: chunks[mid][1]]):
            hi = mid
        else:
            lo = mid + 1
    return chunks[lo][0] if lo < len(chunks) else None


def _speed_case(
    engine: Any,
    case: Any,
    max_batch: int | None,
    check: bool,
    noise_positions: int,
    order_flip: bool,
    rounds: int = 1,
) -> dict[str, Any]:
    from forecode_core.apply.block import ApplyInput
    from local_models.apply_model import whole_file_request
    from local_models.engine.diagnostics import greedy_check, rounding_noise

    inp = ApplyInput(case.path, "python", case.original, case.block)
    req = whole_file_request(engine, inp)  # the model path's own call (drafts and bounds)
    prompt, draft, max_tokens, stop = req.prompt, req.draft, req.max_tokens, req.stop
    out: dict[str, Any] = {
        "case": case.name,
        "prompt_tokens": len(prompt),
        "draft_tokens": len(draft),
    }

    def spec() -> Any:
        engine.reset()
        return engine.rewrite(
            prompt, draft, max_tokens=max_tokens, stop=stop, max_batch=max_batch, alt=req.alt
        )

    def greedy(n: int) -> Any:
        engine.reset()
        return engine.complete(prompt, max_tokens=n, stop=stop)

    if order_flip:
        g = greedy(max_tokens)
        s = spec()
    else:
        s = spec()
        g = greedy(max_tokens)
    n = len(s.tokens)
    # The oracle: the answer itself as the draft (and its stop token after it).
    answer = [*s.tokens, *engine.tokenize(stop[0])]

    def ceiling() -> Any:
        engine.reset()
        return engine.rewrite(prompt, answer, max_tokens=max_tokens, stop=stop, max_batch=max_batch)

    oracle = ceiling()
    # More rounds (``--rounds``): the speculative rewrite and the oracle again, alternating;
    # each keeps its fastest decode (a shared machine's load only ever slows a run down).
    for _ in range(rounds - 1):
        for again, best in ((spec(), s), (ceiling(), oracle)):
            if again.metrics.decode_ms < best.metrics.decode_ms:
                best.metrics.decode_ms = again.metrics.decode_ms
    sm, gm, om = s.metrics, g.metrics, oracle.metrics
    out.update(
        {
            "spec_tokens": n,
            "greedy_tokens": len(g.tokens),
            "stop_reason": s.stop_reason,
            "spec_decode_ms": _r(sm.decode_ms, 1),
            "greedy_decode_ms": _r(gm.decode_ms, 1),
            "oracle_decode_ms": _r(om.decode_ms, 1),
            "oracle_tokens": len(oracle.tokens),
            "prefill_ms": _r(sm.prefill_ms, 1),
            "prefill_tokens": sm.evaluated_tokens,
            "spec_tok_s": _r(_rate(n, sm.decode_ms), 2),
            "greedy_tok_s": _r(_rate(len(g.tokens), gm.decode_ms), 2),
            "oracle_tok_s": _r(_rate(len(oracle.tokens), om.decode_ms), 2),
            "prefill_tok_s": _r(_rate(sm.evaluated_tokens, sm.prefill_ms), 2),
            "spec_equals_greedy": list(s.tokens) == list(g.tokens)[:n],
            "oracle_equals_spec": list(oracle.tokens) == list(s.tokens),
            "metrics": {
                k: (_r(v, 1) if isinstance(v, float) else v) for k, v in asdict(sm).items()
            },
        }
    )
    if check:
        diffs = greedy_check(engine, prompt, s.tokens)
        size = max_batch or engine.max_outputs
        noise = rounding_noise(engine, [*prompt, *s.tokens], max(noise_positions, size), size)
        tolerance = max(noise, default=0.0)
        out.update(
            {
                "check_differences": len(diffs),
                "check_gaps": [_r(gap, 4) for *_, gap in diffs],
                "noise_max": _r(tolerance, 4),
                "noise_batch": size,
                "lossless": all(gap <= tolerance for *_, gap in diffs),
            }
        )
    engine.reset()
    return out


SIZE_BANDS = ((0, 500, "<500"), (500, 2000, "500-2000"), (2000, 1 << 60, ">=2000"))


def _band(lines: int) -> str:
    return next(name for lo, hi, name in SIZE_BANDS if lo <= lines < hi)


def _judge(original: str, block: str, text: str) -> str:
    """How the editor offers a complete result: ``clean``; ``flagged`` (the review warns of
    code removed that the block does not account for); ``defect`` (not a file: refused)."""
    from forecode_core.apply.block import find_rewrite_defect, find_unaccounted_removals

    removals = find_unaccounted_removals(original, block, text)
    if find_rewrite_defect(original, block, text, removals) is not None:
        return "defect"
    return "flagged" if removals else "clean"


def _deterministic_case(case: Any) -> dict[str, Any]:
    """The deterministic path on one case: its outcome, how it would be offered, its time."""
    from forecode_core.apply.block import Applied, apply_deterministic

    began = time.perf_counter()
    det = apply_deterministic(case.original, case.block)
    det_ms = (time.perf_counter() - began) * 1000.0
    applied = isinstance(det, Applied)
    ok = applied and det.text == case.expected
    offered = _judge(case.original, case.block, det.text) if applied else None
    lines = case.original.count("\n")
    return {
        "case": case.name,
        "kind": case.kind,
        "lines": lines,
        "band": _band(lines),
        "deterministic": "applied" if applied else det.status,
        "deterministic_ok": ok,
        "deterministic_offered": offered,
        "deterministic_silent_wrong": applied and not ok and offered == "clean",
        "refusal": None if applied else det.reason,
        "deterministic_ms": _r(det_ms, 2),
    }


def _accuracy_case(
    engine: Any, case: Any, max_batch: int | None, model_on: str = "all"
) -> dict[str, Any]:
    from forecode_core.apply.block import ApplyInput, apply_deterministic
    from local_models.apply_model import rewrite_file, warm_for_apply

    out = _deterministic_case(case)
    applied = out["deterministic"] == "applied"
    original_lf = case.original.replace("\r\n", "\n")
    det_first: float | None = None
    if applied:
        from forecode_core.apply.review import final_hunks

        began = time.perf_counter()
        det = apply_deterministic(case.original, case.block)
        final_hunks(original_lf, getattr(det, "text", ""))
        det_first = (time.perf_counter() - began) * 1000.0
    det_ms = float(out["deterministic_ms"])
    out.update(
        {
            "model_ok": None,
            "model_complete": None,
            "model_stop": None,
            "model_flagged": None,
            "model_offered": None,
            "model_silent_wrong": None,
            "model_error": None,
            "model_tok_s": None,
            "model_accepted": 0,
            "model_drafted": 0,
            "model_generated": 0,
            "model_rejoins": 0,
        }
    )
    model_first: float | None = None
    model_s: float | None = None
    if model_on == "all" or not applied:
        # As in the service: an empty cache but for the fixed opening of every window prompt,
        # which the service evaluates at start and every apply re-uses (warm_for_apply).
        engine.reset()
        warm_for_apply(engine)
        chunks: list[tuple[float, int]] = []
        streamed: list[str] = []
        size = [0]
        start = time.perf_counter()

        def on_text(text: str) -> None:
            streamed.append(text)
            size[0] += len(text)
            chunks.append(((time.perf_counter() - start) * 1000.0, size[0]))

        inp = ApplyInput(case.path, "python", case.original, case.block)
        try:
            model = rewrite_file(engine, inp, on_text=on_text, max_batch=max_batch)
        except Exception as error:  # a prompt over the context, an engine error: not offered
            out.update(
                {
                    "model_ok": False,
                    "model_complete": False,
                    "model_error": f"{type(error).__name__}: {error}"[:300],
                }
            )
        else:
            model_s = time.perf_counter() - start
            offered = (
                _judge(case.original, case.block, model.text) if model.complete else "incomplete"
            )
            model_ok = model.complete and model.text == case.expected
            m = model.metrics
            out.update(
                {
                    "model_ok": model_ok,
                    "model_complete": model.complete,
                    "model_stop": model.stop_reason,
                    "model_flagged": offered == "flagged" if model.complete else None,
                    "model_offered": offered,
                    "model_silent_wrong": not model_ok and offered == "clean",
                    "model_tok_s": _r(_rate(m.generated_tokens, m.decode_ms), 2),
                    "model_accepted": m.accepted_tokens,
                    "model_drafted": m.drafted_tokens,
                    "model_generated": m.generated_tokens,
                    "model_rejoins": m.rejoins,
                }
            )
            model_first = _first_final_ms(original_lf, chunks, "".join(streamed))
    if applied:
        combined_ok, combined_silent = out["deterministic_ok"], out["deterministic_silent_wrong"]
        combined_first: float | None = det_first
        apply_s: float | None = det_ms / 1000.0
    else:
        combined_ok, combined_silent = bool(out["model_ok"]), bool(out["model_silent_wrong"])
        combined_first = None if model_first is None else det_ms + model_first
        apply_s = None if model_s is None else det_ms / 1000.0 + model_s
    out.update(
        {
            "combined_ok": combined_ok,
            "combined_silent_wrong": combined_silent,
            "apply_s": _r(apply_s, 3),
            "first_hunk_ms": {
                "deterministic": _r(det_first, 2),
                "model": _r(model_first, 1),
                "combined": _r(combined_first, 1),
            },
        }
    )
    return out


def _spread(cases: list[Any], limit: int | None) -> list[Any]:
    """At most ``limit`` cases, evenly spread over the list (kinds and files stay mixed)."""
    if limit is None or limit >= len(cases):
        return cases
    step = len(cases) / max(1, limit)
    return [cases[int(k * step)] for k in range(limit)]


def _summary(records: list[dict[str, Any]], with_model: bool) -> dict[str, Any]:
    """``accuracy``, ``silent_wrong`` and ``refused``, overall, by kind and by size band."""
    n = len(records)

    def share(key: str, subset: list[dict[str, Any]]) -> float | None:
        return _r(sum(bool(a[key]) for a in subset) / len(subset)) if subset else None

    def count(key: str, subset: list[dict[str, Any]]) -> int:
        return sum(bool(a[key]) for a in subset)

    def group(subset: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "cases": len(subset),
            "deterministic": count("deterministic_ok", subset),
            "deterministic_silent_wrong": count("deterministic_silent_wrong", subset),
            "deterministic_refused": sum(a["deterministic"] != "applied" for a in subset),
            "model": count("model_ok", subset) if with_model else None,
            "combined": count("combined_ok", subset) if with_model else None,
        }

    kinds = sorted({a["kind"] for a in records})
    bands = [name for *_, name in SIZE_BANDS if any(a["band"] == name for a in records)]
    ran = [a for a in records if a["model_complete"] is not None]
    return {
        "accuracy": {
            "deterministic": share("deterministic_ok", records),
            "model": share("model_ok", ran) if with_model else None,
            "combined": share("combined_ok", records) if with_model else None,
            "cases": n,
            "model_cases": len(ran) if with_model else 0,
            "deterministic_applied": sum(a["deterministic"] == "applied" for a in records),
            "by_kind": {k: group([a for a in records if a["kind"] == k]) for k in kinds},
            "by_band": {b: group([a for a in records if a["band"] == b]) for b in bands},
        },
        "silent_wrong": {
            "deterministic": count("deterministic_silent_wrong", records),
            "model": count("model_silent_wrong", ran) if with_model else None,
            "combined": count("combined_silent_wrong", records) if with_model else None,
            "deterministic_flagged_wrong": sum(
                a["deterministic"] == "applied"
                and not a["deterministic_ok"]
                and a["deterministic_offered"] != "clean"
                for a in records
            ),
        },
        "refused": {
            "deterministic": sum(a["deterministic"] != "applied" for a in records),
            "model": sum(a["model_offered"] in ("defect", "incomplete") for a in ran)
            if with_model
            else None,
            "deterministic_rate": _r(sum(a["deterministic"] != "applied" for a in records) / n)
            if n
            else None,
        },
    }


def _percentiles(records: list[dict[str, Any]], key: str) -> dict[str, Any]:
    from bench._common import percentile

    out: dict[str, Any] = {}
    for *_, name in SIZE_BANDS:
        values = [a[key] for a in records if a["band"] == name and a[key] is not None]
        out[name] = (
            {
                "p50": _r(percentile(values, 50), 4),
                "p95": _r(percentile(values, 95), 4),
                "cases": len(values),
            }
            if values
            else None
        )
    return out


def _load_cases(
    args: argparse.Namespace, preset: dict[str, Any]
) -> tuple[list[Any], str, list[str]]:
    """The cases, their source ("real" or "stdlib") and the files they come from."""
    source = args.cases or ("stdlib" if args.quick else "real")
    if source == "real":
        from bench.apply_real_cases import build_real_cases

        cases = build_real_cases()
    else:
        from bench.apply_cases import DEFAULT_FILES, build_cases

        files = preset["files"] or DEFAULT_FILES
        cases = build_cases(
            files,
            per_kind=args.per_kind or preset["per_kind"],
            max_lines=args.max_lines or preset["max_lines"],
            min_lines=preset["min_lines"],
        )
    cases = _spread(cases, args.limit)
    if not cases:
        raise SystemExit(f"no {source} cases could be built")
    return cases, source, sorted({c.path for c in cases})


def _deterministic_run(args: argparse.Namespace, preset: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    cases, source, files = _load_cases(args, preset)
    records = [_deterministic_case(c) for c in cases]
    for a in records:
        a["model_ok"] = a["model_complete"] = a["model_silent_wrong"] = None
        a["model_offered"] = None
        a["combined_ok"] = a["combined_silent_wrong"] = None
    result: dict[str, Any] = {
        "quick": bool(args.quick),
        "rounds": int(args.rounds),
        "deterministic_only": True,
        "case_source": source,
    }
    result.update(_summary(records, with_model=False))
    result.update(
        {
            "deterministic_ms": _percentiles(records, "deterministic_ms"),
            "cases": records,
            "files": files,
            "targets": {
                "silent_wrong.deterministic": "0",
                "silent_wrong.combined": "0",
                "accuracy.combined": ">= 0.95",
            },
            "load_average_end": load_average(),
            "wall_s": round(time.perf_counter() - started, 1),
        }
    )
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    quick = bool(args.quick)
    preset = QUICK if quick else FULL
    if args.deterministic_only:
        return _deterministic_run(args, preset)

    from local_models.apply_model import APPLY_MAX_OUTPUTS, open_engine
    from local_models.model_store import SERVICE_MODEL, SMALL_MODEL, ensure_model

    speed_n = preset["speed_cases"] if args.speed_cases is None else args.speed_cases
    started = time.perf_counter()
    model_id = args.model or (SMALL_MODEL if quick else SERVICE_MODEL)
    model_path = ensure_model(model_id)
    cases, source, files = _load_cases(args, preset)
    kinds = sorted({c.kind for c in cases})
    # Speed cases: one of each kind first (the smallest files), then the rest in order.
    by_size = sorted(cases, key=lambda c: len(c.original))
    firsts = [next(c for c in by_size if c.kind == k) for k in kinds]
    speed_cases = (firsts + [c for c in by_size if c not in firsts])[:speed_n]

    result: dict[str, Any] = {
        "quick": quick,
        "rounds": int(args.rounds),
        "model": model_id,
        "deterministic_only": False,
        "case_source": source,
        "model_on": args.model_on,
    }
    engine = open_engine(model_path, n_ctx=8192, n_threads=args.threads)
    try:
        speed = [
            _speed_case(
                engine,
                c,
                args.max_batch,
                not args.no_check,
                preset["noise_positions"],
                bool(i % 2),
                int(args.rounds),
            )
            for i, c in enumerate(speed_cases)
        ]
        accuracy = [_accuracy_case(engine, c, args.max_batch, args.model_on) for c in cases]
        threads_now = getattr(getattr(engine, "_threads", None), "now", None)
    finally:
        engine.close()
        gc.collect()

    def pooled(tok_key: str, ms_key: str) -> float | None:
        tokens = sum(s[tok_key] for s in speed)
        ms = sum(s[ms_key] or 0.0 for s in speed)
        return _rate(tokens, ms)

    spec_rate = pooled("spec_tokens", "spec_decode_ms")
    greedy_rate = pooled("greedy_tokens", "greedy_decode_ms")
    oracle_rate = pooled("oracle_tokens", "oracle_decode_ms")
    prefill_rate = pooled("prefill_tokens", "prefill_ms")

    def ratio(a: float | None, b: float | None) -> float | None:
        return _r(a / b) if a and b else None

    firsts_ms = {
        path: [a["first_hunk_ms"][path] for a in accuracy if a["first_hunk_ms"][path] is not None]
        for path in ("deterministic", "model", "combined")
    }
    checked = [s for s in speed if "check_differences" in s]
    check_tokens = sum(s["spec_tokens"] for s in checked)
    differences = sum(s["check_differences"] for s in checked)
    wrong_model = [a for a in accuracy if a["model_complete"] and not a["model_ok"]]
    summary = _summary(accuracy, with_model=True)
    summary["accuracy"].update(
        {
            "model_complete": sum(bool(a["model_complete"]) for a in accuracy),
            "model_wrong_complete": len(wrong_model),
            "model_wrong_flagged": sum(bool(a["model_flagged"]) for a in wrong_model),
        }
    )
    apply_s = _percentiles(accuracy, "apply_s")
    result.update(
        {
            "spec_over_greedy": ratio(spec_rate, greedy_rate),
            "spec_over_prefill": ratio(spec_rate, prefill_rate),
            "spec_over_ceiling": ratio(spec_rate, oracle_rate),
            "ceiling_over_prefill": ratio(oracle_rate, prefill_rate),
            "spec_tok_s": _r(spec_rate, 2),
            "greedy_tok_s": _r(greedy_rate, 2),
            "ceiling_tok_s": _r(oracle_rate, 2),
            "prefill_tok_s": _r(prefill_rate, 2),
            **summary,
            "apply_s": apply_s,
            "apply_s_p50": {band: (v or {}).get("p50") for band, v in apply_s.items()},
            "apply_s_p95": {band: (v or {}).get("p95") for band, v in apply_s.items()},
            "deterministic_ms": _percentiles(accuracy, "deterministic_ms"),
            "first_hunk_ms": _r(median(firsts_ms["combined"]), 1)
            if firsts_ms["combined"]
            else None,
            "first_hunk_ms_by_path": {
                path: _r(median(v), 2) if v else None for path, v in firsts_ms.items()
            },
            "lossless": all(s["lossless"] for s in checked) if checked else None,
            "tie_rate": _r(differences / check_tokens, 5) if check_tokens else None,
            "tie_differences": differences,
            "tie_checked_tokens": check_tokens,
            "lossless_rule": (
                "every speculative token teacher-forced against single-token greedy "
                "decoding; a difference is a rounding tie when the greedy logit beats "
                "the emitted one by <= the max |top-2 gap| change between single-token "
                "and batched decodes (batch = the largest verify size) over the "
                "rewrite's last positions, same run"
            ),
            "speed_cases": speed,
            "cases": accuracy,
            "files": files,
            "model": model_path.name,
            "threads": args.threads,
            "engine_threads_at_end": threads_now,
            "max_batch": args.max_batch or APPLY_MAX_OUTPUTS,
            "targets": {
                "spec_over_ceiling": ">= 0.9",
                "silent_wrong.combined": "0",
                "accuracy.combined": ">= 0.95",
            },
            "load_average_end": load_average(),
            "wall_s": round(time.perf_counter() - started, 1),
        }
    )
    return result
