"""Chunking (forecode_core/index/chunking.py): syntactic chunks in every language the editor
highlights, line windows elsewhere, on small samples and on real files of the standard library."""

from __future__ import annotations

import hashlib
import itertools
import os
import sysconfig
import threading

import pytest

from forecode_core.index.chunking import (
    DEFAULT_LIMITS,
    LANGUAGE_GRAMMARS,
    Chunk,
    ChunkLimits,
    chunk_file,
    content_hash,
    language_for_path,
    normalise,
)

# Each definition its own chunk, no merging: the table below shows the syntax as it is.
UNMERGED = ChunkLimits(target_chars=1, min_definition_chars=1)

SAMPLES = {
    "pkg/mod.py": (
        '"""Module doc."""\n'
        "import os\n"
        "\n"
        "# A helper.\n"
        "@cache\n"
        "def helper(x):\n"
        "    return x\n"
        "\n"
        "\n"
        "class Shape:\n"
        '    """A shape."""\n'
        "\n"
        "    def area(self):\n"
        "        return 0\n"
    ),
    "web/app.js": (
        'import x from "y";\n'
        "\n"
        "/** Doubles. */\n"
        "function double(a) {\n"
        "  return a * 2;\n"
        "}\n"
        "\n"
        "class Counter {\n"
        "  inc() { this.n += 1; }\n"
        "}\n"
        "const triple = (x) => x * 3;\n"
        "export function hello() {}\n"
    ),
    "web/types.ts": (
        "interface Point {\n"
        "  x: number;\n"
        "}\n"
        "type Id = string;\n"
        "export class Store implements Point {\n"
        "  x = 1;\n"
        "  get(): number { return this.x; }\n"
        "}\n"
    ),
    "web/view.tsx": ("export function View(): JSX.Element {\n  return <div>hi</div>;\n}\n"),
    "lib/util.c": (
        "#include <stdio.h>\n"
        "\n"
        "struct point { int x; };\n"
        "\n"
        "/* Adds. */\n"
        "static int add(int a, int b) {\n"
        "  return a + b;\n"
        "}\n"
    ),
    "lib/shape.cpp": (
        "namespace geo {\n"
        "class Circle {\n"
        " public:\n"
        "  double r;\n"
        "};\n"
        "}\n"
        "template <typename T> T id(T x) { return x; }\n"
    ),
    "src/lib.rs": (
        "use std::fmt;\n"
        "\n"
        "/// A point.\n"
        "#[derive(Debug)]\n"
        "struct Point { x: i32 }\n"
        "\n"
        "impl Point {\n"
        "    fn norm(&self) -> i32 { self.x }\n"
        "}\n"
    ),
    "cmd/main.go": (
        "package main\n"
        "\n"
        "type S struct{ a int }\n"
        "\n"
        "// M returns a.\n"
        "func (s S) M() int { return s.a }\n"
        "\n"
        "func main() {\n"
        "}\n"
    ),
    "src/A.java": ("package p;\n\npublic class A {\n  int x;\n  void m() {}\n}\n"),
    "conf/settings.json": ('{\n  "a": 1,\n  "b": [1, 2]\n}\n'),
    "conf/ci.yaml": ("name: ci\njobs:\n  test:\n    runs: pytest\n"),
    "Cargo.toml": ('[package]\nname = "x"\n\n[dependencies]\nserde = "1"\n'),
    "docs/guide.md": ("# Guide\n\nIntro.\n\n## Install\n\nRun it.\n"),
    "site/index.html": ("<!doctype html>\n<html>\n<body><p>hi</p></body>\n</html>\n"),
    "site/style.css": ("a { color: red; }\n@media (max-width: 1px) {\n  b { color: blue; }\n}\n"),
    "bin/run.sh": ("#!/bin/sh\ngreet() {\n  echo hi\n}\ngreet\n"),
    "Makefile": ("all: build\nbuild:\n\tcc -o x x.c\n"),
    "db/schema.sql": ("create table t (a int);\nselect a from t;\n"),
}

# (kind initial, symbol, first line, last line) of each chunk, with UNMERGED limits.
EXPECTED = {
    "pkg/mod.py": (
        "python",
        "syntax",
        [
            ("b", "", 1, 1),
            ("b", "", 2, 2),
            ("d", "helper", 4, 7),
            ("d", "Shape", 10, 14),
        ],
    ),
    "web/app.js": (
        "javascript",
        "syntax",
        [
            ("b", "", 1, 1),
            ("d", "double", 3, 6),
            ("d", "Counter", 8, 10),
            ("d", "triple", 11, 11),
            ("d", "hello", 12, 12),
        ],
    ),
    "web/types.ts": (
        "typescript",
        "syntax",
        [
            ("d", "Point", 1, 3),
            ("d", "Id", 4, 4),
            ("d", "Store", 5, 8),
        ],
    ),
    "web/view.tsx": (
        "typescript",
        "syntax",
        [
            ("d", "View", 1, 3),
        ],
    ),
    "lib/util.c": (
        "c",
        "syntax",
        [
            ("b", "", 1, 1),
            ("d", "point", 3, 3),
            ("d", "add", 5, 8),
        ],
    ),
    "lib/shape.cpp": (
        "cpp",
        "syntax",
        [
            ("d", "geo", 1, 6),
            ("d", "id", 7, 7),
        ],
    ),
    "src/lib.rs": (
        "rust",
        "syntax",
        [
            ("b", "", 1, 1),
            ("d", "Point", 3, 5),
            ("d", "Point", 7, 9),
        ],
    ),
    "cmd/main.go": (
        "go",
        "syntax",
        [
            ("b", "", 1, 1),
            ("d", "S", 3, 3),
            ("d", "M", 5, 6),
            ("d", "main", 8, 9),
        ],
    ),
    "src/A.java": (
        "java",
        "syntax",
        [
            ("b", "", 1, 1),
            ("d", "A", 3, 6),
        ],
    ),
    "conf/settings.json": (
        "json",
        "syntax",
        [
            ("b", "", 1, 4),
        ],
    ),
    "conf/ci.yaml": (
        "yaml",
        "syntax",
        [
            ("b", "", 1, 4),
        ],
    ),
    "Cargo.toml": (
        "toml",
        "syntax",
        [
            ("d", "", 1, 2),
            ("d", "", 4, 5),
        ],
    ),
    "docs/guide.md": (
        "markdown",
        "syntax",
        [
            ("d", "", 1, 7),
        ],
    ),
    "site/index.html": (
        "html",
        "syntax",
        [
            ("b", "", 1, 1),
            ("b", "", 2, 4),
        ],
    ),
    "site/style.css": (
        "css",
        "syntax",
        [
            ("b", "", 1, 1),
            ("d", "", 2, 4),
        ],
    ),
    "bin/run.sh": (
        "shell",
        "syntax",
        [
            ("b", "", 1, 1),
            ("d", "greet", 2, 4),
            ("b", "", 5, 5),
        ],
    ),
    "Makefile": (
        "makefile",
        "syntax",
        [
            ("d", "", 1, 1),
            ("d", "", 2, 3),
        ],
    ),
    "db/schema.sql": (
        "sql",
        "syntax",
        [
            ("b", "", 1, 1),
            ("b", "", 2, 2),
        ],
    ),
}

STDLIB = sysconfig.get_paths()["stdlib"]


def check_invariants(
    path: str, data: bytes, chunks: tuple[Chunk, ...], limits: ChunkLimits = DEFAULT_LIMITS
) -> None:
    """What holds for every chunking: each chunk is the file's own lines (a cut long line
    aside), within the size limit, with the right hash; every non-blank line is in a chunk."""
    text = data.decode("utf-8-sig").replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    covered: set[int] = set()
    for chunk in chunks:
        assert chunk.path == path
        assert 1 <= chunk.start_line <= chunk.end_line <= len(lines)
        assert 0 < len(chunk.text) <= limits.max_chars
        assert chunk.text.strip()
        body = "\n".join(lines[chunk.start_line - 1 : chunk.end_line])
        if chunk.start_line == chunk.end_line and chunk.kind == "lines":
            assert chunk.text in body
        else:
            assert chunk.text == body
        assert chunk.content_hash == hashlib.sha256(normalise(chunk.text).encode()).digest()
        covered.update(range(chunk.start_line, chunk.end_line + 1))
    missing = [n for n, line in enumerate(lines, 1) if line.strip() and n not in covered]
    assert missing == []


@pytest.mark.parametrize("path", list(SAMPLES))
def test_samples_in_every_language(path: str) -> None:
    data = SAMPLES[path].encode()
    result = chunk_file(path, data, UNMERGED)
    language, method, expected = EXPECTED[path]
    assert (result.language, result.method, result.skipped) == (language, method, None)
    assert [(c.kind[0], c.symbol, c.start_line, c.end_line) for c in result.chunks] == expected
    check_invariants(path, data, result.chunks, UNMERGED)


def test_every_highlighted_language_has_a_grammar_that_loads() -> None:
    from tree_sitter_language_pack import get_parser

    with_grammar = {lang for lang, grammar in LANGUAGE_GRAMMARS.items() if grammar}
    assert {
        "python",
        "javascript",
        "typescript",
        "c",
        "cpp",
        "rust",
        "go",
        "java",
        "json",
        "yaml",
        "toml",
        "markdown",
        "html",
        "css",
        "shell",
    } <= with_grammar
    for grammar in {g for g in LANGUAGE_GRAMMARS.values() if g} | {"tsx", "scss"}:
        assert get_parser(grammar) is not None  # type: ignore[arg-type]
    assert {path.rsplit(".", 1)[-1] for path in SAMPLES} >= {
        "py",
        "js",
        "ts",
        "tsx",
        "c",
        "cpp",
        "rs",
        "go",
        "java",
        "json",
        "yaml",
        "toml",
        "md",
        "html",
        "css",
        "sh",
        "sql",
    }


@pytest.mark.parametrize(
    ("path", "first_line", "language"),
    [
        ("a/b.py", "", "python"),
        ("x.PYI", "", "python"),
        ("web/x.tsx", "", "typescript"),
        ("Makefile", "", "makefile"),
        ("Cargo.lock", "", "toml"),
        ("tool", "#!/usr/bin/env python3", "python"),
        ("tool", "#!/bin/bash", "shell"),
        ("notes.rst", "", "plaintext"),
        ("LICENSE", "", "plaintext"),
    ],
)
def test_language_for_path(path: str, first_line: str, language: str) -> None:
    assert language_for_path(path, first_line) == language


def test_small_statements_merge_up_to_the_target() -> None:
    source = "".join(f"CONSTANT_{i} = {i}  # a setting\n" for i in range(200))
    source += "\n\ndef " + "function_with_a_body(a, b):\n" + "    return a + b  # sum\n" * 8
    result = chunk_file("settings.py", source.encode())
    blocks = [c for c in result.chunks if c.kind == "block"]
    assert len(blocks) >= 2  # ~6 KB of constants do not fit one target
    assert all(len(c.text) <= DEFAULT_LIMITS.target_chars for c in blocks)
    assert all(c.end_line - c.start_line >= 10 for c in blocks[:-1])
    definition = result.chunks[-1]
    assert (definition.kind, definition.symbol) == ("definition", "function_with_a_body")
    check_invariants("settings.py", source.encode(), result.chunks)


def test_large_class_is_split_into_methods() -> None:
    methods = "".join(
        f"\n    def method_{i}(self, value):\n"
        f'        """Method {i} doubles the value and adds {i}."""\n'
        f"        result = value * 2\n"
        f"        result += {i}\n"
        f"        return result\n"
        for i in range(40)
    )
    source = (
        'import math\n\n\nclass Big(object):\n    """A big class."""\n\n    LIMIT = 10\n' + methods
    )
    data = source.encode()
    result = chunk_file("big.py", data)
    check_invariants("big.py", data, result.chunks)
    lines = source.split("\n")
    header = result.chunks[0]
    assert header.kind == "block" and "class Big(object):" in header.text
    assert '"""A big class."""' in header.text and "LIMIT = 10" in header.text
    definitions = [c for c in result.chunks if c.kind == "definition"]
    assert [c.symbol for c in definitions] == [f"Big.method_{i}" for i in range(40)]
    for i, chunk in enumerate(definitions):
        assert lines[chunk.start_line - 1] == f"    def method_{i}(self, value):"
        assert lines[chunk.end_line - 1] == "        return result"


def test_a_class_that_fits_stays_whole() -> None:
    source = "class Small:\n" + "".join(
        f"    def m{i}(self):\n        return {i} * 1000 + {i}\n" for i in range(10)
    )
    result = chunk_file("small.py", source.encode())
    assert [(c.kind, c.symbol, c.start_line, c.end_line) for c in result.chunks] == [
        ("definition", "Small", 1, 21)
    ]


def test_huge_literal_becomes_line_windows() -> None:
    source = (
        'TEXT = """\n'
        + "".join(f"line {i} of a long text that goes on and on\n" for i in range(400))
        + '"""\n'
    )
    data = source.encode()
    result = chunk_file("text.py", data)
    check_invariants("text.py", data, result.chunks)
    windows = [c for c in result.chunks if c.kind == "lines"]
    assert len(windows) >= 5
    for before, after in itertools.pairwise(windows):
        assert after.start_line == before.end_line + 1 - DEFAULT_LIMITS.overlap_lines


def test_long_line_is_cut() -> None:
    line = 'BLOB = "' + "abcdefghij" * 1000 + '"'
    data = (line + "\nx = 1\n").encode()
    result = chunk_file("blob.py", data)
    check_invariants("blob.py", data, result.chunks)
    pieces = [c for c in result.chunks if c.start_line == 1]
    assert len(pieces) == 4 and all(c.kind == "lines" for c in pieces)
    assert "".join(c.text for c in pieces) == line


@pytest.mark.parametrize(
    ("path", "data", "method"),
    [
        ("notes.rst", "".join(f"Line {i} of prose.\n" for i in range(100)).encode(), "lines"),
        ("broken.py", b")))) ((( ]]] {{{ :: ,, def class\n" * 100, "lines"),  # no parse
        ("changes.diff", b"--- a\n+++ b\n@@ -1 +1 @@\n-x\n+y\n" * 30, "lines"),  # no grammar
    ],
)
def test_line_window_fallback(path: str, data: bytes, method: str) -> None:
    result = chunk_file(path, data)
    assert result.method == method
    check_invariants(path, data, result.chunks)
    starts = [c.start_line for c in result.chunks]
    assert starts[0] == 1 and len(starts) >= 3
    for before, after in itertools.pairwise(result.chunks):
        assert after.start_line == before.end_line + 1 - DEFAULT_LIMITS.overlap_lines
        assert before.end_line - before.start_line + 1 <= DEFAULT_LIMITS.window_lines


@pytest.mark.parametrize(
    ("path", "data", "reason"),
    [
        (".env", b"TOKEN=1\n", "secret path"),
        ("deploy/id_rsa", b"x\n", "secret path"),
        ("notes.txt", b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n", "secret content"),
        ("big.py", b"x = 1\n" * 200, "too large"),
        ("logo.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "binary"),
        ("latin.txt", "café = 1\n".encode("latin-1"), "not UTF-8 text"),
        ("blank.py", b"\n  \n\t\n", "empty"),
        ("zero.py", b"", "empty"),
    ],
)
def test_skipped_files(path: str, data: bytes, reason: str) -> None:
    result = chunk_file(path, data, ChunkLimits(max_file_bytes=1000))
    assert (result.chunks, result.skipped) == ((), reason)


@pytest.mark.parametrize(
    "encoded",
    [
        "def f():\n    return 'é'\n".encode("utf-16"),
        "def f():\n    return 'é'\n".encode("utf-32"),
        "\ufeffdef f():\n    return 'é'\n".encode(),
    ],
)
def test_byte_order_marks(encoded: bytes) -> None:
    result = chunk_file("bom.py", encoded, UNMERGED)
    assert [(c.symbol, c.text) for c in result.chunks] == [("f", "def f():\n    return 'é'")]


def test_line_breaks_are_counted_as_the_editor_does() -> None:
    data = b"x = 1\r\ny = 2\rdef f():\r\n    return 3\r\n"
    result = chunk_file("eol.py", data, UNMERGED)
    assert [(c.symbol, c.start_line, c.end_line, c.text) for c in result.chunks] == [
        ("", 1, 1, "x = 1"),
        ("", 2, 2, "y = 2"),
        ("f", 3, 4, "def f():\n    return 3"),
    ]


def test_content_hash_ignores_layout_noise_only() -> None:
    base = "def f(a):\n    return a\n"
    same = [
        "def f(a):  \r\n    return a\r\n",
        "\n\ndef f(a):\n    return a\n\n\n",
        "def f(a):\t\n    return a",
    ]
    different = [
        "def f(b):\n    return b\n",
        "def f(a):\n        return a\n",
        "def f(a):\n    return  a\n",
    ]
    assert all(content_hash(s) == content_hash(base) for s in same)
    assert all(content_hash(d) != content_hash(base) for d in different)
    # NFC: a composed and a decomposed "é" are one text
    assert content_hash("caf\u00e9 = 1") == content_hash("cafe\u0301 = 1")
    # the same function in two files has one hash (one embedding)
    one = chunk_file("a/x.py", b"import os\n\n\n" + base.encode() * 1, UNMERGED)
    two = chunk_file("b/y.py", b"X = 2\n\n" + base.replace("\n", "\r\n").encode(), UNMERGED)
    assert one.chunks[-1].content_hash == two.chunks[-1].content_hash


def stdlib_files() -> list[str]:
    """A spread of the standard library: some well-known modules and every 20th file."""
    found = []
    for folder, dirs, files in os.walk(STDLIB):
        dirs[:] = sorted(d for d in dirs if d not in ("site-packages", "__pycache__"))
        found.extend(
            os.path.relpath(os.path.join(folder, f), STDLIB)
            for f in sorted(files)
            if f.endswith(".py")
        )
    known = [
        "argparse.py",
        "json/decoder.py",
        "difflib.py",
        "asyncio/base_events.py",
        "email/message.py",
        "textwrap.py",
    ]
    return known + [f for f in found[::20] if f not in known]


@pytest.mark.parametrize("path", stdlib_files())
def test_stdlib_file(path: str) -> None:
    with open(os.path.join(STDLIB, path), "rb") as fh:
        data = fh.read()
    result = chunk_file(path, data)
    if result.skipped is not None:
        assert result.skipped in ("too large", "empty", "not UTF-8 text")
        return
    assert result.language == "python"
    check_invariants(path, data, result.chunks)


@pytest.mark.parametrize(
    ("path", "symbols"),
    [
        (
            "argparse.py",
            ["ArgumentParser.parse_known_args", "HelpFormatter.add_usage", "_get_action_name"],
        ),
        ("json/decoder.py", ["JSONDecoder.raw_decode", "py_scanstring", "JSONObject"]),
        ("difflib.py", ["SequenceMatcher.get_opcodes", "unified_diff"]),
    ],
)
def test_stdlib_definitions_are_found(path: str, symbols: list[str]) -> None:
    with open(os.path.join(STDLIB, path), "rb") as fh:
        result = chunk_file(path, fh.read())
    found = {c.symbol: c for c in result.chunks if c.kind == "definition"}
    with open(os.path.join(STDLIB, path), encoding="utf-8") as fh:
        lines = fh.read().split("\n")
    for symbol in symbols:
        chunk = found[symbol]
        name = symbol.rsplit(".", 1)[-1]
        first_code = next(
            line for line in chunk.text.split("\n") if not line.lstrip().startswith(("#", "@"))
        )
        assert first_code.lstrip().startswith(f"def {name}(")
        assert lines[chunk.start_line - 1] == chunk.text.split("\n")[0]


def test_parsers_are_per_thread() -> None:
    with open(os.path.join(STDLIB, "argparse.py"), "rb") as fh:
        data = fh.read()
    expected = chunk_file("argparse.py", data).chunks
    results: list[tuple[Chunk, ...]] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(3):
                results.append(chunk_file("argparse.py", data).chunks)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(results) == 9
    assert all(r == expected for r in results)


@pytest.mark.parametrize(
    "limits",
    [
        dict(target_chars=0),
        dict(target_chars=4000, max_chars=3000),
        dict(window_lines=10, overlap_lines=10),
    ],
)
def test_bad_limits_rejected(limits: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        ChunkLimits(**limits)
