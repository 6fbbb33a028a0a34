"""A binary copy of each parsed trace, so a trace file is parsed once and then loaded.

    load(path, format) -> Trace | None      the copy, if one matches the file as it is now
    store(path, format, trace)              keep a copy (best effort: failures are ignored)

Copies live in ``$VM32_TRACE_CACHE`` or else ``~/.cache/vm32/traces`` (under
``$XDG_CACHE_HOME`` if set), one ``.npz`` file per trace file and format, about
5 bytes per reference; delete them at will.  A copy is keyed by the file's real
path, size and modification time, the format asked for and this module's
READER_VERSION, so an edited file is parsed again.  ``VM32_TRACE_CACHE=off``
turns the cache off.  Files smaller than MIN_BYTES are not worth a copy.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from vm32.errors import InvalidArgument
from vm32.files import atomic_output
from vm32.trace.fold import FoldReport
from vm32.trace.readers import Trace

READER_VERSION = 1  # bump when parsing or folding changes what a trace file gives
MIN_BYTES = 1 << 20


def cache_dir() -> Path | None:
    """Where copies are kept, or None when the cache is off."""
    value = os.environ.get("VM32_TRACE_CACHE")
    if value is not None:
        return None if value.strip().lower() in ("", "0", "off", "no", "false") else Path(value)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vm32" / "traces"


def _entry(path: str | os.PathLike, fmt: str) -> Path | None:
    where = cache_dir()
    if where is None:
        return None
    try:
        real = Path(path).resolve()
        st = real.stat()
    except OSError:
        return None
    if st.st_size < MIN_BYTES:
        return None
    key = f"{real}\0{st.st_size}\0{st.st_mtime_ns}\0{fmt}\0{READER_VERSION}".encode()
    return where / f"{real.name}.{hashlib.sha1(key).hexdigest()[:16]}.npz"


def load(path: str | os.PathLike, fmt: str) -> Trace | None:
    """The kept copy of trace file `path` read as `fmt`, or None."""
    entry = _entry(path, fmt)
    if entry is None or not entry.is_file():
        return None
    try:
        with np.load(entry, allow_pickle=False) as z:
            folding = FoldReport(int(z["chunks"]), int(z["shared"]), z["chunk_of_place"])
            trace = Trace(z["vpns"], z["writes"], str(path), str(z["format"]), folding, int(z["lines"]))
    except (OSError, ValueError, KeyError):
        return None
    trace.meta["cached"] = str(entry)
    return trace


def store(path: str | os.PathLike, fmt: str, trace: Trace) -> None:
    """Keep a copy of `trace`, read from `path` as `fmt` (written whole, or not at all)."""
    entry = _entry(path, fmt)
    if entry is None:
        return
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(entry) as f:
            np.savez(f, vpns=trace.vpns, writes=trace.writes, format=np.array(trace.format),
                     chunks=trace.folding.chunks, shared=trace.folding.shared,
                     chunk_of_place=trace.folding.chunk_of_place, lines=trace.lines)
    except (OSError, InvalidArgument):  # a copy that cannot be kept is only a missed speed-up
        pass
