"""ARC, the adaptive replacement cache (Megiddo and Modha, FAST 2003), as libCacheSim counts it.

Resident pages are on two LRU lists of frames: T1 (used once since they came
in) and T2 (used again).  Two ghost lists remember pages evicted lately, by
key only: B1 (evicted from T1) and B2 (from T2).  A fault on a ghost adapts the
target size p of T1 (a float, as in libCacheSim): up by max(|B2|/|B1|, 1) for a
B1 ghost, down by max(|B1|/|B2|, 1) for a B2 ghost; the page comes back into T2.
A use moves a page to the head of T2 (SEES_EVERY_ACCESS).

The victim (REPLACE): T1's LRU page if T1 is not empty and larger than p (or
equal to p on a B2 ghost fault), or if T2 is empty; otherwise T2's LRU page;
it becomes the head of B1 or B2.  A fault on no list first trims the ghosts:
when |T1| + |B1| would pass the cache size c (pol[POL_PAGEABLE]), B1's oldest ghost goes (or, with B1 empty, T1's
LRU page leaves without a ghost); when all four lists hold 2c, B2's oldest goes.

State, after the common header: the four list headers, p (float bits), the
kind of the fault being served (0 none, 1 a B1 ghost, 2 a B2 ghost), the ghost
pool and a hash table from page key to ghost entry (linear probing, deletion by
backward shift).  Per frame: its list (0 none, 1 T1, 2 T2) and links.
"""

from __future__ import annotations

import numpy as np

from vm32.jit import inline_leaf_kernel, leaf_kernel
from vm32.kernel.frametable import frame_evictable
from vm32.kernel.layout import FT_OWNER, FT_VPN
from vm32.kernel.policies.base import (
    KEY_VPN_BITS, POL_KEY, POL_NFRAMES, POL_PAGEABLE, POL_Q0, bits_from_f64, f64_from_bits,
)
from vm32.kernel.policies.lists import LIST_WORDS, dl_init, dl_len, dl_push_head, dl_remove

NAME = "arc"
ID = 8
SEES_EVERY_ACCESS = True
ACCESSED_ON_LOAD = True
NEEDS_FUTURE = False
REASON = "the LRU end of T1 or T2, by the target p"

_T1, _T2, _B1, _B2 = POL_Q0, POL_Q0 + LIST_WORDS, POL_Q0 + 2 * LIST_WORDS, POL_Q0 + 3 * LIST_WORDS
_P = POL_Q0 + 4 * LIST_WORDS  # target size of T1, float64 bits
_GHOST = _P + 1  # the fault being served hit: 0 no ghost, 1 a B1 ghost, 2 a B2 ghost
_FREE = _P + 2  # ghost entries on the free stack
_HMASK = _P + 3  # hash table size - 1
_BASE = _P + 4  # per-frame and per-ghost arrays start here (offsets below)
_GOLDEN = 0x9E3779B97F4A7C15 - (1 << 64)  # Fibonacci hashing, as a signed 64-bit constant


def _sizes(nframes: int) -> tuple[int, int]:
    ghosts = 2 * nframes + 4
    table = 1
    while table < 2 * ghosts:
        table *= 2
    return ghosts, table


def state_size(nframes: int) -> int:
    """Headers, 3 words per frame, 5 per ghost entry, 2 per hash slot."""
    ghosts, table = _sizes(nframes)
    return (_BASE - POL_Q0) + 3 * nframes + 5 * ghosts + 2 * table


def init_state(pol, nframes: int) -> None:
    """Empty lists, p = 0, every ghost entry free, an empty hash table."""
    for h in (_T1, _T2, _B1, _B2):
        dl_init(pol, h)
    ghosts, table = _sizes(nframes)
    pol[_P] = bits_from_f64(0.0)
    pol[_HMASK] = table - 1
    stack = _stack(nframes)
    pol[stack: stack + ghosts] = np.arange(ghosts)
    pol[_FREE] = ghosts


# ---- where things are: offsets from the frame count n and ghost count g ----------------------


@inline_leaf_kernel
def _where(n):  # + f: 0 on no list, 1 on T1, 2 on T2
    return _BASE


@inline_leaf_kernel
def _fnext(n):
    return _BASE + n


@inline_leaf_kernel
def _fprev(n):
    return _BASE + 2 * n


@inline_leaf_kernel
def _ghosts(n):
    return 2 * n + 4


@inline_leaf_kernel
def _gkey(n):  # + node: the page key
    return _BASE + 3 * n


@inline_leaf_kernel
def _gnext(n):
    return _gkey(n) + _ghosts(n)


@inline_leaf_kernel
def _gprev(n):
    return _gkey(n) + 2 * _ghosts(n)


@inline_leaf_kernel
def _gwhich(n):  # + node: 1 on B1, 2 on B2
    return _gkey(n) + 3 * _ghosts(n)


@inline_leaf_kernel
def _stack(n):  # + i: the free ghost entries
    return _BASE + 3 * n + 4 * (2 * n + 4)


@inline_leaf_kernel
def _hkeys(n):  # + slot: key + 1 (0: empty)
    return _stack(n) + _ghosts(n)


@inline_leaf_kernel
def _hnodes(pol, n):
    return _hkeys(n) + pol[_HMASK] + 1


# ---- the hash table of ghosts ------------------------------------------------------------------


@inline_leaf_kernel
def _slot(pol, key):
    return ((key * _GOLDEN) >> 20) & pol[_HMASK]


@leaf_kernel
def _find(pol, n, key):
    """The ghost entry of page `key`, or -1."""
    keys, mask = _hkeys(n), pol[_HMASK]
    s = _slot(pol, key)
    while pol[keys + s] != 0:
        if pol[keys + s] == key + 1:
            return pol[_hnodes(pol, n) + s]
        s = (s + 1) & mask
    return -1


@leaf_kernel
def _insert(pol, n, key, node):
    keys, mask = _hkeys(n), pol[_HMASK]
    s = _slot(pol, key)
    while pol[keys + s] != 0:
        s = (s + 1) & mask
    pol[keys + s] = key + 1
    pol[_hnodes(pol, n) + s] = node


@leaf_kernel
def _delete(pol, n, key):
    """Remove page `key` from the table, shifting later entries of its run back."""
    keys, nodes, mask = _hkeys(n), _hnodes(pol, n), pol[_HMASK]
    s = _slot(pol, key)
    while pol[keys + s] != key + 1:
        s = (s + 1) & mask
    hole, t = s, (s + 1) & mask
    while pol[keys + t] != 0:
        home = _slot(pol, pol[keys + t] - 1)
        if (t - home) & mask >= (t - hole) & mask:  # the entry may move back into the hole
            pol[keys + hole] = pol[keys + t]
            pol[nodes + hole] = pol[nodes + t]
            hole = t
        t = (t + 1) & mask
    pol[keys + hole] = 0


# ---- ghosts ------------------------------------------------------------------------------------


@leaf_kernel
def _ghost_drop(pol, n, lst, node):
    """Forget ghost entry `node` of list `lst` (B1 or B2)."""
    dl_remove(pol, lst, _gnext(n), _gprev(n), node)
    _delete(pol, n, pol[_gkey(n) + node])
    pol[_stack(n) + pol[_FREE]] = node
    pol[_FREE] += 1


@leaf_kernel
def _ghost_add(pol, n, lst, key):
    """Remember page `key` at the head of ghost list `lst`."""
    if pol[_FREE] == 0:  # cannot happen within ARC's bounds; keep them anyway
        old = _B2 if dl_len(pol, _B2) > 0 else _B1
        _ghost_drop(pol, n, old, pol[old + 1])
    pol[_FREE] -= 1
    node = pol[_stack(n) + pol[_FREE]]
    pol[_gkey(n) + node] = key
    pol[_gwhich(n) + node] = 1 if lst == _B1 else 2
    dl_push_head(pol, lst, _gnext(n), _gprev(n), node)
    _insert(pol, n, key, node)


# ---- resident frames ---------------------------------------------------------------------------


@leaf_kernel
def _unlist(pol, n, f):
    """Take frame f off T1 or T2 (whichever holds it)."""
    w = pol[_where(n) + f]
    if w:
        dl_remove(pol, _T1 if w == 1 else _T2, _fnext(n), _fprev(n), f)
        pol[_where(n) + f] = 0


@leaf_kernel
def _lru_of(pol, ft, n, lst):
    """The evictable frame nearest the tail of T1 or T2 (freed frames met are dropped); -1."""
    f = pol[lst + 1]
    while f >= 0:
        before = pol[_fprev(n) + f]
        if ft[f, FT_OWNER] < 0:
            _unlist(pol, n, f)
        elif frame_evictable(ft, f):
            return f
        f = before
    return -1


@inline_leaf_kernel
def _key(ft, f):
    return (ft[f, FT_OWNER] << KEY_VPN_BITS) | ft[f, FT_VPN]


@leaf_kernel
def _replace(pol, ft, n, in_b2):
    """REPLACE: T1's or T2's LRU frame leaves, remembered in B1 or B2; the frame or -1."""
    t1 = dl_len(pol, _T1)
    p = f64_from_bits(pol[_P])
    from_t1 = (t1 > 0 and (t1 > p or (t1 == p and in_b2))) or dl_len(pol, _T2) == 0
    f = _lru_of(pol, ft, n, _T1 if from_t1 else _T2)
    if f < 0:
        from_t1 = not from_t1
        f = _lru_of(pol, ft, n, _T1 if from_t1 else _T2)
        if f < 0:
            return -1
    _unlist(pol, n, f)
    _ghost_add(pol, n, _B1 if from_t1 else _B2, _key(ft, f))
    return f


# ---- the hooks ---------------------------------------------------------------------------------


@leaf_kernel
def on_fault(ft, pol, key):
    """A fault for page `key`: a ghost of it adapts p and leaves its list."""
    n = pol[POL_NFRAMES]
    pol[POL_KEY] = key
    pol[_GHOST] = 0
    node = _find(pol, n, key)
    if node < 0:
        return
    b1, b2 = dl_len(pol, _B1), dl_len(pol, _B2)
    p = f64_from_bits(pol[_P])
    if pol[_gwhich(n) + node] == 1:
        p = min(p + max(b2 / b1, 1.0), float(pol[POL_PAGEABLE]))
        pol[_GHOST] = 1
        _ghost_drop(pol, n, _B1, node)
    else:
        p = max(p - max(b1 / b2, 1.0), 0.0)
        pol[_GHOST] = 2
        _ghost_drop(pol, n, _B2, node)
    pol[_P] = bits_from_f64(p)


@leaf_kernel
def on_map(ft, pol, f):
    """Frame f was loaded: to T2's head after a ghost fault, else to T1's."""
    n = pol[POL_NFRAMES]
    _unlist(pol, n, f)
    w = 2 if pol[_GHOST] else 1
    pol[_GHOST] = 0
    dl_push_head(pol, _T2 if w == 2 else _T1, _fnext(n), _fprev(n), f)
    pol[_where(n) + f] = w


@inline_leaf_kernel
def on_access(ft, pol, f):
    """The page in frame f was used: to the head of T2."""
    n = pol[POL_NFRAMES]
    w = pol[_where(n) + f]
    if w:
        dl_remove(pol, _T1 if w == 1 else _T2, _fnext(n), _fprev(n), f)
        dl_push_head(pol, _T2, _fnext(n), _fprev(n), f)
        pol[_where(n) + f] = 2


@leaf_kernel
def choose_victim(words, ft, pol, tlb, cpus, cpu):
    """ARC's victim for the fault being served (see the module docstring); -1 if none."""
    n = pol[POL_NFRAMES]
    if pol[_GHOST]:
        return _replace(pol, ft, n, pol[_GHOST] == 2)
    c = pol[POL_PAGEABLE]  # the cache size
    t1, b1 = dl_len(pol, _T1), dl_len(pol, _B1)
    if t1 + b1 + 1 > c:
        if b1 > 0:
            _ghost_drop(pol, n, _B1, pol[_B1 + 1])
            return _replace(pol, ft, n, False)
        f = _lru_of(pol, ft, n, _T1)
        if f < 0:
            return _replace(pol, ft, n, False)
        _unlist(pol, n, f)
        return f
    if t1 + b1 + dl_len(pol, _T2) + dl_len(pol, _B2) >= 2 * c and dl_len(pol, _B2) > 0:
        _ghost_drop(pol, n, _B2, pol[_B2 + 1])
    return _replace(pol, ft, n, False)
