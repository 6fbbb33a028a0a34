"""Host threads that run a machine's processes: stopping them before the machine closes.

A Ctrl-C (or a signal the CLI turns into one) reaches the main thread only; the
worker threads run compiled code over the machine's memory and must stop before
that memory is unmapped, or the host process crashes.  Whoever starts workers
makes them `Worker`s, starts them with `start_all`, sets their stop flag and
calls `join_all` in a ``finally`` block.
"""

from __future__ import annotations

import signal
import threading
from typing import Iterable


class Worker(threading.Thread):
    """A daemon thread that says when its target has returned (`done`).

    Thread.join and is_alive cannot be trusted after a Ctrl-C: on CPython 3.11 an exception
    raised in the join of a thread that is still running marks that thread stopped.
    """

    def __init__(self, target, args=(), name: str | None = None):
        super().__init__(target=target, args=args, name=name, daemon=True)
        self.done = threading.Event()

    def run(self) -> None:  # noqa: D102 - threading API
        try:
            super().run()
        finally:
            self.done.set()


def join_all(workers: Iterable[Worker | None]) -> None:
    """Wait until every started worker of `workers` has returned, through further Ctrl-Cs (the
    first one is already on its way up; the workers stop at their next check of their stop flag)."""
    for w in workers:
        while w is not None and w.ident is not None and not w.done.is_set():
            try:
                w.done.wait()
            except KeyboardInterrupt:
                continue


def start_all(threads: Iterable[Worker]) -> None:
    """Start `threads` with SIGINT, SIGTERM and SIGHUP held back meanwhile (in the main thread):
    a handler raising between a thread's start and its first instruction would leave a thread
    running that no `join_all` sees.  The threads keep them blocked: the main thread gets them."""
    held = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    main = threading.current_thread() is threading.main_thread()
    if main:
        signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        for t in threads:
            t.start()
    finally:
        if main:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, held)
