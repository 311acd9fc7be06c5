"""The next-edit acceptance gate (``forecode_core.next_edit.acceptance``) on plain data, and the
outcome log (``app.services.next_edit_outcomes``) on a real file."""

from __future__ import annotations

import json
import os
import random
import stat
from pathlib import Path

import pytest

from app.services.next_edit_outcomes import OutcomeLog, OutcomeRecord, default_path
from forecode_core.next_edit.acceptance import (
    FEATURE_NAMES,
    HAND_SET_WEIGHTS,
    MIN_RECORDS,
    PRIOR,
    PRIOR_WEIGHTS,
    THRESHOLD,
    AcceptanceModel,
    Features,
    RecentOutcomes,
    features_of,
    refit,
    vector,
)


def feat(
    mean: float | None = 0.9,
    low: float | None = 0.7,
    size: int = 10,
    distance: int = 1,
    kind: str = "replacement",
    ghost: bool = False,
    rejects: int = 0,
) -> Features:
    return Features(mean, low, size, distance, kind, ghost, rejects)  # type: ignore[arg-type]


# --- the prior gate ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("features", "shown"),
    [
        (feat(), True),  # confident, small, near
        (feat(mean=0.3, low=0.1), False),  # the model is unsure
        (feat(mean=0.95, low=0.8, size=6, distance=0, kind="insertion", ghost=True), True),
        (feat(rejects=5), False),  # the user keeps rejecting
        (feat(mean=None, low=None, size=12, distance=3), True),  # propagation: no model
        (feat(mean=0.6, low=0.05, size=400, distance=60), False),  # big, far, one unsure token
    ],
)
def test_the_prior_shows_confident_near_edits_and_hides_unsure_ones(
    features: Features, shown: bool
) -> None:
    assert PRIOR.shows(features) is shown
    assert (PRIOR.probability(features) >= THRESHOLD) is shown


@pytest.mark.parametrize(
    ("better", "worse"),
    [
        (feat(mean=0.95), feat(mean=0.5)),
        (feat(low=0.9), feat(low=0.1)),
        (feat(size=5), feat(size=300)),
        (feat(distance=0), feat(distance=50)),
        (feat(rejects=0), feat(rejects=2)),
        (feat(kind="insertion"), feat(kind="deletion")),
        (feat(kind="replacement"), feat(kind="deletion")),
        (feat(distance=0), feat(distance=1)),  # at the caret (beside log distance)
        # ghost's sign rests on 3 benchmark answers (module doc): not asserted
    ],
)
def test_each_feature_moves_the_estimate_the_expected_way(
    better: Features, worse: Features
) -> None:
    assert PRIOR.probability(better) > PRIOR.probability(worse)


@pytest.mark.parametrize(
    ("features", "shown", "p"),
    [
        # the shipped (fitted) gate's decisions on plain feature vectors (module doc)
        (feat(0.95, 0.6, 3, 0, "insertion"), True, 0.879),  # sure, small, at the caret
        (feat(0.95, 0.6, 3, 0, "insertion", ghost=True), True, 0.737),
        (feat(0.9, 0.7, 8, 0), True, 0.815),
        (feat(0.95, 0.8, 8, 1), True, 0.563),  # a line below: still shown when sure
        (feat(0.95, 0.8, 8, 1, rejects=2), True, 0.366),
        (feat(0.7, 0.3, 8, 1, rejects=3), False, 0.093),
        (feat(0.9, 0.5, 4, 1, "deletion"), False, 0.184),  # a deletion away: 0/17 on the bench
        (feat(0.95, 0.7, 5, 0, "deletion"), True, 0.571),  # at the caret: 2/4
        (feat(None, None, 12, 3), True, 0.444),  # propagation's site three lines down
        (feat(0.95, 0.7, 10, 3), True, 0.352),
        (feat(0.6, 0.05, 400, 60), False, 0.001),  # big, far, unsure
        (feat(0.5, 0.1, 30, 2), False, 0.049),
    ],
)
def test_the_shipped_gate_on_plain_feature_vectors(
    features: Features, shown: bool, p: float
) -> None:
    assert PRIOR.weights == PRIOR_WEIGHTS and PRIOR.threshold == THRESHOLD == 0.25
    assert PRIOR.probability(features) == pytest.approx(p, abs=0.001)
    assert PRIOR.shows(features) is shown


def test_at_caret_is_the_distance_zero_column_and_no_logged_field() -> None:
    col = FEATURE_NAMES.index("at_caret")
    assert vector(feat(distance=0))[col] == 1.0
    assert vector(feat(distance=1))[col] == 0.0 and vector(feat(distance=40))[col] == 0.0
    # the outcome log's records keep their keys: an old record still reads
    assert "at_caret" not in feat().to_json()
    # the first gate's weights (the study's anchor) had no at_caret
    assert len(HAND_SET_WEIGHTS) == len(FEATURE_NAMES) and HAND_SET_WEIGHTS[col] == 0.0
    with pytest.raises(ValueError, match="version 1"):
        AcceptanceModel.from_json(dict(PRIOR.to_json(), version=1, weights=[0.0] * 9))


def test_the_design_row_clips_margins_and_rejects() -> None:
    row = vector(feat(mean=1.7, low=-0.2, rejects=40))
    assert len(row) == len(FEATURE_NAMES)
    assert row[1] == 1.0 and row[2] == 0.0 and row[-1] == 5.0
    # No model: as confident as can be; a missing minimum is the mean.
    assert vector(feat(mean=None, low=None))[1:3] == [1.0, 1.0]
    assert vector(feat(mean=0.4, low=None))[1:3] == [0.4, 0.4]


def test_features_of_a_suggestion() -> None:
    f = features_of(
        [(10, 12, "handle"), (40, 40, "x")],
        kind="replacement",
        ghost=False,
        distance=-3,
        metrics={"margin_mean": 0.8, "margin_min": None, "ms": 12.0},
        recent_rejects=1,
    )
    assert f == Features(0.8, None, 2 + 6 + 1, 3, "replacement", False, 1)
    f = features_of([], kind="insertion", ghost=True, distance=0, metrics=None, recent_rejects=0)
    assert (f.margin_mean, f.size) == (None, 0)
    assert (
        features_of(
            [],
            kind="insertion",
            ghost=True,
            distance=0,
            metrics={"margin_mean": float("nan")},
            recent_rejects=0,
        ).margin_mean
        is None
    )


def test_features_and_models_round_trip_and_refuse_bad_json() -> None:
    f = feat(mean=None)
    assert Features.from_json(json.loads(json.dumps(f.to_json()))) == f
    assert AcceptanceModel.from_json(PRIOR.to_json()) == PRIOR
    bad = dict(f.to_json(), kind="rename")
    with pytest.raises(ValueError, match="kind must be one of"):
        Features.from_json(bad)
    with pytest.raises(ValueError, match="unknown key"):
        Features.from_json(dict(f.to_json(), path="/secret"))
    with pytest.raises(ValueError, match="size must be int"):
        Features.from_json(dict(f.to_json(), size="12"))
    with pytest.raises(ValueError, match="weights"):
        AcceptanceModel((1.0, 2.0))
    with pytest.raises(ValueError, match="threshold"):
        AcceptanceModel(threshold=1.5)
    with pytest.raises(ValueError, match="version"):
        AcceptanceModel.from_json(dict(PRIOR.to_json(), version=9))


@pytest.mark.parametrize(
    ("outcomes", "rejects"),
    [
        ([], 0),
        ([False, False], 2),
        ([False, False, True], 0),  # an accept clears the memory
        ([True, False, False, False], 3),
        ([False] * 10, 6),  # the window
    ],
)
def test_recent_rejects(outcomes: list[bool], rejects: int) -> None:
    recent = RecentOutcomes()
    for ok in outcomes:
        recent.note(ok)
    assert recent.rejects == rejects


# --- refit ------------------------------------------------------------------------------------


def synthetic(n: int, seed: int = 7) -> list[tuple[Features, bool]]:
    """Outcomes of a user who accepts only tiny edits right at the caret, whatever the margin."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        f = feat(
            mean=rng.uniform(0.5, 1.0),
            low=rng.uniform(0.0, 1.0),
            size=rng.choice([2, 4, 8, 40, 120]),
            distance=rng.choice([0, 1, 5, 30]),
        )
        out.append((f, f.size <= 8 and f.distance <= 1))
    return out


def test_refit_needs_enough_outcomes_of_both_kinds() -> None:
    assert refit(synthetic(MIN_RECORDS - 1)) is PRIOR
    assert refit([(feat(), True)] * 50) is PRIOR


def test_refit_learns_what_this_user_takes() -> None:
    records = synthetic(600)
    fitted = refit(records)
    assert fitted.fitted_on == 600 and fitted.threshold == PRIOR.threshold
    took = feat(mean=0.6, low=0.2, size=4, distance=0)
    left = feat(mean=0.95, low=0.9, size=120, distance=30)
    assert fitted.probability(took) > PRIOR.probability(took)
    assert fitted.probability(left) < PRIOR.probability(left)
    assert fitted.shows(took) and not fitted.shows(left)

    def accuracy(model: AcceptanceModel) -> float:
        return sum(model.shows(f) == ok for f, ok in records) / len(records)

    assert accuracy(fitted) > accuracy(PRIOR)
    # A few outcomes move the weights less than many (the pull toward the prior).
    few = refit(records[:30])
    assert sum(abs(a - b) for a, b in zip(few.weights, PRIOR.weights, strict=True)) < sum(
        abs(a - b) for a, b in zip(fitted.weights, PRIOR.weights, strict=True)
    )


# --- the outcome log ------------------------------------------------------------------------


def test_the_log_lives_in_the_data_dir(isolated_dirs: dict[str, Path]) -> None:
    assert default_path() == isolated_dirs["data"] / "next-edit" / "outcomes.jsonl"


def test_the_log_appends_numbers_only_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "data" / "next-edit" / "outcomes.jsonl"
    log = OutcomeLog(path)
    f = feat()
    log.record("shown", f, probability=0.61, now=1000)
    log.record("rejected", f, probability=0.61, now=1001)
    log.record("accepted", feat(mean=None, low=None), probability=0.7, source="propagation")
    assert log.flush(timeout=120)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [d["event"] for d in lines] == ["shown", "rejected", "accepted"]
    assert lines[0] == {
        "v": 1,
        "t": 1000,
        "event": "shown",
        "source": "model",
        "p": 0.61,
        "features": f.to_json(),
    }
    # Nothing but numbers, booleans, null and the fixed words.
    words = {"shown", "rejected", "accepted", "model", "propagation", "replacement"}

    def leaves(v: object) -> list[object]:
        if isinstance(v, dict):
            return [x for k in v for x in leaves(v[k])]
        return [v]

    for d in lines:
        for v in leaves(d):
            assert v is None or isinstance(v, bool | int | float) or v in words, v
    assert log.training() == [(f, False)]  # the model's outcomes only: the gate judges those
    log.close()


def test_the_log_skips_torn_lines_and_stays_bounded(tmp_path: Path) -> None:
    path = tmp_path / "outcomes.jsonl"
    path.write_bytes(b'{"v": 1, "event": "shown"\nnot json\n{"v": 2}\n')
    log = OutcomeLog(path, max_bytes=4096)
    assert log.read() == []
    for i in range(200):
        log.record("rejected" if i % 3 else "accepted", feat(size=i), probability=0.5, now=i)
    assert log.flush(timeout=120)
    size = path.stat().st_size
    assert size <= 4096
    records = log.read()
    assert records and records[-1].time == 199  # the newest kept
    assert records[0].time > 0  # the oldest dropped
    assert all(OutcomeRecord.from_line(line) for line in path.read_bytes().splitlines())
    log.close()


def test_a_refit_from_the_log(tmp_path: Path) -> None:
    log = OutcomeLog(tmp_path / "o.jsonl")
    assert log.refit() is PRIOR  # nothing recorded
    for f, ok in synthetic(300):
        log.record("accepted" if ok else "rejected", f, probability=PRIOR.probability(f))
        log.record("shown", f, probability=PRIOR.probability(f))
    assert log.flush(timeout=120)
    fitted = log.refit()
    assert fitted.fitted_on == 300 and fitted != PRIOR
    log.close()


def test_propagations_outcomes_never_move_the_models_gate(tmp_path: Path) -> None:
    """A user who tabs through many propagated sites (far, no margin, all taken) must not
    teach the model's gate that far edits are taken: the refit reads the model's outcomes."""
    log = OutcomeLog(tmp_path / "o.jsonl")
    records = synthetic(300)
    for f, ok in records:
        log.record("accepted" if ok else "rejected", f, probability=PRIOR.probability(f))
    far = feat(mean=None, low=None, size=12, distance=80)
    for _ in range(400):
        log.record("accepted", far, probability=0.9, source="propagation")
    assert log.flush(timeout=120)
    assert len(log.training()) == 300
    assert log.refit() == refit(records)
    log.close()


def test_a_log_that_cannot_be_written_counts_errors_and_never_raises(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    log = OutcomeLog(blocker / "sub" / "o.jsonl")
    log.record("shown", feat(), probability=0.5)
    assert log.flush(timeout=120)
    assert log.errors == 1
    with pytest.raises(ValueError, match="unknown outcome"):
        log.record("ignored", feat(), probability=0.5)  # type: ignore[arg-type]
    log.close()
