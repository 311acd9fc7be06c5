"""``python -m bench index --quick`` runs end to end (the real service on loopback, the real
embedding model, a slice of the standard library) and reports every figure.

Only the shape of the result and the counts that do not depend on the machine are checked,
never a timing: machines are shared and noisy.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_bench import check_metadata

from bench import BENCHMARKS
from bench.index import strip_docstrings

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_index_benchmark_quick_run_reports_every_figure(tmp_path: Path) -> None:
    assert BENCHMARKS["index"] == "bench.index"
    out = tmp_path / "out.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "index", "--json", str(out), "--quick"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    check_metadata(result, "index")
    assert set(result["recall_at_10"]) == {"vector", "lexical", "combined", "combined_reranked"}
    for mode, recall in result["recall_at_10"].items():
        assert isinstance(recall, float) and 0.0 <= recall <= 1.0, (mode, recall)
    assert max(result["recall_at_10"].values()) > 0.0  # the searches found something
    for key in ("chunks_per_s", "first_query_s", "sync_bytes_ratio"):
        assert isinstance(result[key], float) and result[key] > 0, key
    # Machine-independent counts: one GetNodes call per level plus the commit, and nothing
    # embedded by the second client.
    assert result["tree_depth"] == 4
    assert result["sync_round_trips"] == result["tree_depth"] + 1
    assert result["synthetic"]["get_nodes_calls"] == result["tree_depth"]
    assert result["second_client_embedded"] == 0
    assert result["second_client"]["embed_calls"] == 0
    assert result["index"]["chunks_embedded"] == result["index"]["chunks"] > 0
    assert result["synthetic"]["sync_bytes"] < result["synthetic"]["full_list_bytes"]
    assert result["corpus"]["queries"] > 0


def test_docstrings_are_stripped_and_kept_as_queries() -> None:
    source = (
        '"""Module doc."""\n\n\n'
        "class Shelf:\n"
        '    """A shelf."""\n\n'
        "    def count(self, books):\n"
        '        """Count the books on the shelf, including the ones lying flat."""\n'
        "        return len(books)\n\n"
        "    def empty(self):\n"
        '        """Nothing left."""\n\n\n'
        'def one_liner(): """Shares a line with its def."""\n'
    )
    result = strip_docstrings(source)
    assert result is not None
    stripped, docs = result
    assert '"""' not in stripped.replace('"""Shares a line with its def."""', "")
    assert "        pass\n" in stripped  # the body that was only a docstring
    assert docs == {
        "Shelf.count": "Count the books on the shelf, including the ones lying flat.",
        "Shelf.empty": "Nothing left.",
    }
