"""vm32.kernel: a small demand-paging kernel over vm32.memory and vm32.mmu.

    layout      address-space layout, table columns, statuses (the shared vocabulary)
    frametable  frame-table predicates and Accessed/Dirty helpers used by policies
    policies/   the replacement policies: one module each, one registry
    swap        the swap file (512-byte sectors, 8 per slot) and slot allocation
    sync        machine lock, TLB shootdown with acknowledgement, CPU entry/exit
    fault       frames, eviction, the page-fault handler, vm_translate (all compiled)
    access      user memory: the access context and its one failure convention, the
                load_word/store_word seam on paged memory, page_chunk and the copy loop
    trampoline  the machine by address for hot loops: pointer intrinsics, the cold-call
                entry point, the inline TLB probe (the paged UM runs on it)
    procheap    one allocator per process (vm32.heap in its heap region): journaled
                (Process.malloc & co., undone if a page-in fails) or direct (the UM)
    machine     Machine and Process: the Python API
    inspect     the page table and the frame table as rows (vm32.ui renders them)
    demo        `vm32 paging demo`
"""

from vm32.kernel.machine import Machine, Process  # noqa: F401
from vm32.kernel.policies import POLICIES  # noqa: F401
