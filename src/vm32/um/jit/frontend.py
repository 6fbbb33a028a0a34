"""The JIT's front end: from UM words to a region, a set of basic blocks to compile as one.

Words
-----
*run*     a straight run of instructions from a start pc up to and including its
          *terminator*: a load program (a jump), or an instruction the region leaves to the
          interpreter for good (halt, input, an invalid operator), or up to the start of
          another run (it falls through) or the end of segment 0.
*block*   a run cut at every start inside it: what the back end compiles, one LLVM basic
          block (and its check branches) each.
*abstract value* what the front end knows of a register inside a run: a constant (`int`),
          a `Select` (the "conditional move, then load program" idiom: one of two
          constants, chosen by a register being non-zero), or nothing (None).

A region starts at a hot jump target and follows the constant targets of its runs
(direct jumps, both sides of the conditional-branch idiom, falls through) and the
constants it loads that are known jump targets (return addresses: a return is a computed
jump, served by the region's switch over its own blocks).  Tier 0's entry counts say
which targets ever ran: a target that never ran is left as an exit, so cold paths
cost no compile time.  The region grows breadth first up to `max_words` words.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from vm32.um.isa import ADD, CMOV, DIV, HALT, IN, LOAD, LOADIMM, LOADPROG, MAP, MUL, NAND, STORE

WORD = 0xFFFFFFFF
MAX_REGION_WORDS = 4096
"""Default bound on the words of one region (LLVM's time grows faster than linearly)."""


@dataclass(frozen=True)
class Select:
    """A register holding `if_set` if register `cond` was non-zero at the conditional move
    (instruction `at`), else `if_clear`."""

    cond: int
    if_set: int
    if_clear: int
    at: int


@dataclass
class Terminator:
    """How a run (or block) ends.

    kind: "jump" (load program at `pc`: `targets` are its constant targets, in the order
    if-set, if-clear for a Select; empty for a computed jump), "step" (the interpreter runs
    the instruction at `pc`), "fall" (go on at `pc`, which is not part of the run).
    """

    kind: str
    pc: int
    targets: tuple[int, ...] = ()


@dataclass
class Block:
    """Words [start, end) of segment 0 and how they end."""

    start: int
    end: int
    term: Terminator


@dataclass
class Region:
    """Blocks keyed by start pc, entered at `entry`; `ncode` is segment 0's length."""

    entry: int
    ncode: int
    blocks: dict[int, Block] = field(default_factory=dict)
    assume_zero: frozenset[int] = frozenset()  # registers the code may assume hold 0 (checked at entry)

    @property
    def words(self) -> int:
        """Number of words of segment 0 the region's blocks hold."""
        return sum(b.end - b.start for b in self.blocks.values())

    def written(self, code) -> set[int]:
        """The registers some instruction of the region writes."""
        return {r for b in self.blocks.values() for pc in range(b.start, b.end)
                for r in [written_register(int(code[pc]))] if r is not None}

    def holds(self, pc: int) -> bool:
        """True if word `pc` belongs to one of the region's blocks."""
        return any(b.start <= pc < b.end for b in self.blocks.values())

    def spans(self) -> list[tuple[int, int]]:
        """The [start, end) ranges of its blocks, in pc order."""
        return sorted((b.start, b.end) for b in self.blocks.values())


def segment_registers(region: Region, code) -> set[int]:
    """The registers the region's loads, stores and load programs name as a segment
    (worth assuming 0 at its entry when they are: see `entry_constants`)."""
    regs = set()
    for b in region.blocks.values():
        for pc in range(b.start, b.end):
            w = int(code[pc])
            op = w >> 28
            if op == LOAD or op == LOADPROG:
                regs.add((w >> 3) & 7)
            elif op == STORE:
                regs.add((w >> 6) & 7)
    return regs


def written_register(w: int) -> int | None:
    """The register instruction word `w` writes, if any."""
    op = w >> 28
    if op == LOADIMM:
        return (w >> 25) & 7
    if op in (CMOV, LOAD, ADD, MUL, DIV, NAND):
        return (w >> 6) & 7
    if op == MAP:
        return (w >> 3) & 7
    if op == IN:
        return w & 7
    return None


def step_abstract(regs: list, w: int, at: int) -> None:
    """Update the abstract registers `regs` (8 values) for instruction word `w` at pc `at`."""
    op = w >> 28
    if op == LOADIMM:
        regs[(w >> 25) & 7] = w & 0x1FFFFFF
        return
    a, b, c = (w >> 6) & 7, (w >> 3) & 7, w & 7
    ra, rb, rc = regs[a], regs[b], regs[c]
    if op == CMOV:
        if isinstance(rc, int):
            if rc != 0:
                regs[a] = rb
        elif isinstance(ra, int) and isinstance(rb, int):
            regs[a] = Select(c, rb, ra, at) if ra != rb else ra
        else:
            regs[a] = None
    elif op in (ADD, MUL, DIV, NAND):
        regs[a] = _fold(op, rb, rc)
    elif op == LOAD:
        regs[a] = None
    elif op == MAP:
        regs[b] = None
    elif op == IN:
        regs[c] = None


def _fold(op: int, x, y):
    """The constant result of arithmetic `op` on abstract values x, y, or None."""
    if not (isinstance(x, int) and isinstance(y, int)):
        return None
    if op == ADD:
        return (x + y) & WORD
    if op == MUL:
        return (x * y) & WORD
    if op == NAND:
        return ~(x & y) & WORD
    return x // y if y else None


def jump_targets(value) -> tuple[int, ...]:
    """The constant targets of a load program whose target register holds `value`."""
    if isinstance(value, int):
        return (value,)
    if isinstance(value, Select):
        return (value.if_set, value.if_clear)
    return ()


def scan_run(code, start: int, ncode: int, stop_at: set[int]) -> tuple[int, Terminator, set[int]]:
    """Scan the run from `start` (< ncode); stop before any pc in `stop_at` after `start`.

    Returns (end, terminator, constants): `constants` are the values the run loads
    or computes into registers (candidate return addresses).
    """
    regs: list = [None] * 8
    constants: set[int] = set()
    pc = start
    while pc < ncode:
        if pc != start and pc in stop_at:
            return pc, Terminator("fall", pc), constants
        w = int(code[pc])
        op = w >> 28
        if op == LOADPROG:
            return pc + 1, Terminator("jump", pc, jump_targets(regs[w & 7])), constants
        if op == HALT or op == IN or op > LOADIMM:
            return pc + 1, Terminator("step", pc), constants
        step_abstract(regs, w, pc)
        if op in (LOADIMM, ADD, MUL, DIV, NAND, CMOV):
            v = regs[(w >> 25) & 7] if op == LOADIMM else regs[(w >> 6) & 7]
            if isinstance(v, int):
                constants.add(v)
        pc += 1
    return pc, Terminator("fall", pc), constants


def form_region(code, ncode: int, entry: int, ran: Callable[[int], bool],
                max_words: int = MAX_REGION_WORDS, compiled: Callable[[int], bool] = lambda pc: False) -> Region:
    """The region entered at `entry` over segment 0's words `code[:ncode]`.

    `ran(pc)` says whether tier 0 ever entered jump target `pc`: only such targets
    (and falls through) are followed; `compiled(pc)` whether a live region is
    entered there: such targets are left as exits (each hot word is compiled once).
    Requires 0 <= entry < ncode.
    """
    runs: dict[int, tuple[int, Terminator]] = {}
    starts = {entry}
    queue = deque([entry])
    total = 0
    while queue:
        s = queue.popleft()
        if s in runs or _inside(runs, s):
            starts.add(s)
            continue
        end, term, constants = scan_run(code, s, ncode, set(runs))
        if runs and total + (end - s) > max_words:
            continue
        runs[s] = (end, term)
        starts.add(s)
        total += end - s
        follow = list(term.targets) + ([term.pc] if term.kind == "fall" else [])
        follow += sorted(c for c in constants if c < ncode and c not in starts and ran(c))
        for t in follow:
            if t < ncode and t not in runs and not compiled(t) and (ran(t) or (term.kind == "fall" and t == term.pc)):
                queue.append(t)
    region = Region(entry, ncode)
    for s, (end, term) in runs.items():
        _split(region, s, end, term, starts)
    return region


def entry_constants(region: Region, code) -> dict[int, list]:
    """The registers known constant at the start of each block: {start: 8 values (int or None)}.

    A forward data flow over the region: a block is entered from its predecessors in
    the region (direct jumps, branches, falls through) and, as every block is a case of
    the dispatch switch, from the dispatch block, which is entered with the registers
    of `region.assume_zero` at 0 (checked at the region's entry) and from the computed
    jumps.  After a jump the load program's segment register is known to be 0.
    """
    blocks = region.blocks
    preds: dict[int, list[int]] = {s: [] for s in blocks}
    computed = []
    for b in blocks.values():
        if b.term.kind == "jump" and not b.term.targets:
            computed.append(b.start)
        for t in successors(b):
            if t in blocks:
                preds[t].append(b.start)
    entry = [0 if r in region.assume_zero else None for r in range(8)]
    out: dict[int, list | None] = dict.fromkeys(blocks)  # None: not reached yet
    changed = True
    while changed:
        changed = False
        dispatch = _meet_all([entry] + [out[c] for c in computed])
        for s in sorted(blocks):
            regs = _meet_all([dispatch] + [out[p] for p in preds[s]])
            result = _transfer(blocks[s], code, regs)
            if result != out[s]:
                out[s] = result
                changed = True
    dispatch = _meet_all([entry] + [out[c] for c in computed])
    return {s: _meet_all([dispatch] + [out[p] for p in preds[s]]) for s in blocks}


def successors(block: Block) -> list[int]:
    """The pcs `block` may go on at inside a region (constant targets, the next run)."""
    if block.term.kind == "jump":
        return list(block.term.targets)
    return [block.term.pc] if block.term.kind == "fall" else []


def _transfer(block: Block, code, regs: list) -> list:
    """The constants of the registers after `block`, given those before it."""
    regs = list(regs)
    for pc in range(block.start, block.end):
        w = int(code[pc])
        if (w >> 28) == LOADPROG:
            regs[(w >> 3) & 7] = 0  # the jump went on: its segment register held 0
        else:
            step_abstract(regs, w, pc)
    return [v if isinstance(v, int) else None for v in regs]


def _meet_all(states: list) -> list:
    """Per register, the constant every reached state (not None) agrees on, else None."""
    reached = [x for x in states if x is not None]
    return [v if all(x[r] == v for x in reached) else None for r, v in enumerate(reached[0])]


def _inside(runs: dict, pc: int) -> bool:
    """True if `pc` lies inside (not at the start of) one of `runs`."""
    return any(s < pc < end for s, (end, _) in runs.items())


def _split(region: Region, start: int, end: int, term: Terminator, starts: set[int]) -> None:
    """Add the run [start, end) with terminator `term` to `region`, cut at `starts`."""
    cuts = sorted(p for p in starts if start < p < end)
    lo = start
    for p in cuts:
        region.blocks[lo] = Block(lo, p, Terminator("fall", p))
        lo = p
    region.blocks[lo] = Block(lo, end, term)
