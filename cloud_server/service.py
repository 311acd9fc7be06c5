"""The gRPC service: servicers, the bearer-token check, and the server's life cycle.

``start_server(config)`` binds (loopback by default; TLS required anywhere else, see
``ServerConfig``), serves ``forecode.v1`` Info, Chat, Apply and Edits (``cloud_server.edits``)
plus ``grpc.health.v1``, and returns a ``RunningServer``. Completion answers UNIMPLEMENTED for
now; IndexSync is
``cloud_server.index_service`` over an ``IndexStore`` (``index_store``, or the default one
opened on its first call).

Authentication: every ``forecode.v1`` call must carry ``authorization: Bearer <token>``; the
token is compared with each accepted one by ``hmac.compare_digest`` (all of them, every time,
so the timing says nothing about which one nearly matched). A missing or wrong token gets
UNAUTHENTICATED before the request is even deserialised; refusals are counted and logged at a
bounded rate (``guard.RefusalLog``: one line at once, then one summary per
``refusal_log_interval_s``). The health service is open: load balancers and orchestrators
probe it without secrets, and without a token it answers for the whole service whatever name
it is asked about (an unknown name included), so it tells nothing but up or down; with a token
it answers per service (``guard``). ``Health/List`` answers UNIMPLEMENTED.

Calls: a Chat call stops — and frees its model slot at once — when the client cancels or goes
away (``context.add_callback``) or its deadline passes (checked before every decode step).
Messages larger than ``max_message_bytes`` are refused by gRPC with RESOURCE_EXHAUSTED; bytes
that do not parse as the method's request (every method, streamed requests and health
included: ``guard.parsing_handler``), and requests that break the rules of
``convert.params_from_request`` or of ``index_service``, get INVALID_ARGUMENT with the reason
and one short log line, never a traceback. An IndexSync upload may hold at most
``max_upload_pending_bytes`` of file entries until its commit, and one token's uploads
together ``max_upload_pending_bytes_per_token`` (``upload_budget``); more is
RESOURCE_EXHAUSTED. When every slot is busy
and ``max_queue`` calls already wait, a Chat call gets RESOURCE_EXHAUSTED whose details start
"the service is busy" (the client tells it from a size limit by that).

Shutdown (``RunningServer.stop``): health turns NOT_SERVING, no new calls are accepted, the
Info and Chat calls in flight run to their end for up to ``grace_s``, then everything left is
cancelled and the models are freed.

Logging (``forecode.cloud``): call ids, methods, sizes, counts, timings and status codes —
never a token, a prompt or a reply.
"""

from __future__ import annotations

import hmac
import itertools
import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from cloud_server.backends import Backend, create_backend
from cloud_server.config import ConfigError, ServerConfig
from cloud_server.convert import (
    InvalidRequest,
    apply_event_to_pb,
    apply_input_from_request,
    event_to_pb,
    params_from_request,
)
from cloud_server.edits import (
    edits_event_to_pb,
    edits_params_from_request,
    stream_backend_edits,
)
from cloud_server.guard import RefusalLog, parsing_handler
from cloud_server.index_service import IndexSyncServicer
from cloud_server.index_store import IndexStore, open_store
from cloud_server.upload_budget import UploadBudget
from forecode_core.streams import Done, FailureCode, FinishReason, StreamError
from proto.forecode.v1 import forecode_pb2 as pb
from proto.forecode.v1 import forecode_pb2_grpc as rpc

__all__ = [
    "SERVER_VERSION",
    "SERVICE_NAMES",
    "CannotListen",
    "RunningServer",
    "server_options",
    "start_server",
]

log = logging.getLogger("forecode.cloud")

try:
    from importlib.metadata import version as _dist_version

    SERVER_VERSION = _dist_version("forecode")
except Exception:  # running from a source tree that is not installed
    SERVER_VERSION = "0.1.0"

_PACKAGE = "forecode.v1"
SERVICE_NAMES = tuple(
    f"{_PACKAGE}.{name}" for name in ("Info", "Chat", "Completion", "Apply", "Edits", "IndexSync")
)
_HEALTH_PREFIX = f"/{health.SERVICE_NAME}/"

_ERROR_CODES: dict[str, grpc.StatusCode] = {
    FailureCode.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    FailureCode.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    FailureCode.DEADLINE: grpc.StatusCode.DEADLINE_EXCEEDED,
    FailureCode.INVALID: grpc.StatusCode.INVALID_ARGUMENT,
    FailureCode.TOO_LARGE: grpc.StatusCode.RESOURCE_EXHAUSTED,
    # the details start "the service is busy"
    FailureCode.BUSY: grpc.StatusCode.RESOURCE_EXHAUSTED,
    FailureCode.CANCELLED: grpc.StatusCode.CANCELLED,
    FailureCode.INTERNAL: grpc.StatusCode.INTERNAL,
    # an answer refused (Edits: not a well-formed set); the details start "incomplete: "
    FailureCode.INCOMPLETE: grpc.StatusCode.FAILED_PRECONDITION,
}


class _CallEnd(StrEnum):
    """How a streamed call ended, in its log line (besides "done (...)" and a failure's code)."""

    UNFINISHED = "unfinished"  # no Done yet
    STOPPED = "stopped"  # the backend's Done said "cancelled": the client stopped it
    CANCELLED_OR_EXPIRED = "cancelled or expired"  # the call ended before a Done


class CannotListen(OSError):
    """The address cannot be bound (the port is taken, the address is not this machine's)."""


# ---------------------------------------------------------------------------------------------
# authentication


def _bearer(metadata: Sequence[tuple[str, Any]] | None) -> bytes | None:
    for key, value in metadata or ():
        if key == "authorization":
            text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
            scheme, _, token = text.strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip().encode("utf-8", "surrogateescape")
            return b""
    return None


class _AuthInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, tokens: Sequence[str], refusals: RefusalLog) -> None:
        self._tokens = [t.encode("utf-8") for t in tokens]
        self.refusals = refusals

    def _match(self, token: bytes | None) -> int | None:
        """Which accepted token this is (its index), or None."""
        if token is None:
            return None
        # Compare with every token (no early exit), each in constant time.
        results = [hmac.compare_digest(token, t) for t in self._tokens]
        return results.index(True) if any(results) else None

    def caller(self, context: grpc.ServicerContext) -> Hashable:
        """The identity of a call's (accepted) token, for limits per token: its index among
        the accepted ones (the token itself never leaves this object)."""
        return self._match(_bearer(context.invocation_metadata()))

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        method = details.method
        token = _bearer(details.invocation_metadata)
        handler = continuation(details)
        if handler is None:
            return None  # an unknown method: gRPC answers UNIMPLEMENTED
        accepted = self._match(token) is not None
        if method.startswith(_HEALTH_PREFIX):
            # Open, but without a token it answers only for the whole service (guard).
            return parsing_handler(handler, method, None if accepted else _overall_health_request)
        if accepted:
            return parsing_handler(handler, method)
        why = "missing bearer token" if token is None else "a wrong bearer token"
        self.refusals.refused(method, why)
        message = (
            "missing bearer token (authorization metadata)"
            if token is None
            else "the bearer token is not accepted"
        )
        return _denying_handler(handler, message)


class _HealthServicer(health.HealthServicer):  # type: ignore[misc]
    """grpc-health-checking's servicer, but ``List`` (which would name every service, and
    which that package leaves to raise NotImplementedError with a traceback in the log)
    answers UNIMPLEMENTED plainly."""

    def List(self, request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "Health/List is not served; ask Check")


def _overall_health_request(request: Any) -> Any:
    """A health request as a caller without a token may ask it: about the whole service."""
    return health_pb2.HealthCheckRequest(service="")


def _denying_handler(handler: Any, message: str) -> Any:
    def deny(request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    def deny_stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, message)
        yield from ()

    # The request is not deserialised (raw bytes): nothing of it is parsed before the check.
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(deny_stream)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(deny)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(deny_stream)
    return grpc.unary_unary_rpc_method_handler(deny)


# ---------------------------------------------------------------------------------------------
# servicers


class _InFlight:
    """Counts the Info/Chat calls running, for the shutdown drain. A call counts until its
    handler returns or the RPC ends, whichever comes first (gRPC may never resume a streaming
    handler whose client went away)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._n = 0

    def enter(self, context: grpc.ServicerContext) -> Callable[[], None]:
        with self._cond:
            self._n += 1
        left = threading.Event()

        def leave() -> None:
            with self._cond:
                if left.is_set():
                    return
                left.set()
                self._n -= 1
                self._cond.notify_all()

        context.add_callback(leave)
        return leave

    @property
    def count(self) -> int:
        return self._n

    def wait_idle(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._n == 0, timeout)


class _InfoServicer(rpc.InfoServicer):
    def __init__(self, backend: Backend, config: ServerConfig, in_flight: _InFlight) -> None:
        self._backend = backend
        self._config = config
        self._in_flight = in_flight

    def GetInfo(self, request: pb.GetInfoRequest, context: grpc.ServicerContext) -> pb.ServiceInfo:
        leave = self._in_flight.enter(context)
        try:
            info = self._backend.info()
            return pb.ServiceInfo(
                server_version=SERVER_VERSION,
                backend=str(info.get("backend", "")),
                models=[str(m) for m in info.get("models", [])],
                slots=int(info.get("slots", 0)),
                max_message_bytes=self._config.max_message_bytes,
                n_ctx=int(info.get("n_ctx", 0) or 0),
            )
        finally:
            leave()


class _StreamingServicer:
    """What Chat and Apply share around a backend's stream (the token was already checked by
    ``_AuthInterceptor``): a call id and the drain count, request validation (INVALID_ARGUMENT),
    a stop signal for the backend (cancelled, expired or finished, or the deadline passed), a
    stream the backend stopped mapped to DEADLINE_EXCEEDED or UNAVAILABLE (shutting down), a
    ``StreamError`` mapped to its status code, and one log line at the end with the outcome."""

    def __init__(self, backend: Backend, in_flight: _InFlight) -> None:
        self._backend = backend
        self._in_flight = in_flight
        self._ids = itertools.count(1)

    def _serve(
        self,
        kind: str,
        request: Any,
        context: grpc.ServicerContext,
        *,
        parse: Callable[[Any], Any],
        describe: Callable[[Any, Any], tuple[str, tuple[object, ...]]],
        stream: Callable[[Any, Callable[[], bool]], Iterable[Any]],
        to_pb: Callable[[Any], Any | None],
        done_outcome: Callable[[Any], str],
    ) -> Iterator[Any]:
        """Serve one call: ``parse(request)`` (may raise ``InvalidRequest``);
        ``describe(request, parsed)`` gives the request's log line (format and arguments:
        sizes and counts only, never the text); ``stream(parsed, should_stop)`` is the
        backend's events (``forecode_core.streams``), each sent as ``to_pb(event)`` (None: not
        sent) up to its ``Done``."""
        call = next(self._ids)
        began = time.monotonic()
        leave = self._in_flight.enter(context)
        try:
            try:
                parsed = parse(request)
            except InvalidRequest as exc:
                log.info("%s %d: invalid request (%s)", kind, call, type(exc).__name__)
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            fmt, args = describe(request, parsed)
            log.info(f"%s %d: {fmt}", kind, call, *args)
            ended = threading.Event()
            context.add_callback(ended.set)  # cancelled, expired, or finished

            def should_stop() -> bool:
                if ended.is_set() or not context.is_active():
                    return True
                remaining = context.time_remaining()
                return remaining is not None and remaining <= 0

            outcome: str = _CallEnd.UNFINISHED
            try:
                for event in stream(parsed, should_stop):
                    if isinstance(event, Done):
                        if event.finish_reason == FinishReason.CANCELLED:
                            outcome = _CallEnd.STOPPED
                            _abort_stopped(context)
                            return
                        outcome = f"done ({done_outcome(event)})"
                    message = to_pb(event)
                    if message is not None:
                        yield message
            except StreamError as exc:
                outcome = exc.code
                context.abort(_ERROR_CODES.get(exc.code, grpc.StatusCode.INTERNAL), exc.message)
            finally:
                if outcome == _CallEnd.UNFINISHED and ended.is_set():
                    outcome = _CallEnd.CANCELLED_OR_EXPIRED
                log.info(
                    "%s %d: %s after %.0f ms",
                    kind,
                    call,
                    outcome,
                    (time.monotonic() - began) * 1000.0,
                )
        finally:
            leave()


def _abort_stopped(context: grpc.ServicerContext) -> None:
    """The backend stopped a stream that was not cancelled: its deadline passed, or the
    service is shutting down. (A cancelled call's context is no longer active.)"""
    if context.is_active():
        remaining = context.time_remaining()
        if remaining is not None and remaining <= 0:
            context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "the call's deadline passed")
        context.abort(grpc.StatusCode.UNAVAILABLE, "the service is shutting down")


class _ChatServicer(_StreamingServicer, rpc.ChatServicer):
    def Stream(
        self, request: pb.ChatRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.ChatEvent]:
        yield from self._serve(
            "chat",
            request,
            context,
            parse=params_from_request,
            describe=lambda req, params: (
                "%d messages, %d context items, %d bytes",
                (len(params.messages), len(params.context), req.ByteSize()),
            ),
            stream=lambda params, should_stop: self._backend.stream_chat(
                params, should_stop=should_stop
            ),
            to_pb=event_to_pb,
            done_outcome=lambda done: str(done.finish_reason),
        )


def _unimplemented(what: str) -> Callable[..., Any]:
    def handler(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(
            grpc.StatusCode.UNIMPLEMENTED, f"{what} is not served by this Forecode service yet"
        )

    return handler


class _CompletionServicer(rpc.CompletionServicer):
    Complete = _unimplemented("Completion (completions run on the local engine)")


class _ApplyServicer(_StreamingServicer, rpc.ApplyServicer):
    """Apply on the backend's slots (``stream_apply``). Cancel and deadline as for Chat."""

    def Apply(
        self, request: pb.ApplyRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.ApplyEvent]:
        yield from self._serve(
            "apply",
            request,
            context,
            parse=apply_input_from_request,
            describe=lambda req, inp: (
                "%d bytes of file, %d of block, instruction %s",
                (
                    len(req.original.encode()),
                    len(req.block.encode()),
                    "yes" if req.instruction.strip() else "no",
                ),
            ),
            stream=lambda inp, should_stop: self._backend.stream_apply(
                inp, should_stop=should_stop
            ),
            to_pb=apply_event_to_pb,
            done_outcome=lambda done: f"{done.source}, {done.finish_reason}",
        )


class _EditsServicer(_StreamingServicer, rpc.EditsServicer):
    """Multi-file edits (``cloud_server.edits``): the backend's chat answers, its apply
    resolves each file against the text the request carries. Cancel and deadline as for
    Chat."""

    def Propose(
        self, request: pb.EditsRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.EditsEvent]:
        yield from self._serve(
            "edits",
            request,
            context,
            parse=edits_params_from_request,
            describe=lambda req, params: (
                "%d messages, %d context items, %d bytes",
                (len(params.messages), len(params.context), req.ByteSize()),
            ),
            stream=lambda params, should_stop: stream_backend_edits(
                self._backend, params, should_stop
            ),
            to_pb=edits_event_to_pb,
            done_outcome=lambda done: (
                f"{done.finish_reason}, {len(getattr(done, 'files', ()))} files"
            ),
        )


# ---------------------------------------------------------------------------------------------
# the server


@dataclass
class RunningServer:
    """A started service. ``stop`` drains and shuts it down; ``wait`` blocks until it has."""

    config: ServerConfig
    port: int
    backend: Backend
    _server: grpc.Server
    _health: health.HealthServicer
    _in_flight: _InFlight
    _stopped: threading.Event
    _stop_lock: threading.Lock
    _owns_backend: bool
    refusals: RefusalLog  # calls refused for their token, counted
    uploads: UploadBudget  # IndexSync upload bytes held until their commits

    @property
    def address(self) -> str:
        host = self.config.host
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    @property
    def in_flight(self) -> int:
        return self._in_flight.count

    def stop(self, grace: float | None = None) -> None:
        """NOT_SERVING, refuse new calls, let Info/Chat calls in flight finish for up to
        ``grace`` seconds (default ``config.grace_s``), cancel the rest, and close the
        backend if ``start_server`` created it (a backend passed in belongs to the caller)."""
        grace = self.config.grace_s if grace is None else grace
        with self._stop_lock:
            if self._stopped.is_set():
                return
            log.info(
                "shutting down: draining %d calls for up to %.1f s", self._in_flight.count, grace
            )
            self._health.enter_graceful_shutdown()
            self._server.stop(grace)  # stops accepting at once; cancels after grace
            log.info("new calls are refused now")
            drained = self._in_flight.wait_idle(grace)
            self._server.stop(None).wait()  # health watches and stragglers: cancel now
            if self._owns_backend:
                self.backend.close()
            self.refusals.close()
            self._stopped.set()
            log.info("stopped (%s)", "drained" if drained else "cancelled the calls left")

    def wait(self, timeout: float | None = None) -> bool:
        return self._stopped.wait(timeout)


# The editor's channel pings every 30 s, also between calls (cloud_client.client): the server
# must accept that, or it answers GOAWAY "too_many_pings" and drops idle editors (by default it
# allows one ping per 5 minutes without data, and none without calls). The channel argument is
# "grpc.http2.min_ping_interval_without_data_ms" (gRPC core's GRPC_ARG_HTTP2_MIN_RECV_PING_...):
# a misspelt name is ignored silently, and idle clients were dropped after three pings.
MIN_CLIENT_PING_INTERVAL_MS = 10_000
KEEPALIVE_TIME_MS = 60_000  # the server's own pings: a client gone without a FIN ...
KEEPALIVE_TIMEOUT_MS = 20_000  # ... is noticed within 80 s, and its call (and slot) freed


def server_options(config: ServerConfig) -> list[tuple[str, Any]]:
    """The gRPC server's channel arguments: message limits and keepalive."""
    return [
        ("grpc.max_receive_message_length", config.max_message_bytes),
        ("grpc.max_send_message_length", config.max_message_bytes),
        ("grpc.so_reuseport", 0),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", MIN_CLIENT_PING_INTERVAL_MS),
        ("grpc.http2.max_ping_strikes", 2),
        ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS),
        ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
    ]


def _credentials(config: ServerConfig) -> grpc.ServerCredentials:
    assert config.tls_cert is not None and config.tls_key is not None
    try:
        cert = Path(config.tls_cert).read_bytes()
        key = Path(config.tls_key).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the TLS certificate or key: {exc}") from None
    return grpc.ssl_server_credentials([(key, cert)])


def start_server(
    config: ServerConfig,
    backend: Backend | None = None,
    *,
    index_store: IndexStore | None = None,
    interceptors: Sequence[grpc.ServerInterceptor] = (),
) -> RunningServer:
    """Load the backend (unless given: then the caller closes it), bind, start serving; see
    the module docstring. ``index_store`` serves IndexSync (the caller closes it); without one
    the default store (``index_store.open_store()``) opens on the first IndexSync call.
    ``interceptors`` run before the token check (an audit that records raw requests)."""
    config.validate()
    credentials = _credentials(config) if config.tls else None
    own_backend = backend is None
    if backend is None:
        backend = create_backend(config)
    try:
        refusals = RefusalLog(config.refusal_log_interval_s)
        auth = _AuthInterceptor(config.tokens, refusals)
        uploads = UploadBudget(
            config.max_upload_pending_bytes,
            config.max_upload_pending_bytes_per_token,
            config.max_uploads,
        )
        server = grpc.server(
            ThreadPoolExecutor(
                max_workers=config.thread_pool_size, thread_name_prefix="forecode-cloud"
            ),
            interceptors=[*interceptors, auth],
            options=server_options(config),
        )
        in_flight = _InFlight()
        health_servicer = _HealthServicer()
        rpc.add_InfoServicer_to_server(_InfoServicer(backend, config, in_flight), server)
        rpc.add_ChatServicer_to_server(_ChatServicer(backend, in_flight), server)
        rpc.add_CompletionServicer_to_server(_CompletionServicer(), server)
        rpc.add_ApplyServicer_to_server(_ApplyServicer(backend, in_flight), server)
        rpc.add_EditsServicer_to_server(_EditsServicer(backend, in_flight), server)
        rpc.add_IndexSyncServicer_to_server(
            IndexSyncServicer(
                index_store if index_store is not None else open_store,
                max_message_bytes=config.max_message_bytes,
                budget=uploads,
                caller=auth.caller,
            ),
            server,
        )
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        host = config.host
        bind = f"[{host}]:{config.port}" if ":" in host else f"{host}:{config.port}"
        try:
            port = (
                server.add_secure_port(bind, credentials)
                if credentials is not None
                else server.add_insecure_port(bind)
            )
        except RuntimeError as exc:
            raise CannotListen(f"cannot listen on {bind} ({exc}); is the port in use?") from None
        if not port:
            raise CannotListen(f"cannot listen on {bind}; is the port in use?")
        server.start()
    except BaseException:
        if own_backend:
            backend.close()
        raise
    for name in ("", *SERVICE_NAMES):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    running = RunningServer(
        config,
        port,
        backend,
        server,
        health_servicer,
        in_flight,
        threading.Event(),
        threading.Lock(),
        own_backend,
        refusals,
        uploads,
    )
    log.info(
        "listening on %s (%s, backend %s)",
        running.address,
        "TLS" if config.tls else "plaintext loopback",
        config.backend,
    )
    return running
