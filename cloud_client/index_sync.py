"""Syncing a workspace's codebase index with the service, and searching it (issue 6). No Qt.

``IndexSyncClient`` is the gRPC seam (one channel, the token on every call, bytes and calls
counted); ``IndexSync`` is the sync engine for one folder, one workspace key and one tree id:

    scan (merkle.scan_folder, secrets and ignored files left out)
    -> reconcile: the root hash first, then one GetNodes call per level of mismatched folders
    -> read and chunk the changed files (chunking.chunk_file)
    -> HasChunks: which keyed chunk hashes the service's cache lacks (batched)
    -> embed only those (batched, through the ``Embed`` the caller gives: the real one is
       ``local_models.index.embedder.Embedder``, which this package never imports: llama.cpp
       stays out of the client)
    -> Upload: the missing chunks, the changed files and the deletions as one commit whose
       new root the service checks. A big change made only of new files (a first index)
       goes in growing batches, each commit a tree of its own (``FIRST_BATCH_CHUNKS`` chunks
       first), so search answers after the first batch rather than after the whole index.
       No commit holds more than ``max_commit_bytes`` of file entries and deletions (the
       service keeps those until the commit and refuses more than its limit per call: a
       bigger change with deletions or replaced files first deletes those paths, then adds
       the rest in batches); a refusal that names a lower limit makes the batches smaller.

Everything leaves the machine keyed or encrypted (``WorkspaceKeys``): obfuscated paths, keyed
file/chunk/term hashes, embeddings turned by the workspace's secret rotation (chunks and queries
alike, ``_rotated``: cosine ranking is kept, a guess embedded with the public model does not
match); only line ranges go as they are. ``sync`` is
cancellable (``cancelled()`` is polled between steps, embedding batches and upload messages),
reports ``progress(stage, done, total)``, and survives a dropped connection: every step is
idempotent, so it retries with backoff from a fresh reconcile; embeddings already computed are
kept, and chunks the service stored before the drop are not sent again (HasChunks says so).

``search`` sends the query's embedding and keyed terms with the synced root (the proof that
this client holds the tree's files), maps the obfuscated paths back through the synced tree,
reads each hit's chunk from the local file (checking its keyed hash: a file edited since the
sync gives ``text=None``, ``stale=True``) and re-scores with the plaintext
(``forecode_core.index.search.rerank``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc
import numpy as np
import numpy.typing as npt

from cloud_client.client import channel_options, is_loopback, split_target
from forecode_core.index.chunking import (
    DEFAULT_LIMITS,
    ChunkLimits,
    chunk_file,
    chunk_text,
    content_hash,
    decode_text,
)
from forecode_core.index.codebase import SyncStage
from forecode_core.index.crypto import WorkspaceKeys
from forecode_core.index.merkle import MerkleTree, WireEntry, diff_children, scan_folder
from forecode_core.index.search import Candidate, SearchMode, rerank
from forecode_core.workspace.gitignore import IgnoreRules
from proto.forecode.v1 import forecode_pb2 as pb
from proto.forecode.v1 import forecode_pb2_grpc as rpc

__all__ = [
    "Embed",
    "IndexSync",
    "IndexSyncClient",
    "RemotePlan",
    "SearchResult",
    "SyncCancelled",
    "SyncError",
    "SyncReport",
    "Traffic",
    "new_tree_id",
    "reconcile_remote",
]

log = logging.getLogger(__name__)

GRPC_FRAME = 5  # bytes before every gRPC message (compressed flag, length)
MAX_QUERY_TERMS = 1024
FOLDERS_PER_CALL = 5000
HASHES_PER_CALL = 4096
CHUNKS_PER_MESSAGE = 1000
FIRST_BATCH_CHUNKS = 64  # a first index commits after this many chunks ...
MAX_BATCH_CHUNKS = 1024  # ... then in batches doubling up to this
# File entries and deletions of one commit, in bytes: the service holds them until the commit
# and refuses an upload past its limit per call (cloud_server.config, 8 MiB by default). A
# bigger change goes in several commits; when the service's limit is lower, its refusal names
# it and the sync retries under it.
MAX_COMMIT_BYTES = 4 * 1024 * 1024
MIN_COMMIT_BYTES = 16 * 1024
_LIMIT_IN_DETAILS = re.compile(r"more than (\d+) bytes")
TEXT_CACHE_FILES = 256  # files whose chunks search keeps for reading hits back
RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
    }
)
_MODES = {
    SearchMode.COMBINED: pb.SEARCH_MODE_COMBINED,
    SearchMode.VECTOR: pb.SEARCH_MODE_VECTOR,
    SearchMode.LEXICAL: pb.SEARCH_MODE_LEXICAL,
}

_IDEMPOTENT = [
    {"service": "forecode.v1.IndexSync", "method": m}
    for m in ("GetNodes", "HasChunks", "Search", "Stats")
]
_SERVICE_CONFIG = {
    "methodConfig": [
        {
            "name": _IDEMPOTENT,
            "retryPolicy": {
                "maxAttempts": 3,
                "initialBackoff": "0.2s",
                "maxBackoff": "2s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }
    ]
}


def new_tree_id() -> bytes:
    """A fresh tree id: 16 random bytes, kept by the client for one working copy."""
    return os.urandom(16)


class Embed(Protocol):
    """Texts in, one L2-normalised float32 vector each out (``Embedder.embed``'s shape)."""

    def embed(
        self,
        texts: Sequence[str],
        *,
        progress: Callable[[int, int], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> npt.NDArray[np.float32]: ...


class SyncCancelled(Exception):
    """``cancelled()`` said stop; the service's tree is as before this sync (or as after it,
    if the commit had already landed)."""


class SyncError(Exception):
    """The sync or search failed for a reason retrying does not fix; ``code`` is the gRPC
    status name (``"INVALID_ARGUMENT"``, ...) or ``"retries"`` when every attempt failed."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------------------------------------
# the transport


@dataclass
class Traffic:
    """Calls and message bytes (payload + gRPC's 5-byte frame; HTTP/2 headers not counted)
    per method since the client was made."""

    calls: Counter[str] = field(default_factory=Counter)
    sent: Counter[str] = field(default_factory=Counter)
    received: Counter[str] = field(default_factory=Counter)

    def add(self, method: str, sent: int, received: int) -> None:
        self.calls[method] += 1
        self.sent[method] += sent
        self.received[method] += received

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def total_bytes(self) -> int:
        return sum(self.sent.values()) + sum(self.received.values())

    def snapshot(self) -> tuple[int, int, int]:
        return self.total_calls, sum(self.sent.values()), sum(self.received.values())


class IndexSyncClient:
    """A channel to the service's IndexSync with the token on every call. Thread-safe (the
    counters under a lock). Calls wait for the service to be ready (up to ``timeout``), so a
    service restarting mid-sync is waited for rather than failed at once."""

    def __init__(
        self,
        target: str,
        token: str,
        *,
        tls: bool | None = None,
        root_certificates: bytes | None = None,
        server_name: str | None = None,
        timeout: float = 60.0,
    ) -> None:
        host, _port = split_target(target)
        if not token:
            raise ValueError("the cloud service needs an access token")
        loopback = is_loopback(host)
        tls = (not loopback) if tls is None else tls
        if not tls and not loopback:
            raise ValueError(
                f"refusing to send the access token in clear text to {target}: "
                "a service off this machine must be reached over TLS"
            )
        import json

        options = [(k, v) for k, v in channel_options(server_name) if k != "grpc.service_config"]
        options.append(("grpc.service_config", json.dumps(_SERVICE_CONFIG)))
        if tls:
            creds = grpc.ssl_channel_credentials(root_certificates=root_certificates)
            self._channel = grpc.secure_channel(target, creds, options=options)
        else:
            self._channel = grpc.insecure_channel(target, options=options)
        self._stub = rpc.IndexSyncStub(self._channel)
        self.__metadata = (("authorization", f"Bearer {token}"),)
        self.target = target
        self.timeout = timeout
        self.traffic = Traffic()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"IndexSyncClient(target={self.target!r})"

    def _count(self, method: str, sent: int, received: int) -> None:
        with self._lock:
            self.traffic.add(method, sent, received)

    def _unary(self, method: str, request: Any) -> Any:
        reply = getattr(self._stub, method)(
            request, metadata=self.__metadata, timeout=self.timeout, wait_for_ready=True
        )
        self._count(method, request.ByteSize() + GRPC_FRAME, reply.ByteSize() + GRPC_FRAME)
        return reply

    def get_nodes(self, request: pb.GetNodesRequest) -> pb.GetNodesReply:
        reply: pb.GetNodesReply = self._unary("GetNodes", request)
        return reply

    def has_chunks(self, request: pb.HasChunksRequest) -> pb.HasChunksReply:
        reply: pb.HasChunksReply = self._unary("HasChunks", request)
        return reply

    def search(self, request: pb.SearchRequest) -> pb.SearchReply:
        reply: pb.SearchReply = self._unary("Search", request)
        return reply

    def stats(self, request: pb.StatsRequest) -> pb.StatsReply:
        reply: pb.StatsReply = self._unary("Stats", request)
        return reply

    def upload(self, messages: Iterable[pb.UploadRequest]) -> pb.UploadReply:
        sent = [0]

        def counted() -> Iterator[pb.UploadRequest]:
            for message in messages:
                sent[0] += message.ByteSize() + GRPC_FRAME
                yield message

        try:
            reply: pb.UploadReply = self._stub.Upload(
                counted(), metadata=self.__metadata, timeout=self.timeout, wait_for_ready=True
            )
        except grpc.RpcError:
            self._count("Upload", sent[0], 0)
            raise
        self._count("Upload", sent[0], reply.ByteSize() + GRPC_FRAME)
        return reply

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> IndexSyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------
# the sync engine


@dataclass(frozen=True)
class SyncReport:
    root: bytes
    changed: bool  # a commit was applied
    files_uploaded: int
    paths_deleted: int
    chunks_referenced: int  # distinct chunks of the uploaded files
    chunks_missing: int  # of those, what the service lacked
    chunks_embedded: int  # computed by this sync (missing and not already computed)
    chunks_uploaded: int
    get_nodes_calls: int  # reconcile round trips of the last attempt
    round_trips: int  # every call of the last attempt
    bytes_sent: int
    bytes_received: int
    attempts: int
    seconds: float
    skipped: dict[str, str]  # local paths left out of the index, with the reason


@dataclass(frozen=True)
class SearchResult:
    path: str  # local, workspace-relative
    start_line: int
    end_line: int
    score: float
    text: str | None  # the chunk as it is on disk now; None when it changed since the sync
    stale: bool
    vector_rank: int
    lexical_rank: int
    obfuscated_path: str


@dataclass(frozen=True)
class RemotePlan:
    """What a reconcile found: the service's root, the local files to (re)send, the
    obfuscated paths to delete there, and the GetNodes calls it took."""

    remote_root: bytes | None
    upload: tuple[str, ...]
    delete: tuple[str, ...]
    calls: int
    replaced: tuple[str, ...] = ()  # of ``upload``, the files the service holds another version of


# One commit of a sync: the files it writes (local path, entry), the chunks it uploads, the
# root the service's tree has after it, and the obfuscated paths it deletes.
_Batch = tuple[list[tuple[str, pb.FileEntry]], list[bytes], bytes, list[str]]


class _TreeMoved(Exception):
    """The service's root changed during a reconcile."""


def _join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def _ancestors(path: str) -> list[str]:
    """The folders above a path, outermost first: ``a/b/c`` -> ``a``, ``a/b``."""
    parts = path.split("/")[:-1]
    return ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _rpc_code(exc: grpc.RpcError) -> grpc.StatusCode | None:
    code = exc.code() if hasattr(exc, "code") else None
    return code if isinstance(code, grpc.StatusCode) else None


def reconcile_remote(client: IndexSyncClient, tree_ref: pb.TreeRef, tree: MerkleTree) -> RemotePlan:
    """Compare ``tree`` with the service's copy of the tree: the root hash first (answered
    with the root's children on a mismatch), then one GetNodes call per level of mismatched
    folders (more only when a level does not fit one reply). ``_TreeMoved`` if the service's
    root changes meanwhile."""
    local_root = tree.root_hash
    first = client.get_nodes(
        pb.GetNodesRequest(tree=tree_ref, root_hash=local_root, folders=[pb.FolderQuery(path="")])
    )
    calls = 1
    remote_root = first.root_hash or None
    if first.in_sync:
        return RemotePlan(remote_root, (), (), calls)
    upload: list[str] = []
    replaced: list[str] = []
    delete: list[str] = []
    level = [""]
    answers, more = _answers(first, [("", "")])
    while level:
        while more:  # a level that did not fit one reply
            asked = more[:FOLDERS_PER_CALL]
            reply = client.get_nodes(
                pb.GetNodesRequest(
                    tree=tree_ref, folders=[pb.FolderQuery(path=p, after=a) for p, a in asked]
                )
            )
            calls += 1
            if (reply.root_hash or None) != remote_root:
                raise _TreeMoved()
            page, rest = _answers(reply, asked)
            for path, children in page.items():
                answers.setdefault(path, []).extend(children)
            more = rest + more[FOLDERS_PER_CALL:]
        next_level: list[str] = []
        for path in level:
            mine = tree.wire_node_obfuscated(path)
            ours = mine.children if mine is not None else ()
            theirs = answers.get(path, [])
            diff = diff_children(ours, theirs)
            held = {e.name for e in theirs}
            next_level.extend(_join(path, e.name) for e in diff.descend)
            for entry in diff.upload:
                local = tree.resolve(_join(path, entry.name))
                assert local is not None
                files = tree.files_under(local)
                upload.extend(files)
                if entry.name in held:
                    replaced.extend(files)
            delete.extend(_join(path, e.name) for e in diff.delete)
        level = next_level
        answers = {}
        more = [(p, "") for p in level]
    return RemotePlan(remote_root, tuple(upload), tuple(delete), calls, tuple(replaced))


def _answers(
    reply: pb.GetNodesReply, asked: Sequence[tuple[str, str]]
) -> tuple[dict[str, list[WireEntry]], list[tuple[str, str]]]:
    """The children in a reply by folder, and the (path, after) queries still to send."""
    if not reply.folders and asked:
        raise SyncError("INTERNAL", "the index service answered no folder")
    out: dict[str, list[WireEntry]] = {}
    rest: list[tuple[str, str]] = []
    for i, folder in enumerate(reply.folders):
        if i >= len(asked) or folder.path != asked[i][0]:
            raise SyncError("INTERNAL", "the index service answered another folder")
        children = [WireEntry(c.name, bytes(c.hash), c.is_dir) for c in folder.children]
        out[folder.path] = children
        if not folder.complete:
            after = children[-1].name if children else asked[i][1]
            rest.append((folder.path, after))
    rest.extend(asked[len(reply.folders) :])
    return out, rest


class IndexSync:
    """Sync one folder's index (see the module docstring). Not thread-safe: one owner runs
    ``sync`` and ``search`` (the editor's index worker); ``cancelled`` may read a flag another
    thread sets."""

    def __init__(
        self,
        folder: str | os.PathLike[str],
        keys: WorkspaceKeys,
        client: IndexSyncClient,
        embedder: Embed,
        *,
        tree_id: bytes,
        rules: IgnoreRules | None = None,
        limits: ChunkLimits = DEFAULT_LIMITS,
        max_message_bytes: int = 1 << 20,
        max_attempts: int = 6,
        max_commit_bytes: int = MAX_COMMIT_BYTES,
        backoff_s: tuple[float, float] = (0.2, 3.0),
    ) -> None:
        if len(tree_id) != 16:
            raise ValueError("a tree id is 16 bytes (new_tree_id())")
        self.folder = os.path.abspath(os.fspath(folder))
        self.keys = keys
        self.client = client
        self.embedder = embedder
        self.tree_id = tree_id
        self.rules = rules
        self.limits = limits
        self.max_message_bytes = max_message_bytes
        self.max_commit_bytes = max_commit_bytes
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.synced_root: bytes | None = None
        self.synced_tree: MerkleTree | None = None
        self._scanned: MerkleTree | None = None
        self._vectors: dict[bytes, npt.NDArray[np.float32]] = {}  # embedded, not yet committed
        self._texts: OrderedDict[str, tuple[tuple[int, int], list[str] | None]] = OrderedDict()
        self.embedded_total = 0  # texts this object has embedded (syncs and queries apart)
        self.embed_calls = 0

    @property
    def tree_ref(self) -> pb.TreeRef:
        return pb.TreeRef(workspace_id=self.keys.key_id, tree_id=self.tree_id)

    # -- sync ---------------------------------------------------------------------------------

    def sync(
        self,
        *,
        progress: Callable[[SyncStage, int, int], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> SyncReport:
        """Bring the service's tree in line with the folder; see the module docstring."""
        began = time.monotonic()
        stop = cancelled or (lambda: False)
        report = progress or (lambda _stage, _done, _total: None)
        delay = self.backoff_s[0]
        for attempt in range(1, self.max_attempts + 1):
            before = self.client.traffic.snapshot()
            try:
                return self._sync_once(report, stop, attempt, began, before)
            except _TreeMoved:
                log.info("index sync: the service's tree moved during a reconcile; again")
            except grpc.RpcError as exc:
                code = _rpc_code(exc)
                if stop():
                    raise SyncCancelled("the sync was cancelled") from exc
                details = exc.details() if hasattr(exc, "details") else ""
                if code == grpc.StatusCode.RESOURCE_EXHAUSTED and self._over_limit(details or ""):
                    pass  # commit in smaller batches, or wait for this token's other uploads
                elif code not in RETRYABLE:
                    raise SyncError(
                        code.name if code else "UNKNOWN",
                        f"the index service refused the sync: {details}",
                    ) from exc
                log.info(
                    "index sync: attempt %d failed (%s); retrying",
                    attempt,
                    code.name if code else "?",
                )
            if attempt == self.max_attempts:
                break
            self._sleep(delay, stop)
            delay = min(delay * 2, self.backoff_s[1])
        raise SyncError(
            "retries", f"the index sync failed {self.max_attempts} times; the service may be down"
        )

    def _over_limit(self, details: str) -> bool:
        """An upload refused for what it would hold until its commit (``cloud_server.
        upload_budget``): over the limit per call, the commits shrink under the limit the
        refusal names; over the limit per token or of uploads at once, the sync waits and tries
        again. False for anything else (a message over the size limit, a busy service)."""
        if "limit per token" in details or "uploads at once" in details:
            return True
        if "limit per call" not in details:
            return False
        found = _LIMIT_IN_DETAILS.search(details)
        limit = int(found.group(1)) if found else self.max_commit_bytes
        smaller = min(self.max_commit_bytes, limit) // 2
        if smaller < MIN_COMMIT_BYTES:
            return False
        log.info(
            "index sync: the service holds at most %d bytes per upload; committing in "
            "batches of %d",
            limit,
            smaller,
        )
        self.max_commit_bytes = smaller
        return True

    @staticmethod
    def _sleep(seconds: float, stop: Callable[[], bool]) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if stop():
                raise SyncCancelled("the sync was cancelled")
            time.sleep(min(0.05, max(0.0, end - time.monotonic())))

    def _sync_once(
        self,
        progress: Callable[[SyncStage, int, int], None],
        stop: Callable[[], bool],
        attempt: int,
        began: float,
        before: tuple[int, int, int],
    ) -> SyncReport:
        def check() -> None:
            if stop():
                raise SyncCancelled("the sync was cancelled")

        progress(SyncStage.SCAN, 0, 0)
        scan = scan_folder(
            self.folder, self.keys, rules=self.rules, previous=self._scanned, should_stop=stop
        )
        check()
        tree = scan.tree
        self._scanned = tree
        progress(SyncStage.RECONCILE, 0, 0)
        plan = reconcile_remote(self.client, self.tree_ref, tree)
        check()
        skipped = dict(scan.skipped)
        if plan.remote_root == tree.root_hash:
            self._synced(tree)
            return self._report(
                tree.root_hash, False, 0, 0, 0, 0, 0, 0, plan.calls, attempt, began, before, skipped
            )
        files, texts, deletions = self._read_changes(tree, plan, progress, skipped, check)
        progress(SyncStage.CHECK, 0, len(texts))
        missing = self._missing(list(texts), check)
        progress(SyncStage.CHECK, len(texts), len(texts))
        batches = self._batches(tree, plan, files, deletions, missing)
        if batches is None:  # one commit: the whole change
            batches = [(files, missing, tree.root_hash, deletions)]
        base = plan.remote_root
        embedded = 0
        to_embed = sum(1 for h in missing if h not in self._vectors)
        for batch_files, batch_missing, batch_root, batch_deletions in batches:
            check()
            embedded += self._embed(
                [h for h in batch_missing if h not in self._vectors],
                texts,
                progress,
                stop,
                embedded,
                to_embed,
            )
            check()
            messages = self._messages(
                base,
                batch_root,
                batch_missing,
                texts,
                [entry for _path, entry in batch_files],
                batch_deletions,
            )
            progress(SyncStage.UPLOAD, 0, len(messages))
            reply = self.client.upload(self._stream(messages, progress, stop))
            if reply.root_hash != batch_root:
                raise SyncError("INTERNAL", "the service committed another root than this client's")
            for chunk_hash in batch_missing:
                self._vectors.pop(chunk_hash, None)
            base = batch_root
            self._synced(tree, batch_root)  # searchable from here on
        progress(SyncStage.DONE, 1, 1)
        return self._report(
            tree.root_hash,
            True,
            len(files),
            len(deletions),
            len(texts),
            len(missing),
            embedded,
            len(missing),
            plan.calls,
            attempt,
            began,
            before,
            skipped,
        )

    def _batches(
        self,
        tree: MerkleTree,
        plan: RemotePlan,
        files: list[tuple[str, pb.FileEntry]],
        deletions: list[str],
        missing: list[bytes],
    ) -> list[_Batch] | None:
        """A big change is committed in batches, each a tree of its own, so that search
        answers after the first batch instead of after the last, and so that no commit holds
        more than ``max_commit_bytes`` of file entries and deletions on the service (its limit
        per call). Batches of new files grow from ``FIRST_BATCH_CHUNKS`` to
        ``MAX_BATCH_CHUNKS`` chunks to embed. A change with deletions or replaced files (whose
        old versions only the service holds) goes in one commit when it fits; when it does
        not, a first commit deletes those paths (the tree then holds only the files both sides
        agree on, plus nothing new) and the rest follows as new files. None: one commit."""
        budget = self.max_commit_bytes
        cost = {path: entry.ByteSize() + 8 for path, entry in files}
        clearing = self._clearing(tree, plan, deletions)
        total = sum(cost.values()) + sum(len(p) + 8 for p in deletions)
        if total <= budget and (deletions or plan.replaced or len(missing) <= FIRST_BATCH_CHUNKS):
            return None
        new = {path for path, _entry in files}
        partial = MerkleTree(self.keys)
        for path, digest in tree.files():
            if path not in new:
                partial.set_digest(path, digest)
        batches: list[_Batch] = []
        if deletions or plan.replaced:
            # (A deletion set over the budget alone still goes as one commit: the service's
            # refusal then says to raise its limit.)
            batches.append(([], [], partial.root_hash, clearing))
        elif (plan.remote_root or partial.root_hash) != partial.root_hash:
            return None  # the service does not hold exactly the rest: play safe
        wanted = set(missing)
        size = FIRST_BATCH_CHUNKS
        current: list[tuple[str, pb.FileEntry]] = []
        current_missing: list[bytes] = []
        current_bytes = 0

        def close() -> None:
            nonlocal current, current_missing, current_bytes
            for done_path, _e in current:
                partial.set_digest(done_path, tree.digest(done_path) or b"")
            batches.append((current, current_missing, partial.root_hash, []))
            current, current_missing, current_bytes = [], [], 0

        for path, entry in files:
            if current and current_bytes + cost[path] > budget:
                close()
            current.append((path, entry))
            current_bytes += cost[path]
            for ref in entry.chunks:
                if ref.chunk_hash in wanted:
                    wanted.discard(ref.chunk_hash)
                    current_missing.append(ref.chunk_hash)
            if len(current_missing) >= size:
                close()
                size = min(size * 2, MAX_BATCH_CHUNKS)
        if current:
            close()
        assert partial.root_hash == tree.root_hash
        return batches

    @staticmethod
    def _clearing(tree: MerkleTree, plan: RemotePlan, deletions: list[str]) -> list[str]:
        """The deletions of a clearing commit: ``deletions`` plus the old versions of the
        replaced files, a whole folder at a time where every file the folder holds here is
        re-sent (a branch switch or a reformat is then a few paths, not thousands)."""
        upload = set(plan.upload)
        total: Counter[str] = Counter()
        changed: Counter[str] = Counter()
        for path, _digest in tree.files():
            for folder in _ancestors(path):
                total[folder] += 1
                changed[folder] += path in upload
        out = list(deletions)
        seen: set[str] = set()
        for path in plan.replaced:
            target = next((f for f in _ancestors(path) if total[f] == changed[f]), path)
            if target not in seen:
                seen.add(target)
                out.append(tree.obfuscated(target))
        return out

    def _synced(self, tree: MerkleTree, root: bytes | None = None) -> None:
        """What search presents from now on: the committed root, and a tree that resolves its
        paths (the scanned tree holds every committed file under the same names)."""
        self.synced_tree = tree
        self.synced_root = tree.root_hash if root is None else root

    def _report(
        self,
        root: bytes,
        changed: bool,
        files: int,
        deleted: int,
        referenced: int,
        missing: int,
        embedded: int,
        uploaded: int,
        get_nodes: int,
        attempt: int,
        began: float,
        before: tuple[int, int, int],
        skipped: dict[str, str],
    ) -> SyncReport:
        calls, sent, received = self.client.traffic.snapshot()
        return SyncReport(
            root,
            changed,
            files,
            deleted,
            referenced,
            missing,
            embedded,
            uploaded,
            get_nodes,
            calls - before[0],
            sent - before[1],
            received - before[2],
            attempt,
            time.monotonic() - began,
            skipped,
        )

    # -- files and chunks -----------------------------------------------------------------------

    def _read_changes(
        self,
        tree: MerkleTree,
        plan: RemotePlan,
        progress: Callable[[SyncStage, int, int], None],
        skipped: dict[str, str],
        check: Callable[[], None],
    ) -> tuple[list[tuple[str, pb.FileEntry]], dict[bytes, str], list[str]]:
        """The changed files as FileEntries, the text of every chunk they hold (by keyed
        hash), and the paths to delete. A file that changed again since the scan is taken as
        it is now (the tree follows); one that vanished or became a secret is deleted."""
        files: list[tuple[str, pb.FileEntry]] = []
        texts: dict[bytes, str] = {}
        deletions = list(plan.delete)
        for done, path in enumerate(plan.upload):
            if done % 64 == 0:
                check()
                progress(SyncStage.CHUNK, done, len(plan.upload))
            obf = tree.obfuscated(path)
            data = self._read(path)
            if data is None:
                tree.remove(path)
                deletions.append(obf)
                skipped[path] = "unreadable"
                continue
            if hashlib.sha256(data).digest() != tree.digest(path):
                reason = tree.set_file(path, data)
                if reason is not None:
                    deletions.append(obf)
                    skipped[path] = reason
                    continue
            chunks = chunk_file(path, data, self.limits)
            if chunks.skipped == "secret content":  # (the scan already refuses these)
                tree.remove(path)
                deletions.append(obf)
                skipped[path] = chunks.skipped
                continue
            entry = pb.FileEntry(path=obf, file_hash=tree.node_hash(path))
            for chunk in chunks.chunks:
                keyed = self.keys.chunk_hash(chunk.content_hash)
                entry.chunks.append(
                    pb.ChunkRef(
                        chunk_hash=keyed, start_line=chunk.start_line, end_line=chunk.end_line
                    )
                )
                texts.setdefault(keyed, chunk.text)
            files.append((path, entry))
        progress(SyncStage.CHUNK, len(plan.upload), len(plan.upload))
        return files, texts, deletions

    def _read(self, path: str) -> bytes | None:
        try:
            fd = os.open(
                os.path.join(self.folder, path), os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
            )
            with os.fdopen(fd, "rb") as fh:
                data = fh.read(self.limits.max_file_bytes + 1)
        except OSError:
            return None
        return data if len(data) <= self.limits.max_file_bytes else None

    def _missing(self, hashes: list[bytes], check: Callable[[], None]) -> list[bytes]:
        missing: list[bytes] = []
        for start in range(0, len(hashes), HASHES_PER_CALL):
            check()
            batch = hashes[start : start + HASHES_PER_CALL]
            reply = self.client.has_chunks(
                pb.HasChunksRequest(workspace_id=self.keys.key_id, chunk_hashes=batch)
            )
            missing.extend(batch[i] for i in reply.missing)
        return missing

    def _embed(
        self,
        hashes: list[bytes],
        texts: dict[bytes, str],
        progress: Callable[[SyncStage, int, int], None],
        stop: Callable[[], bool],
        offset: int = 0,
        total: int | None = None,
    ) -> int:
        """Embed ``hashes``' texts; progress reports ``offset`` + done of ``total`` (the
        whole sync's count when it embeds in batches)."""
        if not hashes:
            return 0
        total = len(hashes) if total is None else total
        progress(SyncStage.EMBED, offset, total)
        self.embed_calls += 1
        try:
            vectors = self.embedder.embed(
                [texts[h] for h in hashes],
                progress=lambda d, _t: progress(SyncStage.EMBED, offset + d, total),
                cancelled=stop,
            )
        except Exception as exc:
            partial = getattr(exc, "vectors", None)  # EmbedCancelled keeps what was done
            if partial is not None:
                for chunk_hash, vector in zip(hashes, partial, strict=False):
                    self._vectors[chunk_hash] = np.asarray(vector, np.float32)
                self.embedded_total += len(partial)
            if stop():
                raise SyncCancelled("the sync was cancelled") from exc
            raise
        for chunk_hash, vector in zip(hashes, vectors, strict=True):
            self._vectors[chunk_hash] = np.asarray(vector, np.float32)
        self.embedded_total += len(hashes)
        return len(hashes)

    def _chunk_data(self, chunk_hash: bytes, text: str) -> pb.ChunkData:
        counts = Counter(self.keys.token_hashes(text))
        return pb.ChunkData(
            chunk_hash=chunk_hash,
            embedding=self._rotated(self._vectors[chunk_hash]),
            term_hashes=b"".join(counts),
            term_counts=list(counts.values()),
        )

    def _messages(
        self,
        base_root: bytes | None,
        new_root: bytes,
        missing: list[bytes],
        texts: dict[bytes, str],
        files: list[pb.FileEntry],
        deletions: list[str],
    ) -> list[pb.UploadRequest]:
        """The commit as messages of at most about ``max_message_bytes`` each."""
        budget = self.max_message_bytes
        messages = [
            pb.UploadRequest(tree=self.tree_ref, base_root=base_root or b"", new_root=new_root)
        ]
        size = messages[0].ByteSize()

        def room(cost: int, count: int) -> pb.UploadRequest:
            nonlocal size
            current = messages[-1]
            if (size + cost > budget and size > 0) or count >= CHUNKS_PER_MESSAGE:
                current = pb.UploadRequest()
                messages.append(current)
                size = 0
            size += cost
            return current

        for chunk_hash in missing:
            data = self._chunk_data(chunk_hash, texts[chunk_hash])
            room(data.ByteSize() + 4, len(messages[-1].chunks)).chunks.append(data)
        for entry in files:
            room(entry.ByteSize() + 4, 0).files.append(entry)
        for path in deletions:
            room(len(path) + 4, 0).deleted.append(path)
        messages[-1].commit = True
        return messages

    def _rotated(self, vector: npt.ArrayLike) -> list[float]:
        """An embedding as it leaves the machine: turned by the workspace's secret rotation
        (``WorkspaceKeys.vector_transform``), chunks and queries alike, so cosine ranking is
        kept and the service's vectors cannot confirm a guess of the code."""
        vector = np.asarray(vector, np.float32)
        rotated: list[float] = self.keys.vector_transform(len(vector)).apply(vector).tolist()
        return rotated

    @staticmethod
    def _stream(
        messages: list[pb.UploadRequest],
        progress: Callable[[SyncStage, int, int], None],
        stop: Callable[[], bool],
    ) -> Iterator[pb.UploadRequest]:
        for sent, message in enumerate(messages):
            if stop():
                return  # the call ends without its commit: the service applies nothing
            yield message
            progress(SyncStage.UPLOAD, sent + 1, len(messages))

    # -- search ---------------------------------------------------------------------------------

    def search(
        self,
        query: str,
        *,
        top_k: int = 10,
        mode: str = SearchMode.COMBINED,
        use_rerank: bool = True,
        embedding: npt.NDArray[np.float32] | None = None,
    ) -> list[SearchResult]:
        """The best ``top_k`` chunks of the synced tree for ``query`` (see the module
        docstring). ``mode``: ``combined``, ``vector`` or ``lexical``; ``use_rerank`` re-scores
        three times as many with the plaintext before cutting to ``top_k``; ``embedding`` is
        the query's, when the caller already has it."""
        if mode not in _MODES:
            raise ValueError(f"unknown search mode {mode!r}; valid modes: {', '.join(_MODES)}")
        mode = SearchMode(mode)
        if self.synced_root is None or self.synced_tree is None:
            raise SyncError("FAILED_PRECONDITION", "sync the index before searching it")
        request = pb.SearchRequest(
            tree=self.tree_ref,
            root_hash=self.synced_root,
            mode=_MODES[mode],
            top_k=min(100, max(top_k * 3, 30)) if use_rerank else top_k,
        )
        if mode.uses_vector:
            if embedding is None:
                self.embed_calls += 1
                embedding = self.embedder.embed([query])[0]
            request.embedding.extend(self._rotated(embedding))
        terms = list(dict.fromkeys(self.keys.token_hashes(query)))[:MAX_QUERY_TERMS]
        request.term_hashes = b"".join(terms)
        try:
            reply = self.client.search(request)
        except grpc.RpcError as exc:
            code = _rpc_code(exc)
            details = exc.details() if hasattr(exc, "details") else ""
            raise SyncError(
                code.name if code else "UNKNOWN", f"the index service refused the search: {details}"
            ) from exc
        texts: dict[str, list[str] | None] = {}
        candidates: list[Candidate] = []
        located: list[tuple[str, pb.SearchHit]] = []
        for hit in reply.hits:
            path = self.synced_tree.resolve(hit.path)
            if path is None:
                continue
            text = self._chunk_text(path, hit, texts)
            candidates.append(Candidate(len(located), hit.score, text))
            located.append((path, hit))
        ordered = rerank(query, candidates) if use_rerank else candidates
        out = []
        for candidate in ordered[:top_k]:
            assert isinstance(candidate.key, int)
            path, hit = located[candidate.key]
            out.append(
                SearchResult(
                    path,
                    hit.start_line,
                    hit.end_line,
                    candidate.score,
                    candidate.text,
                    candidate.text is None,
                    hit.vector_rank,
                    hit.lexical_rank,
                    hit.path,
                )
            )
        return out

    def _chunk_text(
        self, path: str, hit: pb.SearchHit, cache: dict[str, list[str] | None]
    ) -> str | None:
        """The text of a hit's chunk in the file as it is now, or None when it is not there
        any more: lines start..end whose keyed hash is the hit's (or, for the pieces of an
        over-long line, the piece with that hash). A file's lines are kept while its size and
        mtime stay the same."""
        if path not in cache:
            cache[path] = self._lines(path)
        lines = cache[path]
        if lines is None:
            return None
        wanted = bytes(hit.chunk_hash)
        if 1 <= hit.start_line <= hit.end_line <= len(lines):
            text = "\n".join(lines[hit.start_line - 1 : hit.end_line])
            if self.keys.chunk_hash(content_hash(text)) == wanted:
                return text
            if hit.start_line == hit.end_line:  # maybe a piece of a line cut by the chunker
                for chunk in chunk_text(path, text)[0]:
                    if self.keys.chunk_hash(chunk.content_hash) == wanted:
                        return chunk.text
        return None

    def _lines(self, path: str) -> list[str] | None:
        try:
            st = os.stat(os.path.join(self.folder, path), follow_symlinks=False)
            sig: tuple[int, int] | None = (st.st_size, st.st_mtime_ns)
        except OSError:
            sig = None
        known = self._texts.get(path)
        if known is not None and sig is not None and known[0] == sig:
            return known[1]
        data = self._read(path)
        text = decode_text(data)[0] if data is not None else None
        lines = None if text is None else text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        if sig is not None:
            self._texts[path] = (sig, lines)
            while len(self._texts) > TEXT_CACHE_FILES:
                self._texts.popitem(last=False)
        return lines

    def stats(self) -> pb.StatsReply:
        return self.client.stats(pb.StatsRequest(tree=self.tree_ref))
