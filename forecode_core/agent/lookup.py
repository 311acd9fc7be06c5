"""The agent's lookups, the pure part: a plain-text search's scoring, the answers' text.

``query_words``/``score_line``: the plain-text search the agent falls back on when the
codebase index is not ready (the words of the query, a line scored by how many of them it
holds, the whole query as one more). ``hits_text``: search hits (``CodeHit``) as the model
sees them, path and line range then the lines, under a character budget, with which source
answered. ``symbol_lines``: where a name occurs in a text, uses first (a definition request
at a use lands on the definition, at the definition on itself). ``excerpt``: a few lines
around a line, numbered.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from forecode_core.index.codebase import CodeHit

__all__ = [
    "SEARCH_BUDGET",
    "excerpt",
    "hits_text",
    "query_words",
    "score_line",
    "symbol_lines",
]

SEARCH_BUDGET = 6_000  # characters of hits shown to the model for one SEARCH
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]+")
_STOP = frozenset(
    re.split(
        r"\s+",
        "the a an and or of in to for is are be it this that with on by from where how what "
        "which code function class file does do find",
    )
)
_DEFINES = re.compile(r"^\s*(?:async\s+def|def|class|function|fn|func|struct|interface|type)\s")


def query_words(query: str) -> tuple[str, ...]:
    """The query's words worth searching for (lower case, no stop words), in order."""
    words = [w.lower() for w in _WORD.findall(query)]
    return tuple(dict.fromkeys(w for w in words if w not in _STOP))


def score_line(line: str, words: Sequence[str], phrase: str) -> int:
    """How well ``line`` answers: the query's words it holds, plus one when it holds the
    whole query ``phrase`` (lower case) too; 0: not at all."""
    low = line.lower()
    score = sum(1 for w in words if w in low)
    if score and phrase and phrase in low:
        score += 1
    return score


def _hit_block(hit: CodeHit, room: int) -> str:
    head = f"{hit.path}:{hit.start_line}-{hit.end_line}"
    body = hit.text if hit.text.endswith("\n") or not hit.text else hit.text + "\n"
    if len(head) + 1 + len(body) > room:
        body = body[: max(0, room - len(head) - 20)] + "[... cut ...]\n"
    return f"{head}\n{body}"


def hits_text(hits: Sequence[CodeHit], source: str, budget: int = SEARCH_BUDGET) -> str:
    """The hits, best first, each as ``path:start-end`` and its lines, under ``budget``
    characters (the first hit is always shown, cut if need be); ``source`` first: which
    search answered."""
    if not hits:
        return f"{source}: nothing found."
    out = [f"{source}: {len(hits)} result{'s' if len(hits) != 1 else ''}, best first."]
    used = len(out[0])
    for i, hit in enumerate(hits):
        room = budget - used
        block = _hit_block(hit, room if i == 0 else budget)
        if i and len(block) > room:
            out.append(f"[... {len(hits) - i} more results left out ...]")
            break
        out.append(block)
        used += len(block)
    return "\n".join(out)


def symbol_lines(text: str, name: str) -> list[tuple[int, int]]:
    """(0-based line, column) of each whole-word occurrence of ``name`` in ``text``: the uses
    first, then the lines that define something (``def name``, ``class name``)."""
    pattern = re.compile(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])")
    uses: list[tuple[int, int]] = []
    defines: list[tuple[int, int]] = []
    for number, line in enumerate(text.split("\n")):
        found = pattern.search(line)
        if found is None:
            continue
        (defines if _DEFINES.match(line) else uses).append((number, found.start()))
    return uses + defines


def excerpt(text: str, line: int, around: int = 3) -> str:
    """The lines ``line - around`` to ``line + around`` (0-based ``line``) of ``text``, each
    numbered from 1, the line itself marked with ``>``."""
    lines = text.split("\n")
    first, last = max(0, line - around), min(len(lines), line + around + 1)
    return "\n".join(f"{'>' if i == line else ' '}{i + 1:5} {lines[i]}" for i in range(first, last))
