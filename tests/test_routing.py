"""Where a request goes and the chat router's state (``forecode_core.routing``): pure tables;
``tests/test_router.py`` runs the router that uses them over a real loopback service."""

from __future__ import annotations

import pytest

from forecode_core.routing import ROUTES, RequestKind, Route, route, router_state, use_cloud
from forecode_core.states import ServiceState

# configured, cloud_up, local_available -> state, use_cloud
TABLE = [
    (False, False, False, ServiceState.OFFLINE, False),
    (False, False, True, ServiceState.OFFLINE, False),
    (False, True, True, ServiceState.OFFLINE, False),  # (no service: never "up")
    (True, True, True, ServiceState.CLOUD, True),
    (True, True, False, ServiceState.CLOUD, True),
    (True, False, True, ServiceState.LOCAL, False),  # down: the local model answers
    (True, False, False, ServiceState.OFFLINE, True),  # nothing to lose by trying again
]


@pytest.mark.parametrize(("configured", "up", "local", "state", "cloud"), TABLE)
def test_router_state_and_use_cloud(
    configured: bool, up: bool, local: bool, state: ServiceState, cloud: bool
) -> None:
    facts = {"configured": configured, "cloud_up": up, "local_available": local}
    assert router_state(**facts) is state
    assert use_cloud(**facts) is cloud


@pytest.mark.parametrize(
    ("kind", "cloud", "where"),
    [
        ("completion", True, Route.LOCAL),  # latency beats size
        ("completion", False, Route.LOCAL),
        ("chat", True, Route.CLOUD),
        ("chat", False, Route.LOCAL),
        (RequestKind.APPLY, True, Route.CLOUD),
        ("edits", False, Route.LOCAL),
    ],
)
def test_route(kind: str, cloud: bool, where: Route) -> None:
    assert route(kind, cloud=cloud) is where


def test_an_unknown_kind_is_named() -> None:
    with pytest.raises(ValueError, match="unknown request kind 'poetry'"):
        route("poetry", cloud=True)


def test_the_values_are_the_strings_the_router_reported() -> None:
    assert {k: str(v) for k, v in ROUTES.items()} == {
        "completion": "local",
        "chat": "cloud",
        "apply": "cloud",
        "edits": "cloud",
    }
    assert [str(s) for s in (ServiceState.CLOUD, ServiceState.LOCAL, ServiceState.OFFLINE)] == [
        "cloud",
        "local",
        "offline",
    ]
