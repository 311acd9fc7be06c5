"""git's wildmatch without backtracking (forecode_core.workspace.wildmatch) and the ignore rules
built on it
(forecode_core.workspace.gitignore): a table of cases, then seeded random patterns and paths checked
against ``git check-ignore --no-index`` itself."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from forecode_core.workspace.gitignore import IgnoreRules, RuleSet, read_lines
from forecode_core.workspace.wildmatch import PatternSet, compile_pattern, wildmatch

# (pattern, text, matches?) with git's WM_PATHNAME semantics; many are from git's own
# t3070-wildmatch cases, restated.
WILDMATCH_CASES = [
    ("foo", "foo", True),
    ("foo", "bar", False),
    ("", "", True),
    ("???", "foo", True),
    ("??", "foo", False),
    ("*", "foo", True),
    ("f*", "foo", True),
    ("*f", "foo", False),
    ("*foo*", "foo", True),
    ("*ob*a*r*", "foobar", True),
    ("*ab", "aaaaaaabababab", True),
    ("foo\\*", "foo*", True),
    ("foo\\*bar", "foobar", False),
    ("f\\\\oo", "f\\oo", True),
    ("*[al]?", "ball", True),
    ("[ten]", "ten", False),
    ("**[!te]", "ten", True),
    ("**[!ten]", "ten", False),
    ("t[a-g]n", "ten", True),
    ("t[!a-g]n", "ten", False),
    ("t[!a-g]n", "ton", True),
    ("t[^a-g]n", "ton", True),
    ("a[]]b", "a]b", True),
    ("a[]-]b", "a-b", True),
    ("a[]-]b", "a]b", True),
    ("a[]-]b", "aab", False),
    ("a[]a-]b", "aab", True),
    ("]", "]", True),
    ("foo*bar", "foo/baz/bar", False),
    ("foo**bar", "foo/baz/bar", False),
    ("foo**bar", "foobazbar", True),
    ("foo/**/bar", "foo/baz/bar", True),
    ("foo/**/**/bar", "foo/baz/bar", True),
    ("foo/**/bar", "foo/b/a/z/bar", True),
    ("foo/**/**/bar", "foo/b/a/z/bar", True),
    ("foo/**/bar", "foo/bar", True),
    ("foo/**/**/bar", "foo/bar", True),
    ("foo?bar", "foo/bar", False),
    ("foo[/]bar", "foo/bar", False),
    ("foo[^a-z]bar", "foo/bar", False),
    ("f[^eiu][^eiu][^eiu][^eiu][^eiu]r", "foo-bar", True),
    ("**/foo", "foo", True),
    ("**/foo", "XXX/foo", True),
    ("**/foo", "bar/baz/foo", True),
    ("*/foo", "bar/baz/foo", False),
    ("**/bar*", "foo/bar/baz", False),
    ("**/bar/*", "deep/foo/bar/baz", True),
    ("**/bar/*", "deep/foo/bar/baz/", False),
    ("**/bar/**", "deep/foo/bar/baz/", True),
    ("**/bar/*", "deep/foo/bar", False),
    ("**/bar/**", "deep/foo/bar/", True),
    ("**/bar**", "foo/bar/baz", False),
    ("*/bar/**", "deep/foo/bar/baz/x", False),
    ("**/bar/*/*", "deep/foo/bar/baz/x", True),
    ("a/**", "a", False),
    ("a/**", "a/b/c", True),
    ("**", "a/b", True),
    (
        "-*-*-*-*-*-*-12-*-*-*-m-*-*-*",
        "-adobe-courier-bold-o-normal--12-120-75-75-m-70-iso8859-1",
        True,
    ),
    (
        "-*-*-*-*-*-*-12-*-*-*-m-*-*-*",
        "-adobe-courier-bold-o-normal--12-120-75-75-X-70-iso8859-1",
        False,
    ),
    (
        "XXX/*/*/*/*/*/*/12/*/*/*/m/*/*/*",
        "XXX/adobe/courier/bold/o/normal//12/120/75/75/m/70/iso8859/1",
        True,
    ),
    ("**/*a*b*g*n*t", "abcd/abcdefg/abcdefghijk/abcdefghijklmnop.txt", True),
    ("**/*a*b*g*n*t", "abcd/abcdefg/abcdefghijk/abcdefghijklmnop.txtz", False),
    ("*/*/*", "foo/bba/arr", True),
    ("*/*/*", "foo/bb/aa/rr", False),
    ("**/**/**", "foo/bb/aa/rr", True),
    ("*X*i", "abcXdefXghi", True),
    ("*/*X*/*/*i", "ab/cXd/efXg/hi", True),
    ("**/*X*/**/*i", "ab/cXd/efXg/hi", True),
    ("[[:alpha:]][[:digit:]][[:upper:]]", "a1B", True),
    ("[[:digit:][:upper:][:space:]]", "a", False),
    ("[[:digit:][:upper:][:space:]]", " ", True),
    ("[[:digit:][:upper:][:space:]]", "\v", False),  # git's isspace is " \t\n\r"
    ("[[:digit:][:punct:][:space:]]", ".", True),
    ("[[:xdigit:]]", "f", True),
    ("[[:xdigit:]]", "g", False),
    ("[a-c[:digit:]x-z]", "5", True),
    ("[a-c[:digit:]x-z]", "q", False),
    ("[[:digit:]-z]", "-", True),  # no range after a class: '-' is literal
    ("[[:nope:]]", "a", False),  # an unknown class matches nothing
    ("[[:]", "[", True),  # "[:" without ":]" is a plain "[" member
    ("[[:ab]", "b", True),  # no ":]" ends it: a plain set of '[', ':', 'a', 'b'
    ("[abc", "[abc", False),  # an unclosed class matches nothing
    ("a\\", "a\\", False),  # a trailing lone backslash matches nothing
    ("?", "\u00e9", False),  # one byte, as in git: é is two
    ("??", "\u00e9", True),
    ("[\u00e9]x", "\u00e9x", False),
    ("\u00e9*", "\u00e9t\u00e9", True),
]


@pytest.mark.parametrize(("pattern", "text", "expected"), WILDMATCH_CASES)
def test_wildmatch_table(pattern: str, text: str, expected: bool) -> None:
    assert wildmatch(pattern, text) is expected


def test_pathological_patterns_are_linear() -> None:
    """A backtracking matcher (a Python regex, git's own dowild) takes exponential time on
    these; the automaton makes one step per byte of text. Counting is the proof: the
    automaton's mask cache sees each distinct byte once, and the match is one pass."""
    for stars in (8, 16, 64):
        pattern = compile_pattern("a*" * stars + "b")
        assert pattern.needs_nfa
        assert not pattern.match(b"a" * 60)
        assert not pattern.match(b"a" * 10_000)
        assert pattern.match(b"a" * 10_000 + b"b")
    huge = compile_pattern("a*" * 2048)  # 4,096 bytes, the longest pattern a file may hold
    assert huge.match(b"a" * 5_000)
    assert not huge.match(b"a" * 2_047)


def test_trailing_spaces_comments_and_negation_parse_like_git() -> None:
    rules = RuleSet.from_lines(
        ["# comment", "", "\\#hash", "\\!bang", "trail  ", "sp\\ ", "tab\t", "!keep", "keep*"]
    )
    assert rules.decide("#hash", False) is True
    assert rules.decide("!bang", False) is True
    assert rules.decide("trail", False) is True
    assert rules.decide("trail  ", False) is None
    assert rules.decide("sp ", False) is True
    assert rules.decide("tab\t", False) is True
    assert rules.decide("keep", False) is True  # "keep*" comes last and wins
    assert rules.decide("# comment", False) is None


def test_read_lines_splits_like_git(tmp_path: Path) -> None:
    file = tmp_path / ".gitignore"
    file.write_bytes(b"\xef\xbb\xbf*.o\r\nform\x0cfeed\nlast")
    assert read_lines(str(file)) == ["*.o", "form\x0cfeed", "last"]


# --- Against git itself -------------------------------------------------------------------

GIT = shutil.which("git")
needs_git = pytest.mark.skipif(GIT is None, reason="git is not installed")

# Pattern pieces and name pieces; file names avoid what check-ignore reads as pathspec magic
# or quoting (a leading ':', '*', '?', '[', '\\').
PATTERN_PIECES = [
    "a",
    "b",
    "c",
    ".",
    "é",
    "*",
    "*",
    "**",
    "?",
    "[ab]",
    "[!a]",
    "[a-c]",
    "[]a]",
    "[^b.]",
    "[[:alpha:]]",
    "[[:punct:]]",
    "\\a",
    "\\*",
    " ",
    "\\ ",
    "a*b",
    "*.c",
    "**/",
    "/**/",
    "/",
    "/",
    "[é]",
]
NAME_PIECES = ["a", "b", "c", ".", "é", "ab", "a.c", " ", "ba"]


def random_pattern(rng: random.Random) -> str:
    text = "".join(rng.choice(PATTERN_PIECES) for _ in range(rng.randint(1, 5)))
    if rng.random() < 0.25:
        text = "!" + text
    if rng.random() < 0.2:
        text = "/" + text.lstrip("!")
    if rng.random() < 0.25:
        text += "/"
    if rng.random() < 0.1:
        text += "  "
    return text


def random_path(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(1, 3)):
        name = "".join(rng.choice(NAME_PIECES) for _ in range(rng.randint(1, 3)))
        name = name.strip() or "a"
        parts.append(name + "x" if set(name) == {"."} else name)
    return "/".join(parts)


def git_ignored(root: Path, paths: list[str]) -> set[str]:
    assert GIT is not None
    env = {
        **os.environ,
        "HOME": str(root),
        "XDG_CONFIG_HOME": str(root),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
    }
    out = subprocess.run(
        [GIT, "check-ignore", "--no-index", "--stdin", "-z"],
        cwd=root,
        env=env,
        input=b"".join(p.encode() + b"\0" for p in paths),
        capture_output=True,
        check=False,
    )
    assert out.returncode in (0, 1), out.stderr
    return {p.decode() for p in out.stdout.split(b"\0") if p}


@needs_git
@pytest.mark.parametrize("many", [False, True], ids=["few-lines", "many-lines"])
@pytest.mark.parametrize("seed", range(int(os.environ.get("WM_SEEDS", "6"))))
def test_random_patterns_agree_with_git_check_ignore(tmp_path: Path, seed: int, many: bool) -> None:
    """Each folder pK holds one .gitignore of random lines and a random tree under it; every
    path (files and the folders that hold them) is asked of git and of IgnoreRules. With many
    lines a folder's wildcard patterns share one automaton (``PatternSet``)."""
    assert GIT is not None
    rng = random.Random(seed)
    subprocess.run(
        [GIT, "init", "-q", str(tmp_path)],
        check=True,
        env={**os.environ, "HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1"},
    )
    files: set[str] = set()
    for k in range(12 if many else 40):
        folder = f"p{k}"
        lines = [
            random_pattern(rng) for _ in range(rng.randint(80, 120) if many else rng.randint(1, 3))
        ]
        (tmp_path / folder).mkdir()
        (tmp_path / folder / ".gitignore").write_text("\n".join(lines) + "\n", "utf-8")
        for _ in range(30 if many else 8):
            files.add(f"{folder}/{random_path(rng)}")
    dirs = {f.rsplit("/", 1)[0] for f in files if "/" in f}
    for path in list(dirs):
        while "/" in path:
            path = path.rsplit("/", 1)[0]
            dirs.add(path)
    files -= {d for d in dirs}
    for rel in sorted(files):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    asked = sorted(files | {d for d in dirs if "/" in d})
    theirs = git_ignored(tmp_path, asked)

    def load(rel_dir: str) -> list[str]:
        return read_lines(str(tmp_path / rel_dir / ".gitignore"))

    rules = IgnoreRules(load)
    ours = {p for p in asked if rules.is_ignored(p, p in dirs)}
    disagree = sorted(ours ^ theirs)
    detail = [
        (
            p,
            "ours" if p in ours else "git",
            (tmp_path / p.split("/")[0] / ".gitignore").read_text("utf-8"),
        )
        for p in disagree[:10]
    ]
    assert not disagree, detail
    assert theirs  # the generator does produce ignored paths
    if many:
        assert any(rules._folder(f"p{k}")._unions for k in range(12))


def test_pattern_set_matches_what_each_pattern_matches() -> None:
    """The shared automaton answers, for every member at once, what each pattern's own
    automaton answers."""
    rng = random.Random(7)
    patterns = []
    while len(patterns) < 60:
        pattern = compile_pattern(random_pattern(rng).lstrip("!").rstrip(" /") or "a*b")
        if pattern.needs_nfa:
            patterns.append(pattern)
    union = PatternSet(patterns)
    everything = 0
    for bit in union.final_bits:
        everything |= bit
    for _ in range(400):
        text = random_path(rng).encode()
        hits = union.run(text, everything)
        expected = [i for i, p in enumerate(patterns) if p.match(text)]
        assert [i for i, bit in enumerate(union.final_bits) if hits & bit] == expected, text
        if expected:
            assert union.last(hits) == expected[-1]
