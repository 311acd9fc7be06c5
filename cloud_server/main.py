"""``forecode-cloud`` / ``python -m cloud_server``: run the service until a signal.

The accepted token comes from ``FORECODE_CLOUD_TOKEN`` or ``--token-file``, never from the
command line (every user of the machine can read it in ``ps``); without one the service does
not start (exit 2). Once serving it prints exactly one line to stdout,
``forecode-cloud listening on HOST:PORT`` (the editor reads the port from it when it asked for
``--port 0``); everything else goes to stderr. SIGTERM and SIGINT drain and exit 0.
``--exit-on-stdin-eof`` ties the service's life to a pipe: the editor spawns it with one, and
when the editor dies, even by SIGKILL, the pipe closes and the service shuts down.

The codebase index (the IndexSync service) lives in ``--index-dir`` (default: ``index`` in
Forecode's data folder, see ``index_store.default_index_dir``), in the store ``--index-store``
names: ``embedded`` (SQLite + numpy, no server) or ``milvus`` (needs the ``forecode[milvus]``
extra; Milvus Lite in the index dir, or a cluster at ``--milvus-uri``, its token from
``FORECODE_MILVUS_TOKEN``). The store is opened before the service listens, so a bad one fails
at once with a message rather than on the first sync.

Exit codes: 0 after a signal or stdin EOF, 1 when the backend cannot start (bad model, port in
use), 2 for a bad command line or configuration (an index store that cannot open included).
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import signal
import sys
import threading
from typing import IO, Any

from cloud_server.config import (
    BACKEND_NAMES,
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_MAX_UPLOAD_PENDING_BYTES,
    DEFAULT_MAX_UPLOAD_PENDING_BYTES_PER_TOKEN,
    INDEX_STORE_KINDS,
    TOKEN_ENV,
    BackendName,
    ConfigError,
    ServerConfig,
    StoreKind,
    openai_key_from_env,
    read_token_file,
)

__all__ = ["main"]

log = logging.getLogger("forecode.cloud")

MILVUS_TOKEN_ENV = "FORECODE_MILVUS_TOKEN"
# The index store kinds (``cloud_server.index_store.STORE_KINDS``, kept in step by a test) are
# in the config, so that ``--help`` and a bad value load neither numpy nor the store.


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="forecode-cloud",
        description="Forecode's gRPC service. The access token comes from the environment "
        f"variable {TOKEN_ENV} or --token-file, never from the command line.",
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; others need TLS)",
    )
    p.add_argument("--port", type=int, default=0, help="port (default 0: any free port)")
    p.add_argument("--token-file", help="file with the accepted tokens, one per line")
    p.add_argument("--tls-cert", help="PEM certificate chain (needed off loopback)")
    p.add_argument("--tls-key", help="PEM private key")
    p.add_argument("--backend", default=BackendName.LLAMA.value, choices=BACKEND_NAMES)
    p.add_argument("--model", help="GGUF model for the llama backend (default: the bundled one)")
    p.add_argument("--slots", type=int, default=2, help="requests served at once (default 2)")
    p.add_argument("--n-ctx", type=int, default=4096, help="context tokens per slot")
    p.add_argument("--max-tokens", type=int, default=512, help="default reply length cap")
    p.add_argument(
        "--max-queue",
        type=int,
        default=16,
        help="requests waiting for a slot; more are refused as busy (default 16)",
    )
    p.add_argument(
        "--max-message-bytes",
        type=int,
        default=DEFAULT_MAX_MESSAGE_BYTES,
        help="largest request accepted (default 4 MiB); larger ones get RESOURCE_EXHAUSTED",
    )
    p.add_argument(
        "--max-upload-pending-bytes",
        type=int,
        default=DEFAULT_MAX_UPLOAD_PENDING_BYTES,
        help="file entries and deletions one index upload may hold until its "
        "commit (default 8 MiB); more get RESOURCE_EXHAUSTED",
    )
    p.add_argument(
        "--max-upload-pending-bytes-per-token",
        type=int,
        default=DEFAULT_MAX_UPLOAD_PENDING_BYTES_PER_TOKEN,
        help="the same for all the uploads of one token together (default 16 MiB)",
    )
    p.add_argument(
        "--max-uploads",
        type=int,
        default=8,
        help="index uploads at once; more get RESOURCE_EXHAUSTED (default 8)",
    )
    p.add_argument("--grace", type=float, default=5.0, help="shutdown drain time in seconds")
    p.add_argument(
        "--openai-url",
        help="base URL of an OpenAI-compatible server (key from FORECODE_OPENAI_API_KEY)",
    )
    p.add_argument("--openai-model", help="model name to ask that server for")
    p.add_argument(
        "--index-dir",
        help="folder of the codebase index store (default: 'index' in Forecode's "
        "data folder, or $FORECODE_INDEX_DIR)",
    )
    p.add_argument(
        "--index-store",
        default=StoreKind.EMBEDDED.value,
        choices=INDEX_STORE_KINDS,
        help="embedded: SQLite + numpy in --index-dir, no server (default); milvus: "
        "embeddings in Milvus through pymilvus (needs forecode[milvus]): Milvus "
        "Lite in --index-dir, or the cluster at --milvus-uri",
    )
    p.add_argument(
        "--milvus-uri",
        help="with --index-store milvus: a Milvus Lite file (PATH.db) or a cluster "
        f"(http://host:19530; its token from {MILVUS_TOKEN_ENV})",
    )
    p.add_argument(
        "--exit-on-stdin-eof",
        action="store_true",
        help="shut down when stdin closes (the spawning editor is gone)",
    )
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    return p


def _token_on_argv(argv: list[str]) -> bool:
    return any(a == "--token" or a.startswith("--token=") for a in argv)


def _private_stdout() -> IO[str]:
    """A private copy of stdout for the one listening line; fd 1 then points at stderr, so
    nothing a native library prints can reach the editor's parser."""
    sys.stdout.flush()
    fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(fd, "w", encoding="utf-8")


def _watch_stdin(stop: threading.Event, serving: threading.Event) -> None:
    # os.read on the descriptor, not sys.stdin.buffer: a daemon thread blocked inside the
    # buffered reader holds its lock, and the interpreter aborts (SIGABRT) when it finds that
    # lock taken at exit — every SIGTERM would end with a crash instead of exit code 0.
    try:
        while os.read(0, 65536):
            pass
    except OSError:
        pass
    log.info("stdin closed: the parent is gone")
    stop.set()
    if not serving.is_set():
        # Still loading (a native call that cannot be interrupted) or opening the store:
        # nothing is served yet, so nothing is lost by leaving now.
        logging.shutdown()
        os._exit(0)


def _open_index_store(args: argparse.Namespace) -> Any:
    """The store the flags name (``ConfigError`` when it cannot open, in words)."""
    if args.milvus_uri and args.index_store != StoreKind.MILVUS:
        raise ConfigError("--milvus-uri needs --index-store milvus")
    if args.index_store == StoreKind.MILVUS and importlib.util.find_spec("pymilvus") is None:
        raise ConfigError(
            "--index-store milvus needs pymilvus, which is not installed: "
            "pip install 'forecode[milvus]' (or use --index-store embedded)"
        )
    from cloud_server.index_store import StoreDamaged, default_index_dir, open_store

    folder = args.index_dir or default_index_dir()
    try:
        return open_store(
            folder,
            args.index_store,
            milvus_uri=args.milvus_uri or None,
            milvus_token=os.environ.get(MILVUS_TOKEN_ENV) or None,
        )
    except StoreDamaged as exc:  # its own words: the file, what is wrong, what to do
        raise ConfigError(str(exc)) from None
    except Exception as exc:  # a foreign index, an unwritable folder, Milvus unreachable
        raise ConfigError(
            f"cannot open the {args.index_store} index store in {folder}: "
            f"{type(exc).__name__}: {exc}"
        ) from None


def main(argv: list[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else list(argv)
    prog = "forecode-cloud"
    if _token_on_argv(args_list):
        print(
            f"{prog}: error: tokens are never taken from the command line (other users can "
            f"read it); set {TOKEN_ENV} or use --token-file",
            file=sys.stderr,
        )
        return 2
    args = _parser().parse_args(args_list)

    try:
        if args.token_file:
            tokens = read_token_file(args.token_file)
        elif os.environ.get(TOKEN_ENV, "").strip():
            tokens = (os.environ[TOKEN_ENV].strip(),)
        else:
            raise ConfigError(f"no access token: set {TOKEN_ENV} or pass --token-file")
        config = ServerConfig(
            host=args.host,
            port=args.port,
            tokens=tokens,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            backend=args.backend,
            model_path=args.model,
            slots=args.slots,
            n_ctx=args.n_ctx,
            default_max_tokens=args.max_tokens,
            max_queue=args.max_queue,
            max_message_bytes=args.max_message_bytes,
            grace_s=args.grace,
            openai_url=args.openai_url,
            openai_model=args.openai_model,
            max_upload_pending_bytes=args.max_upload_pending_bytes,
            max_upload_pending_bytes_per_token=args.max_upload_pending_bytes_per_token,
            max_uploads=args.max_uploads,
            openai_api_key=openai_key_from_env(),
        )
    except ConfigError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2

    logging.basicConfig(
        level=args.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    out = _private_stdout()
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        log.info("received %s", signal.Signals(signum).name)
        stop.set()

    serving = threading.Event()
    if args.exit_on_stdin_eof:
        # Watched from before the model loads (tens of seconds on a busy CPU): an editor that
        # dies meanwhile must not leave a service holding gigabytes until the load ends.
        threading.Thread(
            target=_watch_stdin, args=(stop, serving), name="forecode-cloud-stdin", daemon=True
        ).start()

    from cloud_server.service import start_server  # loads grpc (and the model) only now

    try:
        store = _open_index_store(args)
    except ConfigError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    log.info("index store: %s in %s", store.kind, store.folder)
    try:
        running = start_server(config, index_store=store)
    except ConfigError as exc:
        store.close()
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        store.close()
        log.error("cannot start: %s: %s", type(exc).__name__, exc)
        return 1
    out.write(f"forecode-cloud listening on {running.address}\n")
    out.flush()
    serving.set()
    # Only now: a Python handler runs between bytecodes, so during the model load (one native
    # call) it would wait for the load to end. Until here SIGTERM's default ends the process
    # at once, and nothing is served yet that a drain could finish.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stop.wait(0.5):
        pass
    running.stop()
    store.close()
    return 0
