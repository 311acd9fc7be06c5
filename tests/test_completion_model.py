"""``CompletionModel`` (forecode_core.completion.model): the real engine and the worker's
scripted fake (tests/helpers/fake_engine.py) both satisfy it, so the fake cannot drift from the
engine it stands in for. Checked here by signature (every parameter the protocol names, with
its kind and default) and statically by mypy (``_conforms`` at the end of both modules)."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from forecode_core.completion.model import CompletionModel, RewriteModel
from local_models.engine import Engine
from tests.helpers.fake_engine import FakeEngine

ROOT = Path(__file__).resolve().parent.parent


def members(protocol: type) -> list[str]:
    """The protocol's methods (not its properties), its own and inherited."""
    names: set[str] = set()
    for klass in protocol.__mro__:
        if klass is object or klass.__name__ == "Protocol" or klass.__name__ == "Generic":
            continue
        for name, value in vars(klass).items():
            if not name.startswith("_") and inspect.isfunction(value):
                names.add(name)
    return sorted(names)


def check_signature(protocol: type, impl: type, name: str) -> None:
    want = inspect.signature(getattr(protocol, name)).parameters
    got = inspect.signature(getattr(impl, name)).parameters
    for pname, p in want.items():
        assert pname in got, f"{impl.__name__}.{name} lacks {pname!r}"
        q = got[pname]
        assert q.kind == p.kind, f"{impl.__name__}.{name}({pname}): {q.kind} != {p.kind}"
        assert q.default == p.default, (
            f"{impl.__name__}.{name}({pname}): default {q.default!r} != {p.default!r}"
        )
    for pname, q in got.items():
        if pname not in want:
            optional = q.default is not inspect.Parameter.empty or q.kind in (
                inspect.Parameter.VAR_POSITIONAL,
                inspect.Parameter.VAR_KEYWORD,
            )
            assert optional, f"{impl.__name__}.{name} requires {pname!r}, unknown to callers"


@pytest.mark.parametrize(
    ("protocol", "impl"),
    [(CompletionModel, FakeEngine), (CompletionModel, Engine), (RewriteModel, Engine)],
    ids=["fake", "engine", "engine-rewrite"],
)
def test_every_method_takes_what_the_protocol_names(protocol: type, impl: type) -> None:
    names = members(protocol)
    assert {"complete", "warm", "reuse_cost", "tokenize", "close"} <= set(names)
    for name in names:
        check_signature(protocol, impl, name)


def test_the_fake_is_a_completion_model_at_run_time(tmp_path: Path) -> None:
    fake: Any = FakeEngine(tmp_path / "m.gguf")
    assert isinstance(fake, CompletionModel)
    assert fake.n_ctx == fake.info.context_length
    done = fake.complete(fake.tokenize("@@chunks=2"), max_tokens=8, fresh_from=3)
    assert (done.text, done.stop_reason) == ("t0 t1 ", "eos")
    assert type(done.metrics) is type(fake.totals)  # the engine's own Metrics


def test_mypy_checks_the_engine_and_the_fake_against_the_protocol() -> None:
    """Both modules end with ``_conforms(x) -> Protocol: return x``: mypy fails on any
    difference a caller could notice (a parameter, a default's type, a return type)."""
    files = ["local_models/engine/core.py", "tests/helpers/fake_engine.py"]
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--follow-imports=silent", *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
