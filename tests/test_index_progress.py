"""``PassCount``: the "Indexing n/m" count of one pass never goes back and its total never
jumps when the sync starts again (pre-empted by a search) or finds new work."""

from __future__ import annotations

import pytest

from forecode_core.index.progress import PassCount


@pytest.mark.parametrize(
    ("reports", "labels"),
    [
        # one attempt, batches continuing the count
        ([(0, 100), (40, 100), (100, 100)], ["0/100", "40/100", "100/100"]),
        # pre-empted at 40, started again on the 60 left: the count goes on
        (
            [(0, 100), (40, 100), (0, 60), (30, 60), (60, 60)],
            ["0/100", "40/100", "40/100", "70/100", "100/100"],
        ),
        # pre-empted twice
        (
            [(0, 100), (25, 100), (0, 75), (25, 75), (0, 50), (50, 50)],
            ["0/100", "25/100", "25/100", "50/100", "50/100", "100/100"],
        ),
        # started again with 10 more chunks (a file changed meanwhile): n/m+k
        (
            [(0, 100), (40, 100), (0, 70), (35, 70), (70, 70)],
            ["0/100", "40/100", "40/100+10", "75/100+10", "110/100+10"],
        ),
        # started again with less left (a file deleted): that work counts as done
        ([(0, 100), (40, 100), (0, 50), (50, 50)], ["0/100", "40/100", "50/100", "100/100"]),
        # restarted with the same total (nothing embedded yet): still counted once
        ([(0, 100), (0, 100), (10, 100)], ["0/100", "0/100", "10/100"]),
    ],
)
def test_the_count_of_a_pass(reports: list[tuple[int, int]], labels: list[str]) -> None:
    count = PassCount()
    seen = []
    for done, total in reports:
        count.report(done, total)
        seen.append(count.label.removeprefix("Indexing ").removesuffix(" chunks"))
    assert seen == labels
    shown = [int(label.split("/")[0]) for label in seen]
    assert shown == sorted(shown)  # monotonic


def test_a_new_pass_counts_anew() -> None:
    count = PassCount()
    count.report(100, 100)
    fresh = PassCount()
    fresh.report(0, 5)
    assert (count.label, fresh.label) == ("Indexing 100/100 chunks", "Indexing 0/5 chunks")
