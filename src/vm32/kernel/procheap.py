"""Process heaps: one allocator per process - a vm32.heap policy's (tlsf by default), over
the process's heap region, inside the process's own virtual address space.

Words
-----
*heap*     the allocator over the process's heap region [heap_lo, heap_hi) (layout.py).
           Its block headers, footers and free-list links are words in the process's
           pages: they fault in on demand and get swapped out and back like any data.
           Its host-side state (the policy's int64 ``state`` array: counters, list heads,
           tag map) is kernel bookkeeping and stays a numpy array, one per process.
*handle*   what the compiled operations take instead of the state array: the policy's
           vm32.heap.dispatch heap handle of it (``h.heap`` is the array; its type names
           the policy, so each policy's operations compile with its kernels inlined).
*journal*  an int64 array ``jr`` per heap: a header (JR_*), then the undo entries of the
           operation in progress, ``(key, old)`` pairs: key >= 0 is an index into the
           state array, key < 0 the word at virtual address ``-1 - key``.
*mode*     how a caller runs the allocator, on the same state array (so a process has one
           heap, one `stats()` and one `check()`):
           *journaled* (ph_*, the Python API): under the heap lock, every change journaled
           and undone completely when the operation cannot finish;
           *direct* (direct_*, the paged UM's segments, 184 M maps and unmaps in sandmark,
           which cannot pay for the journal and the lock): for a compiled loop that owns the
           heap while it runs; an operation that cannot finish leaves the heap
           half-changed, and the caller ends the process.

The failure convention
----------------------
Every operation of both modes returns a value >= 0 (an address, a size, OK) or an ST_*
status < 0, and nothing else reports a failure:

    ST_HEAP_FULL                      no free block is large enough: nothing changed
    ST_INVALID_FREE, ST_DOUBLE_FREE   not the address of a live block: nothing changed
    ST_NO_FRAME, ST_SWAP_FULL,        a page of the heap could not come in; the status and
    ST_IO_ERROR                       address are in the access context (vm32.kernel.access);
                                      journaled: undone; direct: the heap is half-changed
    ST_JOURNAL_FULL, ST_HEAP_CORRUPT  (journaled only) the journal is too small (undone: grow
                                      it and retry), or the heap's metadata point outside the
                                      heap (undone)

Layers
------
HeapMem    the journaled allocator's ``mem``: a named tuple (ms, ctx, jr, lo, hi).  Its
           load_word/store_word overloads check the address lies in the heap, translate
           it (access.translate: TLB, walk, fault handler), journal the old value before a
           store, and on a failed translation record the status and raise `HeapAbort`,
           which stops the allocator at once.
TxState    the journaled allocator's ``state``: a numba struct of (state array, journal)
           whose item assignment journals the old value first; reads and writes are
           bounds-checked (an index outside the array aborts as ST_HEAP_CORRUPT, so
           a corrupted header can never make the allocator write outside its state).
ph_*       journaled operations: `ph_malloc`, `ph_calloc`, `ph_realloc`, `ph_free`,
           `ph_size_of`, `ph_init`, `ph_check`, `ph_largest_free`.  Each takes the heap
           lock, runs the policy's kernel inside ``try``, and on an abort rolls back:
           under the machine lock it replays the journal backwards, writing each old word
           wherever its page lives now - frame or swap slot, see fault.poke_word_locked -
           so the undo itself never faults and cannot fail.
direct_*   direct operations over any paged memory (vm32.kernel.access) and its ctx:
           `direct_malloc`, `direct_calloc`, `direct_free`, `direct_size_of`; inlined into
           the caller's loop.
k_heap_*   one visit of a CPU for the Python API: cpu_enter, one ph_* call, cpu_leave.
ProcessHeap  the Python face (`Process.heap`, `Process.malloc` & co.): owns the arrays,
           grows the journal and retries on ST_JOURNAL_FULL, turns statuses into
           exceptions.

Atomicity (journaled)
---------------------
An operation either completes or leaves state array and heap words exactly as before
(its page-ins and page-table allocations stay: they are invisible to the heap).  Bulk
work is kept out of the journal: calloc is malloc (journaled) + zeroing the new block
(not journaled: no one else sees the block yet; on failure the block is freed again,
journaled); realloc runs the policy's realloc journaled (in place or moving), and when
the move's copy overflows the journal it is redone as malloc + copy + free the same way.
If even that final free fails the new block stays allocated (a leak, never corruption)
and the failure is reported.

Compiled callers
----------------
A long compiled loop on a CPU brackets itself like the Python API does::

    st = cpu_enter(ms, cpu, pid)     # loads CR3, marks the CPU busy, serves shootdowns
    ... loads/stores through a paged memory, e.g. access.PagedMemory(ms, ctx) ...
    ... a = ph_calloc(ms, ctx, h, jr, nbytes); ph_free(ms, ctx, h, jr, a) ...
    cpu_leave(ms, cpu, ctx[CTX_ACCESSES])   # credits accesses, clears busy

* Shootdowns: while busy, the CPU acknowledges TLB shootdowns only when it polls -
  at every translation and while it spins for a lock.  Another CPU evicting a page of
  the same process waits for that acknowledgement, so a loop must translate (or call
  sync.cpu_poll) at least every few microseconds.  A loop that leaves compiled code
  (output, blocking input) must cpu_leave first: a CPU parked in Python while busy
  would stall every eviction of its process's pages.
* Faults stay compiled: a TLB miss walks the tables (~50 ns); a fault that needs no
  disk read (zero fill, evicting a clean page) is a few microseconds without leaving
  compiled code; one that writes a dirty victim or reads the page from swap adds a
  pwrite/pread system call (~2-4 us from the host's page cache, more if the host
  has to go to the disk; the thread blocks in the host kernel, never returns to
  Python; see fault.py for which parts run outside the machine lock).  On ST_JOURNAL_FULL
  from a ph_* call, leave the loop, call ``ProcessHeap.grow_journal()`` from Python, and
  retry.
* ``ctx`` is the access context (access.py); ph_* use its cpu and pid, and both modes
  count their accesses in it.
"""

from __future__ import annotations

import collections
import operator

import numpy as np
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, make_attribute_wrapper, models, overload, register_model

from vm32.errors import DoubleFree, HeapError, InvalidArgument, InvalidFree, OutOfMemory
from vm32.defaults import DEFAULT_HEAP_POLICY
from vm32.heap import ALIGN, HEAP_DOUBLE_FREE, HEAP_INVALID_FREE, FreedBlocks, describe_findings, policy_module
from vm32.heap import base as heap_base
from vm32.heap.dispatch import (
    heap_handle, pol_addr_status, pol_check, pol_free, pol_init, pol_is_live, pol_largest_free, pol_malloc, pol_over,
    pol_realloc, pol_size_of,
)
from vm32.jit import inline_leaf_kernel, leaf_kernel
from vm32.kernel.access import (
    CTX_ACCESSES, CTX_CPU, CTX_FAULT_VA, CTX_PID, CTX_STATUS, PagedMemory, copy_user, ctx_fail, new_ctx, translate,
    zero_user,
)
from vm32.kernel.fault import poke_word_locked
from vm32.kernel.layout import (
    OK,
    P_COLS,
    P_PGDIR,
    ST_DOUBLE_FREE,
    ST_HEAP_CORRUPT,
    ST_HEAP_FULL,
    ST_INVALID_FREE,
    ST_JOURNAL_FULL,
    ST_IN_SWAP,
    ST_NO_FRAME,
)
from vm32.kernel.sync import cpu_enter, cpu_leave, cpu_poll, machine_lock, machine_unlock
from vm32.memory import PAGE_WORDS, load_word, store_word
from vm32.atomic import atomic_cas, atomic_store, spin_pause

# ---- the journal: jr[JR_*], then (key, old) pairs from JR_0 -----------------------------------
JR_N = 0  # undo entries of the operation in progress
JR_LOCK = 1  # heap lock: 0 free, else holder cpu + 2
JR_INJECT = 2  # test hook: k > 0 makes the k-th heap access from now fail as ST_NO_FRAME
JR_WHY = 3  # status of the last abort
JR_OPS = 4  # operations run
JR_ABORTS = 5  # operations rolled back
JR_UNDO_SWAP = 6  # words restored in a swap slot (their page was paged out during the operation)
JR_0 = 8
JOURNAL_ENTRIES = 4096  # default capacity (64 KiB): a malloc or free writes a few dozen
JOURNAL_MAX = 1 << 24  # the journal never grows beyond 256 MiB


class HeapAbort(Exception):
    """Raised inside compiled code to stop a heap operation; caught by the ph_* functions."""


def new_journal(entries: int = JOURNAL_ENTRIES) -> np.ndarray:
    """A journal array with room for `entries` undo entries."""
    return np.zeros(JR_0 + 2 * entries, dtype=np.int64)


# ---- HeapMem: the allocator's memory, inside the process --------------------------------------

HeapMem = collections.namedtuple("HeapMem", "ms ctx jr lo hi")
"""The allocator's ``mem`` for a process heap: machine state, PagedMemory context, journal,
heap range [lo, hi)."""


def _is_heapmem(mem) -> bool:
    return isinstance(mem, types.BaseNamedTuple) and getattr(mem, "instance_class", None) is HeapMem


@leaf_kernel
def _fail(ctx, jr, status, va):
    """Record why and where the operation stops, then stop it."""
    jr[JR_WHY] = status
    ctx_fail(ctx, status, va)
    raise HeapAbort()


@leaf_kernel
def _heap_pa(mem, addr, write):
    """Physical address of heap word `addr` for the running operation, or abort."""
    a = np.int64(addr)
    if a < mem.lo or a >= mem.hi or (a & 3) != 0:
        _fail(mem.ctx, mem.jr, ST_HEAP_CORRUPT, a)
    k = mem.jr[JR_INJECT]
    if k > 0:
        mem.jr[JR_INJECT] = k - 1
        if k == 1:
            _fail(mem.ctx, mem.jr, ST_NO_FRAME, a)
    mem.ctx[CTX_ACCESSES] += 1
    pa = translate(PagedMemory(mem.ms, mem.ctx), a, write)
    if pa < 0:
        _fail(mem.ctx, mem.jr, pa, a)
    return pa


@leaf_kernel
def _journal(jr, key, old):
    """Append undo entry (key, old); abort with ST_JOURNAL_FULL when there is no room."""
    n = jr[JR_N]
    i = JR_0 + 2 * n
    if i + 2 > jr.shape[0]:
        jr[JR_WHY] = ST_JOURNAL_FULL
        raise HeapAbort()
    jr[i] = key
    jr[i + 1] = old
    jr[JR_N] = n + 1


@overload(load_word)
def _load_word_heap(mem, addr):
    if not _is_heapmem(mem):
        return None

    def impl(mem, addr):
        return mem.ms.words[_heap_pa(mem, addr, 0) >> 2]

    return impl


@overload(store_word)
def _store_word_heap(mem, addr, value):
    if not _is_heapmem(mem):
        return None

    def impl(mem, addr, value):
        i = _heap_pa(mem, addr, 1) >> 2
        _journal(mem.jr, -1 - np.int64(addr), np.int64(mem.ms.words[i]))
        mem.ms.words[i] = np.uint32(value & 0xFFFFFFFF)

    return impl


# ---- TxState: the allocator's state array, journaled ------------------------------------------


class TxStateType(types.Type):
    """numba type of a journaled view of a heap state array (see module docstring)."""

    def __init__(self):
        super().__init__(name="TxState")


tx_state_type = TxStateType()
_I64_ARRAY = types.Array(types.int64, 1, "C")


@register_model(TxStateType)
class _TxStateModel(models.StructModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, [("arr", _I64_ARRAY), ("jr", _I64_ARRAY)])


make_attribute_wrapper(TxStateType, "arr", "arr")
make_attribute_wrapper(TxStateType, "jr", "jr")


@intrinsic
def tx_state(typingctx, arr, jr):
    """A TxState over state array `arr` journaling into `jr` (both 1-d C int64 arrays)."""
    if arr != _I64_ARRAY or jr != _I64_ARRAY:
        return None

    def codegen(context, builder, signature, args):
        s = cgutils.create_struct_proxy(tx_state_type)(context, builder)
        s.arr, s.jr = args
        return s._getvalue()

    return tx_state_type(arr, jr), codegen


@overload(operator.getitem)
def _tx_getitem(s, i):
    if not (isinstance(s, TxStateType) and isinstance(i, types.Integer)):
        return None

    def impl(s, i):
        a = s.arr
        j = np.uint64(i)
        if j >= np.uint64(a.shape[0]):
            s.jr[JR_WHY] = ST_HEAP_CORRUPT
            raise HeapAbort()
        return a[j]

    return impl


@overload(operator.setitem)
def _tx_setitem(s, i, v):
    if not (isinstance(s, TxStateType) and isinstance(i, types.Integer)):
        return None

    def impl(s, i, v):
        a = s.arr
        j = np.uint64(i)
        if j >= np.uint64(a.shape[0]):
            s.jr[JR_WHY] = ST_HEAP_CORRUPT
            raise HeapAbort()
        _journal(s.jr, np.int64(j), a[j])
        a[j] = v

    return impl


# ---- the operations -------------------------------------------------------------------------


@leaf_kernel
def heap_lock(ms, ctx, jr):
    """Take the heap lock for the calling CPU, serving shootdowns while it waits."""
    cpu = ctx[CTX_CPU]
    spins = 0
    while atomic_cas(jr, JR_LOCK, 0, cpu + 2) != 0:
        cpu_poll(ms, cpu)
        spins = spin_pause(spins)


@leaf_kernel
def heap_unlock(jr):
    """Release the heap lock."""
    atomic_store(jr, JR_LOCK, 0)


@leaf_kernel
def _begin(ms, ctx, h, jr):
    """Start an operation (heap lock held): empty journal, clear status; the carrier of
    h's policy over the journaled views of the heap's memory and state."""
    jr[JR_N] = 0
    jr[JR_WHY] = 0
    jr[JR_OPS] += 1
    ctx[CTX_STATUS] = 0
    arr = h.heap
    lo = arr[heap_base.M_BASE]
    return pol_over(h, HeapMem(ms, ctx, jr, lo, lo + arr[heap_base.M_SPAN]), tx_state(arr, jr))


@leaf_kernel
def _rollback(ms, ctx, h, jr):
    """Undo the aborted operation's journal, newest entry first; return its status (< 0).

    Runs under the machine lock, so no page moves meanwhile; heap words are written
    where their pages live (poke_word_locked), so the undo never faults.
    """
    cpu = ctx[CTX_CPU]
    arr = h.heap
    pgdir = ms.procs[ctx[CTX_PID] * P_COLS + P_PGDIR]
    machine_lock(ms, cpu)
    for k in range(jr[JR_N] - 1, -1, -1):
        key, old = jr[JR_0 + 2 * k], jr[JR_0 + 2 * k + 1]
        if key >= 0:
            arr[key] = old
        elif poke_word_locked(ms, pgdir, -1 - key, old) == ST_IN_SWAP:
            jr[JR_UNDO_SWAP] += 1
    machine_unlock(ms)
    jr[JR_N] = 0
    jr[JR_ABORTS] += 1
    why = jr[JR_WHY]
    return why if why < 0 else np.int64(ST_HEAP_CORRUPT)  # an unexpected error in the allocator


@leaf_kernel
def _tx_malloc(ms, ctx, h, jr, nbytes):
    """One journaled malloc (heap lock held): address, ST_HEAP_FULL, or an abort status."""
    c = _begin(ms, ctx, h, jr)
    try:
        p = pol_malloc(c, nbytes)
    except Exception:  # noqa: BLE001 - HeapAbort, or any error of the allocator
        return _rollback(ms, ctx, h, jr)
    return p if p != 0 else np.int64(ST_HEAP_FULL)


@leaf_kernel
def _tx_free(ms, ctx, h, jr, va):
    """One journaled free (heap lock held): OK, ST_INVALID_FREE / ST_DOUBLE_FREE, or an abort."""
    c = _begin(ms, ctx, h, jr)
    try:
        r = pol_free(c, va)
    except Exception:  # noqa: BLE001
        return _rollback(ms, ctx, h, jr)
    return _heap_status(r)


@inline_leaf_kernel
def _heap_status(r):
    """vm32.heap's HEAP_OK / HEAP_INVALID_FREE / HEAP_DOUBLE_FREE as OK / ST_*."""
    if r == HEAP_INVALID_FREE:
        return np.int64(ST_INVALID_FREE)
    if r == HEAP_DOUBLE_FREE:
        return np.int64(ST_DOUBLE_FREE)
    return np.int64(OK)


@leaf_kernel
def ph_init(ms, ctx, h, jr):
    """Set up an empty heap in handle h's state (a policy's new_state, with M_BASE and
    M_LIMIT set); OK or ST_*."""
    arr = h.heap
    base, limit = arr[heap_base.M_BASE], arr[heap_base.M_LIMIT]
    arr[heap_base.M_SPAN] = limit - base  # for _begin's range; heap_init sets it again
    heap_lock(ms, ctx, jr)
    c = _begin(ms, ctx, h, jr)
    try:
        pol_init(c, base, limit)
        r = np.int64(OK)
    except Exception:  # noqa: BLE001 - a page of the first words could not come in
        r = _rollback(ms, ctx, h, jr)
    heap_unlock(jr)
    return r


@leaf_kernel
def ph_malloc(ms, ctx, h, jr, nbytes):
    """Address of a new block of `nbytes` in the process heap of handle `h`, or ST_HEAP_FULL
    / an abort status (nothing changed).  The CPU ctx[CTX_CPU] runs ctx[CTX_PID] (cpu_enter)."""
    heap_lock(ms, ctx, jr)
    r = _tx_malloc(ms, ctx, h, jr, nbytes)
    heap_unlock(jr)
    return r


@leaf_kernel
def ph_free(ms, ctx, h, jr, va):
    """Free block `va`: OK, ST_INVALID_FREE / ST_DOUBLE_FREE, or an abort status (nothing changed)."""
    heap_lock(ms, ctx, jr)
    r = _tx_free(ms, ctx, h, jr, va)
    heap_unlock(jr)
    return r


@leaf_kernel
def ph_size_of(ms, ctx, h, jr, va):
    """nbytes of live block `va`, ST_INVALID_FREE / ST_DOUBLE_FREE, or a fault status."""
    if not pol_is_live(h, va):
        return _heap_status(pol_addr_status(h, va))
    heap_lock(ms, ctx, jr)
    c = _begin(ms, ctx, h, jr)
    try:
        r = pol_size_of(c, va)
    except Exception:  # noqa: BLE001
        r = _rollback(ms, ctx, h, jr)
    heap_unlock(jr)
    return r


@leaf_kernel
def ph_calloc(ms, ctx, h, jr, nbytes):
    """Address of a new block of `nbytes` zeroed bytes, or ST_HEAP_FULL / an abort status.

    The zeroing is not journaled (the block is new); if it fails the block is freed
    again (journaled) before the status is returned.
    """
    heap_lock(ms, ctx, jr)
    p = _tx_malloc(ms, ctx, h, jr, nbytes)
    if p > 0:
        st = zero_user(PagedMemory(ms, ctx), ms.words, p, (nbytes + 3) & ~3)
        if st != OK:
            _tx_free(ms, ctx, h, jr, p)
            p = st
        else:
            h.heap[heap_base.M_CALLOCS] += 1
    heap_unlock(jr)
    return p


@leaf_kernel
def ph_realloc(ms, ctx, h, jr, va, nbytes, buf):
    """Resize block `va` to `nbytes` keeping its contents; the (maybe new) address, or
    ST_HEAP_FULL (block intact), ST_INVALID_FREE / ST_DOUBLE_FREE, or an abort status.
    `buf` (uint32, a page) is the page buffer of a move's copy."""
    heap_lock(ms, ctx, jr)
    c = _begin(ms, ctx, h, jr)
    try:
        r = pol_realloc(c, va, nbytes)
        if r == 0:
            r = np.int64(ST_HEAP_FULL)
        elif r < 0:
            r = _heap_status(-r)
    except Exception:  # noqa: BLE001
        r = _rollback(ms, ctx, h, jr)
        if r == ST_JOURNAL_FULL:  # the move's copy: redo it outside the journal
            r = _realloc_by_moving(ms, ctx, h, jr, va, nbytes, buf)
    heap_unlock(jr)
    return r


@leaf_kernel
def _realloc_by_moving(ms, ctx, h, jr, va, nbytes, buf):
    """realloc as malloc + copy + free, each heap step journaled (heap lock held)."""
    c = _begin(ms, ctx, h, jr)
    try:
        old = pol_size_of(c, va)
    except Exception:  # noqa: BLE001
        return _rollback(ms, ctx, h, jr)
    q = _tx_malloc(ms, ctx, h, jr, nbytes)
    if q < 0:
        return q
    s = copy_user(PagedMemory(ms, ctx), ms.words, q, va, (min(old, nbytes) + 3) & ~3, buf)
    if s == OK:
        s = _tx_free(ms, ctx, h, jr, va)
    if s != OK:
        _tx_free(ms, ctx, h, jr, q)  # if this fails too, q leaks: the heap stays sound
        return s
    h.heap[heap_base.M_REALLOCS] += 1
    return q


# ---- direct mode: no journal, no lock ------------------------------------------------------------


@inline_leaf_kernel
def direct_malloc(mem, ctx, h, nbytes):
    """Address of a new block of `nbytes` in the heap of handle `h` over paged memory `mem`
    (access context ctx), ST_HEAP_FULL, or the status of a page that could not come in."""
    p = pol_malloc(pol_over(h, mem, h.heap), nbytes)
    if ctx[CTX_STATUS] != 0:
        return ctx[CTX_STATUS]
    return p if p != 0 else np.int64(ST_HEAP_FULL)


@inline_leaf_kernel
def direct_calloc(mem, ctx, words, h, nbytes):
    """direct_malloc, then the block's words zeroed (`words`: mem's physical memory)."""
    p = direct_malloc(mem, ctx, h, nbytes)
    if p > 0:
        st = zero_user(mem, words, p, (nbytes + 3) & ~3)
        if st != OK:
            return st
        h.heap[heap_base.M_CALLOCS] += 1
    return p


@inline_leaf_kernel
def direct_free(mem, ctx, h, va):
    """Free block `va`: OK, ST_INVALID_FREE / ST_DOUBLE_FREE, or the status of a page that
    could not come in."""
    r = pol_free(pol_over(h, mem, h.heap), va)
    if ctx[CTX_STATUS] != 0:
        return ctx[CTX_STATUS]
    return _heap_status(r)


@inline_leaf_kernel
def direct_size_of(mem, ctx, h, va):
    """nbytes of live block `va` (the caller checked it is live), or the status of a page
    that could not come in."""
    n = pol_size_of(pol_over(h, mem, h.heap), va)
    if ctx[CTX_STATUS] != 0:
        return ctx[CTX_STATUS]
    return n


# ---- the heap's health and room (journaled) ------------------------------------------------------


@leaf_kernel
def ph_check(ms, ctx, h, jr, out):
    """The policy's heap_check over the process heap (findings into `out`); the number of
    findings (>= 0), or a fault status if a page could not come in."""
    heap_lock(ms, ctx, jr)
    c = _begin(ms, ctx, h, jr)
    try:
        r = pol_check(c, out)  # the journaled state, not h.heap: one specialisation of the allocator
    except Exception:  # noqa: BLE001
        r = _rollback(ms, ctx, h, jr)
    heap_unlock(jr)
    return r


@leaf_kernel
def ph_largest_free(ms, ctx, h, jr):
    """Largest free block (bytes, header included, room at top counted), or a fault status."""
    heap_lock(ms, ctx, jr)
    c = _begin(ms, ctx, h, jr)
    try:
        r = pol_largest_free(c)
    except Exception:  # noqa: BLE001
        r = _rollback(ms, ctx, h, jr)
    heap_unlock(jr)
    return r


# ---- one visit of a CPU per Python call ----------------------------------------------------------

OP_INIT, OP_MALLOC, OP_CALLOC, OP_REALLOC, OP_FREE, OP_SIZE_OF, OP_LARGEST_FREE = 0, 1, 2, 3, 4, 5, 6


@leaf_kernel
def k_heap_op(ms, ctx, h, jr, buf, op, a, b):
    """cpu_enter, the heap operation `op` (OP_*) with arguments a, b, cpu_leave (`buf`: a
    page buffer for realloc's copy).

    Returns the operation's result, or ST_DEAD if the process has exited.
    """
    cpu = ctx[CTX_CPU]
    st = cpu_enter(ms, cpu, ctx[CTX_PID])
    if st != OK:
        return np.int64(st)
    if op == OP_MALLOC:
        r = ph_malloc(ms, ctx, h, jr, a)
    elif op == OP_CALLOC:
        r = ph_calloc(ms, ctx, h, jr, a)
    elif op == OP_REALLOC:
        r = ph_realloc(ms, ctx, h, jr, a, b, buf)
    elif op == OP_FREE:
        r = ph_free(ms, ctx, h, jr, a)
    elif op == OP_SIZE_OF:
        r = ph_size_of(ms, ctx, h, jr, a)
    elif op == OP_LARGEST_FREE:
        r = ph_largest_free(ms, ctx, h, jr)
    else:
        r = ph_init(ms, ctx, h, jr)
    cpu_leave(ms, cpu, ctx[CTX_ACCESSES])
    return r


@leaf_kernel
def k_heap_check(ms, ctx, h, jr, out):
    """cpu_enter, ph_check, cpu_leave."""
    cpu = ctx[CTX_CPU]
    st = cpu_enter(ms, cpu, ctx[CTX_PID])
    if st != OK:
        return np.int64(st)
    r = ph_check(ms, ctx, h, jr, out)
    cpu_leave(ms, cpu, ctx[CTX_ACCESSES])
    return r


# ---- the Python face -------------------------------------------------------------------------------


class ProcessHeap:
    """The heap of process `proc`: a vm32.heap policy's allocator over [proc.heap_base,
    proc.heap_end) (`policy`, default tlsf, with that policy's `params`, as vm32.heap.Heap).

    Attributes `state` (the policy's state array), `handle` (vm32.heap.dispatch's heap
    handle of that state) and `journal` (see the module docstring) are what the compiled
    ph_* functions take.  Created by `Process.heap` on first use; every method may raise
    OutOfMemory when a page of the heap cannot be brought in (nothing changed then),
    besides the allocator's own errors.
    """

    def __init__(self, proc, policy: str = DEFAULT_HEAP_POLICY, **params):
        if proc.heap_end - proc.heap_base < 2 * ALIGN:
            raise InvalidArgument(f"process {proc.pid} has no heap (spawn it with heap_size > 0)")
        self.kernels = policy_module(policy)
        self.policy = self.kernels.NAME
        self.proc, self.base, self.limit = proc, proc.heap_base, proc.heap_end
        self.state = self.kernels.new_state(self.base, self.limit, **params)
        self.handle = heap_handle(self.policy, self.state)
        self._freed = FreedBlocks()
        self.state[heap_base.M_BASE] = self.base
        self.state[heap_base.M_LIMIT] = self.limit
        self.journal = new_journal()
        self.bounce = np.zeros(PAGE_WORDS, dtype=np.uint32)
        self._run(OP_INIT, 0, 0, "heap set-up")

    # ---- plumbing ----
    def _ctx(self) -> np.ndarray:
        return new_ctx(self.proc.machine.cpu(), self.proc.pid)

    def _run(self, op: int, a: int, b: int, what: str) -> int:
        """Run heap operation `op`; grow the journal and retry while it is too small."""
        if not self.proc.alive:
            raise InvalidArgument(f"process {self.proc.pid} has exited")
        m = self.proc.machine
        while True:
            ctx = self._ctx()
            r = int(k_heap_op(m.ms, ctx, self.handle, self.journal, self.bounce, op, a, b))
            if r != ST_JOURNAL_FULL:
                break
            self.grow_journal(what)
        if r < 0 and r not in (ST_HEAP_FULL, ST_INVALID_FREE, ST_DOUBLE_FREE):
            self._raise(r, ctx, what)
        return r

    def grow_journal(self, what: str = "heap operation") -> None:
        """Make the undo journal 4 times larger (OutOfMemory beyond JOURNAL_MAX entries)."""
        entries = (self.journal.shape[0] - JR_0) // 2
        if entries >= JOURNAL_MAX:
            raise OutOfMemory(f"process {self.proc.pid}, {what}: too large to run atomically "
                              f"(more than {JOURNAL_MAX} heap words changed)")
        bigger = new_journal(min(4 * entries, JOURNAL_MAX))
        bigger[:JR_0] = self.journal[:JR_0]
        bigger[JR_LOCK] = 0
        self.journal = bigger

    def _raise(self, r: int, ctx: np.ndarray, what: str) -> None:
        pid = self.proc.pid
        if r == ST_HEAP_CORRUPT:
            raise HeapError(f"process {pid}, {what}: the heap's block headers are corrupted "
                            f"(bad metadata near {int(ctx[CTX_FAULT_VA]):#x}; a write past a block's end?)")
        self.proc.machine._raise(r, int(ctx[CTX_FAULT_VA]), f"process {pid}, {what}, undone")

    def _size(self, n) -> int:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise InvalidArgument(f"allocation size must be a non-negative integer, not {n!r}")
        return int(min(n, 1 << 40))

    def _addr(self, va) -> int:
        if isinstance(va, bool) or not isinstance(va, (int, np.integer)):
            raise InvalidArgument(f"heap address must be an integer, not {va!r}")
        return int(va) if -(1 << 62) < va < (1 << 62) else -1

    def _no_room(self, n: int) -> OutOfMemory:
        return OutOfMemory(
            f"process {self.proc.pid}: heap {self.base:#x}..{self.limit:#x} has no room for {n} bytes "
            f"(live {int(self.state[heap_base.M_LIVE_BYTES])} bytes); free blocks or spawn with a larger heap_size"
        )

    def _bad_addr(self, r: int, va: int, what: str) -> None:
        if r == ST_DOUBLE_FREE or va in self._freed:
            raise DoubleFree(f"process {self.proc.pid}, {what} of {va:#x}: that block is already free")
        raise InvalidFree(f"process {self.proc.pid}, {what} of {va:#x}: not the address of a live block of its heap")

    # ---- the allocator ----
    def malloc(self, n: int) -> int:
        """Virtual address of a new block of `n` bytes (contents undefined)."""
        n = self._size(n)
        r = self._run(OP_MALLOC, n, 0, f"malloc of {n} bytes")
        if r == ST_HEAP_FULL:
            raise self._no_room(n)
        self._freed.handed_out(r, n)
        return r

    def calloc(self, n: int) -> int:
        """Virtual address of a new block of `n` zeroed bytes."""
        n = self._size(n)
        r = self._run(OP_CALLOC, n, 0, f"calloc of {n} bytes")
        if r == ST_HEAP_FULL:
            raise self._no_room(n)
        self._freed.handed_out(r, n)
        return r

    def realloc(self, va: int, n: int) -> int:
        """Resize block `va` to `n` bytes keeping its contents; the (maybe moved) address.

        OutOfMemory leaves the block as it was; InvalidFree/DoubleFree for a bad address.
        `va` 0 allocates, as C's realloc(NULL, n) does.
        """
        n, a = self._size(n), self._addr(va)
        if a == 0:
            return self.malloc(n)
        r = self._run(OP_REALLOC, a, n, f"realloc of {va:#x} to {n} bytes")
        if r == ST_HEAP_FULL:
            raise self._no_room(n)
        if r in (ST_INVALID_FREE, ST_DOUBLE_FREE):
            self._bad_addr(r, va, "realloc")
        if r != a:
            self._freed.freed(a)
        self._freed.handed_out(r, n)
        return r

    def free(self, va: int) -> None:
        """Free block `va`; InvalidFree if it is not a live block, DoubleFree if already free."""
        r = self._run(OP_FREE, self._addr(va), 0, f"free of {va:#x}")
        if r != OK:
            self._bad_addr(r, va, "free")
        self._freed.freed(int(va))

    def size_of(self, va: int) -> int:
        """The byte count requested for live block `va`; InvalidFree/DoubleFree otherwise."""
        r = self._run(OP_SIZE_OF, self._addr(va), 0, f"size_of {va:#x}")
        if r in (ST_INVALID_FREE, ST_DOUBLE_FREE):
            self._bad_addr(r, va, "size_of")
        return r

    def is_live(self, va: int) -> bool:
        """True iff `va` is the address of a live block (host state only: never faults)."""
        return bool(self.kernels.heap_is_live(self.state, np.int64(self._addr(va))))

    def counters(self) -> dict[str, int]:
        """The allocator's counters (host-side state only: never faults, works after the
        process has exited), plus journaled operations and aborts."""
        m = self.state
        c = heap_base
        return {
            "policy": self.policy,
            "base": self.base,
            "limit": self.limit,
            "live_bytes": int(m[c.M_LIVE_BYTES]),
            "live_blocks": int(m[c.M_MALLOCS] - m[c.M_FREES]),
            "peak_live_bytes": int(m[c.M_PEAK_LIVE]),
            "footprint": int(self.kernels.heap_footprint(m)),
            "mallocs": int(m[c.M_MALLOCS]),
            "callocs": int(m[c.M_CALLOCS]),
            "frees": int(m[c.M_FREES]),
            "reallocs": int(m[c.M_REALLOCS]),
            "failed": int(m[c.M_FAILED]),
            "operations": int(self.journal[JR_OPS]),
            "rolled_back": int(self.journal[JR_ABORTS]),
            "undone_in_swap": int(self.journal[JR_UNDO_SWAP]),
        }

    def largest_free(self) -> int:
        """Bytes of the largest free block, header included (the room in top counted)."""
        return self._run(OP_LARGEST_FREE, 0, 0, "largest free block")

    def fits(self, n: int) -> bool:
        """True if a block of `n` bytes fits in the heap now (its header and alignment included)."""
        return int(self.kernels.heap_block_bytes(self.state, self._size(n))) <= self.largest_free()

    def stats(self) -> dict[str, int]:
        """Allocator counters (as vm32.heap.Heap.stats), plus journal operations/aborts."""
        return {**self.counters(), "largest_free": self.largest_free()}

    def check(self, max_findings: int = 100) -> list[str]:
        """Walk every block and free list (paging them in); the broken invariants, [] if healthy."""
        out = np.zeros((max_findings, 3), dtype=np.int64)
        ctx = self._ctx()
        n = int(k_heap_check(self.proc.machine.ms, ctx, self.handle, self.journal, out))
        if n < 0:
            self._raise(n, ctx, "heap check")
        return describe_findings(out, n, self.kernels.CHECK_MESSAGES)

    def inject_failure(self, after: int) -> None:
        """Test hook: the `after`-th heap word access from now fails as if no frame were free."""
        self.journal[JR_INJECT] = after

    def __repr__(self) -> str:
        return f"ProcessHeap(pid={self.proc.pid}, {self.base:#x}..{self.limit:#x}, {self.policy})"
