"""What every allocator policy of vm32.heap shares: statuses, the state's common words,
word access through the memory seam, and the statistics record.

Every policy keeps its state in ONE int64 array (see vm32.heap.core for why one array).
Its first words have the same meaning in every policy, so counters read the same way:

    M_BASE, M_LIMIT, M_SPAN     the range [base, limit) and limit - base
    M_LIVE_BYTES, M_PEAK_LIVE   sum of nbytes of live blocks; its maximum over time
    M_MALLOCS, M_FREES          successful allocations and frees (live blocks = the difference)
    M_CALLOCS, M_REALLOCS       successful callocs (also counted in M_MALLOCS) and reallocs
    M_FAILED                    allocations refused for lack of room
    M_DEBUG                     non-zero: freed payloads are filled with FREED_MARK words
    M_POLICY                    the policy's id (tlsf is 0)
    M_SEARCHED                  free blocks examined by searches so far (list policies)
    M_LAST_SEARCHED             free blocks examined by the last malloc (list policies)

The other words are the policy's own (it documents them).  In every policy the word just
below a live block's payload holds the nbytes it was allocated with (heap_size_of reads
it, and so does the paged UM's segment check, with no call).  A policy touches `mem` only
through `load` / `store` (vm32.memory's seam), and its state only by item access and
vm32.heap.bits' byte access, so that the paging kernel's journaled memory and state work
with every policy.

`heap_stats(mem, heap, out)` of every policy fills `out[S_*]` (STAT_FIELDS names them):
footprint and live figures, and the *holes*: free space inside the footprint (free
blocks, cached blocks, the unused part below the high-water mark), the largest of them,
and how many blocks the free lists and caches hold.
"""

import numpy as np

from vm32.jit import leaf_kernel
from vm32.memory import load_word, store_word

HEAP_OK = 0
"""heap_free: the block was freed."""
HEAP_INVALID_FREE = 1
"""heap_free: the address is not the start of a block."""
HEAP_DOUBLE_FREE = 2
"""heap_free: the address is the start of a block that is already free."""

FREED_MARK = 0xDFDFDFDF  # debug mode: the words of a freed payload

M_BASE = 0  # first byte of the range
M_LIMIT = 1  # one past the last byte
M_SPAN = 2  # limit - base
M_LIVE_BYTES = 5  # sum of nbytes of live blocks
M_POLICY = 6  # the policy's id
M_PEAK_LIVE = 7  # max of M_LIVE_BYTES over time
M_MALLOCS = 10  # successful malloc + calloc (+ the moves of realloc)
M_CALLOCS = 11
M_FREES = 12  # successful frees (+ the moves of realloc)
M_REALLOCS = 13  # successful reallocs
M_FAILED = 14  # allocations refused for lack of room
M_DEBUG = 16  # non-zero: freed payloads are filled with FREED_MARK
M_SEARCHED = 20  # free blocks examined by all searches
M_LAST_SEARCHED = 21  # free blocks examined by the last malloc
M_OWN = 24  # first word a policy may use for itself (tlsf also uses 3, 4, 8, 9, 15, 17-19)

# heap_stats output fields
S_FOOTPRINT = 0  # high-water extent of the blocks above base, in bytes
S_LIVE_BYTES = 1
S_LIVE_BLOCKS = 2
S_PEAK_LIVE = 3
S_HOLE_BYTES = 4  # free bytes inside the footprint (free + cached blocks + unused tail)
S_LARGEST_HOLE = 5  # the largest of those holes
S_FREE_LIST_LEN = 6  # blocks in the free lists and caches
S_MALLOCS = 7
S_CALLOCS = 8
S_FREES = 9
S_REALLOCS = 10
S_FAILED = 11
S_SEARCHED = 12
STAT_FIELDS = ("footprint", "live_bytes", "live_blocks", "peak_live_bytes", "hole_bytes", "largest_hole",
               "free_list_len", "mallocs", "callocs", "frees", "reallocs", "failed", "searched")
STAT_COUNT = len(STAT_FIELDS)


@leaf_kernel
def load(mem, addr):
    """The word at `addr` (>= 0) as an int64, through the seam.

    Addresses go to the seam as uint64: numba then skips its negative-index fix-up.
    """
    return np.int64(load_word(mem, np.uint64(addr)))


@leaf_kernel
def store(mem, addr, value):
    """Store `value` (truncated to 32 bits) at `addr` (>= 0), through the seam."""
    store_word(mem, np.uint64(addr), value)


@leaf_kernel
def fill_words(mem, addr, nwords, value):
    """Store `value` into `nwords` words from `addr` (through the seam)."""
    for i in range(nwords):
        store(mem, addr + 4 * i, value)


@leaf_kernel
def copy_words(mem, dst, src, nwords):
    """Copy `nwords` words from `src` to `dst` (non-overlapping, through the seam)."""
    for i in range(nwords):
        store(mem, dst + 4 * i, load(mem, src + 4 * i))


@leaf_kernel
def add_finding(out, n, code, addr, value):
    """Record finding number `n` if out has room; return n + 1."""
    if n < out.shape[0]:
        out[n, 0] = code
        out[n, 1] = addr
        out[n, 2] = value
    return n + 1


@leaf_kernel
def note_alloc(heap, nbytes):
    """Count one more live block of `nbytes`."""
    live = heap[M_LIVE_BYTES] + nbytes
    heap[M_LIVE_BYTES] = live
    heap[M_MALLOCS] += 1
    if live > heap[M_PEAK_LIVE]:
        heap[M_PEAK_LIVE] = live


@leaf_kernel
def note_free(heap, nbytes):
    """Count one live block of `nbytes` fewer."""
    heap[M_LIVE_BYTES] -= nbytes
    heap[M_FREES] += 1


@leaf_kernel
def note_resize(heap, old, nbytes):
    """Count a realloc in place of a live block from `old` to `nbytes` bytes (live bytes and
    their peak change; mallocs and frees do not)."""
    note_free(heap, old)
    note_alloc(heap, nbytes)
    heap[M_MALLOCS] -= 1
    heap[M_FREES] -= 1
    heap[M_REALLOCS] += 1


@leaf_kernel
def common_stats(heap, out):
    """Fill the fields of `out` that every policy counts the same way."""
    out[S_LIVE_BYTES] = heap[M_LIVE_BYTES]
    out[S_LIVE_BLOCKS] = heap[M_MALLOCS] - heap[M_FREES]
    out[S_PEAK_LIVE] = heap[M_PEAK_LIVE]
    out[S_MALLOCS] = heap[M_MALLOCS]
    out[S_CALLOCS] = heap[M_CALLOCS]
    out[S_FREES] = heap[M_FREES]
    out[S_REALLOCS] = heap[M_REALLOCS]
    out[S_FAILED] = heap[M_FAILED]
    out[S_SEARCHED] = heap[M_SEARCHED]


@leaf_kernel
def ceil_log2(x):
    """The smallest k with 2**k >= x (x >= 1)."""
    k = np.int64(0)
    while (np.int64(1) << k) < x:
        k += 1
    return k
