"""The UM debugger's output: traced instructions, and the machine's state at a break point or
a fault (vm32.um.debug does the stepping).

    pc          word      instruction              registers changed
    0x00000000  d200000c  loadimm r1, 12           r1=0x0000000c
"""

from __future__ import annotations

import numpy as np

from vm32.um.disasm import instruction_text
from vm32.um.kernel import ST_ICOUNT, ST_PC

TRACE_HEADER = f"{'pc':<10}  {'word':<8}  {'instruction':<24}  registers changed"


def trace_lines(rows: np.ndarray, before: np.ndarray) -> list[str]:
    """One line per traced instruction (rows of pc, word, registers after it), naming the
    registers it changed from `before` (the registers before the first row; updated)."""
    lines = []
    for row in rows:
        pc, word, after = int(row[0]), int(row[1]), row[2:]
        changed = " ".join(f"r{r}={int(after[r]):#010x}" for r in range(8) if after[r] != before[r])
        lines.append(f"{pc:#010x}  {word:08x}  {instruction_text(word):<24}  {changed}".rstrip())
        before[:] = after
    return lines


def state_lines(um, title: str) -> list[str]:
    """`title`, the eight registers and the instruction at the pc of UniversalMachine `um`."""
    pc = int(um.st[ST_PC])
    code = um.code_words()
    where = (f"{int(code[pc]):08x}  {instruction_text(int(code[pc]))}" if pc < len(code)
             else f"(outside the 0 array of {len(code)} words)")
    regs = [int(r) for r in um.regs]
    return [title,
            "  " + "  ".join(f"r{r}={regs[r]:#010x}" for r in range(4)),
            "  " + "  ".join(f"r{r}={regs[r]:#010x}" for r in range(4, 8)),
            f"  pc={pc:#x}  {where}",
            f"  after {int(um.st[ST_ICOUNT]):,} instructions"]


def print_machine_state(um, stream) -> None:
    """The state of UniversalMachine `um` after a UM fault, on text stream `stream`."""
    stream.write("\n".join(state_lines(um, "UM state at the fault:")) + "\n")
    stream.flush()


def debug_run(um, stream, *, trace: int = 0, break_pc: int | None = None) -> bool:
    """Run `um` under vm32.um.debug.debug_run, printing the first `trace` instructions and the
    state at `break_pc` (if execution gets there) on text stream `stream`; True if it stopped."""
    from vm32.um.debug import debug_run as run

    before = um.regs.astype(np.int64)
    if trace:
        stream.write(TRACE_HEADER + "\n")

    def show(rows) -> None:
        stream.write("\n".join(trace_lines(rows, before)) + "\n")
        stream.flush()

    stopped = run(um, trace=trace, break_pc=break_pc, on_trace=show)
    if stopped:
        stream.write("\n".join(state_lines(um, f"stopped at the break point pc={break_pc:#x}:")) + "\n")
        stream.flush()
    return stopped
