"""The debugging heap: red zones, a quarantine and a leak list around any policy's blocks.

`Heap(..., debug=True)` and `vm32 um run --check-heap` run every allocation through these
kernels, over a carrier of the policy (vm32.heap.dispatch) and a debug state array `dbg`.
A user block of n bytes lives inside a block of the policy, behind a left zone and before
a right zone:

    p (the policy's payload)                u = p + LEFT (the user's address)
    | nbytes | site | prev | next | mark | RED | user bytes, rounded to words | RED | RED |
      p+0     p+4    p+8    p+12   p+16   p+20  u ..                             u + round4(n)

*nbytes*  the user's size; *site* the allocation site (a UM program's pc, or SITE_NONE);
*prev/next* the live list (user addresses, 0 ends it; its head is dbg[D_HEAD]): every live
block is on it, which gives the leak report; *mark* LIVE_MARK while live, QUARANTINED
after free; *RED* words (RED_ZONE) on both sides, checked at free and at exit: a write past
either end of the block breaks them.

free fills the user bytes with FREED_MARK and puts the block in the *quarantine*, a FIFO
ring (at most Q_BLOCKS blocks and Q_BYTES bytes): the policy gets the block back only when
it leaves the quarantine, after a check that the fill and zones are intact (else the block
was written after it was freed).  A freed address stays a DoubleFree while quarantined.
realloc always moves the block (a stale pointer to the old one is then caught too).

Findings are appended to the log in `dbg` (kind, user address, site, detail), at most
FINDINGS_CAP of them (D_NFIND counts them all); `dbg_scan` finds what is wrong now
(every live block's zones, every quarantined block's fill) without changing anything, and
`dbg_leaks` lists the live blocks.  Invariants: every live block is on the live list
with mark LIVE_MARK; dbg[D_LIVE], dbg[D_LIVE_BYTES] count them; every quarantined block
is in the ring with mark QUARANTINED and is live for the policy.
"""

import numpy as np

from vm32.heap.base import FREED_MARK, HEAP_DOUBLE_FREE, HEAP_INVALID_FREE, HEAP_OK, fill_words, load, store
from vm32.heap.dispatch import HEAP_REFS, pol_addr_status, pol_free, pol_is_live, pol_malloc, register_wrapper
from vm32.jit import leaf_kernel

LEFT = 24  # bytes before the user's address (keeps it 8-aligned)
RIGHT = 8  # bytes of red zone after the user's words
RED_ZONE = 0xFDFDFDFD
LIVE_MARK = 0x11FE11FE
QUARANTINED = 0xDEADF4EE
SITE_NONE = 0xFFFFFFFF  # no allocation site known (Heap's own calls)
Q_BLOCKS = 1024
Q_BYTES = 1 << 22
FINDINGS_CAP = 64

F_OVERFLOW = 1  # a red zone was overwritten: detail = offset of the first bad word from u
F_USE_AFTER_FREE = 2  # a quarantined block was written: detail = offset of the first bad word
F_DOUBLE_FREE = 3  # detail 0

D_HEAD = 0  # user address of the first live block (0: none)
D_LIVE = 1
D_LIVE_BYTES = 2
D_Q_START = 3  # ring index of the oldest quarantined block
D_Q_COUNT = 4
D_Q_BYTES = 5  # bytes the quarantined blocks occupy (their policy blocks' requests)
D_NFIND = 6
D_PEAK_LIVE = 7
D_Q = 16  # the quarantine ring: Q_BLOCKS user addresses
D_FIND = D_Q + Q_BLOCKS  # the findings: FINDINGS_CAP x (kind, u, site, detail)
D_WORDS = D_FIND + 4 * FINDINGS_CAP

FINDING_TEXT = {
    F_OVERFLOW: "the red zone {where} the block at {u:#x} (allocated at {site}) was overwritten (at offset "
                "{detail})",
    F_USE_AFTER_FREE: "the block at {u:#x} (allocated at {site}) was written after it was freed (at offset "
                      "{detail})",
    F_DOUBLE_FREE: "the block at {u:#x} (allocated at {site}) was freed twice",
}


def new_debug_state() -> np.ndarray:
    """A fresh debug state: no live blocks, an empty quarantine, no findings."""
    return np.zeros(D_WORDS, dtype=np.int64)


@leaf_kernel
def inner_bytes(nbytes):
    """The size of the policy block that holds a user block of `nbytes` with its zones."""
    return LEFT + ((nbytes + 3) & ~np.int64(3)) + RIGHT


@leaf_kernel
def note(dbg, kind, u, site, detail):
    """Append a finding to the log (counted even when the log is full)."""
    k = dbg[D_NFIND]
    if k < FINDINGS_CAP:
        i = D_FIND + 4 * k
        dbg[i] = kind
        dbg[i + 1] = u
        dbg[i + 2] = site
        dbg[i + 3] = detail
    dbg[D_NFIND] = k + 1


@leaf_kernel
def zone_damage(mem, u):
    """Offset from `u` of the first broken red-zone word of block `u`, or 0 if both are whole."""
    if load(mem, u - 4) != RED_ZONE:
        return np.int64(-4)
    end = u + ((load(mem, u - LEFT) + 3) & ~np.int64(3))
    for k in range(RIGHT // 4):
        if load(mem, end + 4 * k) != RED_ZONE:
            return end + 4 * k - u
    return np.int64(0)


@leaf_kernel
def fill_damage(mem, u):
    """Offset from `u` of the first word of quarantined block `u` that is not FREED_MARK (or
    a broken zone), or -1 if all is as free left it."""
    words = (load(mem, u - LEFT) + 3) >> 2
    for k in range(words):
        if load(mem, u + 4 * k) != FREED_MARK:
            return 4 * k
    z = zone_damage(mem, u)
    return z if z != 0 else np.int64(-1)


@leaf_kernel
def dbg_is_live(c, dbg, u):
    """True iff `u` (any int64) is the user address of a live debug block."""
    p = np.int64(u) - LEFT
    return p > 0 and pol_is_live(c, p) and load(c.mem, np.int64(u) - 8) == LIVE_MARK


@leaf_kernel
def dbg_size_of(c, dbg, u):
    """The user's nbytes of live block `u`."""
    return load(c.mem, np.int64(u) - LEFT)


@leaf_kernel
def dbg_malloc(c, dbg, nbytes, site):
    """User address of a new block of `nbytes` bytes with its zones, on the live list; 0 if
    the policy has no room even after the quarantine was emptied into it."""
    if nbytes < 0 or nbytes > (np.int64(1) << 34):
        return np.int64(0)
    size = inner_bytes(np.int64(nbytes))
    p = pol_malloc(c, size)
    while p == 0 and dbg[D_Q_COUNT] > 0:
        evict(c, dbg)
        p = pol_malloc(c, size)
    if p == 0:
        return np.int64(0)
    u = p + LEFT
    mem = c.mem
    store(mem, p, nbytes)
    store(mem, p + 4, site)
    head = dbg[D_HEAD]
    store(mem, p + 8, 0)
    store(mem, p + 12, head)
    if head != 0:
        store(mem, head - LEFT + 8, u)
    dbg[D_HEAD] = u
    store(mem, p + 16, LIVE_MARK)
    store(mem, p + 20, RED_ZONE)
    fill_words(mem, u + ((np.int64(nbytes) + 3) & ~np.int64(3)), RIGHT // 4, RED_ZONE)
    dbg[D_LIVE] += 1
    live = dbg[D_LIVE_BYTES] + nbytes
    dbg[D_LIVE_BYTES] = live
    dbg[D_PEAK_LIVE] = max(dbg[D_PEAK_LIVE], live)
    return u


@leaf_kernel
def dbg_calloc(c, dbg, nbytes, site):
    """dbg_malloc with the user's bytes (rounded up to words) zeroed."""
    u = dbg_malloc(c, dbg, nbytes, site)
    if u != 0:
        fill_words(c.mem, u, (np.int64(nbytes) + 3) >> 2, 0)
    return u


@leaf_kernel
def unlink(mem, dbg, u):
    """Take live block `u` off the live list."""
    prv = load(mem, u - LEFT + 8)
    nxt = load(mem, u - LEFT + 12)
    if prv != 0:
        store(mem, prv - LEFT + 12, nxt)
    else:
        dbg[D_HEAD] = nxt
    if nxt != 0:
        store(mem, nxt - LEFT + 8, prv)


@leaf_kernel
def dbg_free(c, dbg, u):
    """Free live block `u` into the quarantine, checking its zones (a finding if broken);
    HEAP_OK, or HEAP_DOUBLE_FREE / HEAP_INVALID_FREE (nothing changed)."""
    mem = c.mem
    if not dbg_is_live(c, dbg, u):
        p = np.int64(u) - LEFT
        if p > 0 and pol_is_live(c, p) and load(mem, np.int64(u) - 8) == QUARANTINED:
            note(dbg, F_DOUBLE_FREE, u, load(mem, p + 4), 0)
            return HEAP_DOUBLE_FREE
        status = pol_addr_status(c, p) if p > 0 else HEAP_INVALID_FREE
        return status if status != HEAP_OK else HEAP_INVALID_FREE  # (live inside: not a block start)
    u = np.int64(u)
    nbytes = load(mem, u - LEFT)
    damage = zone_damage(mem, u)
    if damage != 0:
        note(dbg, F_OVERFLOW, u, load(mem, u - LEFT + 4), damage)
    unlink(mem, dbg, u)
    dbg[D_LIVE] -= 1
    dbg[D_LIVE_BYTES] -= nbytes
    fill_words(mem, u, (nbytes + 3) >> 2, FREED_MARK)
    if damage != 0:  # the zones are part of what the quarantine checks: make them whole
        store(mem, u - 4, RED_ZONE)
        fill_words(mem, u + ((nbytes + 3) & ~np.int64(3)), RIGHT // 4, RED_ZONE)
    store(mem, u - 8, QUARANTINED)
    if dbg[D_Q_COUNT] >= Q_BLOCKS:
        evict(c, dbg)
    dbg[D_Q + (dbg[D_Q_START] + dbg[D_Q_COUNT]) % Q_BLOCKS] = u
    dbg[D_Q_COUNT] += 1
    dbg[D_Q_BYTES] += inner_bytes(nbytes)
    while dbg[D_Q_BYTES] > Q_BYTES and dbg[D_Q_COUNT] > 1:
        evict(c, dbg)
    return HEAP_OK


@leaf_kernel
def evict(c, dbg):
    """Give the oldest quarantined block back to the policy, after checking its fill."""
    i = D_Q + dbg[D_Q_START]
    u = dbg[i]
    dbg[D_Q_START] = (dbg[D_Q_START] + 1) % Q_BLOCKS
    dbg[D_Q_COUNT] -= 1
    nbytes = load(c.mem, u - LEFT)
    dbg[D_Q_BYTES] -= inner_bytes(nbytes)
    damage = fill_damage(c.mem, u)
    if damage != -1:
        note(dbg, F_USE_AFTER_FREE, u, load(c.mem, u - LEFT + 4), damage)
    pol_free(c, u - LEFT)


@leaf_kernel
def dbg_flush(c, dbg):
    """Empty the quarantine into the policy (each block checked as it leaves)."""
    while dbg[D_Q_COUNT] > 0:
        evict(c, dbg)


@leaf_kernel
def dbg_scan(c, dbg, out):
    """Write up to len(out) findings (kind, u, site, detail) about the blocks as they are
    now: broken zones of live blocks, writes into quarantined ones.  Returns their number."""
    mem = c.mem
    n = 0
    u = dbg[D_HEAD]
    seen = np.int64(0)
    while u != 0 and seen <= dbg[D_LIVE]:
        damage = zone_damage(mem, u)
        if damage != 0:
            n = _out(out, n, F_OVERFLOW, u, load(mem, u - LEFT + 4), damage)
        u = load(mem, u - LEFT + 12)
        seen += 1
    for k in range(dbg[D_Q_COUNT]):
        u = dbg[D_Q + (dbg[D_Q_START] + k) % Q_BLOCKS]
        damage = fill_damage(mem, u)
        if damage != -1:
            n = _out(out, n, F_USE_AFTER_FREE, u, load(mem, u - LEFT + 4), damage)
    return n


@leaf_kernel
def _out(out, n, kind, u, site, detail):
    """Write finding `n` into `out` if it has room; return n + 1."""
    if n < out.shape[0]:
        out[n, 0] = kind
        out[n, 1] = u
        out[n, 2] = site
        out[n, 3] = detail
    return n + 1


@leaf_kernel
def dbg_leaks(c, dbg, out):
    """Write the live blocks (user address, nbytes, site) into `out` (up to its length);
    return how many there are."""
    n = 0
    u = dbg[D_HEAD]
    while u != 0 and n <= dbg[D_LIVE]:
        if n < out.shape[0]:
            out[n, 0] = u
            out[n, 1] = load(c.mem, u - LEFT)
            out[n, 2] = load(c.mem, u - LEFT + 4)
        n += 1
        u = load(c.mem, u - LEFT + 12)
    return n


def site_text(site: int) -> str:
    """An allocation site as text: a UM pc, or "an unknown site"."""
    return "an unknown site" if site == SITE_NONE else f"pc={site:#x}"


def finding_text(kind: int, u: int, site: int, detail: int) -> str:
    """One finding (a row of the log or of dbg_scan) as a sentence."""
    where = "before" if detail < 0 else "after"
    return FINDING_TEXT[kind].format(where=where, u=u, site=site_text(site), detail=detail)


def findings(dbg: np.ndarray, start: int = 0) -> list[str]:
    """The log's findings from number `start` on, as sentences (and how many were not kept)."""
    n = int(dbg[D_NFIND])
    kept = min(n, FINDINGS_CAP)
    out = [finding_text(*(int(v) for v in dbg[D_FIND + 4 * k: D_FIND + 4 * k + 4])) for k in range(start, kept)]
    if n > max(kept, start):
        out.append(f"... and {n - max(kept, start)} more")
    return out


def register_debug_carrier(cls: type, policy: str) -> None:
    """Make namedtuple class `cls` (fields mem, heap for `policy`'s state, and dbg) a carrier
    whose pol_malloc, pol_calloc, pol_free, pol_is_live and pol_size_of go through this
    debugging layer (allocation site SITE_NONE; vm32.um.flat's debug spaces pass the pc)."""
    ref = HEAP_REFS[policy]

    def malloc(c, nbytes):
        return dbg_malloc(ref(c.mem, c.heap), c.dbg, nbytes, SITE_NONE)

    def calloc(c, nbytes):
        return dbg_calloc(ref(c.mem, c.heap), c.dbg, nbytes, SITE_NONE)

    def free(c, addr):
        return dbg_free(ref(c.mem, c.heap), c.dbg, addr)

    def is_live(c, addr):
        return dbg_is_live(ref(c.mem, c.heap), c.dbg, addr)

    def size_of(c, addr):
        return dbg_size_of(ref(c.mem, c.heap), c.dbg, addr)

    register_wrapper(cls, dict(malloc=malloc, calloc=calloc, free=free, is_live=is_live, size_of=size_of))
