"""The `next` policy: an explicit free list searched for first fit from where the last search ended, wrapping around.

All of it is vm32.heap.freelist (its docstring gives the words, the invariants as
equations, and the costs) with the search set to NEXT; Heap(policy="next") takes that
module's parameters (header, align, order, coalesce).
"""

import numpy as np

from vm32.heap import freelist
from vm32.heap.freelist import *  # noqa: F401,F403 - this policy's kernels and tables are freelist's

__all__ = [*freelist.__all__, "NAME", "ID", "SUMMARY", "SEARCH", "new_state"]

NAME = "next"
ID = 4
SUMMARY = "explicit free list: first fit from where the last search ended, wrapping around"
SEARCH = freelist.NEXT


def new_state(base: int, limit: int, **params) -> np.ndarray:
    """A next-fit state over [base, limit) ready for `heap_init` (params: see PARAMS)."""
    return freelist.new_list_state(base, limit, SEARCH, **params)
