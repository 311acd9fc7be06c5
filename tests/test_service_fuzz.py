"""A bounded fuzz and load run against the real gRPC service on loopback (issue 13).

``bench.service_load.Driver`` (the driver ``python -m bench service_load`` uses against a
service process) runs here against ``start_server`` in this process, so that what must be true
afterwards can be read exactly: no call in flight, every model slot free, nothing queued, no
upload bytes held. The backend is the real ``openai`` backend (slots, queue, cancellation, the
HTTP connection shut on a cancelled call) in front of ``FakeUpstream``, which answers in
milliseconds; a real model goes through the service in ``tests/test_cloud_service.py``.

Fuzz: 2,000 messages across every method of every ``forecode.v1`` service and both health
methods (random bytes, random well-formed messages, cut or flipped ones, one call in ten
without a token). Load: 50 clients, each its own channel, for 5 seconds: chats read, cancelled
after the first event, never read; applies; committed and never-committed uploads (cancelled
or stalled to their deadline); index and info calls; a health probe every 20 ms throughout.

Must hold: 0 INTERNAL or UNKNOWN statuses, 0 hangs, no traceback or ERROR in the log, health
SERVING at every probe, and afterwards the upstream idle, the slots free (and all ``slots``
chats at once run), the uploads' ledger empty.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bench.service_load import Driver, FakeUpstream
from cloud_server.config import ServerConfig
from cloud_server.index_store import open_store
from cloud_server.service import start_server

TOKEN = "fuzz-and-load-test-token-0123456789"
SLOTS = 4
FUZZ_MESSAGES = 2000
CLIENTS = 50
LOAD_SECONDS = 5.0


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.slow
def test_fuzz_and_load_leave_the_service_whole(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    upstream = FakeUpstream()
    store = open_store(tmp_path / "index")
    running = start_server(
        ServerConfig(
            tokens=(TOKEN,),
            backend="openai",
            openai_url=upstream.url,
            openai_model="fake",
            slots=SLOTS,
            max_queue=64,
            grace_s=0,
        ),
        index_store=store,
    )
    pool = running.backend.pool  # type: ignore[attr-defined]
    try:
        driver = Driver(f"127.0.0.1:{running.port}", TOKEN)
        driver.fuzz(FUZZ_MESSAGES)
        tally = driver.tally
        assert tally.calls >= FUZZ_MESSAGES // 4  # streamed calls carry up to 4 messages
        driver.load(CLIENTS, LOAD_SECONDS)

        assert tally.internal == 0, (tally.statuses, tally.examples)
        assert tally.hangs == 0, tally.statuses
        assert tally.statuses["OK"] > 100 and tally.statuses["CANCELLED"] > 10, tally.statuses
        assert tally.statuses["INVALID_ARGUMENT"] > 200, tally.statuses
        # Health answered SERVING at every probe, all along the load.
        assert tally.health_failures == 0
        assert len(tally.health_ms) >= 20

        # Afterwards: nothing left running, every slot free, nothing held.
        assert upstream.wait_idle(20) == 0
        assert wait_until(lambda: running.in_flight == 0), running.in_flight
        assert wait_until(lambda: pool.busy() == 0 and pool.queued() == 0), (
            pool.busy(),
            pool.queued(),
        )
        assert wait_until(lambda: running.uploads.held() == 0), running.uploads.held()
        assert driver.slots_all_run(SLOTS)
        assert driver.health_ok()
    finally:
        running.stop(0)
        store.close()
        upstream.close()
    for record in caplog.records:
        assert record.levelno < logging.ERROR, (record.name, record.getMessage())
        assert record.exc_info is None, (record.name, record.getMessage())
    assert "Traceback" not in caplog.text
