"""What the JIT made of a program: a compiled region's UM words beside its LLVM IR.

`dump_region(driver, pc=None)` renders the live region that holds word `pc` of segment 0
(the one that ran the most instructions, by default) as text: a header with its
figures, then block by block the UM words disassembled on the left and the IR the
back end wrote for them on the right (before LLVM's passes: one UM instruction after
the other, checks and all).  `vm32 um jit-dump` prints it.
"""

from __future__ import annotations

import re
from itertools import zip_longest

from vm32.errors import InvalidArgument
from vm32.um.disasm import disassemble_word

LEFT = 46  # width of the UM column

_BLOCK_LABEL = re.compile(r"^b(\d+):$")


def hottest(driver):
    """The live region that ran the most instructions, or None if none is live."""
    best, best_ran = None, -1
    for job in driver.live.values():
        ran = region_ran(driver, job)
        if ran > best_ran:
            best, best_ran = job, ran
    return best


def region_ran(driver, job) -> int:
    """Instructions run by calls of `job` (counted at the entry each call came in by)."""
    return int(sum(int(driver.space.ran[s]) for s in job.region.blocks))


def find_region(driver, pc: int | None):
    """The live region holding word `pc` (the hottest if pc is None); InvalidArgument if none."""
    if not driver.live:
        raise InvalidArgument(f"no region was compiled: the program never got hot (code is compiled once "
                              f"a jump target was entered {driver.after:,} times)")
    if pc is None:
        return hottest(driver)
    holding = [job for job in driver.live.values() if job.region.holds(pc)]
    if not holding:
        entries = ", ".join(f"{job.region.entry:#x}" for job in driver.live.values())
        raise InvalidArgument(f"no compiled region holds pc {pc:#x}; regions are entered at {entries}")
    return max(holding, key=lambda job: region_ran(driver, job))


def block_ir(ir: str) -> dict[int, list[str]]:
    """The IR lines of each UM block, by its start pc (labels b<pc> in the back end's text)."""
    blocks: dict[int, list[str]] = {}
    current = None
    for line in ir.splitlines():
        m = _BLOCK_LABEL.match(line)
        if m:
            current = blocks.setdefault(int(m.group(1)), [])
        elif line.startswith("}"):
            current = None
        elif current is not None and line.endswith(":") and not line.startswith(" ") and _is_cold(line):
            current = None  # the cold blocks come after every hot one
        if current is not None:
            current.append(line)
    return blocks


def _is_cold(label_line: str) -> bool:
    return label_line.startswith(("fail", "stale", "spent", "exit", "dexit", "unassumed"))


def dump_region(driver, pc: int | None = None) -> str:
    """The text of `vm32 um jit-dump`: the region's figures, then its blocks (see module)."""
    job = find_region(driver, pc)
    region = job.region
    code = driver.code_words()
    lines = [
        f"region entered at {region.entry:#x}: {len(region.blocks)} blocks, {region.words} words, "
        f"{region_ran(driver, job):,} instructions run in it, {job.code.size:,} bytes of machine code",
        f"entries: {', '.join(f'{s:#x}' for s in sorted(region.blocks))}",
        f"assumed 0 at entry: {', '.join(f'r{r}' for r in sorted(region.assume_zero)) or 'none'}",
        "",
    ]
    irs = block_ir(job.ir)
    for start in sorted(region.blocks):
        block = region.blocks[start]
        term = block.term
        how = {"jump": "jump to " + (" or ".join(f"{t:#x}" for t in term.targets) or "a computed target"),
               "step": f"left to the interpreter at {term.pc:#x}", "fall": f"falls into {term.pc:#x}"}[term.kind]
        lines.append(f"-- block {block.start:#x}..{block.end - 1:#x} ({block.end - block.start} words): {how}")
        um = [disassemble_word(int(code[p]), p).strip() for p in range(block.start, block.end)]
        for left, right in zip_longest(um, irs.get(start, []), fillvalue=""):
            lines.append(f"{left[:LEFT]:<{LEFT}} | {right}")
        lines.append("")
    return "\n".join(lines)
