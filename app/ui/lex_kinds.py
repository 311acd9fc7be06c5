"""The editor's lexer styles as string / comment / code: the mask edit-pattern propagation
matches around (issue 15: sites "outside strings and comments, by the lexer's styles").

Each lexer's style numbers are mapped once to ``forecode_core.next_edit.lexmask.KIND_CODES``
from the theme categories ``app.ui.highlight`` already gives them (``string`` and ``escape``:
a string; ``comment``: a comment; everything else code), as a 256-byte ``bytes.translate``
table. ``editor_mask`` styles the whole document (``colourise``: Scintilla styles lazily, up to
what was shown), reads every byte's style in one call (``SCI_GETSTYLEDTEXTFULL``) and hands the
codes to the pure ``mask_from_style_kinds``. Python keeps the core's scanner
(``lexmask.prefers_scanner``), as does a language without a lexer or a document over
``MAX_STYLED_BYTES`` (styling it all on the UI thread would stall it; the scanner runs with
propagation on its worker thread).
"""

from __future__ import annotations

import ctypes

from forecode_core.next_edit.lexmask import (
    KIND_CODES,
    Kind,
    LexMask,
    mask_from_style_kinds,
    prefers_scanner,
)
from forecode_core.text.languages import Language

from .editor import CodeEditor
from .highlight import categories_for

__all__ = ["MAX_STYLED_BYTES", "editor_mask", "kind_table", "style_to", "styled_kinds"]

SCI_GETSTYLEDTEXTFULL = 2778
#: Above this many bytes the document is not styled whole for a mask (about 10 ms of lexing
#: on the 2-core machine): the core's scanner decides, off the UI thread.
MAX_STYLED_BYTES = 400_000
_KIND_OF_CATEGORY = {"string": Kind.STRING, "escape": Kind.STRING, "comment": Kind.COMMENT}
_tables: dict[str, bytes | None] = {}


class _TextRangeFull(ctypes.Structure):
    _fields_ = (
        ("cp_min", ctypes.c_ssize_t),
        ("cp_max", ctypes.c_ssize_t),
        ("text", ctypes.c_void_p),
    )


def kind_table(language: Language) -> bytes | None:
    """Style number → kind code for ``language``'s lexer (256 bytes), or None where the lexer
    styles no string or comment (or there is no lexer)."""
    if language.id not in _tables:
        table = bytearray(256)
        for style, category in categories_for(language).items():
            kind = _KIND_OF_CATEGORY.get(category)
            if kind is not None and 0 <= style < 256:
                table[style] = KIND_CODES[kind]
        _tables[language.id] = bytes(table) if any(table) else None
    return _tables[language.id]


def style_to(editor: CodeEditor, pos: int) -> None:
    """Make sure the lexer has styled the document up to ``pos`` (Scintilla styles lazily, up
    to what was shown; styling resumes where it stopped, never from the top again)."""
    done = editor.endStyled()
    if done < pos:
        editor.colourise(done, pos)


def styled_kinds(editor: CodeEditor, table: bytes) -> bytes:
    """One kind code per byte of the editor's document, from its lexer's styles (the whole
    document styled first, ``style_to``)."""
    n = editor.textLength()
    if n == 0:
        return b""
    style_to(editor, n)
    buf = ctypes.create_string_buffer(2 * n + 2)
    rng = _TextRangeFull(0, n, ctypes.addressof(buf))
    editor.send(SCI_GETSTYLEDTEXTFULL, 0, ctypes.addressof(rng))
    return buf.raw[1 : 2 * n : 2].translate(table)  # (character, style) byte pairs


def editor_mask(editor: CodeEditor, path: str, text: str) -> LexMask | None:
    """The mask of ``text`` (the editor's document now) from its lexer's styles, or None:
    the core's scanner decides (Python, no lexer, a document over ``MAX_STYLED_BYTES``)."""
    if prefers_scanner(path) or editor.textLength() > MAX_STYLED_BYTES:
        return None
    table = kind_table(editor.language)
    if table is None:
        return None
    return mask_from_style_kinds(text, styled_kinds(editor, table))
