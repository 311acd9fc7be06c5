"""The shadow workspace (issue 16): the pure planning and diagnostics diff as tables, the copy on
a real temporary workspace (first build, refresh after a save, references, databases), checks
with the real ruff and basedpyright, the repair loop with a model fake at its seam, and the apply
review in a real window offscreen showing a new diagnostic while the user's file stays
byte-identical."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from app.services.shadow import (
    CheckStatus,
    CliChecker,
    LspChecker,
    ShadowWorkspace,
    Verdict,
    check_and_repair,
)
from app.ui.apply_review import INDICATOR_ERROR, ApplyReview
from app.ui.main_window import MainWindow
from forecode_core.workspace.diagnostics_diff import (
    Diagnostic,
    Next,
    RepairPolicy,
    Severity,
    line_map,
    new_diagnostics,
    parse_pyright_json,
    parse_ruff_json,
    repair_message,
)
from forecode_core.workspace.gitignore import IgnoreRules
from forecode_core.workspace.shadow_plan import (
    Action,
    Kind,
    Source,
    Step,
    plan_sync,
    rewrites_in_place,
    shadow_key,
)

# ----- the diff of diagnostics, as tables ------------------------------------------------------


def d(
    line: int, message: str = "undefined x", code: str = "F821", path: str = "a.py"
) -> Diagnostic:
    return Diagnostic(path, line, message, Severity.ERROR, code, "ruff")


OLD = "a\nb\nc\nd\n"


@pytest.mark.parametrize(
    ("new_text", "before", "after", "fresh"),
    [
        # nothing moved: the same diagnostic on the same line is old
        (OLD, [d(2)], [d(2)], []),
        # two lines inserted above it: shifted by the edit, still old
        ("x\ny\n" + OLD, [d(2)], [d(4)], []),
        # two lines inserted above it, but it stayed on its line: too far from where it moved
        ("x\ny\nz\n" + OLD, [d(2)], [d(2)], [d(2)]),
        # a line deleted above it
        ("b\nc\nd\n", [d(2)], [d(1)], []),
        # within NEAR lines counts as the same one
        (OLD, [d(2)], [d(3)], []),
        # another message or code on the same line is new
        (OLD, [d(2)], [d(2, "undefined y")], [d(2, "undefined y")]),
        (OLD, [d(2)], [d(2, code="F841")], [d(2, code="F841")]),
        # one old diagnostic excuses one new one, not two
        (OLD, [d(2)], [d(2), d(3)], [d(3)]),
        # a diagnostic fixed by the edit is not reported at all
        (OLD, [d(1), d(2)], [d(2)], []),
        # another file's diagnostic never excuses this file's
        (OLD, [d(2, path="b.py")], [d(2)], [d(2)]),
    ],
)
def test_only_new_diagnostics_are_reported(
    new_text: str, before: list[Diagnostic], after: list[Diagnostic], fresh: list[Diagnostic]
) -> None:
    assert new_diagnostics(before, after, {"a.py": line_map(OLD, new_text)}) == fresh


@pytest.mark.parametrize(
    ("new_text", "mapping"),
    [
        (OLD, {0: 0, 3: 3}),
        ("x\n" + OLD, {0: 1, 3: 4}),
        ("a\nB\nc\nd\n", {0: 0, 1: 1, 2: 2}),  # a replaced line maps to its replacement
        ("a\nB1\nB2\nB3\nc\nd\n", {1: 1, 2: 4, 3: 5}),
        ("a\nd\n", {0: 0, 1: 1, 2: 1, 3: 1}),  # deleted lines go where the stretch went
    ],
)
def test_line_map(new_text: str, mapping: dict[int, int]) -> None:
    shift = line_map(OLD, new_text)
    assert {old: shift(old) for old in mapping} == mapping


def test_checker_json_is_read_relative_to_the_copy() -> None:
    ruff = json.dumps(
        [
            {
                "code": "F821",
                "message": "Undefined name `y`",
                "filename": "/s/tree/pkg/a.py",
                "location": {"row": 3, "column": 5},
                "end_location": {"row": 3, "column": 6},
            }
        ]
    )
    pyright = json.dumps(
        {
            "generalDiagnostics": [
                {
                    "file": "/s/tree/pkg/a.py",
                    "severity": "warning",
                    "message": "unused",
                    "range": {"start": {"line": 0, "character": 7}, "end": {}},
                    "rule": "reportUnusedImport",
                }
            ]
        }
    )
    assert parse_ruff_json(ruff, "/s/tree") == [
        Diagnostic("pkg/a.py", 2, "Undefined name `y`", Severity.ERROR, "F821", "ruff", 4, 2, 5)
    ]
    (diag,) = parse_pyright_json(pyright, "/s/tree/")
    assert (diag.path, diag.line, diag.column, diag.severity, diag.code) == (
        "pkg/a.py",
        0,
        7,
        Severity.WARNING,
        "reportUnusedImport",
    )


@pytest.mark.parametrize(
    ("counts", "steps"),
    [
        ([0], [Next.SHOW]),
        ([2, 0], [Next.REPAIR, Next.SHOW]),
        ([2, 1, 1], [Next.REPAIR, Next.REPAIR, Next.ASK_USER]),  # no progress: ask
        ([3, 2, 1], [Next.REPAIR, Next.REPAIR, Next.ASK_USER]),  # two rounds spent
        ([2, 3], [Next.REPAIR, Next.ASK_USER]),  # worse: ask
    ],
)
def test_repair_policy(counts: list[int], steps: list[Next]) -> None:
    policy = RepairPolicy(rounds=2)
    seen = []
    for count in counts:
        step, policy = policy.next([d(k) for k in range(count)])
        seen.append(step)
    assert seen == steps


def test_repair_policy_ignores_warnings_and_the_message_lists_errors_first() -> None:
    warning = Diagnostic("a.py", 1, "unused", Severity.WARNING, "F841", "ruff")
    assert RepairPolicy().next([warning])[0] is Next.SHOW
    text = repair_message([warning, d(5)], limit=1)
    assert "a.py:6:1: error: undefined x [F821]" in text and "1 more" in text
    assert "unused" not in text


# ----- the plan, as tables ---------------------------------------------------------------------


def f(size: int, mtime: int = 1, ino: int = 0) -> Source:
    return Source(Kind.FILE, size, mtime, ino)


@pytest.mark.parametrize(
    ("wanted", "have", "overlaid", "steps"),
    [
        ({"a": f(1)}, {}, (), [(Step.COPY, "a")]),
        ({"a": f(1)}, {"a": f(1)}, (), []),
        ({"a": f(2)}, {"a": f(1)}, (), [(Step.COPY, "a")]),
        ({"a": f(1, 2)}, {"a": f(1, 1)}, (), [(Step.COPY, "a")]),
        # an atomic save: same size and mtime, a new inode
        ({"a": f(1, 1, 7)}, {"a": f(1, 1, 6)}, (), [(Step.COPY, "a")]),
        # cold: the copy's own stats have no inode to compare
        ({"a": f(1, 1, 7)}, {"a": f(1, 1)}, (), []),
        ({}, {"a": f(1), "d/b": f(1)}, (), [(Step.REMOVE, "d/b"), (Step.REMOVE, "a")]),
        # an unsaved buffer overlays the file: left alone
        ({"a": f(2)}, {"a": f(1)}, ("a",), []),
        (
            {"db.sqlite": Source(Kind.DATABASE, 5, 1)},
            {},
            (),
            [(Step.SNAPSHOT, "db.sqlite")],
        ),
        (
            {".venv": Source(Kind.REFERENCE, target="/w/.venv")},
            {".venv": Source(Kind.REFERENCE, target="/old/.venv")},
            (),
            [(Step.REFERENCE, ".venv")],
        ),
        # a file that became a link: removed first, then linked
        (
            {"a": Source(Kind.LINK, target="b")},
            {"a": f(1)},
            (),
            [(Step.REMOVE, "a"), (Step.LINK, "a")],
        ),
    ],
)
def test_plan_sync(
    wanted: dict[str, Source],
    have: dict[str, Source],
    overlaid: tuple[str, ...],
    steps: list[tuple[Step, str]],
) -> None:
    actions = plan_sync(wanted, have, overlaid)
    assert [(a.step, a.rel) for a in actions] == steps
    assert all(isinstance(a, Action) for a in actions)


@pytest.mark.parametrize(
    ("rel", "head", "fixtures", "expected"),
    [
        ("src/app.py", b"import os", (), False),
        ("data/blob", b"SQLite format 3\x00rest", (), True),
        ("dev.db", b"", (), True),
        ("x/cache.SQLITE3", b"", (), True),
        ("tests/fixtures/users.json", b"{}", ("tests/fixtures/**",), True),
        ("deep/snap.json", b"{}", ("snap.json",), True),  # no slash: the base name, any depth
        ("deep/other.json", b"{}", ("snap.json",), False),
    ],
)
def test_files_rewritten_in_place(
    rel: str, head: bytes, fixtures: tuple[str, ...], expected: bool
) -> None:
    assert rewrites_in_place(rel, head, fixtures) is expected


def test_shadow_key_is_per_path() -> None:
    assert shadow_key("/a/proj") != shadow_key("/b/proj")
    assert shadow_key("/a/proj").startswith("proj-")


# ----- the copy on a real workspace ------------------------------------------------------------


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


GREET = 'def greet(name: str) -> str:\n    return "hello " + name\n'
SHOUT = (
    "from pkg.greet import greet\n\n\n"
    "def shout(name: str) -> str:\n"
    "    return greet(name).upper()\n"
)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "greet.py").write_text(GREET)
    (root / "pkg" / "shout.py").write_text(SHOUT)
    (root / ".gitignore").write_text(".venv/\n*.log\nbuild/\n__pycache__/\n")
    venv = root / ".venv"
    (venv / "lib" / "site-packages").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (venv / "lib" / "site-packages" / "big.py").write_text("x = 1\n" * 1000)
    (root / "node_modules" / "left-pad").mkdir(parents=True)  # no ignore file names it
    (root / "node_modules" / "left-pad" / "index.js").write_text("module.exports = 1;\n")
    (root / "pkg" / "__pycache__").mkdir()
    (root / "pkg" / "__pycache__" / "greet.cpython-311.pyc").write_bytes(b"\0pyc")
    (root / "run.log").write_text("small ignored file\n")
    return root


@pytest.fixture
def shadow(ws: Path, tmp_path: Path) -> Iterator[ShadowWorkspace]:
    # checks may take long on a loaded machine: timings are never what a test checks
    s = ShadowWorkspace(
        ws, base=tmp_path / "data" / "shadow", scan_every_s=None, check_timeout_s=300
    )
    yield s
    s.close()


def test_first_build_copies_sources_and_references_big_trees(
    ws: Path, shadow: ShadowWorkspace
) -> None:
    shadow.sync()
    tree = shadow.tree
    assert not tree.is_relative_to(ws)
    assert oct(shadow.folder.stat().st_mode & 0o777) == "0o700"
    for rel in ("pkg/__init__.py", "pkg/greet.py", "pkg/shout.py", ".gitignore", "run.log"):
        copy, original = tree / rel, ws / rel
        assert copy.read_bytes() == original.read_bytes()
        assert not copy.is_symlink() and copy.stat().st_ino != original.stat().st_ino
    # the virtual environment and node_modules are referenced, not copied
    for rel in (".venv", "node_modules"):
        assert (tree / rel).is_symlink()
        assert os.readlink(tree / rel) == str(ws / rel)
    assert (tree / ".venv" / "lib" / "site-packages" / "big.py").exists()
    # caches are left out; a pyright config with the standard mode is added
    assert not (tree / "pkg" / "__pycache__").exists()
    assert json.loads((tree / "pyrightconfig.json").read_text()) == {"typeCheckingMode": "standard"}
    assert shadow.clone_method in ("ficlone", "clonefile", "copy")
    # a second sync has nothing to do
    assert shadow.sync() == []


def test_refresh_after_a_save_a_new_file_and_a_deletion(ws: Path, shadow: ShadowWorkspace) -> None:
    shadow.sync()
    # an atomic save (new inode), as the editor saves
    tmp = ws / "pkg" / ".greet.tmp"
    tmp.write_text(GREET + "\n\ndef bye() -> str:\n    return 'bye'\n")
    os.replace(tmp, ws / "pkg" / "greet.py")
    shadow.note_saved("pkg/greet.py").result(timeout=10)
    assert (shadow.tree / "pkg" / "greet.py").read_bytes() == (ws / "pkg" / "greet.py").read_bytes()
    # changes made behind the editor's back are found by the scan
    (ws / "pkg" / "new.py").write_text("N = 1\n")
    (ws / "pkg" / "shout.py").unlink()
    steps = {(a.step, a.rel) for a in shadow.sync()}
    assert steps == {(Step.COPY, "pkg/new.py"), (Step.REMOVE, "pkg/shout.py")}
    assert (shadow.tree / "pkg" / "new.py").read_text() == "N = 1\n"
    assert not (shadow.tree / "pkg" / "shout.py").exists()


def test_new_ignore_rules_are_used_at_the_next_scan(ws: Path, tmp_path: Path) -> None:
    rules = [IgnoreRules.for_folder(ws)]
    shadow = ShadowWorkspace(
        ws, rules=lambda: rules[0], base=tmp_path / "data" / "shadow", scan_every_s=None
    )
    try:
        shadow.sync()
        assert (shadow.tree / "pkg" / "shout.py").is_file()
        (ws / ".gitignore").write_text((ws / ".gitignore").read_text() + "pkg/shout.py\n")
        rules[0] = IgnoreRules.for_folder(ws)  # as the editor does when .gitignore is saved
        shadow.sync()
        # an ignored small file is still copied (a tool may read it); not a stale decision
        assert (shadow.tree / "pkg" / "shout.py").is_file()
        (ws / ".gitignore").write_text((ws / ".gitignore").read_text() + "pkg/\n")
        rules[0] = IgnoreRules.for_folder(ws)
        shadow.sync()
        assert (shadow.tree / "pkg").is_symlink()  # an ignored folder: referenced now
    finally:
        shadow.close()


def test_a_new_session_brings_the_old_copy_in_step(ws: Path, tmp_path: Path) -> None:
    base = tmp_path / "data" / "shadow"
    first = ShadowWorkspace(ws, base=base, scan_every_s=None)
    first.sync()
    first.close()
    (ws / "pkg" / "greet.py").write_text(GREET + "# changed\n")
    second = ShadowWorkspace(ws, base=base, scan_every_s=None)
    try:
        assert [(a.step, a.rel) for a in second.sync()] == [(Step.COPY, "pkg/greet.py")]
    finally:
        second.close()


def test_a_link_left_in_the_copy_is_replaced_never_written_through(
    ws: Path, shadow: ShadowWorkspace, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.py"
    outside.write_text("precious\n")
    (shadow.tree / "pkg").mkdir(parents=True)
    (shadow.tree / "pkg" / "greet.py").symlink_to(outside)
    (shadow.tree / "pkg" / "shout.py").mkdir()  # a folder where a file belongs
    shadow.sync()
    assert outside.read_text() == "precious\n"
    for name, text in (("greet.py", GREET), ("shout.py", SHOUT)):
        copy = shadow.tree / "pkg" / name
        assert copy.is_file() and not copy.is_symlink() and copy.read_text() == text


@pytest.mark.parametrize(
    "rel", ["../evil.py", "/tmp/evil.py", ".venv/lib/site-packages/big.py", "pkg/../../x.py"]
)
def test_nothing_is_written_outside_the_copy_or_into_a_referenced_tree(
    ws: Path, shadow: ShadowWorkspace, rel: str
) -> None:
    shadow.sync()
    big = ws / ".venv" / "lib" / "site-packages" / "big.py"
    before = sha(big)
    verdict = shadow.check({rel: "x = 1\n"})
    assert verdict.status is CheckStatus.FAILED and "not a file of the" in verdict.note
    shadow.push_buffer(rel, "pushed = 1\n").result(timeout=10)
    assert sha(big) == before
    assert not (ws.parent / "evil.py").exists() and not (ws.parent / "x.py").exists()


def test_a_save_in_an_unignored_referenced_tree_never_truncates_the_users_file(
    ws: Path, shadow: ShadowWorkspace
) -> None:
    shadow.sync()
    index = ws / "node_modules" / "left-pad" / "index.js"  # no ignore file names node_modules
    text = "module.exports = 2;\n" + "// padding\n" * 30_000  # over one copy chunk
    index.write_text(text)
    shadow.note_saved("node_modules/left-pad/index.js").result(timeout=10)
    assert index.read_text() == text
    assert (shadow.tree / "node_modules").is_symlink()


def test_an_unsaved_buffer_overlays_its_file_until_dropped(
    ws: Path, shadow: ShadowWorkspace
) -> None:
    shadow.sync()
    shadow.push_buffer("pkg/greet.py", "UNSAVED = 1\n").result(timeout=10)
    assert (shadow.tree / "pkg" / "greet.py").read_text() == "UNSAVED = 1\n"
    assert shadow.sync() == []  # the scan leaves an overlaid file alone
    shadow.drop_buffer("pkg/greet.py").result(timeout=10)
    assert (shadow.tree / "pkg" / "greet.py").read_text() == GREET
    assert (ws / "pkg" / "greet.py").read_text() == GREET


def test_a_sqlite_database_is_snapshotted_never_linked(ws: Path, shadow: ShadowWorkspace) -> None:
    db = ws / "data" / "app.data"  # found by its header, not its name
    db.parent.mkdir()
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (v TEXT)")
    conn.execute("INSERT INTO t VALUES ('committed, still in the wal')")
    conn.commit()  # the connection stays open: the row is in app.data-wal, not yet in the file
    try:
        assert (ws / "data" / "app.data-wal").stat().st_size > 0
        shadow.sync()
        copy = shadow.tree / "data" / "app.data"
        assert copy.stat().st_ino != db.stat().st_ino and copy.stat().st_nlink == 1
        assert not copy.is_symlink()
        assert not (shadow.tree / "data" / "app.data-wal").exists()
        with sqlite3.connect(copy) as snapshot:
            rows = snapshot.execute("SELECT v FROM t").fetchall()
        assert rows == [("committed, still in the wal",)]
        # writing to the copy never reaches the user's database
        with sqlite3.connect(copy) as writer:
            writer.execute("INSERT INTO t VALUES ('shadow only')")
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (1,)
    finally:
        conn.close()


# ----- checking an edit with the real tools ----------------------------------------------------

needs_tools = pytest.mark.skipif(
    not CliChecker().pyright or not CliChecker().ruff,
    reason="ruff and basedpyright are installed by the run command",
)


@needs_tools
def test_check_reports_only_the_new_undefined_name_and_touches_no_user_file(
    ws: Path, shadow: ShadowWorkspace
) -> None:
    hashes = {p: sha(p) for p in ws.rglob("*.py") if ".venv" not in p.parts}
    broken = SHOUT.replace("greet(name)", "greet(nme)")
    verdict = shadow.check({"pkg/shout.py": broken})
    assert verdict.status is CheckStatus.CHECKED, verdict.note
    assert {(x.source, x.line) for x in verdict.new} == {("ruff", 4), ("basedpyright", 4)}
    assert all("nme" in x.message for x in verdict.new)
    assert {p: sha(p) for p in hashes} == hashes
    assert (shadow.tree / "pkg" / "shout.py").read_text() == SHOUT  # the copy is put back
    # an edit that breaks nothing has nothing new
    fine = SHOUT.replace("upper()", "lower()")
    assert shadow.check({"pkg/shout.py": fine}).new == ()


@needs_tools
def test_an_old_problem_moved_by_the_edit_is_not_new(ws: Path, shadow: ShadowWorkspace) -> None:
    old = SHOUT + "\n\ndef later() -> str:\n    return undefined_before\n"
    (ws / "pkg" / "shout.py").write_text(old)
    edited = old.replace(
        "from pkg.greet import greet\n", "from pkg.greet import greet\n\nA = 1\nB = 2\n"
    )
    verdict = shadow.check({"pkg/shout.py": edited})
    assert verdict.status is CheckStatus.CHECKED and verdict.before >= 1
    assert verdict.new == ()


@needs_tools
def test_language_servers_rooted_in_the_copy_check_an_edit(ws: Path, tmp_path: Path) -> None:
    checker = LspChecker()
    assert checker.available
    shadow = ShadowWorkspace(
        ws,
        base=tmp_path / "data" / "shadow",
        checker=checker,
        scan_every_s=None,
        check_timeout_s=300,
    )
    try:
        broken = SHOUT.replace("greet(name)", "greet(nme)")
        verdict = shadow.check({"pkg/shout.py": broken})
        assert verdict.status is CheckStatus.CHECKED, verdict.note
        assert {(x.source, x.code, x.line) for x in verdict.new} == {
            ("ruff", "F821", 4),
            ("basedpyright", "reportUndefinedVariable", 4),
        }
        # the servers do not keep the edited text: the next check starts from the file again
        assert shadow.check({"pkg/shout.py": SHOUT.replace("upper", "lower")}).new == ()
        # an edit to greet.py that breaks its importer is seen in greet.py's own terms only
        renamed = GREET.replace("def greet", "def welcome")
        assert shadow.check({"pkg/greet.py": renamed}).new == ()
        assert shadow.check({"pkg/shout.py": broken}).new != ()
    finally:
        shadow.close()
    assert (ws / "pkg" / "shout.py").read_text() == SHOUT


def _lsp_shadow(ws: Path, tmp_path: Path) -> ShadowWorkspace:
    """A shadow checked by the real servers (no periodic scan; time-outs never what a test
    checks)."""
    return ShadowWorkspace(
        ws,
        base=tmp_path / "data" / "shadow",
        checker=LspChecker(),
        scan_every_s=None,
        check_timeout_s=300,
    )


@needs_tools
def test_a_module_the_edit_adds_resolves_in_the_servers_check(ws: Path, tmp_path: Path) -> None:
    """A multi-file edit that adds a module and imports it: the running servers are told of
    the new file (workspace/didChangeWatchedFiles) before its importer is checked. Without
    that, basedpyright's cached folder listing reported the import as unresolved."""
    shadow = _lsp_shadow(ws, tmp_path)
    try:
        # the servers start (and read the folder) before the edit, as in a real session
        assert shadow.check({"pkg/shout.py": SHOUT.replace("upper", "lower")}).new == ()
        importer = "from pkg.audit import record\n" + SHOUT + "\nrecord(1)\n"
        edits = {
            "pkg/shout.py": importer,
            "pkg/audit.py": "def record(x: int) -> None:\n    pass\n",
        }
        verdict = shadow.check(edits)
        assert verdict.status is CheckStatus.CHECKED, verdict.note
        assert verdict.new == (), [(d.code, d.message) for d in verdict.new]
        # the module is gone from the copy again, and the servers were told: importing it now
        # is a problem again
        alone = shadow.check({"pkg/shout.py": importer})
        assert {d.code for d in alone.new} >= {"reportMissingImports"}
    finally:
        shadow.close()
    assert not (ws / "pkg" / "audit.py").exists()


@needs_tools
def test_a_module_written_into_the_copy_resolves_in_later_checks(ws: Path, tmp_path: Path) -> None:
    """The agent's way: a FILE answer writes a new module into the copy (an overlay, kept for
    the rest of the run), and a later step's edit imports it. The running servers are told of
    the file when it is written, so the import resolves; before 2026-12-06 they were not, and
    basedpyright's cached folder listing reported it unresolved in every later check."""
    shadow = _lsp_shadow(ws, tmp_path)
    try:
        assert shadow.check({"pkg/shout.py": SHOUT.replace("upper", "lower")}).new == ()
        shadow.push_buffer("pkg/audit.py", "def record(x: int) -> None:\n    pass\n").result(60)
        importer = "from pkg.audit import record\n" + SHOUT + "\nrecord(1)\n"
        verdict = shadow.check({"pkg/shout.py": importer})
        assert verdict.status is CheckStatus.CHECKED, verdict.note
        assert verdict.new == (), [(d.code, d.message) for d in verdict.new]
    finally:
        shadow.close()
    assert not (ws / "pkg" / "audit.py").exists()


class FakeModel:
    """The model at the repair seam: answers from a script and records what it was sent."""

    def __init__(self, answers: list[Mapping[str, str] | None]) -> None:
        self.answers = answers
        self.sent: list[str] = []

    def repair(self, edits: Mapping[str, str], message: str) -> Mapping[str, str] | None:
        self.sent.append(message)
        return self.answers.pop(0)


@needs_tools
def test_the_repair_loop_sends_new_errors_back_until_they_are_fixed(
    ws: Path, shadow: ShadowWorkspace
) -> None:
    broken = SHOUT.replace("greet(name)", "greet(nme)")
    model = FakeModel([{"pkg/shout.py": SHOUT.replace("upper()", "title()")}])
    outcome = check_and_repair(shadow, {"pkg/shout.py": broken}, model, RepairPolicy(rounds=2))
    assert outcome.next is Next.SHOW and outcome.rounds == 1
    assert "nme" in model.sent[0] and "pkg/shout.py:5" in model.sent[0]
    assert outcome.edits["pkg/shout.py"].endswith("title()\n")
    # a model that never fixes it: the user is asked after the rounds
    stubborn = FakeModel([{"pkg/shout.py": broken}, {"pkg/shout.py": broken}])
    outcome = check_and_repair(shadow, {"pkg/shout.py": broken}, stubborn, RepairPolicy(rounds=2))
    assert outcome.next is Next.ASK_USER and outcome.verdict.errors


# ----- the review in a real window --------------------------------------------------------------


def make_window(qtbot: QtBot, tmp_path: Path, ws: Path) -> MainWindow:
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"completion.enabled": False, "cloud.autostart": False}))
    win = MainWindow(settings)
    qtbot.addWidget(win)
    win.resize(1100, 700)
    win.show()
    win.open_folder(ws)
    qtbot.waitUntil(lambda: win.workspace.files_complete, timeout=5000)
    return win


@needs_tools
def test_an_apply_that_adds_an_undefined_name_shows_it_in_its_review(
    qtbot: QtBot, tmp_path: Path, ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a loaded machine may take long: the time-out has its own test
    monkeypatch.setattr(ApplyReview, "CHECK_TIMEOUT_MS", 300_000)
    win = make_window(qtbot, tmp_path, ws)
    win.review.make_shadow = lambda root: ShadowWorkspace(
        root, rules=lambda: win.workspace.rules, check_timeout_s=300
    )
    target = ws / "pkg" / "shout.py"
    before, greet_before = sha(target), sha(ws / "pkg" / "greet.py")
    # another file's unsaved buffer: the shadow sees it, the file on disk keeps its bytes
    other = win.open_file(ws / "pkg" / "greet.py")
    assert other is not None
    other.editor.insertText(0, "UNSAVED = 1\n")
    assert other.is_dirty()
    doc = win.open_file(target)
    assert doc is not None
    block = "def shout(name: str) -> str:\n    return greet(nme).upper()\n"
    review = win.start_review(doc, block)
    assert review is not None
    qtbot.waitUntil(lambda: review.state == "review", timeout=10_000)
    assert review.checks.isVisible()
    # (the repair round it starts fails at once: this window has no model path)
    qtbot.waitUntil(lambda: review.checks.state not in ("checking", "repairing"), timeout=300_000)
    assert review.checks.state == "done", review.checks.title.text()
    rows = review.checks.rows()
    assert rows and all("line 5" in row and "nme" in row for row in rows), rows
    assert any("F821" in row and "✖" in row for row in rows)
    assert any("change 1" in row for row in rows)
    assert review.squiggled(INDICATOR_ERROR) == [4]
    # the user's file and buffer are untouched while the review is open
    assert sha(target) == before and doc.editor.text() == SHOUT
    review.reject_all()
    assert sha(target) == before
    shadow = win.review.shadow
    assert shadow is not None and shadow.tree.is_dir() and not shadow.tree.is_relative_to(ws)
    assert (shadow.tree / "pkg" / "greet.py").read_text() == other.editor.text()
    assert sha(ws / "pkg" / "greet.py") == greet_before


class SlowChecker:
    """A shadow whose check answers only when told (to see the review's time-out)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.future: Future[Verdict] = Future()

    def start(self) -> None: ...

    def prepare(self, originals: Mapping[str, str]) -> None: ...

    def close(self) -> None: ...

    def submit_check(
        self, edits: Mapping[str, str], originals: Mapping[str, str] | None = None
    ) -> Future[Verdict]:
        return self.future


def test_a_check_that_takes_too_long_lets_the_review_show_without_it(
    qtbot: QtBot, tmp_path: Path, ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    win = make_window(qtbot, tmp_path, ws)
    slow = SlowChecker(ws)
    win.review.make_shadow = lambda root: slow  # type: ignore[assignment,return-value]
    monkeypatch.setattr(ApplyReview, "CHECK_TIMEOUT_MS", 300)
    doc = win.open_file(ws / "pkg" / "shout.py")
    assert doc is not None
    review = win.start_review(doc, "def shout(name: str) -> str:\n    return name\n")
    assert review is not None
    qtbot.waitUntil(lambda: review.state == "review", timeout=10_000)
    assert review.checks.state == "checking" and "Checking" in review.checks.title.text()
    assert review.checks.isVisible()
    qtbot.waitUntil(lambda: review.checks.state == "timed_out", timeout=5000)
    assert "without it" in review.checks.title.text()
    assert slow.future.cancelled()
    # the review still works: accept applies to the buffer
    review.accept_all()
    assert "return name" in doc.editor.text()


def test_only_the_shadows_servers_are_told_of_files_the_editors_keep_their_own_watcher() -> None:
    """The shadow's hub says it sends didChangeWatchedFiles (and does, per check); the
    editor's does not, so basedpyright keeps its own watcher for files a git checkout or a
    terminal makes."""
    from app.services.lsp.session import _client_capabilities

    told = _client_capabilities(tells_files=True).workspace
    assert told is not None and told.did_change_watched_files is not None
    assert told.did_change_watched_files.dynamic_registration is True
    editor = _client_capabilities().workspace
    assert editor is not None and editor.did_change_watched_files is None


class _Told:
    """A checker that keeps servers running: it records what it is told of the copy's files
    (``LspChecker.files_changed``'s seam) and finds no problems."""

    available = True

    def __init__(self) -> None:
        self.told: list[tuple[list[str], int]] = []

    def diagnostics(self, root: Path, paths: object, deadline: float) -> list[object]:
        return []

    def files_changed(self, root: Path, paths: list[str], kind: int) -> None:
        self.told.append((list(paths), kind))


def test_the_servers_hear_of_files_the_copy_gains_or_loses(ws: Path, tmp_path: Path) -> None:
    """A module the agent writes into the copy (an overlay), and one the user adds or deletes
    in the folder (a targeted sync), are told to the checker's servers as created (1) or
    deleted (3): a server resolves imports from what it heard, so the new module would stay
    "could not be resolved" in every later check. A file it already had is not told again."""
    told = _Told()
    shadow = ShadowWorkspace(
        ws,
        base=tmp_path / "data" / "shadow",
        scan_every_s=None,
        checker=told,  # type: ignore[arg-type]
    )
    try:
        shadow.sync()
        shadow.push_buffer("pkg/fresh.py", "VALUE = 1\n").result(30)
        shadow.push_buffer("pkg/fresh.py", "VALUE = 2\n").result(30)  # had it: nothing new
        shadow.push_buffer("pkg/greet.py", GREET + "\n").result(30)  # a file it has
        assert told.told == [(["pkg/fresh.py"], 1)]
        shadow.drop_buffer("pkg/fresh.py").result(30)  # never on disk: gone from the copy
        assert not (shadow.tree / "pkg" / "fresh.py").exists()
        assert told.told[-1] == (["pkg/fresh.py"], 3)
        (ws / "pkg" / "added.py").write_text("ADDED = 1\n")
        shadow.sync_paths(["pkg/added.py"])
        assert told.told[-1] == (["pkg/added.py"], 1)
        (ws / "pkg" / "added.py").unlink()
        shadow.sync_paths(["pkg/added.py"])
        assert told.told[-1] == (["pkg/added.py"], 3)
        shadow.sync_paths(["pkg/greet.py"])  # changed or not, it stays: nothing to tell
        assert len(told.told) == 4
    finally:
        shadow.close()
