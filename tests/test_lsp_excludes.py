"""basedpyright's workspace excludes: pyright's defaults plus the root's git-ignored folders
(a table on plain data), and a real session answering its configuration with them for a
folder with a git-ignored ``build/`` of Python files (the repository's own case: 5,917 files
under build/ delayed the first squiggle)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types as lsp

from app.services.lsp.session import Session, SessionEvents
from forecode_core.lsp.servers import PRESETS, PYRIGHT_EXCLUDES, config_section, with_excludes

SECTION = "basedpyright.analysis"


@pytest.mark.parametrize(
    ("settings", "ignored", "expected"),
    [
        ({}, [], None),  # nothing ignored: unchanged, pyright keeps its defaults
        (
            {"basedpyright": {"analysis": {"typeCheckingMode": "standard"}}},
            ["build", "dist/"],
            {"typeCheckingMode": "standard", "exclude": [*PYRIGHT_EXCLUDES, "build", "dist"]},
        ),
        ({}, ["venv"], {"exclude": [*PYRIGHT_EXCLUDES, "venv"]}),
        (  # the user's own excludes win
            {"basedpyright": {"analysis": {"exclude": ["x"]}}},
            ["build"],
            {"exclude": ["x"]},
        ),
    ],
)
def test_with_excludes(
    settings: dict[str, Any], ignored: list[str], expected: dict[str, Any] | None
) -> None:
    before = repr(settings)
    out = with_excludes(settings, SECTION, ignored)
    assert repr(settings) == before  # not changed in place
    if expected is None:
        assert out is settings
    else:
        assert config_section(out, SECTION) == expected


def test_a_session_answers_basedpyright_with_the_git_ignored_folders(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("build/\nout\n")
    for name in ("build", "out", "src", ".cache"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "m.py").write_text("x = 1\n")
    events = SessionEvents(lambda *_a: None, lambda *_a: None)
    session = Session(
        PRESETS["basedpyright"],
        ["basedpyright-langserver", "--stdio"],
        tmp_path,
        events,
        init_timeout_s=1,
        request_timeout_s=1,
    )
    params = lsp.ConfigurationParams(
        items=[lsp.ConfigurationItem(section=SECTION), lsp.ConfigurationItem(section="python")]
    )
    analysis, _python = session._on_configuration(params)
    assert isinstance(analysis, dict)
    assert analysis["exclude"] == [*PYRIGHT_EXCLUDES, "build", "out"]
    assert analysis["diagnosticMode"] == "openFilesOnly"
    ruff = Session(
        PRESETS["ruff"], ["ruff", "server"], tmp_path, events, init_timeout_s=1, request_timeout_s=1
    )
    assert ruff._on_configuration(lsp.ConfigurationParams(items=[lsp.ConfigurationItem()])) == [{}]
