"""``bench.next_edit``'s gate study on plain data: the both arm replayed under another gate
(``both_under``: the session's order, reverts dropped), the threshold chosen for issue 15's
target (``choose_threshold``) and the leave-one-repository-out study (``gate_cv``) with the
product's own ``acceptance.refit``."""

from __future__ import annotations

from typing import Any

import pytest

from bench.next_edit import GateCase, both_under, gate_cases, gate_cv
from forecode_core.next_edit.acceptance import PRIOR, AcceptanceModel, Features


def verdict(located: bool, reversal: bool = False) -> dict[str, Any]:
    return {
        "located": located,
        "exact": located,
        "correct": located,
        "kept": 0,
        "reversal": reversal,
    }


def case(
    margin: float | None,
    located: bool = True,
    *,
    distance: int = 0,
    prop: dict[str, Any] | None = None,
    slice_: str = "same_line",
    repo: str = "r",
    reversal: bool = False,
) -> GateCase:
    if margin is None:  # no answer passed the filters
        return GateCase(repo, slice_, "m", None, None, prop)
    f = Features(margin, margin, 4, distance, "replacement", False, 0)
    return GateCase(repo, slice_, "m", f, verdict(located, reversal), prop)


SHOW_ALL = AcceptanceModel(threshold=0.01)
SHOW_NONE = AcceptanceModel(threshold=0.99)


@pytest.mark.parametrize(
    ("c", "gate", "shown", "located"),
    [
        (case(0.9), SHOW_ALL, 1, 1),  # the model's, at the caret
        (case(0.9), SHOW_NONE, 0, 0),  # held back, nothing else
        (case(0.9, distance=0, prop=verdict(False)), SHOW_ALL, 1, 1),  # at the caret: first
        (case(0.9, distance=3, prop=verdict(False)), SHOW_ALL, 1, 0),  # elsewhere: propagation
        (case(0.9, False, distance=3), SHOW_ALL, 1, 0),  # elsewhere, alone
        (case(0.9, prop=verdict(True)), SHOW_NONE, 1, 1),  # held back: propagation's
        (case(0.9, reversal=True), SHOW_ALL, 0, 0),  # a revert is never offered
        (case(None, prop=verdict(True, reversal=True)), SHOW_ALL, 0, 0),
        (case(None), SHOW_ALL, 0, 0),
    ],
)
def test_the_both_arm_under_a_gate_follows_the_session(
    c: GateCase, gate: AcceptanceModel, shown: int, located: int
) -> None:
    fig = both_under([c], gate)
    assert (fig["shown"], fig["located"]) == (shown, located)


def test_figures_over_several_cases() -> None:
    cases = [
        case(0.9),
        case(0.1, False, slice_="nothing_remains"),
        case(None, slice_="nothing_remains"),
        case(None),
    ]
    fig = both_under(cases, PRIOR)
    assert fig["cases"] == 4 and fig["shown"] == 1 and fig["show_rate"] == 0.25
    assert fig["location_accuracy_when_shown"] == 1.0 and fig["false_show_rate"] == 0.0
    everything = both_under(cases, SHOW_ALL)
    assert everything["location_accuracy_when_shown"] == 0.5
    assert everything["false_show_rate"] == 0.5 and everything["model_show_rate"] == 0.5


def test_cross_validation_fits_on_two_repositories_and_tests_on_the_third() -> None:
    # sure answers right, unsure ones wrong, in every repository: the chosen threshold hides
    # the unsure ones in each held-out repository
    cases = [
        case(m, m > 0.6, repo=repo)
        for repo in ("a", "b", "c")
        for m in (0.95, 0.9, 0.85, 0.8, 0.4, 0.35, 0.3, 0.25) * 5
    ]
    study = gate_cv(cases, label="located", target=0.9)
    assert set(study["folds"]) == {"a", "b", "c"}
    t = study["threshold"]
    assert t is not None and len(study["weights"]) == len(PRIOR.weights)
    for fold in study["folds"].values():
        assert fold["fitted"]["location_accuracy_when_shown"] >= 0.9
        assert fold["fitted"]["show_rate"] == 0.5  # the sure half
        assert fold["hand_set"]["cases"] == fold["fitted"]["cases"] == 40
    # the lowest such threshold: one step lower, some repository falls short
    lower = [row for row in study["sweep"] if row["threshold"] < t]
    assert all(row["worst_fold"] < 0.9 for row in lower)
    assert study["pooled"]["fitted"]["location_accuracy_when_shown"] >= 0.9


def test_one_lucky_repository_does_not_choose_the_threshold() -> None:
    # everything is right in "a" and "b", nothing in "c": no threshold serves every repository
    cases = [case(m, repo != "c", repo=repo) for repo in ("a", "b", "c") for m in (0.9, 0.5) * 4]
    study = gate_cv(cases, target=0.6)
    assert study["threshold"] is None
    assert all(f["fitted"] is None for f in study["folds"].values())


def test_gate_cases_read_a_results_samples() -> None:
    f = Features(0.8, 0.5, 3, 0, "insertion", True, 0).to_json()
    result = {
        "samples": [
            {
                "repo": "x",
                "slice": "same_line",
                "arms": {
                    "propagation": {"verdict": None},
                    "model:m": {"candidate": {"features": f, "p": 0.5, "verdict": verdict(True)}},
                    "both:m": {},
                },
            },
            {
                "repo": "x",
                "slice": "elsewhere",
                "arms": {"propagation": {"verdict": verdict(True)}, "model:m": {}},
            },
        ]
    }
    got = gate_cases(result)
    assert [(g.repo, g.model, g.features is not None) for g in got] == [
        ("x", "m", True),
        ("x", "m", False),
    ]
    assert got[1].propagation == verdict(True)
