"""Decoding and encoding of files for the editor, without ever losing or corrupting text.

The contract: for every *editable* :class:`Decoded` ``d`` made from ``data``,
``encode_text(d.text, d.encoding) == data`` exactly. Line endings are never normalised (the text
keeps them as they are, mixed or not) and byte order marks are written back on save.

Files that cannot be decoded losslessly open *read-only*: their ``encoding`` is a label for the
user (``"binary"``, ``"unknown (invalid UTF-8)"``, ...), ``read_only_reason`` says why in one
sentence, and :func:`encode_text` refuses the label, so such a file is never rewritten.

How bytes are classified, in order:

* UTF-32 byte order mark (``FF FE 00 00`` / ``00 00 FE FF``) and the rest strictly valid UTF-32:
  editable, saved as ``"utf-32-le-bom"`` / ``"utf-32-be-bom"``. ``FF FE 00 00`` that is not valid
  UTF-32 falls through to UTF-16 LE (a UTF-16 file starting with U+0000).
* UTF-16 byte order mark (``FF FE`` / ``FE FF``): decoded strictly as UTF-16, saved as
  ``"utf-16-le-bom"`` / ``"utf-16-be-bom"``; not valid UTF-16 (odd length, lone surrogate) means
  read-only. NUL bytes are normal in UTF-16, so the binary test does not apply.
* A NUL byte anywhere (git looks at the first 8 KiB only; the editor widget cannot hold a NUL
  character, so a file with one could not be saved back intact): binary, read-only. The text
  shown is the bytes decoded as UTF-8 with replacement characters and each NUL shown as
  U+2400 (␀), so a display that stops at NUL never truncates it.
* UTF-8 byte order mark (``EF BB BF``): ``"utf-8-sig"``; the text excludes the mark.
* A declared encoding in the first two lines (PEP 263 ``# coding: latin-1``, Emacs
  ``-*- coding: cp1252 -*-``, vim ``fileencoding=``, or an XML declaration's ``encoding=``)
  that names one of :data:`ENCODING_CHOICES` and decodes the bytes losslessly.
* Strict UTF-8 (``"utf-8"``).
* Not UTF-8: when the file has at least as many valid UTF-8 multi-byte characters as stray
  high bytes it is damaged UTF-8, read-only as before (the reason names the offset of the first
  bad byte). Otherwise it is legacy 8-bit text: Windows-1252 when every byte is defined there,
  else ISO 8859-1 (which decodes any bytes). Such a guess is editable, since the bytes round
  trip exactly, and ``notice`` says it was a guess.

Every legacy encoding is checked to round trip: a file is editable in it only when
``text.encode(codec) == data``, so saving an unedited file writes the same bytes and editing
one line changes only that line's bytes. ``decode_bytes(data, encoding=...)`` decodes with an
encoding the user chose ("Reopen with Encoding") under the same rules.

The text keeps any U+0000 characters that are legitimately part of UTF-16/32 text, or that sit in
UTF-8 text after the first 8 KiB.
"""

from __future__ import annotations

import codecs
import os
import re
from dataclasses import dataclass, replace
from typing import Final

__all__ = [
    "BINARY",
    "BINARY_SNIFF_BYTES",
    "BINARY_SUFFIXES",
    "EDITABLE_ENCODINGS",
    "ENCODING_CHOICES",
    "EOL_NAMES",
    "Decoded",
    "binary_by_name",
    "declared_encoding",
    "decode_bytes",
    "detect_eol",
    "encode_text",
    "encoding_label",
    "normalize_encoding",
    "read_text_file",
]

EOL_NAMES: Final[dict[str, str]] = {"\n": "LF", "\r\n": "CRLF", "\r": "CR"}

BINARY: Final = "binary"
"""The ``encoding`` label of a file detected as binary."""

BINARY_SNIFF_BYTES: Final = 8192
"""A NUL byte within this many leading bytes marks a (non-UTF-16/32) file as binary."""

_NUL_SHOWN_AS: Final = "\u2400"
_READ_ONLY_TAIL: Final = "opened read-only so it is never rewritten."

# encoding name -> (byte order mark, Python codec for the text after it, status bar label)
_CODECS: Final[dict[str, tuple[bytes, str, str]]] = {
    "utf-8": (b"", "utf-8", "UTF-8"),
    "utf-8-sig": (codecs.BOM_UTF8, "utf-8", "UTF-8 with BOM"),
    "utf-16-le-bom": (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16 LE"),
    "utf-16-be-bom": (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16 BE"),
    "utf-32-le-bom": (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32 LE"),
    "utf-32-be-bom": (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32 BE"),
}

# Legacy encodings, by Python's canonical codec name (their id), with VS Code's labels. None of
# them is stateful (no ISO-2022, no UTF-7): a character always encodes to the same bytes.
_LEGACY: Final[dict[str, str]] = {
    "cp1252": "Western (Windows 1252)",
    "iso8859-1": "Western (ISO 8859-1)",
    "iso8859-15": "Western (ISO 8859-15)",
    "mac-roman": "Western (Mac Roman)",
    "cp437": "DOS (CP 437)",
    "cp1250": "Central European (Windows 1250)",
    "iso8859-2": "Central European (ISO 8859-2)",
    "cp1251": "Cyrillic (Windows 1251)",
    "koi8-r": "Cyrillic (KOI8-R)",
    "cp1253": "Greek (Windows 1253)",
    "cp1254": "Turkish (Windows 1254)",
    "cp1255": "Hebrew (Windows 1255)",
    "cp1256": "Arabic (Windows 1256)",
    "cp1257": "Baltic (Windows 1257)",
    "cp1258": "Vietnamese (Windows 1258)",
    "shift_jis": "Japanese (Shift JIS)",
    "euc_jp": "Japanese (EUC-JP)",
    "gbk": "Simplified Chinese (GBK)",
    "big5": "Traditional Chinese (Big5)",
    "euc_kr": "Korean (EUC-KR)",
}
_CODECS.update({name: (b"", name, label) for name, label in _LEGACY.items()})

ENCODING_CHOICES: Final[tuple[tuple[str, str], ...]] = tuple(
    (name, entry[2]) for name, entry in _CODECS.items()
)
"""``(id, label)`` of every encoding a file can be reopened or saved with, in menu order."""

# Tried in this order when a file is neither UTF-8 nor declares its encoding.
_LEGACY_GUESSES: Final = ("cp1252", "iso8859-1")

# One valid UTF-8 multi-byte character (RFC 3629: no overlongs, surrogates or > U+10FFFF).
_UTF8_MULTIBYTE: Final = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}"
    rb"|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}"
    rb"|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)
_HIGH_BYTES: Final = bytes(range(0x80, 0x100))

# Encoding declarations, matched on each of the first two lines (a line is cut at 400 bytes).
_PEP263: Final = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")
_EMACS: Final = re.compile(rb"-\*-.*?coding[:=][ \t]*([-\w.]+)")
_XML: Final = re.compile(rb"^<\?xml[^>]*?encoding=[\"']([-\w.]+)[\"']")
_BLANK_OR_COMMENT: Final = re.compile(rb"^[ \t\f]*(?:#.*)?$")

EDITABLE_ENCODINGS: Final[frozenset[str]] = frozenset(_CODECS)
"""Every value :func:`encode_text` accepts."""

# Checked in this order: the UTF-32 LE mark begins with the UTF-16 LE one.
_BOM_ORDER: Final = (
    "utf-32-le-bom",
    "utf-32-be-bom",
    "utf-8-sig",
    "utf-16-le-bom",
    "utf-16-be-bom",
)


@dataclass(frozen=True)
class Decoded:
    """A file's content as the editor shows it, and how to write it back.

    ``text`` keeps the file's line endings exactly (never normalised). ``encoding`` is one of
    :data:`EDITABLE_ENCODINGS` for an editable file; for a read-only file it is the label shown
    to the user (e.g. ``"binary"``) and ``read_only_reason`` is one sentence saying why.
    ``eol`` is the dominant line ending (the default when there is none) and ``mixed_eol`` is
    True when more than one kind occurs.
    """

    text: str
    encoding: str
    eol: str
    mixed_eol: bool
    read_only_reason: str | None = None
    notice: str | None = None  # e.g. the encoding was a guess: worth telling the user

    @property
    def read_only(self) -> bool:
        """True when the file must not be saved (binary or not decodable losslessly)."""
        return self.read_only_reason is not None

    @property
    def binary(self) -> bool:
        """True when the file was detected as binary (a NUL byte in its first 8 KiB)."""
        return self.encoding == BINARY


def _check_eol(eol: str) -> None:
    if eol not in EOL_NAMES:
        raise ValueError(f"Not a line ending: {eol!r} (expected '\\n', '\\r\\n' or '\\r').")


def detect_eol(text: str, default: str = "\n") -> tuple[str, bool]:
    """Return ``(dominant line ending, mixed)`` for ``text``.

    The dominant ending is the most frequent of LF, CRLF and lone CR. On a tie ``default`` wins
    if it is among the tied kinds, otherwise LF, then CRLF, then CR. Text without any line
    ending gives ``(default, False)``.
    """
    _check_eol(default)
    crlf = text.count("\r\n")
    counts = {"\n": text.count("\n") - crlf, "\r\n": crlf, "\r": text.count("\r") - crlf}
    present = [eol for eol, n in counts.items() if n]
    if not present:
        return default, False
    best = max(counts.values())
    tied = [eol for eol in present if counts[eol] == best]
    dominant = default if default in tied else tied[0]
    return dominant, len(present) > 1


def _read_only(text: str, label: str, reason: str, default_eol: str) -> Decoded:
    eol, mixed = detect_eol(text, default_eol)
    return Decoded(text, label, eol, mixed, reason)


def _decode_binary(data: bytes, default_eol: str) -> Decoded:
    text = data.decode("utf-8", errors="replace").replace("\x00", _NUL_SHOWN_AS)
    return _read_only(text, BINARY, f"Binary file: {_READ_ONLY_TAIL}", default_eol)


def _decode_with(data: bytes, encoding: str, default_eol: str) -> Decoded:
    """Decode ``data`` (which starts with ``encoding``'s byte order mark, if any) strictly;
    invalid data gives a read-only result that names the first bad byte."""
    bom, codec, label = _CODECS[encoding]
    body = data[len(bom) :]
    try:
        text = body.decode(codec)
        if encoding in _LEGACY and text.encode(codec) != body:
            # e.g. Shift JIS bytes that decode but would not be written back the same
            raise UnicodeDecodeError(
                codec, body, _first_difference(text, codec, body), len(body), "does not round trip"
            )
    except UnicodeDecodeError as exc:
        # "UTF-8 with BOM" reads oddly in "not valid ..."; name the encoding itself.
        name = label.removesuffix(" with BOM")
        mark = f"has a {name} byte order mark but " if bom else ""
        reason = (
            f"This file {mark}is not valid {name} (first bad byte at offset "
            f"{len(bom) + exc.start}): {_READ_ONLY_TAIL}"
        )
        shown = body.decode(codec, errors="replace")
        return _read_only(shown, f"unknown (invalid {name})", reason, default_eol)
    eol, mixed = detect_eol(text, default_eol)
    return Decoded(text, encoding, eol, mixed, None)


def _first_difference(text: str, codec: str, body: bytes) -> int:
    """The offset in ``body`` of the first character that does not round trip."""
    offset = 0
    for char in text:
        encoded = char.encode(codec)
        if body[offset : offset + len(encoded)] != encoded:
            return offset
        offset += len(encoded)
    return offset


def normalize_encoding(name: str) -> str | None:
    """The id (see :data:`ENCODING_CHOICES`) for an encoding name such as ``"latin-1"`` or
    ``"Windows-1252"``; None for a name Python does not know or the editor does not offer."""
    if name in _CODECS:
        return name
    try:
        canonical = codecs.lookup(name).name
    except LookupError:
        return None
    return canonical if canonical in _CODECS else None


def declared_encoding(data: bytes) -> str | None:
    """The encoding name a file declares in its first two lines (PEP 263's rule: the second
    line counts only when the first is blank or a comment), or None. The name is as written."""
    lines = data[:1024].splitlines()[:2]
    for index, line in enumerate(lines):
        line = line[:400]
        for pattern in (_PEP263, _EMACS) if index or not line.startswith(b"<?xml") else (_XML,):
            match = pattern.search(line)
            if match:
                return match.group(1).decode("ascii")
        if not _BLANK_OR_COMMENT.match(line):
            break
    return None


def _is_damaged_utf8(data: bytes) -> bool:
    """At least as many valid UTF-8 multi-byte characters as stray high bytes: UTF-8 with
    damage rather than a legacy 8-bit file (whose accented letters are lone high bytes)."""
    sequences = covered = 0
    for match in _UTF8_MULTIBYTE.finditer(data):
        sequences += 1
        covered += match.end() - match.start()
    stray = len(data) - len(data.translate(None, _HIGH_BYTES)) - covered
    return sequences >= stray


def _decode_chosen(data: bytes, encoding: str, default_eol: str) -> Decoded:
    """Decode with an encoding the user chose; a byte order mark still has its say for the
    UTF-8 family (UTF-8 keeps a BOM it finds; UTF-8 with BOM without one is plain UTF-8)."""
    if encoding in ("utf-8", "utf-8-sig"):
        encoding = "utf-8-sig" if data.startswith(codecs.BOM_UTF8) else "utf-8"
    bom = _CODECS[encoding][0]
    if bom and not data.startswith(bom):
        label = _CODECS[encoding][2]
        shown = data.decode("utf-8", errors="replace").replace("\x00", _NUL_SHOWN_AS)
        return _read_only(
            shown,
            f"unknown (not {label})",
            f"This file has no {label} byte order mark: {_READ_ONLY_TAIL}",
            default_eol,
        )
    decoded = _decode_with(data, encoding, default_eol)
    if not decoded.read_only and "\x00" in decoded.text:
        return _read_only(
            decoded.text.replace("\x00", _NUL_SHOWN_AS),
            BINARY,
            "This file contains NUL characters, which the editor cannot hold: opened "
            "read-only so it is never rewritten.",
            default_eol,
        )
    return decoded


def decode_bytes(data: bytes, default_eol: str = "\n", encoding: str | None = None) -> Decoded:
    """Decode a file's bytes for the editor (see the module docstring for the rules).

    With ``encoding`` (an id of :data:`ENCODING_CHOICES`), decode with that encoding only:
    bytes it cannot decode losslessly give a read-only result, as for any other file.
    """
    _check_eol(default_eol)
    if encoding is not None:
        chosen = normalize_encoding(encoding)
        if chosen is None:
            raise ValueError(f"Unknown encoding {encoding!r}.")
        return _decode_chosen(data, chosen, default_eol)
    for bom_encoding in _BOM_ORDER:
        if not data.startswith(_CODECS[bom_encoding][0]):
            continue
        if bom_encoding == "utf-8-sig" and b"\x00" in data:
            return _decode_binary(data, default_eol)
        decoded = _decode_with(data, bom_encoding, default_eol)
        if bom_encoding == "utf-32-le-bom" and decoded.read_only:
            continue  # FF FE 00 00 may equally be UTF-16 LE text that starts with U+0000
        if not decoded.read_only and "\x00" in decoded.text:
            return _read_only(
                decoded.text.replace("\x00", _NUL_SHOWN_AS),
                BINARY,
                "This file contains NUL characters, which the editor cannot hold: opened "
                "read-only so it is never rewritten.",
                default_eol,
            )
        return decoded
    if b"\x00" in data:
        return _decode_binary(data, default_eol)
    declared = declared_encoding(data)
    named = normalize_encoding(declared) if declared else None
    if named is not None and named not in ("utf-8", "utf-8-sig"):
        decoded = _decode_with(data, named, default_eol)
        if not decoded.read_only:
            return decoded
    decoded = _decode_with(data, "utf-8", default_eol)
    if not decoded.read_only or _is_damaged_utf8(data):
        return decoded
    for guess in _LEGACY_GUESSES:
        guessed = _decode_with(data, guess, default_eol)
        if not guessed.read_only:
            return replace(
                guessed,
                notice=(
                    f"This file is not valid UTF-8: opened as {_CODECS[guess][2]}, a guess. If "
                    "the text looks wrong, reopen it with the right encoding."
                ),
            )
    return decoded


def encode_text(text: str, encoding: str) -> bytes:
    """Encode ``text`` for saving with ``encoding`` (a :class:`Decoded` ``encoding``).

    Raises ``ValueError`` for read-only labels, unknown encodings and text the encoding cannot
    represent (e.g. a lone surrogate).
    """
    entry = _CODECS.get(encoding)
    if entry is None:
        if encoding == BINARY or encoding.startswith("unknown"):
            raise ValueError(
                f"Cannot save as {encoding!r}: the file was opened read-only so it is never "
                "rewritten."
            )
        known = ", ".join(sorted(_CODECS))
        raise ValueError(f"Unknown encoding {encoding!r} (expected one of: {known}).")
    bom, codec, label = entry
    try:
        return bom + text.encode(codec)
    except UnicodeEncodeError as exc:
        char = ord(text[exc.start])
        raise ValueError(
            f"Cannot save as {label}: character U+{char:04X} at position {exc.start} "
            "cannot be encoded."
        ) from exc


def read_text_file(path: str | os.PathLike[str], default_eol: str = "\n") -> tuple[Decoded, bytes]:
    """Read and decode the file at ``path``; also return its raw bytes (for change detection)."""
    with open(path, "rb") as f:
        data = f.read()
    return decode_bytes(data, default_eol), data


def encoding_label(encoding: str) -> str:
    """The status bar text for ``encoding``; a read-only label is returned unchanged."""
    entry = _CODECS.get(encoding)
    return entry[2] if entry is not None else encoding


# Names of files that are compiled or binary whatever their bytes say: never offered as text
# context (related files' chat chips, quick open's related marks). Checked by name so that no
# file is read to decide.
BINARY_SUFFIXES = frozenset(
    {
        ".pyc", ".pyo", ".pyd", ".so", ".dylib", ".dll", ".exe", ".o", ".a", ".lib", ".obj",
        ".class", ".jar", ".whl", ".egg", ".zip", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".tar",
        ".png", ".jpg", ".jpeg", ".gif", ".bmp", ".ico", ".webp", ".pdf", ".woff", ".woff2",
        ".ttf", ".otf", ".mp3", ".mp4", ".wav", ".sqlite", ".sqlite3", ".db", ".gguf", ".bin",
    }
)  # fmt: skip
_BINARY_FOLDERS = frozenset({"__pycache__", ".git"})


def binary_by_name(path: str) -> bool:
    """True for a repository path whose name says compiled or binary (``BINARY_SUFFIXES``,
    any folder ``__pycache__``); case-insensitive suffixes."""
    parts = path.replace("\\", "/").split("/")
    if any(part in _BINARY_FOLDERS for part in parts[:-1]):
        return True
    name = parts[-1].lower()
    dot = name.rfind(".")
    return dot > 0 and name[dot:] in BINARY_SUFFIXES
