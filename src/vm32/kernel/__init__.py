"""vm32.kernel: a small demand-paging kernel over vm32.memory and vm32.mmu.

    layout      address-space layout, table columns, statuses (the shared vocabulary)
    frametable  frame-table predicates and Accessed/Dirty helpers used by policies
    policies/   fifo, clock, nru, lru, random: one module each, same interface
    swap        the swap file (512-byte sectors, 8 per slot) and slot allocation
    sync        machine lock, TLB shootdown with acknowledgement, CPU entry/exit
    fault       frames, eviction, the page-fault handler, vm_translate (all compiled)
    access      compiled accessors and the load_word/store_word overloads (PagedMemory)
    procheap    the vm32.heap allocator inside a process (Process.malloc & co.), each
                operation undone if a page-in fails; ph_* for compiled callers (the UM)
    machine     Machine and Process: the Python API
    inspect     page-table and frame-table views
    demo        `vm32 paging demo`
"""

from vm32.kernel.machine import Machine, Process  # noqa: F401
from vm32.kernel.policies import POLICIES  # noqa: F401
