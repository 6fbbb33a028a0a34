"""The machine state handed to every compiled kernel: a named tuple of arrays.

numba passes a named tuple of arrays by value (a struct of pointers), so one
argument gives a kernel the whole machine without any Python object.  The
Python `Machine` owns these arrays; kernels only index them.

    words, bytes  physical memory (uint32 and uint8 views of PhysicalMemory)
    ft            frame table  ft[pfn, FT_*]
    freel         free-frame stack (depth kv[KV_FREE])
    pol           replacement-policy state (policies/base.py)
    swapw         the swap file, mapped, as uint32 words; slots: free-slot stack
    procs         process table  procs[pid * P_COLS + P_*]
    pstats        per-process counters  pstats[pid * ST_COLS + S_*]
    cstats        per-CPU counters  cstats[cpu * ST_COLS + S_*]
    tlb           TLBs  tlb[cpu, entry]
    cpus          per-CPU registers and shootdown slots  cpus[cpu * CPU_STRIDE + C_*]
    kv            kernel variables and the machine lock  kv[KV_*]
    bounce        per-CPU page buffers (uint32), BOUNCE_STRIDE words per CPU: a page of
                  write-back at WB_BUF, a page of read-ahead at RA_BUF (fault.py, swap I/O)
    sseq          per swap slot, a write sequence number: odd while a write is under way

Images are not in the tuple: a process's image file is mapped read-only by the
Python layer and its host address and length are in the process table; the
fault handler reads it with `host_load_u8` (a typed list here would force numba
reference counting on every function that takes the state).
"""

from __future__ import annotations

import collections

from llvmlite import ir
from numba import types
from numba.extending import intrinsic


MachineState = collections.namedtuple(
    "MachineState",
    "words bytes ft freel pol swapw slots procs pstats cstats tlb cpus kv bounce sseq",
)



@intrinsic
def host_load_u8(typingctx, addr):
    """The byte at host address `addr` (inside a mapped image file: read only those)."""
    if not isinstance(addr, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        ptr = builder.inttoptr(args[0], ir.IntType(8).as_pointer())
        return builder.load(ptr)

    return types.uint8(addr), codegen
