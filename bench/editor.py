"""The ``editor`` benchmark: opening and scrolling a 100,000-line Python file.

Two candidates, alternated in the same run (their order flips every round) so that a noisy
machine slows both alike; medians over the rounds are reported, and the ratios are the figures to
compare between runs:

- Forecode: ``Document.open(path, Settings())`` as the app does it (read, decode, pick the
  language and lexer, set the text), then show the widget at 1200x800 and process events until its
  first paint (the highlighted first screen) is done. ``open_100k_lines_s``.
- Baseline: a plain ``QPlainTextEdit`` (same monospace font and size, no wrapping, no
  highlighting) that reads the bytes, decodes UTF-8, ``setPlainText``, shows at 1200x800 and
  processes events until its first paint. ``plain_text_edit_s``.

``ratio`` = open_100k_lines_s / plain_text_edit_s: below 1 means Forecode opens faster.

Also: setting the whole text alone on an existing, shown widget (``set_text_s``,
``plain_set_text_s``), and paging down from the top right after opening, one screen per frame,
timing each frame (scroll + synchronous repaint; pending events are processed between frames,
untimed, as the event loop would between key presses): ``scroll_frame_p50_ms`` /
``_p95_ms`` / ``_max_ms`` for Forecode and ``plain_scroll_frame_*`` for the baseline, over the
frames of all rounds, and ``scroll_ratio_p95``.

The key names keep ``100k`` whatever ``--lines`` is, so results stay comparable by key; ``lines``
and ``bytes`` say what was measured.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from importlib import metadata as _pkg_metadata
from pathlib import Path
from typing import Any

# Before Qt is imported: headless unless the caller chose a platform.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6 import __version__ as _pyside_version
from PySide6.QtCore import (
    QCoreApplication,
    QEvent,
    QObject,
    QtMsgType,
    qInstallMessageHandler,
    qVersion,
)
from PySide6.QtGui import QFont, QFontDatabase
from PySide6.QtWidgets import QApplication, QPlainTextEdit, QWidget

from app.ui.document import Document
from forecode_core.store.settings import Settings
from forecode_core.text.languages import language_for_path

from ._common import median, percentile

__all__ = ["DEFAULT_ROUNDS", "add_arguments", "generate_python", "run"]

DEFAULT_ROUNDS = 5
DEFAULT_LINES = 100_000
DEFAULT_SCROLL_PAGES = 200
WIDTH, HEIGHT = 1200, 800
WARMUP_LINES = 2_000
SEED = 20240611


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lines",
        type=int,
        default=DEFAULT_LINES,
        help=f"lines in the generated Python file (default {DEFAULT_LINES:,})",
    )
    parser.add_argument(
        "--scroll-pages",
        type=int,
        default=DEFAULT_SCROLL_PAGES,
        help="page-downs timed per round and candidate, from the top "
        f"(default {DEFAULT_SCROLL_PAGES}; fewer if the file is shorter)",
    )


# --- the generated file ------------------------------------------------------------------------

_WORDS = (
    "value",
    "items",
    "index",
    "result",
    "config",
    "buffer",
    "token",
    "node",
    "parent",
    "child",
    "cache",
    "count",
    "offset",
    "limit",
    "name",
    "path",
    "line",
    "column",
    "text",
    "state",
    "event",
    "handler",
    "request",
    "response",
    "payload",
    "session",
    "user",
    "record",
    "entry",
    "scope",
    "symbol",
    "frame",
    "window",
    "layout",
    "model",
    "view",
)
_TYPES = (
    "int",
    "str",
    "float",
    "bool",
    "bytes",
    "list[str]",
    "dict[str, int]",
    "Path",
    "Node | None",
    "Sequence[int]",
    "Mapping[str, Any]",
    "tuple[int, int]",
)
_PHRASES = (
    "Return the cached value when it is still fresh.",
    "Split the buffer into tokens and keep their offsets.",
    "Walk the tree depth-first and collect the matching nodes.",
    "Normalise the path so that comparisons are stable across platforms.",
    "The caller owns the returned list; it may be modified freely.",
    "Raise ValueError when the range is empty or reversed.",
    "Naïve implementation — good enough for files under a few MB.",
    "Keep the order of insertion (dicts preserve it since 3.7).",
    "Convert the column from UTF-8 bytes to characters → for display.",
    "Handles “smart quotes” and other non-ASCII text, e.g. café, 日本語.",
)
_STRINGS = (
    "utf-8",
    "replace",
    "application/json",
    "%Y-%m-%d",
    "forecode",
    "→",
    "{}:{}",
    "missing value",
    "no such file",
    "ok",
    "déjà vu",
    "  ",
    "\\n",
    "\\t",
)


class _Writer:
    """Emits indented lines of plausible, varied Python from a seeded random generator."""

    def __init__(self, rnd: random.Random) -> None:
        self.rnd = rnd
        self.lines: list[str] = []
        self.counter = 0

    def name(self) -> str:
        self.counter += 1
        w = self.rnd.choice(_WORDS)
        return f"{w}_{self.counter % 97}" if self.rnd.random() < 0.2 else w

    def emit(self, depth: int, text: str = "") -> None:
        self.lines.append(("    " * depth + text) if text else "")

    def expr(self) -> str:
        r, n = self.rnd, self.name
        kind = r.randrange(10)
        if kind == 0:
            return f"{n()} + {r.randrange(1000)}"
        if kind == 1:
            literal = r.choice(_STRINGS).replace("{", "{{").replace("}", "}}")
            return f'f"{{{n()}}}: {{{n()}!r}} {literal}"'
        if kind == 2:
            return f"[{n()} for {n()} in {n()} if {n()} is not None]"
        if kind == 3:
            return f"self.{n()}.get({r.choice(_STRINGS)!r}, {r.randrange(64)})"
        if kind == 4:
            return f"{n()}({n()}, {n()}={r.choice(('True', 'False', 'None'))})"
        if kind == 5:
            return f"{r.choice(_STRINGS)!r}.join({n()})"
        if kind == 6:
            return f"{n()}[{r.randrange(8)}:{r.randrange(8, 64)}]"
        if kind == 7:
            return f"0x{r.randrange(1 << 16):04X} & {n()}"
        if kind == 8:
            return f"len({n()}) * {r.random():.3f}"
        return n()

    def statements(self, depth: int, count: int) -> None:
        r = self.rnd
        for _ in range(count):
            kind = r.randrange(16)
            if kind < 5:
                self.emit(depth, f"{self.name()} = {self.expr()}")
            elif kind == 5:  # a comment, then the code it talks about
                self.emit(depth, f"# {r.choice(_PHRASES)}")
                self.emit(depth, f"{self.name()} = {self.expr()}")
            elif kind == 6 and depth < 4:
                self.emit(
                    depth, f"if {self.name()} {r.choice(('<', '>=', '==', 'is'))} {self.expr()}:"
                )
                self.statements(depth + 1, r.randint(1, 3))
                if r.random() < 0.4:
                    self.emit(depth, "else:")
                    self.statements(depth + 1, r.randint(1, 2))
            elif kind == 7 and depth < 4:
                self.emit(depth, f"for {self.name()} in {self.expr()}:")
                self.statements(depth + 1, r.randint(1, 3))
            elif kind == 8 and depth < 4:
                self.emit(depth, "try:")
                self.statements(depth + 1, r.randint(1, 2))
                self.emit(
                    depth, f"except ({r.choice(('KeyError', 'OSError'))}, ValueError) as exc:"
                )
                self.emit(depth + 1, f"raise RuntimeError({r.choice(_STRINGS)!r}) from exc")
            elif kind == 9:
                self.emit(depth, f"{self.name()} = {{")
                for _ in range(r.randint(2, 5)):
                    self.emit(depth + 1, f"{self.name()!r}: {self.expr()},")
                self.emit(depth, "}")
            elif kind == 10:
                self.emit(
                    depth,
                    f"self.{self.name()} += {r.randrange(1, 10)}  # {r.choice(_PHRASES)[:24]}",
                )
            elif kind == 11:
                self.emit(depth, f"log.debug({r.choice(_STRINGS)!r}, {self.name()})")
            elif kind == 12:
                self.emit(depth, f"assert {self.name()}, {r.choice(_PHRASES)!r}")
            else:
                self.emit(depth, f"{self.name()}.append({self.expr()})")

    def function(self, depth: int, method: bool) -> None:
        r = self.rnd
        if r.random() < 0.2:
            self.emit(
                depth,
                r.choice(("@property", "@staticmethod", "@lru_cache(maxsize=128)", "@override")),
            )
        names = dict.fromkeys(self.name() for _ in range(r.randint(0, 3)))  # no duplicates
        params = [f"{name}: {r.choice(_TYPES)}" for name in names]
        if method:
            params.insert(0, "self")
        prefix = "async def" if r.random() < 0.1 else "def"
        self.emit(depth, f"{prefix} {self.name()}({', '.join(params)}) -> {r.choice(_TYPES)}:")
        if r.random() < 0.5:
            self.emit(depth + 1, f'"""{r.choice(_PHRASES)}"""')
        elif r.random() < 0.5:
            self.emit(depth + 1, f'"""{r.choice(_PHRASES)}')
            self.emit(depth + 1)
            self.emit(depth + 1, r.choice(_PHRASES))
            self.emit(depth + 1, '"""')
        self.statements(depth + 1, r.randint(2, 9))
        self.emit(depth + 1, f"return {self.expr()}")

    def klass(self) -> None:
        r = self.rnd
        if r.random() < 0.3:
            self.emit(0, "@dataclass(frozen=True)")
        base = r.choice(("", "(Base)", "(QObject)", "(Protocol)", "(Generic[T])"))
        self.emit(0, f"class {self.name().title().replace('_', '')}{base}:")
        self.emit(1, f'"""{r.choice(_PHRASES)}"""')
        self.emit(0)
        for _ in range(r.randint(1, 4)):
            self.emit(1, f"{self.name()}: {r.choice(_TYPES)} = {r.randrange(100)}")
        for _ in range(r.randint(2, 6)):
            self.emit(0)
            self.function(1, method=True)

    def block(self) -> None:
        r = self.rnd
        kind = r.random()
        if kind < 0.45:
            self.klass()
        elif kind < 0.85:
            self.function(0, method=False)
        elif kind < 0.95:
            self.emit(0, f"{self.name().upper()} = (")
            for _ in range(r.randint(3, 12)):
                self.emit(1, f"{r.choice(_STRINGS)!r},  # {r.choice(_WORDS)}")
            self.emit(0, ")")
        else:
            self.emit(0, f"# {'-' * 30} {r.choice(_WORDS)} {'-' * 30}")
        self.emit(0)
        self.emit(0)


def _header() -> Iterator[str]:
    yield '"""A generated module for the editor benchmark: varied, realistic-looking Python."""'
    yield ""
    yield "from __future__ import annotations"
    yield ""
    yield "import logging"
    yield "from collections.abc import Mapping, Sequence"
    yield "from dataclasses import dataclass"
    yield "from functools import lru_cache"
    yield "from pathlib import Path"
    yield "from typing import Any, Generic, Protocol, TypeVar, override"
    yield ""
    yield "log = logging.getLogger(__name__)"
    yield 'T = TypeVar("T")'
    yield ""
    yield ""


def generate_python(lines: int, seed: int = SEED) -> str:
    """``lines`` lines of Python (each ending in "\\n"), the same for the same seed.

    Whole top-level blocks are emitted; the last partial block is replaced by comment lines so
    the file stays well-formed.
    """
    writer = _Writer(random.Random(seed))
    out = list(_header())[:lines]
    while len(out) < lines:
        writer.lines = []
        writer.block()
        if len(out) + len(writer.lines) > lines:
            out.extend(f"# filler line {i}" for i in range(lines - len(out)))
        else:
            out.extend(writer.lines)
    return "\n".join(out) + "\n"


# --- measuring ---------------------------------------------------------------------------------


class _PaintWatcher(QObject):
    """Counts the paint events a widget receives."""

    def __init__(self, widget: QWidget) -> None:
        super().__init__()
        self.paints = 0
        widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint:
            self.paints += 1
        return False


def _show_and_paint(app: QApplication, window: QWidget, viewport: QWidget) -> bool:
    """Show ``window`` at WIDTHxHEIGHT and process events until ``viewport`` has painted.

    Returns True when painting had to be forced with ``repaint()`` (events did not paint it).
    """
    watcher = _PaintWatcher(viewport)
    window.resize(WIDTH, HEIGHT)
    window.show()
    for _ in range(10):
        app.processEvents()
        if watcher.paints:
            break
    forced = not watcher.paints
    if forced:
        viewport.repaint()
    viewport.removeEventFilter(watcher)
    watcher.deleteLater()
    return forced


def _dispose(app: QApplication, widget: QWidget) -> None:
    widget.close()
    widget.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    app.processEvents()


def _monospace() -> QFont:
    """The font Forecode's editor uses with default settings (the platform's fixed font)."""
    font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
    font.setPointSize(Settings().font_size)
    return font


def _plain_widget() -> QPlainTextEdit:
    widget = QPlainTextEdit()
    widget.setFont(_monospace())
    widget.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)  # Forecode's default: no wrap
    return widget


class _Round:
    """One candidate's measurement in one round."""

    def __init__(self) -> None:
        self.open_s = 0.0
        self.forced_paint = False
        self.frames_s: list[float] = []
        self.lines_per_page = 0
        self.set_text_s = 0.0
        self.styled = True  # Forecode: the first screen was highlighted when first painted


def _forecode_open(app: QApplication, path: Path, settings: Settings, pages: int) -> _Round:
    result = _Round()
    gc.collect()
    start = time.perf_counter()
    doc = Document.open(path, settings)
    while doc.loading:  # over 1 MiB: read on a worker thread (text.large_files)
        app.processEvents()
        time.sleep(0.0005)
    result.forced_paint = _show_and_paint(app, doc, doc.editor.viewport())
    result.open_s = time.perf_counter() - start
    editor, viewport = doc.editor, doc.editor.viewport()
    # Check (untimed) that what was painted was the highlighted first screen.
    screen_end = editor.positionFromLine(editor.firstVisibleLine() + editor.linesOnScreen())
    result.styled = editor.lexer() != 0 and editor.endStyled() >= min(
        screen_end, editor.textLength()
    )
    page = result.lines_per_page = max(1, editor.linesOnScreen())
    last = max(0, editor.lineCount() - page)
    for i in range(1, pages + 1):
        line = i * page
        if line > last:
            break
        t0 = time.perf_counter()
        editor.setFirstVisibleLine(line)
        viewport.repaint()
        result.frames_s.append(time.perf_counter() - t0)
        app.processEvents()
    _dispose(app, doc)
    return result


def _plain_open(app: QApplication, path: Path, settings: Settings, pages: int) -> _Round:
    del settings
    result = _Round()
    gc.collect()
    start = time.perf_counter()
    with open(path, "rb") as f:
        text = f.read().decode("utf-8")
    widget = _plain_widget()
    widget.setPlainText(text)
    result.forced_paint = _show_and_paint(app, widget, widget.viewport())
    result.open_s = time.perf_counter() - start
    bar, viewport = widget.verticalScrollBar(), widget.viewport()
    page = result.lines_per_page = max(1, bar.pageStep())
    for i in range(1, pages + 1):
        value = i * page
        if value > bar.maximum():
            break
        t0 = time.perf_counter()
        bar.setValue(value)
        viewport.repaint()
        result.frames_s.append(time.perf_counter() - t0)
        app.processEvents()
    _dispose(app, widget)
    return result


def _forecode_set_text(app: QApplication, path: Path, settings: Settings) -> float:
    text = path.read_bytes().decode("utf-8")
    doc = Document.untitled(1, settings)
    doc.editor.set_language(language_for_path(path, text[:200].split("\n", 1)[0]))
    _show_and_paint(app, doc, doc.editor.viewport())
    gc.collect()
    start = time.perf_counter()
    doc.editor.set_text(text)
    elapsed = time.perf_counter() - start
    _dispose(app, doc)
    return elapsed


def _plain_set_text(app: QApplication, path: Path, settings: Settings) -> float:
    del settings
    text = path.read_bytes().decode("utf-8")
    widget = _plain_widget()
    _show_and_paint(app, widget, widget.viewport())
    gc.collect()
    start = time.perf_counter()
    widget.setPlainText(text)
    elapsed = time.perf_counter() - start
    _dispose(app, widget)
    return elapsed


def _interleaved(
    rounds: int, first: Callable[[], Any], second: Callable[[], Any]
) -> tuple[list[Any], list[Any]]:
    """Run the two candidates ``rounds`` times each, alternating which goes first."""
    a: list[Any] = []
    b: list[Any] = []
    for r in range(rounds):
        if r % 2 == 0:
            a.append(first())
            b.append(second())
        else:
            b.append(second())
            a.append(first())
        gc.collect()
    return a, b


def _frame_stats(prefix: str, rounds: list[_Round]) -> dict[str, float | int]:
    frames_ms = [f * 1000 for r in rounds for f in r.frames_s]
    if not frames_ms:
        return {f"{prefix}frames": 0}
    return {
        f"{prefix}p50_ms": round(percentile(frames_ms, 50), 3),
        f"{prefix}p95_ms": round(percentile(frames_ms, 95), 3),
        f"{prefix}max_ms": round(max(frames_ms), 3),
        f"{prefix}frames": len(frames_ms),
    }


def _max_rss_mb() -> float | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    # ru_maxrss is in KiB on Linux, bytes on macOS.
    scale = 1 if os.uname().sysname == "Darwin" else 1024
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20, 1)


def _quiet_offscreen_messages() -> None:
    """Drop the offscreen plugin's note on every show(); pass every other Qt message on."""

    def handler(kind: QtMsgType, _context: object, message: str) -> None:
        if "propagateSizeHints" in message:
            return
        print(f"qt {kind.name}: {message}", file=sys.stderr)

    qInstallMessageHandler(handler)


def run(args: argparse.Namespace) -> dict[str, Any]:
    lines, rounds = int(args.lines), int(args.rounds)
    pages = max(0, int(args.scroll_pages))
    if lines < 1:
        raise SystemExit("--lines must be at least 1")
    _quiet_offscreen_messages()
    app = QApplication.instance() or QApplication(["forecode-bench"])
    assert isinstance(app, QApplication)
    settings = Settings()
    with tempfile.TemporaryDirectory(prefix="forecode-bench-") as tmp:
        path = Path(tmp) / "big_module.py"
        path.write_bytes(generate_python(lines).encode("utf-8"))
        size = path.stat().st_size
        # Warm up both (fonts, lexer library, code paths) on a small file, untimed.
        warm = Path(tmp) / "warm_up.py"
        warm.write_bytes(generate_python(min(lines, WARMUP_LINES), seed=1).encode("utf-8"))
        for fn in (_forecode_open, _plain_open):
            fn(app, warm, settings, 3)
        for fn2 in (_forecode_set_text, _plain_set_text):
            fn2(app, warm, settings)

        ours, plain = _interleaved(
            rounds,
            lambda: _forecode_open(app, path, settings, pages),
            lambda: _plain_open(app, path, settings, pages),
        )
        set_ours, set_plain = _interleaved(
            rounds,
            lambda: _forecode_set_text(app, path, settings),
            lambda: _plain_set_text(app, path, settings),
        )

    open_s, plain_s = median(r.open_s for r in ours), median(r.open_s for r in plain)
    result: dict[str, Any] = {
        "open_100k_lines_s": round(open_s, 6),
        "plain_text_edit_s": round(plain_s, 6),
        "ratio": round(open_s / plain_s, 3),
        "set_text_s": round(median(set_ours), 6),
        "plain_set_text_s": round(median(set_plain), 6),
        "set_text_ratio": round(median(set_ours) / median(set_plain), 3),
    }
    scroll = _frame_stats("scroll_frame_", ours)
    plain_scroll = _frame_stats("plain_scroll_frame_", plain)
    result.update(scroll)
    result.update(plain_scroll)
    if "scroll_frame_p95_ms" in scroll and "plain_scroll_frame_p95_ms" in plain_scroll:
        result["scroll_ratio_p95"] = round(
            scroll["scroll_frame_p95_ms"] / plain_scroll["plain_scroll_frame_p95_ms"], 3
        )
    result.update(
        {
            "scroll_lines_per_page": ours[0].lines_per_page,
            "plain_scroll_lines_per_page": plain[0].lines_per_page,
            "lines": lines,
            "bytes": size,
            "rounds": rounds,
            "samples": {
                "open_100k_lines_s": [round(r.open_s, 6) for r in ours],
                "plain_text_edit_s": [round(r.open_s, 6) for r in plain],
                "set_text_s": [round(t, 6) for t in set_ours],
                "plain_set_text_s": [round(t, 6) for t in set_plain],
            },
            "forced_first_paints": sum(r.forced_paint for r in ours + plain),
            "first_screen_styled": all(r.styled for r in ours),
            "window": f"{WIDTH}x{HEIGHT}",
            "baseline": "QPlainTextEdit, same fixed font and size, no wrap, no highlighting",
            "qt": qVersion(),
            "pyside6": _pyside_version,
            "pyside6_scintilla": _package_version("pyside6-scintilla"),
            "qpa_platform": app.platformName(),
            "max_rss_mb": _max_rss_mb(),
        }
    )
    return result


def _package_version(name: str) -> str | None:
    try:
        return _pkg_metadata.version(name)
    except _pkg_metadata.PackageNotFoundError:
        return None
