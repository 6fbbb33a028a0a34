"""The paged backend: the UM runs as a process of the demand-paged kernel (`vm32.kernel`).

A segment id *is* a 32-bit virtual address in the process's own address space:
segments are blocks of the `vm32.heap` allocator over the process's heap region,
exactly as in the flat backend, but every instruction fetch, load, store and
allocator access goes through the kernel's translation (TLB, page walk, fault
handler, swap), so a program may use far more memory than the machine's frames.

Words
-----
*space*    ``PagedSpace(words, heap, meta, tlb, cpu, ref, bounce)``: physical memory, the
           allocator's state array, this process's scalars ``meta[M_*]``, the TLB row and
           register row of the CPU it runs on, `ref`, the machine state by address
           (below), and a page-sized copy buffer.  Small on purpose: see "Hot and cold".
*fetch buffer*  translations of pages of segment 0, like an instruction prefetch
           buffer: WAYS ways, direct-mapped by virtual page; way k holds the UM index of
           segment 0 where its page starts, the host address of UM index 0 as that page
           maps it, and whether its TLB entry lets stores through.  The buffer is dropped
           whenever this CPU's TLB may have changed (on entry, when a shootdown request is
           served, after every slow translation: a miss may have evicted a buffered page's
           frame on this very CPU), and every drop adds one to ``meta[M_GEN]``.
*code*     the code handle (`CodeHandle`, a local of the interpreter): segment 0's virtual
           address and two *windows* copied from ways, valid while M_GEN is unchanged:
           the fetch window (the page of the running code) and the data window (the page
           the last load or store of segment 0 outside the fetch window used; sandmark
           loads from segment 0 about once per ten instructions and stores into it 449
           million times).  A fetch inside the window is one host load from a local
           address, as on flat memory: the interpreter asks `code_at` for the window at
           every jump and checks `code_valid` (M_GEN) after every segment operation, the
           only places where this CPU's TLB can change.  The length of segment 0 is kept
           in ``meta[M_CODE_LEN]`` (no translation to learn it).
*fail*     ``meta[M_FAIL]``: the kernel status (ST_* < 0) of an access whose page fault
           could not be served (no frame, swap full).  Not every operation of the seam can
           report a failure (code_get, seg_get and seg_set return no status), so a failure
           is recorded, the fetch buffer dropped, and the next fetch returns POISON, an
           invalid instruction: the interpreter stops at once and the driver, seeing
           M_FAIL, reports the kernel's error instead of a UM fault.  A failure inside an
           allocator operation leaves the heap half-changed: the process is finished
           either way (the driver never resumes it).

Translation
-----------
`_xlate` is the one translation of this backend: poll this CPU's shootdown slot
(one load: the CPU acknowledges evictions on other CPUs here), probe the TLB (one
load and a compare), else the cold path: walk and fault (`vm_translate_slow`).
Fetches that leave the buffered pages, loads, stores and the allocator's own header
and link accesses all use it.  Under the LRU policy every access must stamp its
frame, so the space has its own type (PagedSpaceLRU), nothing is cached and every
translation takes the slow path.

A load or store of segment s at offset i: the live bit of s (host tag map, as flat),
one translation of s's header (its size), and the data word's address derived from
the header's when both are on one page (the common case: most segments are small),
else a second translation.  `seg_check` returns the data word's physical address (and
whether its TLB entry allows a store: W and a known Dirty bit) for `seg_get` and
`seg_set`; a store the entry does not allow takes the slow path (which sets Dirty).

Hot and cold
------------
Every operation is inlined into the interpreter, and with it every call of a slow
path.  A call passing the kernel's MachineState (fifteen arrays, ~100 words) by value
cost ~500 bytes of pushes per call site; with dozens of sites the interpreter grew to
54 000-70 000 lines of assembly (flat: 4 900) and ran 2-3x slower than flat.  So the
space carries the machine state *by address*: ``ref`` holds each array's data address
and shape, and all cold paths go through one C-callable entry point (`_cold`, a
numba cfunc) called through its address with four scalars (addresses of ref and meta,
va, what): LLVM cannot inline a call through a pointer, and `_ms_view` rebuilds the
arrays as views without reference counts (the Machine owns the memory and outlives
the run).  The interpreter is now ~10 700 lines.

Concurrency
-----------
Each process runs on one CPU at a time (`paged_um_run` brackets the interpreter with
cpu_enter / cpu_leave).  Its heap and meta belong to that process alone.  The kernel's
contract (kernel/sync.py, point 6): a physical address may be used only while this
CPU's TLB holds the entry it came from, and translations kept elsewhere must be
dropped whenever the TLB changes (a fill, an invalidation, a served request).  This
CPU's TLB changes only inside the cold paths (walks, faults, served shootdowns), and
every one of them drops the fetch buffer; the other physical addresses (seg_check's,
a page being zeroed or copied) are used right after the TLB hit they came from, with
no cold path in between (load program copies through the bounce buffer, since
translating its destination may evict its source).  Fetches, loads and stores through
the code handle's windows do not poll: a program running only in segment 0 acknowledges
shootdowns at the end of its slice (the driver's instruction budget), so several
processes run with short slices.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from llvmlite import ir
import numba
from numba import cfunc, types
from numba.extending import intrinsic, overload
from numba.np.arrayobj import make_array, populate_array

from vm32.defaults import DEFAULT_POLICY, DEFAULT_TLB_ENTRIES, UM_FRAMES, UM_SWAP_LIMIT
from vm32.errors import InvalidArgument, OutOfMemory, VM32Error
from vm32.heap import core as heap_core
from vm32.heap import heap_free, heap_init, heap_is_live, heap_malloc
from vm32.heap import new_state as new_heap_state
from vm32.jit import inline_leaf_kernel, kernel, outline_leaf_kernel
from vm32.kernel.access import (
    CTX_ACCESSES, CTX_CPU, CTX_FAULT_VA, CTX_PID, CTX_SIZE, CTX_STATUS, CTX_USER, copy_user, ctx_fail, load_paged,
    page_chunk, store_paged, translate, zero_user,
)
from vm32.kernel.fault import vm_translate_slow
from vm32.kernel.layout import (
    C_REQ, CPU_STRIDE, IMAGE_BASE, KV_LRU, OK, REQ_NONE, STACK_TOP, STATUS_NAMES, ST_NO_FRAME, ST_SWAP_FULL,
)
from vm32.kernel.state import MachineState
from vm32.kernel.sync import cpu_enter, cpu_leave, cpu_service
from vm32.memory import PAGE_SIZE, load_word, store_word
from vm32.mmu.atomic import atomic_load
from vm32.mmu.entry import PTE_D, PTE_U, PTE_W
from vm32.mmu.tlb import tlb_entry_pa, tlb_entry_writable, tlb_probe
from vm32.um import space as sp
from vm32.um import status as S
from vm32.um.kernel import ST_ICOUNT, um_run

PagedSpace = namedtuple("PagedSpace", ["words", "heap", "meta", "tlb", "cpu", "ref", "bounce"])
"""words: physical memory (uint32); heap: vm32.heap state of the process heap; meta:
int64[M_SIZE]; tlb: the running CPU's TLB row; cpu: its register row; ref: the machine
state by address (`machine_ref`); bounce: uint32[1024], the copy buffer of load program."""

PagedSpaceLRU = namedtuple("PagedSpaceLRU", PagedSpace._fields)
"""The same space on a machine whose policy (LRU) must see every access: its own type, so the
compiled code knows at compile time that nothing may be cached."""

# ---- meta[M_*]: the kernel's access context (vm32.kernel.access), then the UM's fields ---------------
M_CPU = CTX_CPU  # the CPU this process runs on (set by the driver before each run)
M_PID = CTX_PID  # the process
M_FAIL = CTX_STATUS  # ST_* of the first page fault that could not be served, else 0
M_FAIL_VA = CTX_FAULT_VA  # its virtual address
M_ACC = CTX_ACCESSES  # loads and stores of words (instruction fetches are counted by the caller)
M_CODE = CTX_SIZE  # virtual address of segment 0
M_CODE_LEN = CTX_SIZE + 1  # words in segment 0
M_GEN = CTX_SIZE + 2  # fetch-buffer generation: +1 at every drop (a code handle's window is valid while equal)
M_DATA_WAY = CTX_SIZE + 3  # the fetch-buffer way the last data load or store of segment 0 used
M_REFILLS = CTX_SIZE + 4  # fetch-buffer refills
M_WAYS = 16  # fetch buffer: way k is meta[M_WAYS + WAY * k + W_*]
W_LO = 0  # first UM index of segment 0 on the way's page, or NO_PAGE
W_BASE = 1  # host address of UM index 0 as that page maps it
W_WRITE = 2  # 1 if its TLB entry lets a store through (W and a known Dirty bit)
WAY = 3
WAYS = 16  # a power of two
PAGE_WORDS = 1024
M_POISON = M_WAYS + WAY * WAYS  # a page of POISON words: what a code page that could not come in reads
M_SIZE = M_POISON + PAGE_WORDS // 2

NO_PAGE = -(1 << 62)  # an empty fetch-buffer way: no UM index is within 1024 of it
POISON = 0xF0000000  # operator 15: what a fetch returns once M_FAIL is set
NEED_READ = PTE_U
NEED_WRITE = PTE_U | PTE_W | PTE_D  # a write hits only entries that know Dirty is set


def new_meta(pid: int) -> np.ndarray:
    """A fresh meta array for process `pid` (fetch buffer empty, no failure)."""
    meta = np.zeros(M_SIZE, dtype=np.int64)
    _drop(meta)
    meta[M_DATA_WAY] = M_WAYS
    meta[M_POISON:].view(np.uint32)[:] = POISON
    meta[M_PID] = pid
    meta[CTX_USER] = 1
    return meta


# ---- the machine state by address ------------------------------------------------------------

REF_STRIDE = 3  # per MachineState field: data address, shape[0], shape[1] (1 for 1-d)
REF_LEN = REF_STRIDE * len(MachineState._fields)
REF_COLD = REF_LEN  # then: the host address of the cold-path entry point (`_cold_entry`)


def machine_ref(ms) -> np.ndarray:
    """`ms`'s arrays by address, for the cold paths (valid while the arrays live)."""
    if not _MS_TYPE:
        _MS_TYPE.append(numba.typeof(ms))
    elif numba.typeof(ms) != _MS_TYPE[0]:
        raise InvalidArgument("machine_ref: a machine state of another layout than the first one")
    ref = np.zeros(REF_LEN + 1, dtype=np.int64)
    for k, a in enumerate(ms):
        if not a.flags.c_contiguous:
            raise InvalidArgument(f"machine state field {MachineState._fields[k]} is not contiguous")
        ref[REF_STRIDE * k] = a.ctypes.data
        ref[REF_STRIDE * k + 1] = a.shape[0]
        ref[REF_STRIDE * k + 2] = a.shape[1] if a.ndim == 2 else 1
    ref[REF_COLD] = _cold_entry().address
    return ref


_MS_TYPE: list = []  # [numba type of MachineState], recorded by machine_ref before any compile


@intrinsic
def _ms_view(typingctx, ref):
    """The MachineState whose arrays `ref` (from machine_ref) names: views without reference
    counts (numba's carray is a function returning a new array, which code compiled without
    reference counting may not call; this builds the same views in place)."""
    if not _MS_TYPE or not isinstance(ref, types.Array):
        return None
    ms_type = _MS_TYPE[0]

    def codegen(context, builder, signature, args):
        base = make_array(signature.args[0])(context, builder, args[0]).data
        i64 = ir.IntType(64)

        def word(i):
            return builder.load(builder.gep(base, [ir.Constant(i64, i)]))

        arrays = []
        for k, aty in enumerate(ms_type.types):
            shape = [word(REF_STRIDE * k + 1 + d) for d in range(aty.ndim)]
            itemsize = ir.Constant(i64, context.get_abi_sizeof(context.get_data_type(aty.dtype)))
            strides = [itemsize] if aty.ndim == 1 else [builder.mul(itemsize, shape[1]), itemsize]
            ptr = builder.inttoptr(word(REF_STRIDE * k), context.get_data_type(aty.dtype).as_pointer())
            out = make_array(aty)(context, builder)
            populate_array(out, data=ptr, shape=shape, strides=strides, itemsize=itemsize, meminfo=None)
            arrays.append(out._getvalue())
        return context.make_tuple(builder, ms_type, arrays)

    return ms_type(ref), codegen


@intrinsic
def _i64_view(typingctx, addr, n):
    """The int64 array of `n` elements at host address `addr` (a view, no reference count)."""
    if not isinstance(addr, types.Integer) or not isinstance(n, types.Integer):
        return None
    aty = types.Array(types.int64, 1, "C")

    def codegen(context, builder, signature, args):
        out = make_array(aty)(context, builder)
        eight = ir.Constant(ir.IntType(64), 8)
        ptr = builder.inttoptr(args[0], context.get_data_type(types.int64).as_pointer())
        populate_array(out, data=ptr, shape=[args[1]], strides=[eight], itemsize=eight, meminfo=None)
        return out._getvalue()

    return aty(addr, n), codegen


def make_space(ms, ref: np.ndarray, heap: np.ndarray, meta: np.ndarray, cpu: int, lru: bool):
    """The space of a process (heap, meta) running on CPU `cpu` of machine state `ms` (ref: its address)."""
    meta[M_CPU] = cpu
    _drop(meta)
    kind = PagedSpaceLRU if lru else PagedSpace
    return kind(ms.words, heap, meta, ms.tlb[cpu], ms.cpus[cpu * CPU_STRIDE : (cpu + 1) * CPU_STRIDE], ref,
                np.zeros(PAGE_WORDS, dtype=np.uint32))


_inline_leaf = inline_leaf_kernel  # the fast paths: inlined into the interpreter


def _is_paged_space(space) -> bool:
    return isinstance(space, types.BaseNamedTuple) and getattr(space, "instance_class", None) in (
        PagedSpace, PagedSpaceLRU)


def _is_lru(space):
    """True for a PagedSpaceLRU (a compile-time constant in compiled code)."""
    return type(space) is PagedSpaceLRU


@overload(_is_lru, jit_options={"_nrt": False})
def _ov_is_lru(space):
    if _is_paged_space(space):
        lru = space.instance_class is PagedSpaceLRU
        return lambda space: lru
    return None


# ---- the fetch buffer --------------------------------------------------------------------------


@_inline_leaf
def _drop(m):
    """Empty the fetch buffer (this CPU's TLB may have changed, or meta is new); invalidates
    every code window.  Its ways only: the POISON page after them stays whole."""
    for k in range(WAYS):
        m[M_WAYS + WAY * k + W_LO] = NO_PAGE
    m[M_GEN] += 1


@_inline_leaf
def _poison_page(m):
    """Host address of meta's page of POISON words (what a code page that cannot come in reads)."""
    return np.int64(m.ctypes.data) + 8 * M_POISON


@intrinsic
def _host_u32(typingctx, addr):
    """The uint32 at host address `addr` (inside physical memory: the fetch buffer's pages)."""
    if not isinstance(addr, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        return builder.load(builder.inttoptr(args[0], ir.IntType(32).as_pointer()))

    return types.uint32(addr), codegen


@intrinsic
def _host_store_u32(typingctx, addr, value):
    """Store uint32 `value` at host address `addr` (inside physical memory: a writable window)."""
    if not isinstance(addr, types.Integer) or not isinstance(value, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        v = context.cast(builder, args[1], signature.args[1], types.uint32)
        builder.store(v, builder.inttoptr(args[0], ir.IntType(32).as_pointer()))
        return context.get_dummy_value()

    return types.none(addr, value), codegen


@_inline_leaf
def _way_index(va):
    """The meta index of the fetch-buffer way for virtual page of `va` (direct-mapped)."""
    return M_WAYS + WAY * ((va >> 12) & (WAYS - 1))


@_inline_leaf
def _refill(space, code, va, pa, writable):
    """Put the page of segment 0 holding virtual `va` (at physical `pa`) in a fetch-buffer way."""
    m = space.meta
    k = _way_index(va)
    lo = ((va & ~np.int64(0xFFF)) - code.va) >> 2
    m[k + W_LO] = lo
    m[k + W_BASE] = np.int64(space.words.ctypes.data) + (pa - (va & 0xFFF)) - 4 * lo
    m[k + W_WRITE] = writable
    m[M_REFILLS] += 1


@_inline_leaf
def _fail(m, status, va):
    """Record a page fault the kernel could not serve; drop the fetch buffer (next fetch: POISON)."""
    ctx_fail(m, status, va)
    _drop(m)


# ---- translation: hot paths inline, cold paths out of line with scalar arguments ------------------


COLD_SERVE, COLD_READ, COLD_WRITE = -1, 0, 1


@kernel
def _cold(ref_addr, meta_addr, va, what):
    """The cold paths, out of line with scalar arguments only (see "Hot and cold").

    what = COLD_SERVE: serve this CPU's pending shootdown request; returns 0.
    what = COLD_READ / COLD_WRITE: walk and fault for `va` (the TLB could not answer);
    returns the physical address, or ST_* with M_FAIL set.
    Either way the fetch buffer is dropped: this CPU's TLB may change here (own
    evictions, served shootdowns).
    """
    ms = _ms_view(_i64_view(ref_addr, REF_LEN))
    m = _i64_view(meta_addr, M_SIZE)
    _drop(m)
    if what == COLD_SERVE:
        cpu_service(ms, m[M_CPU])
        return np.int64(0)
    pa = vm_translate_slow(ms, m[M_CPU], va, what, 1)
    if pa < 0:
        _fail(m, pa, va)
    return pa


_COLD_ENTRY: list = []


def _cold_entry():
    """`_cold` as a C-callable function (compiled on first use): the hot code calls it through
    its address, so LLVM cannot inline it into the interpreter (it did, 64 times, when it was
    an ordinary call: each copy brought a 90-word call of the fault handler along)."""
    if not _COLD_ENTRY:
        sig = types.int64(types.int64, types.int64, types.int64, types.int64)
        _COLD_ENTRY.append(cfunc(sig, nopython=True, cache=True)(_cold_c))
    return _COLD_ENTRY[0]


def _cold_c(ref_addr, meta_addr, va, what):
    return _cold(ref_addr, meta_addr, va, what)


@intrinsic
def _call_cold(typingctx, fn, ref_addr, meta_addr, va, what):
    """Call the C function at host address `fn` with four int64 arguments; its int64 result."""
    args = (fn, ref_addr, meta_addr, va, what)
    if not all(isinstance(a, types.Integer) for a in args):
        return None

    def codegen(context, builder, signature, llargs):
        i64 = ir.IntType(64)
        vals = [context.cast(builder, v, t, types.int64) for v, t in zip(llargs, signature.args)]
        fnty = ir.FunctionType(i64, [i64] * 4)
        return builder.call(builder.inttoptr(vals[0], fnty.as_pointer()), vals[1:])

    return types.int64(*args), codegen


@_inline_leaf
def _poll(space):
    """Acknowledge a pending shootdown request, if any (one load when there is none)."""
    if atomic_load(space.cpu, C_REQ) != REQ_NONE:
        _call_cold(space.ref[REF_COLD], space.ref.ctypes.data, space.meta.ctypes.data, np.int64(0), COLD_SERVE)


@_inline_leaf
def _xlate_slow(space, va, write):
    """The cold path of a translation (a call with four scalars)."""
    return _call_cold(space.ref[REF_COLD], space.ref.ctypes.data, space.meta.ctypes.data, va, np.int64(write))


@_inline_leaf
def _xlate(space, va, write):
    """Physical address of virtual `va` (int64) for a user read or write; ST_* < 0 on failure.

    Polls this CPU's shootdown slot first, then the TLB, then walks (and faults).
    """
    _poll(space)
    if not _is_lru(space):
        e = tlb_probe(space.tlb, va, NEED_WRITE if write else NEED_READ)
        if e != 0:
            return tlb_entry_pa(e, va)
    return _xlate_slow(space, va, write)


# ---- the allocator's memory: a paged memory of the kernel's seam (vm32.kernel.access) -----------------


@overload(translate, jit_options={"_nrt": False, "forceinline": True})
def _translate_paged_space(mem, va, write):
    if _is_paged_space(mem):
        return lambda mem, va, write: _xlate(mem, np.int64(va), write)
    return None


@overload(load_word, jit_options={"_nrt": False, "forceinline": True})
def _load_word_paged_space(mem, addr):
    if _is_paged_space(mem):
        return lambda mem, addr: load_paged(mem, mem.meta, mem.words, addr)
    return None


@overload(store_word, jit_options={"_nrt": False, "forceinline": True})
def _store_word_paged_space(mem, addr, value):
    if _is_paged_space(mem):
        return lambda mem, addr, value: store_paged(mem, mem.meta, mem.words, addr, value)
    return None


@outline_leaf_kernel
def _copy_in(space, dst, program):
    """Copy host array `program` (uint32) to virtual `dst`, a page chunk at a time; False on failure."""
    words = space.words
    n = 4 * np.int64(program.shape[0])
    done = np.int64(0)
    while done < n:
        pa, c = page_chunk(space, dst + done, n - done, 1)
        if pa < 0:
            return False
        for j in range(c >> 2):
            words[(pa >> 2) + j] = program[(done >> 2) + j]
        done += c
    return True


# ---- the segment-space operations ----------------------------------------------------------------------


CodeHandle = namedtuple("CodeHandle", [
    "va", "gen", "lo", "hi", "base", "wend", "dway", "dlo", "dhi", "dbase", "dwend"])
"""The paged code handle: segment 0 at virtual `va`, and two windows valid while
meta[M_GEN] == gen: the fetch window, UM indices [lo, hi) on one page mapped at host
address base + 4 * index, where stores may go too below `wend` (lo when the page's TLB
entry does not allow them); and the data window (dlo, dhi, dbase, dwend) of the way
`dway` that the last data access of segment 0 outside the fetch window used."""


def _code_of(space):
    return CodeHandle(space.meta[M_CODE], np.int64(0), NO_PAGE, NO_PAGE, np.int64(0), NO_PAGE,
                      np.int64(-1), NO_PAGE, NO_PAGE, np.int64(0), NO_PAGE)


def _code_len(space, code):
    return np.uint64(space.meta[M_CODE_LEN])


@outline_leaf_kernel
def _code_translate_slow(space, code, i):
    """Host address of word i of segment 0 when the TLB does not hold its page: walk (fault),
    refill the fetch buffer; < 0 if the page cannot come in (its way then maps a page of
    POISON, so that the interpreter's next fetch stops it)."""
    m = space.meta
    va = code.va + 4 * np.int64(i)
    pa = np.int64(-1) if m[M_FAIL] != 0 else _xlate_slow(space, va, 0)
    if pa < 0:
        if not _is_lru(space):  # the way maps meta's POISON page (an "address" outside memory)
            poison = _poison_page(m) - np.int64(space.words.ctypes.data)
            _refill(space, code, va, poison + (va & 0xFFF), 0)
        return np.int64(-1)
    if not _is_lru(space):
        _refill(space, code, va, pa, 0)
    return np.int64(space.words.ctypes.data) + pa


@_inline_leaf
def _code_translate(space, code, i):
    """Host address of word i of segment 0, not in the fetch buffer: poll, probe the TLB and
    refill, else the slow path; < 0 if the page cannot come in."""
    _poll(space)
    if not _is_lru(space) and space.meta[M_FAIL] == 0:
        va = code.va + 4 * np.int64(i)
        e = tlb_probe(space.tlb, va, NEED_READ)
        if e != 0:
            pa = tlb_entry_pa(e, va)
            _refill(space, code, va, pa, np.int64(tlb_entry_writable(e)))
            return np.int64(space.words.ctypes.data) + pa
    return _code_translate_slow(space, code, i)


@_inline_leaf
def _way_of(space, code, i):
    """The meta index of the fetch-buffer way holding word i of segment 0, or -1 (always
    under LRU, where nothing is cached)."""
    if _is_lru(space):
        return -1
    k = _way_index(code.va + 4 * i)
    if np.uint64(i - space.meta[k + W_LO]) < np.uint64(PAGE_WORDS):
        return k
    return -1


@_inline_leaf
def _window_of(space, code, i):
    """The code handle whose fetch window holds word i of segment 0: the fetch-buffer way with
    its page (refilled now if it has not), and the data window of way M_DATA_WAY; under LRU
    just the word (every fetch must stamp its frame) and no data window.  A page that cannot
    come in gives a window of POISON words."""
    m = space.meta
    k = _way_of(space, code, i)
    if k < 0:
        host = _code_translate(space, code, i)
        if host < 0:
            host = _poison_page(m)  # its first word
        # Only LRU returns here (host >= 0 now); written this way, paged sandmark measured
        # 1.54x flat against 1.57x for `if _is_lru(space)` alone (code layout, not work).
        if host < 0 or _is_lru(space):
            return CodeHandle(code.va, m[M_GEN], i, i + 1, host - 4 * i, i,
                              np.int64(-1), NO_PAGE, NO_PAGE, np.int64(0), NO_PAGE)
        k = _way_of(space, code, i)  # the refill put the page (or a page of POISON) in a way
    lo = m[k + W_LO]
    hi = lo + PAGE_WORDS
    code = CodeHandle(code.va, m[M_GEN], lo, hi, m[k + W_BASE], hi if m[k + W_WRITE] != 0 else lo,
                      np.int64(-1), NO_PAGE, NO_PAGE, np.int64(0), NO_PAGE)
    return _with_data_window(m, code)


@_inline_leaf
def _with_data_window(m, code):
    """`code` with the data window of way M_DATA_WAY (empty if that way is)."""
    d = m[M_DATA_WAY]
    dlo = m[d + W_LO]
    dhi = dlo + PAGE_WORDS if dlo != NO_PAGE else NO_PAGE
    return CodeHandle(code.va, code.gen, code.lo, code.hi, code.base, code.wend,
                      d, dlo, dhi, m[d + W_BASE], dhi if m[d + W_WRITE] != 0 else dlo)


def _code_at(space, code, pc, ncode):
    if pc >= ncode:
        return code, pc  # nothing to fetch: the interpreter reports pc out of range
    i = np.int64(pc)
    m = space.meta
    if np.uint64(i - code.lo) >= np.uint64(code.hi - code.lo) or code.gen != m[M_GEN]:
        code = _window_of(space, code, i)
    elif code.dway != m[M_DATA_WAY]:
        code = _with_data_window(m, code)
    return code, min(ncode, np.uint64(code.hi))


def _code_fetch(space, code, i):
    # The window's host address is a local: the word's load depends on no other load.
    return _host_u32(code.base + 4 * np.int64(i))


def _code_valid(space, code):
    return code.gen == space.meta[M_GEN]


def _code_get(space, code, i):
    space.meta[M_ACC] += 1
    j = np.int64(i)
    if np.uint64(j - code.dlo) < np.uint64(code.dhi - code.dlo):
        return _host_u32(code.dbase + 4 * j)
    if np.uint64(j - code.lo) < np.uint64(code.hi - code.lo):
        return _host_u32(code.base + 4 * j)
    return _code_get_buffered(space, code, i)


@_inline_leaf
def _code_get_buffered(space, code, i):
    """A data load of segment 0 outside the code handle's windows: the fetch-buffer way of its
    page, else translate (and refill)."""
    m = space.meta
    j = np.int64(i)
    k = _way_of(space, code, j)
    if k >= 0:
        m[M_DATA_WAY] = k  # the next jump takes this page as the data window
        return _host_u32(m[k + W_BASE] + 4 * j)
    host = _code_translate(space, code, j)
    if host < 0:
        return np.uint32(0)  # M_FAIL is set: the interpreter stops at the next check
    return _host_u32(host)


def _code_set(space, code, i, value):
    space.meta[M_ACC] += 1
    j = np.int64(i)
    if np.uint64(j - code.dlo) < np.uint64(code.dwend - code.dlo):
        _host_store_u32(code.dbase + 4 * j, value)
    elif np.uint64(j - code.lo) < np.uint64(code.wend - code.lo):
        _host_store_u32(code.base + 4 * j, value)
    else:
        _code_set_buffered(space, code, j, value)


@_inline_leaf
def _code_set_buffered(space, code, i, value):
    """A store into segment 0 outside the code handle's writable windows: a writable way of the
    fetch buffer, else translate for writing (and put the page in its way)."""
    m = space.meta
    k = _way_of(space, code, i)
    if k >= 0 and m[k + W_WRITE] != 0:
        m[M_DATA_WAY] = k
        _host_store_u32(m[k + W_BASE] + 4 * i, value)
        return
    va = code.va + 4 * i
    pa = _xlate(space, va, 1)
    if pa >= 0:
        space.words[pa >> 2] = value
        if not _is_lru(space):  # the TLB now holds the page's entry with W and Dirty
            _refill(space, code, va, pa, 1)


@_inline_leaf
def _is_segment(space, s):
    """True iff `s` is an active segment other than segment 0 (host tag map: never faults)."""
    return s != space.meta[M_CODE] and heap_is_live(space.heap, s)


@_inline_leaf
def _read_entry(space, va):
    """(pa, w) of a read of `va`: w is True when the TLB entry would let a store through too
    (W and a known Dirty bit), so that a store after the check needs no second lookup.
    pa is ST_* < 0 if the page could not come in."""
    _poll(space)
    if not _is_lru(space):
        e = tlb_probe(space.tlb, va, NEED_READ)
        if e != 0:
            return tlb_entry_pa(e, va), tlb_entry_writable(e)
    return _xlate_slow(space, va, 0), False


def _seg_check(space, sid, off):
    s = np.int64(sid)
    a = s + 4 * np.int64(off)
    if not _is_segment(space, s):
        return S.INACTIVE_ARRAY, (a, a, a)
    m = space.meta
    m[M_ACC] += 1
    h = s - 4
    ph, w = _read_entry(space, h)
    if ph < 0:
        return S.OUT_OF_MEMORY, (a, a, a)  # M_FAIL tells the driver it is the kernel's failure
    if off >= (np.uint64(space.words[ph >> 2]) >> np.uint64(2)):
        return S.INDEX_OUT_OF_BOUNDS, (a, a, a)
    if (a ^ h) >> 12 == 0:
        pa = ph + (a - h)
    else:
        pa, w = _read_entry(space, a)
        if pa < 0:
            return S.OUT_OF_MEMORY, (a, a, a)
    return 0, (pa, pa if w else np.int64(-1), a)  # where: (pa, pa if a store may use it, va)


def _seg_get(space, where):
    return space.words[where[0] >> 2]


@outline_leaf_kernel
def _store_slow(space, va, value):
    """A store whose TLB entry lacks write permission or a known Dirty bit: walk (sets Dirty)."""
    pa = _xlate_slow(space, va, 1)
    if pa >= 0:
        space.words[pa >> 2] = value


def _seg_set(space, where, value):
    if where[1] >= 0:
        space.words[where[1] >> 2] = value
    else:
        _store_slow(space, where[2], value)


def _seg_map(space, n):
    nbytes = np.int64(n) * 4
    p = heap_malloc(space, space.heap, nbytes)
    if p == 0 or space.meta[M_FAIL] != 0:
        return np.uint32(0)
    if zero_user(space, space.words, p, nbytes) != OK:
        return np.uint32(0)
    return np.uint32(p)


def _seg_unmap(space, sid):
    s = np.int64(sid)
    if not _is_segment(space, s):
        return S.UNMAP_INACTIVE
    heap_free(space, space.heap, s)
    if space.meta[M_FAIL] != 0:
        return S.OUT_OF_MEMORY
    return 0


@outline_leaf_kernel
def _load_program(space, sid):
    """Segment 0 becomes a copy of segment `sid` (live, not segment 0); 0 or a fault status."""
    m = space.meta
    s = np.int64(sid)
    nbytes = np.int64(load_word(space, s - 4))
    if m[M_FAIL] != 0:
        return S.OUT_OF_MEMORY
    new = heap_malloc(space, space.heap, nbytes)
    if new == 0 or m[M_FAIL] != 0:
        return S.OUT_OF_MEMORY
    if copy_user(space, space.words, new, s, nbytes, space.bounce) != OK:
        return S.OUT_OF_MEMORY
    heap_free(space, space.heap, m[M_CODE])
    if m[M_FAIL] != 0:
        return S.OUT_OF_MEMORY
    m[M_CODE] = new
    m[M_CODE_LEN] = nbytes >> 2
    _drop(m)
    return 0


def _seg_load_program(space, sid):
    if not _is_segment(space, np.int64(sid)):
        return S.LOADPROG_INACTIVE
    return _load_program(space, sid)


_OPS = dict(
    **sp.ONE_STEP, code_of=_code_of, code_len=_code_len, code_at=_code_at, code_fetch=_code_fetch, code_valid=_code_valid,
    code_get=_code_get, code_set=_code_set,
    seg_check=_seg_check, seg_get=_seg_get, seg_set=_seg_set,
    seg_map=_seg_map, seg_unmap=_seg_unmap, seg_load_program=_seg_load_program,
)
for _kind in (PagedSpace, PagedSpaceLRU):
    sp.register(_kind, refcounted=False, inline=True, **_OPS)


# ---- entry points (one visit of the CPU each) --------------------------------------------------------------


@kernel
def paged_setup(ms, space, program, base, limit):
    """Set up the process heap over [base, limit) and copy `program` into segment 0.

    Returns OK, ST_DEAD, ST_* of a failed page fault (M_FAIL set), or 1 when the
    heap has no room for the program.
    """
    m = space.meta
    cpu = m[M_CPU]
    st = cpu_enter(ms, cpu, m[M_PID])
    if st != OK:
        return st
    _drop(m)
    heap_init(space, space.heap, base, limit)
    r = np.int64(OK)
    if m[M_FAIL] == 0:
        p = heap_malloc(space, space.heap, 4 * np.int64(program.shape[0]))
        if p == 0 and m[M_FAIL] == 0:
            r = np.int64(1)
        elif m[M_FAIL] == 0 and _copy_in(space, p, program):
            m[M_CODE] = p
            m[M_CODE_LEN] = program.shape[0]
    if m[M_FAIL] != 0:
        r = m[M_FAIL]
    _drop(m)
    cpu_leave(ms, cpu, program.shape[0])
    return r


@kernel
def paged_um_run(ms, space, regs, st, inbuf, outbuf, budget):
    """`um_run` on a paged space, as one visit of the process's CPU (cpu_enter .. cpu_leave).

    Returns um_run's status, or ST_DEAD (< 0) if the process has exited.  The accesses
    credited to the process are the instructions fetched plus the segment loads and stores.
    """
    m = space.meta
    cpu = m[M_CPU]
    e = cpu_enter(ms, cpu, m[M_PID])
    if e != OK:
        return np.int64(e)
    _drop(m)  # other CPUs did not wait for this one while it was away
    icount = st[ST_ICOUNT]
    acc = m[M_ACC]
    r = um_run(space, regs, st, inbuf, outbuf, budget)
    _drop(m)
    cpu_leave(ms, cpu, (st[ST_ICOUNT] - icount) + (m[M_ACC] - acc))
    return np.int64(r)


# ---- the Python face ----------------------------------------------------------------------------------------

PAGED_MAX_HEAP = STACK_TOP - IMAGE_BASE
"""The largest heap region (UM segments) of a process: from IMAGE_BASE (no image) to the kernel."""


class PagedProcess:
    """A UM program as a process of a `vm32.kernel.Machine`: owns its PagedSpace.

    The process has no image and no stack; its heap region of `heap_size` bytes
    (rounded down to pages, at most PAGED_MAX_HEAP) holds every segment.  With
    `machine` None a machine of its own is made (closed with the process) from
    `frames`, `policy`, `swap` (bytes; default the heap size, at most UM_SWAP_LIMIT),
    `swap_path` (with `swap_overwrite`, see Machine) and `tlb_entries`; otherwise those must be None.  Used by
    `vm32.um.machine.UniversalMachine`; any host thread may run it, one at a time.
    """

    def __init__(self, words: np.ndarray, heap_size: int, *, name: str = "program", frames=None, policy=None,
                 swap=None, swap_path=None, swap_overwrite=False, tlb_entries=None, machine=None):
        from vm32.kernel.machine import Machine

        heap_size = min(int(heap_size), PAGED_MAX_HEAP) // PAGE_SIZE * PAGE_SIZE
        if heap_size < 2 * PAGE_SIZE:
            raise InvalidArgument("the paged backend needs a heap of at least 8K (--memory)")
        self.name = name
        self.own_machine = machine is None
        if machine is None:
            machine = Machine(
                frames=UM_FRAMES if frames is None else frames,
                swap=min(heap_size, UM_SWAP_LIMIT) if swap is None else swap,
                policy=DEFAULT_POLICY if policy is None else policy,
                tlb_entries=DEFAULT_TLB_ENTRIES if tlb_entries is None else tlb_entries,
                swap_path=swap_path,
                swap_overwrite=swap_overwrite,
            )
        elif any(v is not None for v in (frames, policy, swap, swap_path, tlb_entries)):
            raise InvalidArgument("frames, policy, swap, swap_path and tlb_entries belong to the shared machine")
        self.machine = machine
        self.proc = None
        try:
            self._start(words, heap_size)
        except BaseException:
            self.close()
            raise

    def _start(self, words: np.ndarray, heap_size: int) -> None:
        m = self.machine
        self.proc = m.spawn(image=None, heap_size=heap_size, stack_size=0)
        base, limit = self.proc.heap_base, self.proc.heap_end
        self.heap_base, self.heap_limit = base, limit
        self.lru = bool(m.ms.kv[KV_LRU])
        self.ref = machine_ref(m.ms)
        meta = new_meta(self.proc.pid)
        self.space = make_space(m.ms, self.ref, new_heap_state(base, limit), meta, m.cpu(), self.lru)
        r = int(paged_setup(m.ms, self.space, np.ascontiguousarray(words, dtype=np.uint32), base, limit))
        if r == 1:
            raise OutOfMemory(f"{self.name}: the program ({4 * len(words)} bytes) does not fit in a heap of "
                              f"{heap_size} bytes; use a larger --memory")
        if r != OK:
            raise self._kernel_error(r, int(meta[M_FAIL_VA]), "loading the program")

    # ---- running ----
    def run_slice(self, regs, st, inbuf, outbuf, budget: int) -> int:
        """One call of the interpreter on the calling thread's CPU; um_run's status."""
        meta = self.space.meta
        cpu = self.machine.cpu()
        if cpu != meta[M_CPU]:
            self.space = make_space(self.machine.ms, self.ref, self.space.heap, meta, cpu, self.lru)
        r = int(paged_um_run(self.machine.ms, self.space, regs, st, inbuf, outbuf, budget))
        if r < 0:
            raise InvalidArgument(f"{self.name}: the process has ended; load the program again")
        return r

    def failure(self, pc: int) -> VM32Error | None:
        """The kernel's error if the last slice stopped on a page fault it could not serve."""
        status = int(self.space.meta[M_FAIL])
        if status == 0:
            return None
        return self._kernel_error(status, int(self.space.meta[M_FAIL_VA]), f"at UM pc={pc:#x}")

    def _kernel_error(self, status: int, va: int, where: str) -> VM32Error:
        reason = STATUS_NAMES.get(status, f"kernel status {status}")
        text = f"{self.name}: page fault at {va:#010x} {where} could not be served: {reason}"
        if status == ST_SWAP_FULL:
            return OutOfMemory(f"{text} ({self.machine.swap.slots} slots of 4K); use a larger --swap-size or more --frames")
        if status == ST_NO_FRAME:
            return OutOfMemory(f"{text}; the machine has {self.machine.frames} frames - use more --frames")
        return VM32Error(text)

    def finish(self) -> None:
        """End the process (frames and swap slots go back to the machine); keep its statistics."""
        if self.proc is not None and self.proc.alive:
            self.proc.exit()

    def close(self) -> None:
        """End the process and close the machine if it is this process's own."""
        try:
            self.finish()
        finally:
            if self.own_machine and not self.machine.closed:
                self.machine.close()

    # ---- inspection ----
    def code_words(self) -> np.ndarray:
        """A copy of segment 0's words (empty if they cannot be read any more)."""
        meta = self.space.meta
        n = int(meta[M_CODE_LEN])
        if self.proc is None or not self.proc.alive or n == 0:
            return np.zeros(0, dtype=np.uint32)
        try:
            return np.frombuffer(self.proc.read(int(meta[M_CODE]), 4 * n), dtype=np.uint32).copy()
        except VM32Error:
            return np.zeros(0, dtype=np.uint32)

    def stats(self) -> dict:
        """Kernel counters of the process (faults, paging, TLB) and of its heap."""
        k = self.proc.stats() if self.proc is not None else {}
        h = self.space.heap
        acc = k.get("accesses", 0)
        out = {
            "frames": self.machine.frames,
            "policy": self.machine.policy,
            "page_faults": k.get("page_faults", 0),
            "zero_fill": k.get("zero_fill", 0),
            "page_ins_from_swap": k.get("swap_in", 0),
            "page_outs": k.get("page_outs", 0),
            "evictions": k.get("evictions", 0),
            "swap_bytes_in": k.get("swap_bytes_in", 0),
            "swap_bytes_out": k.get("swap_bytes_out", 0),
            "page_tables": k.get("page_tables", 0),
            "memory_accesses": acc,
            "tlb_misses": k.get("tlb_misses", 0),
            "tlb_hit_rate": (1.0 - k.get("tlb_misses", 0) / acc) if acc else 0.0,
            "fetch_buffer_refills": int(self.space.meta[M_REFILLS]),
            "allocator_footprint_bytes": int(h[heap_core.M_HIGH] - heap_core.HEADER - h[heap_core.M_BASE]),
            "allocator_peak_live_bytes": int(h[heap_core.M_PEAK_LIVE]),
        }
        return out
