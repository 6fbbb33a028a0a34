"""The machine state handed to every compiled kernel: a named tuple of arrays.

numba passes a named tuple of arrays by value (a struct of pointers), so one
argument gives a kernel the whole machine without any Python object.  The
Python `Machine` owns these arrays; kernels only index them.

    words, bytes  physical memory (uint32 and uint8 views of PhysicalMemory)
    ft            frame table  ft[pfn, FT_*]
    freel         free-frame stack (depth kv[KV_FREE])
    pol           replacement-policy state (policies/base.py)
    swapw         the swap file, mapped, as uint32 words; slots: free-slot stack
    images        typed list of read-only uint8 arrays: the mapped image files
    procs         process table  procs[pid * P_COLS + P_*]
    pstats        per-process counters  pstats[pid * ST_COLS + S_*]
    cstats        per-CPU counters  cstats[cpu * ST_COLS + S_*]
    tlb           TLBs  tlb[cpu, entry]
    cpus          per-CPU registers and shootdown slots  cpus[cpu * CPU_STRIDE + C_*]
    kv            kernel variables and the machine lock  kv[KV_*]
"""

from __future__ import annotations

import collections

import numpy as np
from numba import types
from numba.typed import List

MachineState = collections.namedtuple(
    "MachineState",
    "words bytes ft freel pol swapw slots images procs pstats cstats tlb cpus kv",
)

IMAGE_TYPE = types.Array(types.uint8, 1, "C", readonly=True)


def empty_image() -> np.ndarray:
    """A read-only zero-length image (for processes without one)."""
    z = np.zeros(0, dtype=np.uint8)
    z.setflags(write=False)
    return z


def new_image_list() -> List:
    """An empty typed list of images; entry 0 is the empty image."""
    lst = List.empty_list(IMAGE_TYPE)
    lst.append(empty_image())
    return lst
