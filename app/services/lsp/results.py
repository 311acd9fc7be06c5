"""Servers' answers as plain values: a hover's text, definition locations."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse
from urllib.request import url2pathname

from forecode_core.lsp.positions import Position

# lsprotocol is imported where it is used: it takes a second, which the editor's start-up
# does not wait for (issue 18); the language servers' thread has imported it by the time an
# answer comes.
if TYPE_CHECKING:
    from lsprotocol import types as lsp

__all__ = [
    "definition_params",
    "hover_markdown",
    "hover_params",
    "locations",
    "path_of",
    "reference_params",
]


def _at(uri: str, position: Position) -> tuple[lsp.TextDocumentIdentifier, lsp.Position]:
    from lsprotocol import types as lsp

    return lsp.TextDocumentIdentifier(uri), lsp.Position(position.line, position.character)


def hover_params(uri: str, position: Position) -> lsp.HoverParams:
    from lsprotocol import types as lsp

    return lsp.HoverParams(*_at(uri, position))


def definition_params(uri: str, position: Position) -> lsp.DefinitionParams:
    from lsprotocol import types as lsp

    return lsp.DefinitionParams(*_at(uri, position))


def reference_params(uri: str, position: Position) -> lsp.ReferenceParams:
    """References with the declaration among them (VS Code's default)."""
    from lsprotocol import types as lsp

    document, where = _at(uri, position)
    context = lsp.ReferenceContext(include_declaration=True)
    return lsp.ReferenceParams(context=context, text_document=document, position=where)


def path_of(uri: str) -> Path | None:
    """A ``file:`` URI's path; None for any other scheme."""
    parts = urlparse(uri)
    if parts.scheme != "file":
        return None
    return Path(url2pathname(parts.path))


def _marked(item: Any) -> str:
    from lsprotocol import types as lsp

    if isinstance(item, str):
        return item
    if isinstance(item, lsp.MarkedStringWithLanguage):
        return f"```{item.language}\n{item.value}\n```"
    if isinstance(item, lsp.MarkupContent):
        return item.value
    return ""


def hover_markdown(result: object) -> str:
    from lsprotocol import types as lsp

    """A ``textDocument/hover`` answer's text (markdown or plain), "" for none."""
    if not isinstance(result, lsp.Hover):
        return ""
    contents = result.contents
    if isinstance(contents, list | tuple):
        return "\n\n".join(text for text in (_marked(c) for c in contents) if text)
    return _marked(contents)


def locations(result: object) -> list[tuple[str, Position]]:
    from lsprotocol import types as lsp

    """A ``textDocument/definition`` (or references) answer as (uri, start) pairs."""
    items = result if isinstance(result, list | tuple) else [result] if result else []
    found: list[tuple[str, Position]] = []
    for item in items:
        if isinstance(item, lsp.Location):
            start = item.range.start
            found.append((item.uri, Position(start.line, start.character)))
        elif isinstance(item, lsp.LocationLink):
            start = item.target_selection_range.start
            found.append((item.target_uri, Position(start.line, start.character)))
    return found
