"""The `worst` policy: an explicit free list searched for the largest free block (the first of equals).

All of it is vm32.heap.freelist (its docstring gives the words, the invariants as
equations, and the costs) with the search set to WORST; Heap(policy="worst") takes that
module's parameters (header, align, order, coalesce).
"""

import numpy as np

from vm32.heap import freelist
from vm32.heap.freelist import (
    CHECK_MESSAGES,
    PARAMS,
    heap_addr_status,
    heap_block_bytes,
    heap_calloc,
    heap_check,
    heap_footprint,
    heap_free,
    heap_init,
    heap_is_live,
    heap_largest_free,
    heap_malloc,
    heap_realloc,
    heap_size_of,
    heap_stats,
)

__all__ = [  # this policy's kernels and tables: freelist's
    "CHECK_MESSAGES", "PARAMS", "heap_addr_status", "heap_block_bytes", "heap_calloc", "heap_check",
    "heap_footprint", "heap_free", "heap_init", "heap_is_live", "heap_largest_free", "heap_malloc",
    "heap_realloc", "heap_size_of", "heap_stats", "NAME", "ID", "SUMMARY", "SEARCH", "new_state",
]

NAME = "worst"
ID = 3
SUMMARY = "explicit free list: the largest free block (the first of equals)"
SEARCH = freelist.WORST


def new_state(base: int, limit: int, **params) -> np.ndarray:
    """A worst-fit state over [base, limit) ready for `heap_init` (params: see PARAMS)."""
    return freelist.new_list_state(base, limit, SEARCH, **params)
