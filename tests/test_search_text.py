"""Find in files, the pure part (forecode_core.workspace.search_text): globs, matching, the
walk, replace on real files."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from helpers.search_tree import make_search_tree

from forecode_core.workspace import search_text as fif
from forecode_core.workspace.search_text import (
    Edit,
    GlobSet,
    QueryError,
    ReplaceStatus,
    SearchItem,
    SearchQuery,
    SearchRequest,
    apply_edits,
    compile_query,
    decode_for_search,
    parse_globs,
    replace_in_file,
    search_text,
    search_tree,
)


def run(
    root: Path, pattern: str, **options: object
) -> tuple[dict[str, fif.FileResult], fif.SearchSummary]:
    found: dict[str, fif.FileResult] = {}
    buffers = options.pop("buffers", {})
    request = SearchRequest(
        str(root),
        SearchQuery(pattern, **options),  # type: ignore[arg-type]
        buffers=buffers,
    )  # type: ignore[arg-type]
    summary = search_tree(request, lambda f: found.__setitem__(f.path, f))
    return found, summary


def spans(result: fif.FileResult) -> list[tuple[int, str]]:
    """(line, matched text) for each match, from the previews."""
    out = []
    for line in result.lines:
        for m in line.matches:
            a, b = m.start - line.preview_offset, m.end - line.preview_offset
            out.append((line.line, line.preview[a:b]))
    return out


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_search_tree(tmp_path)


def test_toggles_case_word_and_regex(tree: Path) -> None:
    found, summary = run(tree, "param")
    assert set(found) == {"src/a.py", "src/pkg/b.js", "src/legacy.txt", "node_modules/lib/x.js"}
    assert spans(found["src/a.py"]) == [(1, "param"), (1, "param"), (2, "Param"), (2, "param")]
    assert summary.skipped_binary == 1  # data.bin; build/, *.log and .git never looked at
    found, _ = run(tree, "param", match_case=True)
    assert spans(found["src/a.py"]) == [(1, "param"), (1, "param"), (2, "param")]
    assert "PARAM" not in str(spans(found["src/pkg/b.js"]))
    found, _ = run(tree, "param", whole_word=True, match_case=True)
    assert spans(found["src/a.py"]) == [(1, "param")]  # not params
    found, _ = run(tree, r"def (\w+)\(", regex=True)
    assert list(found) == ["src/a.py"] and spans(found["src/a.py"]) == [(1, "def params(")]
    found, _ = run(tree, "param.*$", regex=True, match_case=True, include="*.py")
    # $ is the end of the line in a CRLF file too, and the match stops before the CR
    assert spans(found["src/a.py"]) == [(1, "params(param):"), (2, "params")]


def test_include_and_exclude_globs(tree: Path) -> None:
    found, _ = run(tree, "param", include="*.js")
    assert set(found) == {"src/pkg/b.js", "node_modules/lib/x.js"}
    found, _ = run(tree, "param", include="src/**/*.js, *.txt")
    assert set(found) == {"src/pkg/b.js", "src/legacy.txt"}
    found, _ = run(tree, "param", exclude="node_modules, *.txt")
    assert set(found) == {"src/a.py", "src/pkg/b.js"}
    found, _ = run(tree, "param", include="src/pkg")  # a folder: everything in it
    assert set(found) == {"src/pkg/b.js"}
    found, _ = run(tree, "param", include="{src/a,src/pkg/b}.{py,js}")
    assert set(found) == {"src/a.py", "src/pkg/b.js"}


def test_glob_semantics() -> None:
    g = GlobSet(parse_globs("*.py, /docs/*.md, a/**/z, [!x]y?"))
    assert g.match("x.py") and g.match("deep/er/x.py")
    assert g.match("docs/a.md") and not g.match("other/docs/a.md")
    assert not g.match("docs/sub/a.md")
    assert g.match("a/z") and g.match("a/b/c/z") and not g.match("b/a/z2")
    assert g.match("q/ay1") and not g.match("xy1") and not g.match("ay")
    assert GlobSet(["build"]).match("pkg/build/out.o")  # a folder anywhere
    assert not GlobSet([]).match("anything")
    assert parse_globs(" a , {b,c}, ,d") == ["a", "{b,c}", "d"]


def test_a_pathological_glob_is_linear(monkeypatch: pytest.MonkeyPatch) -> None:
    """``a*a*…*b`` against a long name: one DFA step per character at most (a backtracking
    translation to a regex takes exponential time here)."""
    g = GlobSet(["a*" * 20 + "b"])
    steps = 0
    real = GlobSet._step

    def counting(self: GlobSet, state: frozenset[int], ch: str) -> frozenset[int]:
        nonlocal steps
        steps += 1
        return real(self, state, ch)

    monkeypatch.setattr(GlobSet, "_step", counting)
    path = "a" * 3000
    assert not g.match(path)
    assert steps <= len(path)
    assert not g.match(path + "c")  # cached now: no new NFA steps but the last
    assert steps <= len(path) + 2


def test_open_buffers_are_searched_instead_of_the_disk(tree: Path) -> None:
    found, _ = run(tree, "unsaved", buffers={"src/a.py": "x = 1\nunsaved = 2\n"})
    assert spans(found["src/a.py"]) == [(2, "unsaved")]
    assert found["src/a.py"].buffer and found["src/a.py"].digest == fif.digest_text(
        "x = 1\nunsaved = 2\n"
    )


def test_huge_files_skipped_and_results_capped(tree: Path) -> None:
    (tree / "src" / "big.txt").write_text("param\n" * 3000)
    found, summary = run(tree, "param", max_file_bytes=10_000)
    assert "src/big.txt" not in found and summary.skipped_large == 1
    found, summary = run(tree, "param", max_results=3)
    assert summary.capped and summary.matches == 3
    assert sum(f.match_count for f in found.values()) == 3


def test_bad_queries_give_a_message() -> None:
    with pytest.raises(QueryError, match="Invalid regular expression at position 0"):
        compile_query(SearchQuery("(unclosed", regex=True))
    with pytest.raises(QueryError, match="Invalid replacement"):
        compile_query(SearchQuery("(a)", regex=True, replacement=r"\2"))
    with pytest.raises(QueryError, match="Type something"):
        compile_query(SearchQuery(""))
    # a literal search never treats its text as a regex
    compiled = compile_query(SearchQuery("(unclosed"))
    assert search_text("x (unclosed y", compiled, 10)[1] == 1


def test_matches_stay_within_lines() -> None:
    compiled = compile_query(SearchQuery(r"a\s+", regex=True))
    lines, count = search_text("a  \nb a \r\nb a\na", compiled, 100)
    assert [(ln.line, [(m.start, m.end) for m in ln.matches]) for ln in lines] == [
        (1, [(0, 3)]),
        (2, [(2, 4)]),
    ]
    assert count == 2
    compiled = compile_query(SearchQuery(r"x(?!\S)", regex=True))  # a lookahead: per line
    lines, _ = search_text("ax\nbx y\n", compiled, 100)
    assert [ln.line for ln in lines] == [1, 2]
    compiled = compile_query(SearchQuery("^", regex=True))
    assert search_text("a\nb\n", compiled, 100)[1] == 3


def test_line_numbers_and_columns_with_mixed_line_endings() -> None:
    compiled = compile_query(SearchQuery("x"))
    text = "x\r\nab\rax x\n\n\r\nyy\nzzx"
    lines, count = search_text(text, compiled, 100)
    assert [(ln.line, ln.preview, [(m.start, m.end) for m in ln.matches]) for ln in lines] == [
        (1, "x", [(0, 1)]),
        (3, "ax x", [(1, 2), (3, 4)]),
        (7, "zzx", [(2, 3)]),
    ]
    assert count == 4
    lines, count = search_text(text, compiled, 2)  # the cap stops within a line
    assert count == 2 and [ln.line for ln in lines] == [1, 3]


def test_replacement_templates() -> None:
    compiled = compile_query(SearchQuery(r"(\w+)=(\w+)", regex=True, replacement="$2=${1}$$"))
    lines, _ = search_text("a=b", compiled, 10)
    assert lines[0].matches[0].replacement == "b=a$"
    compiled = compile_query(SearchQuery(r"(?P<k>\w+)=", regex=True, replacement=r"\g<k>:"))
    assert search_text("key=1", compiled, 10)[0][0].matches[0].replacement == "key:"
    compiled = compile_query(SearchQuery("$1", replacement="$2"))  # literal: as typed
    assert search_text("x$1", compiled, 10)[0][0].matches[0].replacement == "$2"


def test_long_lines_are_previewed_around_the_match() -> None:
    compiled = compile_query(SearchQuery("needle"))
    line = "x" * 5000 + "needle" + "y" * 5000
    (result,), _ = search_text(line, compiled, 10)
    assert len(result.preview) <= fif.PREVIEW_CHARS
    m = result.matches[0]
    assert result.preview[m.start - result.preview_offset : m.end - result.preview_offset] == (
        "needle"
    )


def test_decoding_rules() -> None:
    """The editor's rules (textfile.decode_bytes): a file is searched as the editor shows it."""
    assert decode_for_search(b"x\x00y") is None
    assert decode_for_search("é".encode("utf-16")) == ("é", "utf-16-le-bom")
    assert decode_for_search(b"\x00\x00\xfe\xff" + "é".encode("utf-32-be")) == (
        "é",
        "utf-32-be-bom",
    )
    assert decode_for_search(b"caf\xc3\xa9") == ("café", "utf-8")
    assert decode_for_search(b"caf\xe9") == ("café", "cp1252")
    assert decode_for_search(b"# -*- coding: latin-1 -*-\n\x81") == (
        "# -*- coding: latin-1 -*-\n\x81",
        "iso8859-1",
    )
    text, encoding = decode_for_search(b"ok \xc3\xa9 \xff \xc3\xa9") or ("", "")
    assert text == "ok é \ufffd é" and encoding.startswith("unknown")  # read-only in the editor


def test_a_file_the_editor_opens_read_only_is_searched_but_never_rewritten(tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.txt"
    damaged.write_bytes(b"param \xc3\xa9 \xff\n")
    found, _ = run(tmp_path, "param", replacement="x")
    outcome = replace_in_file(damaged, found["damaged.txt"].digest, _edits(found["damaged.txt"]))
    assert outcome.status == "failed" and "read-only" in outcome.message
    assert damaged.read_bytes() == b"param \xc3\xa9 \xff\n"


def test_apply_edits_keeps_line_endings() -> None:
    text = "a1\r\nb1\nc1\rd1"
    assert apply_edits(text, [Edit(2, 0, 1, "B"), Edit(4, 1, 2, "!"), Edit(1, 0, 0, ">")]) == (
        ">a1\r\nB1\nc1\rd!"
    )
    with pytest.raises(ValueError):
        apply_edits(text, [Edit(1, 0, 5, "x")])  # past the line's end
    with pytest.raises(ValueError):
        apply_edits(text, [Edit(9, 0, 0, "x")])


def _edits(result: fif.FileResult) -> list[Edit]:
    return [
        Edit(ln.line, m.start, m.end, m.replacement or "")
        for ln in result.lines
        for m in ln.matches
    ]


def test_replace_in_closed_files_byte_exact(tree: Path) -> None:
    legacy = tree / "src" / "legacy.txt"
    original = b"\xa9 caf\xe9 \x80 param\r\nparam \x9c\r\n"  # cp1252, CRLF
    legacy.write_bytes(original)
    os.chmod(legacy, 0o640)
    found, _ = run(tree, "param", match_case=True, whole_word=True, replacement="paramètre")
    result = found["src/legacy.txt"]
    assert result.encoding == "cp1252"
    outcome = replace_in_file(legacy, result.digest, _edits(result))
    assert outcome.status == "written" and outcome.replaced == 2
    expected = original.replace(b"param", "paramètre".encode("cp1252"))
    assert legacy.read_bytes() == expected
    assert stat.S_IMODE(legacy.stat().st_mode) == 0o640
    crlf = tree / "src" / "a.py"
    found, _ = run(tree, "params", match_case=True, replacement="options")
    assert replace_in_file(crlf, found["src/a.py"].digest, _edits(found["src/a.py"])).status == (
        "written"
    )
    assert crlf.read_bytes() == b"def options(param):\r\n    return Param + options\r\n"


def test_replace_skips_a_file_changed_since_the_search(tree: Path) -> None:
    target = tree / "src" / "pkg" / "b.js"
    found, _ = run(tree, "param", replacement="p")
    target.write_text("const param = 2;\n")  # changed by someone else meanwhile
    outcome = replace_in_file(target, found["src/pkg/b.js"].digest, _edits(found["src/pkg/b.js"]))
    assert outcome.status == "changed"
    assert target.read_text() == "const param = 2;\n"


def test_replace_refuses_what_the_encoding_cannot_hold(tree: Path) -> None:
    legacy = tree / "src" / "legacy.txt"
    before = legacy.read_bytes()
    found, _ = run(tree, "param", include="*.txt", replacement="名前")
    outcome = replace_in_file(
        legacy, found["src/legacy.txt"].digest, _edits(found["src/legacy.txt"])
    )
    assert outcome.status == "failed" and "1252" in outcome.message
    assert legacy.read_bytes() == before


# ----- the worker's line kinds and the replace statuses are values ------------------------------


@pytest.mark.parametrize(
    ("status", "name", "replaced"),
    [
        (ReplaceStatus.WRITTEN, "written", True),
        (ReplaceStatus.BUFFER, "buffer", True),
        (ReplaceStatus.CHANGED, "changed", False),
        (ReplaceStatus.FAILED, "failed", False),
    ],
)
def test_a_replace_status_is_its_name_and_says_whether_the_text_changed(
    status: ReplaceStatus, name: str, replaced: bool
) -> None:
    assert status == name and status.replaced is replaced


def test_the_worker_lines_keep_their_kinds(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n", encoding="utf-8")
    found, summary = run(tmp_path, "x")
    line = json.loads(json.dumps(found["a.py"].to_json()))
    assert line["t"] == "file" == SearchItem.FILE
    assert json.loads(json.dumps(summary.to_json()))["t"] == "done" == SearchItem.DONE
    assert fif.FileResult.from_json(line) == found["a.py"]
