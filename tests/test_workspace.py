"""Git-compatible ignore rules (forecode_core.workspace.gitignore) and the pruning file walk
(forecode_core.workspace.walk)."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from forecode_core.workspace import gitignore
from forecode_core.workspace.gitignore import GIT_IGNORE_FILES, INDEX_IGNORE_FILES, IgnoreRules
from forecode_core.workspace.walk import scan_files, walk_files


def make_tree(root: Path, files: Mapping[str, str]) -> None:
    """Create ``files`` (POSIX relative path -> content) under ``root``; a path ending in "/"
    is an empty folder."""
    for rel, content in files.items():
        path = root / rel
        if rel.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")


# (files to create, extra_patterns, {path: ignored?}); a path ending in "/" is asked as a
# directory.
IGNORE_CASES = [
    pytest.param(
        {".gitignore": "*.log\n", "a.log": "", "a.txt": "", "src/b.log": "", "src/b.py": ""},
        (),
        {"a.log": True, "src/b.log": True, "a.txt": False, "src/b.py": False, "src/": False},
        id="root-glob",
    ),
    pytest.param(
        {".gitignore": "build/\n", "build/out.o": "", "src/build/x.o": "", "docs/build": ""},
        (),
        {
            "build/": True,
            "build/out.o": True,
            "src/build/": True,
            "src/build/x.o": True,
            "docs/build": False,
        },
        id="dir-only-pattern",
    ),
    pytest.param(
        {".gitignore": "/x\n", "x": "", "sub/x": ""},
        (),
        {"x": True, "sub/x": False, "sub/": False},
        id="anchored",
    ),
    pytest.param(
        {".gitignore": "src/*.o\n", "src/a.o": "", "src/deep/b.o": ""},
        (),
        {"src/a.o": True, "src/deep/b.o": False},
        id="slash-anchors-to-folder",
    ),
    pytest.param(
        {".gitignore": "**/cache\na/**/z\ndoc/**\n"},
        (),
        {
            "cache/": True,
            "p/q/cache": True,
            "a/z": True,
            "a/b/c/z": True,
            "b/z": False,
            "doc/": False,
            "doc/x.md": True,
            "doc/deep/y.md": True,
            "docs/x.md": False,
        },
        id="double-star",
    ),
    pytest.param(
        {".gitignore": "*.txt\n!keep.txt\n"},
        (),
        {"a.txt": True, "keep.txt": False, "sub/keep.txt": False, "sub/b.txt": True},
        id="negation",
    ),
    pytest.param(
        {".gitignore": "build/\n!build/keep.txt\n"},
        (),
        {"build/": True, "build/keep.txt": True},
        id="no-reinclude-inside-excluded-dir",
    ),
    pytest.param(
        {".gitignore": "/*\n!/src/\n!README.md\n"},
        (),
        {
            "src/": False,
            "src/a.py": False,
            "README.md": False,
            "other/": True,
            "other/a.py": True,
            "setup.py": True,
        },
        id="whitelist",
    ),
    pytest.param(
        {".gitignore": "*.txt\n!keep/\n", "keep/x.txt": ""},
        (),
        {"keep/": False, "keep/x.txt": True},
        id="dir-negation-does-not-reinclude-files",
    ),
    pytest.param(
        {".gitignore": "*.txt\n/only_root\n", "sub/.gitignore": "!*.txt\n/only_here\n"},
        (),
        {
            "a.txt": True,
            "sub/a.txt": False,
            "sub/deep/b.txt": False,
            "only_root": True,
            "sub/only_root": False,
            "sub/only_here": True,
            "sub/deep/only_here": False,
            "only_here": False,
        },
        id="nested-overrides-root-and-is-relative",
    ),
    pytest.param(
        {".gitignore": "logs/\n", "sub/.gitignore": "!logs/\n"},
        (),
        {"logs/": True, "logs/a": True, "sub/logs/": False, "sub/logs/a": False},
        id="nested-reincludes-dir",
    ),
    pytest.param(
        {".gitignore": "vendor/\n", "vendor/.gitignore": "!*\n"},
        (),
        {"vendor/": True, "vendor/a.py": True},
        id="gitignore-inside-ignored-dir-is-not-read",
    ),
    pytest.param(
        {".gitignore": "*.log\n"},
        ("*.tmp", "docs/", "!keep.log"),
        {
            "a.tmp": True,
            "docs/": True,
            "docs/a.md": True,
            "x.log": True,
            "keep.log": False,
            "a.py": False,
        },
        id="extra-patterns-win",
    ),
    pytest.param(
        {".git/info/exclude": "secret.txt\n*.bak\n", ".gitignore": "!keep.bak\n"},
        (),
        {"secret.txt": True, "sub/secret.txt": True, "a.bak": True, "keep.bak": False},
        id="info-exclude-below-gitignore",
    ),
    pytest.param(
        {".gitignore": "!.git\n"},
        ("!.git",),
        {
            ".git/": True,
            ".git/config": True,
            "sub/.git": True,
            "sub/.git/HEAD": True,
            ".github/": False,
            "a.git": False,
        },
        id="dot-git-always",
    ),
    pytest.param(
        {".gitignore": "# comment\n\n\\#hash\n\\!bang\ntrail  \nsp\\ \n"},
        (),
        {"#hash": True, "!bang": True, "trail": True, "sp ": True, "# comment": False},
        id="escapes-and-whitespace",
    ),
    pytest.param(
        {".gitignore": "\ufeff*.o\r\nnode_modules\r\n"},
        (),
        {"a.o": True, "node_modules/": True, "web/node_modules/": True},
        id="bom-and-crlf",
    ),
]


@pytest.mark.parametrize(("files", "extra", "expected"), IGNORE_CASES)
def test_is_ignored(
    tmp_path: Path, files: dict[str, str], extra: Sequence[str], expected: dict[str, bool]
) -> None:
    make_tree(tmp_path, files)
    rules = IgnoreRules.for_folder(tmp_path, extra)
    got = {p: rules.is_ignored(p.rstrip("/"), p.endswith("/")) for p in expected}
    assert got == expected


def test_path_forms(tmp_path: Path) -> None:
    make_tree(tmp_path, {".gitignore": "build/\n"})
    rules = IgnoreRules.for_folder(str(tmp_path))
    assert rules.is_ignored("./build/", True)
    assert rules.is_ignored("/build/a", False)
    assert not rules.is_ignored("", True)
    assert not rules.is_ignored(".", True)


def test_worktree_git_file(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        {"repo/.git/info/exclude": "*.secret\n", "repo/.git/commondir": "", "wt/a.secret": ""},
    )
    git_dir = tmp_path / "repo/.git/worktrees/wt"
    git_dir.mkdir(parents=True)
    (git_dir / "commondir").write_text("../..\n")
    (tmp_path / "wt/.git").write_text(f"gitdir: {git_dir}\n")
    rules = IgnoreRules.for_folder(tmp_path / "wt")
    assert rules.is_ignored("a.secret", False)
    assert rules.is_ignored(".git", False)


def test_nested_gitignores_are_read_lazily_and_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_tree(tmp_path, {".gitignore": "*.o\n", "a/.gitignore": "*.p\n", "b/.gitignore": "x\n"})
    reads: list[str] = []
    real = gitignore.read_lines

    def spy(file: str) -> tuple[object, ...]:
        reads.append(Path(file).relative_to(tmp_path).as_posix())
        return real(file)

    monkeypatch.setattr(gitignore, "read_lines", spy)
    rules = IgnoreRules.for_folder(tmp_path)
    assert reads == []  # no .git folder here, and no .gitignore read yet
    reads.clear()
    assert rules.is_ignored("top.o", False)
    assert reads == [".gitignore"]
    assert rules.is_ignored("a/q.p", False)
    assert rules.is_ignored("a/r.p", False)
    assert not rules.is_ignored("c/r.p", False)
    assert reads == [".gitignore", "a/.gitignore", "c/.gitignore"]  # b/ never touched


def test_invalidate(tmp_path: Path) -> None:
    make_tree(tmp_path, {".gitignore": "*.o\n", "sub/.gitignore": "*.p\n", "sub/deep/": ""})
    rules = IgnoreRules.for_folder(tmp_path)
    assert rules.is_ignored("sub/a.p", False)
    assert not rules.is_ignored("sub/deep/", True)
    assert not rules.is_ignored("a.q", False)

    (tmp_path / "sub/.gitignore").write_text("deep/\n")
    (tmp_path / ".gitignore").write_text("*.q\n")
    assert rules.is_ignored("sub/a.p", False)  # cached until told
    rules.invalidate("sub")
    assert not rules.is_ignored("sub/a.p", False)
    assert rules.is_ignored("sub/deep/", True)
    assert rules.is_ignored("sub/deep/x", False)
    assert not rules.is_ignored("a.q", False)  # root still cached
    rules.invalidate("")
    assert rules.is_ignored("a.q", False)

    (tmp_path / "new").mkdir()
    assert not rules.is_ignored("new/z.tmp", False)
    (tmp_path / "new/.gitignore").write_text("*.tmp\n")
    rules.invalidate("new")
    assert rules.is_ignored("new/z.tmp", False)

    (tmp_path / ".git/info").mkdir(parents=True)
    (tmp_path / ".git/info/exclude").write_text("*.r\n")
    rules.invalidate(".git/info")
    assert rules.is_ignored("a.r", False)
    (tmp_path / ".git/info/exclude").write_text("")
    rules.invalidate()
    assert not rules.is_ignored("a.r", False)


SCAN_TREE = {
    ".gitignore": "*.pyc\nbuild/\n/dist\n",
    ".git/HEAD": "ref",
    "b.py": "",
    "a.py": "",
    "a.pyc": "",
    "build/x.py": "",
    "dist/y.py": "",
    "src/dist/z.py": "",
    "src/.gitignore": "!keep.pyc\ngen/\n",
    "src/keep.pyc": "",
    "src/gen/g.py": "",
    "src/m.py": "",
    "empty/": "",
}


def test_scan_files_order_and_filtering(tmp_path: Path) -> None:
    make_tree(tmp_path, SCAN_TREE)
    got = list(scan_files(tmp_path, IgnoreRules.for_folder(tmp_path)))
    assert got == [
        ".gitignore",
        "a.py",
        "b.py",
        "src/.gitignore",
        "src/keep.pyc",
        "src/m.py",
        "src/dist/z.py",
    ]


def test_scan_prunes_ignored_directories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_tree(tmp_path, {".gitignore": "node_modules/\n", "src/a.py": ""})
    heavy = tmp_path / "node_modules/pkg"
    heavy.mkdir(parents=True)
    for i in range(10_000):
        (heavy / f"{i}.js").touch()
    scanned: list[str] = []
    real_scandir = os.scandir

    def spy(path: str) -> Iterator[os.DirEntry[str]]:
        scanned.append(Path(path).relative_to(tmp_path).as_posix())
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", spy)
    checked: list[str] = []
    rules = IgnoreRules.for_folder(tmp_path)
    real_matches = rules._matches

    def count_matches(path: str, is_dir: bool) -> bool:
        checked.append(path)
        return real_matches(path, is_dir)

    monkeypatch.setattr(rules, "_matches", count_matches)
    assert list(scan_files(tmp_path, rules)) == [".gitignore", "src/a.py"]
    assert sorted(scanned) == [".", "src"]
    assert len(checked) < 10  # nothing inside node_modules was even looked at


def test_scan_skips_unreadable_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_tree(tmp_path, {"a/x.py": "", "locked/y.py": "", "z.py": ""})
    real_scandir = os.scandir

    def scandir(path: str) -> Iterator[os.DirEntry[str]]:
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    assert list(scan_files(tmp_path, IgnoreRules.for_folder(tmp_path))) == ["z.py", "a/x.py"]
    assert list(scan_files(tmp_path / "missing", IgnoreRules.for_folder(tmp_path))) == []


def test_scan_symlinks(tmp_path: Path) -> None:
    make_tree(tmp_path, {"a/f.py": "", "real.txt": ""})
    try:
        os.symlink(tmp_path / "a", tmp_path / "a/loop", target_is_directory=True)
        os.symlink(tmp_path, tmp_path / "a/up", target_is_directory=True)
        os.symlink(tmp_path / "real.txt", tmp_path / "link.txt")
        os.symlink(tmp_path / "nowhere", tmp_path / "dangling")
        os.symlink(tmp_path / "self", tmp_path / "self")  # ELOOP when followed
    except (OSError, NotImplementedError):
        pytest.skip("symlinks not available")
    got = list(scan_files(tmp_path, IgnoreRules.for_folder(tmp_path)))
    assert got == ["link.txt", "real.txt", "a/f.py"]


def test_walk_files_links_skip_and_start(tmp_path: Path) -> None:
    """The one walker's options, as its three callers use them: links followed as files (the
    editor, find in files) or reported unread (the index); a caller's ``skip`` prunes folders
    and drops files; ``start`` walks one folder; symlinked folders are never entered."""
    make_tree(
        tmp_path,
        {".gitignore": "*.o\n", "a/f.py": "", "a/g.o": "", "b/x.py": "", "real.txt": ""},
    )
    try:
        os.symlink(tmp_path / "a", tmp_path / "a/loop", target_is_directory=True)
        os.symlink(tmp_path / "real.txt", tmp_path / "link.txt")
        os.symlink(tmp_path / "nowhere", tmp_path / "dangling")
    except (OSError, NotImplementedError):
        pytest.skip("symlinks not available")
    rules = IgnoreRules.for_folder(tmp_path)

    def walk(**options: object) -> list[tuple[str, bool]]:
        return [(rel, e.is_symlink()) for rel, e in walk_files(tmp_path, rules, **options)]  # type: ignore[arg-type]

    assert walk() == [
        (".gitignore", False),
        ("link.txt", True),
        ("real.txt", False),
        ("a/f.py", False),
        ("b/x.py", False),
    ]
    assert walk(links="report") == [
        (".gitignore", False),
        ("dangling", True),
        ("link.txt", True),
        ("real.txt", False),
        ("a/f.py", False),
        ("a/loop", True),
        ("b/x.py", False),
    ]
    asked: list[str] = []

    def skip(rel: str) -> bool:
        asked.append(rel)
        return rel in ("b", "real.txt")

    assert walk(skip=skip) == [(".gitignore", False), ("link.txt", True), ("a/f.py", False)]
    assert "b" in asked and "a/g.o" not in asked  # ignored: never asked
    assert "b/x.py" not in asked  # a skipped folder is not entered
    assert walk(start="a", links="report") == [("a/f.py", False), ("a/loop", True)]
    assert walk(limit=2) == [(".gitignore", False), ("link.txt", True)]


def test_ignore_files_are_an_option_of_the_one_rules(tmp_path: Path) -> None:
    """The editor reads .gitignore; the index also .forecodeignore, after it in each folder
    (so it wins a tie and can re-include); for_files reads the same files from a map."""
    files = {
        ".gitignore": "*.log\nsecret.txt\n",
        "src/.forecodeignore": "gen/\n!keep.log\n",
        "src/keep.log": "",
        "src/gen/a.py": "",
        "secret.txt": "",
    }
    make_tree(tmp_path, files)
    editor = IgnoreRules.for_folder(tmp_path)
    index = IgnoreRules.for_folder(tmp_path, ignore_files=INDEX_IGNORE_FILES)
    in_memory = IgnoreRules.for_files({k: v.encode() for k, v in files.items()})
    assert editor.ignore_files == GIT_IGNORE_FILES and editor.root == str(tmp_path)
    assert in_memory.root is None and in_memory.ignore_files == INDEX_IGNORE_FILES
    for path, by_editor, by_index in (
        ("src/keep.log", True, False),
        ("src/gen/a.py", False, True),
        ("secret.txt", True, True),
    ):
        assert editor.is_ignored(path) is by_editor, path
        assert index.is_ignored(path) is by_index, path
        assert in_memory.is_ignored(path) is by_index, path
    assert list(scan_files(tmp_path, index)) == [
        ".gitignore",
        "src/.forecodeignore",
        "src/keep.log",
    ]


def test_scan_limit_and_should_stop(tmp_path: Path) -> None:
    for d in range(20):
        for f in range(30):
            (tmp_path / f"d{d:02}").mkdir(exist_ok=True)
            (tmp_path / f"d{d:02}/f{f:02}.txt").touch()
    rules = IgnoreRules.for_folder(tmp_path)
    assert len(list(scan_files(tmp_path, rules))) == 600
    assert list(scan_files(tmp_path, rules, limit=3)) == [
        "d00/f00.txt",
        "d00/f01.txt",
        "d00/f02.txt",
    ]
    assert list(scan_files(tmp_path, rules, limit=0)) == []
    assert list(scan_files(tmp_path, rules, should_stop=lambda: True)) == []

    calls = 0

    def stop_soon() -> bool:
        nonlocal calls
        calls += 1
        return calls > 3

    got = list(scan_files(tmp_path, rules, should_stop=stop_soon))
    assert 0 < len(got) <= 90  # stopped within the first few folders
    assert calls == 4  # and did not ask again after stopping

    # A stop request in the middle of a big folder is noticed before the folder ends.
    big = tmp_path / "d00"
    for f in range(30, 1000):
        (big / f"g{f}.txt").touch()
    produced = 0

    def stop_after_100() -> bool:
        return produced >= 100

    for _ in scan_files(tmp_path, rules, should_stop=stop_after_100):
        produced += 1
    assert 100 <= produced < 200


# --- Against git itself -------------------------------------------------------------------

GIT = shutil.which("git")


def git_files(root: Path) -> set[str]:
    assert GIT is not None, "git is needed (.ci/run installs it): rules are checked against git"
    env = {
        **os.environ,
        "HOME": str(root),
        "XDG_CONFIG_HOME": str(root),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
    }
    out = subprocess.run(
        [GIT, "ls-files", "--others", "--cached", "--exclude-standard", "-z"],
        cwd=root,
        env=env,
        capture_output=True,
        check=True,
    ).stdout
    return {p for p in out.decode("utf-8").split("\0") if p}


def git_init(root: Path) -> None:
    assert GIT is not None
    subprocess.run(
        [GIT, "init", "-q", str(root)],
        check=True,
        env={**os.environ, "HOME": str(root), "GIT_CONFIG_NOSYSTEM": "1"},
    )


TRICKY_REPO = {
    ".gitignore": (
        "*.log\n!important.log\nbuild/\n/root_only.txt\ndocs/**/*.tmp\n**/cache/\nvendor/*\n"
        "!vendor/keep/\ngen/**/\n/*.cfg\n!/app.cfg\nout\n#comment.txt\n\\#literal.txt\n"
        "sp\\ ace\n*.o\n!*.o/\ndeep/a/**/z.txt\n"
    ),
    ".git/info/exclude": "local.txt\n!shared.log\n",
    "a.log": "",
    "important.log": "",
    "shared.log": "",
    "local.txt": "",
    "src/local.txt": "",
    "build/x.c": "",
    "src/build/y.c": "",
    "src/build.c": "",
    "root_only.txt": "",
    "src/root_only.txt": "",
    "docs/a.tmp": "",
    "docs/p/q/b.tmp": "",
    "docs/p/c.md": "",
    "src/cache/c.bin": "",
    "cache": "",
    "vendor/lib/l.py": "",
    "vendor/keep/k.py": "",
    "vendor/top.py": "",
    "gen/g.py": "",
    "gen/sub/h.py": "",
    "x.cfg": "",
    "app.cfg": "",
    "src/y.cfg": "",
    "out/o.txt": "",
    "src/out": "",
    "#comment.txt": "",
    "#literal.txt": "",
    "sp ace": "",
    "m.o": "",
    "dir.o/inner.c": "",
    "deep/a/z.txt": "",
    "deep/a/b/c/z.txt": "",
    "deep/z.txt": "",
    "src/.gitignore": "!a.log\n*.py\n!keep.py\nsub/\n",
    "src/a.log": "",
    "src/b.log": "",
    "src/x.py": "",
    "src/keep.py": "",
    "src/sub/s.c": "",
    "src/lib/.gitignore": "!*.py\n/only.c\n",
    "src/lib/m.py": "",
    "src/lib/only.c": "",
    "src/lib/more/only.c": "",
    "src/lib/more/n.py": "",
    "out2/.gitignore": "*\n!.gitignore\n",
    "out2/junk.bin": "",
}


def test_matches_git_on_tricky_repo(tmp_path: Path) -> None:
    git_init(tmp_path)
    make_tree(tmp_path, TRICKY_REPO)
    rules = IgnoreRules.for_folder(tmp_path)
    ours = list(scan_files(tmp_path, rules))
    assert len(ours) == len(set(ours))
    assert set(ours) == git_files(tmp_path)
    # is_ignored agrees with the walk for every file in the tree.
    for rel in TRICKY_REPO:
        if not rel.startswith(".git/"):
            assert rules.is_ignored(rel, False) == (rel not in ours), rel


RANDOM_NAMES = ["a", "b", "build", "keep", "x.txt", "y.log", "doc", "src", "foo", "bar.c"]
RANDOM_PATTERNS = [
    "*.txt",
    "!*.txt",
    "build/",
    "!build/",
    "/a",
    "a/",
    "!a",
    "**/keep",
    "!keep",
    "keep/",
    "!keep/",
    "doc/**",
    "!doc/**",
    "doc/*.txt",
    "*.log",
    "!y.log",
    "src/**/x.txt",
    "**/foo/**",
    "foo/*",
    "!foo/bar.c",
    "*",
    "!*/",
    "!b",
    "/build",
    "b/**/",
    "a/**/b",
    "x.txt/",
    "*.c",
    "!**/x.txt",
    "[ab]",
    "?",
    "**",
    "!**",
    "/*",
    "*/",
    "!src/",
    "**/",
    "src/**/",
    "!b/**",
    "/**/",
    "**/b/*",
    "[!a]*",
    "a*",
    "!a*/",
    "b/*/",
    "foo/**/bar.c",
    "!**/keep/**",
]


def random_tree(root: Path, rng: random.Random, depth: int = 0) -> None:
    for name in rng.sample(RANDOM_NAMES, rng.randint(2, 5)):
        path = root / name
        if depth < 3 and rng.random() < 0.45:
            path.mkdir()
            random_tree(path, rng, depth + 1)
        else:
            path.write_text("x")
    if rng.random() < 0.5:
        lines = rng.sample(RANDOM_PATTERNS, rng.randint(1, 6))
        (root / ".gitignore").write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("seed", range(30))
def test_matches_git_on_random_repos(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    git_init(tmp_path)
    random_tree(tmp_path, rng)
    if rng.random() < 0.3:
        with open(tmp_path / ".git/info/exclude", "a") as fh:
            fh.write(rng.choice(RANDOM_PATTERNS) + "\n")
    assert set(scan_files(tmp_path, IgnoreRules.for_folder(tmp_path))) == git_files(tmp_path)
