"""Threads the UI thread starts without waiting for them to run.

``threading.Thread.start`` blocks its caller until the new thread has run its first
instructions. On a busy machine that is a wait for a core: ``bench lsp --ui`` sampled the UI
thread in ``Thread.start`` for 10-50 ms when the git executor started its first worker while
the language servers indexed on both cores of a 2-core machine. So:

- ``UiThread`` is a ``threading.Thread`` whose ``start()`` called on the main (UI) thread
  hands the thread to one long-lived launcher thread, which starts it; the caller returns at
  once. ``is_alive()`` is true from ``start()`` on (a thread handed over counts as running),
  and ``join()`` first waits for the launch. Called on any other thread, ``start()`` is the
  ordinary one.
- ``SerialExecutor`` is a one-worker ``concurrent.futures.Executor`` (the editor's git,
  backup, file, diff and related-files queues) whose worker is a ``UiThread`` started when the
  executor is made: a ``submit`` never starts a thread (``ThreadPoolExecutor`` starts its
  worker in the first ``submit``, on the caller's thread).
- The launcher itself is the one ``Thread.start`` the UI thread waits for: made by the first
  ``UiThread.start()`` on it, which is while the window is built, before it shows (the
  documents' ``SerialExecutor``), or by ``prestart()``.

Qt's own ``QThreadPool`` (``app.ui.tasks.BackgroundTask``) does not wait for a thread it
starts, so it needs none of this.
"""

from __future__ import annotations

import atexit
import queue
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, Generic, ParamSpec, TypeVar

__all__ = ["SerialExecutor", "UiThread", "prestart"]

_P = ParamSpec("_P")
_T = TypeVar("_T")


class _Launcher:
    """One daemon thread that starts the threads handed to it, in order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[UiThread] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def ensure(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="forecode-thread-launcher", daemon=True
                )
                self._thread.start()

    def hand(self, thread: UiThread) -> None:
        self.ensure()
        self._queue.put(thread)

    def _run(self) -> None:
        while True:
            thread = self._queue.get()
            try:
                thread._launch()
            except BaseException as exc:  # kept for the joiner, never lost
                thread._launch_failed(exc)


_LAUNCHER = _Launcher()


def prestart() -> None:
    """Start the launcher thread now (at start-up, before the first window shows)."""
    _LAUNCHER.ensure()


def _on_ui_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


class UiThread(threading.Thread):
    """A ``threading.Thread`` whose ``start()`` on the UI thread never waits (module doc)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._handed = False
        self._launched = threading.Event()
        self._launch_error: BaseException | None = None

    def start(self) -> None:
        if self._handed:
            raise RuntimeError("threads can only be started once")
        self._handed = True
        if _on_ui_thread():
            _LAUNCHER.hand(self)
        else:
            self._launch()

    def _launch(self) -> None:
        try:
            super().start()
        finally:
            self._launched.set()

    def _launch_failed(self, exc: BaseException) -> None:
        self._launch_error = exc

    @property
    def launched(self) -> bool:
        """The launcher has started it (or tried to: ``join`` raises its error)."""
        return self._launched.is_set()

    def is_alive(self) -> bool:
        if self._handed and not self._launched.is_set():
            return True
        return self._launch_error is None and super().is_alive()

    def join(self, timeout: float | None = None) -> None:
        if not self._handed:
            raise RuntimeError("cannot join thread before it is started")
        if not self._launched.wait(timeout):
            return
        if self._launch_error is not None:
            raise RuntimeError(f"the thread could not start: {self._launch_error}")
        super().join(timeout)


_LIVE: weakref.WeakSet[SerialExecutor] = weakref.WeakSet()


def _finish_at_exit() -> None:
    """As ``ThreadPoolExecutor`` does at interpreter exit: the jobs queued run, then the
    workers end (a file operation or a backup is never cut off by the exit)."""
    for executor in list(_LIVE):
        executor.shutdown(wait=True)


# concurrent.futures' own hook: it runs before non-daemon threads are joined.
getattr(threading, "_register_atexit", atexit.register)(_finish_at_exit)


class SerialExecutor(Executor):
    """An executor with one worker thread, started (off the UI thread) when it is made; jobs
    run in submission order. ``shutdown`` as ``ThreadPoolExecutor``'s: ``wait`` joins the
    worker after the queued jobs, ``cancel_futures`` cancels the ones not started; at exit the
    queued jobs run first, as with ``ThreadPoolExecutor``."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[_Job[Any] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._shutdown = False
        # The worker holds the queue, not the executor: one dropped unshut ends its worker.
        self._worker = UiThread(target=_work, args=(self._jobs,), name=name, daemon=True)
        self._worker.start()
        weakref.finalize(self, self._jobs.put, None)
        _LIVE.add(self)

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]:
        future: Future[_T] = Future()
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._jobs.put(_Job(future, lambda: fn(*args, **kwargs)))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            if not self._shutdown:
                self._shutdown = True
                if cancel_futures:
                    self._cancel_queued()
                self._jobs.put(None)
        if wait and threading.current_thread() is not self._worker:
            self._worker.join()

    def _cancel_queued(self) -> None:
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            if job is not None:
                job.future.cancel()


def _work(jobs: queue.SimpleQueue[_Job[Any] | None]) -> None:
    while True:
        job = jobs.get()
        if job is None:
            return
        job.run()
        # dropped now, as ThreadPoolExecutor drops its work item: a job kept while the
        # worker waits would hold its closure (often a window's QObject) until the next job,
        # and release it on this thread once the UI side has let it go
        del job


class _Job(Generic[_T]):
    __slots__ = ("call", "future")

    def __init__(self, future: Future[_T], call: Callable[[], _T]) -> None:
        self.future = future
        self.call = call

    def run(self) -> None:
        if not self.future.set_running_or_notify_cancel():
            return
        try:
            result = self.call()
        except BaseException as exc:  # handed to the future's owner
            self.future.set_exception(exc)
        else:
            self.future.set_result(result)
