"""The index's chunking never hands tree-sitter a whole file in one C call
(forecode_core/index/chunking.py, ``_parse``): the parse reads the source in pieces of at most
``PARSE_PIECE_BYTES`` and reports progress, so the GIL can pass to the editor's UI thread between
them; the chunks are the same as with the whole file parsed at once.

Deterministic proxies, never timings: a spy on the parser records what tree-sitter was given."""

from __future__ import annotations

import argparse
import hashlib
import pathlib
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from forecode_core.index import chunking
from forecode_core.index.chunking import (
    PARSE_PIECE_BYTES,
    Chunk,
    chunk_text,
    content_hash,
    normalise,
)

ARGPARSE = pathlib.Path(argparse.__file__).read_text(encoding="utf-8")


def _generated(size: int) -> str:
    """A large Python file: the standard library's argparse.py repeated up to ``size`` bytes."""
    text = ""
    while len(text.encode("utf-8")) < size:
        text += ARGPARSE + "\n"
    return text


def _non_ascii() -> str:
    """Python full of 2-, 3- and 4-byte characters, so piece boundaries fall inside some."""
    lines = []
    for i in range(2000):
        lines.append(f"def f{i}(x='é漢😀{i}'):\n    return x + 'ß∑𝔘' * {i}\n")
    return "\n".join(lines)


class _Spy:
    """A real parser whose ``parse`` records what it was given: ``sizes`` of each piece (a
    bytes source counts as one piece) and ``progress`` calls; or, with ``whole``, the old way:
    every piece read first and the bytes parsed in one call."""

    def __init__(self, real: Any, whole: bool = False) -> None:
        self.real = real
        self.whole = whole
        self.sizes: list[int] = []
        self.ends: list[int] = []
        self.progress = 0

    def reset(self) -> None:
        self.real.reset()

    def parse(self, source: Any, *args: Any, **kwargs: Any) -> Any:
        if not callable(source):
            self.sizes.append(len(source))
            return self.real.parse(source, *args, **kwargs)
        if self.whole:
            return self.real.parse(b"".join(_read_all(source)))
        read: Callable[[int, Any], bytes] = source

        def spy_read(offset: int, point: Any) -> bytes:
            piece = read(offset, point)
            self.sizes.append(len(piece))
            self.ends.append(offset + len(piece))
            return piece

        progress = kwargs.get("progress_callback")

        def spy_progress(offset: int, has_error: bool) -> bool:
            self.progress += 1
            assert progress is not None
            return bool(progress(offset, has_error))

        if progress is not None:
            kwargs["progress_callback"] = spy_progress
        return self.real.parse(spy_read, *args, **kwargs)


def _read_all(read: Callable[[int, Any], bytes]) -> Iterator[bytes]:
    offset = 0
    while piece := read(offset, None):
        yield piece
        offset += len(piece)


def _chunks_with(
    monkeypatch: pytest.MonkeyPatch, path: str, text: str, whole: bool = False
) -> tuple[list[Chunk], str, _Spy]:
    real_parser = chunking._parser
    spies: list[_Spy] = []

    def spy_parser(grammar: str) -> Any:
        parser = real_parser(grammar)
        spies.append(_Spy(parser, whole))
        return spies[-1]

    with monkeypatch.context() as patch:
        patch.setattr(chunking, "_parser", spy_parser)
        chunks, method = chunk_text(path, text)
    assert len(spies) == 1
    return chunks, method, spies[0]


@pytest.mark.parametrize("size", [755_000, 1 << 20])
def test_a_big_file_is_parsed_in_pieces(monkeypatch: pytest.MonkeyPatch, size: int) -> None:
    text = _generated(size)
    chunks, method, spy = _chunks_with(monkeypatch, "big.py", text)
    assert method == "syntax" and chunks
    assert spy.sizes, "tree-sitter was never called"
    assert max(spy.sizes) <= PARSE_PIECE_BYTES, "the whole source went to tree-sitter at once"
    assert max(spy.ends) == len(text.encode("utf-8"))  # it read to the end
    # The progress callback runs while tree-sitter balances the finished tree (no reads then).
    assert spy.progress > len(spy.sizes)


@pytest.mark.parametrize(
    "path, text",
    [
        ("argparse.py", ARGPARSE),
        ("big.py", _generated(755_000)),
        ("uni.py", _non_ascii()),
        ("big.js", "function f(a) {\n  return a * 2;\n}\n// ü€\n" * 6000),
    ],
    ids=["argparse", "generated-755KB", "non-ascii", "javascript"],
)
def test_same_chunks_as_one_whole_parse(
    monkeypatch: pytest.MonkeyPatch, path: str, text: str
) -> None:
    pieces, method, spy = _chunks_with(monkeypatch, path, text)
    whole, whole_method, _ = _chunks_with(monkeypatch, path, text, whole=True)
    assert method == whole_method == "syntax"
    assert len(spy.sizes) > 1 or len(text) < PARSE_PIECE_BYTES
    assert pieces == whole


def test_piece_boundaries_split_characters_and_the_tree_is_the_same() -> None:
    """Pieces are cut by bytes, inside a UTF-8 character too; tree-sitter joins them."""
    source = _non_ascii().encode("utf-8")
    cuts = range(PARSE_PIECE_BYTES, len(source), PARSE_PIECE_BYTES)
    assert any(source[cut] & 0xC0 == 0x80 for cut in cuts)  # a continuation byte
    parser = chunking._parser("python")
    assert parser is not None
    tree = chunking._parse(parser, source)
    assert tree is not None
    assert str(tree.root_node) == str(parser.parse(source).root_node)
    assert not tree.root_node.has_error


class _HashSpy:
    """hashlib's sha256, recording the size of each update."""

    def __init__(self, sizes: list[int]) -> None:
        self.real = hashlib.sha256()
        self.sizes = sizes

    def update(self, data: bytes) -> None:
        self.sizes.append(len(data))
        self.real.update(data)

    def digest(self) -> bytes:
        return self.real.digest()


def test_a_chunk_is_hashed_in_updates_that_keep_the_gil(monkeypatch: pytest.MonkeyPatch) -> None:
    """hashlib lets go of the GIL for an update of 2,048 bytes or more and takes it straight
    back, which restarts a waiting thread's 5 ms wait; the digest is the same in pieces."""
    text = "x = 'é漢😀'\n" * 3000
    sizes: list[int] = []
    spy = SimpleNamespace(sha256=lambda: _HashSpy(sizes))
    with monkeypatch.context() as patch:
        patch.setattr(chunking, "hashlib", spy)
        pieced = content_hash(text)
    assert len(sizes) > 1 and max(sizes) < 2048
    assert pieced == hashlib.sha256(normalise(text).encode("utf-8")).digest()
