"""Bit and byte primitives for the allocator: bit scans, and byte access to an int64 array.

* `msb` / `lsb`: highest and lowest set bit of an int64 (> 0). Under the JIT they
  compile to one ``lzcnt``/``tzcnt`` instruction (numba intrinsics).
* `load_byte` / `store_byte`: byte `i` of an array's memory (little-endian, so byte
  ``8 * k + j`` is bits ``8j..8j+7`` of int64 element k). Under the JIT they are one
  ``movzx`` / one byte ``mov``: the allocator's tag map is bytes packed in its int64
  state array, and a byte store needs no load first, so a tag write never waits for
  a cache miss on the tag map (a read-modify-write of the word does). No bounds
  check: the caller guarantees ``0 <= i < arr.nbytes``. For a state that is not an
  array (the paging kernel's journaled view) they fall back to the container's own
  word getitem/setitem, so its checks and journaling still see every write.

* `prefetch_word`: a hint that word `addr` of a flat word memory will be read soon
  (``prefetcht0``); a no-op for any other memory type (paged memory translates
  addresses on access: a hint cannot). It reads nothing, so it is safe for any address.

Without the JIT (NUMBA_DISABLE_JIT=1) plain Python computes the same.
"""

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.cpython.unsafe.numbers import leading_zeros, trailing_zeros
from numba.extending import intrinsic, overload


def msb(x):
    """Index of the highest set bit of `x` (> 0): msb(1) == 0, msb(256) == 8."""
    return int(x).bit_length() - 1


def lsb(x):
    """Index of the lowest set bit of `x` (> 0): lsb(12) == 2."""
    x = int(x)
    return (x & -x).bit_length() - 1


def load_byte(arr, i):
    """Byte `i` (0 <= i < arr.nbytes) of the memory of contiguous array `arr`, as an int."""
    return int(arr.view(np.uint8)[i])


def store_byte(arr, i, value):
    """Set byte `i` (0 <= i < arr.nbytes) of contiguous array `arr` to `value` (0..255)."""
    arr.view(np.uint8)[i] = value


@overload(msb, inline="always")
def _msb_jit(x):
    if isinstance(x, types.Integer):
        return lambda x: np.int64(63) - np.int64(leading_zeros(np.int64(x)))
    return None


@overload(lsb, inline="always")
def _lsb_jit(x):
    if isinstance(x, types.Integer):
        return lambda x: np.int64(trailing_zeros(np.int64(x)))
    return None


def prefetch_word(mem, addr):
    """Hint that the word at byte address `addr` of `mem` will be read soon (no effect here)."""


def _byte_pointer(context, builder, arrty, arr, i):
    """LLVM i8* to byte `i` (an integer value) of array `arr`'s data."""
    data = context.make_array(arrty)(context, builder, arr).data
    base = builder.bitcast(data, ir.IntType(8).as_pointer())
    return builder.gep(base, [builder.zext(i, ir.IntType(64)) if i.type.width < 64 else i])


@intrinsic
def _load_byte(typingctx, arr, i):
    if not (isinstance(arr, types.Array) and isinstance(i, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        return builder.zext(builder.load(_byte_pointer(context, builder, sig.args[0], *args)), ir.IntType(64))

    return types.int64(arr, i), codegen


@intrinsic
def _store_byte(typingctx, arr, i, value):
    if not (isinstance(arr, types.Array) and isinstance(i, types.Integer) and isinstance(value, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        arr, i, value = args
        byte = builder.trunc(value, ir.IntType(8)) if value.type.width > 8 else value
        builder.store(byte, _byte_pointer(context, builder, sig.args[0], arr, i))
        return context.get_dummy_value()

    return types.none(arr, i, value), codegen


@overload(load_byte)
def _load_byte_jit(arr, i):
    if not isinstance(i, types.Integer):
        return None
    if isinstance(arr, types.Array):
        return lambda arr, i: _load_byte(arr, i)

    def word_impl(arr, i):  # any int64-word container with getitem (e.g. a journaled state view)
        return (arr[np.int64(i >> 3)] >> (np.int64(i & 7) << 3)) & 0xFF

    return word_impl


@overload(store_byte)
def _store_byte_jit(arr, i, value):
    if not (isinstance(i, types.Integer) and isinstance(value, types.Integer)):
        return None
    if isinstance(arr, types.Array):
        return lambda arr, i, value: _store_byte(arr, i, value)

    def word_impl(arr, i, value):  # read-modify-write of the word, through its setitem
        k = np.int64(i >> 3)
        shift = np.int64(i & 7) << 3
        arr[k] = (arr[k] & ~(np.int64(0xFF) << shift)) | ((np.int64(value) & 0xFF) << shift)

    return word_impl


@intrinsic
def _prefetch(typingctx, arr, i):
    if not (isinstance(arr, types.Array) and isinstance(i, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        arr, i = args
        data = context.make_array(sig.args[0])(context, builder, arr).data
        base = builder.bitcast(data, ir.IntType(8).as_pointer())
        ptr = builder.gep(base, [builder.zext(i, ir.IntType(64)) if i.type.width < 64 else i])
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [ptr.type, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        builder.call(fn, [ptr, i32(0), i32(3), i32(1)])  # read, keep in all levels, data
        return context.get_dummy_value()

    return types.none(arr, i), codegen


@overload(prefetch_word)
def _prefetch_word_jit(mem, addr):
    if not isinstance(addr, types.Integer):
        return None
    if isinstance(mem, types.Array) and mem.ndim == 1:
        itemsize = mem.dtype.bitwidth // 8
        if itemsize == 4:  # the flat word memory: byte offset == addr (mem[addr >> 2])
            return lambda mem, addr: _prefetch(mem, np.uint64(addr) & np.uint64(0xFFFFFFFFC))
    return lambda mem, addr: None
