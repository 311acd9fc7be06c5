"""Tier 1 of the bug finder: ruff's rules that flag likely bugs with few false positives.

ruff's default selection (E4, E7, E9, F) already has pyflakes' bug rules (F821 undefined name,
F841 unused local, F811 redefinition, F632 ``is`` with a literal, F601 repeated dict key, F823
local used before assignment). ``TIER1_RULES`` names F821 and F841 so that a project's narrower
selection cannot drop them, and adds flake8-bugbear's and pylint's error rules below, each a
likely bug wherever it fires. Left out on purpose: B008 (calls in defaults: FastAPI/Typer idiom),
B018 (useless expression: notebooks, doc-like strings), B904/B905 (style of ``raise``/``zip``),
PLW* (warnings, not bugs).
"""

from __future__ import annotations

__all__ = ["TIER1_REASONS", "TIER1_RULES"]

TIER1_REASONS: dict[str, str] = {
    "F821": "undefined name",
    "F841": "local variable assigned but never used",
    "B006": "mutable default argument (shared between calls)",
    "B023": "function defined in a loop captures the loop variable late",
    "B002": "++x / --x is not an increment in Python",
    "B012": "return/break/continue in finally swallows the exception",
    "B015": "comparison whose result is unused (meant an assignment or an assert?)",
    "B020": "loop variable overrides the iterable it loops over",
    "B032": "x[k]: v is an annotation, not an assignment",
    "B033": "set literal with a duplicate value",
    "B034": "re.sub/split/subn's count or flags passed by position",
    "B035": "dict comprehension with a constant key",
    "PLE0101": "return with a value in __init__",
    "PLE0117": "nonlocal without a binding",
    "PLE0118": "name used before its global declaration",
    "PLE0643": "index out of range of a literal sequence",
    "PLE1142": "await outside an async function",
    "PLE1300": "bad %-format character",
    "PLE1307": "%-format argument of the wrong type",
}

TIER1_RULES: tuple[str, ...] = tuple(TIER1_REASONS)
