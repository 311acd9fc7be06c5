"""``bench lsp``'s language-server keys with the real servers, one round (no timings judged:
the keys, their relations, and which server spoke first)."""

from __future__ import annotations

import pytest

from app.services.lsp import session
from bench.lsp import measure_servers

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("pull", [True, False])
def test_measure_servers_reports_both_servers_first_reports(
    pull: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(session, "PULL_DIAGNOSTICS", pull)
    result = measure_servers("store/settings.py", 1)
    assert result["diagnostics"] == ("pull" if pull else "push")
    first = {
        "basedpyright": result["first_diagnostics_s"],
        "ruff": result["ruff_first_diagnostics_s"],
    }
    assert result["first_diagnostics_any_s"] == min(first.values())
    assert first[result["first_diagnostics_server"]] == result["first_diagnostics_any_s"]
    for key in ("recheck_p50_ms", "tier1_ms_per_file", "hover_p50_ms", "definition_p50_ms"):
        assert result[key] > 0
    assert result["hovers_with_text"] == result["requests"] > 0
    assert result["definitions_found"] == result["requests"]
    assert result["server_messages"] == []
