"""The LSP thread's start work made polite to the UI thread (``app.services.lsp.warm``): the
GIL's switch interval lowered while it runs and restored after, the converter's code generated
before any message needs it, and the hub doing it first on its own thread."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from app.services.lsp import hub as hub_module
from app.services.lsp import warm
from app.services.lsp.hub import LspHub

REPO = Path(__file__).resolve().parents[1]


def test_short_switches_lowers_the_interval_inside_and_restores_it_after() -> None:
    before = sys.getswitchinterval()
    with warm.short_switches(0.0005):
        assert sys.getswitchinterval() == pytest.approx(0.0005)
        with warm.short_switches(0.0005):  # nested: the outer one restores
            assert sys.getswitchinterval() == pytest.approx(0.0005)
        assert sys.getswitchinterval() == pytest.approx(0.0005)
    assert sys.getswitchinterval() == pytest.approx(before)


def test_short_switches_from_two_threads_restores_the_first_interval() -> None:
    """Overlapping uses on two threads (the editor's hub and the shadow's): the interval stays
    short until the last one leaves, then is what it was before the first."""
    before = sys.getswitchinterval()
    inside = threading.Event()
    leave = threading.Event()

    def other() -> None:
        with warm.short_switches(0.0005):
            inside.set()
            leave.wait(5)

    thread = threading.Thread(target=other)
    thread.start()
    assert inside.wait(5)
    with warm.short_switches(0.0005):
        pass
    assert sys.getswitchinterval() == pytest.approx(0.0005)  # the other thread is still in
    leave.set()
    thread.join(5)
    assert sys.getswitchinterval() == pytest.approx(before)


_FRESH = textwrap.dedent(
    """
    import importlib.abc, json, sys

    seen = {}

    class Spy(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name in ("lsprotocol.types", "pygls.lsp.client", "cattrs"):
                seen[name] = sys.getswitchinterval()
            return None

    sys.meta_path.insert(0, Spy())
    from app.services.lsp import warm

    took = warm.prepare()
    from lsprotocol import types as lsp
    from app.services.lsp import session

    def misses(converter):
        # hooks resolved (and generated, for attrs classes) since the converter was made
        return (converter._structure_func.dispatch.cache_info().misses
                + converter._unstructure_func.dispatch.cache_info().misses)

    def exchange(converter):
        # the hooks of the messages a session sends and receives (a session's converter
        # asks for exactly these as each message comes)
        for method in warm.MESSAGE_METHODS:
            for message_type in lsp.METHOD_TO_TYPES[method][:2]:
                if message_type is not None:
                    converter.get_structure_hook(message_type)
                    converter.get_unstructure_hook(message_type)

    before = misses(session._CONVERTER)
    exchange(session._CONVERTER)
    after_prepare = misses(session._CONVERTER) - before
    fresh = session._converter()  # a converter nobody prepared: the check can fail
    before = misses(fresh)
    exchange(fresh)
    unprepared = misses(fresh) - before
    print(json.dumps({"seen": seen, "took": took, "after_prepare": after_prepare,
                      "unprepared": unprepared, "interval": sys.getswitchinterval()}))
    """
)


def test_prepare_imports_under_short_switches_and_leaves_no_code_to_generate() -> None:
    """In a fresh interpreter: pygls, cattrs and lsprotocol are imported with the interval at
    ``SWITCH_S`` and it is 5 ms again after; the session's converter then resolves (generates)
    no hook for any message type it exchanges, where an unprepared converter must."""
    out = subprocess.run(
        [sys.executable, "-c", _FRESH], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    import json

    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(result["seen"]) == {"lsprotocol.types", "pygls.lsp.client", "cattrs"}
    assert all(v == pytest.approx(warm.SWITCH_S) for v in result["seen"].values()), result
    assert result["interval"] == pytest.approx(0.005)
    assert result["took"] > 0
    assert result["after_prepare"] == 0
    assert result["unprepared"] > 0


def test_the_hub_prepares_first_on_its_own_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """A document opened right after the hub is made is handled after ``prepare``, which runs
    on the ``forecode-lsp`` thread (never on the caller's)."""
    order: list[tuple[str, str]] = []

    def fake_prepare() -> float:
        order.append(("prepare", threading.current_thread().name))
        return 0.0

    real_open = hub_module.LspHub._open_new

    def open_new(self: LspHub, *args: object) -> None:
        order.append(("open", threading.current_thread().name))
        real_open(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(warm, "prepare", fake_prepare)
    monkeypatch.setattr(hub_module.LspHub, "_open_new", open_new)
    hub = LspHub(lambda *_a: None, lambda _s: None, ())
    try:
        hub.open("file:///x.txt", "plaintext", "text", Path("/"))
        hub.call(lambda: None).result(10)
    finally:
        hub.shutdown(2.0)
    assert order == [("prepare", "forecode-lsp"), ("open", "forecode-lsp")]
