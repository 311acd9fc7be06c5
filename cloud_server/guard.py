"""What stands between the network and the servicers: request parsing that answers bad bytes
with INVALID_ARGUMENT, health that tells strangers only up or down, and a refusal log whose size
does not depend on how hard someone knocks.

Parsing. gRPC's own deserialisation answers bytes that are not the method's request with
INTERNAL ("the server failed") and logs a traceback for each: a stream of garbage was 663
INTERNAL statuses and 1.4 MB of log per 10,000 messages. ``parsing_handler`` takes the
deserialiser out of gRPC's hands and parses inside the call, for every kind of method (unary
or streamed requests): bytes that do not parse end the call with INVALID_ARGUMENT and one short
INFO line (method, size, error type; never the bytes). A streamed request is parsed message by
message as the servicer reads it; a bad message raises ``MalformedRequest`` inside the servicer,
which must let it through (``index_service`` does), and the call ends with INVALID_ARGUMENT.

Health. Without an accepted token, a health ``Check`` or ``Watch`` answers for the whole
service whatever ``service`` it names: a name that exists, one that does not and ``""`` get the
same answer (SERVING or NOT_SERVING), so a stranger learns nothing about which services exist,
while load balancers configured with a service name keep working. With a token the answer is
per service, as ``grpc.health.v1`` specifies (an unknown name: NOT_FOUND).

Refusals. A call refused for its token is counted (``RefusalLog.total``, by reason), and
logged at a bounded rate: the first refusal after a quiet interval at once (method and reason),
the rest as one summary line per interval with their count. 2,000 refused calls a second write
one line every ``interval_s`` seconds, not 2,000.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import grpc

__all__ = ["MalformedRequest", "RefusalLog", "parsing_handler"]

log = logging.getLogger("forecode.cloud")


class MalformedRequest(ValueError):
    """A streamed request's message is not the method's request message. Servicers that catch
    ``Exception`` must re-raise it (or answer INVALID_ARGUMENT themselves)."""

    def __init__(self, size: int, error: str) -> None:
        super().__init__(f"{size} bytes that are not a request message ({error})")
        self.size = size
        self.error = error


def _refuse_malformed(context: grpc.ServicerContext, method: str, size: int, error: str) -> None:
    log.info("refused a call to %s: %d bytes that are not its request (%s)", method, size, error)
    context.abort(
        grpc.StatusCode.INVALID_ARGUMENT, f"the request is not a valid message for {method}"
    )


def parsing_handler(
    handler: Any, method: str, transform: Callable[[Any], Any] | None = None
) -> Any:
    """``handler`` with its requests parsed inside the call (see the module docstring);
    ``transform`` maps each parsed request before the servicer sees it."""
    parse = handler.request_deserializer
    if parse is None:
        return handler
    serialize = handler.response_serializer

    def one(raw: bytes, context: grpc.ServicerContext) -> Any:
        try:
            request = parse(raw)
        except Exception as exc:  # DecodeError and kin; the text names no byte of the request
            _refuse_malformed(context, method, len(raw), type(exc).__name__)
        return request if transform is None else transform(request)

    def many(raws: Iterator[bytes]) -> Iterator[Any]:
        for raw in raws:
            try:
                request = parse(raw)
            except Exception as exc:
                raise MalformedRequest(len(raw), type(exc).__name__) from None
            yield request if transform is None else transform(request)

    if not handler.request_streaming and not handler.response_streaming:
        unary = handler.unary_unary

        def unary_unary(raw: bytes, context: grpc.ServicerContext) -> Any:
            return unary(one(raw, context), context)

        return grpc.unary_unary_rpc_method_handler(unary_unary, response_serializer=serialize)

    if not handler.request_streaming:
        behaviour = handler.unary_stream

        def unary_stream(raw: bytes, context: grpc.ServicerContext) -> Iterator[Any]:
            request = one(raw, context)
            yield from behaviour(request, context)

        return grpc.unary_stream_rpc_method_handler(unary_stream, response_serializer=serialize)

    if not handler.response_streaming:
        gather = handler.stream_unary

        def stream_unary(raws: Iterator[bytes], context: grpc.ServicerContext) -> Any:
            try:
                return gather(many(raws), context)
            except MalformedRequest as exc:
                _refuse_malformed(context, method, exc.size, exc.error)

        return grpc.stream_unary_rpc_method_handler(stream_unary, response_serializer=serialize)

    both = handler.stream_stream

    def stream_stream(raws: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[Any]:
        try:
            yield from both(many(raws), context)
        except MalformedRequest as exc:
            _refuse_malformed(context, method, exc.size, exc.error)

    return grpc.stream_stream_rpc_method_handler(stream_stream, response_serializer=serialize)


class RefusalLog:
    """Counts refused calls and logs them at most about once per ``interval_s`` (see the
    module docstring). ``close`` writes what is still counted and stops the timer."""

    def __init__(self, interval_s: float, logger: logging.Logger = log) -> None:
        self.interval_s = interval_s
        self._log = logger
        self._lock = threading.Lock()
        self._by_reason: Counter[str] = Counter()
        self._unlogged: Counter[str] = Counter()
        self._last_line = -float("inf")
        self._timer: threading.Timer | None = None
        self._closed = False

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self._by_reason.values())

    def by_reason(self) -> dict[str, int]:
        with self._lock:
            return dict(self._by_reason)

    def refused(self, method: str, reason: str) -> None:
        """Count one refused call to ``method`` (``reason``: a few words, never a secret)."""
        line = False
        with self._lock:
            self._by_reason[reason] += 1
            now = time.monotonic()
            if self._timer is None and now - self._last_line >= self.interval_s:
                self._last_line = now
                line = True
            else:
                self._unlogged[reason] += 1
                if self._timer is None and not self._closed:
                    delay = max(0.0, self._last_line + self.interval_s - now)
                    self._timer = threading.Timer(delay, self._flush)
                    self._timer.daemon = True
                    self._timer.name = "forecode-cloud-refusals"
                    self._timer.start()
        if line:
            self._log.warning(
                "refused a call to %s: %s (more refusals are counted and logged "
                "at most once every %g s)",
                method,
                reason,
                self.interval_s,
            )

    def _flush(self) -> None:
        with self._lock:
            unlogged, self._unlogged = self._unlogged, Counter()
            self._timer = None
            self._last_line = time.monotonic()
            total = sum(self._by_reason.values())
        if unlogged:
            reasons = ", ".join(f"{n} {why}" for why, n in sorted(unlogged.items()))
            self._log.warning(
                "refused %d more calls in the last %g s (%s); %d since the start",
                sum(unlogged.values()),
                self.interval_s,
                reasons,
                total,
            )

    def close(self) -> None:
        with self._lock:
            self._closed = True
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        self._flush()
