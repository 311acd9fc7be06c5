"""Git-compatible ignore decisions: the one ``IgnoreRules`` behind the editor's explorer, quick
open and find in files, and the codebase index. Pure: the standard library and the file system
only, no Qt.

What differs between its users is which files hold the patterns, an option of the
constructors: ``IgnoreRules.for_folder(root, extra, ignore_files=...)`` reads them from disk
(the editor: ``.gitignore``, ``GIT_IGNORE_FILES``; the index: ``.gitignore`` then
``.forecodeignore``, ``INDEX_IGNORE_FILES``), ``IgnoreRules.for_files`` from an in-memory map of
files, and ``IgnoreRules(loader, ...)`` from any function of a folder.

``IgnoreRules`` answers "is this path ignored?" the way git does, from these sources, highest
precedence first:

1. ``extra_patterns`` (gitignore syntax: the user's ``files.exclude``, the caller's patterns).
   Like patterns given to git on the command line they win over every file, so ``!pattern``
   there can also show something an ignore file hides.
2. The ignore files of the path's folder (``loader(rel_dir)`` gives their lines, in order), the
   deepest folder's first; a file's patterns are relative to its folder. With several ignore
   files in one folder (``.gitignore``, ``.forecodeignore``) the later file's lines come later,
   so it wins a tie and can re-include with ``!``. Folders are read
   lazily, on the first question about a path below them, and cached; call ``invalidate`` when
   one changes.
3. The exclude lines (``.git/info/exclude``; ``exclude()`` gives them, read lazily and again
   after a full ``invalidate``).

Within one source the last matching pattern wins, and ``!`` re-includes. As in git, a path
inside an ignored directory is ignored whatever the patterns say about the path itself (a file
cannot be re-included if a parent directory is excluded), because git never looks inside an
ignored directory. That is how this works too: a path is checked by checking each of its
ancestor directories first, and a pattern only counts when it matches the path itself, not one
of its ancestors. ``.git`` is always ignored.

Lines are read as git reads them (``#`` comments, unescaped trailing spaces dropped, ``!``,
a trailing ``/`` for directories only, a pattern without a slash matching the base name at any
depth, one with a slash anchored to its folder) and matched by
``forecode_core.workspace.wildmatch``,
which cannot backtrack: the cost of a decision is linear in the patterns' length times the
path's, whatever the patterns are. ``RuleSet`` buckets a source's patterns by their literal
text (whole name, literal suffix such as ``*.pyc``, literal prefix), so a path is tried only
against the few patterns that can match it, plus those without any literal part; when many
patterns need the automaton they share one (``wildmatch.PatternSet``): one pass for all.

Limits, per source (one folder's ignore files, the exclude file, the extra patterns):
``MAX_SOURCE_BYTES`` in all (1 MiB; ``read_lines`` also stops reading a file a little past
it), ``MAX_PATTERNS`` patterns (50,000), ``MAX_PATTERN_BYTES`` per pattern (4,096), and
``MAX_WILD_PATTERNS`` patterns that need the automaton (1,000: those with a wildcard between
literal parts, such as ``*.py[cod]`` or ``a/**/b``; ``*.pyc``, ``build/`` and ``/dist*`` are
literal comparisons). Git has none, but real ignore files stay far below them (a large one
has a few thousand lines, a few dozen of them wildcards inside); they bound the work of one
decision whatever the file holds: 0.3 ms for 1,000 wildcard patterns against a 60-byte name,
at worst ~25 ms for a 200-byte name and ~250 ms for a 3,000-byte path when the file is 1 MiB
of 4 KiB wildcard patterns (``python -m bench ignore``). Beyond them the patterns that fit
still apply, the rest are dropped, and the problem is reported once per source: logged as a
warning and passed to ``on_warning`` (the editor shows it in the status bar). Nothing here can
hang on a hostile ignore file.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence

from forecode_core.workspace.wildmatch import Pattern, PatternSet

__all__ = [
    "GIT_IGNORE_FILES",
    "INDEX_IGNORE_FILES",
    "MAX_PATTERNS",
    "MAX_PATTERN_BYTES",
    "MAX_SOURCE_BYTES",
    "MAX_WILD_PATTERNS",
    "IgnoreRules",
    "RuleSet",
    "git_dir",
    "normalize",
    "read_lines",
]

log = logging.getLogger(__name__)

MAX_PATTERNS = 50_000
MAX_WILD_PATTERNS = 1_000
MAX_PATTERN_BYTES = 4_096
MAX_SOURCE_BYTES = 1 << 20
UNION_MIN = 16
LIGHT_BUCKET = 64
LIGHT_UNION_BITS = 4_096

_GLOB_SPECIAL = frozenset(b"*?[\\")

GIT_IGNORE_FILES: tuple[str, ...] = (".gitignore",)
"""The ignore files git reads in each folder: the editor's explorer, quick open and search."""
INDEX_IGNORE_FILES: tuple[str, ...] = (".gitignore", ".forecodeignore")
"""The codebase index also reads ``.forecodeignore`` (same syntax), after ``.gitignore``."""


def _trim_trailing_spaces(line: str) -> str:
    """Drop trailing spaces unless escaped with a backslash (git's ``trim_trailing_spaces``;
    tabs stay)."""
    if not line.endswith(" "):
        return line
    last_space = -1
    i = 0
    n = len(line)
    while i < n:
        ch = line[i]
        if ch == " ":
            if last_space < 0:
                last_space = i
        elif ch == "\\":
            i += 1
            if i >= n:
                return line
            last_space = -1
        else:
            last_space = -1
        i += 1
    return line[:last_space] if last_space >= 0 else line


class _Rule:
    """One pattern line: ``ignore`` is False for a ``!`` line; ``dir_only`` for a trailing
    ``/``; ``basename`` when it has no slash (matched against the last path component)."""

    __slots__ = ("basename", "dir_only", "ignore", "index", "pattern")

    def __init__(
        self, index: int, ignore: bool, dir_only: bool, basename: bool, pattern: Pattern
    ) -> None:
        self.index = index
        self.ignore = ignore
        self.dir_only = dir_only
        self.basename = basename
        self.pattern = pattern


def _parse(line: str, index: int) -> _Rule | None:
    """A line of an ignore file as git's ``parse_path_pattern`` reads it, or None for a blank
    line, a comment or a pattern that can match nothing."""
    if not line or line.startswith("#"):
        return None
    line = _trim_trailing_spaces(line)
    ignore = True
    if line.startswith("!"):
        ignore = False
        line = line[1:]
    dir_only = line.endswith("/")
    if dir_only:
        line = line[:-1]
    if not line:
        return None
    raw = line.encode("utf-8", "surrogateescape")
    basename = b"/" not in raw
    if basename:
        pattern = Pattern(raw, 0)
    else:
        # git compares the wildcard-free prefix itself and wildmatches the rest (see
        # wildmatch's dstar_start); a leading "/" only anchors, which a slash does anyway.
        prefix = next((i for i, b in enumerate(raw) if b in _GLOB_SPECIAL), len(raw))
        if raw.startswith(b"/"):
            raw = raw[1:]
            prefix -= 1
        pattern = Pattern(raw, prefix)
    if pattern.never:
        return None
    return _Rule(index, ignore, dir_only, basename, pattern)


class _Buckets:
    """Patterns of one kind (base-name or whole-path), found by their literal parts."""

    __slots__ = ("exact", "others", "prefix", "suffix")

    def __init__(self) -> None:
        self.exact: dict[bytes, list[int]] = {}
        self.suffix: dict[int, dict[bytes, list[int]]] = {}
        self.prefix: dict[int, dict[bytes, list[int]]] = {}
        self.others: list[int] = []

    def add(self, rule: _Rule) -> None:
        pattern = rule.pattern
        if pattern.exact:
            self.exact.setdefault(pattern.prefix, []).append(rule.index)
        elif pattern.suffix and len(pattern.suffix) >= len(pattern.prefix):
            # The longer literal part is the more selective key ("src/gen/*.o": the prefix).
            by = self.suffix.setdefault(len(pattern.suffix), {})
            by.setdefault(pattern.suffix, []).append(rule.index)
        elif pattern.prefix:
            by = self.prefix.setdefault(len(pattern.prefix), {})
            by.setdefault(pattern.prefix, []).append(rule.index)
        else:
            self.others.append(rule.index)

    def largest(self) -> int:
        """The length of the longest candidate list one lookup can return."""
        sizes = [len(found) for found in self.exact.values()]
        for table in (self.suffix, self.prefix):
            sizes.extend(len(found) for by in table.values() for found in by.values())
        return max(sizes, default=0)

    def candidates(self, text: bytes, out: list[int]) -> None:
        """Append the indices of the bucketed patterns that may match ``text`` (not
        ``others``)."""
        found = self.exact.get(text)
        if found:
            out.extend(found)
        n = len(text)
        for length, by in self.suffix.items():
            if length <= n:
                found = by.get(text[n - length :])
                if found:
                    out.extend(found)
        for length, by in self.prefix.items():
            if length <= n:
                found = by.get(text[:length])
                if found:
                    out.extend(found)


class RuleSet:
    """The compiled patterns of one source, ``decide``-d as git does (the last matching
    pattern wins). Built by ``RuleSet.from_lines``, which applies the limits and reports what
    it dropped in ``problems``. Immutable, so it can be shared between threads.

    ``tested`` counts the patterns run against a path (all decisions together; a shared
    automaton counts once), so a test can check that bucketing keeps that work small. When more
    than ``UNION_MIN`` patterns (of base names, or of paths) need the automaton, they run as one
    ``PatternSet``: one pass over the path for all of them. ``light`` says a decision is cheap
    whatever the path: no bucket or the unbucketed list holds more than ``LIGHT_BUCKET``
    patterns and a shared automaton has at most ``LIGHT_UNION_BITS`` positions (a few hundred
    microseconds at worst; the explorer decides such rows on the UI thread, the others on a
    worker).
    """

    __slots__ = ("_names", "_others", "_paths", "_unions", "light", "problems", "rules", "tested")

    def __init__(self, rules: Sequence[_Rule], problems: Sequence[str] = ()) -> None:
        self.rules: tuple[_Rule, ...] = tuple(rules)
        self.problems: tuple[str, ...] = tuple(problems)
        self.tested = 0
        self._names = _Buckets()
        self._paths = _Buckets()
        for position, rule in enumerate(self.rules):
            rule.index = position
        # (basename?, automaton, finals for files, finals for directories, member -> index,
        # the highest index), the patterns that share one automaton.
        self._unions: list[tuple[bool, PatternSet, int, int, list[int], int]] = []
        shared: set[int] = set()
        for basename in (True, False):
            wild = [
                rule for rule in self.rules if rule.basename == basename and rule.pattern.needs_nfa
            ]
            if len(wild) <= UNION_MIN:
                continue
            union = PatternSet(rule.pattern for rule in wild)
            files = 0
            dirs = 0
            for member, rule in enumerate(wild):
                dirs |= union.final_bits[member]
                if not rule.dir_only:
                    files |= union.final_bits[member]
            indices = [rule.index for rule in wild]
            self._unions.append((basename, union, files, dirs, indices, indices[-1]))
            shared.update(indices)
        for rule in self.rules:
            if rule.index not in shared:
                (self._names if rule.basename else self._paths).add(rule)
        # Unbucketed patterns, the last first.
        self._others: tuple[int, ...] = tuple(
            sorted(self._names.others + self._paths.others, reverse=True)
        )
        self.light = (
            len(self._others) <= LIGHT_BUCKET
            and self._names.largest() <= LIGHT_BUCKET
            and self._paths.largest() <= LIGHT_BUCKET
            and all(union.bits <= LIGHT_UNION_BITS for _b, union, *_rest in self._unions)
        )

    @classmethod
    def from_lines(cls, lines: Iterable[str]) -> RuleSet:
        rules: list[_Rule] = []
        problems: list[str] = []
        total = 0
        too_long = 0
        wild = 0
        for number, line in enumerate(lines, 1):
            size = len(line.encode("utf-8", "surrogateescape")) + 1
            total += size
            if total > MAX_SOURCE_BYTES:
                problems.append(
                    f"more than {MAX_SOURCE_BYTES // 1024:,} KiB, lines "
                    f"{number:,} and after were skipped"
                )
                break
            if not line or line.startswith("#"):
                continue
            if size > MAX_PATTERN_BYTES + 1:
                too_long += 1
                if too_long == 1:
                    problems.append(
                        f"line {number:,} is longer than {MAX_PATTERN_BYTES:,} "
                        "bytes and was skipped"
                    )
                continue
            if len(rules) >= MAX_PATTERNS:
                problems.append(
                    f"more than {MAX_PATTERNS:,} patterns, lines {number:,} and after were skipped"
                )
                break
            rule = _parse(line, len(rules))
            if rule is None:
                continue
            if rule.pattern.needs_nfa:
                wild += 1
                if wild > MAX_WILD_PATTERNS:
                    if wild == MAX_WILD_PATTERNS + 1:
                        problems.append(
                            f"more than {MAX_WILD_PATTERNS:,} patterns with "
                            f"wildcards inside, those from line {number:,} on "
                            "were skipped"
                        )
                    continue
            rules.append(rule)
        if too_long > 1:
            problems.append(
                f"{too_long:,} lines longer than {MAX_PATTERN_BYTES:,} bytes were skipped in all"
            )
        return cls(rules, problems)

    def __bool__(self) -> bool:
        return bool(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def decide(self, path: str, is_dir: bool) -> bool | None:
        """True (ignored) / False (re-included) by the last pattern matching ``path`` itself
        (relative to the source's folder), or None if none matches."""
        if not self.rules:
            return None
        text = path.encode("utf-8", "surrogateescape")
        name = text[text.rfind(b"/") + 1 :]
        found: list[int] = []
        self._names.candidates(name, found)
        self._paths.candidates(text, found)
        rules = self.rules
        best = -1
        tested = 0
        if found:
            found.sort(reverse=True)
            for index in found:
                rule = rules[index]
                if rule.dir_only and not is_dir:
                    continue
                tested += 1
                if rule.pattern.match(name if rule.basename else text):
                    best = index
                    break
        for index in self._others:
            if index <= best:
                break
            rule = rules[index]
            if rule.dir_only and not is_dir:
                continue
            tested += 1
            if rule.pattern.match(name if rule.basename else text):
                best = index
                break
        for basename, union, files, dirs, indices, highest in self._unions:
            if highest <= best:
                continue
            tested += 1
            hits = union.run(name if basename else text, dirs if is_dir else files)
            if hits:
                best = max(best, indices[union.last(hits)])
        self.tested += tested
        return rules[best].ignore if best >= 0 else None


def read_lines(file: str) -> list[str]:
    """The lines of a gitignore-style file; none if it is missing, unreadable or not a regular
    file (git does not follow a symlinked ``.gitignore`` either). Lines end at ``\\n`` only
    (and lose one ``\\r`` before it), as git reads them. Reads at most a little more than
    ``MAX_SOURCE_BYTES``: ``RuleSet.from_lines`` reports a file that large."""
    try:
        if not stat.S_ISREG(os.lstat(file).st_mode):
            return []
        with open(file, "rb") as fh:
            data = fh.read(MAX_SOURCE_BYTES + MAX_PATTERN_BYTES + 2)
    except (OSError, ValueError):
        return []
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = data.decode("utf-8", "surrogateescape").split("\n")
    if lines and not lines[-1]:
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def git_dir(root: str) -> str | None:
    """The repository's common git directory (where ``info/exclude`` lives), following a
    ``.git`` file (``gitdir: ...``) as worktrees and submodules have."""
    dot_git = os.path.join(root, ".git")
    if os.path.isdir(dot_git):
        return dot_git
    try:
        with open(dot_git, encoding="utf-8", errors="surrogateescape") as fh:
            first = fh.readline().strip()
    except OSError:
        return None
    if not first.startswith("gitdir:"):
        return None
    found = os.path.join(root, first[len("gitdir:") :].strip())
    try:
        with open(os.path.join(found, "commondir"), encoding="utf-8") as fh:
            return os.path.normpath(os.path.join(found, fh.read().strip()))
    except OSError:
        return found


def normalize(rel_path: str) -> str:
    """A relative POSIX path without leading/trailing slashes or ``./`` ("" for the root)."""
    path = rel_path.strip("/")
    while path.startswith("./"):
        path = path[2:].lstrip("/")
    return "" if path == "." else path


class IgnoreRules:
    """Git-compatible ignore decisions for workspace-relative POSIX paths (``"src/a.py"``);
    see the module docstring. ``loader(rel_dir)`` gives the ignore-file lines of a folder
    ("" is the root), ``exclude`` the lines of ``.git/info/exclude`` (or a function giving
    them, called on first use and after a full ``invalidate``). A source beyond the limits is
    reported once through ``on_warning`` (called on whichever thread read it) and in
    ``warnings``; every report is also logged.

    Built from a folder on disk by ``for_folder`` (``root`` is then that folder) or from a map
    of files by ``for_files``; ``ignore_files`` says which files of a folder hold patterns.

    One instance may serve the UI thread and a scanning thread at once: cache fills are single
    dict stores, and ``invalidate`` builds new caches from snapshots and swaps them in (a
    decision computed while ``invalidate`` runs may still use the old rules).
    """

    def __init__(
        self,
        loader: Callable[[str], Sequence[str]],
        extra_patterns: Sequence[str] = (),
        exclude: Sequence[str] | Callable[[], Sequence[str]] = (),
        *,
        on_warning: Callable[[str], None] | None = None,
        root: str | None = None,
        ignore_files: Sequence[str] = GIT_IGNORE_FILES,
    ) -> None:
        self.root = root
        self.ignore_files: tuple[str, ...] = tuple(ignore_files)
        self._loader = loader
        if callable(exclude):
            self._exclude_source = exclude
        else:
            lines = tuple(exclude)
            self._exclude_source = lambda: lines
        self.on_warning = on_warning
        self.warnings: list[str] = []
        self._warned: set[str] = set()
        self._lock = threading.Lock()
        self._extra = self._compile("files.exclude", list(extra_patterns))
        # The exclude lines, read on first use (None until then).
        self._exclude: RuleSet | None = None
        # rel_dir -> rules of that folder's ignore files ("" is the root folder).
        self._folders: dict[str, RuleSet] = {}
        # rel_dir -> whether that directory itself is ignored (its ancestors not considered).
        self._dirs: dict[str, bool] = {}

    @classmethod
    def for_folder(
        cls,
        root: str | os.PathLike[str],
        extra_patterns: Sequence[str] = (),
        *,
        ignore_files: Sequence[str] = GIT_IGNORE_FILES,
        on_warning: Callable[[str], None] | None = None,
    ) -> IgnoreRules:
        """The rules of the folder ``root`` on disk: ``ignore_files`` in each folder (read in
        that order) and ``.git/info/exclude`` (following a ``.git`` file, as worktrees and
        submodules have)."""
        top = os.path.abspath(os.fspath(root))
        names = tuple(ignore_files)

        def load(rel_dir: str) -> list[str]:
            folder = os.path.join(top, rel_dir) if rel_dir else top
            lines: list[str] = []
            for name in names:
                lines.extend(read_lines(os.path.join(folder, name)))
            return lines

        def exclude() -> list[str]:
            found = git_dir(top)
            return read_lines(os.path.join(found, "info", "exclude")) if found else []

        return cls(
            load,
            extra_patterns,
            exclude,
            on_warning=on_warning,
            root=top,
            ignore_files=names,
        )

    @classmethod
    def for_files(
        cls,
        files: Mapping[str, bytes],
        extra_patterns: Sequence[str] = (),
        *,
        ignore_files: Sequence[str] = INDEX_IGNORE_FILES,
        on_warning: Callable[[str], None] | None = None,
    ) -> IgnoreRules:
        """The rules of the ignore files found in ``files`` (relative path -> bytes), and its
        ``.git/info/exclude`` if it holds one (the index's in-memory workspaces)."""
        names = tuple(ignore_files)

        def load(rel_dir: str) -> list[str]:
            prefix = rel_dir + "/" if rel_dir else ""
            lines: list[str] = []
            for name in names:
                data = files.get(prefix + name)
                if data is not None:
                    lines.extend(data.decode("utf-8", "surrogateescape").splitlines())
            return lines

        exclude = files.get(".git/info/exclude", b"").decode("utf-8", "surrogateescape")
        return cls(
            load, extra_patterns, exclude.splitlines(), on_warning=on_warning, ignore_files=names
        )

    def _compile(self, source: str, lines: Sequence[str]) -> RuleSet:
        rules = RuleSet.from_lines(lines)
        for problem in rules.problems:
            message = f"Ignore rules of {source}: {problem}; the other patterns still apply."
            with self._lock:
                if message in self._warned:
                    continue
                self._warned.add(message)
                self.warnings.append(message)
            log.warning("%s", message)
            if self.on_warning is not None:
                self.on_warning(message)
        return rules

    def invalidate(self, rel_dir: str | None = None) -> None:
        """Forget cached rules. ``None`` forgets everything (and reads the exclude lines
        again); ``rel_dir`` forgets that folder's ignore files and every decision below it.
        Pass the folder of an ignore file that was created, changed or deleted; a path inside
        ``.git`` reads the exclude lines again."""
        with self._lock:
            norm = normalize(rel_dir) if rel_dir is not None else None
            if norm is None or norm == ".git" or norm.startswith(".git/"):
                self._folders = {}
                self._dirs = {}
                self._exclude = None
                return
            prefix = norm + "/" if norm else ""
            # tuple(dict.items()) is one C call, safe against a concurrent store.
            self._folders = {
                d: r
                for d, r in tuple(self._folders.items())
                if d != norm and not d.startswith(prefix)
            }
            self._dirs = {
                d: r for d, r in tuple(self._dirs.items()) if d != norm and not d.startswith(prefix)
            }

    def _folder(self, rel_dir: str) -> RuleSet:
        rules = self._folders.get(rel_dir)
        if rules is None:
            rules = self._compile(f"the folder '{rel_dir or '.'}'", list(self._loader(rel_dir)))
            self._folders[rel_dir] = rules
        return rules

    def _exclude_rules(self) -> RuleSet:
        rules = self._exclude
        if rules is None:
            rules = self._compile(".git/info/exclude", list(self._exclude_source()))
            self._exclude = rules
        return rules

    def _matches(self, path: str, is_dir: bool, peek: bool = False) -> bool | None:
        """Whether ``path`` itself is ignored, assuming none of its ancestors is. With
        ``peek``, None instead of reading or compiling anything, or of using a rule set that
        is not ``light``."""
        if path == ".git" or path.endswith("/.git"):
            return True
        if self._extra:
            if peek and not self._extra.light:
                return None
            decision = self._extra.decide(path, is_dir)
            if decision is not None:
                return decision
        end = len(path)
        while True:
            slash = path.rfind("/", 0, end)
            folder = path[:slash] if slash > 0 else ""
            rules = self._folders.get(folder) if peek else self._folder(folder)
            if rules is None or (peek and not rules.light):
                return None
            if rules:
                decision = rules.decide(path[slash + 1 :], is_dir)
                if decision is not None:
                    return decision
            if slash < 0:
                break
            end = slash
        exclude = self._exclude if peek else self._exclude_rules()
        if exclude is None or (peek and not exclude.light):
            return None
        if exclude:
            decision = exclude.decide(path, is_dir)
            if decision is not None:
                return decision
        return False

    def peek(self, rel_path: str, is_dir: bool = False) -> bool | None:
        """``is_ignored`` when the answer is cheap: every rule set it needs has been read
        already and is ``light``. None otherwise; nothing is read or compiled here, so the UI
        thread may call it and hand the None cases to a worker."""
        path = normalize(rel_path)
        if not path:
            return False
        slash = path.find("/")
        while True:
            last = slash < 0
            current = path if last else path[:slash]
            if last and not is_dir:
                return self._matches(path, False, peek=True)
            ignored = self._dirs.get(current)
            if ignored is None:
                ignored = self._matches(current, True, peek=True)
                if ignored is None:
                    return None
                self._dirs[current] = ignored
            if ignored or last:
                return ignored
            slash = path.find("/", slash + 1)

    def is_dir_ignored(self, rel_dir: str) -> bool:
        """Whether a folder is ignored, assuming its ancestors are not (for a walk that does
        not enter ignored folders)."""
        ignored = self._dirs.get(rel_dir)
        if ignored is None:
            ignored = self._matches(rel_dir, True) is True
            self._dirs[rel_dir] = ignored
        return ignored

    def is_file_ignored(self, rel_path: str) -> bool:
        """Whether a file is ignored, assuming its ancestors are not (for a walk)."""
        return self._matches(rel_path, False) is True

    def is_ignored(self, rel_path: str, is_dir: bool = False) -> bool:
        """Whether ``rel_path`` is ignored, itself or because a parent directory is."""
        path = normalize(rel_path)
        if not path:
            return False
        slash = path.find("/")
        while slash >= 0:
            if self.is_dir_ignored(path[:slash]):
                return True
            slash = path.find("/", slash + 1)
        return self.is_dir_ignored(path) if is_dir else self._matches(path, False) is True
