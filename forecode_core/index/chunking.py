"""Code split into the chunks the index embeds and searches: syntactic where a grammar exists,
line windows elsewhere.

``chunk_file(path, data)`` is the entry point: a workspace-relative path and the file's bytes in,
a ``FileChunks`` out (the chunks, or the reason the file was skipped). Pure: no I/O, no Qt.

What a chunk is
---------------
* **Syntactic** (tree-sitter, grammars from ``tree-sitter-language-pack``) for the languages the
  editor highlights: each definition (function, class, method, struct, impl, ...; with the
  comments and attributes right above it) is one chunk; runs of other top-level statements
  (imports, constants, small helpers) are merged up to ``target_chars``. A node bigger than
  ``max_chars`` is split into its children the same way, so a large class becomes its header
  (with docstring and attributes) plus one chunk per method; a node with nothing to split (a
  huge literal) becomes line windows.
* **Line windows** (``window_lines`` lines, ``overlap_lines`` shared with the next) for other
  files and for files whose parse is mostly errors.

Chunks hold whole lines (``start_line``/``end_line``, 1-based, inclusive), so results map to
editor lines; a single line longer than ``max_chars`` is cut into pieces that share its line
number. So every chunk is at most ``max_chars`` characters. Line breaks are normalised to
``\\n`` (``\\r\\n`` and a lone ``\\r`` are one break each, as in the editor).

``content_hash`` is sha256 of the *normalised* text (NFC, trailing whitespace of each line
removed, leading and trailing blank lines dropped), so the same code in two files or two
workspaces has one hash (and one cached embedding); it is never sent as is (see
``WorkspaceKeys.chunk_hash``).

Skipped, with a reason: secrets (``denylist``), files over ``max_file_bytes``, binary files (a NUL
byte without a UTF-16/32 byte-order mark), files that are not UTF-8 (or UTF-16/32 with a BOM).

File name -> language id is ``forecode_core.text.file_languages``, the table the editor's
``forecode_core.text.languages`` uses too.
"""

from __future__ import annotations

import codecs
import hashlib
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from forecode_core.index.denylist import secret_reason
from forecode_core.text.file_languages import language_id_for_path

if TYPE_CHECKING:
    from tree_sitter import Node, Parser, Point, Tree

__all__ = [
    "DEFAULT_LIMITS",
    "LANGUAGE_GRAMMARS",
    "PARSE_PIECE_BYTES",
    "Chunk",
    "ChunkLimits",
    "FileChunks",
    "chunk_file",
    "chunk_text",
    "content_hash",
    "decode_text",
    "language_for_path",
    "normalise",
]

DEFINITION = "definition"
BLOCK = "block"
LINES = "lines"


@dataclass(frozen=True)
class ChunkLimits:
    """Sizes in characters (of the chunk's text) and lines."""

    target_chars: int = 1500  # small neighbours are merged up to this
    max_chars: int = 3000  # no chunk is longer: bigger nodes are split
    min_definition_chars: int = 100  # smaller definitions merge with neighbours like blocks
    window_lines: int = 40
    overlap_lines: int = 8
    max_file_bytes: int = 1 << 20
    max_depth: int = 64  # deeper nodes than this are cut into line windows, not recursed into

    def __post_init__(self) -> None:
        if not 0 < self.target_chars <= self.max_chars:
            raise ValueError("need 0 < target_chars <= max_chars")
        if not 0 <= self.overlap_lines < self.window_lines:
            raise ValueError("need 0 <= overlap_lines < window_lines")


DEFAULT_LIMITS = ChunkLimits()


@dataclass(frozen=True)
class Chunk:
    path: str  # workspace-relative POSIX path
    start_line: int  # 1-based, inclusive
    end_line: int  # 1-based, inclusive
    text: str  # the lines as in the file (line breaks normalised to \n)
    language: str  # language id, as forecode_core.text.languages names it ("plaintext" for others)
    content_hash: bytes  # sha256 of normalise(text), 32 bytes
    kind: str  # "definition", "block" (merged statements) or "lines" (a window)
    symbol: str = ""  # a definition's qualified name ("Parser.parse"); local metadata only


@dataclass(frozen=True)
class FileChunks:
    path: str
    language: str
    chunks: tuple[Chunk, ...]
    method: str  # "syntax", "lines", or "" when skipped
    skipped: str | None = None  # why nothing was chunked, or None


# -- languages ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Lang:
    id: str
    grammar: str | None
    definitions: frozenset[str] = frozenset()
    wrappers: frozenset[str] = frozenset()  # a definition when they hold one


_JS_DEFS = frozenset(
    {
        "function_declaration",
        "generator_function_declaration",
        "class_declaration",
        "abstract_class_declaration",
        "method_definition",
        "interface_declaration",
        "enum_declaration",
        "internal_module",
        "module",
        "type_alias_declaration",
    }
)
_JS_WRAPPERS = frozenset(
    {
        "export_statement",
        "lexical_declaration",
        "variable_declaration",
        "expression_statement",
        "ambient_declaration",
    }
)
# Values that make a `const f = ...` a definition.
_FUNCTION_VALUES = frozenset(
    {
        "arrow_function",
        "function_expression",
        "function",
        "generator_function",
        "class",
    }
)
_C_DEFS = frozenset(
    {
        "function_definition",
        "struct_specifier",
        "union_specifier",
        "enum_specifier",
        "type_definition",
    }
)
_CPP_DEFS = _C_DEFS | {"class_specifier", "namespace_definition", "concept_definition"}

_LANGS: dict[str, _Lang] = {
    lang.id: lang
    for lang in (
        _Lang(
            "python",
            "python",
            frozenset({"function_definition", "class_definition", "decorated_definition"}),
        ),
        _Lang("javascript", "javascript", _JS_DEFS, _JS_WRAPPERS),
        _Lang("typescript", "typescript", _JS_DEFS, _JS_WRAPPERS),
        _Lang("c", "c", _C_DEFS, frozenset({"declaration"})),
        _Lang(
            "cpp",
            "cpp",
            _CPP_DEFS,
            frozenset({"template_declaration", "declaration", "linkage_specification"}),
        ),
        _Lang(
            "rust",
            "rust",
            frozenset(
                {
                    "function_item",
                    "impl_item",
                    "struct_item",
                    "enum_item",
                    "union_item",
                    "trait_item",
                    "mod_item",
                    "macro_definition",
                    "function_signature_item",
                }
            ),
        ),
        _Lang(
            "go",
            "go",
            frozenset(
                {
                    "function_declaration",
                    "method_declaration",
                    "type_declaration",
                }
            ),
        ),
        _Lang(
            "java",
            "java",
            frozenset(
                {
                    "class_declaration",
                    "interface_declaration",
                    "enum_declaration",
                    "record_declaration",
                    "annotation_type_declaration",
                    "method_declaration",
                    "constructor_declaration",
                }
            ),
        ),
        _Lang("json", "json"),
        _Lang("yaml", "yaml"),
        _Lang("toml", "toml", frozenset({"table", "table_array_element"})),
        _Lang("markdown", "markdown", frozenset({"section"})),
        _Lang("html", "html"),
        _Lang("xml", "xml"),
        _Lang("css", "css", frozenset({"media_statement", "keyframes_statement"})),
        _Lang("shell", "bash", frozenset({"function_definition"})),
        _Lang("makefile", "make", frozenset({"rule"})),
        _Lang("sql", "sql"),
        _Lang("ini", "ini", frozenset({"section"})),
        _Lang("diff", None),
        _Lang("plaintext", None),
    )
}
# Grammar variants within one language id, by extension.
_GRAMMAR_BY_EXT = {".tsx": "tsx", ".scss": "scss"}

LANGUAGE_GRAMMARS: dict[str, str | None] = {lang.id: lang.grammar for lang in _LANGS.values()}
"""Language id -> tree-sitter grammar (None: line windows only)."""


def language_for_path(path: str, first_line: str = "") -> str:
    """The language id of a file: by exact name, then extension, then a ``#!`` line (the
    editor's table: ``forecode_core.text.file_languages``)."""
    return language_id_for_path(path, first_line)


_local = threading.local()


def _parser(grammar: str) -> Parser | None:
    """A parser for a grammar, one per thread (tree-sitter parsers are not thread-safe); None if
    the grammar cannot be loaded."""
    cache: dict[str, Parser | None] | None = getattr(_local, "parsers", None)
    if cache is None:
        cache = _local.parsers = {}
    if grammar not in cache:
        try:
            from tree_sitter_language_pack import get_parser

            cache[grammar] = get_parser(grammar)  # type: ignore[arg-type]
        except Exception:  # a grammar missing from the pack: line windows
            cache[grammar] = None
    return cache[grammar]


# -- text -----------------------------------------------------------------------------------------

_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: it starts with the same bytes
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def decode_text(data: bytes) -> tuple[str | None, str | None]:
    """(text, None), or (None, reason) for a binary or undecodable file."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(encoding), None
            except UnicodeDecodeError:
                return None, "not UTF-8 text"
    if b"\0" in data:
        return None, "binary"
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        return None, "not UTF-8 text"


def normalise(text: str) -> str:
    """The text a content hash is taken over: NFC, ``\\n`` line breaks, no trailing whitespace on
    a line, no leading or trailing blank lines."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    return "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")


_HASH_PIECE_BYTES = 2000
"""Under hashlib's 2,048 bytes, from which an update lets go of the GIL and takes it back."""


def content_hash(text: str) -> bytes:
    """sha256 of ``normalise(text)``, fed in pieces of ``_HASH_PIECE_BYTES`` (the same digest).

    A chunk's hash is microseconds of work; a 3,000-character chunk hashed in one update let go
    of the GIL and took it straight back, and a thread waiting for the GIL (the UI thread) then
    starts its 5 ms wait again: its worst wait while a 755 KB file was chunked went from ~10 to
    ~16 ms."""
    data = normalise(text).encode("utf-8", "surrogatepass")
    digest = hashlib.sha256()
    for start in range(0, len(data), _HASH_PIECE_BYTES):
        digest.update(data[start : start + _HASH_PIECE_BYTES])
    return digest.digest()


# -- chunking -------------------------------------------------------------------------------------


@dataclass
class _Piece:
    start: int  # 0-based row, inclusive
    end: int  # 0-based row, inclusive
    kind: str
    symbol: str = ""
    attachable: bool = False  # a comment or attribute that belongs to the definition below


class _Chunker:
    def __init__(self, path: str, language: str, text: str, limits: ChunkLimits) -> None:
        self.path = path
        self.language = language
        self.limits = limits
        self.lines = text.split("\n")
        offsets = [0]
        for line in self.lines:
            offsets.append(offsets[-1] + len(line) + 1)
        self.offsets = offsets
        self.chunks: list[Chunk] = []

    def size(self, start: int, end: int) -> int:
        return self.offsets[end + 1] - self.offsets[start] - 1

    # -- emitting --

    def emit(self, start: int, end: int, kind: str, symbol: str = "") -> None:
        """A chunk of rows start..end, blank rows at either end dropped, long lines cut."""
        while start <= end and not self.lines[start].strip():
            start += 1
        while end >= start and not self.lines[end].strip():
            end -= 1
        if start > end:
            return
        if self.size(start, end) <= self.limits.max_chars:
            self._add(start, end, "\n".join(self.lines[start : end + 1]), kind, symbol)
        elif start == end:
            line, step = self.lines[start], self.limits.max_chars
            for i in range(0, len(line), step):
                if line[i : i + step].strip():
                    self._add(start, start, line[i : i + step], LINES, symbol)
        else:
            self.windows(start, end, symbol)

    def _add(self, start: int, end: int, text: str, kind: str, symbol: str) -> None:
        self.chunks.append(
            Chunk(
                self.path, start + 1, end + 1, text, self.language, content_hash(text), kind, symbol
            )
        )

    def windows(self, start: int, end: int, symbol: str = "") -> None:
        """Rows start..end as overlapping windows of at most ``window_lines`` lines and
        ``max_chars`` characters (a longer line alone is cut by ``emit``)."""
        limits = self.limits
        row = start
        while row <= end:
            last = row
            while (
                last + 1 <= end
                and last + 1 - row < limits.window_lines
                and self.size(row, last + 1) <= limits.max_chars
            ):
                last += 1
            self.emit(row, last, LINES, symbol)
            if last >= end:
                break
            row = max(row + 1, last + 1 - limits.overlap_lines)

    # -- syntax --

    def rows(self, node: Node) -> tuple[int, int]:
        start, end = node.start_point.row, node.end_point.row
        if node.end_point.column == 0 and end > start:
            end -= 1  # the node ends with its line break
        return start, min(end, len(self.lines) - 1)

    def syntax(self, root: Node, lang: _Lang) -> None:
        pieces = self.pieces(root, lang, "", 0)
        self.group(self.coalesce(pieces))

    def pieces(self, node: Node, lang: _Lang, scope: str, depth: int) -> list[_Piece]:
        out: list[_Piece] = []
        for child in node.children:
            if child.start_byte == child.end_byte:
                continue
            start, end = self.rows(child)
            is_def = _is_definition(child, lang)
            name = _name(child, lang) if is_def else ""
            symbol = f"{scope}.{name}" if scope and name else name or scope
            if self.size(start, end) <= self.limits.max_chars:
                big_enough = self.size(start, end) >= self.limits.min_definition_chars
                kind = DEFINITION if is_def and big_enough else BLOCK
                out.append(
                    _Piece(start, end, kind, symbol if is_def else "", _is_attachable(child.type))
                )
            elif child.child_count and end > start and depth < self.limits.max_depth:
                inner = self.pieces(child, lang, symbol if is_def else scope, depth + 1)
                out.extend(self.fill_gaps(inner, start, end))
            else:
                out.append(_Piece(start, end, LINES, symbol))
        return out

    def fill_gaps(self, pieces: list[_Piece], start: int, end: int) -> list[_Piece]:
        """``pieces`` plus pieces for the rows of start..end they leave out (a node's children
        need not cover it: the text of a long string has no child)."""
        out: list[_Piece] = []
        row = start
        for piece in [*pieces, _Piece(end + 1, end + 1, BLOCK)]:
            if piece.start > row:
                gap_end = piece.start - 1
                big = self.size(row, gap_end) > self.limits.max_chars
                out.append(_Piece(row, gap_end, LINES if big else BLOCK))
            if piece.start <= end:
                out.append(piece)
            row = max(row, piece.end + 1)
        return out

    @staticmethod
    def coalesce(pieces: list[_Piece]) -> list[_Piece]:
        """Make the pieces' rows disjoint: a piece starting on a row already taken starts on the
        next row (or is dropped when nothing is left of it)."""
        out: list[_Piece] = []
        for piece in pieces:
            if out and piece.start <= out[-1].end:
                if piece.end <= out[-1].end:
                    continue
                piece.start = out[-1].end + 1
            out.append(piece)
        return out

    def attach(self, pieces: list[_Piece]) -> list[_Piece]:
        """Comments and attributes right above a definition become part of it."""
        out: list[_Piece] = []
        for piece in pieces:
            if piece.kind == DEFINITION:
                while (
                    out
                    and out[-1].attachable
                    and out[-1].end == piece.start - 1
                    and self.size(out[-1].start, piece.end) <= self.limits.max_chars
                    and not self.lines[out[-1].start].startswith("#!")
                ):
                    piece.start = out.pop().start
            out.append(piece)
        return out

    def group(self, pieces: list[_Piece]) -> None:
        """Emit definitions and windows alone, runs of blocks merged up to the target size."""
        run: list[_Piece] = []

        def flush() -> None:
            if run:
                self.emit(run[0].start, run[-1].end, BLOCK)
                run.clear()

        for piece in self.attach(pieces):
            if piece.kind == BLOCK:
                if run and self.size(run[0].start, piece.end) > self.limits.target_chars:
                    flush()
                run.append(piece)
                continue
            flush()
            if piece.kind == LINES:
                self.windows(piece.start, piece.end, piece.symbol)
            else:
                self.emit(piece.start, piece.end, DEFINITION, piece.symbol)
        flush()


def _is_attachable(node_type: str) -> bool:
    return "comment" in node_type or node_type in ("attribute_item", "decorator", "annotation")


def _is_definition(node: Node, lang: _Lang) -> bool:
    if node.type in lang.definitions:
        return True
    if node.type not in lang.wrappers:
        return False
    for child in node.named_children:
        if child.type in lang.definitions or child.type in _FUNCTION_VALUES:
            return True
        for grandchild in child.named_children:  # `const f = () => ...`, `int f() {...}`
            if grandchild.type in lang.definitions or grandchild.type in _FUNCTION_VALUES:
                return True
    return False


_NAME_TYPES = frozenset({"word", "bare_key", "dotted_key", "quoted_key", "name"})
# Nodes that hold the name of the definition around them (`const f = ...`, Go's `type T ...`).
_NAME_HOLDERS = frozenset({"variable_declarator", "type_spec", "type_alias"})


def _is_name(node: Node) -> bool:
    return node.type.endswith("identifier") or node.type in _NAME_TYPES


def _name(node: Node, lang: _Lang, depth: int = 0) -> str:
    """A definition's name: its ``name`` field, the end of its ``declarator`` chain (C, C++), the
    name of the definition it wraps (decorators, export, template), or its ``type`` (impl)."""
    named = node.child_by_field_name("name")
    if named is not None and _is_name(named):
        return (named.text or b"").decode("utf-8", "replace")
    declarator = node.child_by_field_name("declarator")
    for _ in range(8):
        if declarator is None:
            break
        if _is_name(declarator):
            return (declarator.text or b"").decode("utf-8", "replace")
        declarator = declarator.child_by_field_name("declarator")
    if depth < 3:
        for child in node.named_children:
            if (
                child.type in lang.definitions
                or child.type in _FUNCTION_VALUES
                or child.type in _NAME_HOLDERS
            ):
                found = _name(child, lang, depth + 1)
                if found:
                    return found
    kind = node.child_by_field_name("type")
    if kind is not None and _is_name(kind):
        return (kind.text or b"").decode("utf-8", "replace")
    return ""


def _mostly_errors(root: Node) -> bool:
    if not root.has_error:
        return False
    total = max(1, root.end_byte - root.start_byte)
    bad = sum(c.end_byte - c.start_byte for c in root.children if c.is_error or c.is_missing)
    return root.is_error or bad * 2 > total


PARSE_PIECE_BYTES = 16 * 1024
"""The most bytes tree-sitter is handed in one read (see ``_parse``)."""


def _parse(parser: Parser, source: bytes) -> Tree | None:
    """The tree of ``source``, parsed so that no single C call holds the GIL for long.

    ``Parser.parse(bytes)`` is one C call: 70-100 ms on a 755 KB file, and every other thread
    of the editor's process (the UI thread included) waited for the GIL all that time, since the
    index chunks on a thread of that process. Fed through the read callback in pieces of
    ``PARSE_PIECE_BYTES``, and with a progress callback (tree-sitter calls it every few hundred
    operations, also while it balances the finished tree, which reads nothing), tree-sitter
    returns to Python between pieces; entering a Python function is where the interpreter
    hands the GIL to a thread that asked for it. The tree is the same (a test compares them).
    Left: freeing the tree of a 755 KB file is one C call of about 4 ms."""

    def read(offset: int, _point: Point) -> bytes:
        return source[offset : offset + PARSE_PIECE_BYTES]

    return parser.parse(read, progress_callback=_keep_parsing)


def _keep_parsing(_offset: int, _has_error: bool) -> bool:
    """tree-sitter's progress callback: never cancel (its call is the point, see ``_parse``)."""
    return False


def chunk_text(
    path: str, text: str, language: str | None = None, limits: ChunkLimits = DEFAULT_LIMITS
) -> tuple[list[Chunk], str]:
    """Chunks of a decoded text, and the method used (``"syntax"`` or ``"lines"``). Secrets and
    size limits are ``chunk_file``'s business, not checked here."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if language is None:
        language = language_for_path(path, text[:200].split("\n", 1)[0])
    chunker = _Chunker(path, language, text, limits)
    lang = _LANGS.get(language, _LANGS["plaintext"])
    grammar = _GRAMMAR_BY_EXT.get(PurePosixPath(path.lower()).suffix, lang.grammar)
    parser = _parser(grammar) if lang.grammar is not None and grammar is not None else None
    if parser is not None:
        try:
            tree = _parse(parser, text.encode("utf-8", "surrogatepass"))
        except (ValueError, RuntimeError):
            parser.reset()
            tree = None
        if tree is not None and not _mostly_errors(tree.root_node):
            chunker.syntax(tree.root_node, lang)
            return chunker.chunks, "syntax"
    chunker.windows(0, len(chunker.lines) - 1)
    return chunker.chunks, "lines"


def chunk_file(path: str, data: bytes, limits: ChunkLimits = DEFAULT_LIMITS) -> FileChunks:
    """The chunks of one file from its bytes, or the reason it is skipped (see the module
    docstring)."""
    reason = secret_reason(path, data)
    if reason is None and len(data) > limits.max_file_bytes:
        reason = "too large"
    text: str | None = None
    if reason is None:
        text, reason = decode_text(data)
    if text is None or reason is not None:
        return FileChunks(path, language_for_path(path), (), "", reason or "unreadable")
    language = language_for_path(path, text[:200].split("\n", 1)[0])
    chunks, method = chunk_text(path, text, language, limits)
    if not chunks:
        return FileChunks(path, language, (), method, "empty")
    return FileChunks(path, language, tuple(chunks), method)
