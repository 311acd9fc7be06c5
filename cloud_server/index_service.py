"""The ``forecode.v1.IndexSync`` servicer: validates every request, then calls the ``IndexStore``.

Nothing the client sends is trusted: ids, paths, hashes, embeddings and counts are checked
before the store is touched, and a request that breaks a rule gets INVALID_ARGUMENT with a
sentence that says which field and why (never echoing the value: it is the client's own, and
a buggy client might have put plaintext there). Paths must look obfuscated: base64url segments
of at least 32 characters (what ``WorkspaceKeys.obfuscate_segment`` makes), so a path with
``..``, ``.``, an absolute path, an empty segment, or a plaintext name like ``main.py`` is
refused. Messages over the transport's size limit never reach here (RESOURCE_EXHAUSTED, as for
every service); within it, counts are bounded (``LIMITS``).

Holdings proof (Search). The service answers only from files whose keyed hashes the caller has
shown it holds. The caller shows it with the **root hash** of the tree it searches: the root is
a hash over every file's keyed hash (HMAC with the workspace key over the file's bytes) and
obfuscated path, so producing it takes every one of those hashes, i.e. the key and the files'
contents. Results come only from that tree's files, and only while the root presented is the
tree's current one (a tree the caller reconciled to and committed). Alternatives weighed:
sending the keyed hashes of candidate files (a second round trip per query and a hash per file
on the wire), or a per-file challenge (more of the same); the root is 32 bytes, is already
known to the client after every sync, and binds the answer to exactly the files the caller
holds. A teammate with the same key but another working copy searches its own tree: a file
only the other copy has is not in it, so nothing of it is returned, even though the two share
the chunk cache. The tree id (16 random bytes, kept by the client) only names the tree; knowing
it without the root gets FAILED_PRECONDITION.

Logging: method, counts, sizes and timings; never a path, a hash, an embedding or a term.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from enum import StrEnum
from typing import Any, NoReturn

import grpc
import numpy as np

from cloud_server.config import (
    DEFAULT_MAX_UPLOAD_PENDING_BYTES,
    DEFAULT_MAX_UPLOAD_PENDING_BYTES_PER_TOKEN,
)
from cloud_server.guard import MalformedRequest
from cloud_server.index_store import (
    ChunkRecord,
    ChunkRef,
    CommitRejected,
    FileRecord,
    IndexStore,
    StaleBase,
    StoreDamaged,
    StoreFull,
    WrongRoot,
)
from cloud_server.upload_budget import OverBudget, UploadBudget
from forecode_core.index.search import SearchMode
from proto.forecode.v1 import forecode_pb2 as pb
from proto.forecode.v1 import forecode_pb2_grpc as rpc

__all__ = ["LIMITS", "IndexSyncServicer", "trim_heap", "validate_obfuscated_path"]

log = logging.getLogger("forecode.cloud")

HASH_BYTES = 32
TREE_ID_BYTES = 16
TERM_BYTES = 8
MIN_SEGMENT_CHARS = 32  # AES-SIV tag (16 bytes) + one pad block (8 bytes), base64url
MAX_SEGMENT_CHARS = 400  # a 255-byte name: 256 padded + 16 = 272 bytes -> 363 characters

LIMITS: dict[str, int] = {
    "folders_per_call": 20_000,
    "hashes_per_call": 50_000,
    "chunks_per_message": 4_096,
    "files_per_commit": 1_000_000,
    "deleted_per_commit": 1_000_000,
    "terms_per_chunk": 16_384,
    "chunks_per_file": 100_000,
    "query_terms": 1_024,
    "top_k": 100,
    "path_chars": 16_384,
    "line": 10_000_000,
}

_KEY_ID = re.compile(r"[0-9a-f]{32}")
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
_MODES = {
    pb.SEARCH_MODE_UNSPECIFIED: SearchMode.COMBINED,
    pb.SEARCH_MODE_COMBINED: SearchMode.COMBINED,
    pb.SEARCH_MODE_VECTOR: SearchMode.VECTOR,
    pb.SEARCH_MODE_LEXICAL: SearchMode.LEXICAL,
}
DEFAULT_TOP_K = 10


class _Outcome(StrEnum):
    """A call's outcome in its log line (besides "refused (...)" and "failed (...)")."""

    OK = "ok"
    INVALID = "invalid"
    MALFORMED = "malformed"  # guard.parsing_handler writes that call's one line
    STALE_BASE = "stale base"
    REJECTED = "rejected"
    DISK_FULL = "disk full"
    STORE_DAMAGED = "store damaged"


TRIM_AFTER_BYTES = 1 << 20  # an upload that held this much hands its freed memory back


def trim_heap() -> None:
    """Hand freed heap memory back to the system (glibc's ``malloc_trim``; elsewhere
    nothing): after a big upload ends, its freed blocks would otherwise stay in the
    process's resident size."""
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        trim = getattr(libc, "malloc_trim", None)
        if trim is not None:
            trim(0)
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        pass


class Invalid(ValueError):
    """A request that breaks a rule; the text is the INVALID_ARGUMENT details."""


def _segment_problem(segment: str) -> str | None:
    if segment == "":
        return "has an empty segment"
    if segment in (".", ".."):
        return f"holds {segment!r}, which is not allowed"
    if not _SEGMENT.fullmatch(segment):
        return "has a segment that is not obfuscated (only A-Z a-z 0-9 - _ may appear)"
    if len(segment) < MIN_SEGMENT_CHARS:
        return f"has a segment shorter than {MIN_SEGMENT_CHARS} characters: not obfuscated"
    if len(segment) > MAX_SEGMENT_CHARS:
        return f"has a segment longer than {MAX_SEGMENT_CHARS} characters"
    return None


def validate_obfuscated_path(path: str, field: str, *, root_ok: bool = False) -> None:
    """``Invalid`` unless ``path`` is an obfuscated relative path (see the module docstring);
    ``root_ok`` lets ``""`` (the root folder) through."""
    if path == "":
        if root_ok:
            return
        raise Invalid(f"{field} is empty")
    if path.startswith("/"):
        raise Invalid(f"{field} is an absolute path, which is not allowed")
    if len(path) > LIMITS["path_chars"]:
        raise Invalid(f"{field} is longer than {LIMITS['path_chars']} characters")
    for segment in path.split("/"):
        problem = _segment_problem(segment)
        if problem is not None:
            raise Invalid(f"{field} {problem}")


def _hash(value: bytes, field: str, *, empty_ok: bool = False) -> bytes | None:
    if empty_ok and not value:
        return None
    if len(value) != HASH_BYTES:
        raise Invalid(f"{field} must be {HASH_BYTES} bytes, not {len(value)}")
    return bytes(value)


def _key_id(value: str, field: str = "workspace_id") -> str:
    if not _KEY_ID.fullmatch(value):
        raise Invalid(f"{field} must be 32 lowercase hex characters (WorkspaceKeys.key_id)")
    return value


def _tree_ref(
    ref: pb.TreeRef, field: str = "tree", *, tree_optional: bool = False
) -> tuple[str, bytes | None]:
    key_id = _key_id(ref.workspace_id, f"{field}.workspace_id")
    if tree_optional and not ref.tree_id:
        return key_id, None
    if len(ref.tree_id) != TREE_ID_BYTES:
        raise Invalid(f"{field}.tree_id must be {TREE_ID_BYTES} bytes, not {len(ref.tree_id)}")
    return key_id, bytes(ref.tree_id)


def _limit(count: int, name: str, field: str) -> None:
    if count > LIMITS[name]:
        raise Invalid(f"{field} holds {count} items; at most {LIMITS[name]} are allowed")


def _vector(values: Any, dimension: int, field: str) -> np.ndarray:
    if len(values) != dimension:
        raise Invalid(f"{field} has {len(values)} dimensions; this index uses {dimension}")
    vector = np.asarray(values, dtype=np.float32)
    if not np.all(np.isfinite(vector)) or not np.any(vector):
        raise Invalid(f"{field} must be finite and not all zero")
    return vector


def _terms(blob: bytes, field: str, limit: str) -> list[bytes]:
    if len(blob) % TERM_BYTES:
        raise Invalid(f"{field} must be a whole number of {TERM_BYTES}-byte term hashes")
    terms = [bytes(blob[i : i + TERM_BYTES]) for i in range(0, len(blob), TERM_BYTES)]
    _limit(len(terms), limit, field)
    if len(set(terms)) != len(terms):
        raise Invalid(f"{field} repeats a term hash (send each term once)")
    return terms


def _chunk(message: pb.ChunkData, dimension: int, field: str) -> ChunkRecord:
    _hash(message.chunk_hash, f"{field}.chunk_hash")
    vector = _vector(message.embedding, dimension, f"{field}.embedding")
    terms = _terms(message.term_hashes, f"{field}.term_hashes", "terms_per_chunk")
    counts = tuple(message.term_counts)
    if len(counts) != len(terms):
        raise Invalid(f"{field}.term_counts must have one count per term hash")
    if any(c < 1 for c in counts):
        raise Invalid(f"{field}.term_counts must be positive")
    return ChunkRecord(bytes(message.chunk_hash), vector, tuple(terms), counts)


def _file(message: pb.FileEntry, field: str) -> FileRecord:
    validate_obfuscated_path(message.path, f"{field}.path")
    _hash(message.file_hash, f"{field}.file_hash")
    _limit(len(message.chunks), "chunks_per_file", f"{field}.chunks")
    refs = []
    for i, ref in enumerate(message.chunks):
        _hash(ref.chunk_hash, f"{field}.chunks[{i}].chunk_hash")
        if not 1 <= ref.start_line <= ref.end_line <= LIMITS["line"]:
            raise Invalid(
                f"{field}.chunks[{i}] needs 1 <= start_line <= end_line <= {LIMITS['line']}"
            )
        refs.append(ChunkRef(bytes(ref.chunk_hash), ref.start_line, ref.end_line))
    return FileRecord(message.path, bytes(message.file_hash), tuple(refs))


class IndexSyncServicer(rpc.IndexSyncServicer):
    """``store`` is an ``IndexStore`` or a function that opens one (called on the first call
    that needs it, so a service that never indexes never touches the disk)."""

    def __init__(
        self,
        store: IndexStore | Callable[[], IndexStore],
        *,
        max_message_bytes: int,
        budget: UploadBudget | None = None,
        caller: Callable[[grpc.ServicerContext], Hashable] | None = None,
    ) -> None:
        self._budget = budget or UploadBudget(
            DEFAULT_MAX_UPLOAD_PENDING_BYTES, DEFAULT_MAX_UPLOAD_PENDING_BYTES_PER_TOKEN
        )
        self._caller = caller or (lambda _context: None)
        self._store_or_factory = store
        self._store: IndexStore | None = store if isinstance(store, IndexStore) else None
        self._open_lock = threading.Lock()
        self._reply_budget = max(1024, max_message_bytes // 2)

    @property
    def store(self) -> IndexStore:
        if self._store is None:
            with self._open_lock:
                if self._store is None:
                    factory = self._store_or_factory
                    assert callable(factory)
                    self._store = factory()
        return self._store

    def close(self) -> None:
        """Close the store if this servicer opened it."""
        if self._store is not None and self._store is not self._store_or_factory:
            self._store.close()

    # -- plumbing ---------------------------------------------------------------------------------

    def _run(self, method: str, context: grpc.ServicerContext, body: Callable[[], Any]) -> Any:
        began = time.monotonic()
        outcome: str = _Outcome.OK
        try:
            return body()
        except Invalid as exc:
            outcome = _Outcome.INVALID
            self._abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except MalformedRequest:
            outcome = _Outcome.MALFORMED
            raise  # guard.parsing_handler answers INVALID_ARGUMENT
        except OverBudget as exc:
            outcome = f"refused (over the limit per {exc.scope})"
            self._abort(context, grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
        except StaleBase as exc:
            outcome = _Outcome.STALE_BASE
            self._abort(context, grpc.StatusCode.ABORTED, str(exc))
        except (CommitRejected, WrongRoot) as exc:
            outcome = _Outcome.REJECTED
            self._abort(context, grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        except StoreFull as exc:  # "disk full" and the store's path; nothing was applied
            outcome = _Outcome.DISK_FULL
            log.error("index %s: %s", method, exc)
            self._abort(context, grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
        except StoreDamaged as exc:
            outcome = _Outcome.STORE_DAMAGED
            log.error("index %s: %s", method, exc)
            self._abort(context, grpc.StatusCode.DATA_LOSS, str(exc))
        except Exception as exc:  # the store failed: say so without any of its data
            outcome = f"failed ({type(exc).__name__})"
            log.error("index %s failed: %s", method, type(exc).__name__)
            self._abort(context, grpc.StatusCode.INTERNAL, "the index store failed")
        finally:
            if outcome != _Outcome.MALFORMED:
                log.info(
                    "index %s: %s after %.1f ms",
                    method,
                    outcome,
                    (time.monotonic() - began) * 1000.0,
                )

    @staticmethod
    def _abort(context: grpc.ServicerContext, code: grpc.StatusCode, details: str) -> NoReturn:
        context.abort(code, details)  # raises: the handler ends with this status
        raise AssertionError("context.abort returned")  # pragma: no cover

    # -- methods ----------------------------------------------------------------------------------

    def GetNodes(
        self, request: pb.GetNodesRequest, context: grpc.ServicerContext
    ) -> pb.GetNodesReply:
        def body() -> pb.GetNodesReply:
            key_id, tree_id = _tree_ref(request.tree)
            assert tree_id is not None
            client_root = _hash(request.root_hash, "root_hash", empty_ok=True)
            _limit(len(request.folders), "folders_per_call", "folders")
            queries = []
            for i, folder in enumerate(request.folders):
                validate_obfuscated_path(folder.path, f"folders[{i}].path", root_ok=True)
                if folder.after:
                    problem = _segment_problem(folder.after)
                    if problem is not None:
                        raise Invalid(f"folders[{i}].after {problem}")
                queries.append((folder.path, folder.after))
            root = self.store.root(key_id, tree_id)
            reply = pb.GetNodesReply(root_hash=root or b"")
            if root is not None and root == client_root:
                reply.in_sync = True
                return reply
            for view in self.store.folders(key_id, tree_id, queries, self._reply_budget):
                reply.folders.append(
                    pb.FolderNode(
                        path=view.path,
                        found=view.found,
                        hash=view.hash,
                        complete=view.complete,
                        children=[
                            pb.NodeEntry(name=e.name, hash=e.hash, is_dir=e.is_dir)
                            for e in view.children
                        ],
                    )
                )
            log.info(
                "index GetNodes: %d folders asked, %d answered, %d bytes",
                len(queries),
                len(reply.folders),
                reply.ByteSize(),
            )
            return reply

        result: pb.GetNodesReply = self._run("GetNodes", context, body)
        return result

    def HasChunks(
        self, request: pb.HasChunksRequest, context: grpc.ServicerContext
    ) -> pb.HasChunksReply:
        def body() -> pb.HasChunksReply:
            key_id = _key_id(request.workspace_id)
            _limit(len(request.chunk_hashes), "hashes_per_call", "chunk_hashes")
            hashes = [_hash(h, f"chunk_hashes[{i}]") for i, h in enumerate(request.chunk_hashes)]
            missing = self.store.missing(key_id, [h for h in hashes if h is not None])
            log.info("index HasChunks: %d asked, %d missing", len(hashes), len(missing))
            return pb.HasChunksReply(missing=missing)

        result: pb.HasChunksReply = self._run("HasChunks", context, body)
        return result

    def Upload(
        self, request_iterator: Iterator[pb.UploadRequest], context: grpc.ServicerContext
    ) -> pb.UploadReply:
        held: list[bytes] = []  # each message's file entries and deletions, in wire form
        try:
            pending = self._budget.call(self._caller(context))
        except OverBudget as exc:
            log.info("index Upload: refused (%d uploads running)", self._budget.calls)
            self._abort(context, grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))

        def body() -> pb.UploadReply:
            store = None
            key_id = ""
            tree_id = b""
            base_root: bytes | None = None
            new_root = b""
            stored = messages = received = files = deleted = 0
            committed = False
            try:
                for message in request_iterator:
                    messages += 1
                    received += message.ByteSize()
                    if messages == 1:
                        key_id, maybe_tree = _tree_ref(message.tree)
                        assert maybe_tree is not None
                        tree_id = maybe_tree
                        base_root = _hash(message.base_root, "base_root", empty_ok=True)
                        new_root = _hash(message.new_root, "new_root") or b""
                        store = self.store
                        current = store.root(key_id, tree_id)
                        if current not in (base_root, new_root):
                            raise StaleBase(
                                "the tree changed since it was reconciled: reconcile again"
                            )
                    elif message.HasField("tree") and _tree_ref(message.tree) != (key_id, tree_id):
                        raise Invalid("every message of an upload must name the same tree")
                    assert store is not None
                    _limit(len(message.chunks), "chunks_per_message", "chunks")
                    # Checked (and counted against the budget) before anything is stored.
                    for i, entry in enumerate(message.files):
                        _file(entry, f"files[{i}]")
                    for i, path in enumerate(message.deleted):
                        validate_obfuscated_path(path, f"deleted[{i}]")
                    files += len(message.files)
                    deleted += len(message.deleted)
                    _limit(files, "files_per_commit", "the commit's files")
                    _limit(deleted, "deleted_per_commit", "the commit's deletions")
                    if message.files or message.deleted:
                        kept = pb.UploadRequest(files=message.files, deleted=message.deleted)
                        blob = kept.SerializeToString()
                        pending.reserve(len(blob))
                        held.append(blob)
                    chunks = [
                        _chunk(c, store.dimension, f"chunks[{i}]")
                        for i, c in enumerate(message.chunks)
                    ]
                    stored += store.put_chunks(key_id, chunks)
                    del chunks
                    if message.commit:
                        committed = True
                        break
            except grpc.RpcError:
                committed = False  # the client went away: the stream broke
            if not committed or store is None:
                log.info(
                    "index Upload: broken off after %d messages (%d bytes, %d chunks "
                    "cached): nothing applied",
                    messages,
                    received,
                    stored,
                )
                raise Invalid(
                    "the upload ended without its commit message: no file was "
                    "changed (chunks sent were kept)"
                )
            records, paths = self._held_records(held)
            result = store.commit(key_id, tree_id, base_root, new_root, records, paths)
            log.info(
                "index Upload: %d messages, %d bytes, %d chunks new, %d files, %d deleted%s",
                messages,
                received,
                stored,
                result.files_written,
                result.paths_deleted,
                " (already applied)" if result.already_applied else "",
            )
            return pb.UploadReply(
                root_hash=result.root,
                already_applied=result.already_applied,
                chunks_stored=stored,
                files_written=result.files_written,
                paths_deleted=result.paths_deleted,
            )

        try:
            result: pb.UploadReply = self._run("Upload", context, body)
            return result
        finally:
            # Whatever the end (committed, refused, cancelled, broken): nothing stays held.
            big = pending.held >= TRIM_AFTER_BYTES
            held.clear()
            pending.release()
            if big:
                trim_heap()

    @staticmethod
    def _held_records(held: list[bytes]) -> tuple[list[FileRecord], list[str]]:
        """The file records and deletions of a commit, from the held messages (consumed)."""
        records: list[FileRecord] = []
        paths: set[str] = set()
        deleted: list[str] = []
        held.reverse()
        while held:
            kept = pb.UploadRequest.FromString(held.pop())
            for entry in kept.files:
                record = _file(entry, "files[]")
                if record.path in paths:
                    raise Invalid(f"files[{len(records)}].path appears twice in one commit")
                paths.add(record.path)
                records.append(record)
            deleted.extend(kept.deleted)
        return records, deleted

    def Search(self, request: pb.SearchRequest, context: grpc.ServicerContext) -> pb.SearchReply:
        def body() -> pb.SearchReply:
            key_id, tree_id = _tree_ref(request.tree)
            assert tree_id is not None
            root = _hash(request.root_hash, "root_hash")
            assert root is not None
            mode = _MODES.get(request.mode)
            if mode is None:
                raise Invalid("mode is not a SearchMode")
            top_k = request.top_k or DEFAULT_TOP_K
            if top_k > LIMITS["top_k"]:
                raise Invalid(f"top_k must be at most {LIMITS['top_k']}")
            terms = _terms(request.term_hashes, "term_hashes", "query_terms")
            store = self.store
            vector = (
                _vector(request.embedding, store.dimension, "embedding")
                if len(request.embedding)
                else None
            )
            if mode == SearchMode.VECTOR and vector is None:
                raise Invalid("a vector search needs the query's embedding")
            if mode == SearchMode.LEXICAL and not terms:
                raise Invalid("a lexical search needs the query's term hashes")
            if vector is None and not terms:
                raise Invalid("a search needs an embedding or term hashes")
            hits, searched = store.search(key_id, tree_id, root, vector, terms, top_k, mode)
            log.info(
                "index Search (%s): %d terms, %d hits over %d chunks",
                mode,
                len(terms),
                len(hits),
                searched,
            )
            return pb.SearchReply(
                searched_chunks=searched,
                hits=[
                    pb.SearchHit(
                        path=h.path,
                        start_line=h.start_line,
                        end_line=h.end_line,
                        chunk_hash=h.chunk_hash,
                        score=h.score,
                        vector_score=h.vector_score,
                        lexical_score=h.lexical_score,
                        vector_rank=h.vector_rank,
                        lexical_rank=h.lexical_rank,
                    )
                    for h in hits
                ],
            )

        result: pb.SearchReply = self._run("Search", context, body)
        return result

    def Stats(self, request: pb.StatsRequest, context: grpc.ServicerContext) -> pb.StatsReply:
        def body() -> pb.StatsReply:
            key_id, tree_id = _tree_ref(request.tree, tree_optional=True)
            stats = self.store.stats(key_id, tree_id)
            return pb.StatsReply(
                root_hash=stats.root or b"",
                files=stats.files,
                folders=stats.folders,
                tree_chunks=stats.tree_chunks,
                cached_chunks=stats.cached_chunks,
                commits=stats.commits,
                store=stats.store,
                dimension=stats.dimension,
            )

        result: pb.StatsReply = self._run("Stats", context, body)
        return result
