"""``git log -z --name-status`` parsed into commits as plain data (pure: no process).

``app.services.related_history`` runs git, bounded, with ``LOG_FORMAT`` and hands the bytes
here. With ``-z`` every path ends in NUL and is never quoted, so names holding newlines, tabs,
quotes or bytes that are not UTF-8 come through as they are (not UTF-8: decoded with
``surrogateescape``, so ``os.fsencode`` gives the name back byte for byte). The stream is a
run of NUL-separated tokens:

* a header: ``\\x01<hash> <committer unix time>`` (``LOG_FORMAT``);
* then per changed file a status (``M``, ``A``, ``D``, ``T``, ``R100``, ``C075``, ...; git
  puts a newline before the first one) and one path, or two for a rename or copy (old, new).

Paths are consumed by count, so a file *named* like a header or a status is read as a path.
A token that is neither where a status belongs (a git that prints something unexpected, a
stream cut at the output cap) ends that commit; ``ParsedLog.malformed`` counts them. A
commit cut off at the end of a truncated stream is dropped (``complete=False`` from the
caller), never counted with half its files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from forecode_core.next_edit.related import Commit

__all__ = ["LOG_FORMAT", "ParsedLog", "parse_log"]

# %x01 starts a header: no status token starts with it and paths are consumed by count.
LOG_FORMAT = "%x01%H %ct"

_STATUS = re.compile(rb"[ACDMRTUXB][0-9]{0,3}")
_HEADER = re.compile(rb"\x01([0-9a-f]{4,64}) (-?[0-9]+)")


@dataclass(frozen=True)
class ParsedLog:
    commits: tuple[Commit, ...]  # oldest first (git log prints newest first)
    malformed: int = 0  # tokens that were neither a header nor a status where one belonged


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def parse_log(data: bytes, *, complete: bool = True) -> ParsedLog:
    """Commits from ``git log -z --name-status --format=LOG_FORMAT`` output, oldest first;
    ``index`` numbers them 0.. in that order. ``complete=False`` (output cut at a deadline or
    a byte cap) drops the last commit read, which may have lost files."""
    tokens = data.split(b"\0")
    found: list[tuple[str, int, list[str], list[tuple[str, str]], list[str]]] = []
    malformed = 0
    current: tuple[str, int, list[str], list[tuple[str, str]], list[str]] | None = None
    i = 0
    n = len(tokens)
    while i < n:
        token = tokens[i].lstrip(b"\n")
        i += 1
        if not token:
            continue
        header = _HEADER.fullmatch(token)
        if header is not None:
            current = (header.group(1).decode("ascii"), int(header.group(2)), [], [], [])
            found.append(current)
            continue
        if current is None or _STATUS.fullmatch(token) is None:
            malformed += 1
            current = None  # skip to the next header
            continue
        letter = token[:1]
        paths_needed = 2 if letter in (b"R", b"C") else 1
        if i + paths_needed > n or any(not tokens[i + j] for j in range(paths_needed)):
            malformed += 1
            current = None
            i += paths_needed
            continue
        names = [_decode(tokens[i + j]) for j in range(paths_needed)]
        i += paths_needed
        _, _, paths, renames, deleted = current
        if letter == b"R":
            renames.append((names[0], names[1]))
            paths.append(names[1])
        elif letter == b"C":
            paths.append(names[1])  # a copy adds the new file; the old one did not change
        else:
            paths.append(names[0])
            if letter == b"D":
                deleted.append(names[0])
    if not complete and found:
        found.pop()  # git log prints newest first: the cut commit is the oldest read
    commits = tuple(
        Commit(
            index=index,
            paths=tuple(dict.fromkeys(paths)),
            renames=tuple(renames),
            deleted=tuple(deleted),
            time=time,
            sha=sha,
        )
        for index, (sha, time, paths, renames, deleted) in enumerate(reversed(found))
    )
    return ParsedLog(commits, malformed)
