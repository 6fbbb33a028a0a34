"""Atomic operations on numpy array elements, usable inside numba kernels.

numba has no CPU atomics, and the paged machine needs a few: page-table entries
are updated by the MMU of one CPU (Accessed/Dirty) while the kernel on another
CPU evicts the page, and a spin lock serialises fault handling.  Each operation
here is a plain Python function (correct under the GIL, so kernels still run
with ``NUMBA_DISABLE_JIT=1``) plus an @overload that emits the LLVM atomic
instruction (``cmpxchg``, ``atomicrmw xchg``, ``load atomic``, ``store atomic``,
``fence``) on the element's address.  All use sequentially consistent ordering:
the callers are slow paths or once-per-kernel-entry handshakes, so the simple
strongest ordering costs nothing measurable.

Only 1-d C-contiguous arrays of 32- or 64-bit integers are supported; the index
is not bounds-checked (callers own the index).
"""

from __future__ import annotations

from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic, overload

_ORDER = "seq_cst"


def _elem_ptr(context, builder, aryty, ary_val, idx_val):
    ary = context.make_array(aryty)(context, builder, ary_val)
    return cgutils.get_item_pointer(context, builder, aryty, ary, [idx_val], wraparound=False)


def _check(arr, idx):
    return (
        isinstance(arr, types.Array)
        and arr.ndim == 1
        and isinstance(arr.dtype, types.Integer)
        and arr.dtype.bitwidth in (32, 64)
        and isinstance(idx, types.Integer)
    )


@intrinsic
def _cas_intr(typingctx, arr, idx, expected, new):
    if not _check(arr, idx):
        return None
    sig = arr.dtype(arr, idx, expected, new)

    def codegen(context, builder, signature, args):
        aryty, idxty, expty, newty = signature.args
        ptr = _elem_ptr(context, builder, aryty, args[0], args[1])
        exp = context.cast(builder, args[2], expty, aryty.dtype)
        val = context.cast(builder, args[3], newty, aryty.dtype)
        res = builder.cmpxchg(ptr, exp, val, _ORDER, _ORDER)
        return builder.extract_value(res, 0)

    return sig, codegen


@intrinsic
def _xchg_intr(typingctx, arr, idx, new):
    if not _check(arr, idx):
        return None
    sig = arr.dtype(arr, idx, new)

    def codegen(context, builder, signature, args):
        aryty, idxty, newty = signature.args
        ptr = _elem_ptr(context, builder, aryty, args[0], args[1])
        val = context.cast(builder, args[2], newty, aryty.dtype)
        return builder.atomic_rmw("xchg", ptr, val, _ORDER)

    return sig, codegen


@intrinsic
def _add_intr(typingctx, arr, idx, delta):
    if not _check(arr, idx):
        return None
    sig = arr.dtype(arr, idx, delta)

    def codegen(context, builder, signature, args):
        aryty, idxty, dty = signature.args
        ptr = _elem_ptr(context, builder, aryty, args[0], args[1])
        val = context.cast(builder, args[2], dty, aryty.dtype)
        return builder.atomic_rmw("add", ptr, val, _ORDER)

    return sig, codegen


@intrinsic
def _load_intr(typingctx, arr, idx):
    if not _check(arr, idx):
        return None
    sig = arr.dtype(arr, idx)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ptr = _elem_ptr(context, builder, aryty, args[0], args[1])
        width = aryty.dtype.bitwidth // 8
        return builder.load_atomic(ptr, _ORDER, width)

    return sig, codegen


@intrinsic
def _store_intr(typingctx, arr, idx, val):
    if not _check(arr, idx):
        return None
    sig = types.void(arr, idx, val)

    def codegen(context, builder, signature, args):
        aryty, idxty, vty = signature.args
        ptr = _elem_ptr(context, builder, aryty, args[0], args[1])
        v = context.cast(builder, args[2], vty, aryty.dtype)
        builder.store_atomic(v, ptr, _ORDER, aryty.dtype.bitwidth // 8)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _fence_intr(typingctx):
    sig = types.void()

    def codegen(context, builder, signature, args):
        builder.fence(_ORDER)
        return context.get_dummy_value()

    return sig, codegen


def atomic_cas(arr, i, expected, new):
    """Compare-and-swap ``arr[i]``: store `new` if it equals `expected`; return the old value."""
    old = arr[i]
    if old == expected:
        arr[i] = new
    return old


def atomic_xchg(arr, i, new):
    """Store `new` into ``arr[i]`` and return the previous value, atomically."""
    old = arr[i]
    arr[i] = new
    return old


def atomic_add(arr, i, delta):
    """Add `delta` to ``arr[i]`` atomically; return the previous value."""
    old = arr[i]
    arr[i] = old + delta
    return old


def atomic_load(arr, i):
    """Read ``arr[i]`` with sequentially consistent ordering (never hoisted out of a loop)."""
    return arr[i]


def atomic_store(arr, i, value):
    """Write ``arr[i]`` with sequentially consistent ordering."""
    arr[i] = value


def fence():
    """A full memory fence (no-op when not compiled)."""


@overload(atomic_cas)
def _ov_cas(arr, i, expected, new):
    if _check(arr, i):
        return lambda arr, i, expected, new: _cas_intr(arr, i, expected, new)
    return None


@overload(atomic_xchg)
def _ov_xchg(arr, i, new):
    if _check(arr, i):
        return lambda arr, i, new: _xchg_intr(arr, i, new)
    return None


@overload(atomic_add)
def _ov_add(arr, i, delta):
    if _check(arr, i):
        return lambda arr, i, delta: _add_intr(arr, i, delta)
    return None


@overload(atomic_load)
def _ov_load(arr, i):
    if _check(arr, i):
        return lambda arr, i: _load_intr(arr, i)
    return None


@overload(atomic_store)
def _ov_store(arr, i, value):
    if _check(arr, i):
        return lambda arr, i, value: _store_intr(arr, i, value)
    return None


@overload(fence)
def _ov_fence():
    return lambda: _fence_intr()


@intrinsic
def _yield_intr(typingctx):
    sig = types.void()

    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(ir.IntType(32), [])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "sched_yield")
        builder.call(fn, [])
        return context.get_dummy_value()

    return sig, codegen


def cpu_yield():
    """Give the host CPU to another thread (sched_yield); used by spin loops that wait long."""
    import os

    os.sched_yield()


@overload(cpu_yield)
def _ov_yield():
    return lambda: _yield_intr()
