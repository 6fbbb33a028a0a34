"""Constants shared by the kernel's compiled code: address-space layout, table columns, statuses.

Virtual address space of every process (32-bit):

    0x00000000 +----------------------------+
               | unmapped (null guard, 4 MiB)|
    0x00400000 +----------------------------+  IMAGE_BASE
               | image: code + data, paged  |  demand-paged from the image file
               | in from the file on disk   |
               +----------------------------+  heap_lo = image end rounded to a page
               | heap (zero-filled)         |  served by vm32.heap
               +----------------------------+  heap_hi
               |          unmapped          |
               +----------------------------+  stack_lo = STACK_TOP - stack size
               | stack (zero-filled)        |
    0xF0000000 +----------------------------+  STACK_TOP = KERNEL_BASE
               | kernel memory, shared,     |  supervisor-only, Global, always present
               | supervisor-only            |
               +----------------------------+  KERNEL_BASE + kernel_frames * PAGE_SIZE

Physical frames: frames 0..kernel_frames-1 are kernel memory, the next frame is
the kernel page table (shared by every page directory); the rest are handed out
on demand: page directories and tables (pinned) and process pages.

Every table the compiled kernel shares between CPUs is a flat int64 array with
a row stride, so atomic operations (1-d only) can address any element.
"""

from vm32.memory import PAGE_WORDS
from vm32.mmu.entry import NPTENTRIES

IMAGE_BASE = 0x00400000
KERNEL_BASE = 0xF0000000
STACK_TOP = KERNEL_BASE
DEFAULT_STACK = 64 * 1024
DEFAULT_HEAP = 16 * 1024 * 1024
MAX_KERNEL_FRAMES = NPTENTRIES  # one kernel page table

# ---- statuses returned by kernel functions (0 = ok, < 0 = failure) --------------------
OK = 0
ST_NOT_PRESENT = -1  # (mmu) page fault, handled internally
ST_PROT_USER = -2  # user-mode access to a supervisor page
ST_PROT_WRITE = -3  # write to a read-only page
ST_SEGV = -4  # no mapping covers the address
ST_NO_FRAME = -5  # every frame is pinned: nothing can be evicted
ST_SWAP_FULL = -6  # a dirty page must go to swap and no slot is free
ST_DEAD = -7  # the process has exited
ST_BUSY = -8  # the process is running on another CPU
# process heaps (procheap.py)
ST_JOURNAL_FULL = -9  # a heap operation wrote more than its undo journal holds (undone; grow, retry)
ST_HEAP_CORRUPT = -10  # heap metadata point outside the heap (a block header was overwritten)
ST_INVALID_FREE = -11  # not the address of a live block
ST_DOUBLE_FREE = -12  # the address of a block that is already free
ST_HEAP_FULL = -13  # the heap region has no free block large enough
ST_IO_ERROR = -14  # the host could not read or write the swap file
ST_IN_SWAP = 1  # (poke_word_locked, not a failure) the word was written in the page's swap slot
STATUS_NAMES = {
    ST_PROT_USER: "user-mode access to a supervisor (kernel) page",
    ST_PROT_WRITE: "write to a read-only page",
    ST_SEGV: "no mapping covers this address",
    ST_NO_FRAME: "every physical frame is pinned; nothing can be evicted",
    ST_SWAP_FULL: "swap is full: a dirty page has nowhere to go",
    ST_DEAD: "the process has exited",
    ST_BUSY: "the process is running on another CPU",
    ST_JOURNAL_FULL: "the heap operation is too large for its undo journal",
    ST_HEAP_CORRUPT: "the heap's block headers are corrupted (overwritten by a stray write?)",
    ST_INVALID_FREE: "not the address of a live block of this heap",
    ST_DOUBLE_FREE: "that block is already free",
    ST_HEAP_FULL: "the heap has no free block large enough",
    ST_IO_ERROR: "the swap file could not be read or written (host I/O error)",
}

# ---- frame table: ft[pfn, column] (int64) ----------------------------------------------
FT_OWNER = 0  # pid, or FREE / KERNEL
FT_VPN = 1  # virtual page number mapped to this frame (directory index for a table)
FT_FLAGS = 2  # FF_* bits
FT_SLOT = 3  # swap slot holding a valid copy (while the page is clean), or -1
FT_PTE = 4  # physical address of the PTE that maps this frame, or -1
FT_META = 5  # replacement policy metadata (FIFO load stamp, LRU last-use stamp)
FT_COLS = 8
FREE = -1
KERNEL = -2
FF_PINNED = 1  # never a victim
FF_TABLE = 2  # a page directory or page table
FF_KERNEL = 4  # kernel memory or the kernel page table

# ---- process table: procs[pid * P_COLS + column] ---------------------------------------
P_STATE = 0  # PS_*
P_PGDIR = 1  # physical address of the page directory
P_IMAGE = 2  # host address of the mapped image file (read-only mmap), 0 if none
P_IMG_LEN = 3  # image length in bytes
P_IMG_HI = 4  # end of the image region (page aligned); starts at IMAGE_BASE
P_IMG_W = 5  # 1 if the image region is writable
P_HEAP_LO = 6
P_HEAP_HI = 7
P_STACK_LO = 8
P_STACK_HI = 9
P_COLS = 16
PS_FREE = 0
PS_LIVE = 1
PS_EXITING = 2

# ---- statistics: pstats[pid * ST_COLS + column], cstats[cpu * ST_COLS + column] ---------
S_ACCESSES = 0
S_TLB_MISSES = 1
S_FAULTS = 2  # page faults (not-present) taken
S_ZERO_FILL = 3
S_IMAGE_IN = 4
S_SWAP_IN = 5
S_PROT = 6  # protection faults
S_SEGV = 7  # segmentation faults
S_PAGE_OUT = 8  # pages written to swap
S_EVICT = 9  # pages evicted (written or dropped)
S_SWAP_BYTES_OUT = 10
S_SWAP_BYTES_IN = 11
S_IMAGE_BYTES_IN = 12
S_TABLES = 13  # page tables allocated
S_RACE = 14  # faults found already served by another CPU
S_WALKS = 15  # (per CPU) page-table walks: one per TLB miss, one more per retry after an eviction
ST_COLS = 16
STAT_NAMES = {
    S_ACCESSES: "accesses",
    S_TLB_MISSES: "tlb_misses",
    S_FAULTS: "page_faults",
    S_ZERO_FILL: "zero_fill",
    S_IMAGE_IN: "image_in",
    S_SWAP_IN: "swap_in",
    S_PROT: "protection_faults",
    S_SEGV: "segmentation_faults",
    S_PAGE_OUT: "page_outs",
    S_EVICT: "evictions",
    S_SWAP_BYTES_OUT: "swap_bytes_out",
    S_SWAP_BYTES_IN: "swap_bytes_in",
    S_IMAGE_BYTES_IN: "image_bytes_in",
    S_TABLES: "page_tables",
    S_RACE: "faults_served_by_other_cpu",
    S_WALKS: "walks",
}

# ---- per-CPU state: cpus[cpu * CPU_STRIDE + field] ------------------------------------------
C_PID = 0  # process the CPU runs (-1 none); its TLB describes that process
C_CR3 = 1  # physical address of the current page directory
C_BUSY = 2  # 1 while the CPU is inside compiled code that may hold translations
C_REQ = 3  # shootdown request: REQ_NONE / REQ_PAGE / REQ_ALL
C_REQ_PID = 4
C_REQ_VPN = 5
C_MISS_SNAP = 6  # TLB misses counted at cpu_enter
C_WB_SLOT = 8  # swap slot this CPU's write-back buffer still has to be written to (-1 none)
C_SPEC_SLOT = 9  # slot read ahead (outside the lock) into this CPU's read buffer (-1 none)
C_SPEC_SEQ = 10  # that slot's write sequence number when it was read
C_WALK_SNAP = 11  # walks counted at cpu_enter
CPU_STRIDE = 16  # two 64-byte lines per CPU
BOUNCE_STRIDE = 2 * PAGE_WORDS  # words of ms.bounce per CPU: its write-back page, then its read-ahead page
WB_BUF = 0  # word offset of a CPU's write-back page in its part of ms.bounce
RA_BUF = PAGE_WORDS  # word offset of its read-ahead page
REQ_NONE = 0
REQ_PAGE = 1
REQ_ALL = 2

# ---- kernel variables: kv[index] ---------------------------------------------------------
KV_LOCK = 0  # machine lock: 0 free, else holder cpu + 1 (alone on its cache line)
KV_FREE = 8  # number of frames on the free stack
KV_NFRAMES = 9
KV_SLOTS_FREE = 10  # number of slots on the free-slot stack
KV_NSLOTS = 11
KV_SEES_EVERY_ACCESS = 12  # 1 when the policy sees every access: on_access on TLB hits too (LRU)
KV_NCPU = 13
KV_MAXPROC = 14
KV_KPT = 15  # physical address of the kernel page table
KV_KFRAMES = 16  # number of kernel memory frames
KV_SWAP_FD = 17  # host file descriptor of the swap file (-1: no swap)
KV_ACCESSED_ON_LOAD = 18  # 1 when a page comes in referenced (Accessed set by its faulting access)
KV_SIZE = 24
