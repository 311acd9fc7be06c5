"""A language server's process started apart from its LSP client, so the hub can start the
servers a window needs before it has imported the client's libraries (pygls, lsprotocol,
cattrs: ``warm.prepare``, 250-700 ms of CPU at the first start) and while it imports them.

Node's basedpyright spends about a second loading its 8.6 MB bundle and typeshed's builtins
before it answers ``initialize``; started after the import, the first squiggle waited for both
in turn. This module imports neither pygls nor lsprotocol: the hub's thread runs it first."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

from forecode_core.windowless import no_window

__all__ = ["kill_group", "start_process"]


async def start_process(argv: list[str], cwd: str) -> asyncio.subprocess.Process:
    """``argv`` started in ``cwd`` with its three standard streams piped (the LSP's stdio), in a
    process group of its own: a wrapper (basedpyright's Python script runs Node as a child)
    dies with the server when the group is killed, and so does whatever it started."""
    return await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
        start_new_session=True,
        **no_window(),
    )


def kill_group(process: asyncio.subprocess.Process) -> None:
    """SIGKILL the server's process group (it leads one: ``start_new_session``)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if hasattr(os, "killpg"):
            os.killpg(process.pid, signal.SIGKILL)
        elif process.returncode is None:  # Windows: no process groups here
            process.kill()
