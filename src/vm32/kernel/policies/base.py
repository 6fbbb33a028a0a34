"""Policy state shared by every replacement policy: one int64 array `pol`.

Common header (words 0..POL_Q0-1), then the policy's own words from POL_Q0:

    pol[POL_KIND]    policy id (the policy module's ID)
    pol[POL_HAND]    clock / NRU / SIEVE scan position
    pol[POL_TICK]    logical clock for FIFO load stamps
    pol[POL_RNG]     xorshift64 state of the random policy (never 0)
    pol[POL_PERIOD]  NRU: clear every Accessed bit once per this many victim choices
    pol[POL_COUNT]   NRU: victim choices since the last clearing
    pol[POL_QHEAD], pol[POL_QTAIL]  FIFO queue: absolute indices, entries in pol[POL_Q0:]
    pol[POL_QCAP]    FIFO queue capacity (2 * frames)
    pol[POL_NFRAMES] number of frames the policy looks at (frames 0..n-1)
    pol[POL_LOCK]    the policy's own spin lock (see vm32.kernel.policies: SHARED)
    pol[POL_SHARED]  1 when several CPUs may call the policy at once
    pol[POL_KEY]     the page of the fault being served: (owner << 20) | vpn (on_fault)
    pol[POL_NEXT]    traces only: the index of the next use of the page being referenced
                     (OPT's key; NEVER when it is not used again)
    pol[POL_PAGEABLE] frames that may hold a page now, the cache size (ARC's c): n in
                     the trace simulator; in the live kernel n less the pinned frames
                     (kernel memory, page directories and tables, pinned pages), kept
                     current by the kernel as frames are pinned and released

The hooks every policy module offers are described in vm32.kernel.policies.
Also here: `f64_from_bits` / `bits_from_f64`, to keep a float in an int64 word.
"""

from __future__ import annotations

import struct

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload

from vm32.jit import leaf_kernel

POL_KIND = 0
POL_HAND = 1
POL_TICK = 2
POL_RNG = 3
POL_PERIOD = 4
POL_COUNT = 5
POL_QHEAD = 6
POL_QTAIL = 7
POL_QCAP = 8
POL_NFRAMES = 9
POL_LOCK = 10
POL_SHARED = 11
POL_KEY = 12
POL_NEXT = 13
POL_PAGEABLE = 14
POL_Q0 = 16
FIFO_FRAME_BITS = 21  # a FIFO queue entry is (stamp << 21) | frame; frames < 2**21
KEY_VPN_BITS = 20  # a page key is (owner << 20) | vpn
NEVER = np.iinfo(np.int64).max


def make_state(kind: int, nframes: int, words: int, seed: int = 1, nru_period: int = 16) -> np.ndarray:
    """A fresh `pol` array with the common header set and `words` policy words (zeros)."""
    pol = np.zeros(POL_Q0 + words, dtype=np.int64)
    pol[POL_KIND] = kind
    pol[POL_RNG] = (seed * 0x9E3779B97F4A7C15 + 0x2545F4914F6CDD1D) & 0x7FFFFFFFFFFFFFFF or 1
    pol[POL_PERIOD] = max(1, nru_period)
    pol[POL_NFRAMES] = nframes
    pol[POL_PAGEABLE] = nframes
    pol[POL_NEXT] = NEVER
    pol[POL_SHARED] = 1  # safe for several CPUs; a single-CPU owner (the trace simulator) clears it
    return pol


def no_state(nframes: int) -> int:
    """state_size of a policy that keeps everything in the common header."""
    return 0


def no_init(pol, nframes: int) -> None:
    """init_state of a policy with nothing to set up."""


@leaf_kernel
def ignore_fault(ft, pol, key):
    """on_fault of a policy that does not care which page comes in."""


@leaf_kernel
def ignore_frame(ft, pol, f):
    """on_map / on_access of a policy that keeps no bookkeeping there (the Accessed bit
    records uses)."""


def f64_from_bits(bits):
    """The float64 whose IEEE bits are the int64 `bits`."""
    return struct.unpack("<d", struct.pack("<q", int(bits)))[0]


def bits_from_f64(x):
    """The int64 holding the IEEE bits of float64 `x` (inverse of f64_from_bits)."""
    return struct.unpack("<q", struct.pack("<d", float(x)))[0]


@intrinsic
def _bitcast_to_f64(typingctx, bits):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@intrinsic
def _bitcast_to_i64(typingctx, x):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@overload(f64_from_bits)
def _ov_f64_from_bits(bits):
    return lambda bits: _bitcast_to_f64(np.int64(bits))


@overload(bits_from_f64)
def _ov_bits_from_f64(x):
    return lambda x: _bitcast_to_i64(np.float64(x))
