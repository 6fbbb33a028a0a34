"""The machine by address: pointer intrinsics and the cold-call trampoline, for hot loops.

A compiled loop that inlines every fast path of its memory accesses (the paged
UM's interpreter) cannot take the machine state `ms` (fifteen arrays, ~100 words)
as an argument: every inlined call of a slow path passes it by value (~500 bytes
of pushes per call site), and with dozens of sites such an interpreter grew to
54 000-70 000 lines of assembly and ran 2-3x slower than one without them.  So
the loop holds the machine *by address* and reaches every slow path through one
C-callable entry point with four scalar arguments:

    ref     ``machine_ref(ms)``: each array of `ms` as (data address, shape[0],
            shape[1]), then the address of the entry point.  Valid while the
            arrays live (the Machine owns them and outlives its processes).
    cold    the entry point (a numba cfunc): rebuilds `ms` from ref as views without
            reference counts (`ms_view`), then serves this CPU's pending shootdown
            request or walks and faults for a virtual address (vm_translate_slow).
            Called through its address (`call_cold`), so LLVM can never inline it
            into the loop: as an ordinary call it did, 64 times, each copy bringing
            a 90-word call of the fault handler along.

The hot side is `ref_entry` (poll the CPU's shootdown slot, probe its TLB row: two
loads and a compare) and `ref_translate`; both take the CPU's rows (its TLB row,
its register row), `ref` and the loop's access context ctx (vm32.kernel.access).

Cached translations.  A loop may keep translations of its own beyond the TLB (the
UM's fetch buffer).  sync.py's point 6 requires them dropped whenever this CPU's
TLB may change, which happens only inside the cold path: so the cold path itself
drops them.  The loop describes them in its ctx: ``ctx[CTX_CACHE]`` ways (0: none)
from index ``ctx[CTX_CACHE_AT]``, ``ctx[CTX_CACHE_STRIDE]`` words apart, whose first
word an empty way holds NO_TRANSLATION; every drop adds one to ``ctx[CTX_TLB_GEN]``,
so a copy of a way kept in a local is valid while that generation is unchanged.

The other intrinsics read and write a uint32 at a host address (`host_load_u32`,
`host_store_u32`: a window of physical memory kept in a local) and view an int64
array at an address (`i64_view`).  `tlb_entry_pa` and `tlb_entry_writable`
(vm32.mmu.tlb) decode what `ref_entry` returns.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import cfunc, types
from numba.extending import intrinsic
from numba.np.arrayobj import make_array, populate_array

from vm32.errors import InvalidArgument
from vm32.jit import inline_leaf_kernel, kernel
from vm32.kernel.access import CTX_CACHE, CTX_CACHE_AT, CTX_CACHE_STRIDE, CTX_CPU, CTX_SIZE, CTX_TLB_GEN, ctx_fail
from vm32.kernel.fault import vm_translate_slow
from vm32.kernel.layout import C_REQ, CPU_STRIDE, REQ_NONE
from vm32.kernel.state import MachineState
from vm32.kernel.sync import cpu_service
from vm32.atomic import atomic_load
from vm32.mmu.tlb import NEED_USER_READ, NEED_USER_WRITE, tlb_entry_pa, tlb_entry_writable, tlb_probe  # noqa: F401

NO_TRANSLATION = -(1 << 62)  # the first word of an empty way of a loop's cached translations
COLD_SERVE, COLD_READ, COLD_WRITE = -1, 0, 1  # what the cold path does

REF_STRIDE = 3  # per MachineState field: data address, shape[0], shape[1] (1 for 1-d)
REF_LEN = REF_STRIDE * len(MachineState._fields)
REF_COLD = REF_LEN  # then: the host address of the cold entry point

_MS_TYPE: list = []  # [numba type of MachineState], recorded by machine_ref before any compile
_COLD_ENTRY: list = []


def machine_ref(ms) -> np.ndarray:
    """`ms`'s arrays by address, and the cold entry point's (valid while the arrays live)."""
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
    ref[REF_COLD] = cold_entry().address
    return ref


def cpu_rows(ms, cpu: int) -> tuple[np.ndarray, np.ndarray]:
    """CPU `cpu`'s TLB row and register row of machine state `ms` (views), as the hot
    side's functions take them."""
    return ms.tlb[cpu], ms.cpus[cpu * CPU_STRIDE : (cpu + 1) * CPU_STRIDE]


# ---- pointer intrinsics -------------------------------------------------------------------------


@intrinsic
def ms_view(typingctx, ref):
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
def i64_view(typingctx, addr, n):
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


@intrinsic
def host_load_u32(typingctx, addr):
    """The uint32 at host address `addr` (inside physical memory: a window of it)."""
    if not isinstance(addr, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        return builder.load(builder.inttoptr(args[0], ir.IntType(32).as_pointer()))

    return types.uint32(addr), codegen


@intrinsic
def host_store_u32(typingctx, addr, value):
    """Store uint32 `value` at host address `addr` (inside physical memory: a writable window)."""
    if not isinstance(addr, types.Integer) or not isinstance(value, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        v = context.cast(builder, args[1], signature.args[1], types.uint32)
        builder.store(v, builder.inttoptr(args[0], ir.IntType(32).as_pointer()))
        return context.get_dummy_value()

    return types.none(addr, value), codegen


@intrinsic
def call_cold(typingctx, fn, ref_addr, ctx_addr, va, what):
    """Call the C function at host address `fn` with four int64 arguments; its int64 result."""
    args = (fn, ref_addr, ctx_addr, va, what)
    if not all(isinstance(a, types.Integer) for a in args):
        return None

    def codegen(context, builder, signature, llargs):
        i64 = ir.IntType(64)
        vals = [context.cast(builder, v, t, types.int64) for v, t in zip(llargs, signature.args)]
        fnty = ir.FunctionType(i64, [i64] * 4)
        return builder.call(builder.inttoptr(vals[0], fnty.as_pointer()), vals[1:])

    return types.int64(*args), codegen


# ---- the cold path ----------------------------------------------------------------------------------


@inline_leaf_kernel
def drop_cached(ctx):
    """Empty the caller's cached translations that ctx describes and start a new generation."""
    at, stride = ctx[CTX_CACHE_AT], ctx[CTX_CACHE_STRIDE]
    for k in range(ctx[CTX_CACHE]):
        ctx[at + stride * k] = NO_TRANSLATION
    ctx[CTX_TLB_GEN] += 1


@kernel
def cold(ref_addr, ctx_addr, va, what):
    """The cold paths, with scalar arguments only: the machine at `ref_addr` (machine_ref),
    the loop's context at `ctx_addr` (CTX_* and its cached translations, up to their end).

    what = COLD_SERVE: serve this CPU's pending shootdown request; returns 0.
    what = COLD_READ / COLD_WRITE: walk and fault for user access `va` (the TLB could
    not answer); returns the physical address, or ST_* (recorded: ctx_fail).
    Either way the caller's cached translations are dropped: this CPU's TLB may change
    here (own evictions, served shootdowns).
    """
    ms = ms_view(i64_view(ref_addr, REF_LEN))
    head = i64_view(ctx_addr, CTX_SIZE)
    ctx = i64_view(ctx_addr, max(CTX_SIZE, head[CTX_CACHE_AT] + head[CTX_CACHE_STRIDE] * head[CTX_CACHE]))
    drop_cached(ctx)
    if what == COLD_SERVE:
        cpu_service(ms, ctx[CTX_CPU])
        return np.int64(0)
    pa = vm_translate_slow(ms, ctx[CTX_CPU], va, what, 1)
    if pa < 0:
        ctx_fail(ctx, pa, va)
    return pa


def _cold_c(ref_addr, ctx_addr, va, what):
    return cold(ref_addr, ctx_addr, va, what)


def cold_entry():
    """`cold` as a C-callable function (compiled on first use, cached on disk)."""
    if not _COLD_ENTRY:
        sig = types.int64(types.int64, types.int64, types.int64, types.int64)
        _COLD_ENTRY.append(cfunc(sig, nopython=True, cache=True)(_cold_c))
    return _COLD_ENTRY[0]


# ---- the hot side -----------------------------------------------------------------------------------


@inline_leaf_kernel
def ref_cold(ref, ctx, va, what):
    """Call the cold path (see `cold`) of the machine `ref` for the loop's context ctx."""
    return call_cold(ref[REF_COLD], ref.ctypes.data, ctx.ctypes.data, np.int64(va), np.int64(what))


@inline_leaf_kernel
def ref_poll(cpu, ref, ctx):
    """Serve this CPU's pending shootdown request, if any (one load when there is none);
    `cpu` is the CPU's register row."""
    if atomic_load(cpu, C_REQ) != REQ_NONE:
        ref_cold(ref, ctx, 0, COLD_SERVE)


@inline_leaf_kernel
def ref_entry(tlb, cpu, ref, ctx, va, need, every):
    """After a poll: the entry of TLB row `tlb` for `va` if it holds the bits `need`, else 0
    (the caller takes the cold path).  Always 0 when `every` (a constant: the policy sees
    every access, so no access may be served from the TLB without it)."""
    ref_poll(cpu, ref, ctx)
    if every:
        return np.int64(0)
    return tlb_probe(tlb, va, need)


@inline_leaf_kernel
def ref_translate(tlb, cpu, ref, ctx, va, write, every):
    """Physical address of user access `va` (a write if `write`), or ST_* < 0 (recorded in
    ctx): poll, probe the TLB, else the cold path."""
    e = ref_entry(tlb, cpu, ref, ctx, va, NEED_USER_WRITE if write else NEED_USER_READ, every)
    if e != 0:
        return tlb_entry_pa(e, va)
    return ref_cold(ref, ctx, va, write)
