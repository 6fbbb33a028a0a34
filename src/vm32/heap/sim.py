"""`vm32 heap sim`: the free-space chapter's simulator, on vm32's list policies.

The options, their letters and values are those of the OSTEP homework simulator
(`vm-freespace/malloc.py`); the decisions are made by vm32.heap.freelist in teaching mode
(its docstring states the rules), the same module that `Heap(policy="first")` runs:

    -s seed  -S heap size  -b base address  -H header size  -a alignment (-1: none)
    -p BEST|WORST|FIRST|NEXT  -l ADDRSORT|SIZESORT+|SIZESORT-|INSERT-FRONT|INSERT-BACK
    -C coalesce  -n ops  -r max size  -P percent allocs  -A +10,-0,+5  -c answers

Given the same explicit op list (-A) and options, every free list and every "searched"
count is the chapter simulator's.  Two differences, both on purpose: ADDR is always the
payload address (block + header), and a malformed op list, or a free of a pointer that
was never allocated, is an error naming the item instead of a crash or a skip.  Seeded
random op lists (no -A) are vm32's own: allocations of 1..r bytes with probability P%,
else a free of a random live pointer.

`run(options)` returns the output lines; the last is a greppable FINALSTATS line.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np

from vm32.errors import InvalidArgument
from vm32.heap import freelist

SHIFT = 1 << 12  # the kernel's addresses are the user's + SHIFT, so that no block is at 0
MAX_SIZE = freelist.TEACH_MAX_SPAN


@dataclass
class SimOptions:
    """The simulator's options (the chapter simulator's names and defaults)."""

    seed: int = 0
    size: int = 100
    base: int = 1000
    header: int = 0
    align: int = -1
    policy: str = "BEST"
    order: str = "ADDRSORT"
    coalesce: bool = False
    ops: int = 10
    range: int = 10
    percent: int = 50
    alloc_list: str = ""
    compute: bool = False
    explain: bool = False


@dataclass
class Step:
    """One operation and what it did: alloc (size, addr, searched) or free (status)."""

    ptr: int
    size: int | None = None  # an allocation's request; None for a free
    addr: int = -1
    searched: int = 0
    status: int = 0
    free_list: list[tuple[int, int]] = field(default_factory=list)
    why: str = ""


def validate(o: SimOptions) -> SimOptions:
    """Check every option; InvalidArgument naming the flag.  Returns o with names upper-cased."""
    if not 1 <= o.size <= MAX_SIZE:
        raise InvalidArgument(f"-S {o.size}: the heap size must be 1 to {MAX_SIZE} bytes")
    if not 0 <= o.base or o.base + o.size > 1 << 32:
        raise InvalidArgument(f"-b {o.base}: the heap must lie within 32-bit addresses")
    if not 0 <= o.header <= 1 << 20:
        raise InvalidArgument(f"-H {o.header}: the header size must be 0 to {1 << 20} bytes")
    if o.align != -1 and not 1 <= o.align <= 1 << 20:
        raise InvalidArgument(f"-a {o.align}: the alignment must be -1 (none) or 1 to {1 << 20}")
    o.policy, o.order = o.policy.upper(), o.order.upper()
    if o.policy not in freelist.SEARCHES:
        raise InvalidArgument(f"-p {o.policy}: choose one of {', '.join(['BEST', 'WORST', 'FIRST', 'NEXT'])}")
    if o.order not in freelist.ORDERS:
        raise InvalidArgument(f"-l {o.order}: choose one of {', '.join(freelist.ORDERS)}")
    if not o.alloc_list:
        if not 0 <= o.ops <= 1_000_000:
            raise InvalidArgument(f"-n {o.ops}: the number of ops must be 0 to 1000000")
        if not 1 <= o.range <= MAX_SIZE:
            raise InvalidArgument(f"-r {o.range}: the largest allocation must be 1 to {MAX_SIZE} bytes")
        if not 1 <= o.percent <= 100:
            raise InvalidArgument(f"-P {o.percent}: the percentage of allocations must be 1 to 100")
    return o


def parse_ops(text: str, header: int = 0) -> list[tuple[str, int]]:
    """The -A list as ("+", size) / ("-", ptr index) pairs, validated before anything runs.

    InvalidArgument names the item (its position from 1 and its text): not +SIZE or
    -INDEX, a size of no bytes (with -H 0), or a free of a pointer not yet allocated.
    """
    ops: list[tuple[str, int]] = []
    allocs = 0
    for k, item in enumerate(text.split(","), 1):
        item = item.strip()
        sign, digits = item[:1], item[1:]
        if sign not in ("+", "-") or not digits.isdigit() or len(digits) > 9:
            raise InvalidArgument(f"-A item {k} {item!r}: expected +SIZE (allocate) or -INDEX (free ptr[INDEX])")
        value = int(digits)
        if sign == "+":
            if value == 0 and header == 0:
                raise InvalidArgument(f"-A item {k} {item!r}: with -H 0 an allocation of 0 bytes has no block")
            allocs += 1
        elif value >= allocs:
            raise InvalidArgument(f"-A item {k} {item!r}: ptr[{value}] is not allocated before it "
                                  f"({allocs} allocation{'s' if allocs != 1 else ''} so far)")
        ops.append((sign, value))
    return ops


class Simulation:
    """A teaching-mode list heap and the pointers handed out so far."""

    def __init__(self, o: SimOptions):
        self.o = o
        search = freelist.SEARCHES[o.policy]
        self.state = freelist.new_teaching_state(o.base + SHIFT, o.size, search, freelist.ORDERS[o.order],
                                                 o.coalesce, o.header, o.align)
        self.mem = np.zeros(1, np.uint32)
        self.ptrs: list[int] = []  # user payload addresses, -1 for a failed allocation

    def entries(self) -> list[tuple[int, int]]:
        """The free list in user addresses."""
        return [(a - SHIFT, s) for a, s in freelist.entries(self.state)]

    def alloc(self, size: int) -> Step:
        """Allocate `size` bytes as ptr[len(ptrs)]."""
        before = self.entries()
        rover = int(self.state[freelist.M_ROVER])
        p = int(freelist.heap_malloc(self.mem, self.state, np.int64(size)))
        addr = p - SHIFT if p else -1
        self.ptrs.append(addr)
        searched = int(self.state[freelist.M_LAST_SEARCHED])
        step = Step(len(self.ptrs) - 1, size, addr, searched, free_list=self.entries())
        if self.o.explain:
            step.why = explain_alloc(self.o, size, before, addr, searched, rover - SHIFT)
        return step

    def free(self, index: int) -> Step:
        """Free ptr[index]: status 0, or -1 if it is not a live block (double or failed)."""
        addr = self.ptrs[index]
        before = self.entries()
        status = 0
        if addr < 0 or freelist.heap_free(self.mem, self.state, np.int64(addr + SHIFT)) != 0:
            status = -1
        step = Step(index, None, addr, status=status, free_list=self.entries())
        if self.o.explain:
            step.why = explain_free(self.o, addr, status, before, step.free_list)
        return step


def simulate(o: SimOptions) -> list[Step]:
    """Run the explicit op list, or a seeded random one, and return every step."""
    sim = Simulation(o)
    steps = []
    if o.alloc_list:
        for sign, value in parse_ops(o.alloc_list, o.header):
            steps.append(sim.alloc(value) if sign == "+" else sim.free(value))
        return steps
    rng = random.Random(o.seed)
    live: list[int] = []
    while len(steps) < o.ops:
        if rng.random() < o.percent / 100:
            step = sim.alloc(rng.randint(1, o.range))
            if step.addr >= 0:
                live.append(step.ptr)
        elif live:
            step = sim.free(live.pop(rng.randrange(len(live))))
        else:
            continue  # nothing to free: draw again
        steps.append(step)
    return steps


def explain_alloc(o: SimOptions, size: int, before: list, addr: int, searched: int, rover: int) -> str:
    """One line: the block size the request needs and why that entry (or none) was chosen."""
    need = size
    rule = []
    if o.align > 0 and need % o.align:
        need += o.align - need % o.align
        rule.append(f"{size} rounded up to {need}")
    if o.header:
        need += o.header
        rule.append(f"+ {o.header} header")
    head = f"why: Alloc({size}) needs {need} bytes{' (' + ', '.join(rule) + ')' if rule else ''}; "
    fits = [(a, s) for a, s in before if s >= need]
    if addr < 0:
        return head + f"none of the {len(before)} free blocks holds {need} bytes, so it fails"
    block = addr - o.header
    chosen = next(s for a, s in before if a == block)
    where = f"[ addr:{block} sz:{chosen} ]"
    if o.policy == "FIRST":
        why = f"first fit: {where} is the first that fits, entry {searched} of {len(before)}"
    elif o.policy == "BEST":
        why = f"best fit: {where} is the smallest of the {len(fits)} that fit (all {len(before)} searched)"
    elif o.policy == "WORST":
        why = f"worst fit: {where} is the largest of the {len(before)} (all searched)"
    else:
        start = "the list's start" if rover < 0 else f"the block holding {rover}, where the last search ended"
        why = f"next fit: from {start}, {where} is the first that fits ({searched} searched)"
    rest = chosen - need
    tail = f"; {rest} bytes stay free at {block + need}" if rest else "; an exact fit leaves the list"
    return head + why + tail


def explain_free(o: SimOptions, addr: int, status: int, before: list, after: list) -> str:
    """One line: where the freed block went in the list and what it merged with."""
    if status:
        return "why: that pointer is not a live block (never allocated, or freed already): nothing changes"
    where = {"ADDRSORT": "in address order", "SIZESORT+": "then the list is sorted by size, smallest first",
             "SIZESORT-": "then the list is sorted by size, largest first", "INSERT-FRONT": "at the front",
             "INSERT-BACK": "at the back"}[o.order]
    merged = len(before) + 1 - len(after)
    tail = f"; coalescing merged {merged} neighbour{'s' if merged != 1 else ''}" if o.coalesce else ""
    return f"why: the block at {addr - o.header} goes back {where}{tail}"


def format_list(entries: list[tuple[int, int]]) -> str:
    """The chapter's free-list line."""
    return f"Free List [ Size {len(entries)} ]: " + "".join(f"[ addr:{a} sz:{s} ]" for a, s in entries)


def run(o: SimOptions) -> list[str]:
    """The simulator's output: options, then each operation (answers with -c), then FINALSTATS."""
    o = validate(o)
    steps = simulate(o)
    lines = [f"seed {o.seed}", f"size {o.size}", f"baseAddr {o.base}", f"headerSize {o.header}",
             f"alignment {o.align}", f"policy {o.policy}", f"listOrder {o.order}", f"coalesce {o.coalesce}",
             f"numOps {o.ops}", f"range {o.range}", f"percentAlloc {o.percent}", f"allocList {o.alloc_list}",
             f"compute {o.compute}", ""]
    for step in steps:
        if step.size is not None:
            answer = f"{step.addr} (searched {step.searched} elements)" if o.compute else "?"
            lines.append(f"ptr[{step.ptr}] = Alloc({step.size}) returned {answer}")
        else:
            lines += [f"Free(ptr[{step.ptr}])", f"returned {step.status}" if o.compute else "returned ?"]
        if o.compute and step.why:
            lines.append(step.why)
        lines += [format_list(step.free_list) if o.compute else "List?", ""]
    lines.append(final_stats(o, steps))
    return lines


def final_stats(o: SimOptions, steps: list[Step]) -> str:
    """The greppable summary line (without -c: only what gives no answer away)."""
    figures = final_figures(o, steps)
    head = f"FINALSTATS policy={o.policy} order={o.order} coalesce={o.coalesce} " + \
        " ".join(f"{k}={figures.pop(k)}" for k in ("ops", "allocs", "frees"))
    if not o.compute:
        return head + " (answers with -c)"
    return head + "".join(f" {k}={v}" for k, v in figures.items())


def final_figures(o: SimOptions, steps: list[Step]) -> dict[str, int]:
    """The FINALSTATS figures: ops, allocs, frees; with -c also failed, searched (free blocks
    looked at), and the free list's length, bytes and largest block at the end."""
    allocs = [s for s in steps if s.size is not None]
    figures = dict(ops=len(steps), allocs=len(allocs), frees=len(steps) - len(allocs))
    if o.compute:
        last = steps[-1].free_list if steps else [(o.base, o.size)]
        figures.update(failed=sum(s.addr < 0 for s in allocs), searched=sum(s.searched for s in allocs),
                       free_list=len(last), free_bytes=sum(n for _, n in last),
                       largest_free=max((n for _, n in last), default=0))
    return figures
