"""Tests for forecode_core.text.textfile: lossless decoding, round trips, read-only detection."""

from __future__ import annotations

import codecs
import os
import random
from pathlib import Path

import pytest

from forecode_core.text.textfile import (
    BINARY,
    EDITABLE_ENCODINGS,
    EOL_NAMES,
    Decoded,
    decode_bytes,
    detect_eol,
    encode_text,
    encoding_label,
    read_text_file,
)

BOM8 = codecs.BOM_UTF8
BOM16LE = codecs.BOM_UTF16_LE
BOM16BE = codecs.BOM_UTF16_BE
BOM32LE = codecs.BOM_UTF32_LE
BOM32BE = codecs.BOM_UTF32_BE
# Three valid UTF-8 characters (7 bytes): enough that up to three stray bytes after them make
# damaged UTF-8 (read-only), not a legacy 8-bit file (guessed, editable; see test_encodings).
U8 = "\u00e9\u20ac\u00fc".encode()

# --------------------------------------------------------------------------------- detect_eol


@pytest.mark.parametrize(
    ("text", "default", "expected"),
    [
        ("", "\n", ("\n", False)),
        ("", "\r\n", ("\r\n", False)),
        ("no newline at all", "\r", ("\r", False)),
        ("a\nb\n", "\r\n", ("\n", False)),
        ("a\r\nb\r\n", "\n", ("\r\n", False)),
        ("a\rb\r", "\n", ("\r", False)),
        ("a\r\nb\r\nc\n", "\n", ("\r\n", True)),
        ("a\nb\nc\r\n", "\r\n", ("\n", True)),
        ("a\rb\rc\n", "\n", ("\r", True)),
        ("\r\n\r\n\n\r", "\n", ("\r\n", True)),
        # ties: the default wins when it is among the tied kinds ...
        ("a\nb\r\n", "\r\n", ("\r\n", True)),
        ("a\nb\r\n", "\n", ("\n", True)),
        ("a\rb\r\n", "\r", ("\r", True)),
        # ... otherwise LF, then CRLF, then CR
        ("a\nb\r\n", "\r", ("\n", True)),
        ("a\rb\r\n", "\n", ("\r\n", True)),
        # "\n\r" is LF followed by a lone CR, not one CRLF
        ("x\n\ry", "\n", ("\n", True)),
        ("\r", "\n", ("\r", False)),
        ("\r\n", "\n", ("\r\n", False)),
    ],
)
def test_detect_eol(text: str, default: str, expected: tuple[str, bool]) -> None:
    assert detect_eol(text, default) == expected


@pytest.mark.parametrize("bad", ["", "\n\n", "\x85", "crlf", "\u2028"])
def test_detect_eol_rejects_a_bad_default(bad: str) -> None:
    with pytest.raises(ValueError, match="Not a line ending"):
        detect_eol("a\nb", bad)
    with pytest.raises(ValueError, match="Not a line ending"):
        decode_bytes(b"a\nb", bad)


# ------------------------------------------------------------------------ decode_bytes: editable


@pytest.mark.parametrize(
    ("data", "text", "encoding", "eol", "mixed"),
    [
        (b"", "", "utf-8", "\n", False),
        (b"hello", "hello", "utf-8", "\n", False),
        (b"a\nb\n", "a\nb\n", "utf-8", "\n", False),
        (b"a\r\nb\r\n", "a\r\nb\r\n", "utf-8", "\r\n", False),
        (b"a\rb\r", "a\rb\r", "utf-8", "\r", False),
        (b"a\r\nb\nc\r\n", "a\r\nb\nc\r\n", "utf-8", "\r\n", True),
        (
            "caf\u00e9 \u65e5\u672c \U0001f600\n".encode(),
            "caf\u00e9 \u65e5\u672c \U0001f600\n",
            "utf-8",
            "\n",
            False,
        ),
        (BOM8, "", "utf-8-sig", "\n", False),
        (BOM8 + b"x\r\ny", "x\r\ny", "utf-8-sig", "\r\n", False),
        # only the first mark is a BOM; a second one is a character of the text
        (BOM8 + BOM8 + b"z", "\ufeffz", "utf-8-sig", "\n", False),
        (BOM16LE, "", "utf-16-le-bom", "\n", False),
        (
            BOM16LE + "h\u00e9\r\n".encode("utf-16-le"),
            "h\u00e9\r\n",
            "utf-16-le-bom",
            "\r\n",
            False,
        ),
        (
            BOM16BE + "h\u00e9\n\U0001f600".encode("utf-16-be"),
            "h\u00e9\n\U0001f600",
            "utf-16-be-bom",
            "\n",
            False,
        ),
        (
            BOM32LE + "a\rb\U0001f600".encode("utf-32-le"),
            "a\rb\U0001f600",
            "utf-32-le-bom",
            "\r",
            False,
        ),
        (BOM32BE + "a\r\n".encode("utf-32-be"), "a\r\n", "utf-32-be-bom", "\r\n", False),
    ],
)
def test_decode_editable(data: bytes, text: str, encoding: str, eol: str, mixed: bool) -> None:
    d = decode_bytes(data)
    assert d == Decoded(text, encoding, eol, mixed, None)
    assert not d.read_only
    assert not d.binary
    assert encode_text(d.text, d.encoding) == data


@pytest.mark.parametrize(
    "data",
    [
        BOM16BE + "\x00a".encode("utf-16-be"),
        # FF FE 00 00 that is not valid UTF-32 (length 6) is UTF-16 LE starting with U+0000
        BOM16LE + "\x00b".encode("utf-16-le"),
        # unlike git, a NUL after the first 8 KiB counts too: the editor cannot hold it
        b"x" * 8192 + b"\x00",
    ],
)
def test_nul_characters_anywhere_open_read_only(data: bytes) -> None:
    d = decode_bytes(data)
    assert d.read_only and d.binary
    assert "\x00" not in d.text and "\u2400" in d.text
    assert "read-only" in (d.read_only_reason or "")


def test_default_eol_is_used_only_without_line_endings() -> None:
    assert decode_bytes(b"one line", "\r\n").eol == "\r\n"
    assert decode_bytes(b"a\nb", "\r\n").eol == "\n"
    assert decode_bytes(b"", "\r").eol == "\r"


def test_line_endings_are_not_normalised() -> None:
    data = b"a\r\nb\nc\rd\n\re"
    d = decode_bytes(data)
    assert d.text == "a\r\nb\nc\rd\n\re"
    assert d.mixed_eol


# ----------------------------------------------------------------------- decode_bytes: read-only


@pytest.mark.parametrize(
    "data",
    [
        b"\x00",
        b"abc\x00def",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)),
        b"x" * 8191 + b"\x00",  # last byte of the sniffed window
        BOM8 + b"text\x00more",  # a UTF-8 BOM does not exempt a file from the NUL test
        b"\x00\x00\xfe\xfe",  # not a UTF-32 BE mark
        "utf16 without bom".encode("utf-16-le"),
    ],
)
def test_binary_is_read_only(data: bytes) -> None:
    d = decode_bytes(data)
    assert d.binary
    assert d.read_only
    assert d.encoding == BINARY
    assert d.read_only_reason == "Binary file: opened read-only so it is never rewritten."
    assert "\x00" not in d.text
    assert d.text.count("\u2400") == data.count(b"\x00")
    with pytest.raises(ValueError, match="read-only"):
        encode_text(d.text, d.encoding)


def test_binary_display_keeps_everything_after_nul() -> None:
    d = decode_bytes(b"head\x00tail\xff\r\nend")
    assert d.text == "head\u2400tail\ufffd\r\nend"
    assert (d.eol, d.mixed_eol) == ("\r\n", False)


@pytest.mark.parametrize(
    ("data", "offset", "label"),
    [
        (U8 + b"\xff", 7, "unknown (invalid UTF-8)"),
        (U8 + b"abc\xe9def", 10, "unknown (invalid UTF-8)"),  # latin-1 é
        (U8 + b"ok\n" * 500 + b"\x80", 1507, "unknown (invalid UTF-8)"),
        (U8 + b"abc\xe2\x82", 10, "unknown (invalid UTF-8)"),  # truncated sequence at the end
        (U8 + b"\xc0\xaf", 7, "unknown (invalid UTF-8)"),  # overlong encoding
        (U8 + b"x\xed\xa0\x80", 8, "unknown (invalid UTF-8)"),  # encoded surrogate
        (BOM8 + b"ab\xfe", 5, "unknown (invalid UTF-8)"),  # offset counts the BOM
        (BOM16LE + b"a\x00b", 4, "unknown (invalid UTF-16 LE)"),  # odd length
        (BOM16BE + b"\xd8\x00\x00a", 2, "unknown (invalid UTF-16 BE)"),  # lone surrogate
        (BOM32BE + b"\x00\x11\x00\x00", 4, "unknown (invalid UTF-32 BE)"),  # > U+10FFFF
    ],
)
def test_invalid_encoding_is_read_only(data: bytes, offset: int, label: str) -> None:
    d = decode_bytes(data)
    assert d.read_only
    assert not d.binary
    assert d.encoding == label
    assert d.read_only_reason is not None
    assert f"first bad byte at offset {offset})" in d.read_only_reason
    assert d.read_only_reason.endswith("opened read-only so it is never rewritten.")
    assert "\ufffd" in d.text
    with pytest.raises(ValueError, match="read-only"):
        encode_text(d.text, d.encoding)


def test_invalid_utf8_reason_sentence() -> None:
    d = decode_bytes(U8 + b"x" * 1234 + b"\xff")
    assert d.read_only_reason == (
        "This file is not valid UTF-8 (first bad byte at offset 1241): "
        "opened read-only so it is never rewritten."
    )
    assert d.text == "\u00e9\u20ac\u00fc" + "x" * 1234 + "\ufffd"


def test_invalid_utf16_reason_mentions_the_bom() -> None:
    d = decode_bytes(BOM16LE + b"abc")
    assert d.read_only_reason is not None
    assert d.read_only_reason.startswith(
        "This file has a UTF-16 LE byte order mark but is not valid UTF-16 LE"
    )


# --------------------------------------------------------------------------------- encode_text


@pytest.mark.parametrize(
    ("text", "encoding", "expected"),
    [
        ("a\r\nb", "utf-8", b"a\r\nb"),
        ("a\r\nb", "utf-8-sig", BOM8 + b"a\r\nb"),
        ("", "utf-8-sig", BOM8),
        ("\u00e9\n", "utf-16-le-bom", BOM16LE + b"\xe9\x00\n\x00"),
        ("\u00e9\n", "utf-16-be-bom", BOM16BE + b"\x00\xe9\x00\n"),
        ("\U0001f600", "utf-16-le-bom", BOM16LE + b"\x3d\xd8\x00\xde"),
        ("a", "utf-32-le-bom", BOM32LE + b"a\x00\x00\x00"),
        ("a", "utf-32-be-bom", BOM32BE + b"\x00\x00\x00a"),
    ],
)
def test_encode_text(text: str, encoding: str, expected: bytes) -> None:
    assert encode_text(text, encoding) == expected


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16", "UTF-8", "", "ascii"])
def test_encode_text_rejects_unknown_encodings(encoding: str) -> None:
    with pytest.raises(ValueError, match="Unknown encoding"):
        encode_text("x", encoding)


@pytest.mark.parametrize("encoding", sorted(EDITABLE_ENCODINGS))
def test_encode_text_rejects_unencodable_text(encoding: str) -> None:
    with pytest.raises(ValueError, match=r"U\+D800 at position 1"):
        encode_text("a\ud800b", encoding)


# ------------------------------------------------------------------------------ encoding_label


@pytest.mark.parametrize(
    ("encoding", "label"),
    [
        ("utf-8", "UTF-8"),
        ("utf-8-sig", "UTF-8 with BOM"),
        ("utf-16-le-bom", "UTF-16 LE"),
        ("utf-16-be-bom", "UTF-16 BE"),
        ("utf-32-le-bom", "UTF-32 LE"),
        ("utf-32-be-bom", "UTF-32 BE"),
        ("binary", "binary"),
        ("unknown (invalid UTF-8)", "unknown (invalid UTF-8)"),
    ],
)
def test_encoding_label(encoding: str, label: str) -> None:
    assert encoding_label(encoding) == label


def test_eol_names() -> None:
    assert EOL_NAMES == {"\n": "LF", "\r\n": "CRLF", "\r": "CR"}


# --------------------------------------------------------------------------------- round trips

_PIECES = [
    "a", "Zz", " ", "\t", "\n", "\r\n", "\r", "\n\r", "\u00e9", "\u00df", "\u20ac",
    "\u65e5\u672c", "\U0001f600", "\U00010348", "\ufeff", "\u2028", "\x7f", "\x01",
]  # fmt: skip

_PREFIXES = [b"", BOM8, BOM16LE, BOM16BE, BOM32LE, BOM32BE]
_TEXT_CODECS = {b"": "utf-8", BOM8: "utf-8", BOM16LE: "utf-16-le", BOM16BE: "utf-16-be",
                BOM32LE: "utf-32-le", BOM32BE: "utf-32-be"}  # fmt: skip


def _random_text(rng: random.Random) -> str:
    return "".join(rng.choice(_PIECES) for _ in range(rng.randrange(0, 40)))


def _random_text_files(seed: int, count: int) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        prefix = rng.choice(_PREFIXES)
        text = _random_text(rng)
        if prefix == b"" and text.startswith("\ufeff"):
            text = "x" + text  # would otherwise be a UTF-8 BOM file
        out.append(prefix + text.encode(_TEXT_CODECS[prefix]))
    return out


_TABLE = [
    b"",
    b"\n",
    b"\r\n",
    b"\r",
    b"\n\n\n",
    b"no trailing newline",
    b"trailing\n",
    b"crlf\r\nlines\r\n",
    b"cr\rlines\r",
    b"mixed\r\nall\nkinds\rof\n\rendings",
    "non-ascii \u00e9\u00e8 \u4e2d\u6587 \U0001f680\r\n".encode(),
    BOM8,
    BOM8 + b"\r\n",
    BOM8 + "bom \u00e9\r\nx".encode(),
    BOM16LE + "utf16 \u00e9\r\n\U0001f680".encode("utf-16-le"),
    BOM16BE + "utf16 \u00e9\r\U0001f680\n".encode("utf-16-be"),
    BOM32LE + "utf32\r\n".encode("utf-32-le"),
    BOM32BE + "utf32\n\u00e9".encode("utf-32-be"),
    b"\t  indented\n\tmore  \n",
    b"\x1b[31mansi\x1b[0m\n",
]


@pytest.mark.parametrize("data", _TABLE + _random_text_files(seed=1234, count=300))
def test_round_trip_text_files(data: bytes) -> None:
    d = decode_bytes(data)
    assert not d.read_only, d.read_only_reason
    assert encode_text(d.text, d.encoding) == data


def _random_bytes(seed: int, count: int) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        raw = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 24)))
        out.append(rng.choice([b"", b"", BOM8, BOM16LE, BOM16BE, BOM32LE]) + raw)
    return out


@pytest.mark.parametrize("seed", range(4))
def test_random_bytes_round_trip_or_are_read_only(seed: int) -> None:
    editable = read_only = 0
    for data in _random_bytes(seed, 2000):
        d = decode_bytes(data)
        if d.read_only:
            read_only += 1
            assert d.read_only_reason
            assert d.encoding not in EDITABLE_ENCODINGS
            if d.binary:
                assert "\x00" not in d.text
            with pytest.raises(ValueError):
                encode_text(d.text, d.encoding)
        else:
            editable += 1
            assert d.encoding in EDITABLE_ENCODINGS
            assert encode_text(d.text, d.encoding) == data, data
    # the generator must exercise both branches for the test to mean anything
    assert editable > 100
    assert read_only > 100


# ------------------------------------------------------------------------------ read_text_file


@pytest.mark.parametrize(
    ("data", "encoding", "read_only"),
    [
        (b"", "utf-8", False),
        (b"line1\r\nline2\r\n", "utf-8", False),
        (BOM8 + "\u00e9\n".encode(), "utf-8-sig", False),
        (BOM16BE + "x\r\n".encode("utf-16-be"), "utf-16-be-bom", False),
        (b"\x00\x01\x02", "binary", True),
        (U8 + b"\xff\xfa", "unknown (invalid UTF-8)", True),
        (b"\xff\xfa", "cp1252", False),  # legacy 8-bit text: guessed, and round trips
    ],
)
def test_read_text_file(tmp_path: Path, data: bytes, encoding: str, read_only: bool) -> None:
    path = tmp_path / "file.txt"
    path.write_bytes(data)
    decoded, raw = read_text_file(path)
    assert raw == data
    assert decoded == decode_bytes(data)
    assert decoded.encoding == encoding
    assert decoded.read_only is read_only
    if not read_only:
        path.write_bytes(encode_text(decoded.text, decoded.encoding))
        assert path.read_bytes() == data


def test_read_text_file_accepts_str_path_and_default_eol(tmp_path: Path) -> None:
    path = tmp_path / "single"
    path.write_bytes(b"no newline")
    decoded, raw = read_text_file(os.fspath(path), default_eol="\r\n")
    assert raw == b"no newline"
    assert decoded.eol == "\r\n"


def test_read_text_file_large_file(tmp_path: Path) -> None:
    data = ("line \u00e9\r\n" * 200_000).encode()
    path = tmp_path / "big.txt"
    path.write_bytes(data)
    decoded, raw = read_text_file(path)
    assert raw == data
    assert (decoded.encoding, decoded.eol, decoded.mixed_eol) == ("utf-8", "\r\n", False)
    assert encode_text(decoded.text, decoded.encoding) == data


def test_read_text_file_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_text_file(tmp_path / "absent.txt")
