"""Cases for ``python -m bench next_edit``: real commits replayed edit by edit.

A commit's change to one Python file is cut into *units*, in file order: each ``git diff -U0``
hunk is one unit, except that a hunk replacing n lines by n lines is cut into its changed lines,
and a changed line into its separate token-level changes (``foo(a, b)`` -> ``foo(x, y)`` is two
units): what a user types as separate edits. The replay applies the first ``k`` units (the
*recent edits*, as the editor's ``EditEvent``s would hold them: each unit's text trimmed to the
words it changes) and asks for the next edit with the caret at the end of the last one; the
remaining units are the answers. Files follow git's order; after a file's last unit the next
unit is in another file (``other_file``), and after the commit's last unit nothing remains
(``nothing_remains``: any suggestion is a false show).

Slices (``Case.slice``): ``same_line`` (the next unit touches the caret's line), ``elsewhere``
(later in the file), ``other_file``, ``nothing_remains``; and, across the first two,
``rename_template`` (``Case.template``): the next unit's token-level change (the runs of tokens
removed and inserted, whitespace aside) is the same mapping as the last recent edit's, and that
mapping changes some token (``template_signature``): a change of whitespace alone (a re-indent,
a blank line added or removed, a line wrapped) has the empty mapping, which every other
whitespace change shares, so it says nothing about where the next one goes and is no template
(until 2026-12-05-d it was counted: 18 of the 180 rename/template cases of the default run).

Sampling is deterministic (``--seed``): the newest ``MAX_COMMITS`` non-merge commits are
shuffled, commits that change more than ``MAX_FILES`` files or ``MAX_CHANGED_LINES`` lines are
skipped (bulk changes), as are files under vendored or generated folders, files over
``MAX_FILE_CHARS``, with ``\\r`` or not UTF-8, added, deleted or renamed files, and files cut
into more than ``MAX_UNITS`` units; at most ``PER_COMMIT`` positions are drawn from a commit,
and each stratum (the four slices, with ``rename_template`` cases counted apart from their
slice) gets an equal quota of the cases, so every slice has enough cases to say something
(figures over all cases are over this mix, not the commits' natural one).
"""

from __future__ import annotations

import difflib
import random
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "MAX_COMMITS",
    "STRATA",
    "Case",
    "Hunk",
    "Unit",
    "apply_units",
    "cases_of_commit",
    "commit_files",
    "parse_hunks",
    "sample_cases",
    "signature",
    "stratum",
    "template_signature",
    "trim_to_words",
    "units_of",
]

MAX_COMMITS = 1500  # the newest non-merge commits drawn from
MAX_FILES = 10  # a commit changing more files is a bulk change
MAX_CHANGED_LINES = 400
MAX_FILE_CHARS = 200_000
MAX_UNITS = 40  # a file cut into more units is a rewrite, not a run of edits
PER_COMMIT = 2  # positions drawn from one commit
SKIP_PARTS = re.compile(r"(^|/)(vendor|_vendor|vendored|third_party|generated|_generated)(/|$)")

_HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@", re.M)
_TOKEN = re.compile(r"\w+|\s+|[^\w\s]")
_WORD = re.compile(r"\w")


@dataclass(frozen=True)
class Hunk:
    """A ``git diff -U0`` hunk: 0-based first lines and counts, old and new."""

    old_start: int
    old_count: int
    new_start: int
    new_count: int


@dataclass(frozen=True)
class Unit:
    """One edit: ``text[start:end]`` becomes ``new`` (offsets of the text it applies to)."""

    start: int
    end: int
    new: str


@dataclass(frozen=True)
class Case:
    repo: str
    commit: str
    path: str
    k: int  # units applied (in this file)
    units: int  # units of this file
    text: str  # the document after the first k units
    # the applied units trimmed to words, in ``text``'s offsets: [start, end) holds ``new``
    recent: tuple[Unit, ...]
    recent_before: tuple[str, ...]  # what each recent unit replaced
    remaining: tuple[Unit, ...]  # the answers, in ``text``'s offsets, file order
    final: str  # the file after the commit
    caret: int
    slice: str  # same_line | elsewhere | other_file | nothing_remains
    template: bool  # the next unit repeats the last recent edit's token mapping


def parse_hunks(diff: str) -> list[Hunk]:
    """The hunk headers of a ``-U0`` diff of one file, with 0-based first lines (a count of 0
    means the hunk inserts or deletes after that many lines)."""
    out = []
    for m in _HEADER.finditer(diff):
        oc = 1 if m.group(2) is None else int(m.group(2))
        nc = 1 if m.group(4) is None else int(m.group(4))
        os_ = int(m.group(1)) - (1 if oc else 0)
        ns = int(m.group(3)) - (1 if nc else 0)
        out.append(Hunk(os_, oc, ns, nc))
    return out


def _offsets(lines: Sequence[str]) -> list[int]:
    at = [0]
    for line in lines:
        at.append(at[-1] + len(line))
    return at


def _token_runs(old: str, new: str) -> list[tuple[int, int, str]]:
    """The token-level changes of ``old`` into ``new``: ``(start, end, text)`` in ``old``."""
    a, b = _TOKEN.findall(old), _TOKEN.findall(new)
    a_at, b_at = _offsets(a), _offsets(b)
    out = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op != "equal":
            out.append((a_at[i1], a_at[i2], new[b_at[j1] : b_at[j2]]))
    return out


def units_of(parent: str, child: str, hunks: Sequence[Hunk]) -> list[Unit]:
    """The units (module doc) of the change ``parent`` -> ``child``, in ``parent``'s offsets."""
    pl, cl = parent.splitlines(keepends=True), child.splitlines(keepends=True)
    p_at, c_at = _offsets(pl), _offsets(cl)
    out: list[Unit] = []
    for h in hunks:
        new = "".join(cl[h.new_start : h.new_start + h.new_count])
        if h.old_count != h.new_count or h.old_count == 0:
            out.append(Unit(p_at[h.old_start], p_at[h.old_start + h.old_count], new))
            continue
        for i in range(h.old_count):
            old_line, new_line = pl[h.old_start + i], cl[h.new_start + i]
            if old_line == new_line:
                continue
            base = p_at[h.old_start + i]
            out += [Unit(base + s, base + e, t) for s, e, t in _token_runs(old_line, new_line)]
    if c_at[-1] != len(child):  # pragma: no cover - splitlines covers the text
        raise ValueError("lines do not cover the text")
    return out


def apply_units(text: str, units: Sequence[Unit]) -> str:
    """``text`` with disjoint ``units`` (its offsets, any order) made."""
    for u in sorted(units, key=lambda u: (u.start, u.end), reverse=True):
        text = text[: u.start] + u.new + text[u.end :]
    return text


def _is_word(text: str, i: int) -> bool:
    return 0 <= i < len(text) and bool(_WORD.match(text[i]))


def trim_to_words(start: int, before: str, after: str) -> tuple[int, str, str]:
    """An edit ``before`` -> ``after`` at ``start`` (``after`` is what the document holds
    now) trimmed of its common prefix and suffix, then widened back to whole words: the span a
    user would select and type over. ``(start, before, after)``."""
    from forecode_core.next_edit.propagation import shared_ends

    p, q = shared_ends(before, after)
    while p > 0 and _is_word(after, p - 1) and (_is_word(after, p) or _is_word(before, p)):
        p -= 1
    while (
        q > 0
        and _is_word(after, len(after) - q)
        and (_is_word(after, len(after) - q - 1) or _is_word(before, len(before) - q - 1))
    ):
        q -= 1
    return start + p, before[p : len(before) - q], after[p : len(after) - q]


def signature(old: str, new: str) -> tuple[tuple[str, str], ...]:
    """The token-level change of ``old`` -> ``new``: each changed run's removed and inserted
    text, whitespace removed (``rename_template`` compares these)."""
    return tuple(
        ("".join(old[s:e].split()), "".join(t.split())) for s, e, t in _token_runs(old, new)
    )


def template_signature(old: str, new: str) -> tuple[tuple[str, str], ...] | None:
    """``signature(old, new)`` when it changes some token, else None (no change, or a change
    of whitespace alone: no mapping a later edit could repeat; module doc)."""
    sig = signature(old, new)
    return sig if any(a or b for a, b in sig) else None


@dataclass(frozen=True)
class FileChange:
    path: str
    parent: str
    child: str
    units: tuple[Unit, ...]


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset)


def case_at(repo: str, commit: str, files: Sequence[FileChange], fi: int, k: int) -> Case:
    """The case after the first ``k`` units of ``files[fi]`` (the files before it done)."""
    fc = files[fi]
    units = fc.units
    text = fc.parent
    recent: list[Unit] = []
    befores: list[str] = []
    shift = 0
    for u in units[:k]:
        start = u.start + shift
        before = fc.parent[u.start : u.end]
        text = text[:start] + u.new + text[start + len(before) :]
        shift += len(u.new) - len(before)
        s, b, a = trim_to_words(start, before, u.new)
        recent.append(Unit(s, s + len(a), a))
        befores.append(b)
    # an earlier recent edit's offsets do not move with later ones: units go in file order
    remaining = tuple(Unit(u.start + shift, u.end + shift, u.new) for u in units[k:])
    last = recent[-1]
    caret = last.start + len(last.new)
    later = any(f.units for f in files[fi + 1 :])
    if remaining:
        nxt = remaining[0]
        caret_line = _line_of(text, caret)
        touches = (
            _line_of(text, nxt.start) <= caret_line <= _line_of(text, max(nxt.start, nxt.end - 1))
        )
        slice_ = "same_line" if touches else "elsewhere"
        prev = units[k - 1]
        mapping = template_signature(fc.parent[prev.start : prev.end], prev.new)
        template = mapping is not None and mapping == signature(
            fc.parent[units[k].start : units[k].end], units[k].new
        )
    else:
        slice_ = "other_file" if later else "nothing_remains"
        template = False
    return Case(
        repo=repo,
        commit=commit,
        path=fc.path,
        k=k,
        units=len(units),
        text=text,
        recent=tuple(recent),
        recent_before=tuple(befores),
        remaining=remaining,
        final=fc.child,
        caret=caret,
        slice=slice_,
        template=template,
    )


def stratum(case: Case) -> str:
    """The quota a case fills: ``rename_template`` first, else its slice."""
    return "rename_template" if case.template else case.slice


STRATA = ("same_line", "elsewhere", "rename_template", "other_file", "nothing_remains")


def cases_of_commit(repo: str, commit: str, files: Sequence[FileChange]) -> list[Case]:
    """Every position of the commit: after each unit of each file."""
    return [
        case_at(repo, commit, files, fi, k)
        for fi, f in enumerate(files)
        for k in range(1, len(f.units) + 1)
    ]


# ---------------------------------------------------------------- git


def _git(repo: str, *args: str, timeout: float = 60.0) -> str | None:
    try:
        proc = subprocess.run(
            ["git", "--git-dir", repo, *args],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    try:
        return proc.stdout.decode("utf-8")
    except UnicodeDecodeError:
        return None


def git_dir(repo: str) -> str:
    """The git directory of ``repo`` (a work tree or a bare repository)."""
    out = _git(repo, "rev-parse", "--absolute-git-dir")
    if out is None:
        inner = _git(f"{repo}/.git", "rev-parse", "--absolute-git-dir")
        if inner is None:
            raise SystemExit(f"{repo}: not a git repository")
        return inner.strip()
    return out.strip()


def _wanted(path: str) -> bool:
    return path.endswith(".py") and not SKIP_PARTS.search(path)


def commit_files(repo: str, commit: str) -> list[FileChange] | None:
    """The commit's changed Python files as ``FileChange``s, git's order; None when the commit
    is skipped (a merge or root commit, a bulk change, nothing usable)."""
    stat = _git(repo, "diff-tree", "--no-commit-id", "-r", "--numstat", "--no-renames", commit)
    status = _git(
        repo, "diff-tree", "--no-commit-id", "-r", "--name-status", "--no-renames", commit
    )
    if not stat or status is None:
        return None
    rows = [line.split("\t") for line in stat.splitlines() if line.count("\t") >= 2]
    if not rows or len(rows) > MAX_FILES:
        return None
    changed = 0
    for added, deleted, _path in rows:
        if added == "-" or deleted == "-":
            continue  # binary
        changed += int(added) + int(deleted)
    if changed > MAX_CHANGED_LINES:
        return None
    modified = [
        line.split("\t", 1)[1]
        for line in status.splitlines()
        if line.startswith("M\t") and _wanted(line.split("\t", 1)[1])
    ]
    out = []
    for path in modified:
        fc = _file_change(repo, commit, path)
        if fc is not None:
            out.append(fc)
    return out or None


def _file_change(repo: str, commit: str, path: str) -> FileChange | None:
    parent = _git(repo, "show", f"{commit}^:{path}")
    child = _git(repo, "show", f"{commit}:{path}")
    diff = _git(
        repo,
        "diff",
        "-U0",
        "--no-color",
        "--no-renames",
        "--no-ext-diff",
        f"{commit}^",
        commit,
        "--",
        path,
    )
    if parent is None or child is None or diff is None:
        return None
    if max(len(parent), len(child)) > MAX_FILE_CHARS or "\r" in parent or "\r" in child:
        return None
    units = units_of(parent, child, parse_hunks(diff))
    if not units or len(units) > MAX_UNITS or apply_units(parent, units) != child:
        return None
    return FileChange(path, parent, child, tuple(units))


def _commits(repo: str, max_commits: int) -> list[str]:
    out = _git(repo, "rev-list", "--no-merges", "-n", str(max_commits), "HEAD")
    return out.split() if out else []


def sample_cases(
    repo: str,
    *,
    cases: int,
    seed: int,
    name: str | None = None,
    max_commits: int = MAX_COMMITS,
    per_commit: int = PER_COMMIT,
) -> list[Case]:
    """Up to ``cases`` cases of ``repo``, an equal quota per stratum (``STRATA``; a quota that
    cannot be filled leaves the others as they are), at most ``per_commit`` from a commit,
    drawn deterministically from ``seed`` (module doc). Sorted by stratum, then drawing
    order."""
    commits = _commits(repo, max_commits)
    rng = random.Random(f"{seed}:{name or repo}")
    rng.shuffle(commits)
    quota = {
        s: cases // len(STRATA) + (1 if i < cases % len(STRATA) else 0)
        for i, s in enumerate(STRATA)
    }
    got: dict[str, list[Case]] = {s: [] for s in STRATA}
    for commit in commits:
        if all(len(got[s]) >= quota[s] for s in STRATA):
            break
        files = commit_files(repo, commit)
        if not files:
            continue
        open_ = [
            c
            for c in cases_of_commit(name or repo, commit, files)
            if len(got[stratum(c)]) < quota[stratum(c)]
        ]
        for case in rng.sample(open_, min(per_commit, len(open_))):
            if len(got[stratum(case)]) < quota[stratum(case)]:
                got[stratum(case)].append(case)
    return [c for s in STRATA for c in got[s]]
