"""The explicit free list: one list of free blocks, a search policy, a list order, coalescing.

This is the free-space manager of the textbook (OSTEP, "Free-Space Management"), compiled:
the policies `first`, `best`, `worst` and `next` are this module with a different search,
and `vm32 heap sim` runs it with the chapter simulator's rules (*teaching mode*).

Words
-----
*block*    [a, a + size): a block address a (what the free list shows) and its size; the
           payload address handed out is p = a + H (H = the header size).
*entry*    one element of the free list: (block address, size) of a free block.  The list
           is an array of entries in list order, in the state (heap[M_LIST + 2i], +1).
*search*   FIRST: the first entry that fits; BEST: the smallest that fits (the first of
           equals); WORST: the largest (the first of equals); NEXT: first fit, starting at
           the entry that holds the *rover* (an address inside the free block where the last
           search ended; the list's start if there is none) and wrapping around.  "searched"
           counts the entries examined: the index of the fit + 1 for FIRST, the entries
           looked at for NEXT, the whole list for BEST and WORST.
*order*    where a freed block goes: ADDRSORT (by address), SIZESORT_UP / SIZESORT_DOWN
           (append, then a stable sort of the whole list by size: a split that shrank an
           entry in place is re-sorted then), INSERT_FRONT, INSERT_BACK.
*coalesce* after every free, one pass over the list merges each entry with the entries
           that follow it in the list while they start where it ends.  With ADDRSORT the
           list stays fully coalesced, so only the new entry's neighbours are looked at.
*split*    malloc takes the front of the chosen entry; the rest stays in the entry, at the
           same place in the list (not re-sorted).  A perfect fit removes the entry.
*mode*     real (Heap): size = round_up(nbytes + H, A), H a multiple of 4 (>= 4), A a
           power of two (>= 8), the payload A-aligned; the header word p - 4 holds nbytes of
           a live block, the block size of a free one; tags by 8-byte granule of p.
           teaching (vm32 heap sim, OSTEP's rules): size = round_up(nbytes, A) + H (A = 0:
           no rounding), any H >= 0; headers are pretend (`mem` is never touched); a size
           map in the state holds each block's (nbytes << 32 | size); tags by byte.

State (own words from base.M_OWN)
---------------------------------
M_SEARCH, M_ORDER, M_COALESCE, M_HEADER, M_ALIGN, M_TEACH: the parameters.
M_COUNT entries in the list (<= M_CAP); M_HIGH the highest block end ever allocated
(footprint = M_HIGH - base); M_FIRST the first block address; M_ROVER (NEXT);
M_FREE_BYTES the sum of entry sizes; M_LOST blocks freed while the list was full (not
listed: lost, never reused); then the list, the tag map (T_LIVE / T_FREE / T_LOST at a
block's address) and, in teaching mode, the size map.

Invariants (checked by heap_check)
----------------------------------
    blocks tile [first, high): each starts with exactly one tag, interior tags are 0
    every entry starts at a T_FREE tag, its recorded size == its entry size, and every
        T_FREE block below high is an entry; no two entries overlap
    free_bytes == sum of entry sizes; live_bytes == sum of nbytes of live blocks;
        mallocs - frees == number of live blocks
    ADDRSORT: entry addresses strictly increase; with coalescing no entry starts where the
        one before it ends
    NEXT: the rover lies inside an entry, or the list is empty (rover == -1)

Cost: malloc O(list) (the search; the split is O(1), a perfect fit moves the list's tail),
free O(log list) for ADDRSORT (binary search + moving the tail), O(list) otherwise.
"""

import numpy as np

from vm32.errors import InvalidArgument
from vm32.heap.base import (
    FREED_MARK,
    HEAP_DOUBLE_FREE,
    HEAP_INVALID_FREE,
    HEAP_OK,
    M_BASE,
    M_CALLOCS,
    M_DEBUG,
    M_FAILED,
    M_LAST_SEARCHED,
    M_LIMIT,
    M_LIVE_BYTES,
    M_MALLOCS,
    M_FREES,
    M_OWN,
    M_POLICY,
    M_REALLOCS,
    M_SEARCHED,
    M_SPAN,
    S_FOOTPRINT,
    S_FREE_LIST_LEN,
    S_HOLE_BYTES,
    S_LARGEST_HOLE,
    add_finding,
    common_stats,
    copy_words,
    fill_words,
    load,
    note_alloc,
    note_free,
    note_resize,
    store,
)
from vm32.heap.bits import load_byte, store_byte
from vm32.jit import leaf_kernel

FIRST, BEST, WORST, NEXT = 0, 1, 2, 3
SEARCHES = {"FIRST": FIRST, "BEST": BEST, "WORST": WORST, "NEXT": NEXT}
ADDRSORT, SIZESORT_UP, SIZESORT_DOWN, INSERT_FRONT, INSERT_BACK = 0, 1, 2, 3, 4
ORDERS = {"ADDRSORT": ADDRSORT, "SIZESORT+": SIZESORT_UP, "SIZESORT-": SIZESORT_DOWN,
          "INSERT-FRONT": INSERT_FRONT, "INSERT-BACK": INSERT_BACK}

__all__ = [  # the policy interface (vm32.heap.policies) that first, best, worst and next take over
    "CHECK_MESSAGES", "PARAMS", "heap_addr_status", "heap_block_bytes", "heap_calloc", "heap_check",
    "heap_footprint", "heap_free", "heap_init", "heap_is_live", "heap_largest_free", "heap_malloc",
    "heap_realloc", "heap_size_of", "heap_stats",
]

T_LIVE = 1  # a live block starts here
T_FREE = 2  # a free block (a list entry) starts here
T_LOST = 4  # a block freed while the list was full starts here

M_SEARCH = M_OWN
M_ORDER = M_OWN + 1
M_COALESCE = M_OWN + 2
M_HEADER = M_OWN + 3
M_ALIGN = M_OWN + 4  # 0: no rounding
M_TEACH = M_OWN + 5
M_COUNT = M_OWN + 6
M_CAP = M_OWN + 7
M_HIGH = M_OWN + 8
M_FIRST = M_OWN + 9
M_ROVER = M_OWN + 10
M_FREE_BYTES = M_OWN + 11
M_LOST = M_OWN + 12
M_TAG_ORIGIN = M_OWN + 13  # byte index in the state of the tag of block address a: + (a - base) >> shift
M_SHIFT = M_OWN + 14  # 3 (real) or 0 (teaching)
M_SIZES = M_OWN + 15  # teaching: index of the size map
M_LIST = 48

MAX_REQUEST = 1 << 40  # larger requests fail at once (no overflow in the size rule)
LIST_CAP = 1 << 22  # entries at most (a list this long makes every search slow anyway)
TEACH_MAX_SPAN = 1 << 24  # teaching mode keeps a size word per byte of the range

C_BAD_TAG = 1
C_BAD_SIZE = 2
C_INTERIOR_TAG = 3
C_NOT_LISTED = 4
C_ENTRY_NOT_FREE = 5
C_ENTRY_SIZE = 6
C_ENTRY_OVERLAP = 7
C_UNSORTED = 8
C_UNCOALESCED = 9
C_FREE_BYTES = 10
C_LIVE_BYTES = 11
C_LIVE_BLOCKS = 12
C_ROVER = 13
C_COUNT = 14
C_TILING = 15

CHECK_MESSAGES = {
    C_BAD_TAG: "block at {a:#x} has tag {v}: not exactly one of live, free, lost",
    C_BAD_SIZE: "block at {a:#x} has a bad size {v}",
    C_INTERIOR_TAG: "byte/granule {a:#x} inside a block has tag {v}",
    C_NOT_LISTED: "free block at {a:#x} ({v} bytes) is not in the free list",
    C_ENTRY_NOT_FREE: "list entry {v} at {a:#x} is not a free block in range",
    C_ENTRY_SIZE: "list entry at {a:#x} says {v} bytes, its block another size",
    C_ENTRY_OVERLAP: "list entry at {a:#x} overlaps the block before it (which ends at {v:#x})",
    C_UNSORTED: "address-sorted list: entry {v} at {a:#x} is not above the one before it",
    C_UNCOALESCED: "coalesced address-sorted list: entry {v} at {a:#x} starts where the one before it ends",
    C_FREE_BYTES: "entries hold {a} bytes but the counter says {v}",
    C_LIVE_BYTES: "live blocks hold {a} bytes but the counter says {v}",
    C_LIVE_BLOCKS: "{a} live blocks but the counter says {v}",
    C_ROVER: "next-fit rover {a:#x} is inside no entry of the {v}-entry list",
    C_COUNT: "the list holds {a} entries, more than its capacity {v}",
    C_TILING: "blocks do not tile the heap: the walk stopped at {a:#x} (high-water mark {v:#x})",
}


def state_words(base: int, limit: int, align: int, teach: bool) -> tuple[int, int]:
    """(length of the state array, list capacity) of a list heap over [base, limit)."""
    span = limit - base
    if teach:
        cap = span + 1
        return M_LIST + 2 * cap + (span >> 3) + 2 + span + 1, cap
    cap = min(span // align + 1, LIST_CAP)
    return M_LIST + 2 * cap + (span >> 6) + 2, cap


def set_params(heap: np.ndarray, base: int, limit: int, params: tuple, cap: int) -> None:
    """Write the parameter words of a fresh list state over [base, limit), before `heap_init`.

    params = (search, order, coalesce, header, align, teach).
    """
    search, order, coalesce, hdr, align, teach = (int(v) for v in params)
    heap[M_BASE] = base
    heap[M_LIMIT] = limit
    heap[M_SPAN] = limit - base
    heap[M_SEARCH] = search
    heap[M_POLICY] = search + 1  # first, best, worst, next: ids 1-4
    heap[M_ORDER] = order
    heap[M_COALESCE] = coalesce
    heap[M_HEADER] = hdr
    heap[M_ALIGN] = align
    heap[M_TEACH] = teach
    heap[M_CAP] = cap
    heap[M_SHIFT] = 0 if teach else 3
    tags = M_LIST + 2 * cap
    heap[M_TAG_ORIGIN] = 8 * tags
    heap[M_SIZES] = tags + ((limit - base) >> 3) + 2
    first = base
    if not teach:  # the payload first + hdr must be aligned
        first = base + ((align - (base + hdr) % align) % align)
    heap[M_FIRST] = first
    heap[M_HIGH] = first
    heap[M_ROVER] = -1


@leaf_kernel
def heap_init(mem, heap, base, limit):
    """Set up an empty list heap over [base, limit) in a state whose parameter words are set
    (`set_params`): the whole range past the first block address is one free entry (its
    header written into `mem` in real mode)."""
    first = heap[M_FIRST]
    heap[M_COUNT] = 0
    if limit > first:
        put_entry(mem, heap, 0, first, limit - first)
        heap[M_COUNT] = 1
        heap[M_FREE_BYTES] = limit - first


# ---------------------------------------------------------------- accessors


@leaf_kernel
def tag_index(heap, a):
    """Byte index in the state of the tag of block address `a` (in [first, limit))."""
    return np.uint64(heap[M_TAG_ORIGIN] + ((a - heap[M_BASE]) >> heap[M_SHIFT]))


@leaf_kernel
def tag_of(heap, a):
    """The tag of block address `a`."""
    return load_byte(heap, tag_index(heap, a))


@leaf_kernel
def set_tag(heap, a, tag):
    """Set the tag of block address `a`."""
    store_byte(heap, tag_index(heap, a), tag)


@leaf_kernel
def entry_addr(heap, i):
    """Block address of entry `i`."""
    return heap[M_LIST + 2 * i]


@leaf_kernel
def entry_size(heap, i):
    """Size of entry `i`."""
    return heap[M_LIST + 2 * i + 1]


@leaf_kernel
def block_bytes(heap, nbytes):
    """The size of the block that holds `nbytes` (0 for a teaching-mode block of no bytes)."""
    a = heap[M_ALIGN]
    if heap[M_TEACH]:
        if a > 0:
            nbytes = (nbytes + a - 1) // a * a
        return nbytes + heap[M_HEADER]
    return (nbytes + heap[M_HEADER] + a - 1) & ~(a - 1)


@leaf_kernel
def record_live(mem, heap, a, nbytes, size):
    """Note live block `a` of `size` bytes holding `nbytes` (header word or size map)."""
    if heap[M_TEACH]:
        heap[heap[M_SIZES] + a - heap[M_BASE]] = (nbytes << 32) | size
    else:
        store(mem, a + heap[M_HEADER] - 4, nbytes)


@leaf_kernel
def live_nbytes(mem, heap, a):
    """nbytes of live block `a`."""
    if heap[M_TEACH]:
        return heap[heap[M_SIZES] + a - heap[M_BASE]] >> 32
    return load(mem, a + heap[M_HEADER] - 4)


@leaf_kernel
def live_size(mem, heap, a):
    """Size of live block `a`."""
    if heap[M_TEACH]:
        return heap[heap[M_SIZES] + a - heap[M_BASE]] & 0xFFFFFFFF
    return block_bytes(heap, load(mem, a + heap[M_HEADER] - 4))


@leaf_kernel
def record_free(mem, heap, a, size):
    """Note the size of free (or lost) block `a`: its header word, or the size map."""
    if heap[M_TEACH]:
        heap[heap[M_SIZES] + a - heap[M_BASE]] = size
    else:
        store(mem, a + heap[M_HEADER] - 4, size)


@leaf_kernel
def free_size(mem, heap, a):
    """The recorded size of free (or lost) block `a`."""
    if heap[M_TEACH]:
        return heap[heap[M_SIZES] + a - heap[M_BASE]]
    return load(mem, a + heap[M_HEADER] - 4)


# ---------------------------------------------------------------- the list


@leaf_kernel
def put_entry(mem, heap, i, a, size):
    """Make entry `i` the free block (a, size): tag and recorded size included."""
    heap[M_LIST + 2 * i] = a
    heap[M_LIST + 2 * i + 1] = size
    set_tag(heap, a, T_FREE)
    record_free(mem, heap, a, size)


@leaf_kernel
def insert_entry(mem, heap, i, a, size):
    """Insert free block (a, size) as entry `i`, moving entries i.. up by one (room checked)."""
    n = heap[M_COUNT]
    for j in range(M_LIST + 2 * n + 1, M_LIST + 2 * i + 1, -1):
        heap[j] = heap[j - 2]
    put_entry(mem, heap, i, a, size)
    heap[M_COUNT] = n + 1
    heap[M_FREE_BYTES] += size


@leaf_kernel
def delete_entry(heap, i):
    """Remove entry `i` from the list (its block's tag is the caller's business)."""
    n = heap[M_COUNT] - 1
    heap[M_FREE_BYTES] -= entry_size(heap, i)
    for j in range(M_LIST + 2 * i, M_LIST + 2 * n):
        heap[j] = heap[j + 2]
    heap[M_COUNT] = n


@leaf_kernel
def swap_entries(heap, i, j):
    """Exchange entries `i` and `j`."""
    for k in range(2):
        t = heap[M_LIST + 2 * i + k]
        heap[M_LIST + 2 * i + k] = heap[M_LIST + 2 * j + k]
        heap[M_LIST + 2 * j + k] = t


@leaf_kernel
def addr_position(heap, a):
    """The index where block address `a` goes in the address-sorted list (binary search)."""
    lo = np.int64(0)
    hi = heap[M_COUNT]
    while lo < hi:
        mid = (lo + hi) >> 1
        if entry_addr(heap, mid) < a:
            lo = mid + 1
        else:
            hi = mid
    return lo


@leaf_kernel
def sort_by_size(heap, descending):
    """Stable insertion sort of the whole list by size (ascending or descending).

    O(list + displacement): the list is sorted but for the one appended entry and entries
    a split shrank in place.
    """
    n = heap[M_COUNT]
    for i in range(1, n):
        j = i
        while j > 0:
            s0 = entry_size(heap, j - 1)
            s1 = entry_size(heap, j)
            if (s0 < s1) if descending else (s0 > s1):
                swap_entries(heap, j - 1, j)
                j -= 1
            else:
                break


@leaf_kernel
def absorb(heap, i):
    """Merge entry i + 1 into entry i (it starts where i ends); clears its start tag."""
    a = entry_addr(heap, i + 1)
    heap[M_LIST + 2 * i + 1] += entry_size(heap, i + 1)
    heap[M_FREE_BYTES] += entry_size(heap, i + 1)  # delete_entry takes it off again
    delete_entry(heap, i + 1)
    set_tag(heap, a, 0)


@leaf_kernel
def coalesce_pass(mem, heap, lo, hi):
    """One left-to-right pass over entries lo..hi (clipped to the list): each entry absorbs
    the entries after it while they start where it ends.  Records merged sizes."""
    i = max(lo, np.int64(0))
    while i < heap[M_COUNT] - 1 and i <= hi:
        merged = False
        while i < heap[M_COUNT] - 1 and entry_addr(heap, i + 1) == entry_addr(heap, i) + entry_size(heap, i):
            absorb(heap, i)
            hi -= 1
            merged = True
        if merged:
            record_free(mem, heap, entry_addr(heap, i), entry_size(heap, i))
        i += 1


@leaf_kernel
def list_free(mem, heap, a, size):
    """Put free block (a, size) into the list in the heap's order, then coalesce.

    Returns False (nothing listed) when the list is full.
    """
    n = heap[M_COUNT]
    if n >= heap[M_CAP]:
        return False
    order = heap[M_ORDER]
    if order == ADDRSORT:
        i = addr_position(heap, a)
    elif order == INSERT_FRONT:
        i = np.int64(0)
    else:
        i = n
    insert_entry(mem, heap, i, a, size)
    if order == SIZESORT_UP or order == SIZESORT_DOWN:
        sort_by_size(heap, order == SIZESORT_DOWN)
    if heap[M_COALESCE]:
        if order == ADDRSORT:
            coalesce_pass(mem, heap, i - 1, i)  # the list was coalesced but around the new entry
        else:
            coalesce_pass(mem, heap, 0, heap[M_COUNT])
    return True


# ---------------------------------------------------------------- search


@leaf_kernel
def rover_index(heap):
    """Index of the entry that holds the rover (0 if none does)."""
    r = heap[M_ROVER]
    for i in range(heap[M_COUNT]):
        a = entry_addr(heap, i)
        if a <= r < a + entry_size(heap, i):
            return np.int64(i)
    return np.int64(0)


@leaf_kernel
def search(heap, size):
    """(index of the entry the search policy picks for `size` bytes or -1, entries examined)."""
    n = heap[M_COUNT]
    policy = heap[M_SEARCH]
    if policy == NEXT:
        start = rover_index(heap)
        for k in range(n):
            i = start + k
            if i >= n:
                i -= n
            if entry_size(heap, i) >= size:
                return i, np.int64(k + 1)
        return np.int64(-1), n
    best = np.int64(-1)
    best_size = np.int64(0)
    for i in range(n):
        s = entry_size(heap, i)
        if s >= size:
            if policy == FIRST:
                return np.int64(i), np.int64(i + 1)
            if best < 0 or (s < best_size if policy == BEST else s > best_size):
                best = np.int64(i)
                best_size = s
    return best, n


# ---------------------------------------------------------------- kernels


@leaf_kernel
def heap_malloc(mem, heap, nbytes):
    """Payload address of a new block of `nbytes` bytes, or 0 if no entry fits.

    The search policy picks an entry; its front becomes the block, the rest stays in place.
    """
    if nbytes < 0 or nbytes > MAX_REQUEST:  # (a larger one is searched for like any: the chapter's rule)
        heap[M_FAILED] += 1
        heap[M_LAST_SEARCHED] = 0
        return np.int64(0)
    size = block_bytes(heap, np.int64(nbytes))
    if size == 0:  # teaching mode, no header: a block of no bytes has no address of its own
        heap[M_FAILED] += 1
        heap[M_LAST_SEARCHED] = 0
        return np.int64(0)
    i, examined = search(heap, size)
    heap[M_LAST_SEARCHED] = examined
    heap[M_SEARCHED] += examined
    if i < 0:
        heap[M_FAILED] += 1
        return np.int64(0)
    a = entry_addr(heap, i)
    rest = entry_size(heap, i) - size
    if rest > 0:
        put_entry(mem, heap, i, a + size, rest)
        heap[M_FREE_BYTES] -= size
        heap[M_ROVER] = a + size
    else:
        delete_entry(heap, i)
        n = heap[M_COUNT]
        heap[M_ROVER] = -1 if n == 0 else entry_addr(heap, i if i < n else 0)
    set_tag(heap, a, T_LIVE)
    record_live(mem, heap, a, np.int64(nbytes), size)
    heap[M_HIGH] = max(heap[M_HIGH], a + size)
    note_alloc(heap, np.int64(nbytes))
    return a + heap[M_HEADER]


@leaf_kernel
def heap_calloc(mem, heap, nbytes):
    """Like heap_malloc, with the first nbytes (rounded up to words) zeroed."""
    p = heap_malloc(mem, heap, nbytes)
    if p != 0:
        if not heap[M_TEACH]:
            fill_words(mem, p, (np.int64(nbytes) + 3) >> 2, 0)
        heap[M_CALLOCS] += 1
    return p


@leaf_kernel
def heap_is_live(heap, addr):
    """True iff `addr` (any int64) is the payload address of a live block."""
    a = np.int64(addr) - heap[M_HEADER]
    if a < heap[M_FIRST] or a >= heap[M_LIMIT]:
        return False
    if heap[M_SHIFT] and ((a + heap[M_HEADER]) & 7) != 0:
        return False
    return tag_of(heap, a) == T_LIVE


@leaf_kernel
def heap_addr_status(heap, addr):
    """HEAP_OK if `addr` is live, else HEAP_DOUBLE_FREE (a free block starts there) or
    HEAP_INVALID_FREE."""
    if heap_is_live(heap, addr):
        return HEAP_OK
    a = np.int64(addr) - heap[M_HEADER]
    if a < heap[M_FIRST] or a >= heap[M_LIMIT]:
        return HEAP_INVALID_FREE
    if heap[M_SHIFT] and ((a + heap[M_HEADER]) & 7) != 0:
        return HEAP_INVALID_FREE
    return HEAP_DOUBLE_FREE if tag_of(heap, a) & (T_FREE | T_LOST) else HEAP_INVALID_FREE


@leaf_kernel
def heap_size_of(mem, heap, addr):
    """The nbytes requested for live block `addr` (the caller has checked it is live)."""
    return live_nbytes(mem, heap, np.int64(addr) - heap[M_HEADER])


@leaf_kernel
def heap_free(mem, heap, addr):
    """Free live block `addr` into the list (order, then coalescing); HEAP_OK, or
    HEAP_INVALID_FREE / HEAP_DOUBLE_FREE (nothing changed)."""
    if not heap_is_live(heap, addr):
        return heap_addr_status(heap, addr)
    a = np.int64(addr) - heap[M_HEADER]
    nbytes = live_nbytes(mem, heap, a)
    size = live_size(mem, heap, a)
    note_free(heap, nbytes)
    if heap[M_DEBUG] != 0 and not heap[M_TEACH]:
        fill_words(mem, addr, (size - heap[M_HEADER]) >> 2, FREED_MARK)
    if not list_free(mem, heap, a, size):
        set_tag(heap, a, T_LOST)
        record_free(mem, heap, a, size)
        heap[M_LOST] += 1
    return HEAP_OK


@leaf_kernel
def heap_realloc(mem, heap, addr, nbytes):
    """Resize live block `addr` to `nbytes` keeping min(old, new) bytes; returns the (maybe
    moved) address, 0 if no room (block intact), -HEAP_INVALID_FREE / -HEAP_DOUBLE_FREE for
    a bad address.  In place when the block size stays the same, else malloc, copy, free."""
    if not heap_is_live(heap, addr):
        return -heap_addr_status(heap, addr)
    if nbytes < 0 or nbytes > heap[M_SPAN]:
        heap[M_FAILED] += 1
        return np.int64(0)
    a = np.int64(addr) - heap[M_HEADER]
    old = live_nbytes(mem, heap, a)
    size = live_size(mem, heap, a)
    if block_bytes(heap, np.int64(nbytes)) == size:
        record_live(mem, heap, a, np.int64(nbytes), size)
        note_resize(heap, old, np.int64(nbytes))
        return np.int64(addr)
    q = heap_malloc(mem, heap, nbytes)
    if q == 0:
        return np.int64(0)
    if not heap[M_TEACH]:
        copy_words(mem, q, addr, (min(old, np.int64(nbytes)) + 3) >> 2)
    heap_free(mem, heap, addr)
    heap[M_REALLOCS] += 1
    return q


@leaf_kernel
def heap_largest_free(mem, heap):
    """Size of the largest entry (the most one malloc can get, header included)."""
    best = np.int64(0)
    for i in range(heap[M_COUNT]):
        best = max(best, entry_size(heap, i))
    return best


@leaf_kernel
def heap_footprint(heap):
    """Bytes from base to the high-water mark of the blocks (the state only: never touches memory)."""
    return heap[M_HIGH] - heap[M_BASE]


@leaf_kernel
def heap_stats(mem, heap, out):
    """Fill out[S_*] (vm32.heap.base); holes are the entries' parts below the high-water mark."""
    common_stats(heap, out)
    high = heap[M_HIGH]
    out[S_FOOTPRINT] = heap_footprint(heap)
    holes = np.int64(0)
    largest = np.int64(0)
    for i in range(heap[M_COUNT]):
        a = entry_addr(heap, i)
        inside = min(a + entry_size(heap, i), high) - a
        if inside > 0:
            holes += inside
            largest = max(largest, inside)
    out[S_HOLE_BYTES] = holes
    out[S_LARGEST_HOLE] = largest
    out[S_FREE_LIST_LEN] = heap[M_COUNT]


@leaf_kernel
def heap_check(mem, heap, out):
    """Walk every block below the high-water mark and the list; write up to len(out)
    findings (code, address, value); return their number (0: healthy)."""
    n = 0
    count = heap[M_COUNT]
    if count > heap[M_CAP] or count < 0:
        return add_finding(out, 0, C_COUNT, count, heap[M_CAP])
    n, listed_below = check_entries(mem, heap, out, n)
    a = heap[M_FIRST]
    high = heap[M_HIGH]
    unit = np.int64(1) << heap[M_SHIFT]
    live_bytes = np.int64(0)
    live_blocks = np.int64(0)
    free_below = np.int64(0)
    while a < high:
        t = tag_of(heap, a)
        if t == T_LIVE:
            size = live_size(mem, heap, a)
            live_bytes += live_nbytes(mem, heap, a)
            live_blocks += 1
        elif t == T_FREE or t == T_LOST:
            size = free_size(mem, heap, a)
            free_below += t == T_FREE
        else:
            return add_finding(out, n, C_BAD_TAG, a, t)
        if size <= 0 or a + size > heap[M_LIMIT]:
            return add_finding(out, n, C_BAD_SIZE, a, size)
        for b in range(a + unit, min(a + size, high), unit):
            if tag_of(heap, b) != 0:
                n = add_finding(out, n, C_INTERIOR_TAG, b, tag_of(heap, b))
        a += size
    if free_below != listed_below:
        n = add_finding(out, n, C_NOT_LISTED, free_below, listed_below)
    if live_bytes != heap[M_LIVE_BYTES]:
        n = add_finding(out, n, C_LIVE_BYTES, live_bytes, heap[M_LIVE_BYTES])
    if live_blocks != heap[M_MALLOCS] - heap[M_FREES]:
        n = add_finding(out, n, C_LIVE_BLOCKS, live_blocks, heap[M_MALLOCS] - heap[M_FREES])
    return n


@leaf_kernel
def check_entries(mem, heap, out, n):
    """The list half of heap_check: returns (findings so far, entries starting below high)."""
    total = np.int64(0)
    below = np.int64(0)
    prev_end = np.int64(-1)
    rover_found = heap[M_ROVER] == -1  # -1: the next search starts at the list's start
    for i in range(heap[M_COUNT]):
        a = entry_addr(heap, i)
        s = entry_size(heap, i)
        if a < heap[M_FIRST] or s <= 0 or a + s > heap[M_LIMIT] or tag_of(heap, a) != T_FREE:
            n = add_finding(out, n, C_ENTRY_NOT_FREE, a, i)
            continue
        if free_size(mem, heap, a) != s:
            n = add_finding(out, n, C_ENTRY_SIZE, a, s)
        total += s
        below += a < heap[M_HIGH]
        if a <= heap[M_ROVER] < a + s:
            rover_found = True
        if heap[M_ORDER] == ADDRSORT and i > 0:
            if a <= entry_addr(heap, i - 1):
                n = add_finding(out, n, C_UNSORTED, a, i)
            elif a < prev_end:
                n = add_finding(out, n, C_ENTRY_OVERLAP, a, prev_end)
            elif heap[M_COALESCE] and a == prev_end:
                n = add_finding(out, n, C_UNCOALESCED, a, i)
        prev_end = a + s
    if total != heap[M_FREE_BYTES]:
        n = add_finding(out, n, C_FREE_BYTES, total, heap[M_FREE_BYTES])
    if not rover_found:
        n = add_finding(out, n, C_ROVER, heap[M_ROVER], heap[M_COUNT])
    return n, below


heap_block_bytes = block_bytes
"""The bytes a live block of nbytes occupies under the state's header and alignment."""


# ---------------------------------------------------------------- Python set-up

PARAMS = {"header": 4, "align": 8, "order": "ADDRSORT", "coalesce": True}
"""The parameters Heap(policy=first/best/worst/next, ...) takes, with their defaults."""


def order_code(order: str) -> int:
    """The ORDERS code of a list order name (any case); InvalidArgument if unknown."""
    code = ORDERS.get(str(order).upper())
    if code is None:
        raise InvalidArgument(f"unknown list order {order!r}; choose one of {', '.join(ORDERS)}")
    return code


def new_list_state(base: int, limit: int, search: int, *, header: int = 4, align: int = 8,
                   order: str = "ADDRSORT", coalesce: bool = True, debug: bool = False) -> np.ndarray:
    """A real-mode state for a list heap over [base, limit), ready for `heap_init`.

    header: bytes before each payload, a multiple of 4 from 4 to 64 (its last word holds
    the size); align: payload alignment and block-size unit, a power of two from 8 to 4096.
    """
    if isinstance(header, bool) or not isinstance(header, int) or not (4 <= header <= 64 and header % 4 == 0):
        raise InvalidArgument(f"header size {header!r} must be a multiple of 4 from 4 to 64 bytes")
    if isinstance(align, bool) or not isinstance(align, int) or not (8 <= align <= 4096 and align & (align - 1) == 0):
        raise InvalidArgument(f"alignment {align!r} must be a power of two from 8 to 4096")
    if not isinstance(coalesce, bool):
        raise InvalidArgument(f"coalesce must be True or False, not {coalesce!r}")
    nwords, cap = state_words(base, limit, align, False)
    state = np.zeros(nwords, dtype=np.int64)
    set_params(state, base, limit, (search, order_code(order), int(coalesce), header, align, 0), cap)
    state[M_DEBUG] = int(debug)
    return state


def new_teaching_state(base: int, size: int, search: int, order: int, coalesce: bool, header: int,
                       align: int) -> np.ndarray:
    """An initialised teaching-mode state (OSTEP's rules) over [base, base + size).

    align <= 0: no rounding.  `mem` is never touched in teaching mode: pass any uint32 array.
    """
    limit = base + size
    nwords, cap = state_words(base, limit, 1, True)
    state = np.zeros(nwords, dtype=np.int64)
    set_params(state, base, limit, (search, order, int(coalesce), header, max(align, 0), 1), cap)
    heap_init(np.zeros(1, np.uint32), state, np.int64(base), np.int64(limit))
    return state


def entries(state: np.ndarray) -> list[tuple[int, int]]:
    """The free list as (block address, size) pairs, in list order."""
    n = int(state[M_COUNT])
    return [(int(state[M_LIST + 2 * i]), int(state[M_LIST + 2 * i + 1])) for i in range(n)]
