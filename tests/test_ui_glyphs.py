"""Every symbol the editor's own strings show is one the UI font can draw.

In a user run under Xvfb (DejaVu fonts, Linux's usual fallback, no emoji font) the apply
review's "🔧 Repair round 1 of 2", its "⏳ Checking…" and the Problems panel's "ⓘ" drew as
empty boxes. The strings of ``app/`` (not docstrings, not comments) are read with ``ast``
and each character beyond ASCII is looked up in the font Qt gives a label, fallbacks
included (``QFontMetrics.inFontUcs4``). Real Qt offscreen; it reads the machine's fonts, so
on a machine with an emoji font an emoji would pass here: DejaVu's set is the floor."""

from __future__ import annotations

import ast
from pathlib import Path

from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot

ROOT = Path(__file__).resolve().parent.parent / "app"
# Drawn where no font has a better sign, named here on purpose (and still a box on such a
# machine): the apply review shows a lone carriage return inside a line as U+240D.
KNOWN = {"␍"}


def _docstrings(tree: ast.AST) -> set[int]:
    """The ids of the docstring constants of a module, its classes and functions."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _shown_strings() -> list[tuple[str, int, str]]:
    out: list[tuple[str, int, str]] = []
    for path in sorted(ROOT.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _docstrings(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in skip
            ):
                out.append((str(path.relative_to(ROOT.parent)), node.lineno, node.value))
    return out


def test_the_ui_strings_use_only_glyphs_the_font_has(qtbot: QtBot) -> None:
    label = QLabel()
    qtbot.addWidget(label)
    metrics = QFontMetrics(label.font())
    missing = sorted(
        f"{where}:{line}: {ch!r} U+{ord(ch):04X}"
        for where, line, text in _shown_strings()
        for ch in set(text)
        if ord(ch) > 127 and ch not in KNOWN and not metrics.inFontUcs4(ord(ch))
    )
    assert not missing, "\n".join(missing)


def test_the_scan_sees_the_strings_it_checks() -> None:
    texts = [text for _w, _l, text in _shown_strings()]
    assert any("Repair round" in t for t in texts)  # an f-string's constant part
    assert any(t.startswith("⊗") or t == "⊗" for t in texts)  # the Problems panel's mark
