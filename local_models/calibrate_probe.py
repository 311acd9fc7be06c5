"""The measurement behind ``local_models.calibrate``: ``python -m local_models.calibrate_probe
[--threads N] MODEL.gguf ...`` prints one JSON line per model, ``{"path", "rates"}`` or
``{"path", "error"}``, measuring one model after the other.

Each model is loaded by the completion ``Engine`` exactly as the worker loads it (the n_ctx of
its profile, the engine's default thread count, llama.cpp's default GPU offload: every layer
when the build has a GPU backend), at the worker's lower CPU priority. Then, time-boxed so the
whole run takes a few seconds:

* prefill: real code (``forecode_core/completion/prompt.py``'s own text) evaluated in 32-token
  chunks from
  an empty cache, until ~0.5 s have passed (at least two chunks, at most 512 tokens; the chunk
  size made no difference beyond this machine's noise between 32 and 512);
* tokenizer: the whole of that text tokenized (timed the second time; the worker's prompt
  rendering is mostly tokenization);
* decode: a plain greedy completion of a counting list (it never ends by itself), until
  ~0.4 s have passed and at least four steps were timed: decode steps over decode time, the
  first token (sampled from the prefill's logits) not counted.

Runs llama.cpp: only in its own process (``calibrate.run_probe`` starts it).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

from forecode_core.completion import prompt as completion_prompt
from forecode_core.profiles import profile_of
from local_models.calibrate import Rates
from local_models.engine import Engine
from local_models.gguf_info import read_model_info
from local_models.worker import DEFAULT_NICE

CHUNK = 32
PREFILL_BOX_S = 0.5
PREFILL_MAX = 512
DECODE_BOX_S = 0.4
DECODE_MIN = 4
DECODE_MAX = 64
_COUNTING = "values = [" + ", ".join(str(i) for i in range(1, 25)) + ","


def measure(path: str, threads: int | None) -> Rates:
    began = time.perf_counter()
    info = read_model_info(path)
    profile = profile_of(info)
    engine = Engine(path, n_ctx=profile.max_context, n_threads=threads)
    try:
        load_s = time.perf_counter() - began
        text = Path(completion_prompt.__file__).read_text(encoding="utf-8")
        tokens = engine.tokenize(text, add_bos=profile.add_bos)
        tokenize_began = time.perf_counter()  # the second time: the vocabulary is warm
        engine.tokenize(text, add_bos=profile.add_bos)
        tokenize_tok_s = len(tokens) / max(time.perf_counter() - tokenize_began, 1e-6)
        tokens = tokens[:PREFILL_MAX]
        engine.warm(tokens[:8])  # first touch of the weights (and of the GPU): not timed
        engine.reset()
        evaluated, prefill_ms = 0, 0.0
        box = time.perf_counter() + PREFILL_BOX_S
        for end in range(CHUNK, len(tokens) + 1, CHUNK):
            m = engine.warm(tokens[:end])
            evaluated += m.evaluated_tokens
            prefill_ms += m.prefill_ms
            if end >= 2 * CHUNK and time.perf_counter() > box:
                break
        engine.reset()
        counting = engine.tokenize(_COUNTING, add_bos=profile.add_bos)
        engine.warm(counting)
        stop_at = [0.0]
        pieces = [0]

        def should_stop() -> bool:  # after the box, once a few steps were timed
            return pieces[0] > DECODE_MIN and bool(stop_at[0]) and time.perf_counter() > stop_at[0]

        def on_text(_text: str) -> None:
            pieces[0] += 1
            if not stop_at[0]:  # the first token: the clock starts
                stop_at[0] = time.perf_counter() + DECODE_BOX_S

        done = engine.complete(
            counting,
            max_tokens=DECODE_MAX,
            speculative=False,
            should_stop=should_stop,
            on_text=on_text,
        )
        steps = done.metrics.generated_tokens - 1
        if steps < DECODE_MIN or done.metrics.decode_ms <= 0:
            raise RuntimeError(f"only {steps} decode steps were timed")
        return Rates(
            prefill_tok_s=evaluated / (prefill_ms / 1000.0),
            decode_tok_s=steps / (done.metrics.decode_ms / 1000.0),
            load_s=load_s,
            threads=engine.n_threads,
            gpu_offload=_gpu_offload(),
            prefill_tokens=evaluated,
            decode_tokens=steps,
            took_s=time.perf_counter() - began,
            tokenize_tok_s=tokenize_tok_s,
        )
    finally:
        engine.close()


def _gpu_offload() -> bool:
    import llama_cpp.llama_cpp as C

    return bool(C.llama_supports_gpu_offload())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local_models.calibrate_probe",
        description="Measure GGUF models' prefill and decode rates through Forecode's engine.",
    )
    parser.add_argument("models", nargs="+", help="GGUF files")
    parser.add_argument(
        "--threads", type=int, default=None, help="llama.cpp threads (default: the engine's)"
    )
    parser.add_argument(
        "--nice",
        type=int,
        default=DEFAULT_NICE,
        help=f"CPU priority offset, as the worker's (default {DEFAULT_NICE})",
    )
    args = parser.parse_args(argv)
    # llama.cpp may print to fd 1: keep it for the JSON lines only.
    out = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    if args.nice > 0:
        from local_models.llama_runtime import lower_priority

        lower_priority(args.nice)
    for path in args.models:
        try:
            rates = measure(path, args.threads)
        except Exception as exc:  # one bad model never hides the others' figures
            line = {"path": path, "error": " ".join(f"{type(exc).__name__}: {exc}".split())}
        else:
            line = {"path": path, "rates": dataclasses.asdict(rates)}
        out.write(json.dumps(line) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    code = main()
    sys.stderr.flush()
    os._exit(code)
