"""What git status says (forecode_core.workspace.git_status): porcelain v2 parsing and VS Code's
kinds, letters and folder tints, looked up on marked text."""

from __future__ import annotations

from forecode_core.workspace.git_status import Decoration, StatusLookup, parse_porcelain_v2

H = "0123456789abcdef0123456789abcdef01234567"


def porcelain(marked: str) -> bytes:
    """Readable porcelain → ``-z`` bytes: one record a line, a tab before a rename's origin."""
    rows = [row.strip() for row in marked.strip().split("\n")]
    return "".join(row.replace("\t", "\0") + "\0" for row in rows).encode()


SAMPLE = porcelain(f"""
# branch.oid {H}
# branch.head main
1 .M N... 100644 100644 100644 {H} {H} src/mod.py
1 A. N... 000000 100644 100644 {H} {H} src/new file.py
1 AM N... 000000 100644 100644 {H} {H} added then edited.py
2 R. N... 100644 100644 100644 {H} {H} R100 src/renamed.py\tsrc/old.py
u UU N... 100644 100644 100644 100644 {H} {H} {H} docs/conflict.md
1 .D N... 100644 100644 000000 {H} {H} gone.py
1 D. N... 100644 000000 000000 {H} {H} lib/unstaged/x.py
? todo.txt
? build out/
! node_modules/
! docs/site.html
""")


def test_porcelain_v2_is_parsed() -> None:
    status = parse_porcelain_v2(SAMPLE)
    assert status.head_oid == H
    assert dict(status.entries) == {
        "src/mod.py": "modified",
        "src/new file.py": "added",
        "added then edited.py": "added",
        "src/renamed.py": "renamed",
        "docs/conflict.md": "conflicted",
        "gone.py": "deleted",
        "lib/unstaged/x.py": "deleted",
        "todo.txt": "untracked",
        "docs/site.html": "ignored",
    }
    assert dict(status.folders) == {"build out": "untracked", "node_modules": "ignored"}
    assert not status.truncated


def test_an_unborn_branch_cut_records_and_garbage() -> None:
    data = porcelain("# branch.oid (initial)\n? a.txt\nnonsense record\n1 .M too short")
    data += b"? cut-off-without-terminat"
    status = parse_porcelain_v2(data)
    assert status.head_oid is None
    assert dict(status.entries) == {"a.txt": "untracked"}


def test_the_entry_cap_bounds_a_huge_status() -> None:
    data = b"".join(b"? f%d.txt\0" % i for i in range(1000))
    status = parse_porcelain_v2(data, max_entries=100)
    assert len(status.entries) == 100 and status.truncated


def test_lookup_letters_folders_and_tints() -> None:
    look = StatusLookup(parse_porcelain_v2(SAMPLE))
    assert look.decoration("src/mod.py") == Decoration("modified", "M")
    assert look.decoration("src/new file.py") == Decoration("added", "A")
    assert look.decoration("todo.txt") == Decoration("untracked", "U")
    assert look.decoration("src/renamed.py") == Decoration("renamed", "R")
    assert look.decoration("docs/conflict.md") == Decoration("conflicted", "!")
    assert look.decoration("gone.py") == Decoration("deleted", "D")
    assert look.decoration("docs/site.html") == Decoration("ignored", "")
    assert look.decoration("README.md") is None
    # Inside folders git reported whole: their kind; the folder itself has no letter.
    assert look.decoration("build out/deep/x.o") == Decoration("untracked", "U")
    assert look.decoration("build out", is_dir=True) == Decoration("untracked", "")
    assert look.decoration("node_modules/pkg/index.js") == Decoration("ignored", "")
    # Folders are tinted by the most important change below them; not by deletions/ignores.
    assert look.decoration("src", is_dir=True) == Decoration("modified", "", propagated=True)
    assert look.decoration("docs", is_dir=True) == Decoration("conflicted", "", propagated=True)
    assert look.decoration("lib", is_dir=True) is None
    assert look.decoration("lib/unstaged", is_dir=True) is None


def test_lookup_for_a_workspace_inside_the_repository() -> None:
    look = StatusLookup(parse_porcelain_v2(SAMPLE), prefix="src")
    assert look.decoration("mod.py") == Decoration("modified", "M")
    assert look.decoration("todo.txt") is None  # outside the workspace
    inside = StatusLookup(parse_porcelain_v2(SAMPLE), prefix="build out/sub")
    assert inside.decoration("a.c") == Decoration("untracked", "U")
