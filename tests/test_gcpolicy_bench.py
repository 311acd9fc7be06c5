"""``bench lsp --ui`` runs the app's collector policy and explains its stalls: a real window,
the real language servers (basedpyright and ruff, installed by the run command), one round."""

from __future__ import annotations

import os

import pytest


def test_lsp_ui_reports_the_policy_the_collections_and_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bench.lsp_ui import measure_ui

    monkeypatch.delenv("FORECODE_GC_POLICY", raising=False)
    for key in ("FORECODE_CONFIG_DIR", "FORECODE_DATA_DIR", "FORECODE_LSP"):
        monkeypatch.setenv(key, os.environ.get(key, ""))  # measure_ui changes them: undone after
    result = measure_ui(1)
    assert result["ui_servers_reported"] is True
    assert result["gc_policy"] == "idle"
    assert set(result["gc_idle_collections"]) == {"light", "deep"}
    assert len(result["gc_deep_log"]) == result["gc_idle_collections"]["deep"]
    assert result["ui_probe_ticks"] > 100
    assert len(result["ui_stalls_over_16ms_detail"]) == result["ui_stalls_over_16ms"]
    rss = result["ui_rss_mb"]
    assert 0 < rss["start"] <= rss["max"] and len(rss["by_round"]) == 2
