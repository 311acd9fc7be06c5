"""Where a request goes, and the chat router's state, as values and pure functions
(``cloud_client.router.Router`` holds the facts and the threads; these decide).

- ``RequestKind``: what is asked; ``ROUTES``: where each kind goes when the service answers
  (completions always run locally: latency beats size).
- ``Route``: the local model or the service; the values are a stream's ``Started.source``.
- ``router_state``: the router's ``ServiceState`` (``CLOUD``, ``LOCAL`` or ``OFFLINE``) from
  what it knows; ``use_cloud``: whether a request that may go to the service tries it.

The values are the strings the router always used, so ``on_state(state, detail)``, the
editor's ``Signal(str, str)`` and the logs are unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from forecode_core.states import ServiceState

__all__ = ["ROUTES", "RequestKind", "Route", "route", "router_state", "use_cloud"]


class RequestKind(StrEnum):
    COMPLETION = "completion"
    CHAT = "chat"
    APPLY = "apply"
    EDITS = "edits"


class Route(StrEnum):
    LOCAL = "local"  # the editor's engine worker
    CLOUD = "cloud"  # the Forecode service


ROUTES: Mapping[RequestKind, Route] = {
    RequestKind.COMPLETION: Route.LOCAL,
    RequestKind.CHAT: Route.CLOUD,
    RequestKind.APPLY: Route.CLOUD,
    RequestKind.EDITS: Route.CLOUD,
}


def router_state(*, configured: bool, cloud_up: bool, local_available: bool) -> ServiceState:
    """``OFFLINE`` without a service, ``CLOUD`` while it is believed reachable, else ``LOCAL``
    when the local model can answer (``OFFLINE`` when it cannot either)."""
    if not configured:
        return ServiceState.OFFLINE
    if cloud_up:
        return ServiceState.CLOUD
    return ServiceState.LOCAL if local_available else ServiceState.OFFLINE


def use_cloud(*, configured: bool, cloud_up: bool, local_available: bool) -> bool:
    """Whether a request for the service tries it: while it is up, and (with no local model,
    nothing is lost by trying again) while there is no other way."""
    return configured and (cloud_up or not local_available)


def route(kind: str, *, cloud: bool) -> Route:
    """Where a request of ``kind`` goes; ``cloud``: ``use_cloud`` says the service is tried.
    ValueError names an unknown kind."""
    if kind not in ROUTES:
        raise ValueError(f"unknown request kind {kind!r} (expected one of {', '.join(ROUTES)})")
    if ROUTES[RequestKind(kind)] is Route.LOCAL:
        return Route.LOCAL
    return Route.CLOUD if cloud else Route.LOCAL
