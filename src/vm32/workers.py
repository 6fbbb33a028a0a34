"""Host threads that run a machine's processes: stopping them before the machine closes.

A Ctrl-C (or a signal the CLI turns into one) reaches the main thread only; the
worker threads run compiled code over the machine's memory and must stop before
that memory is unmapped, or the host process crashes.  Whoever starts workers
sets their stop flag and calls `join_all` in a ``finally`` block.
"""

from __future__ import annotations

import threading
from typing import Iterable


def join_all(threads: Iterable[threading.Thread | None]) -> None:
    """Wait for every started thread of `threads`, through further Ctrl-Cs (the first one
    is already on its way up; the threads stop at their next check of their stop flag)."""
    for t in threads:
        while t is not None and t.ident is not None and t.is_alive():
            try:
                t.join()
            except KeyboardInterrupt:
                continue
