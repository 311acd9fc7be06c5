"""The ``index`` benchmark: the codebase index's sync and search through the real gRPC service.

One run, the service in-process on 127.0.0.1 with a fresh token and a fresh store (``--store``,
default ``embedded``), reached through ``cloud_client.index_sync`` exactly as the editor does.

(a) Reconciling after one edit in a synthetic tree of ``--files`` files (default 100,000; 10 x 10
    x 10 folders, the files spread over the 1,000 leaves, so a file sits at depth 4). The
    service first receives the whole tree (one commit of every file's obfuscated path and keyed
    hash: exactly "sending the full list of file hashes", whose bytes are ``full_list_bytes``);
    then one file changes and the client reconciles (GetNodes, one call per level) and commits
    it. ``sync_bytes_ratio`` = bytes of that sync (GetNodes requests + replies + the commit,
    gRPC message bytes) / ``full_list_bytes``, target <= 0.001; ``sync_round_trips`` = its calls,
    target <= ``tree_depth`` + 1.
(b) ``second_client_embedded``: chunks embedded by a second client (same workspace key, its own
    tree) indexing a copy of an already indexed repository (target 0).
(c) ``chunks_per_s``: the first index of that repository (scan, chunk, embed with the real
    all-MiniLM-L6-v2 on llama.cpp in the editor's embedding process, upload, commit) in chunks
    per second of wall time;
    ``first_query_s``: from the start of that index until the first search is answered (a first
    index commits in growing batches, so that is after its first batch, not its last).
``search_at_scale``: search latency (through gRPC; median of 9, and the first, cold, query)
    over a tree of ``--scale-chunks`` chunks (default 100,000) of random vectors and terms.
(d) ``recall_at_10`` on the Python standard library (code this project did not write): every
    docstring is removed from the indexed modules; a function's docstring is the query and the
    function (its line range, without the docstring) the target; a hit is a top-10 result in
    the target's file whose lines overlap it. By ``vector``, ``lexical`` and ``combined`` (the
    service's reciprocal-rank fusion), and ``combined_reranked`` (the client's plaintext rerank
    of the service's top 30).

``--quick``: 2,000 synthetic files and two small modules (for tests). Timings are wall-clock
on a shared 2-core machine; the counts and recalls are what the figures are for.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import random
import secrets
import shutil
import sysconfig
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_ROUNDS = 1

# Modules or packages of the standard library (a name is a package folder or a .py file).
FULL_MODULES = (
    "json",
    "email",
    "http",
    "urllib",
    "logging",
    "argparse",
    "textwrap",
    "shutil",
    "pathlib",
    "difflib",
    "calendar",
    "csv",
    "gzip",
    "configparser",
    "statistics",
    "fractions",
    "string",
    "heapq",
    "functools",
    "tempfile",
    "ipaddress",
    "ftplib",
    "smtplib",
    "tarfile",
    "zipfile",
    "pprint",
    "shlex",
    "fnmatch",
    "glob",
    "bisect",
    "base64",
    "uuid",
    "random",
    "pickle",
    "subprocess",
)
QUICK_MODULES = ("textwrap", "heapq")
MIN_DOCSTRING = 40
MIN_FUNCTION_LINES = 3
TOP_K = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quick", action="store_true", help="2,000 synthetic files and two small stdlib modules"
    )
    parser.add_argument(
        "--files",
        type=int,
        default=None,
        help="files in the synthetic tree (default 100000; 2000 with --quick)",
    )
    parser.add_argument(
        "--queries",
        type=int,
        default=None,
        help="docstring queries for recall (default 400; 16 with --quick)",
    )
    parser.add_argument("--store", default="embedded", help="index store kind on the service")
    parser.add_argument(
        "--scale-chunks",
        type=int,
        default=None,
        help="chunks of the search-latency tree (default 100000; 2000 quick)",
    )


# ---------------------------------------------------------------------------------------------
# (a) the synthetic tree


def _synthetic_tree(keys: Any, files: int) -> Any:
    from forecode_core.index.merkle import MerkleTree

    tree = MerkleTree(keys)
    per_leaf = -(-files // 1000)
    n = 0
    for a in range(10):
        for b in range(10):
            for c in range(10):
                for f in range(per_leaf):
                    if n == files:
                        return tree
                    path = f"pkg{a}/mod{b}/part{c}/file_{f:04d}.py"
                    tree.set_digest(path, hashlib.sha256(path.encode()).digest())
                    n += 1
    return tree


def _commit(
    client: Any,
    ref: Any,
    base: bytes | None,
    new_root: bytes,
    entries: Sequence[Any],
    budget: int = 1 << 20,
) -> Any:
    from proto.forecode.v1 import forecode_pb2 as pb

    messages = [pb.UploadRequest(tree=ref, base_root=base or b"", new_root=new_root)]
    size = 0
    for entry in entries:
        cost = entry.ByteSize() + 4
        if size + cost > budget:
            messages.append(pb.UploadRequest())
            size = 0
        messages[-1].files.append(entry)
        size += cost
    messages[-1].commit = True
    return client.upload(messages)


def _reconcile_bench(client: Any, keys: Any, files: int) -> dict[str, Any]:
    from cloud_client.index_sync import new_tree_id, reconcile_remote
    from proto.forecode.v1 import forecode_pb2 as pb

    began = time.perf_counter()
    tree = _synthetic_tree(keys, files)
    built_s = time.perf_counter() - began
    ref = pb.TreeRef(workspace_id=keys.key_id, tree_id=new_tree_id())
    entries = [pb.FileEntry(path=obf, file_hash=leaf) for _p, obf, leaf in tree.wire_files()]
    before = client.traffic.snapshot()
    began = time.perf_counter()
    _commit(client, ref, None, tree.root_hash, entries)
    upload_s = time.perf_counter() - began
    after = client.traffic.snapshot()
    full_list = after[1] - before[1]  # every file's path and hash, as the wire carries them

    edited = "pkg3/mod1/part4/file_0000.py"
    tree.set_digest(edited, hashlib.sha256(b"an edit").digest())
    start = client.traffic.snapshot()
    began = time.perf_counter()
    plan = reconcile_remote(client, ref, tree)
    middle = client.traffic.snapshot()
    assert list(plan.upload) == [edited] and not plan.delete, plan
    _commit(
        client,
        ref,
        plan.remote_root,
        tree.root_hash,
        [pb.FileEntry(path=tree.obfuscated(edited), file_hash=tree.node_hash(edited))],
    )
    sync_s = time.perf_counter() - began
    end = client.traffic.snapshot()
    get_nodes_bytes = (middle[1] - start[1]) + (middle[2] - start[2])
    sync_bytes = (end[1] - start[1]) + (end[2] - start[2])
    return {
        "files": tree.file_count,
        "tree_depth": tree.depth,
        "full_list_bytes": full_list,
        "sync_bytes": sync_bytes,
        "get_nodes_bytes": get_nodes_bytes,
        "commit_bytes": sync_bytes - get_nodes_bytes,
        "get_nodes_calls": plan.calls,
        "sync_round_trips": end[0] - start[0],
        "sync_bytes_ratio": sync_bytes / full_list,
        "tree_build_s": round(built_s, 3),
        "full_upload_s": round(upload_s, 3),
        "sync_s": round(sync_s, 4),
    }


def _search_at_scale(store: Any, client: Any, chunks: int) -> dict[str, Any]:
    """Search latency over a tree of ``chunks`` files of one chunk each (random unit vectors,
    20 of 5,000 keyed terms each), put straight into the store, searched through gRPC."""
    import numpy as np

    from cloud_client.index_sync import new_tree_id
    from cloud_server.index_store import ChunkRecord, ChunkRef, FileRecord
    from forecode_core.index.crypto import WorkspaceKeys, generate_workspace_key
    from proto.forecode.v1 import forecode_pb2 as pb

    keys = WorkspaceKeys(generate_workspace_key())
    rng = np.random.default_rng(0)
    tree = _synthetic_tree(keys, chunks)
    vocab = [keys.token_hash(f"word{i}") for i in range(5000)]
    vectors = rng.standard_normal((chunks, 384)).astype(np.float32)
    picks = rng.integers(0, 5000, size=(chunks, 20))
    records, files = [], []
    for i, (_path, obf, leaf) in enumerate(tree.wire_files()):
        chunk_hash = hashlib.sha256(b"chunk %d" % i).digest()
        terms = tuple(dict.fromkeys(vocab[j] for j in picks[i]))
        records.append(ChunkRecord(chunk_hash, vectors[i], terms, (1,) * len(terms)))
        files.append(FileRecord(obf, leaf, (ChunkRef(chunk_hash, 1, 30),)))
    began = time.perf_counter()
    for start in range(0, len(records), 5000):
        store.put_chunks(keys.key_id, records[start : start + 5000])
    put_s = time.perf_counter() - began
    tree_id = new_tree_id()
    began = time.perf_counter()
    store.commit(keys.key_id, tree_id, None, tree.root_hash, files, [])
    commit_s = time.perf_counter() - began

    def ask(mode: pb.SearchMode) -> float:
        query = rng.standard_normal(384).astype(np.float32)
        request = pb.SearchRequest(
            tree=pb.TreeRef(workspace_id=keys.key_id, tree_id=tree_id),
            root_hash=tree.root_hash,
            embedding=query.tolist(),
            term_hashes=b"".join(vocab[:3]),
            top_k=TOP_K,
            mode=mode,
        )
        began = time.perf_counter()
        reply = client.search(request)
        assert len(reply.hits) == TOP_K
        return (time.perf_counter() - began) * 1000.0

    first = ask(pb.SEARCH_MODE_COMBINED)
    out: dict[str, Any] = {
        "chunks": chunks,
        "put_s": round(put_s, 2),
        "commit_s": round(commit_s, 2),
        "first_ms": round(first, 2),
    }
    for name, mode in (
        ("vector", pb.SEARCH_MODE_VECTOR),
        ("lexical", pb.SEARCH_MODE_LEXICAL),
        ("combined", pb.SEARCH_MODE_COMBINED),
    ):
        times = sorted(ask(mode) for _ in range(9))
        out[f"{name}_ms"] = round(times[len(times) // 2], 2)
    return out


# ---------------------------------------------------------------------------------------------
# (d) the stdlib corpus


@dataclass(frozen=True)
class Target:
    path: str  # in the corpus repository
    name: str  # qualified name
    start: int  # first line (decorators included) in the stripped file
    end: int
    query: str  # the docstring


def _docstring_nodes(tree: ast.Module) -> list[tuple[ast.AST, ast.Expr]]:
    out: list[tuple[ast.AST, ast.Expr]] = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                out.append((node, body[0]))
    return out


def _qualified(tree: ast.Module) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    """Functions by qualified name (names defined twice are left out)."""
    found: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
    twice: set[str] = set()

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    if name in found:
                        twice.add(name)
                    found[name] = child
                visit(child, name + ".")

    visit(tree, "")
    return {k: v for k, v in found.items() if k not in twice}


def strip_docstrings(source: str) -> tuple[str, dict[str, str]] | None:
    """The source without any docstring (a body left empty gets ``pass``), and the
    docstrings of the functions whose docstring could be removed cleanly, by qualified name.
    None when the module cannot be handled."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    lines = source.splitlines()
    cuts: list[tuple[int, int, str | None]] = []
    docs: dict[int, str] = {}
    for node, expr in _docstring_nodes(tree):
        assert expr.end_lineno is not None and expr.end_col_offset is not None
        first, last = lines[expr.lineno - 1], lines[expr.end_lineno - 1]
        if first[: expr.col_offset].strip() or last[expr.end_col_offset :].strip():
            continue  # shares a line with other code
        body = getattr(node, "body", [])
        filler = " " * expr.col_offset + "pass" if len(body) == 1 else None
        cuts.append((expr.lineno, expr.end_lineno, filler))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            docs[id(node)] = ast.get_docstring(node, clean=True) or ""
    for start, end, filler in sorted(cuts, reverse=True):
        lines[start - 1 : end] = [filler] if filler is not None else []
    stripped = "\n".join(lines) + "\n"
    try:
        ast.parse(stripped)
    except SyntaxError:
        return None
    by_name = _qualified(tree)
    return stripped, {name: docs[id(node)] for name, node in by_name.items() if id(node) in docs}


def build_corpus(repo: Path, modules: Sequence[str]) -> list[Target]:
    """Copy ``modules`` of the standard library into ``repo`` without their docstrings; the
    targets are the functions with a docstring of at least ``MIN_DOCSTRING`` characters and a
    body of at least ``MIN_FUNCTION_LINES`` lines once it is gone."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    sources: list[Path] = []
    for name in modules:
        package, module = stdlib / name, stdlib / f"{name}.py"
        if package.is_dir():
            sources += sorted(package.rglob("*.py"))
        elif module.is_file():
            sources.append(module)
    targets: list[Target] = []
    for source in sources:
        rel = source.relative_to(stdlib).as_posix()
        if "/test" in rel or rel.startswith("test"):
            continue
        result = strip_docstrings(source.read_text(encoding="utf-8"))
        if result is None:
            continue
        stripped, docs = result
        out = repo / "stdlib" / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(stripped, encoding="utf-8")
        for name, node in _qualified(ast.parse(stripped)).items():
            query = docs.get(name, "")
            assert node.end_lineno is not None
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            if len(query) >= MIN_DOCSTRING and node.end_lineno - start + 1 >= MIN_FUNCTION_LINES:
                targets.append(Target(f"stdlib/{rel}", name, start, node.end_lineno, query))
    return targets


def _recall(sync: Any, targets: Sequence[Target], vectors: Any) -> dict[str, float]:
    modes = {
        "vector": ("vector", False),
        "lexical": ("lexical", False),
        "combined": ("combined", False),
        "combined_reranked": ("combined", True),
    }
    hits = dict.fromkeys(modes, 0)
    for target, vector in zip(targets, vectors, strict=True):
        for key, (mode, rerank) in modes.items():
            results = sync.search(
                target.query, top_k=TOP_K, mode=mode, use_rerank=rerank, embedding=vector
            )
            if any(
                r.path == target.path and r.start_line <= target.end and r.end_line >= target.start
                for r in results
            ):
                hits[key] += 1
    return {k: round(v / max(1, len(targets)), 4) for k, v in hits.items()}


class _Counted:
    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0
        self.texts = 0

    def embed(
        self,
        texts: Sequence[str],
        *,
        progress: Callable[[int, int], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> Any:
        self.calls += 1
        self.texts += len(texts)
        return self.inner.embed(texts, progress=progress, cancelled=cancelled)


# ---------------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    from cloud_client.index_sync import IndexSync, IndexSyncClient, new_tree_id
    from cloud_server.config import ServerConfig
    from cloud_server.index_store import open_store
    from cloud_server.service import start_server
    from forecode_core.index.crypto import WorkspaceKeys, generate_workspace_key
    from local_models.index.embed_client import EmbedWorker
    from local_models.index.embed_model import ensure_embed_model

    quick = bool(args.quick)
    files = args.files or (2000 if quick else 100_000)
    queries = args.queries or (16 if quick else 400)
    modules = QUICK_MODULES if quick else FULL_MODULES
    token = secrets.token_urlsafe(32)
    work = Path(tempfile.mkdtemp(prefix="forecode-bench-index-"))
    store = open_store(work / "store", args.store)
    config = ServerConfig(
        tokens=(token,),
        backend="openai",
        openai_url="http://127.0.0.1:9",
        openai_model="unused",
        max_message_bytes=8 << 20,
        grace_s=0.0,
    )
    server = start_server(config, index_store=store)
    client = IndexSyncClient(f"127.0.0.1:{server.port}", token, timeout=600.0)
    embedder = EmbedWorker()  # the editor's embedding process, as the editor starts it
    embedder.start()
    try:
        synthetic = _reconcile_bench(client, WorkspaceKeys(generate_workspace_key()), files)
        at_scale = _search_at_scale(
            store, client, args.scale_chunks or (2000 if quick else 100_000)
        )

        repo = work / "repo"
        targets = build_corpus(repo, modules)
        keys = WorkspaceKeys(generate_workspace_key())
        first = _Counted(embedder)
        sync = IndexSync(repo, keys, client, first, tree_id=new_tree_id())
        probe = targets[0].query if targets else "open a file"
        probe_vector = embedder.embed([probe])[0]
        answered: list[float] = []

        def progress(stage: str, done: int, total: int) -> None:
            # The first moment a query can be answered: right after the first commit (a first
            # index commits in batches), on the sync's own thread between two steps.
            if not answered and sync.synced_root is not None:
                q_began = time.perf_counter()
                sync.search(probe, top_k=TOP_K, embedding=probe_vector)
                answered.extend((time.perf_counter(), time.perf_counter() - q_began))

        began = time.perf_counter()
        report = sync.sync(progress=progress)
        index_s = time.perf_counter() - began
        if not answered:  # committed in one go: the first query comes after the sync
            progress("done", 1, 1)

        copy = work / "repo-copy"
        shutil.copytree(repo, copy)
        second = _Counted(embedder)
        teammate = IndexSync(copy, keys, client, second, tree_id=new_tree_id())
        second_report = teammate.sync()

        sample = random.Random(0).sample(targets, min(queries, len(targets)))
        q_vectors = embedder.embed([t.query for t in sample])
        recall_began = time.perf_counter()
        recall = _recall(sync, sample, q_vectors)
        recall_s = time.perf_counter() - recall_began
        stats = sync.stats()
    finally:
        embedder.close()
        client.close()
        server.stop(0)
        store.close()
        shutil.rmtree(work, ignore_errors=True)

    depth = synthetic["tree_depth"]
    return {
        "sync_bytes_ratio": round(synthetic["sync_bytes_ratio"], 6),
        "sync_round_trips": synthetic["sync_round_trips"],
        "tree_depth": depth,
        "second_client_embedded": second_report.chunks_embedded,
        "chunks_per_s": round(report.chunks_referenced / index_s, 2),
        "first_query_s": round(answered[0] - began, 3),
        "recall_at_10": recall,
        "targets": {
            "sync_bytes_ratio_max": 0.001,
            "sync_round_trips_max": depth + 1,
            "second_client_embedded": 0,
            "met": bool(
                synthetic["sync_bytes_ratio"] <= 0.001
                and synthetic["sync_round_trips"] <= depth + 1
                and second_report.chunks_embedded == 0
            ),
        },
        "synthetic": synthetic,
        "search_at_scale": at_scale,
        "index": {
            "files": report.files_uploaded,
            "chunks": report.chunks_referenced,
            "chunks_embedded": report.chunks_embedded,
            "sync_s": round(index_s, 3),
            "embed_calls": first.calls,
            "first_query_latency_s": round(answered[1], 4),
            "commits": stats.commits,
            "bytes_sent": report.bytes_sent,
            "tree_chunks": stats.tree_chunks,
        },
        "second_client": {
            "chunks_embedded": second_report.chunks_embedded,
            "chunks_uploaded": second_report.chunks_uploaded,
            "embed_calls": second.calls,
            "bytes_sent": second_report.bytes_sent,
            "sync_s": round(second_report.seconds, 3),
        },
        "corpus": {
            "modules": list(modules),
            "targets": len(targets),
            "queries": len(sample),
            "recall_s": round(recall_s, 2),
        },
        "store": store.kind,
        "embedding_model": Path(ensure_embed_model()).name,
        "quick": quick,
    }
