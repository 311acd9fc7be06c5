"""The bug finder's function spans come from ``ast`` in pieces of about ``PIECE_LINES`` lines
(one ``ast.parse`` of a whole big file held the GIL 13-18 ms and stalled the UI thread): the
spans are exactly the whole-file parse's, and no single parse reads a big file whole."""

from __future__ import annotations

import argparse
import ast
import json.encoder
from pathlib import Path

import pytest

from forecode_core.bugs import functions
from forecode_core.bugs.functions import functions_in


def _whole(text: str) -> list[functions.Function]:
    out: list[functions.Function] = []
    functions._collect(ast.parse(text), 0, out)
    return sorted(out, key=lambda f: (f.start_line, -f.end_line))


def _filler(n: int) -> str:
    return "".join(f"def f{i}(a):\n    return a + {i}\n\n" for i in range(n))


CASES = {
    "decorated after a long run": _filler(70) + "@property\n@staticmethod\ndef g():\n    pass\n",
    "a docstring with code at column 0": _filler(70)
    + 'X = """\ndef fake():\n    pass\nclass Nope:\n"""\n'
    + _filler(3),
    "brackets closed at column 0": _filler(70) + "D = {\n'a': 1,\n}\n" + _filler(3),
    "functions in a top-level if": _filler(70)
    + "if True:\n    def inner():\n        pass\nelse:\n    def other():\n        pass\n",
    "try/except at column 0": _filler(70)
    + "try:\n    import x\nexcept ImportError:\n    x = None\n",
    "a form feed and CRLF": (_filler(70) + "\x0c\ndef after_ff():\n    return 1\n").replace(
        "\n", "\r\n"
    ),
    "classes and methods": _filler(70)
    + "class A:\n    def m(self):\n        def n():\n            pass\n        return n\n",
}


@pytest.mark.parametrize("text", list(CASES.values()), ids=list(CASES))
def test_the_spans_are_the_whole_files(text: str) -> None:
    assert functions_in("m.py", text) == _whole(text)


@pytest.mark.parametrize("module", [argparse, json.encoder])
def test_real_files_in_pieces_are_the_whole_files(
    module: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = Path(str(module.__file__)).read_text(encoding="utf-8")
    expected = _whole(text)
    sizes: list[int] = []
    real = ast.parse

    def parse(source: str, *args: object, **kwargs: object) -> ast.Module:
        sizes.append(source.count("\n"))
        return real(source, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(functions.ast, "parse", parse)
    assert functions_in("m.py", text) == expected
    # never the whole file at once: pieces cut at top-level statements (a class stays whole:
    # argparse's biggest piece is its 986-line ArgumentParser, ~5 ms, against 13-18 ms whole)
    total = text.count("\n")
    assert len(sizes) >= 2 and max(sizes) <= 0.6 * total, (sizes, total)


def test_a_bad_cut_falls_back_to_one_parse() -> None:
    # a triple-quoted string whose body has column-0 lines past the first piece's end
    body = "".join(f"line {i}\n" for i in range(300))
    text = 'S = """\n' + body + '"""\n\ndef after():\n    return S\n'
    assert functions_in("m.py", text) == _whole(text)
    assert [f.name for f in functions_in("m.py", text)] == ["after"]


def test_a_syntax_error_gives_the_chunker_fallback_not_a_crash() -> None:
    text = _filler(80) + "def broken(:\n"
    assert functions_in("m.py", text) is not None
