"""The allocator's compiled core: a two-level segregated fit (TLSF-style) with boundary tags.

Words
-----
*range*   the managed bytes [base, limit) of some word memory `mem`; base and limit are
          multiples of 8, base > 0, so address 0 is never handed out.
*block*   a run of bytes [p - 4, p - 4 + size) named by its *payload address* p (the
          address malloc returns). p is a multiple of 8, size is a multiple of 8 (>= 8).
*header*  the word at p - 4. A live block's header holds the exact nbytes requested,
          so `heap_size_of` is one load; its size is derived: size = (nbytes + 11) & ~7.
          A free block's header holds its size.
*footer*  the last word of a free block (at p + size - 8), a copy of its size, so the block
          after it can find the start of its free predecessor.
*top*     the untouched rest of the range above every block (the "wilderness"): payloads
          from heap[M_TOP] on. The high-water mark heap[M_HIGH] is the largest top ever.
*granule* 8 bytes; granule g holds payload address base + 8 * g.
*tags*    one host byte per granule, at the end of the state array (byte
          heap[M_TAG_ORIGIN] + p // 8 of its memory): T_LIVE, T_FREE, T_CACHED (a live,
          free or cached block starts here) and T_END (the last granule of a free block;
          with T_FREE: an 8-byte free block, whose first granule is also its last).
          Tags are host data, never in `mem`, so `heap_is_live` is exact and O(1): a range
          check and one byte load. Every tag write is one byte store of a whole value (no
          read-modify-write, so it never waits for a cache miss on the tag map).
*cache*   a quick cache: a LIFO list (link at p) of freed blocks of one size <= CACHE_MAX
          (256 bytes), kept whole and unmerged; to its neighbours a cached block looks live.

    ... | hdr | payload ...........  | hdr | next | prev | ......... | footer | hdr | ...
         p-4   p                                 free block      (T_END)           next p

Layers
------
fast      heap_malloc pops a cached block of exactly the size; heap_free pushes a block
          <= 256 bytes (while the caches hold <= M_CACHE_CAP bytes: no cap by default).
          Both are a few dozen instructions, small enough for LLVM to inline into the
          caller's loop; everything else goes to malloc_general / free_slow (one call).
seam      vm32.memory.load_word / store_word: every access to `mem` (headers, footers,
          links, zeroing, copying) goes through them, so a paged memory can be swapped in
          (plus bits.prefetch_word, a read hint that is a no-op on any other memory type).
classes   size -> (fl, sl): sizes < SMALL (256 bytes) map exactly to one list per 8 bytes;
          larger sizes to 32 sub-lists per power of two. Bitmaps (heap[M_FL_MAP], one SL map
          per fl) find the first non-empty list >= a class in O(1) (bit scans).
lists     doubly linked free lists through the blocks: next at p, prev at p + 4 (0 = none).
          An 8-byte free block has no room for size, links and footer: its tag says
          T_FREE | T_END (size 8), its links are at p - 4 and p.
blocks    split (malloc takes the front, the rest stays free), merge (free joins the block
          with free neighbours and with top), so no two free blocks are ever adjacent and
          no free block touches top. The block below p is free iff granule p - 8 has T_END
          (then the footer at p - 8 gives its size): one tag lookup, next to p's own.
general   malloc_general: first non-empty list that surely fits (O(1)), else the first
          CLASS_SCAN (8) blocks of the request's own class, else top below the high-water
          mark; else malloc_grow: empty the caches into the lists (merging their blocks)
          and look again, then grow top; when top is full, first fit in the own class.
          free_slow: merge with the free neighbours (or top), list the result.
kernels   heap_malloc, heap_calloc, heap_free, heap_realloc, heap_is_live, heap_size_of,
          heap_init, heap_check, heap_cached_blocks, heap_largest_free.

Invariants (checked by heap_check)
----------------------------------
    blocks tile [base + 4, top - 4) exactly; every granule that is not a block start
        has tag 0, but the last granule of a free block of > 8 bytes, which has T_END;
        every granule at or above top has tag 0
    every block is exactly one of live, free, cached (tag)
    live_bytes == sum of nbytes of live blocks; mallocs - frees == number of live blocks
    free_bytes == sum of sizes of free blocks;  free_blocks == their number
    cache_bytes == sum of sizes of cached blocks; each is in the cache of its size
    every free block is in exactly the list of its class; if size > 8, footer == size
    no two free blocks are adjacent; the block below top is not free
    bit (fl, sl) of the bitmaps is set  <=>  list (fl, sl) is non-empty

Waste bound
-----------
Internal: a live block of nbytes occupies (nbytes + 11) & ~7 bytes: at most nbytes + 11,
at most 2x nbytes for nbytes >= 11 (the 8-byte alignment the contract asks for already
costs a 1-word block 8 bytes, so the 4-byte header is free there).
Caches: they add nothing to the footprint. The high-water mark (the footprint) rises only
in malloc_grow, after the caches were emptied into the free lists and those lists could
not serve the request, or when realloc grows the block at top in place, after emptying
the caches too; so whenever the footprint grows the caches are empty and all free space
is coalesced, exactly as without caches. Between growths the caches
hold at most the free space inside the footprint (and at most M_CACHE_CAP bytes, if set).
External: free space is always coalesced; a request of size s >= 256 is served from a list
whose every block is >= s (class rounded up, at most 1/32 = 3.1% above s) or else from
the first 8 blocks of its own class, and only then does top grow. So, at every growth,
    footprint <= live block bytes + free space no request could use,
and the last term is the classic segregated-fit fragmentation (no worst-case constant:
an adversary can always pin small live blocks between free holes).
Measured (benchmarks/heap_replay.py, CPU time per operation on a 2-core EPYC VM):
sandmark's map/unmap sequence (1.8e8 operations) 5.1 ns at 1.19x peak live; the
log-uniform mix (1e7 operations) 45 ns at 1.10x; the synthetic tiny trace 6.4 ns at
1.37x (1..4-word blocks pay the header and the 8-byte alignment; its peak live is 20 KB).

Statuses
--------
heap_free returns HEAP_OK, HEAP_INVALID_FREE (not a block start: never allocated, interior
pointer, out of range, 0, or a freed block that was since merged into a neighbour) or
HEAP_DOUBLE_FREE (the address starts a free block). heap_realloc returns the new address,
0 when there is no room (the old block is intact), or -HEAP_INVALID_FREE / -HEAP_DOUBLE_FREE
for a bad address (nothing changed).
"""

import numpy as np

from vm32.heap.base import (  # noqa: F401 - the shared words and helpers, also read as core.NAME
    FREED_MARK,
    HEAP_DOUBLE_FREE,
    HEAP_INVALID_FREE,
    HEAP_OK,
    M_BASE,
    M_CALLOCS,
    M_DEBUG,
    M_FAILED,
    M_FREES,
    M_LIMIT,
    M_LIVE_BYTES,
    M_MALLOCS,
    M_PEAK_LIVE,
    M_REALLOCS,
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
    store,
)
from vm32.heap.bits import load_byte, lsb, msb, prefetch_word, store_byte
from vm32.jit import inline_leaf_kernel, ir_inline_leaf_kernel, leaf_kernel, outline_leaf_kernel
from vm32.memory import load_word

NAME = "tlsf"
ID = 0
SUMMARY = "two-level segregated fit with quick caches: O(1), the default"
PARAMS = {"cache": True, "cache_cap": None}
"""The parameters Heap(policy="tlsf", ...) takes, with their defaults (see vm32.heap.Heap)."""

# Inlining (vm32.jit): the few big helpers on the general malloc/free paths are
# ir_inline_leaf_kernel - a call between kernels passes each array as 7 words on the
# stack, and LLVM does not inline callees this size, so the call chain
# malloc -> carve -> make_free cost more than the work.  heap_malloc, heap_calloc,
# heap_free, heap_is_live, heap_size_of are inline_leaf_kernel: they go into the
# caller's loop (left to itself LLVM did not inline heap_free: the call cost ~2 ns per
# operation on the sandmark replay).  Their slow paths are outline_leaf_kernel.

ALIGN = 8  # payload alignment and granule size
HEADER = 4  # bytes of header before each payload

T_LIVE = 1  # a live block starts here
T_FREE = 2  # a free block starts here
T_CACHED = 4  # a block in a quick cache starts here (freed, not yet merged)
T_END = 8  # the last granule of a free block; with T_FREE: an 8-byte free block

SL_LOG = 5
SL_COUNT = 1 << SL_LOG  # 32 sub-lists per power of two
SMALL = SL_COUNT * ALIGN  # 256: sizes below are exact classes (fl 0, sl = size / 8)
SMALL_LOG = 8  # msb(SMALL)
FL_COUNT = 26  # sizes up to 2**33 after rounding up
CACHE_MAX = 256  # blocks up to this size go through the quick caches
CACHE_CLASSES = CACHE_MAX // ALIGN + 1
CACHE_CAP = 1 << 62  # default M_CACHE_CAP: no cap (malloc empties the caches before the heap grows)
CLASS_SCAN = 8  # blocks of its own class a large request looks at before growing the heap

# state (one int64 array, called heap in the code) layout: scalars, SL bitmaps, list heads, tags
# (M_BASE, M_LIMIT, M_SPAN, M_LIVE_BYTES, M_POLICY, M_PEAK_LIVE, M_MALLOCS, M_CALLOCS, M_FREES,
# M_REALLOCS, M_FAILED, M_DEBUG: vm32.heap.base, the words every policy shares)
M_TOP = 3  # payload address of the wilderness (first payload above every block)
M_HIGH = 4  # largest M_TOP ever: footprint = M_HIGH - HEADER - base
M_FREE_BYTES = 8  # sum of sizes of free blocks (top excluded)
M_FREE_BLOCKS = 9
M_FL_MAP = 15  # bit fl set <=> some list of first level fl is non-empty
M_CACHE_BYTES = 17  # bytes of blocks in the quick caches
M_TAG_ORIGIN = 18  # byte index of the tag of payload address p: M_TAG_ORIGIN + p // 8
M_CACHE_CAP = 19  # the caches hold at most this many bytes (0: caches off)
META_SCALARS = 32
M_CACHE = META_SCALARS  # CACHE_CLASSES heads of the quick caches, by block size / 8
M_SL_MAP = M_CACHE + CACHE_CLASSES  # FL_COUNT words: bit sl set <=> list (fl, sl) non-empty
M_HEADS = M_SL_MAP + FL_COUNT  # FL_COUNT * SL_COUNT list heads (payload address or 0)
M_TAGS = M_HEADS + FL_COUNT * SL_COUNT  # the tag map: 8 one-byte tags per word (low byte first)
META_WORDS = M_TAGS  # words before the tag map


def state_words(base, limit):
    """Length of the int64 state array of a heap over [base, limit)."""
    return M_TAGS + ((limit - base) >> 6) + 2


# ---------------------------------------------------------------- accessors


@leaf_kernel
def block_size(nbytes):
    """Size in bytes of the live block that holds `nbytes` (header included, 8-aligned)."""
    return (nbytes + (HEADER + ALIGN - 1)) & ~(ALIGN - 1)


@leaf_kernel
def tag_index(heap, p):
    """Byte index in the state array of the tag of payload address `p` (8-aligned, in
    [base, limit]); unsigned, so numba adds no negative-index fix-up."""
    return np.uint64(heap[M_TAG_ORIGIN] + (np.int64(p) >> 3))


@leaf_kernel
def tag_of(heap, p):
    """The tag of payload address `p` (an 8-aligned address in [base, limit])."""
    return load_byte(heap, tag_index(heap, p))


@leaf_kernel
def set_tag(heap, p, tag):
    """Set the tag of payload address `p` to `tag` (0..255): one byte store, no load."""
    store_byte(heap, tag_index(heap, p), tag)




@leaf_kernel
def mapping(size):
    """The (fl, sl) class of a free block of `size` bytes (>= 8)."""
    if size < SMALL:
        return 0, size >> 3
    m = msb(size)
    return m - (SMALL_LOG - 1), (size >> (m - SL_LOG)) - SL_COUNT


@leaf_kernel
def mapping_search(size):
    """The smallest class whose every block is >= `size` (size rounded up for big sizes)."""
    if size >= SMALL:
        size += (np.int64(1) << (msb(size) - SL_LOG)) - 1
    return mapping(size)


# ---------------------------------------------------------------- free lists


@leaf_kernel
def link_at(p, size):
    """Address of the `next` link of free block `p` (`prev` is 4 bytes above).

    An 8-byte free block has no room for a size word and two links, so it stores its
    links at p - 4 and p; its size is known from its tag instead (T_FREE | T_END).
    """
    return p - HEADER if size == ALIGN else p


@leaf_kernel
def list_push(mem, heap, p, size):
    """Put free block `p` of `size` bytes at the head of its class's list."""
    fl, sl = mapping(size)
    i = M_HEADS + fl * SL_COUNT + sl
    head = heap[i]
    link = link_at(p, size)
    store(mem, link, head)
    store(mem, link + 4, 0)
    if head != 0:
        store(mem, link_at(head, size) + 4, p)
    heap[i] = p
    heap[M_SL_MAP + fl] |= np.int64(1) << sl
    heap[M_FL_MAP] |= np.int64(1) << fl


@leaf_kernel
def list_remove(mem, heap, p, size):
    """Take free block `p` of `size` bytes out of its class's list."""
    link = link_at(p, size)
    nxt = load(mem, link)
    prv = load(mem, link + 4)
    if nxt != 0:
        store(mem, link_at(nxt, size) + 4, prv)
    if prv != 0:
        store(mem, link_at(prv, size), nxt)
        return
    fl, sl = mapping(size)
    heap[M_HEADS + fl * SL_COUNT + sl] = nxt
    if nxt == 0:
        slmap = heap[M_SL_MAP + fl] & ~(np.int64(1) << sl)
        heap[M_SL_MAP + fl] = slmap
        if slmap == 0:
            heap[M_FL_MAP] &= ~(np.int64(1) << fl)


@leaf_kernel
def find_free(heap, size):
    """A free block of at least `size` bytes from the first non-empty fitting list, or 0."""
    fl, sl = mapping_search(size)
    if fl >= FL_COUNT:
        return 0
    slmap = heap[M_SL_MAP + fl] & (np.int64(-1) << sl)
    if slmap == 0:
        flmap = heap[M_FL_MAP] & (np.int64(-1) << (fl + 1))
        if flmap == 0:
            return 0
        fl = lsb(flmap)
        slmap = heap[M_SL_MAP + fl]
    return heap[M_HEADS + fl * SL_COUNT + lsb(slmap)]


# ---------------------------------------------------------------- blocks




@leaf_kernel
def free_size(mem, tag, p):
    """Size of free block `p` whose tag is `tag`."""
    if tag & T_END:
        return np.int64(ALIGN)
    return load(mem, p - HEADER)


@ir_inline_leaf_kernel
def make_free(mem, heap, p, size, mark_end):
    """Turn [p - 4, p - 4 + size) into one listed free block. Its last granule gets the
    T_END mark if `mark_end` (callers pass False when that granule carries it already).

    Requires: the block below is not free, the block above is not free and is not top,
    every granule inside is untagged (but the last one may hold T_END).
    """
    if size == ALIGN:
        set_tag(heap, p, T_FREE | T_END)
    else:
        store(mem, p - HEADER, size)
        store(mem, p + size - 2 * HEADER, size)
        set_tag(heap, p, T_FREE)
        if mark_end:
            set_tag(heap, p + size - ALIGN, T_END)
    list_push(mem, heap, p, size)
    heap[M_FREE_BYTES] += size
    heap[M_FREE_BLOCKS] += 1


@leaf_kernel
def unmake_free(mem, heap, p, size):
    """Forget free block `p` of `size` bytes: unlinked, start tag cleared. Its T_END mark
    (if size > 8) stays for the caller to reuse or clear. Undoes make_free."""
    list_remove(mem, heap, p, size)
    set_tag(heap, p, 0)
    heap[M_FREE_BYTES] -= size
    heap[M_FREE_BLOCKS] -= 1


@ir_inline_leaf_kernel
def release(mem, heap, p, size):
    """Make [p - 4, p - 4 + size) free space, merged with the free block or top above it.

    Requires: the block below p is not free; p's tag is rewritten. Changes: top may drop to p.
    """
    nxt = p + size
    if nxt == heap[M_TOP]:
        heap[M_TOP] = p
        set_tag(heap, p, 0)
        return
    t = tag_of(heap, nxt)
    mark_end = True
    if t & T_FREE:
        nsize = free_size(mem, t, nxt)
        unmake_free(mem, heap, nxt, nsize)
        size += nsize
        mark_end = nsize == ALIGN  # else nxt's T_END ends the merged block too
    if heap[M_DEBUG] != 0 and size > 16:
        fill_words(mem, p + 8, (size - 16) >> 2, FREED_MARK)
    make_free(mem, heap, p, size, mark_end)


@leaf_kernel
def take(mem, heap, p, fsize, size):
    """Hand out the front `size` bytes of free block `p` (unlinked, `fsize` bytes); keep the rest free."""
    set_tag(heap, p, T_LIVE)
    rest = fsize - size
    if rest > 0:
        make_free(mem, heap, p + size, rest, False)  # the old T_END ends the rest
    elif fsize > ALIGN:
        set_tag(heap, p + fsize - ALIGN, 0)  # (an 8-byte block's T_END was its start tag)



# ---------------------------------------------------------------- kernels


@leaf_kernel
def heap_init(mem, heap, base, limit):
    """Set up an empty heap over [base, limit) in a state from `new_state` (parameters set,
    everything else zero); writes the pad word below the first header into `mem`.

    Requires base, limit multiples of 8, 0 < base, base + 16 <= limit, both inside mem.
    """
    heap[M_BASE] = base
    heap[M_LIMIT] = limit
    heap[M_SPAN] = limit - base
    heap[M_TOP] = base + ALIGN
    heap[M_HIGH] = base + ALIGN
    heap[M_TAG_ORIGIN] = 8 * M_TAGS - (base >> 3)
    store(mem, base, 0)  # the pad word below the first header


@inline_leaf_kernel
def heap_malloc(mem, heap, nbytes):
    """Address of a new live block of `nbytes` bytes (contents undefined), or 0 if no room.

    Order: a cached block of exactly the size (this short function, which LLVM inlines
    into callers); else malloc_general.
    """
    size = block_size(np.int64(nbytes))
    if np.uint64(size) <= CACHE_MAX and nbytes >= 0:
        i = np.uint64(M_CACHE + (size >> 3))
        p = heap[i]
        if p != 0:
            nxt = load(mem, p)
            heap[i] = nxt
            prefetch_word(mem, nxt)  # the next pop of this size reads nxt's link: start now
            heap[M_CACHE_BYTES] -= size
            set_tag(heap, p, T_LIVE)
            store(mem, p - HEADER, nbytes)
            note_alloc(heap, nbytes)
            return p
    return malloc_general(mem, heap, nbytes)


@outline_leaf_kernel
def malloc_general(mem, heap, nbytes):
    """heap_malloc without a cached block: the first list that surely fits (O(1)); else the
    first CLASS_SCAN blocks of the request's own class; else top below the high-water mark;
    else malloc_grow."""
    if nbytes < 0 or nbytes > heap[M_SPAN]:
        heap[M_FAILED] += 1
        return np.int64(0)
    size = block_size(np.int64(nbytes))
    p = find_free(heap, size)
    if p == 0 and size >= SMALL:
        p = fit_in_class(mem, heap, size, CLASS_SCAN)
    if p != 0:
        carve(mem, heap, p, size)
    else:
        p = heap[M_TOP]
        if p + size > heap[M_HIGH]:
            return malloc_grow(mem, heap, nbytes)
        heap[M_TOP] = p + size
        set_tag(heap, p, T_LIVE)
    store(mem, p - HEADER, nbytes)
    note_alloc(heap, nbytes)
    return p


@leaf_kernel
def malloc_grow(mem, heap, nbytes):
    """heap_malloc when nothing below the high-water mark fits. Before the footprint grows,
    the quick caches are emptied into the free lists (merging their blocks) and the lists
    tried again; then top grows; when top is full, first fit over the whole own class."""
    size = block_size(np.int64(nbytes))
    if heap[M_CACHE_BYTES] != 0:
        cache_flush(mem, heap)
        p = find_free(heap, size)
        if p == 0 and size >= SMALL:
            p = fit_in_class(mem, heap, size, CLASS_SCAN)
        if p != 0:
            carve(mem, heap, p, size)
            store(mem, p - HEADER, nbytes)
            note_alloc(heap, nbytes)
            return p
    p = heap[M_TOP]
    if p + size <= heap[M_LIMIT]:
        heap[M_TOP] = p + size
        heap[M_HIGH] = max(heap[M_HIGH], p + size)
        set_tag(heap, p, T_LIVE)
    else:
        p = fit_in_class(mem, heap, size, heap[M_FREE_BLOCKS])
        if p == 0:
            heap[M_FAILED] += 1
            return np.int64(0)
        carve(mem, heap, p, size)
    store(mem, p - HEADER, nbytes)
    note_alloc(heap, nbytes)
    return p


@ir_inline_leaf_kernel
def carve(mem, heap, p, size):
    """Make the front `size` bytes of free block `p` live; the rest stays free."""
    fsize = free_size(mem, tag_of(heap, p), p)
    unmake_free(mem, heap, p, fsize)
    take(mem, heap, p, fsize, size)


@leaf_kernel
def fit_in_class(mem, heap, size, max_scan):
    """First block of >= `size` bytes among the first `max_scan` of size's own class, or 0.

    find_free skips the own class of a large size (its blocks may be smaller); this
    first-fit look keeps such blocks in use instead of growing the heap.
    """
    if size < SMALL:
        return np.int64(0)  # exact classes: find_free has looked already
    fl, sl = mapping(size)
    p = heap[M_HEADS + fl * SL_COUNT + sl]
    while p != 0 and max_scan > 0:
        if load(mem, p - HEADER) >= size:
            return p
        p = load(mem, p)
        max_scan -= 1
    return np.int64(0)


@inline_leaf_kernel
def heap_calloc(mem, heap, nbytes):
    """Like heap_malloc, with the first nbytes (rounded up to words) zeroed."""
    p = heap_malloc(mem, heap, nbytes)
    if p != 0:
        fill_words(mem, p, (np.int64(nbytes) + 3) >> 2, 0)
        heap[M_CALLOCS] += 1
    return p


@inline_leaf_kernel
def heap_is_live(heap, addr):
    """True iff `addr` (any int64) is the payload address of a live block. O(1), never faults."""
    # g = granule index - 1 of addr, rotated right by 3 bits: an address below base + 8
    # wraps around and a misaligned one moves its low bits to the top, so one unsigned
    # compare checks range and alignment (one branch instead of three).
    x = np.uint64(np.int64(addr) - heap[M_BASE] - ALIGN)
    g = (x >> np.uint64(3)) | (x << np.uint64(61))
    if g >= np.uint64((heap[M_SPAN] - ALIGN) >> 3):
        return False
    return (load_byte(heap, np.uint64(8 * M_TAGS + 1) + g) & T_LIVE) != 0


@inline_leaf_kernel
def heap_size_of(mem, heap, addr):
    """The nbytes requested for live block `addr` (the caller has checked it is live)."""
    return np.int64(load_word(mem, np.uint64(np.int64(addr) - HEADER)))


@leaf_kernel
def addr_status(heap, addr):
    """HEAP_OK if `addr` is live, else HEAP_DOUBLE_FREE or HEAP_INVALID_FREE."""
    if heap_is_live(heap, addr):
        return HEAP_OK
    off = np.int64(addr) - heap[M_BASE]
    if off <= 0 or off >= heap[M_SPAN] or (off & 7) != 0:
        return HEAP_INVALID_FREE
    if tag_of(heap, np.int64(addr)) & (T_FREE | T_CACHED):
        return HEAP_DOUBLE_FREE
    return HEAP_INVALID_FREE


@inline_leaf_kernel
def heap_free(mem, heap, addr):
    """Free live block `addr`; HEAP_OK, or HEAP_INVALID_FREE / HEAP_DOUBLE_FREE (nothing changed).

    A block <= CACHE_MAX bytes goes whole into the quick cache of its size (unless that
    would take the caches above M_CACHE_CAP bytes): this short path, with one call for
    everything else (free_slow), is what LLVM inlines into callers.
    """
    if heap_is_live(heap, addr):
        p = np.int64(addr)
        nbytes = load(mem, p - HEADER)
        size = block_size(nbytes)
        if size <= CACHE_MAX and heap[M_CACHE_BYTES] + size <= heap[M_CACHE_CAP]:
            heap[M_LIVE_BYTES] -= nbytes
            heap[M_FREES] += 1
            i = np.uint64(M_CACHE + (size >> 3))
            store(mem, p, heap[i])
            heap[i] = p
            heap[M_CACHE_BYTES] += size
            set_tag(heap, p, T_CACHED)
            return HEAP_OK
    return free_slow(mem, heap, addr)


@outline_leaf_kernel
def free_slow(mem, heap, addr):
    """heap_free for everything but a cached free: a bad address (its status), or a block
    that the caches do not take (merged into free space by free_block; HEAP_OK)."""
    if not heap_is_live(heap, addr):
        return addr_status(heap, addr)
    p = np.int64(addr)
    nbytes = load(mem, p - HEADER)
    heap[M_LIVE_BYTES] -= nbytes
    heap[M_FREES] += 1
    free_block(mem, heap, p, block_size(nbytes))
    return HEAP_OK


@ir_inline_leaf_kernel
def free_block(mem, heap, p, size):
    """Turn block `p` of `size` bytes (live or cached; accounted for) into free space, merged
    with its free neighbours and top."""
    below = tag_of(heap, p - ALIGN)  # T_END: the block below is free
    if below & T_END:
        psize = np.int64(ALIGN) if below & T_FREE else load(mem, p - 2 * HEADER)  # its footer
        set_tag(heap, p, 0)
        if psize > ALIGN:
            set_tag(heap, p - ALIGN, 0)
        p -= psize
        unmake_free(mem, heap, p, psize)
        size += psize
    release(mem, heap, p, size)


@leaf_kernel
def cache_flush(mem, heap):
    """Empty the quick caches: every cached block becomes free space, merged."""
    for c in range(CACHE_CLASSES):
        p = heap[M_CACHE + c]
        heap[M_CACHE + c] = 0
        while p != 0:
            nxt = load(mem, p)
            free_block(mem, heap, p, np.int64(c) << 3)
            p = nxt
    heap[M_CACHE_BYTES] = 0


@leaf_kernel
def heap_realloc(mem, heap, addr, nbytes):
    """Resize live block `addr` to `nbytes`, keeping min(old, new) bytes of contents.

    Returns the (possibly moved) address; 0 if there is no room (the block is intact);
    -HEAP_INVALID_FREE or -HEAP_DOUBLE_FREE if `addr` is not live (nothing changed).
    Shrinks and grows in place when the space above allows; otherwise moves.
    """
    if not heap_is_live(heap, addr):
        return -addr_status(heap, addr)
    if nbytes < 0 or nbytes > heap[M_SPAN]:
        heap[M_FAILED] += 1
        return np.int64(0)
    p = np.int64(addr)
    old = load(mem, p - HEADER)
    osize = block_size(old)
    size = block_size(np.int64(nbytes))
    if size > osize and not grow_in_place(mem, heap, p, osize, size):
        q = heap_malloc(mem, heap, nbytes)
        if q == 0:
            return np.int64(0)
        copy_words(mem, q, p, (min(old, np.int64(nbytes)) + 3) >> 2)
        heap_free(mem, heap, p)
        heap[M_REALLOCS] += 1
        return q
    if size < osize:
        release(mem, heap, p + size, osize - size)
    store(mem, p - HEADER, nbytes)
    live = heap[M_LIVE_BYTES] + np.int64(nbytes) - old
    heap[M_LIVE_BYTES] = live
    if live > heap[M_PEAK_LIVE]:
        heap[M_PEAK_LIVE] = live
    heap[M_REALLOCS] += 1
    return p


@leaf_kernel
def grow_in_place(mem, heap, p, osize, size):
    """Extend live block `p` from `osize` to `size` bytes into top or a free block above it.

    Returns False (nothing changed) when the space above is too small.
    """
    nxt = p + osize
    if nxt == heap[M_TOP]:
        if p + size > heap[M_LIMIT]:
            return False
        if p + size > heap[M_HIGH]:
            if heap[M_CACHE_BYTES] != 0:
                cache_flush(mem, heap)  # the footprint grows only with empty caches (p stays at top)
            heap[M_HIGH] = p + size
        heap[M_TOP] = p + size
        return True
    t = tag_of(heap, nxt)
    if (t & T_FREE) == 0:
        return False
    nsize = free_size(mem, t, nxt)
    if osize + nsize < size:
        return False
    unmake_free(mem, heap, nxt, nsize)
    rest = osize + nsize - size
    if rest > 0:
        make_free(mem, heap, p + size, rest, False)  # nxt's T_END ends the rest
    elif nsize > ALIGN:
        set_tag(heap, nxt + nsize - ALIGN, 0)
    return True


# ---------------------------------------------------------------- check and stats

# heap_check finding codes (translated to text by vm32.heap.Heap.check)
C_TAG_BEYOND_TOP = 1
C_BAD_TAG = 2
C_BLOCK_OUT_OF_RANGE = 3
C_BAD_SIZE = 4
C_BAD_FOOTER = 5
C_END_MARK = 6
C_ADJACENT_FREE = 7
C_FREE_BELOW_TOP = 8
C_INTERIOR_TAG = 9
C_LIVE_BYTES = 10
C_LIVE_BLOCKS = 11
C_FREE_BYTES = 12
C_FREE_BLOCKS = 13
C_LIST_NOT_FREE = 14
C_LIST_WRONG_CLASS = 15
C_LIST_BAD_PREV = 16
C_LIST_COUNT = 17
C_BITMAP = 18
C_TOP = 19
C_LIST_CYCLE = 20
C_CACHE_BYTES = 21
C_CACHE_NOT_CACHED = 22
C_CACHE_COUNT = 23


CHECK_MESSAGES = {
    C_TAG_BEYOND_TOP: "granule at {a:#x} above top has tag {v}",
    C_BAD_TAG: "block at {a:#x} has tag {v}: not exactly one of live, free, cached (or T_END not free)",
    C_BLOCK_OUT_OF_RANGE: "block at {a:#x} of {v} bytes runs past top",
    C_BAD_SIZE: "free or cached block at {a:#x} has a bad size {v}",
    C_BAD_FOOTER: "free block at {a:#x} has footer {v} != its size",
    C_END_MARK: "last granule {a:#x} of a block has tag {v}: T_END must be there iff the block is free",
    C_ADJACENT_FREE: "free block at {a:#x} ({v} bytes) follows another free block",
    C_FREE_BELOW_TOP: "the block below top ({a:#x}) is free: should have merged into top",
    C_INTERIOR_TAG: "granule {a:#x} inside a block has tag {v}",
    C_LIVE_BYTES: "live blocks hold {a} bytes but the counter says {v}",
    C_LIVE_BLOCKS: "{a} live blocks but the counter says {v}",
    C_FREE_BYTES: "free blocks hold {a} bytes but the counter says {v}",
    C_FREE_BLOCKS: "{a} free blocks but the counter says {v}",
    C_LIST_NOT_FREE: "list {v} holds {a:#x}, which is not a free block in range",
    C_LIST_WRONG_CLASS: "block {a:#x} is in list {v} (negative: quick cache -{v}), not the one of its size",
    C_LIST_BAD_PREV: "free block {a:#x} has prev link {v:#x}, not its predecessor in the list",
    C_LIST_COUNT: "lists hold {a} blocks but the walk found {v} free blocks",
    C_BITMAP: "bitmap bit for list {a} (negative: first level -{a}-1) is wrong (bitmap {v})",
    C_TOP: "top {a:#x} is outside the range or above the high-water mark {v:#x}",
    C_LIST_CYCLE: "lists or caches hold more blocks than the {v} found by the walk (cycle?) at {a:#x}",
    C_CACHE_BYTES: "cached blocks hold {a} bytes but the counter says {v}",
    C_CACHE_NOT_CACHED: "quick cache {v} holds {a:#x}, which is not a cached block in range",
    C_CACHE_COUNT: "quick caches hold {a} blocks but the walk found {v} cached blocks (or the counter differs)",
}


@leaf_kernel
def heap_check(mem, heap, out):
    """Walk every block and list; write up to len(out) findings (code, address, value) to out.

    Returns the number of findings (0: healthy); may exceed len(out), extra ones are dropped.
    """
    n = 0
    base = heap[M_BASE]
    top = heap[M_TOP]
    if top < base + ALIGN or top > heap[M_LIMIT] or top > heap[M_HIGH] or (top - base) & 7:
        return add_finding(out, 0, C_TOP, top, heap[M_HIGH])
    for a in range(top, heap[M_HIGH] + ALIGN, ALIGN):
        if tag_of(heap, a) != 0:
            n = add_finding(out, n, C_TAG_BEYOND_TOP, a, tag_of(heap, a))
    live_bytes = 0
    live_blocks = 0
    free_bytes = 0
    free_blocks = 0
    cached_bytes = 0
    cached_blocks = 0
    prev_free = False
    p = base + ALIGN
    while p < top:
        t = np.int64(tag_of(heap, p))
        kinds = (t & T_LIVE) + ((t & T_FREE) >> 1) + ((t & T_CACHED) >> 2)
        if kinds != 1 or t & ~15 or (t & T_END and not t & T_FREE):
            return add_finding(out, n, C_BAD_TAG, p, t)
        end_tag = 0  # what the block's last granule must hold (when it is not its start)
        if t & (T_LIVE | T_CACHED):
            nbytes = load(mem, p - HEADER)
            size = block_size(nbytes)
            if t & T_LIVE:
                live_bytes += nbytes
                live_blocks += 1
            else:
                cached_bytes += size
                cached_blocks += 1
                if size > CACHE_MAX:
                    n = add_finding(out, n, C_BAD_SIZE, p, size)
            prev_free = False
        else:
            size = free_size(mem, t, p)
            if size < ALIGN or size & 7 or (size == ALIGN) != ((t & T_END) != 0):
                return add_finding(out, n, C_BAD_SIZE, p, size)
            if size > ALIGN and p + size <= top and load(mem, p + size - 2 * HEADER) != size:
                n = add_finding(out, n, C_BAD_FOOTER, p, load(mem, p + size - 2 * HEADER))
            if prev_free:
                n = add_finding(out, n, C_ADJACENT_FREE, p, size)
            free_bytes += size
            free_blocks += 1
            prev_free = True
            end_tag = T_END
        if p + size > top:
            return add_finding(out, n, C_BLOCK_OUT_OF_RANGE, p, size)
        for a in range(p + ALIGN, p + size - ALIGN, ALIGN):
            if tag_of(heap, a) != 0:
                n = add_finding(out, n, C_INTERIOR_TAG, a, tag_of(heap, a))
        if size > ALIGN and tag_of(heap, p + size - ALIGN) != end_tag:
            n = add_finding(out, n, C_END_MARK, p + size - ALIGN, tag_of(heap, p + size - ALIGN))
        p += size
    if prev_free:
        n = add_finding(out, n, C_FREE_BELOW_TOP, top, 0)
    if live_bytes != heap[M_LIVE_BYTES]:
        n = add_finding(out, n, C_LIVE_BYTES, live_bytes, heap[M_LIVE_BYTES])
    if live_blocks != heap[M_MALLOCS] - heap[M_FREES]:
        n = add_finding(out, n, C_LIVE_BLOCKS, live_blocks, heap[M_MALLOCS] - heap[M_FREES])
    if free_bytes != heap[M_FREE_BYTES]:
        n = add_finding(out, n, C_FREE_BYTES, free_bytes, heap[M_FREE_BYTES])
    if free_blocks != heap[M_FREE_BLOCKS]:
        n = add_finding(out, n, C_FREE_BLOCKS, free_blocks, heap[M_FREE_BLOCKS])
    if cached_bytes != heap[M_CACHE_BYTES]:
        n = add_finding(out, n, C_CACHE_BYTES, cached_bytes, heap[M_CACHE_BYTES])
    n = check_caches(mem, heap, out, n, cached_blocks)
    return check_lists(mem, heap, out, n, free_blocks)


@leaf_kernel
def check_caches(mem, heap, out, n, cached):
    """Third part of heap_check: every quick cache; `cached` cached blocks expected."""
    found = 0
    for c in range(CACHE_CLASSES):
        p = heap[M_CACHE + c]
        while p != 0:
            if not in_range(heap, p) or (tag_of(heap, p) & T_CACHED) == 0:
                n = add_finding(out, n, C_CACHE_NOT_CACHED, p, c)
                break
            if block_size(load(mem, p - HEADER)) != c << 3:
                n = add_finding(out, n, C_LIST_WRONG_CLASS, p, -c)
            found += 1
            if found > cached:
                return add_finding(out, n, C_LIST_CYCLE, p, cached)
            p = load(mem, p)
    if found != cached:
        n = add_finding(out, n, C_CACHE_COUNT, found, cached)
    return n


@leaf_kernel
def check_lists(mem, heap, out, n, listed):
    """Second half of heap_check: every list and bitmap bit; `listed` free blocks expected."""
    found = 0
    for fl in range(FL_COUNT):
        for sl in range(SL_COUNT):
            head = heap[M_HEADS + fl * SL_COUNT + sl]
            bit = (heap[M_SL_MAP + fl] >> sl) & 1
            if (head != 0) != (bit != 0):
                n = add_finding(out, n, C_BITMAP, fl * SL_COUNT + sl, bit)
            p = head
            prv = 0
            while p != 0:
                if not in_range(heap, p) or (tag_of(heap, p) & T_FREE) == 0:
                    n = add_finding(out, n, C_LIST_NOT_FREE, p, fl * SL_COUNT + sl)
                    break
                size = free_size(mem, tag_of(heap, p), p)
                cfl, csl = mapping(size)
                if cfl != fl or csl != sl:
                    n = add_finding(out, n, C_LIST_WRONG_CLASS, p, fl * SL_COUNT + sl)
                    break
                link = link_at(p, size)
                if load(mem, link + 4) != prv:
                    n = add_finding(out, n, C_LIST_BAD_PREV, p, load(mem, link + 4))
                found += 1
                if found > listed:
                    return add_finding(out, n, C_LIST_CYCLE, p, listed)
                prv = p
                p = load(mem, link)
        if ((heap[M_FL_MAP] >> fl) & 1) != (heap[M_SL_MAP + fl] != 0):
            n = add_finding(out, n, C_BITMAP, -fl - 1, heap[M_FL_MAP])
    if found != listed:
        n = add_finding(out, n, C_LIST_COUNT, found, listed)
    return n


@leaf_kernel
def in_range(heap, p):
    """True iff `p` is an 8-aligned payload address inside the range."""
    off = p - heap[M_BASE]
    return off > 0 and off < heap[M_SPAN] and (off & 7) == 0



@leaf_kernel
def heap_cached_blocks(mem, heap):
    """Number of blocks in the quick caches (walks them)."""
    n = 0
    for c in range(CACHE_CLASSES):
        p = heap[M_CACHE + c]
        while p != 0:
            n += 1
            p = load(mem, p)
    return n


@leaf_kernel
def heap_largest_free(mem, heap):
    """Size in bytes (header included) of the largest free block, the room in top included."""
    best = heap[M_LIMIT] - heap[M_TOP]
    flmap = heap[M_FL_MAP]
    if flmap == 0:
        return best
    fl = msb(flmap)
    sl = msb(heap[M_SL_MAP + fl])
    p = heap[M_HEADS + fl * SL_COUNT + sl]
    while p != 0:
        size = free_size(mem, tag_of(heap, p), p)
        best = max(best, size)
        p = load(mem, link_at(p, size))
    return best


@leaf_kernel
def heap_footprint(heap):
    """Bytes from base to the high-water mark of the blocks (the state only: never touches memory)."""
    return heap[M_HIGH] - HEADER - heap[M_BASE]


@leaf_kernel
def heap_stats(mem, heap, out):
    """Fill out[S_*] (vm32.heap.base): counters, footprint, and the holes inside the footprint
    (free blocks, cached blocks and the unused space between top and the high-water mark)."""
    common_stats(heap, out)
    out[S_FOOTPRINT] = heap_footprint(heap)
    gap = heap[M_HIGH] - heap[M_TOP]
    out[S_HOLE_BYTES] = heap[M_FREE_BYTES] + heap[M_CACHE_BYTES] + gap
    largest = gap
    flmap = heap[M_FL_MAP]
    if flmap != 0:
        fl = msb(flmap)
        p = heap[M_HEADS + fl * SL_COUNT + msb(heap[M_SL_MAP + fl])]
        while p != 0:
            size = free_size(mem, tag_of(heap, p), p)
            largest = max(largest, size)
            p = load(mem, link_at(p, size))
    cached = heap_cached_blocks(mem, heap)
    for c in range(CACHE_CLASSES - 1, 0, -1):
        if heap[M_CACHE + c] != 0:
            largest = max(largest, np.int64(c) << 3)
            break
    out[S_LARGEST_HOLE] = largest
    out[S_FREE_LIST_LEN] = heap[M_FREE_BLOCKS] + cached


@leaf_kernel
def heap_block_bytes(heap, nbytes):
    """The bytes a live block of `nbytes` occupies (header and alignment included)."""
    return block_size(nbytes)

heap_addr_status = addr_status
"""HEAP_OK if an address is live, else HEAP_DOUBLE_FREE or HEAP_INVALID_FREE."""


def new_state(base: int, limit: int, *, debug: bool = False, cache: bool = True,
              cache_cap: int | None = None) -> np.ndarray:
    """A tlsf state over [base, limit) (range already validated) with its parameters set,
    ready for `heap_init`.  Its tag map takes one byte per 8 bytes of range (512 MiB for
    4 GiB); np.zeros gets it from the host lazily, so only the part under the heap's
    footprint is committed.

    cache=False turns the quick caches off (so does debug); cache_cap bounds their bytes.
    """
    from vm32.errors import InvalidArgument

    if not isinstance(cache, bool):
        raise InvalidArgument(f"cache must be True or False, not {cache!r}")
    if cache_cap is not None and (isinstance(cache_cap, bool) or not isinstance(cache_cap, (int, np.integer))
                                  or cache_cap < 0):
        raise InvalidArgument(f"cache cap {cache_cap!r} must be a non-negative integer")
    state = np.zeros(state_words(base, limit), dtype=np.int64)
    state[M_DEBUG] = int(debug)
    if debug or not cache:
        state[M_CACHE_CAP] = 0  # debug: cached blocks would escape the fill
    else:
        state[M_CACHE_CAP] = CACHE_CAP if cache_cap is None else min(int(cache_cap), CACHE_CAP)
    return state
