"""Second chance whose pages come in *un*referenced: libCacheSim's Clock (defaults).

The faulting access does not count as a use: the page is mapped with its
Accessed bit clear and the access completes without filling the TLB, so the
bit is set by the next use only (clock, by contrast, starts a page with the bit
set, as the MMU does on the faulting access).  The hand and the victim choice
are clock's.
"""

from __future__ import annotations

from vm32.kernel.policies.clock import choose_victim, init_state, on_access, on_fault, on_map, state_size

__all__ = ["choose_victim", "init_state", "on_access", "on_fault", "on_map", "state_size"]

NAME = "clock-clear"
ID = 5
SEES_EVERY_ACCESS = False
ACCESSED_ON_LOAD = False
NEEDS_FUTURE = False
REASON = "the hand found its Accessed bit clear"
