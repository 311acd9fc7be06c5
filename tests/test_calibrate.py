"""Completion tiers chosen by measurement (local_models.calibrate): the decision over given
rates, the cache and what re-runs it, and one real measurement of the installed models."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import struct
from collections.abc import Sequence
from pathlib import Path

import pytest

from local_models import calibrate
from local_models.calibrate import (
    AUTO,
    PATIENCE,
    Candidate,
    Choice,
    Rates,
    RequestCost,
    choose,
)
from local_models.model_store import MODELS, ModelSpec, installed_models

# The issue's measured rates on the 2-core machine (llama.cpp, 2 threads, tok/s): big =
# Qwen2.5-Coder-1.5B, mid = 0.5B, small = Gemma 3 270M. Quality: big and mid are useful (right at
# least USEFUL_EXACT_MATCH of the time), small is not (as Gemma 3 270M measures).
BIG = Rates(prefill_tok_s=86, decode_tok_s=24)
MID = Rates(prefill_tok_s=210, decode_tok_s=41)
SMALL = Rates(prefill_tok_s=609, decode_tok_s=67)
# A GPU build: the big model's rates with every layer offloaded.
BIG_ON_GPU = Rates(prefill_tok_s=9000, decode_tok_s=180, gpu_offload=True)


def tiers(
    big: Rates | None = BIG, mid: Rates | None = MID, small: Rates | None = SMALL
) -> list[Candidate]:
    return [
        Candidate("big", "Big", "/m/big.gguf", 0.55, "test", 3072, big, size=3),
        Candidate("mid", "Mid", "/m/mid.gguf", 0.30, "test", 3072, mid, size=2),
        Candidate("small", "Small", "/m/small.gguf", 0.03, "test", 1536, small, size=1),
    ]


# A request that evaluates 128 tokens: big 20 + 1488 + 417 ms, mid 20 + 610 + 244, small
# 20 + 210 + 149 (these rates carry no tokenizer rate: no rendering term).
SHORT = RequestCost(context_tokens=128, first_line_tokens=10, overhead_ms=20)
# A request with nothing cached: the profile's whole prompt budget.
COLD = RequestCost(context_tokens=None)


def test_predicted_latency_is_prefill_plus_the_first_lines_decode_plus_rendering() -> None:
    assert SHORT.predict_ms(SMALL, 1536) == pytest.approx(20 + 128 / 609 * 1000 + 10 / 67 * 1000)
    assert COLD.tokens(1536) == 1536 and RequestCost(context_tokens=4000).tokens(1536) == 1536
    # the worker's rendering: whole-prompt tokenizations at the measured tokenizer rate
    timed = Rates(prefill_tok_s=609, decode_tok_s=67, tokenize_tok_s=100_000)
    assert SHORT.predict_ms(timed, 1536) == pytest.approx(
        SHORT.predict_ms(SMALL, 1536) + 4 * 1536 / 100_000 * 1000
    )


def test_on_the_issues_2_core_rates_only_the_useless_model_fits_a_jump() -> None:
    """The default request (a jump: the near context's ~176 new tokens, then the first line)
    on the issue's measured rates: 443 ms for Gemma 3 270M, 1.1 s and 2.5 s for the Qwens. Only
    the model that is almost never right fits 500 ms: the fastest useful one answers instead."""
    choice = choose(tiers(), 500)
    assert [round(t.predicted_ms or 0) for t in choice.tiers] == [2468, 1087, 443]
    assert [t.fits for t in choice.tiers] == [False, False, True]
    assert choice.model_id == "mid"
    assert "the fastest that is (30.0% next-line exact match) answers" in choice.reason
    # with no useful model installed, the fast one answers as before
    assert choose(tiers()[2:], 500).model_id == "small"


def test_a_tight_budget_picks_a_faster_model() -> None:
    assert choose(tiers(), 1000, request=SHORT).model_id == "mid"
    choice = choose(tiers(), 1000, request=SHORT)
    assert "fits the 1000 ms budget" in choice.reason
    assert [t.fits for t in choice.tiers] == [False, True, True]
    # no useful model within PATIENCE x the budget: the fastest answers
    assert SHORT.predict_ms(MID, 3072) > PATIENCE * 80
    choice = choose(tiers(), 80, request=SHORT)
    assert choice.model_id == "small"
    assert "comes within 10x the 80 ms budget on this machine; the fastest" in choice.reason


def test_a_loose_budget_picks_the_best_quality() -> None:
    choice = choose(tiers(), 2500, request=SHORT)
    assert choice.model_id == "big" and choice.title == "Big" and choice.path == "/m/big.gguf"
    assert "55.0% next-line exact match" in choice.reason


def test_when_nothing_fits_the_fastest_answers() -> None:
    # with nothing cached (the whole prompt budget) on the 2-core machine nothing fits 500 ms
    choice = choose(tiers(), 500, request=COLD)
    assert choice.model_id == "small"
    assert "comes within 10x the 500 ms budget on this machine; the fastest" in choice.reason
    assert not any(t.fits for t in choice.tiers)
    # with no useful model installed, the plain rule
    assert "no model fits the 500 ms budget" in choose(tiers()[2:], 500, request=COLD).reason


def test_a_gpu_build_gets_the_big_model_when_it_fits() -> None:
    choice = choose(tiers(big=BIG_ON_GPU), 500, request=COLD)
    assert choice.model_id == "big"
    assert choice.tier.rates is not None and choice.tier.rates.gpu_offload
    assert "GPU" in choice.describe()


def test_the_setting_overrides_the_measurement() -> None:
    assert choose(tiers(), 2500, setting="small", request=SHORT).model_id == "small"
    choice = choose(tiers(), 2500, setting="big")
    assert choice.model_id == "big" and "completion.model" in choice.reason
    # a model that is not installed: the measured pick, and the reason says so
    choice = choose(tiers(), 2500, setting="gone", request=SHORT)
    assert choice.model_id == "big" and "'gone' is not installed" in choice.reason


def test_unmeasured_models_fall_back_to_the_smallest_file() -> None:
    choice = choose(tiers(None, None, None), 500)
    assert choice.model_id == "small" and "could be measured" in choice.reason
    # a model that could not be measured never wins over a measured one
    assert choose(tiers(big=None), 5000, request=SHORT).model_id == "mid"


def test_the_choice_is_json_for_the_benchmarks() -> None:
    data = json.loads(json.dumps(choose(tiers(), 1000, request=SHORT).to_json()))
    assert data["chosen"] == "mid" and data["budget_ms"] == 1000
    assert set(data["models"]) == {"big", "mid", "small"}
    assert data["models"]["mid"]["prefill_tok_s"] == 210 and data["models"]["mid"]["fits"]
    assert data["request"] == {
        "context_tokens": 128,
        "first_line_tokens": 10,
        "tokenizations": 4.0,
        "overhead_ms": 20,
    }
    # the bench's generic reading: the dataclass itself, as JSON
    flat = json.loads(json.dumps(dataclasses.asdict(choose(tiers(), 1000, request=SHORT))))
    assert flat["model_id"] == "mid" and flat["tiers"][1]["rates"]["decode_tok_s"] == 41


def test_every_registry_model_has_a_quality_figure_and_its_source() -> None:
    for spec in MODELS.values():
        assert spec.exact_match is not None and 0 < spec.exact_match < 1
        assert "exact match" in spec.quality_source and spec.name != spec.title


# --- load_or_run: the cache and what re-runs the measurement ------------------------------------


def _gguf(path: Path, architecture: str, name: str, pad: int = 0) -> Path:
    """A GGUF header with no tensors: enough for the profile lookup."""

    def text(s: str) -> bytes:
        raw = s.encode()
        return struct.pack("<Q", len(raw)) + raw

    kvs = (("general.architecture", architecture), ("general.name", name))
    data = b"GGUF" + struct.pack("<IQQ", 3, 0, len(kvs))
    for key, value in kvs:
        data += text(key) + struct.pack("<I", 8) + text(value)
    path.write_bytes(data + b"\0" * pad)
    return path


class FakeMeasure:
    """The measurement seam: rates by file name, in the order given, stopping when told; and a
    record of what was measured."""

    def __init__(self, rates: dict[str, Rates | str]) -> None:
        self.rates = rates
        self.calls: list[list[str]] = []

    def __call__(
        self, paths: Sequence[Path], should_stop: object, keep_going: calibrate.KeepGoing
    ) -> dict[str, Rates | str]:
        got: dict[str, Rates | str] = {}
        self.calls.append([])
        for p in paths:
            self.calls[-1].append(p.name)
            got[str(p)] = self.rates[p.name]
            if not keep_going(str(p), got[str(p)]):
                break
        return got


@pytest.fixture
def models(tmp_path: Path) -> list[tuple[ModelSpec, Path]]:
    made = []
    # both useful (right at least USEFUL_EXACT_MATCH of the time)
    for model_id, arch, name, quality in (
        ("big", "qwen2", "Qwen2.5 Coder 1.5B", 0.55),
        ("small", "gemma3", "Gemma 3 270m", 0.30),
    ):
        spec = ModelSpec(
            model_id,
            name,
            f"{model_id}.gguf",
            0,
            f"sha-{model_id}",
            "test",
            short_title=name,
            exact_match=quality,
            quality_source="test",
        )
        made.append((spec, _gguf(tmp_path / f"{model_id}.gguf", arch, name)))
    return made


def test_measures_on_first_run_then_reads_the_cache(
    tmp_path: Path, models: list[tuple[ModelSpec, Path]]
) -> None:
    cache = tmp_path / "cache" / "calibration.json"
    fake = FakeMeasure({"big.gguf": BIG, "small.gguf": SMALL})
    reasons: list[str] = []
    first = calibrate.load_or_run(
        500, cache_path=cache, models=models, measure=fake, on_measure=reasons.append
    )
    assert fake.calls == [["small.gguf", "big.gguf"]]  # the smallest file first
    assert first.measured and reasons and "first run" in reasons[0]
    assert first.model_id == "small"  # 500 ms: only the small one fits (443 ms)
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    saved = json.loads(cache.read_text())
    assert set(saved["models"]) == {"big", "small"}
    assert saved["models"]["big"]["rates"]["prefill_tok_s"] == 86

    again = calibrate.load_or_run(
        500, cache_path=cache, models=models, measure=fake, on_measure=reasons.append
    )
    assert len(fake.calls) == 1 and len(reasons) == 1  # from the cache
    assert not again.measured and again.model_id == "small"
    assert again.tier.rates == first.tier.rates
    # the budget is not in the key: a looser one re-decides from the cached rates
    loose = calibrate.load_or_run(60_000, cache_path=cache, models=models, measure=fake)
    assert loose.model_id == "big" and len(fake.calls) == 1


def test_a_model_change_re_measures_that_model(
    tmp_path: Path, models: list[tuple[ModelSpec, Path]]
) -> None:
    cache = tmp_path / "calibration.json"
    fake = FakeMeasure({"big.gguf": BIG, "small.gguf": SMALL})
    calibrate.load_or_run(500, cache_path=cache, models=models, measure=fake)
    spec, path = models[0]
    _gguf(path, "qwen2", "Qwen2.5 Coder 1.5B", pad=64)  # a new file for "big"
    reasons: list[str] = []
    choice = calibrate.load_or_run(
        500, cache_path=cache, models=models, measure=fake, on_measure=reasons.append
    )
    assert fake.calls[-1] == ["big.gguf"] and choice.measured
    assert reasons == [f"new or changed model: {spec.name}"]
    # a model added to the installed set is measured; the others come from the cache
    spec3 = ModelSpec("mid", "Mid", "mid.gguf", 0, "", "test", exact_match=0.175)
    fake.rates["mid.gguf"] = MID
    more = [*models, (spec3, _gguf(tmp_path / "mid.gguf", "qwen2", "Qwen2.5 Coder 0.5B"))]
    calibrate.load_or_run(500, cache_path=cache, models=more, measure=fake)
    assert fake.calls[-1] == ["mid.gguf"]


def test_another_llama_build_or_processor_re_measures_everything(
    tmp_path: Path, models: list[tuple[ModelSpec, Path]], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "calibration.json"
    fake = FakeMeasure({"big.gguf": BIG, "small.gguf": SMALL})
    calibrate.load_or_run(500, cache_path=cache, models=models, measure=fake)
    real = calibrate.machine_key()
    monkeypatch.setattr(calibrate, "machine_key", lambda: {**real, "llama_cpp": "cuda build"})
    fake.rates["big.gguf"] = BIG_ON_GPU
    reasons: list[str] = []
    choice = calibrate.load_or_run(
        500, cache_path=cache, models=models, measure=fake, on_measure=reasons.append
    )
    assert fake.calls[-1] == ["small.gguf", "big.gguf"]

    assert "llama.cpp" in reasons[0]
    assert choice.model_id == "big"  # the GPU build: the big model fits the budget


def test_a_model_that_is_rarely_right_does_not_spare_the_useful_ones_a_measurement(
    tmp_path: Path, models: list[tuple[ModelSpec, Path]]
) -> None:
    (big, big_file), (small, small_file) = models
    rarely_right = dataclasses.replace(small, exact_match=0.03)
    fake = FakeMeasure({"big.gguf": BIG, "small.gguf": SMALL})
    choice = calibrate.load_or_run(
        40,
        cache_path=tmp_path / "c.json",
        models=[(big, big_file), (rarely_right, small_file)],
        measure=fake,
    )
    assert fake.calls == [["small.gguf", "big.gguf"]]
    assert choice.model_id == "small"  # the big one is beyond PATIENCE x 40 ms too


def test_recalibrate_forces_and_the_setting_skips_the_measurement(
    tmp_path: Path, models: list[tuple[ModelSpec, Path]]
) -> None:
    cache = tmp_path / "calibration.json"
    fake = FakeMeasure({"big.gguf": BIG, "small.gguf": SMALL})
    chosen = calibrate.load_or_run(
        500, cache_path=cache, models=models, measure=fake, setting="big"
    )
    assert chosen.model_id == "big" and not fake.calls and not chosen.measured
    assert chosen.tier.rates is None  # never measured: the tooltip says so
    assert "not measured" in chosen.describe()
    calibrate.load_or_run(500, cache_path=cache, models=models, measure=fake)
    forced = calibrate.load_or_run(500, cache_path=cache, models=models, measure=fake, force=True)
    assert len(fake.calls) == 2 and forced.measure_reason == "asked to recalibrate"


def test_a_model_that_fails_to_measure_is_reported_not_chosen(
    tmp_path: Path, models: list[tuple[ModelSpec, Path]]
) -> None:
    fake = FakeMeasure({"big.gguf": "ModelError: damaged", "small.gguf": SMALL})
    choice = calibrate.load_or_run(
        60_000, cache_path=tmp_path / "c.json", models=models, measure=fake
    )
    assert choice.model_id == "small"
    assert "damaged" in choice.describe()
    # a file that is no GGUF at all never reaches the measurement
    bad = ModelSpec("bad", "Bad", "bad.gguf", 0, "", "test", exact_match=0.9)
    (tmp_path / "bad.gguf").write_bytes(b"not a model")
    choice = calibrate.load_or_run(
        60_000,
        cache_path=tmp_path / "c.json",
        models=[*models, (bad, tmp_path / "bad.gguf")],
        measure=fake,
    )
    assert "bad" not in {t.model_id for t in choice.tiers}


def test_the_cache_lives_in_the_editors_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    from forecode_core.store.settings import data_dir

    assert calibrate.default_cache_path() == data_dir() / "cache" / "calibration.json"
    monkeypatch.delenv("FORECODE_DATA_DIR")
    assert calibrate.default_cache_path() == data_dir() / "cache" / "calibration.json"


def test_the_machine_key_names_the_llama_build_and_the_processor() -> None:
    key = calibrate.machine_key()
    assert "libllama" in key["llama_cpp"] and key["cpu"]
    assert key == calibrate.machine_key()


# --- the real measurement ----------------------------------------------------------------------


def test_the_probe_reports_a_bad_file_and_measures_the_others(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF\x03\0\0\0")
    got = calibrate.run_probe([bad], threads=1)
    assert isinstance(got[str(bad)], str) and "truncated" in got[str(bad)]
    # told to stop after the first model: the rest is left out, not reported as failed
    other = tmp_path / "other.gguf"
    other.write_bytes(b"GGUF\x03\0\0\0")
    seen: list[str] = []
    got = calibrate.run_probe(
        [bad, other], keep_going=lambda path, _r: bool(seen.append(path)), threads=1
    )
    assert list(got) == [str(bad)] and seen == [str(bad)]


def test_a_real_calibration_of_the_installed_models(tmp_path: Path) -> None:
    """The real probe process over every installed model (one thread: the machine is shared).
    Structure and sane rates only; never timings as pass/fail."""
    installed = {m.id for m in installed_models()}
    assert installed, "no model installed: run python3 packaging/bootstrap.py run"
    cache = tmp_path / "calibration.json"
    reasons: list[str] = []
    choice = calibrate.load_or_run(
        cache_path=cache, threads=1, on_measure=reasons.append, force=True
    )  # every model, whatever the budget
    assert isinstance(choice, Choice) and choice.measured and reasons
    assert choice.model_id in installed and os.path.exists(choice.path)
    assert {t.model_id for t in choice.tiers} == installed
    for tier in choice.tiers:
        assert tier.rates is not None, tier.error
        assert 0 < tier.rates.prefill_tok_s < 1e6 and 0 < tier.rates.decode_tok_s < 1e5
        assert tier.rates.threads == 1 and tier.rates.prefill_tokens >= 64
        assert tier.rates.decode_tokens >= 4 and tier.predicted_ms is not None
    assert choice.calibration_s > 0 and choice.measured_at
    assert set(json.loads(cache.read_text())["models"]) == installed
    again = calibrate.load_or_run(cache_path=cache, setting=AUTO)
    assert not again.measured and again.model_id == choice.model_id


def test_models_larger_than_one_that_misses_the_budget_are_not_measured(
    tmp_path: Path, models: list[tuple[ModelSpec, Path]]
) -> None:
    cache = tmp_path / "calibration.json"
    fake = FakeMeasure({"big.gguf": BIG, "small.gguf": SMALL})
    reasons: list[str] = []
    # 40 ms: the small model (443 ms predicted) misses even PATIENCE x 40 ms, so the big one
    # cannot make it
    choice = calibrate.load_or_run(
        40, cache_path=cache, models=models, measure=fake, on_measure=reasons.append
    )
    assert fake.calls == [["small.gguf"]] and choice.model_id == "small"
    big = next(t for t in choice.tiers if t.model_id == "big")
    assert big.rates is None and "which already misses 10x the 40 ms budget" in big.error
    # the next start knows it without measuring anything
    again = calibrate.load_or_run(
        40, cache_path=cache, models=models, measure=fake, on_measure=reasons.append
    )
    assert len(fake.calls) == 1 and len(reasons) == 1 and not again.measured
    # a looser budget: now the big one may fit, so it is measured (alone)
    loose = calibrate.load_or_run(60_000, cache_path=cache, models=models, measure=fake)
    assert fake.calls[-1] == ["big.gguf"] and loose.model_id == "big"
    # asked to recalibrate: everything, whatever the budget
    calibrate.load_or_run(40, cache_path=cache, models=models, measure=fake, force=True)
    assert fake.calls[-1] == ["small.gguf", "big.gguf"]


# --- a measurement taken on a busy machine ------------------------------------------------------


@pytest.mark.parametrize(
    ("cached", "now", "again"),
    [
        (17.5, 0.4, True),  # measured at load 35 on 2 cores, now quiet
        (17.5, 8.75, True),  # the load halved
        (17.5, 9.0, False),  # still nearly as busy: the figures stand
        (1.4, 0.1, False),  # not busy when measured
        (None, 0.1, False),  # an older cache without the figure
        (True, 0.1, False),  # not a number
        (3.0, None, False),  # no load average here (Windows)
    ],
)
def test_a_busy_measurement_is_repeated_only_once_the_machine_is_quieter(
    cached: object, now: float | None, again: bool
) -> None:
    assert calibrate.measured_while_busy(cached, now) is again


def test_a_cache_measured_on_a_busy_machine_is_measured_again_when_quiet(
    tmp_path: Path, models: list[tuple[ModelSpec, Path]]
) -> None:
    cache = tmp_path / "calibration.json"
    slow = dataclasses.replace(SMALL, prefill_tok_s=5, decode_tok_s=1)
    fake = FakeMeasure({"big.gguf": "the measurement timed out", "small.gguf": slow})
    busy = calibrate.load_or_run(
        500, cache_path=cache, models=models, measure=fake, load=lambda: 17.5
    )
    assert json.loads(cache.read_text())["load_per_core"] == 17.5
    assert busy.model_id == "small"
    # the next start on the still-busy machine keeps the figures (no measurement each start)
    calibrate.load_or_run(500, cache_path=cache, models=models, measure=fake, load=lambda: 16.0)
    assert len(fake.calls) == 1
    # quiet now: everything is measured again, with the reason said
    fake.rates = {"big.gguf": BIG, "small.gguf": SMALL}
    reasons: list[str] = []
    quiet = calibrate.load_or_run(
        500,
        cache_path=cache,
        models=models,
        measure=fake,
        load=lambda: 0.3,
        on_measure=reasons.append,
    )
    assert fake.calls[-1] == ["small.gguf", "big.gguf"]
    assert "busy" in reasons[0] and "17.5" in reasons[0]
    assert quiet.measured and quiet.tier.rates == SMALL
    assert json.loads(cache.read_text())["load_per_core"] == 0.3
    # and that quiet measurement is kept from then on
    calibrate.load_or_run(500, cache_path=cache, models=models, measure=fake, load=lambda: 0.2)
    assert len(fake.calls) == 2


# --- defer: the first completion never waits for a measurement (issue 18) ---------------------


def test_a_deferred_first_run_picks_the_smallest_at_once_and_measures_nothing(
    tmp_path: Path, models: list[tuple[ModelSpec, Path]]
) -> None:
    cache = tmp_path / "calibration.json"
    fake = FakeMeasure({"big.gguf": BIG, "small.gguf": SMALL})
    reasons: list[str] = []
    now = calibrate.load_or_run(
        60_000,
        cache_path=cache,
        models=models,
        measure=fake,
        on_measure=reasons.append,
        defer=True,
    )
    assert now.provisional and now.model_id == "small" and not now.measured
    assert "first run" in now.measure_reason and "first run" in now.reason
    assert fake.calls == [] and reasons == [] and not cache.exists()
    # the editor calls again without defer once the small one answers: measured, then the
    # loose budget picks the big one; a deferred call after that reads the cache
    later = calibrate.load_or_run(60_000, cache_path=cache, models=models, measure=fake)
    assert later.measured and not later.provisional and later.model_id == "big"
    again = calibrate.load_or_run(60_000, cache_path=cache, models=models, measure=fake, defer=True)
    assert not again.provisional and again.model_id == "big" and len(fake.calls) == 1


def test_a_deferred_choice_uses_the_rates_it_has(
    tmp_path: Path, models: list[tuple[ModelSpec, Path]]
) -> None:
    cache = tmp_path / "calibration.json"
    fake = FakeMeasure({"big.gguf": BIG, "small.gguf": SMALL})
    calibrate.load_or_run(60_000, cache_path=cache, models=models, measure=fake, load=lambda: 8.0)
    # measured on a busy machine, quiet now: due again, but the busy rates choose meanwhile
    busy = calibrate.load_or_run(
        60_000, cache_path=cache, models=models, measure=fake, load=lambda: 0.2, defer=True
    )
    assert busy.provisional and busy.model_id == "big" and "busy" in busy.measure_reason
    assert len(fake.calls) == 1
    # recalibrate (force) never defers
    forced = calibrate.load_or_run(
        60_000, cache_path=cache, models=models, measure=fake, force=True, defer=True
    )
    assert forced.measured and not forced.provisional and len(fake.calls) == 2
