"""The ``forecode-lsp`` thread's one-time start work, done so that the UI thread keeps getting
the GIL (issue 16: "the UI never stalls more than 16 ms while servers start").

Found 2026-12-05 (``bench lsp --ui``; ``py-spy record --native --idle`` and a profile hook on
the UI thread counting its CPU time apart from its waits): at the first server start the hub's
thread imported pygls, cattrs and lsprotocol (``lsprotocol.types`` builds about a thousand
attrs classes, compiling their methods: 250-700 ms of CPU on this machine), then generated the
converter's code for each message type as its first message came (``initialize``'s answer
alone: 34 ms). All of it is Python holding the GIL, which it hands over only when another
thread has waited ``sys.getswitchinterval()`` (5 ms by default). The UI thread takes the GIL
for every Python callback Qt makes (the application's event filter on every event, the file
tree's model and delegate per row, each slot) and again after each Qt call that releases it,
dozens of times a frame; each take waited up to 5 ms, and a frame with 10-25 ms of its own
work lasted 30-300 ms. The watchdog could not see it: it needs the GIL too.

``prepare()`` does all of that once, before the first session starts, with the switch interval
at ``SWITCH_S`` (``short_switches``): the UI thread's GIL takes then wait about that long (or
for the one C call running, such as attrs compiling a class), the import's own time barely
changes. The editor's hub also starts it only once the UI thread is free (``hub.GatedHub``,
``app.ui.lsp_bridge.UiFree``): overlapping the window's paint of the files just opened, even
short takes added up (tens per frame). It generates the converter's hooks for every message type a
session sends or receives (``MESSAGE_METHODS``), so no message later pays for code generation
at the default interval (a union's members are still looked up as they first come: a few small
classes, about 2 ms each)."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["MESSAGE_METHODS", "SWITCH_S", "prepare", "prepared", "short_switches"]

# The GIL's switch interval while the heavy start work runs. 0.1 ms: the UI thread's time
# blocked in a stall 3.7-7.6 ms against 4.5-12.3 ms at 0.5 ms (bench lsp --ui, 3 runs each,
# load 8); it costs only while the UI thread waits, and the import's own calls (attrs
# compiling a class) still run whole.
SWITCH_S = 0.0001

# The methods whose messages a session exchanges (``session.Session`` and the editor's requests
# through ``LspHub.ask``/``request``): their request, notification and response types.
MESSAGE_METHODS = (
    "initialize",
    "initialized",
    "shutdown",
    "exit",
    "textDocument/didOpen",
    "textDocument/didChange",
    "textDocument/didSave",
    "textDocument/didClose",
    "textDocument/publishDiagnostics",
    "textDocument/diagnostic",
    "textDocument/hover",
    "textDocument/definition",
    "textDocument/references",
    "textDocument/prepareRename",
    "textDocument/rename",
    "workspace/configuration",
    "workspace/workspaceFolders",
    "workspace/didChangeWatchedFiles",
    "workspace/diagnostic/refresh",
    "workspace/applyEdit",
    "client/registerCapability",
    "client/unregisterCapability",
    "window/workDoneProgress/create",
    "window/logMessage",
    "window/showMessage",
    "$/progress",
    "$/cancelRequest",
)

_lock = threading.Lock()
_depth = 0
_saved = 0.0
_prepared: list[float] = []  # the seconds prepare() took, once it has run


@contextmanager
def short_switches(interval_s: float | None = None) -> Iterator[None]:
    """The GIL handed over every ``interval_s`` (``SWITCH_S`` by default; never longer than it
    was) while inside; the interval as it was after the last of nested or concurrent uses
    leaves."""
    global _depth, _saved
    with _lock:
        if _depth == 0:
            _saved = sys.getswitchinterval()
            sys.setswitchinterval(min(SWITCH_S if interval_s is None else interval_s, _saved))
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                sys.setswitchinterval(_saved)


def prepared() -> bool:
    """Whether ``prepare`` has run in this process."""
    return bool(_prepared)


def prepare() -> float:
    """Import the session's libraries and generate the converter's hooks for
    ``MESSAGE_METHODS`` under ``short_switches``; once per process (later calls return at
    once). The seconds it took (0.0 when already done). Run it on the hub's thread."""
    if _prepared:
        return 0.0
    start = time.perf_counter()
    with short_switches():
        from lsprotocol import types as lsp

        from .session import _CONVERTER

        # Twice: cattrs registers each list and mapping type's hook as it first meets it, and
        # each registration empties its cache of the attrs classes' hooks, which it then
        # generates again on their next message. The first pass registers them all, the
        # second fills the cache for good.
        for _pass in range(2):
            for method in MESSAGE_METHODS:
                _warm(_CONVERTER, lsp.METHOD_TO_TYPES[method])
    took = time.perf_counter() - start
    _prepared.append(took)
    return took


def _warm(converter: Any, types: tuple[Any, ...] | list[Any]) -> None:
    """The structure and unstructure hooks of a method's message types (its request or
    notification and its response), generated now; cattrs generates a class's nested
    classes' hooks with it."""
    for message_type in types[:2]:
        if message_type is not None:
            converter.get_structure_hook(message_type)
            converter.get_unstructure_hook(message_type)
