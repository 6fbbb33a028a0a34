"""Allocation traces: a program's sequence of allocations and frees, in a versioned file.

Format (version 1): an `.npz` (numpy's zip of arrays) with exactly these members:

    version   int32 scalar, 1
    program   unicode scalar: what was recorded (a program's file name, or a synthetic name)
    events    int32[n]: event i >= 0 allocates that many 32-bit words (its *handle* is i);
              event i < 0 frees the block of handle -event - 1, an earlier allocation
              that is still live

A UM program's trace is its map / unmap sequence (`vm32 um run P --record-allocs F`), so
an allocation of n words is n * 4 bytes.  `load` validates the whole file before anyone
uses it: a missing member, a wrong type or version, or a free of a handle that is not a
live allocation is `BadTrace` naming the file and, for events, the index of the first bad
one.  `save` writes through vm32.files.atomic_output: a failed or interrupted save (a
SIGKILL too) leaves neither a half-written trace nor a temporary file.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from vm32.errors import BadTrace
from vm32.files import atomic_output
from vm32.jit import kernel

VERSION = 1
MEMBERS = ("events", "program", "version")

E_OK = 0
E_NOT_ALLOCATED = 1  # frees a handle that is no earlier allocation
E_NOT_LIVE = 2  # frees a handle already freed


@kernel
def first_bad_event(events):
    """(index, reason) of the first event that frees a handle that is not live; (-1, E_OK)."""
    n = events.shape[0]
    live = np.zeros(n, dtype=np.uint8)
    for i in range(n):
        e = events[i]
        if e >= 0:
            live[i] = 1
        else:
            h = -np.int64(e) - 1
            if h >= i or events[h] < 0:
                return i, E_NOT_ALLOCATED
            if live[h] == 0:
                return i, E_NOT_LIVE
            live[h] = 0
    return -1, E_OK


def check_events(events: np.ndarray, where: str) -> None:
    """BadTrace naming `where` and the first event that frees a handle that is not live."""
    i, reason = first_bad_event(events)
    if i >= 0:
        h = -int(events[i]) - 1
        why = "which is not an earlier allocation" if reason == E_NOT_ALLOCATED else "which was freed already"
        raise BadTrace(f"{where}: event {i} frees handle {h}, {why}")


def save(path: str | os.PathLike, events: np.ndarray, program: str) -> None:
    """Write a version-1 trace of `events` (int32-convertible) to `path`, atomically."""
    path = Path(path)
    events = np.asarray(events)
    if events.ndim != 1 or (events.size and (events.max() > np.iinfo(np.int32).max
                                             or events.min() < np.iinfo(np.int32).min)):
        raise BadTrace(f"{path}: events must be a 1-d array of 32-bit integers")
    with atomic_output(path) as f:
        np.savez(f, version=np.int32(VERSION), program=np.str_(program), events=events.astype(np.int32))


def load(path: str | os.PathLike) -> tuple[np.ndarray, str]:
    """(events, program) of the trace at `path`, validated; BadTrace if it is not one."""
    path = Path(path)
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise BadTrace(f"{path}: not a readable .npz allocation trace (a single .npy array)")
        with z:
            names = sorted(z.files)
            if names != sorted(MEMBERS):
                raise BadTrace(f"{path}: not a vm32 allocation trace (members {', '.join(names) or 'none'}; "
                               f"expected {', '.join(MEMBERS)})")
            version, program, events = z["version"], z["program"], z["events"]
    except BadTrace:
        raise
    except FileNotFoundError:
        raise BadTrace(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BadTrace(f"{path}: is a directory, not a trace file") from None
    except PermissionError:
        raise BadTrace(f"{path}: permission denied") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise BadTrace(f"{path}: not a readable .npz allocation trace ({e.__class__.__name__}: {e})") from None
    if version.shape != () or version.dtype.kind not in "iu":
        raise BadTrace(f"{path}: its version is not an integer scalar")
    if int(version) != VERSION:
        raise BadTrace(f"{path}: trace version {int(version)}; this vm32 reads version {VERSION}")
    if program.shape != () or program.dtype.kind != "U":
        raise BadTrace(f"{path}: its program name is not a string")
    if events.dtype != np.int32 or events.ndim != 1:
        raise BadTrace(f"{path}: its events are {events.dtype} with {events.ndim} dimensions, not int32[n]")
    check_events(events, str(path))
    return events, str(program)
