"""`vm32 um`: run, assemble and disassemble Universal Machine programs.

    vm32 um run PROGRAM [--backend ...]     one program; stdin/stdout are its console
    vm32 um run A.um B.um ... --frames N    several programs at once on one paged machine
    vm32 um asm FILE -o OUT.um              assemble UM assembly into a program file
    vm32 um disasm PROGRAM                  disassemble a program file
    vm32 um jit-dump PROGRAM [--pc 0xHEX]   what the JIT compiled (vm32.cli.um_jit)

A new ``vm32 um X`` command is a function ``add_X(um_commands)`` (here or in a
module of its own) and its entry in UM_COMMANDS.
"""

from __future__ import annotations

import sys
from pathlib import Path

from vm32.cli.common import (
    EXIT_ERROR,
    flush_stdout,
    open_input,
    policy_names,
    write_file,
)
from vm32.defaults import (
    DEFAULT_HEAP_POLICY,
    HEAP_POLICIES,
    DEFAULT_POLICY,
    DEFAULT_TLB_ENTRIES,
    FLAT_MEMORY,
    FRAME_SIZE,
    MULTI_MEMORY,
    PAGED_MAX_HEAP,
    UM_FRAMES,
    UM_SWAP_LIMIT,
    MULTI_SWAP_LIMIT,
    format_size,
    size_arg,
)
from vm32.cli.um_jit import add_jit_dump
from vm32.errors import InvalidArgument


def add_commands(commands) -> None:
    """Add ``um`` and its subcommands to the `vm32` subparsers `commands`."""
    um = commands.add_parser("um", help="the Universal Machine: run, assemble, disassemble")
    um_commands = um.add_subparsers(dest="um_command", metavar="UM_COMMAND")
    um_commands.required = True
    for add in UM_COMMANDS:
        add(um_commands)


def add_run(um_commands) -> None:
    """Add ``um run``."""
    run = um_commands.add_parser(
        "run", help="run UM programs (one: stdin/stdout are its console; several: at once, paged)",
        description="Run a UM program with stdin/stdout as its console, or several programs at once "
                    "as processes of one paged machine sharing its frames (each on its own host thread).")
    run.add_argument("program", nargs="+",
                     help="UM program file(s) (big-endian 32-bit words, e.g. sandmark.umz)")
    run.add_argument("--backend", choices=("flat", "classic", "paged", "jit"), default=None,
                     help="flat: segment id = 32-bit address (default for one program); classic: table "
                          "of arrays; paged: a process of the demand-paged kernel (always, for several); "
                          "jit: flat memory, hot code compiled to machine code")
    run.add_argument("--memory", default=None, metavar="SIZE",
                     help=f"flat/classic/jit: emulated memory (default {size_arg(FLAT_MEMORY)}); paged: each process's "
                          f"heap region, its virtual memory for segments (default: as much as a process can "
                          f"have, {size_arg(PAGED_MAX_HEAP)}, {format_size(PAGED_MAX_HEAP)}; several programs: "
                          f"{size_arg(MULTI_MEMORY)} each)")
    run.add_argument("--input", metavar="FILE", action="append",
                     help="read the program's input from FILE, not stdin (several programs: once per "
                          "program, in order; a program without one reads end of input)")
    run.add_argument("--heap-policy", default=DEFAULT_HEAP_POLICY, metavar="NAME",
                     help=f"the allocator of the segments: {', '.join(HEAP_POLICIES)} (default "
                          f"{DEFAULT_HEAP_POLICY}; --policy is page replacement)")
    run.add_argument("--check-heap", action="store_true",
                     help="flat backend: put the segments on a debugging heap (red zones, a quarantine) and "
                          "report at the end the segments never unmapped, grouped by the pc that mapped them")
    run.add_argument("--record-allocs", default=None, metavar="FILE",
                     help="record the program's map/unmap sequence into FILE, an allocation trace "
                          "(.npz, see vm32.heap.alloctrace) for `vm32 heap replay`; runs on the classic "
                          "backend; FILE must not exist")
    paged = run.add_argument_group("paged backend")
    paged.add_argument("--frames", type=int, default=None, metavar="N",
                       help=f"physical frames of 4 KiB (default {UM_FRAMES}: {format_size(UM_FRAMES * FRAME_SIZE)})")
    paged.add_argument("--policy", default=None, metavar="P",
                       help=f"page replacement policy: {', '.join(policy_names())} (default {DEFAULT_POLICY})")
    paged.add_argument("--swap", default=None, metavar="FILE",
                       help="swap file to use (default: a temporary file, removed at the end)")
    paged.add_argument("--swap-size", default=None, metavar="SIZE",
                       help=f"swap size (default: room for the heap regions, at most {format_size(UM_SWAP_LIMIT)} "
                            f"for one program, {format_size(MULTI_SWAP_LIMIT)} for several; the file's blocks "
                            f"are allocated up front)")
    paged.add_argument("--tlb", type=int, default=None, metavar="N",
                       help=f"TLB entries per CPU, a power of two (default {DEFAULT_TLB_ENTRIES})")
    paged.add_argument("--output-dir", default=None, metavar="DIR",
                       help="several programs: write each program's output to DIR/NAME.out "
                            "(default: stdout, each line tagged with the program's name)")
    run.add_argument("--stats", action="store_true",
                     help="print run statistics on stderr at the end (paged: also faults, page-ins/outs, "
                          "TLB hit rate, swap bytes; jit: regions, compile time, instructions run compiled)")
    run.set_defaults(handler=cmd_um_run)


def add_asm(um_commands) -> None:
    """Add ``um asm``."""
    asm = um_commands.add_parser("asm", help="assemble UM assembly source into a program file")
    asm.add_argument("source", help="assembly source file (see `python -m pydoc vm32.um.asm`)")
    asm.add_argument("-o", "--output", required=True, help="program file to write")
    asm.set_defaults(handler=cmd_um_asm)


def add_disasm(um_commands) -> None:
    """Add ``um disasm``."""
    disasm = um_commands.add_parser("disasm", help="disassemble a UM program file")
    disasm.add_argument("program", help="UM program file")
    disasm.add_argument("-o", "--output", help="write the listing to this file, not stdout")
    disasm.set_defaults(handler=cmd_um_disasm)


UM_COMMANDS = (add_run, add_asm, add_disasm, add_jit_dump)
"""The functions that add the ``vm32 um`` subcommands, in the order `vm32 um --help` lists them."""


PAGED_ONLY = ("frames", "policy", "swap", "swap_size", "tlb", "output_dir")


def cmd_um_run(args) -> int:
    """`vm32 um run`: run one program to completion, or several at once on a paged machine."""
    several = len(args.program) > 1
    backend = args.backend or ("paged" if several else "classic" if args.record_allocs else "flat")
    if args.check_heap and (several or backend != "flat"):
        raise InvalidArgument(f"--check-heap runs one program on --backend flat, not {'several' if several else backend}")
    if args.record_allocs is not None:
        _check_record_target(args.record_allocs, several, backend)
    if several and backend != "paged":
        raise InvalidArgument(f"several programs run only on --backend paged, not {backend}")
    if backend != "paged":
        given = [f"--{n.replace('_', '-')}" for n in PAGED_ONLY if getattr(args, n) is not None]
        if given:
            raise InvalidArgument(f"{', '.join(given)}: only for --backend paged")
    elif not several and args.output_dir is not None:
        raise InvalidArgument("--output-dir is for several programs; one program writes to stdout")
    if sys.stdout is None:  # started with stdout closed (`>&-`): nowhere to write
        raise InvalidArgument("standard output is closed; redirect it to a file or /dev/null")
    if several:
        return _run_several(args)
    if args.input and len(args.input) > 1:
        raise InvalidArgument("--input given more than once for one program")
    return _run_one(args, backend)


def _check_record_target(path: str, several: bool, backend: str) -> None:
    """--record-allocs FILE: one program, the classic backend, a FILE that does not exist yet."""
    if several:
        raise InvalidArgument("--record-allocs records one program")
    if backend != "classic":
        raise InvalidArgument(f"--record-allocs runs on the classic backend (the default with it), not {backend}")
    target = Path(path)
    if target.exists():
        raise InvalidArgument(f"{path} exists: vm32 does not overwrite files; choose another --record-allocs FILE")
    if not target.parent.is_dir():
        raise InvalidArgument(f"--record-allocs {path}: no directory {target.parent}")


def _paged_options(args) -> dict:
    """The UniversalMachine keyword arguments for --backend paged."""
    return dict(frames=args.frames, policy=args.policy, swap=args.swap_size, swap_path=args.swap,
                tlb_entries=args.tlb)


def _run_one(args, backend: str) -> int:
    from vm32.ui.terminal import StatusLine, TerminalOutput
    from vm32.um.machine import UniversalMachine

    program = args.program[0]
    if args.input:
        stdin = open_input(args.input[0])
    else:  # a closed stdin (`<&-`) is an empty one: the program sees end of input
        stdin = sys.stdin.buffer if sys.stdin is not None else b""
    status = StatusLine(sys.stderr)
    stdout = sys.stdout.buffer
    if status.enabled and status.shares_terminal_with(sys.stdout):
        stdout = TerminalOutput(stdout, status)
    extra = _paged_options(args) if backend == "paged" else {}
    memory = args.memory if args.memory is not None else (FLAT_MEMORY if backend != "paged" else PAGED_MAX_HEAP)
    name = Path(program).name
    try:
        with UniversalMachine(program, backend=backend, memory_size=memory, stdin=stdin, stdout=stdout,
                              name=name, heap_policy=args.heap_policy,
                              record_allocs=args.record_allocs is not None, check_heap=args.check_heap,
                              **extra) as um:
            tick = _live_line(status, name) if status.enabled else None
            try:
                um.run(on_slice=tick)
            finally:
                status.clear()
                if args.stats:
                    _print_stats(um.stats(), f"vm32 um run {name}")
                if args.check_heap:
                    _print_leaks(um, name)
            if args.record_allocs is not None:  # the program halted: its whole sequence is there
                from vm32.heap import alloctrace

                alloctrace.save(args.record_allocs, um.recorded_events(), name)
    finally:
        if args.input:
            stdin.close()
    return 0


def _live_line(status, name: str):
    """An on_slice callback that shows progress on the status line (a few times a second)."""
    import time

    from vm32.ui.live import um_status_text

    start = time.perf_counter()
    last = [0.0]

    def tick(um) -> None:
        now = time.perf_counter()
        if now - last[0] < status.min_interval:
            return
        last[0] = now
        status.show(um_status_text(name, um.stats(), now - start))

    return tick


def _run_several(args) -> int:
    """Several programs at once (see vm32.um.multi); errors of single programs are reported,
    and the exit status is 1 if any program failed."""
    import threading

    from vm32.ui.terminal import LinePrefixWriter, StatusLine
    from vm32.um.multi import run_programs

    names = _unique_names(args.program)
    if args.heap_policy != DEFAULT_HEAP_POLICY:
        raise InvalidArgument(f"--heap-policy {args.heap_policy}: several programs run on the paged backend, "
                              f"whose allocator is {DEFAULT_HEAP_POLICY} for now")
    if args.input and len(args.input) > len(args.program):
        raise InvalidArgument(f"--input given {len(args.input)} times for {len(args.program)} programs")
    inputs = [None] * len(names)
    opened = []
    status = StatusLine(sys.stderr)
    try:
        for i, path in enumerate(args.input or []):
            inputs[i] = open_input(path)
            opened.append(inputs[i])
        if args.output_dir is not None:
            out_dir = Path(args.output_dir)
            try:
                out_dir.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise InvalidArgument(f"cannot create output directory {out_dir}: {e.strerror}") from None
            outputs = []
            for name in names:
                try:
                    outputs.append(open(out_dir / f"{name}.out", "wb"))
                except OSError as e:
                    raise InvalidArgument(f"cannot write {out_dir / (name + '.out')}: {e.strerror}") from None
            opened += outputs
        else:
            lock = threading.Lock()
            shared = status if status.shares_terminal_with(sys.stdout) else None
            outputs = [LinePrefixWriter(sys.stdout.buffer, f"{name}| ", lock, shared) for name in names]
            opened += outputs
        memory = args.memory if args.memory is not None else MULTI_MEMORY
        frames = args.frames if args.frames is not None else UM_FRAMES
        tick = _live_several(status) if status.enabled else None
        runs, machine_stats = run_programs(
            args.program, names=names, inputs=inputs, outputs=outputs, frames=frames,
            policy=args.policy or DEFAULT_POLICY, swap=args.swap_size, swap_path=args.swap,
            tlb_entries=args.tlb or DEFAULT_TLB_ENTRIES, memory_size=memory, on_tick=tick)
    finally:
        status.clear()
        for f in opened:
            try:
                f.close()
            except OSError:
                pass
    if args.stats:
        _print_runs_table(runs, machine_stats)
    failed = [r for r in runs if r.error is not None]
    for r in failed:
        flush_stdout()
        print(f"vm32: error: {r.error}", file=sys.stderr)
    return EXIT_ERROR if failed else 0


def _unique_names(paths) -> list[str]:
    """Program names from paths, made unique with .2, .3 ... suffixes."""
    seen: dict[str, int] = {}
    names = []
    for p in paths:
        base = Path(p).name or "program"
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f"{base}.{seen[base]}")
    return names


def _live_several(status):
    """on_tick for run_programs: totals of the machine on the status line."""
    import time

    from vm32.ui.live import several_status_text

    start = time.perf_counter()

    def tick(machine, runs) -> None:
        status.show(several_status_text(machine.stats(), runs, time.perf_counter() - start))

    return tick


def _print_runs_table(runs, machine_stats: dict) -> None:
    """Per-process statistics of a several-program run, and the machine's totals, on stderr."""
    from vm32.ui.tables import console_for, runs_view

    console_for(sys.stderr).print(runs_view(runs, machine_stats))


def cmd_um_asm(args) -> int:
    """`vm32 um asm`: assemble a source file into a UM program file."""
    from vm32.um.asm import assemble_file, to_bytes

    words = assemble_file(args.source)
    write_file(args.output, to_bytes(words))
    print(f"vm32: wrote {args.output}: {len(words)} words", file=sys.stderr)
    return 0


def cmd_um_disasm(args) -> int:
    """`vm32 um disasm`: print a program file as assembly."""
    from vm32.um.disasm import disassemble
    from vm32.um.loader import load_program

    listing = disassemble(load_program(args.program))  # one line per word, each ending in \n
    if args.output:
        write_file(args.output, listing.encode())
    else:
        sys.stdout.write(listing)
    return 0


def _print_leaks(um, name: str) -> None:
    """--check-heap: the segments the program never unmapped, by the pc that mapped them (stderr)."""
    from vm32.ui.heap import leak_report

    flush_stdout()
    print("\n".join(leak_report(um.heap_leaks(), name, um.code_words())), file=sys.stderr)


def _print_stats(stats: dict, title: str) -> None:
    """Print run statistics as a table on stderr."""
    from vm32.ui.tables import console_for, run_stats_view

    console_for(sys.stderr).print(run_stats_view(stats, title))
