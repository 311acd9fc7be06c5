"""The agent's lookups (issue 17): SEARCH through the codebase index (a bounded plain-text
search when the index is not ready or off), DEFINITION and DIAGNOSTICS through language
servers rooted in the shadow's copy. Runs on the agent's thread (blocking, each bounded in
time); no Qt.

- ``search``: the index's ``CodebaseSearch`` (``forecode_core.index.codebase``), top 5
  chunks; on ``CodebaseUnavailable`` (not synced yet, the service down) or no index, the
  workspace's files (its ignore rules, links left out, files over 512 KiB and binary ones
  skipped, at most 3,000 files and 5 s) scored line by line (``lookup.score_line``). The
  answer says which search answered.
- ``definition``: the name's occurrences in the copy's files a language server serves
  (uses first: ``lookup.symbol_lines``), the file opened in the servers (its diagnostics
  awaited: the server is up and has read it), then ``textDocument/definition`` at the
  occurrence; the answer is path:line and a few lines of the copy's file. A definition
  outside the copy (a library) is named, never read. A server that does not answer in
  ``timeout_s`` is "not available", the loop goes on.
- ``diagnostics``: the file's current problems from the same servers (the agent's edits are
  in the copy as overlays).

The servers are an ``LspChecker`` of this module's own (basedpyright and ruff for Python),
started on the first DEFINITION or DIAGNOSTICS and stopped at the loop's end (``close``):
the review's checker is busy with the review's checks and keeps its documents' versions.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from app.services.agent_run import problem_line
from app.services.shadow import CheckTimeout, LspChecker
from forecode_core.agent.lookup import (
    excerpt,
    hits_text,
    query_words,
    score_line,
    symbol_lines,
)
from forecode_core.agent.paths import inside, relative_path
from forecode_core.index.codebase import CodebaseSearch, CodebaseUnavailable, CodeHit
from forecode_core.workspace.gitignore import IgnoreRules
from forecode_core.workspace.walk import walk_files

__all__ = ["AgentLookup", "DefinitionChecker", "grep_hits"]

TOP_K = 5
MAX_FILE_BYTES = 512 * 1024
MAX_FILES = 3_000
GREP_SECONDS = 5.0
CANDIDATES = 3  # occurrences of a name asked about before "not found"


def _text_of(path: str) -> str | None:
    try:
        if os.path.getsize(path) > MAX_FILE_BYTES:
            return None
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    if b"\x00" in data[:8192]:
        return None
    return data.decode("utf-8", "replace")


def _text_files(root: Path, rules: IgnoreRules, deadline: float) -> Iterator[tuple[str, str]]:
    """(rel, text) of the workspace's text files (module docstring's bounds)."""
    for n, (rel, entry) in enumerate(walk_files(root, rules, links="report")):
        if n >= MAX_FILES or time.monotonic() > deadline:
            return
        if entry.is_symlink():
            continue
        text = _text_of(entry.path)
        if text is not None:
            yield rel, text


def grep_hits(root: Path, rules: IgnoreRules, query: str, top_k: int = TOP_K) -> list[CodeHit]:
    """The plain-text search: the best ``top_k`` lines for ``query``'s words, each with two
    lines before and after (one hit a file region)."""
    words = query_words(query)
    phrase = query.strip().lower()
    if not words:
        return []
    found: list[tuple[int, str, int, list[str]]] = []
    for rel, text in _text_files(root, rules, time.monotonic() + GREP_SECONDS):
        lines = text.split("\n")
        for i, line in enumerate(lines):
            score = score_line(line, words, phrase)
            if score:
                found.append((score, rel, i, lines))
    found.sort(key=lambda f: (-f[0], f[1], f[2]))
    hits: list[CodeHit] = []
    taken: set[tuple[str, int]] = set()
    for score, rel, i, lines in found:
        if (rel, i // 5) in taken:
            continue
        taken.add((rel, i // 5))
        first, last = max(0, i - 2), min(len(lines), i + 3)
        text = "\n".join(lines[first:last])
        hits.append(CodeHit(rel, first + 1, last, text, float(score)))
        if len(hits) >= top_k:
            break
    return hits


class DefinitionChecker(LspChecker):
    """The shadow's ``LspChecker`` with a definition request of its own."""

    def definition(self, root: Path, rel: str, line: int, column: int, deadline: float) -> Any:
        """``textDocument/definition`` at (line, column) of the copy's ``rel``: the file is
        opened and its diagnostics awaited first (``CheckTimeout``), then the answer (LSP
        locations; ``TimeoutError`` past ``deadline``)."""
        from app.services.lsp.results import definition_params
        from forecode_core.lsp.positions import Position

        self.diagnostics(root, [rel], deadline)
        assert self._hub is not None
        uri = (root / rel).as_uri()
        params = definition_params(uri, Position(line, column))
        future = self._hub.ask(uri, "definition_provider", "textDocument/definition", params)
        return future.result(timeout=max(0.1, deadline - time.monotonic()))


class AgentLookup:
    """The lookups over the workspace at ``root`` and its shadow copy ``tree``; ``index()``
    gives the codebase index now (None: off or not made)."""

    def __init__(
        self,
        root: Path,
        tree: Path,
        rules: Callable[[], IgnoreRules],
        index: Callable[[], CodebaseSearch | None] = lambda: None,
        *,
        checker: DefinitionChecker | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self.root = Path(root).resolve()
        self.tree = Path(tree)
        self.rules = rules
        self.index = index
        self.checker = checker
        self.timeout_s = timeout_s
        self.used: list[str] = []  # which source answered each search (tests, bench)

    # ----- SEARCH ---------------------------------------------------------------------------
    def search(self, query: str) -> str:
        index = self.index()
        why = "the codebase index is off"
        if index is not None:
            try:
                hits = index.search(query, top_k=TOP_K)
                self.used.append("index")
                return hits_text(_confined(hits), "From the codebase index")
            except CodebaseUnavailable as exc:
                why = f"the codebase index cannot answer: {exc}"
        self.used.append("text")
        hits = grep_hits(self.root, self.rules(), query)
        return hits_text(hits, f"From a plain-text search ({why})")

    # ----- DEFINITION and DIAGNOSTICS -------------------------------------------------------
    def _checker(self) -> DefinitionChecker:
        if self.checker is None:
            self.checker = DefinitionChecker()
        return self.checker

    def definition(self, symbol: str) -> str:
        checker = self._checker()
        if not checker.available:
            return "DEFINITION is not available: no language server is installed."
        name = symbol.rsplit(".", 1)[-1]
        deadline = time.monotonic() + self.timeout_s
        tried = 0
        for rel, text in _text_files(self.tree, self.rules(), deadline):
            if not checker.serves(rel) or name not in text:
                continue
            for line, column in symbol_lines(text, name)[:2]:
                tried += 1
                try:
                    answer = checker.definition(self.tree, rel, line, column, deadline)
                except (CheckTimeout, TimeoutError, LookupError, RuntimeError) as exc:
                    return (
                        f"DEFINITION is not available: the language server did not answer ({exc})."
                    )
                shown = self._located(answer, name)
                if shown:
                    return shown
                if tried >= CANDIDATES:
                    return f"No definition of {name} found."
        return (
            f"{name} occurs in no file a language server reads."
            if not tried
            else (f"No definition of {name} found.")
        )

    def _located(self, answer: Any, name: str) -> str:
        from app.services.lsp.results import locations, path_of

        for uri, position in locations(answer):
            path = path_of(uri)
            if path is None:
                continue
            try:
                rel = Path(os.path.realpath(path)).relative_to(os.path.realpath(self.tree))
            except ValueError:
                return f"{name} is defined outside the project (a library: {path.name})."
            target = inside(self.tree, rel.as_posix())
            text = target.read_text("utf-8", "replace")
            return f"{rel.as_posix()}:{position.line + 1}\n{excerpt(text, position.line)}"
        return ""

    def diagnostics(self, path: str) -> str:
        rel = relative_path(path)
        inside(self.root, rel)
        target = inside(self.tree, rel)
        if not target.is_file():
            return f"{rel} is not a file of the project."
        checker = self._checker()
        if not checker.serves(rel):
            return f"DIAGNOSTICS is not available for {rel}: no language server reads it."
        try:
            found = checker.diagnostics(self.tree, [rel], time.monotonic() + self.timeout_s)
        except CheckTimeout as exc:
            return f"DIAGNOSTICS is not available: {exc}."
        return "\n".join(problem_line(d) for d in found[:40]) or f"No problems in {rel}."

    def close(self) -> None:
        if self.checker is not None:
            self.checker.cancel()


def _confined(hits: list[CodeHit]) -> list[CodeHit]:
    """The index's hits whose paths are the workspace's (the index maps back to the user's
    files; a path it gives that the rules refuse is left out)."""
    out = []
    for hit in hits:
        try:
            relative_path(hit.path)
        except ValueError:
            continue
        out.append(hit)
    return out
