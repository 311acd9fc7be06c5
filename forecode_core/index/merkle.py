"""The Merkle tree of a workspace, in the form the index syncs: obfuscated names, keyed leaves.

Hashes (all ``HASH_BYTES`` = 32 bytes)
--------------------------------------
* a **file** (leaf): ``WorkspaceKeys.file_hash(sha256(file bytes))``, an HMAC with the
  workspace key, so the service cannot confirm a guess of a file's content. Its bytes, not its
  chunks: any byte change (even a blank line, which moves the chunks' line ranges) must sync.
* a **folder**: ``folder_hash(entries)`` = sha256 over its children sorted by obfuscated name,
  each as (u16 length, obfuscated name, 1 byte is-folder, child hash). Not keyed (its inputs
  already are), so the service can recompute every folder hash from the entries it holds and
  refuse a tree that does not add up.

Names on the wire are ``WorkspaceKeys.obfuscate_segment(name, parent)`` (see crypto.py); the
tree keeps the plaintext names locally and maps back with ``resolve``. Folders without files
are not in the tree (as in git); the root always is.

What enters the tree
--------------------
Secrets never do (``denylist.secret_reason`` on the path, then the bytes, before anything is
hashed). ``scan_folder`` walks with the workspace's one walker (``workspace.walk``), honours
``.gitignore`` / ``.forecodeignore`` (``IgnoreRules.for_folder(..., INDEX_IGNORE_FILES)``),
skips symlinks (they could point out of the workspace), unreadable files and files over
``max_file_bytes``, and reuses the digest of a file whose size, mtime and inode are unchanged
since a previous scan.

Updates and reconciliation
--------------------------
``set_file`` / ``set_digest`` / ``remove`` / ``rename`` (= remove + add) change one path and
mark the folders on its way to the root stale; the next ``root_hash`` recomputes exactly those
(``hash_computations`` counts them): O(depth x fan-out), nothing else. ``wire_node`` is a folder
as the wire carries it; ``diff_children`` compares a local folder's children with the remote's;
``reconcile`` runs the whole descend-only-on-mismatch protocol against a ``RemoteTree`` (the
service's view; ``Snapshot`` is an in-memory one) and counts round trips and bytes.
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from forecode_core.index.crypto import HASH_BYTES, WorkspaceKeys, split_path
from forecode_core.index.denylist import looks_like_private_key, secret_reason
from forecode_core.workspace.gitignore import INDEX_IGNORE_FILES, IgnoreRules
from forecode_core.workspace.walk import walk_files

__all__ = [
    "DEFAULT_MAX_FILE_BYTES",
    "ChildDiff",
    "MerkleTree",
    "ReconcileResult",
    "RemoteTree",
    "ScanResult",
    "Snapshot",
    "WireEntry",
    "WireNode",
    "diff_children",
    "folder_hash",
    "full_list_bytes",
    "reconcile",
    "refresh_path",
    "scan_folder",
    "wire_entry_bytes",
]

DEFAULT_MAX_FILE_BYTES = 1 << 20  # bigger files are left out of the index (and not chunked)

_DOMAIN = b"forecode.tree.v1\0dir\0"


@dataclass(frozen=True)
class WireEntry:
    """One child of a folder as the wire carries it."""

    name: str  # obfuscated segment (base64url)
    hash: bytes
    is_dir: bool


@dataclass(frozen=True)
class WireNode:
    """A folder as the wire carries it: its obfuscated path (``""`` = root), its hash, and its
    children sorted by name."""

    path: str
    hash: bytes
    children: tuple[WireEntry, ...]


def folder_hash(entries: Iterable[WireEntry]) -> bytes:
    """The hash of a folder with these children (any order; sorted here). The service can call
    this to check a folder it was sent."""
    h = hashlib.sha256(_DOMAIN)
    for entry in sorted(entries, key=lambda e: e.name):
        if len(entry.hash) != HASH_BYTES:
            raise ValueError(f"a node hash is {HASH_BYTES} bytes")
        name = entry.name.encode("ascii")
        h.update(struct.pack(">H", len(name)) + name + (b"\1" if entry.is_dir else b"\0"))
        h.update(entry.hash)
    return h.digest()


def wire_entry_bytes(entry: WireEntry) -> int:
    """The payload size of one entry on the wire (name, hash, flag; framing not counted)."""
    return len(entry.name) + len(entry.hash) + 1


def _join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


class _File:
    __slots__ = ("digest", "hash", "obf", "sig")

    def __init__(
        self, obf: str, digest: bytes, hash_: bytes, sig: tuple[int, int, int] | None
    ) -> None:
        self.obf = obf  # obfuscated segment
        self.digest = digest  # sha256 of the bytes
        self.hash = hash_  # keyed leaf hash
        self.sig = sig  # (size, mtime_ns, inode) when read from disk


class _Dir:
    __slots__ = ("by_obf", "children", "hash", "obf", "obf_path")

    def __init__(self, obf: str, obf_path: str) -> None:
        self.obf = obf
        self.obf_path = obf_path
        self.children: dict[str, _File | _Dir] = {}
        self.by_obf: dict[str, str] = {}
        self.hash: bytes | None = None


class MerkleTree:
    """A workspace's files as a Merkle tree (see the module docstring). Paths are relative
    POSIX paths (``src/app.py``); invalid ones (absolute, ``..``, empty segments) raise
    ``ValueError``. Not thread-safe: one owner (the index's background worker)."""

    def __init__(self, keys: WorkspaceKeys) -> None:
        self.keys = keys
        self._root = _Dir("", "")
        self._count = 0
        self.hash_computations = 0  # folder hashes computed so far (for tests and the benchmark)

    # -- building -------------------------------------------------------------------------------

    @classmethod
    def from_files(
        cls,
        keys: WorkspaceKeys,
        files: Iterable[tuple[str, bytes]],
        *,
        rules: IgnoreRules | None = None,
    ) -> tuple[MerkleTree, dict[str, str]]:
        """A tree from (relative path, bytes) pairs, and the paths left out with the reason
        (``"ignored"``, ``"secret path"``, ``"secret content"``)."""
        tree = cls(keys)
        skipped: dict[str, str] = {}
        for path, data in files:
            if rules is not None and rules.is_ignored(path):
                skipped[path] = "ignored"
                continue
            reason = tree.set_file(path, data)
            if reason is not None:
                skipped[path] = reason
        return tree, skipped

    def set_file(self, path: str, data: bytes) -> str | None:
        """Add or change a file from its bytes. A secret (``denylist``) is refused, and removed
        if the tree held it: the reason is returned, else None."""
        segments = split_path(path)
        reason = secret_reason(path, data)
        if reason is not None:
            self.remove(path)
            return reason
        self._set(segments, hashlib.sha256(data).digest(), None)
        return None

    def set_digest(
        self, path: str, digest: bytes, *, sig: tuple[int, int, int] | None = None
    ) -> None:
        """Add or change a file from the sha256 of its bytes. The caller has checked the bytes
        with ``denylist.secret_reason``; the path is checked here (``ValueError``)."""
        segments = split_path(path)
        if secret_reason(path) is not None:
            raise ValueError("a secret path cannot enter the index")
        self._set(segments, digest, sig)

    def _set(self, segments: list[str], digest: bytes, sig: tuple[int, int, int] | None) -> None:
        existing = self._find_segments(segments)
        if isinstance(existing, _File) and existing.digest == digest:
            existing.sig = sig  # same bytes: no hash changes
            return
        leaf_hash = self.keys.file_hash(digest)
        node = self._root
        node.hash = None
        for segment in segments[:-1]:
            child = node.children.get(segment)
            if not isinstance(child, _Dir):
                if child is not None:  # a file becomes a folder
                    self._detach(node, segment)
                obf = self.keys.obfuscate_segment(segment, node.obf_path)
                child = _Dir(obf, _join(node.obf_path, obf))
                node.children[segment] = child
                node.by_obf[obf] = segment
            node = child
            node.hash = None
        name = segments[-1]
        old = node.children.get(name)
        if isinstance(old, _File):
            old.digest, old.hash, old.sig = digest, leaf_hash, sig
            return
        if old is not None:  # a folder becomes a file
            self._detach(node, name)
        obf = self.keys.obfuscate_segment(name, node.obf_path)
        node.children[name] = _File(obf, digest, leaf_hash, sig)
        node.by_obf[obf] = name
        self._count += 1

    def _detach(self, parent: _Dir, name: str) -> None:
        child = parent.children.pop(name)
        del parent.by_obf[child.obf]
        if isinstance(child, _File):
            self._count -= 1
        else:
            self._count -= sum(1 for _ in _walk_files(child, ""))

    def remove(self, path: str) -> bool:
        """Remove a file or a whole folder; folders left empty go too. False if absent."""
        segments = split_path(path)
        chain = [self._root]
        for segment in segments[:-1]:
            child = chain[-1].children.get(segment)
            if not isinstance(child, _Dir):
                return False
            chain.append(child)
        if segments[-1] not in chain[-1].children:
            return False
        self._detach(chain[-1], segments[-1])
        for depth in range(len(chain) - 1, 0, -1):
            if chain[depth].children:
                break
            self._detach(chain[depth - 1], segments[depth - 1])
        for node in chain:
            node.hash = None
        return True

    def rename(self, old: str, new: str) -> bool:
        """Move a file or folder (remove + add: obfuscated names below a renamed folder change
        with it). False if ``old`` is absent."""
        moved = [
            (new + rel[len(old) :], digest, sig) for rel, digest, sig in self._files_under(old)
        ]
        if not moved:
            return False
        split_path(new)
        self.remove(old)
        for path, digest, sig in moved:
            if secret_reason(path) is None:  # renamed to a secret's name: it leaves the index
                self.set_digest(path, digest, sig=sig)
        return True

    # -- reading --------------------------------------------------------------------------------

    @property
    def file_count(self) -> int:
        return self._count

    @property
    def root_hash(self) -> bytes:
        return self._hash_of(self._root)

    @property
    def depth(self) -> int:
        """The most segments in a file's path (a file at the root has depth 1)."""
        best = 0
        stack: list[tuple[_Dir, int]] = [(self._root, 0)]
        while stack:
            node, level = stack.pop()
            for child in node.children.values():
                if isinstance(child, _Dir):
                    stack.append((child, level + 1))
                else:
                    best = max(best, level + 1)
        return best

    def _hash_of(self, top: _Dir) -> bytes:
        """Recompute the stale folders under ``top`` (post-order, no recursion)."""
        if top.hash is not None:
            return top.hash
        stack: list[tuple[_Dir, bool]] = [(top, False)]
        while stack:
            node, ready = stack.pop()
            if ready:
                node.hash = folder_hash(self._entries(node))
                self.hash_computations += 1
                continue
            stack.append((node, True))
            stack.extend(
                (c, False) for c in node.children.values() if isinstance(c, _Dir) and c.hash is None
            )
        assert top.hash is not None
        return top.hash

    def _entries(self, node: _Dir) -> list[WireEntry]:
        out = []
        for child in node.children.values():
            h = child.hash
            assert h is not None
            out.append(WireEntry(child.obf, h, isinstance(child, _Dir)))
        out.sort(key=lambda e: e.name)
        return out

    def _find(self, path: str) -> _File | _Dir | None:
        if path in ("", "."):
            return self._root
        return self._find_segments(split_path(path))

    def _find_segments(self, segments: list[str]) -> _File | _Dir | None:
        node: _File | _Dir = self._root
        for segment in segments:
            if not isinstance(node, _Dir):
                return None
            found = node.children.get(segment)
            if found is None:
                return None
            node = found
        return node

    def node_hash(self, path: str) -> bytes | None:
        """The hash of a file or folder (``""`` = root), or None if absent."""
        node = self._find(path)
        if node is None:
            return None
        return self._hash_of(node) if isinstance(node, _Dir) else node.hash

    def digest(self, path: str) -> bytes | None:
        """The sha256 of a file's bytes as the tree holds it, or None."""
        node = self._find(path)
        return node.digest if isinstance(node, _File) else None

    def obfuscated(self, path: str) -> str:
        """A path's obfuscated form (the same as ``keys.obfuscate_path``; from the tree's own
        names when it holds the path)."""
        segments = split_path(path)
        parent = self._find_segments(segments[:-1])
        if isinstance(parent, _Dir):
            child = parent.children.get(segments[-1])
            if child is not None:
                return _join(parent.obf_path, child.obf)
        return self.keys.obfuscate_path(path)

    def resolve(self, obf_path: str) -> str | None:
        """The local path of an obfuscated one this tree holds, or None: how search results
        are mapped back to files."""
        if obf_path == "":
            return ""
        node: _File | _Dir = self._root
        names: list[str] = []
        for obf in obf_path.split("/"):
            if not isinstance(node, _Dir):
                return None
            name = node.by_obf.get(obf)
            if name is None:
                return None
            names.append(name)
            node = node.children[name]
        return "/".join(names)

    def wire_node(self, path: str = "") -> WireNode:
        """A folder as the wire carries it; ``KeyError`` if it is not a folder of the tree."""
        node = self._find(path)
        if not isinstance(node, _Dir):
            raise KeyError(path)
        self._hash_of(node)
        assert node.hash is not None
        return WireNode(node.obf_path, node.hash, tuple(self._entries(node)))

    def wire_node_obfuscated(self, obf_path: str) -> WireNode | None:
        """``wire_node`` by obfuscated path, or None if no such folder."""
        path = self.resolve(obf_path)
        if path is None or not isinstance(self._find(path), _Dir):
            return None
        return self.wire_node(path)

    def wire_files(self) -> Iterator[tuple[str, str, bytes]]:
        """(local path, obfuscated path, leaf hash) of every file: what a full upload sends."""
        stack: list[tuple[str, _Dir]] = [("", self._root)]
        while stack:
            path, node = stack.pop()
            for name in sorted(node.children):
                child = node.children[name]
                if isinstance(child, _Dir):
                    stack.append((_join(path, name), child))
                else:
                    yield _join(path, name), _join(node.obf_path, child.obf), child.hash

    def files(self) -> Iterator[tuple[str, bytes]]:
        """(path, sha256 of the bytes) of every file, folders' children in name order."""
        for path, digest, _sig in _walk_files(self._root, ""):
            yield path, digest

    def _files_under(self, path: str) -> list[tuple[str, bytes, tuple[int, int, int] | None]]:
        node = self._find(path)
        if isinstance(node, _File):
            return [(path, node.digest, node.sig)]
        if isinstance(node, _Dir):
            return list(_walk_files(node, path))
        return []

    def files_under(self, path: str) -> list[str]:
        """The files at or below a path (a file gives itself)."""
        return [p for p, _d, _s in self._files_under(path)]

    def node_hashes(self) -> dict[str, bytes]:
        """Every node's hash by path (``""`` = root): for tests and diagnostics."""
        self._hash_of(self._root)
        out: dict[str, bytes] = {}
        stack: list[tuple[str, _Dir]] = [("", self._root)]
        while stack:
            path, node = stack.pop()
            assert node.hash is not None
            out[path] = node.hash
            for name, child in node.children.items():
                child_path = _join(path, name)
                if isinstance(child, _Dir):
                    stack.append((child_path, child))
                else:
                    out[child_path] = child.hash
        return out

    def _subfolders(self, path: str) -> list[str]:
        node = self._find(path)
        if not isinstance(node, _Dir):
            return []
        return [name for name, child in node.children.items() if isinstance(child, _Dir)]


def _walk_files(top: _Dir, prefix: str) -> Iterator[tuple[str, bytes, tuple[int, int, int] | None]]:
    stack: list[tuple[str, _Dir]] = [(prefix, top)]
    while stack:
        path, node = stack.pop()
        subdirs = []
        for name in sorted(node.children):
            child = node.children[name]
            child_path = _join(path, name)
            if isinstance(child, _Dir):
                subdirs.append((child_path, child))
            else:
                yield child_path, child.digest, child.sig
        stack.extend(reversed(subdirs))


# -- reconciliation -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChildDiff:
    """What to do about one folder after comparing its children with the remote's.

    ``descend``: folders on both sides whose hashes differ (ask for their children next round);
    ``upload``: local entries the remote lacks or holds with another hash or kind (a folder
    there means its whole subtree); ``delete``: remote entries with no local counterpart of
    the same kind."""

    descend: tuple[WireEntry, ...] = ()
    upload: tuple[WireEntry, ...] = ()
    delete: tuple[WireEntry, ...] = ()


def diff_children(local: Sequence[WireEntry], remote: Sequence[WireEntry]) -> ChildDiff:
    """Compare a folder's children here and on the remote (``WireNode.children``)."""
    theirs = {e.name: e for e in remote}
    descend: list[WireEntry] = []
    upload: list[WireEntry] = []
    delete: list[WireEntry] = []
    mine = set()
    for entry in local:
        mine.add(entry.name)
        other = theirs.get(entry.name)
        if other is None:
            upload.append(entry)
        elif other.is_dir != entry.is_dir:
            delete.append(other)
            upload.append(entry)
        elif other.hash != entry.hash:
            (descend if entry.is_dir else upload).append(entry)
    delete.extend(e for e in remote if e.name not in mine)
    return ChildDiff(tuple(descend), tuple(upload), tuple(delete))


class RemoteTree(Protocol):
    """The service's side of a reconciliation: its root hash, and a folder's children."""

    def root_hash(self) -> bytes | None: ...

    def children(self, obf_path: str) -> Sequence[WireEntry] | None: ...


@dataclass
class Snapshot:
    """An in-memory ``RemoteTree``: what a service holding ``tree`` at some moment knows
    (obfuscated folder paths -> children). For tests, the benchmark, and as the reference
    for the real store."""

    root: bytes | None
    folders: dict[str, tuple[WireEntry, ...]] = field(default_factory=dict)

    @classmethod
    def from_tree(cls, tree: MerkleTree) -> Snapshot:
        snap = cls(tree.root_hash)
        stack = [""]
        while stack:
            path = stack.pop()
            node = tree.wire_node(path)
            snap.folders[node.path] = node.children
            stack.extend(_join(path, name) for name in tree._subfolders(path))
        return snap

    def root_hash(self) -> bytes | None:
        return self.root

    def children(self, obf_path: str) -> Sequence[WireEntry] | None:
        return self.folders.get(obf_path)


@dataclass(frozen=True)
class ReconcileResult:
    """The outcome and cost of one reconciliation.

    ``round_trips`` counts the root-hash exchange (answered with the root's children on a
    mismatch), one per further level of mismatched folders (all of a level in one message),
    and one to send the changes, if any. Bytes are payload bytes (names, hashes, flags, paths),
    without framing, and without the chunks of uploaded files."""

    round_trips: int
    nodes_visited: int  # folders whose children were compared
    entries_compared: int
    bytes_sent: int
    bytes_received: int
    upload: tuple[str, ...]  # local paths of files to (re)send
    delete: tuple[str, ...]  # obfuscated paths the remote should drop

    @property
    def bytes_total(self) -> int:
        return self.bytes_sent + self.bytes_received


def reconcile(local: MerkleTree, remote: RemoteTree) -> ReconcileResult:
    """Bring ``remote`` in line with ``local`` by descending only where hashes differ: what the
    sync client does, with the cost measured."""
    sent = HASH_BYTES
    received = 1  # "equal" / "differs" answer
    round_trips = 1
    if remote.root_hash() == local.root_hash:
        return ReconcileResult(1, 0, 0, sent, received, (), ())
    visited = compared = 0
    upload: list[str] = []
    delete: list[str] = []
    level = [""]
    while level:
        if round_trips > 1:
            sent += sum(len(p) + 1 for p in level)
        next_level: list[str] = []
        for obf_path in level:
            theirs = remote.children(obf_path) or ()
            received += sum(wire_entry_bytes(e) for e in theirs)
            mine = local.wire_node_obfuscated(obf_path)
            ours = mine.children if mine is not None else ()
            visited += 1
            compared += len(ours) + len(theirs)
            diff = diff_children(ours, theirs)
            next_level.extend(_join(obf_path, e.name) for e in diff.descend)
            for entry in diff.upload:
                path = local.resolve(_join(obf_path, entry.name))
                assert path is not None
                upload.extend(local.files_under(path))
            delete.extend(_join(obf_path, e.name) for e in diff.delete)
        level = next_level
        if level:
            round_trips += 1
    if upload or delete:
        round_trips += 1
        sent += sum(len(local.obfuscated(p)) + HASH_BYTES for p in upload)
        sent += sum(len(p) + 1 for p in delete)
    return ReconcileResult(
        round_trips, visited, compared, sent, received, tuple(upload), tuple(delete)
    )


def full_list_bytes(tree: MerkleTree) -> int:
    """What sending every file's obfuscated path and hash would cost (the naive sync)."""
    return sum(len(obf) + len(leaf) for _p, obf, leaf in tree.wire_files())


# -- scanning a folder ----------------------------------------------------------------------------


@dataclass
class ScanResult:
    tree: MerkleTree
    skipped: dict[str, str]  # path -> reason it was left out (ignored paths are not listed)
    read: int = 0  # files whose bytes were read (the others reused a previous digest)


def _read_file(
    root: str, rel: str, st: os.stat_result, max_file_bytes: int
) -> tuple[bytes | None, str | None]:
    if st.st_size > max_file_bytes:
        return None, "too large"
    try:
        fd = os.open(os.path.join(root, rel), os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None, "unreadable"
    try:
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(max_file_bytes + 1)
    except OSError:
        return None, "unreadable"
    if len(data) > max_file_bytes:
        return None, "too large"
    return data, None


def _add_from_disk(
    tree: MerkleTree,
    root: str,
    rel: str,
    st: os.stat_result,
    previous: MerkleTree | None,
    max_file_bytes: int,
) -> tuple[str | None, bool]:
    """Put one regular file in the tree; (reason it was left out, whether it was read)."""
    reason = secret_reason(rel)
    if reason is not None:
        return reason, False
    try:
        segments = split_path(rel)
    except ValueError:  # a name the wire cannot carry (a backslash in it, say)
        return "invalid name", False
    sig = (st.st_size, st.st_mtime_ns, st.st_ino)
    if previous is not None:
        old = previous._find_segments(segments)
        if isinstance(old, _File) and old.sig == sig:
            tree._set(segments, old.digest, sig)
            return None, False
    data, reason = _read_file(root, rel, st, max_file_bytes)
    if data is None:
        return reason, True
    if looks_like_private_key(data):
        return "secret content", True
    tree._set(segments, hashlib.sha256(data).digest(), sig)
    return None, True


def _walk(
    root: str, start: str, rules: IgnoreRules, should_stop: Callable[[], bool] | None
) -> Iterator[tuple[str, os.stat_result | str]]:
    """(relative path, stat) of the files under ``start`` that ``rules`` keeps, or
    (path, reason) for a left-out one (a symlink); ignored folders are not entered."""
    for rel, entry in walk_files(root, rules, start=start, links="report", should_stop=should_stop):
        if entry.is_symlink():
            yield rel, "symlink"
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            yield rel, st


def scan_folder(
    root: str | os.PathLike[str],
    keys: WorkspaceKeys,
    *,
    rules: IgnoreRules | None = None,
    previous: MerkleTree | None = None,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    should_stop: Callable[[], bool] | None = None,
) -> ScanResult:
    """The tree of a folder on disk (see the module docstring). ``previous`` (a tree of the same
    folder with the same keys) lets unchanged files skip reading. ``should_stop`` is polled
    per folder; a stopped scan returns the partial tree."""
    top = os.path.abspath(os.fspath(root))
    if rules is None:
        rules = IgnoreRules.for_folder(top, ignore_files=INDEX_IGNORE_FILES)
    result = ScanResult(MerkleTree(keys), {})
    for rel, st in _walk(top, "", rules, should_stop):
        if isinstance(st, str):
            result.skipped[rel] = st
            continue
        reason, was_read = _add_from_disk(result.tree, top, rel, st, previous, max_file_bytes)
        result.read += was_read
        if reason is not None:
            result.skipped[rel] = reason
    return result


def refresh_path(
    tree: MerkleTree,
    root: str | os.PathLike[str],
    rel_path: str,
    rules: IgnoreRules,
    *,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> dict[str, str]:
    """Bring one path of the tree in line with the disk after a file-watcher event (created,
    changed, deleted; a rename is two events). A folder is rescanned whole (unchanged files by
    their stat only); a changed ignore file rescans its folder. Returns the paths left out, with
    reasons."""
    top = os.path.abspath(os.fspath(root))
    split_path(rel_path)
    parent, _slash, name = rel_path.rpartition("/")
    if name in rules.ignore_files:
        rules.invalidate(parent)
        return _rescan(tree, top, parent, rules, max_file_bytes)
    try:
        st = os.lstat(os.path.join(top, rel_path))
    except OSError:
        tree.remove(rel_path)
        return {}
    if stat.S_ISDIR(st.st_mode):
        return _rescan(tree, top, rel_path, rules, max_file_bytes)
    if rules.is_ignored(rel_path):
        tree.remove(rel_path)
        return {rel_path: "ignored"}
    if not stat.S_ISREG(st.st_mode):
        tree.remove(rel_path)
        return {rel_path: "symlink"} if stat.S_ISLNK(st.st_mode) else {}
    if isinstance(tree._find(rel_path), _Dir):  # a folder became a file
        tree.remove(rel_path)
    reason, _read = _add_from_disk(tree, top, rel_path, st, None, max_file_bytes)
    if reason is not None:
        tree.remove(rel_path)
        return {rel_path: reason}
    return {}


def _rescan(
    tree: MerkleTree, top: str, folder: str, rules: IgnoreRules, max_file_bytes: int
) -> dict[str, str]:
    """Make the subtree at ``folder`` (``""`` = everything) what is on disk; only files whose
    digest changed touch the tree's hashes."""
    fresh = MerkleTree(tree.keys)
    skipped: dict[str, str] = {}
    if folder and rules.is_ignored(folder, True):
        skipped[folder] = "ignored"
    else:
        for rel, found in _walk(top, folder, rules, None):
            if isinstance(found, str):
                skipped[rel] = found
                continue
            reason, _read = _add_from_disk(fresh, top, rel, found, tree, max_file_bytes)
            if reason is not None:
                skipped[rel] = reason
    new = {p: (d, sig) for p, d, sig in fresh._files_under(folder)}
    for path, _digest, _sig in tree._files_under(folder):
        if path not in new:
            tree.remove(path)
    for path, (digest, sig) in new.items():
        tree._set(path.split("/"), digest, sig)
    return skipped
