"""Propagation beyond the current file (app.services.propagation_sites, and the core's
cross_file_pattern / anchor_text) on a real workspace in tmp_path."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import pytest

from app.services.propagation_sites import (
    Bounds,
    OpenBuffer,
    find_other_sites,
    nearness,
)
from forecode_core.next_edit.propagation import (
    Edit,
    Pattern,
    anchor_text,
    cross_file_pattern,
    find_sites,
    other_file_sites,
)

ORIGIN = "def load_all(path):\n    return []\n"


def rename_in_origin(root: Path) -> tuple[str, Pattern]:
    """The user renamed ``def load_all`` to ``def fetch_all`` in pkg/core.py."""
    before = ORIGIN
    pos = before.index("load_all")
    after = before[:pos] + "fetch_all" + before[pos + len("load_all") :]
    path = str(root / "pkg" / "core.py")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(after, encoding="utf-8")
    pattern = cross_file_pattern(after, [Edit(pos, "load_all", "fetch_all")], path)
    assert pattern is not None and anchor_text(pattern) == "load_all"
    return path, pattern


def workspace(root: Path) -> list[str]:
    files = {
        "pkg/near.py": "from pkg.core import load_all\nx = load_all('a')  # load_all\n",
        "pkg/sub/deep.py": "import pkg\ny = pkg.core.load_all\ns = 'load_all'\n",
        "other/far.py": "from pkg.core import load_all\n",
        "other/none.py": "def unrelated():\n    return load_all_things\n",
        "pkg/open.py": "z = load_all  # on disk: the open buffer's text is searched instead\n",
        "docs/big.py": "load_all\n" + "#" * 3000 + "\n",
        "pkg/bin.py": "load_all\x00",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    (root / "pkg" / "wide.py").write_text("w = load_all\n", encoding="utf-16")
    return sorted([*files, "pkg/wide.py", "pkg/core.py"])


def test_open_buffers_first_then_nearest_files_code_only(tmp_path: Path) -> None:
    origin, pattern = rename_in_origin(tmp_path)
    files = workspace(tmp_path)
    buffer = OpenBuffer(str(tmp_path / "pkg" / "open.py"), "a = 1\nb = load_all(2)\n")
    got = find_other_sites(
        pattern,
        origin=origin,
        buffers=[buffer],
        root=tmp_path,
        files=files,
        bounds=Bounds(max_file_bytes=2000),
    )
    rel = [
        (str(Path(s.path).relative_to(tmp_path)), s.line, s.old, s.new, s.open_buffer)
        for s in got.sites
    ]
    assert rel == [
        ("pkg/open.py", 1, "load_all", "fetch_all", True),  # the buffer's text, not the disk's
        ("pkg/near.py", 0, "load_all", "fetch_all", False),  # same folder: the import
        ("pkg/near.py", 1, "load_all", "fetch_all", False),  # the call, not the comment
        ("pkg/wide.py", 0, "load_all", "fetch_all", False),  # a UTF-16 file is decoded
        ("pkg/sub/deep.py", 1, "load_all", "fetch_all", False),  # an attribute; not the string
        ("other/far.py", 0, "load_all", "fetch_all", False),
    ]
    assert [s.rank for s in got.sites] == list(range(6))
    assert got.stopped == "done"
    # looked at: the buffer and 7 files (not the origin, not open.py's disk copy); searched:
    # not the binary nor the big file (none.py's load_all_things passes the prefilter)
    assert (got.files_looked_at, got.files_searched) == (8, 6)
    first = got.sites[1]
    text = (tmp_path / "pkg" / "near.py").read_text(encoding="utf-8")
    assert text[first.start : first.end] == "load_all"


def test_a_local_rename_stays_in_its_file() -> None:
    text = "def f(x):\n    total = x\n    return total\n"
    pos = text.index("total")
    after = text[:pos] + "acc" + text[pos + len("total") :]
    assert cross_file_pattern(after, [Edit(pos, "total", "acc")], "a.py") is None
    header = "def f(\n    a,\n    path,\n):\n    return path\n"
    pos = header.index("path")
    after = header[:pos] + "where" + header[pos + 4 :]
    assert cross_file_pattern(after, [Edit(pos, "path", "where")], "a.py") is None  # a parameter


REACH = [
    pytest.param(
        "from m import (\n    a,\n    load_all,\n)\n", "load_all", "fetch", None, id="import"
    ),
    pytest.param("LIMIT = 3\n", "LIMIT", "MAX_ITEMS", None, id="module-constant"),
    pytest.param("def load(p):\n    pass\n", "load", "fetch", None, id="function-bare-or-mod.f"),
    pytest.param("class A:\n    def run(self):\n        pass\n", "run", "go", True, id="method"),
    pytest.param("def f():\n    g(url)\n", "g(url)", "g(url, timeout=5)", None, id="call-shape"),
]


@pytest.mark.parametrize(("text", "old", "new", "dotted"), REACH)
def test_what_reaches_other_files(text: str, old: str, new: str, dotted: bool | None) -> None:
    pos = text.index(old)
    after = text[:pos] + new + text[pos + len(old) :]
    pattern = cross_file_pattern(after, [Edit(pos, old, new)], "a.py")
    assert pattern is not None and pattern.dotted is dotted
    if dotted:  # a method's rename: attributes elsewhere (obj.run), not a bare run
        other = "x.run()\nrun()\n"
        assert [s.start for s in find_sites(other, pattern, path="b.py")] == [2]


STAY = [
    pytest.param("def f(o):\n    o.size = 1\n", "size", "length", id="an-attribute-at-a-use"),
    pytest.param("f(data=1)\n", "data", "content", id="a-keyword-argument"),
    pytest.param("x = next(it)\n", "next", "anext", id="a-builtin"),
    pytest.param('open(p, encoding="latin-1")\n', '"latin-1"', '"utf-8"', id="a-literal-once"),
    pytest.param(
        "from m import Request\n", "import Request", "import Cookies, Request", id="import-grows"
    ),
]


@pytest.mark.parametrize(("text", "old", "new"), STAY)
def test_what_stays_in_its_file(text: str, old: str, new: str) -> None:
    pos = text.index(old)
    after = text[:pos] + new + text[pos + len(old) :]
    history = [Edit(pos, old, new)]
    assert cross_file_pattern(after, history, "a.py") is None


def many_files(root: Path, n: int) -> list[str]:
    for k in range(n):
        (root / f"m{k:02}.py").write_text("v = load_all\nw = load_all\n", encoding="utf-8")
    return [f"m{k:02}.py" for k in range(n)]


def test_bounds_files_sites_deadline_and_cancel(tmp_path: Path) -> None:
    origin, pattern = rename_in_origin(tmp_path)
    files = many_files(tmp_path, 10)
    got = find_other_sites(
        pattern, origin=origin, root=tmp_path, files=files, bounds=Bounds(max_files=3)
    )
    assert (got.stopped, len(got.sites), got.files_searched) == ("max_files", 6, 3)
    got = find_other_sites(
        pattern, origin=origin, root=tmp_path, files=files, bounds=Bounds(max_sites=5)
    )
    assert (got.stopped, len(got.sites)) == ("max_sites", 5)
    ticks = itertools.count()  # each look at the clock is one second later
    got = find_other_sites(
        pattern,
        origin=origin,
        root=tmp_path,
        files=files,
        bounds=Bounds(deadline_s=3.5, clock=lambda: float(next(ticks))),
    )
    assert got.stopped == "deadline" and 0 < got.files_searched < 10
    cancel = threading.Event()
    cancel.set()
    got = find_other_sites(pattern, origin=origin, root=tmp_path, files=files, cancel=cancel)
    assert (got.stopped, got.sites) == ("cancelled", ())


def test_nearness_orders_by_folder_steps() -> None:
    origin = "/w/pkg/core.py"
    paths = ["/w/other/x.py", "/w/pkg/sub/y.py", "/w/pkg/a.py", "/w/z.py"]
    assert sorted(paths, key=lambda p: nearness(origin, p)) == [
        "/w/pkg/a.py",
        "/w/pkg/sub/y.py",
        "/w/z.py",
        "/w/other/x.py",
    ]


def _pattern(text: str, old: str, new: str, nth: int = 0) -> tuple[str, Pattern]:
    pos = -1
    for _ in range(nth + 1):
        pos = text.index(old, pos + 1)
    after = text[:pos] + new + text[pos + len(old) :]
    pattern = cross_file_pattern(after, [Edit(pos, old, new)], "a.py")
    assert pattern is not None
    return after, pattern


def test_another_file_that_already_uses_the_new_name_is_no_site() -> None:
    """``import platform`` -> ``import sys``: a file that imports ``sys`` already would import
    it twice (no site there); one without ``sys`` is a site."""
    _after, pattern = _pattern("import platform\n", "platform", "sys")
    clash = "import sys\nimport platform\nplatform.system()\n"
    free = "import platform\nplatform.system()\n"
    assert find_sites(clash, pattern, path="b.py") != []  # the shape alone would offer it
    assert other_file_sites(clash, pattern, path="b.py") == []
    assert [s.old for s in other_file_sites(free, pattern, path="c.py")] == ["platform"] * 2


def test_a_methods_rename_skips_files_that_define_the_name_themselves() -> None:
    """``def send`` -> ``def _get_response`` in one class: a file with its own ``def send``
    has its own ``.send()`` (no site); a file that only calls it is a site."""
    _after, pattern = _pattern("class A:\n    def send(self):\n        pass\n", "send", "go")
    own = "class B:\n    def send(self):\n        pass\n    def f(self):\n        self.send()\n"
    caller = "def f(a):\n    a.send()\n"
    assert other_file_sites(own, pattern, path="b.py") == []
    assert [s.old for s in other_file_sites(caller, pattern, path="c.py")] == ["send"]


def test_a_dunder_rename_stays_in_its_file() -> None:
    text = "class It:\n    def __next__(self):\n        pass\n"
    pos = text.index("__next__")
    after = text[:pos] + "next" + text[pos + len("__next__") :]
    assert cross_file_pattern(after, [Edit(pos, "__next__", "next")], "a.py") is None
    pos = text.index("It")
    after = text[:pos] + "Iter" + text[pos + 2 :]
    assert cross_file_pattern(after, [Edit(pos, "It", "Iter")], "a.py") is not None
