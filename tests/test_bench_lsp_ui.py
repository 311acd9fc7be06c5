"""``bench lsp --ui`` measures a first server start as a user's editor meets it: the window runs
in a new interpreter, where pygls, lsprotocol and cattrs are not imported yet (``bench lsp``
imports them, and generates the converter's code, before its ``--ui`` part)."""

from __future__ import annotations

import os
import sys

import pytest

from bench import lsp_ui

pytestmark = pytest.mark.slow


def test_the_ui_part_runs_where_the_lsp_libraries_are_not_imported_yet(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key in ("FORECODE_CONFIG_DIR", "FORECODE_DATA_DIR", "FORECODE_LSP"):
        monkeypatch.setenv(key, os.environ.get(key, ""))
    result = lsp_ui.measure_ui_fresh(1)
    assert result["ui_fresh_process"] is True
    assert result["ui_servers_reported"] is True
    assert result["gil_switch_interval_ms"] == pytest.approx(5.0)  # warm.py restored it
    assert len(result["ui_stalls_over_16ms_detail"]) == result["ui_stalls_over_16ms"]
    assert all("blocked" in line for line in result["ui_stalls_over_16ms_detail"])
    assert result["max_ui_blocked_ms"] >= 0


def test_the_fresh_check_sees_an_imported_library(monkeypatch: pytest.MonkeyPatch) -> None:
    """``ui_fresh_process`` is False where one of the libraries was imported before."""
    import cattrs

    printed: list[str] = []
    monkeypatch.setattr(lsp_ui, "measure_ui", lambda rounds: {"rounds": rounds})
    monkeypatch.setattr("builtins.print", lambda text: printed.append(text))
    monkeypatch.setitem(sys.modules, "cattrs", cattrs)
    lsp_ui._main(["2"])
    assert printed == ['{"rounds": 2, "ui_fresh_process": false}']


def test_the_folder_first_keys_come_from_fresh_editors_both_arms(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``bench.lsp_first``: each arm a fresh editor that opens the folder, then the file, and
    waits for both servers to name the added undefined name; no timing is judged."""
    from bench import lsp_first

    for key in ("FORECODE_CONFIG_DIR", "FORECODE_DATA_DIR", "FORECODE_LSP"):
        monkeypatch.setenv(key, os.environ.get(key, ""))
    result = lsp_first.measure_first(1)
    for key in ("folder_first_ruff_s", "folder_first_diagnostics_s"):
        assert result[key] > 0 and result[key + "_nowarm"] > 0
    assert result["folder_first_look_s"] == lsp_first.LOOK_S
