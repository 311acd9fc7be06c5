"""``CloudClient``: one gRPC channel to the Forecode service; ``CloudChatCall`` and
``CloudApplyCall``, its streams (``forecode_core.streams.Call``: a streamed reply, a streamed
apply).

The channel is built for a long-lived editor session:

- keepalive pings (every 30 s, 10 s to answer, also between calls) so a dead connection is
  noticed during a long reply, not only at the next request;
- reconnection with backoff (0.5 s, growing to 5 s) after the service goes away, so a service
  that comes back is found again within seconds;
- a service config that retries the idempotent calls (``Info/GetInfo``, health ``Check``) on
  UNAVAILABLE, 3 attempts with backoff; ``Chat/Stream`` is never retried (a reply costs the
  service real work, and the router decides what to do instead);
- a deadline on every call, and message size limits.

The token goes into every call's metadata (``authorization: Bearer ...``) by an interceptor; it
is never logged and never part of a repr. Plaintext is allowed only to loopback targets: a
token sent in clear over a network is a token given away.

A call is a blocking iterator over the shared stream events (``forecode_core.streams``: run it
on a worker thread; the chat panel re-emits the events as Qt signals) with a thread-safe
``cancel()``. gRPC failures become ``StreamError`` (``ChatError``) with a short code and a
sentence a user can read.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import threading
from collections.abc import Callable, Generator, Iterator
from typing import Any, NamedTuple

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cloud_client.convert import (
    apply_event_from_pb,
    apply_request_to_pb,
    chat_error,
    event_from_pb,
    params_to_pb,
)
from forecode_core.apply.block import ApplyInput
from forecode_core.apply.events import ApplyDone, ApplyEvent
from forecode_core.apply.pipeline import unfinished_error
from forecode_core.chat.types import ChatDone, ChatError, ChatEvent, ChatParams
from forecode_core.streams import Done, FailureCode, FinishReason
from proto.forecode.v1 import forecode_pb2 as pb
from proto.forecode.v1 import forecode_pb2_grpc as rpc

__all__ = [
    "MAX_MESSAGE_BYTES",
    "CloudApplyCall",
    "CloudChatCall",
    "CloudClient",
    "channel_options",
    "is_loopback",
    "service_summary",
    "split_target",
]

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 32 * 1024 * 1024
"""Largest message the client sends or accepts; the service enforces its own (smaller) limit
and says so with RESOURCE_EXHAUSTED."""

KEEPALIVE_TIME_MS = 30_000
KEEPALIVE_TIMEOUT_MS = 10_000
INITIAL_RECONNECT_BACKOFF_MS = 500
MAX_RECONNECT_BACKOFF_MS = 5_000

_IDEMPOTENT_METHODS = (
    {"service": "forecode.v1.Info", "method": "GetInfo"},
    {"service": "grpc.health.v1.Health", "method": "Check"},
)

SERVICE_CONFIG: dict[str, Any] = {
    "methodConfig": [
        {
            "name": list(_IDEMPOTENT_METHODS),
            "retryPolicy": {
                "maxAttempts": 3,
                "initialBackoff": "0.1s",
                "maxBackoff": "1s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }
    ],
}

_LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


def split_target(target: str) -> tuple[str, int]:
    """``"host:port"`` / ``"[v6]:port"`` (optionally after ``dns:///``) -> (host, port).

    Raises ValueError with the expected form when the target cannot be read."""
    rest = target.strip()
    for scheme in ("dns:///", "dns:", "ipv4:", "ipv6:"):
        if rest.startswith(scheme):
            rest = rest[len(scheme) :]
            break
    host, sep, port_text = rest.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(
            f"cloud service address {target!r} is not HOST:PORT "
            "(for example 127.0.0.1:50051 or forecode.example.com:443)"
        )
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(
            f"cloud service address {target!r}: write an IPv6 host in brackets, [::1]:50051"
        )
    port = int(port_text)
    if not 0 < port < 65536:
        raise ValueError(f"cloud service address {target!r}: port {port} is out of range")
    return host, port


def service_summary(info: dict[str, Any]) -> str:
    """``CloudClient.info`` in words, for the status bar's tooltip: "Qwen2.5 Coder 1.5B
    Instruct, 1 slot, 4,096 tokens of context (llama)"; a service that does not say its
    context (older, or OpenAI-compatible) gets "context not reported"."""
    models = ", ".join(str(m) for m in info.get("models") or ()) or "no model named"
    slots = int(info.get("slots") or 0)
    n_ctx = info.get("n_ctx")
    context = f"{int(n_ctx):,} tokens of context" if n_ctx else "context not reported"
    parts = [models, f"{slots} slot{'' if slots == 1 else 's'}", context]
    backend = str(info.get("backend") or "")
    return ", ".join(parts) + (f" ({backend})" if backend else "")


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and the usual names of this machine's loopback."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def channel_options(server_name: str | None = None) -> list[tuple[str, Any]]:
    """The channel arguments described in the module docstring."""
    options: list[tuple[str, Any]] = [
        ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS),
        ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.initial_reconnect_backoff_ms", INITIAL_RECONNECT_BACKOFF_MS),
        ("grpc.min_reconnect_backoff_ms", INITIAL_RECONNECT_BACKOFF_MS),
        ("grpc.max_reconnect_backoff_ms", MAX_RECONNECT_BACKOFF_MS),
        ("grpc.enable_retries", 1),
        ("grpc.service_config", json.dumps(SERVICE_CONFIG)),
        ("grpc.service_config_disable_resolution", 1),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.primary_user_agent", "forecode-editor"),
    ]
    if server_name:
        options.append(("grpc.ssl_target_name_override", server_name))
    return options


class _CallDetails(NamedTuple):
    method: str
    timeout: float | None
    metadata: Any
    credentials: Any
    wait_for_ready: bool | None
    compression: Any


class _ClientCallDetails(_CallDetails, grpc.ClientCallDetails):
    pass


class _BearerToken(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Adds ``authorization: Bearer <token>`` to every call on the channel."""

    def __init__(self, token: str) -> None:
        self.__token = token

    def __repr__(self) -> str:
        return "_BearerToken(<hidden>)"

    def _details(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        metadata = [(k, v) for k, v in (details.metadata or ()) if k != "authorization"]
        metadata.append(("authorization", f"Bearer {self.__token}"))
        return _ClientCallDetails(
            details.method,
            details.timeout,
            metadata,
            details.credentials,
            details.wait_for_ready,
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(
        self,
        continuation: Callable[..., Any],
        client_call_details: grpc.ClientCallDetails,
        request: Any,
    ) -> Any:
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(
        self,
        continuation: Callable[..., Any],
        client_call_details: grpc.ClientCallDetails,
        request: Any,
    ) -> Any:
        return continuation(self._details(client_call_details), request)


class CloudChatCall:
    """One streamed reply from the service (a ``forecode_core.chat.types.ChatCall``): iterate
    for events, ``cancel()`` from any thread.

    Iterating yields ``ChatStarted(source="cloud")``, ``ChatDelta``s and one ``ChatDone``, and
    blocks while the service thinks. A failure raises ``ChatError`` (see ``convert.chat_error``).
    After ``cancel()`` the iteration ends with ``ChatDone(finish_reason="cancelled")`` instead
    of an error, and the service frees its slot. ``received`` counts the events delivered so
    far (the router uses it to tell a refused call from a reply broken mid-way).
    Abandoning the iterator (``close()`` on it, or letting it be collected) cancels the call.
    """

    def __init__(self, call: Any, target: str) -> None:
        self._call = call
        self._target = target
        self._lock = threading.Lock()
        self._cancelled = False
        self._finished = False
        self.received = 0
        self._events = self._run()

    def __iter__(self) -> Iterator[ChatEvent]:
        return self

    def __next__(self) -> ChatEvent:
        return next(self._events)

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> None:
        """Stop the reply; the iterator then ends with a "cancelled" ChatDone. Thread-safe."""
        with self._lock:
            if self._cancelled or self._finished:
                return
            self._cancelled = True
        self._call.cancel()

    def close(self) -> None:
        """Abandon the reply: cancel it and end the iterator (from the consuming thread; other
        threads use ``cancel()``)."""
        self.cancel()
        with contextlib.suppress(ValueError):  # "generator already executing": another thread
            self._events.close()

    def _convert(self, message: Any) -> ChatEvent:
        return event_from_pb(message, source="cloud")

    def _cancelled_event(self) -> Done:
        return ChatDone(finish_reason=FinishReason.CANCELLED)

    def _run(self) -> Generator[ChatEvent, None, None]:
        done = False
        try:
            for message in self._call:
                try:
                    event = self._convert(message)
                except ValueError as exc:
                    raise ChatError(
                        FailureCode.INTERNAL,
                        f"The Forecode service at {self._target} sent "
                        f"an event this editor does not understand ({exc})",
                    ) from exc
                if self._cancelled:
                    break  # buffered events after cancel() are dropped
                self.received += 1
                done = isinstance(event, Done)
                yield event
                if done:
                    break
        except grpc.RpcError as exc:
            if self._cancelled:
                yield self._cancelled_event()
                return
            code = exc.code() if hasattr(exc, "code") else None
            name = code.name if code is not None else "UNKNOWN"
            details = exc.details() if hasattr(exc, "details") else ""
            raise chat_error(name, details, self._target) from exc
        finally:
            with self._lock:
                finished_early = not done and not self._cancelled
                self._finished = True
            if finished_early:
                self._call.cancel()  # abandoned or failed: free the service's slot
        if self._cancelled:
            yield self._cancelled_event()
        elif not done:
            raise ChatError(
                FailureCode.INTERNAL,
                f"The Forecode service at {self._target} ended the reply without finishing it",
            )


class CloudApplyCall(CloudChatCall):
    """One streamed apply (``CloudClient.apply``; a ``forecode_core.apply.events.ApplyCall``):
    iterate for ``Started`` (a model slot took it; not sent when the deterministic path
    answers), ``Delta``s with the new file's text, then one ``ApplyDone``; ``cancel()`` from
    any thread (the iteration then ends with ``ApplyDone("cancelled")``).

    A model that did not finish the file raises ``ChatError("incomplete")`` after its text:
    what streamed is then not a file to apply. Failures as for ``ChatCall``."""

    def _convert(self, message: Any) -> ApplyEvent:
        event = apply_event_from_pb(message, source="cloud")
        if isinstance(event, ApplyDone) and event.finish_reason == FinishReason.LENGTH:
            raise unfinished_error(event)
        return event

    def _cancelled_event(self) -> Done:
        return ApplyDone(FinishReason.CANCELLED)


class CloudClient:
    """A channel to the service at ``target`` with the token attached to every call."""

    def __init__(
        self,
        target: str,
        token: str,
        *,
        tls: bool | None = None,
        root_certificates: bytes | None = None,
        server_name: str | None = None,
    ) -> None:
        host, _ = split_target(target)
        loopback = is_loopback(host)
        if not token:
            raise ValueError("the cloud service needs an access token")
        if tls is None:
            tls = not loopback
        if not tls and not loopback:
            raise ValueError(
                f"refusing to send the access token in clear text to {target}: "
                "a service off this machine must be reached over TLS"
            )
        self._target = target
        self._tls = tls
        options = channel_options(server_name)
        if tls:
            creds = grpc.ssl_channel_credentials(root_certificates=root_certificates)
            channel = grpc.secure_channel(target, creds, options=options)
        else:
            channel = grpc.insecure_channel(target, options=options)
        self._raw_channel = channel
        self._channel = grpc.intercept_channel(channel, _BearerToken(token))
        self._info_stub = rpc.InfoStub(self._channel)
        self._chat_stub = rpc.ChatStub(self._channel)
        self._apply_stub = rpc.ApplyStub(self._channel)
        self._edits_stub = rpc.EditsStub(self._channel)
        self._health_stub = health_pb2_grpc.HealthStub(self._channel)
        self._closed = False

    def __repr__(self) -> str:
        return f"CloudClient(target={self._target!r}, tls={self._tls})"

    @property
    def target(self) -> str:
        return self._target

    @property
    def tls(self) -> bool:
        return self._tls

    def info(self, timeout: float = 2.0) -> dict[str, Any]:
        """What the service runs; raises ChatError when it cannot say. ``n_ctx`` (a slot's
        context in tokens) is None when the service does not say: one older than the field
        sends nothing, which proto3 reads as 0."""
        try:
            reply = self._info_stub.GetInfo(pb.GetInfoRequest(), timeout=timeout)
        except grpc.RpcError as exc:
            raise self._error(exc) from exc
        return {
            "server_version": reply.server_version,
            "backend": reply.backend,
            "models": list(reply.models),
            "slots": reply.slots,
            "max_message_bytes": reply.max_message_bytes,
            "n_ctx": reply.n_ctx or None,
        }

    def healthy(self, timeout: float = 1.0) -> bool:
        """True when the service answers its health check with SERVING (never raises)."""
        try:
            reply = self._health_stub.Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout
            )
        except grpc.RpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    def chat(self, params: ChatParams, *, timeout: float = 300.0) -> CloudChatCall:
        """Start streaming a reply (returns at once); ``timeout`` bounds the whole reply."""
        if timeout <= 0:
            raise ValueError("a chat call needs a positive timeout")
        try:
            request = params_to_pb(params)
        except ValueError as exc:
            raise ChatError(FailureCode.INVALID, f"The chat request is not valid: {exc}") from exc
        if self._closed:
            raise ChatError(
                FailureCode.CANCELLED, "The connection to the Forecode service is closed"
            )
        call = self._chat_stub.Stream(request, timeout=timeout)
        return CloudChatCall(call, self._target)

    def apply(self, request: ApplyInput, *, timeout: float = 300.0) -> CloudApplyCall:
        """Start applying ``request.block`` to ``request.original`` on the service (returns at
        once); the call streams the new file. ``timeout`` bounds the whole apply."""
        if timeout <= 0:
            raise ValueError("an apply call needs a positive timeout")
        if self._closed:
            raise ChatError(
                FailureCode.CANCELLED, "The connection to the Forecode service is closed"
            )
        message = apply_request_to_pb(
            path=request.path,
            original=request.original,
            block=request.block,
            instruction=request.instruction,
            language=request.language,
        )
        return CloudApplyCall(self._apply_stub.Apply(message, timeout=timeout), self._target)

    def edits(self, params: ChatParams, *, timeout: float = 600.0) -> Any:
        """Start a multi-file edit (``cloud_client.edits.CloudEditsCall``; returns at once):
        the task is ``params``' last message, the files its context. ``timeout`` bounds the
        answer and the resolution of every file."""
        from cloud_client.edits import CloudEditsCall, edits_request_to_pb

        if timeout <= 0:
            raise ValueError("an edits call needs a positive timeout")
        try:
            request = edits_request_to_pb(params)
        except ValueError as exc:
            raise ChatError(FailureCode.INVALID, f"The edit request is not valid: {exc}") from exc
        if self._closed:
            raise ChatError(
                FailureCode.CANCELLED, "The connection to the Forecode service is closed"
            )
        return CloudEditsCall(
            self._edits_stub.Propose(request, timeout=timeout), self._target, params
        )

    def close(self) -> None:
        """Close the channel; calls still running end with CANCELLED."""
        self._closed = True
        self._raw_channel.close()

    def __enter__(self) -> CloudClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _error(self, exc: grpc.RpcError) -> ChatError:
        code = exc.code() if hasattr(exc, "code") else None
        return chat_error(
            code.name if code is not None else "UNKNOWN",
            exc.details() if hasattr(exc, "details") else "",
            self._target,
        )
