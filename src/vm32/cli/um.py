"""`vm32 um`: run, assemble and disassemble Universal Machine programs.

    vm32 um run PROGRAM [--backend ...]     one program; stdin/stdout are its console
    vm32 um run A.um B.um ... --frames N    several programs at once on one paged machine
    vm32 um asm FILE -o OUT.um              assemble UM assembly into a program file
    vm32 um disasm PROGRAM                  disassemble a program file
    vm32 um jit-dump PROGRAM [--pc 0xHEX]   what the JIT compiled (vm32.cli.um_jit)

``-`` names stdin (a program, a source) or stdout (an output file).  A new
``vm32 um X`` command is a function ``add_X(um_commands)`` (here or in a module of
its own) and its entry in UM_COMMANDS.
"""

from __future__ import annotations

import sys
from contextlib import ExitStack
from pathlib import Path

from vm32.cli.common import (
    EXIT_ERROR,
    FORCE_HELP,
    SWAP_FILE_HELP,
    check_frames,
    check_policy,
    check_swap_file,
    check_tlb,
    flush_stdout,
    open_input,
    policy_names,
    print_json,
    size_flag,
    swap_size,
    write_file,
)
from vm32.cli.um_jit import add_jit_dump
from vm32.defaults import (
    DEFAULT_HEAP_POLICY,
    DEFAULT_POLICY,
    DEFAULT_TLB_ENTRIES,
    FLAT_MEMORY,
    FRAME_SIZE,
    HEAP_POLICIES,
    MULTI_MEMORY,
    MULTI_SWAP_LIMIT,
    PAGED_MAX_HEAP,
    UM_DEBUG_BACKENDS,
    UM_RECORD_BACKENDS,
    UM_FRAMES,
    UM_SWAP_LIMIT,
    format_size,
    size_arg,
)
from vm32.errors import AssemblyError, BadProgram, InvalidArgument, UMFault

STDIO = "-"
FIRST_RUN_SECONDS = 60  # compiling a UM backend on a cold cache (the 2-core development machine)
BACKENDS = ("flat", "classic", "paged", "jit")


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
                     help="UM program file(s) (big-endian 32-bit words, e.g. sandmark.umz); - reads one "
                          "program from stdin (its input then comes from --input, or it reads end of input)")
    run.add_argument("--backend", choices=BACKENDS, default=None,
                     help="flat: segment id = 32-bit address (default for one program); classic: table "
                          "of arrays; paged: a process of the demand-paged kernel (always, for several); "
                          "jit: flat memory, hot code compiled to machine code")
    run.add_argument("--memory", default=None, metavar="SIZE",
                     help=f"flat/classic/jit: emulated memory (default {size_arg(FLAT_MEMORY)}); paged: each "
                          f"process's heap region, its virtual memory for segments (default: as much as a "
                          f"process can have, {size_arg(PAGED_MAX_HEAP)}, {format_size(PAGED_MAX_HEAP)}; several "
                          f"programs: {size_arg(MULTI_MEMORY)} each)")
    run.add_argument("--input", metavar="FILE", action="append",
                     help="read the program's input from FILE, not stdin (several programs: once per "
                          "program, in order; a program without one reads end of input)")
    run.add_argument("--heap-policy", default=DEFAULT_HEAP_POLICY, metavar="NAME",
                     help=f"the allocator of the segments (flat, paged; jit: its interpreter tier for all but "
                          f"{DEFAULT_HEAP_POLICY}): {', '.join(HEAP_POLICIES)} (default "
                          f"{DEFAULT_HEAP_POLICY}; --policy is page replacement)")
    run.add_argument("--check-heap", action="store_true",
                     help="flat backend (jit: its interpreter tier only): put the segments on a debugging heap "
                          "(red zones, a quarantine) and "
                          "report at the end the segments never unmapped, grouped by the pc that mapped them")
    run.add_argument("--record-allocs", default=None, metavar="FILE",
                     help="record the program's map/unmap sequence into FILE, an allocation trace "
                          "(.npz, see vm32.heap.alloctrace) for `vm32 heap replay`; the same trace on the flat and "
                          "classic backends and on jit (its interpreter tier only); FILE must not exist")
    paged = run.add_argument_group("paged backend")
    paged.add_argument("--frames", type=int, default=None, metavar="N",
                       help=f"physical frames of 4 KiB (default {UM_FRAMES}: {format_size(UM_FRAMES * FRAME_SIZE)})")
    paged.add_argument("--policy", default=None, metavar="P",
                       help=f"page replacement policy: {', '.join(policy_names())} (default {DEFAULT_POLICY})")
    paged.add_argument("--swap-file", default=None, metavar="PATH", help=SWAP_FILE_HELP)
    paged.add_argument("--swap-size", default=None, metavar="SIZE",
                       help=f"swap size (default: room for the heap regions, at most {format_size(UM_SWAP_LIMIT)} "
                            f"for one program, {format_size(MULTI_SWAP_LIMIT)} for several; the file's blocks "
                            f"are allocated up front)")
    paged.add_argument("--force", action="store_true", default=None, help=FORCE_HELP)
    paged.add_argument("--tlb", type=int, default=None, metavar="N",
                       help=f"TLB entries per CPU, a power of two (default {DEFAULT_TLB_ENTRIES})")
    paged.add_argument("--output-dir", default=None, metavar="DIR",
                       help="several programs: write each program's output to DIR/NAME.out, each named only "
                            "once complete (default: stdout, each line tagged with the program's name)")
    run.add_argument("--stats", action="store_true",
                     help="print run statistics on stderr at the end (paged: also faults, page-ins/outs, "
                          "TLB hit rate, swap bytes; jit: regions, compile time, instructions run compiled)")
    run.add_argument("--json", action="store_true",
                     help="the statistics as one JSON object, the last line on stderr (stdout is the "
                          "program's; raw units: bytes, seconds, counts)")
    debug = run.add_argument_group("debugging (one program; flat, classic or jit backend: jit runs "
                                    "its interpreter tier while it steps)")
    debug.add_argument("--trace-instructions", type=int, default=None, metavar="N",
                       help="print the first N instructions executed on stderr: pc, word, disassembly, "
                            "registers changed")
    debug.add_argument("--break", dest="break_at", default=None, metavar="PC",
                       help="stop when execution reaches offset PC of the 0 array (e.g. 0x1c) and print "
                            "the registers and the instruction there")
    run.set_defaults(handler=cmd_um_run, first_run_seconds=FIRST_RUN_SECONDS)


def add_asm(um_commands) -> None:
    """Add ``um asm``."""
    asm = um_commands.add_parser("asm", help="assemble UM assembly source into a program file")
    asm.add_argument("source", help="assembly source file, - for stdin (see `python -m pydoc vm32.um.asm`)")
    asm.add_argument("-o", "--output", required=True,
                     help="program file to write (named only once complete), - for stdout")
    asm.set_defaults(handler=cmd_um_asm)


def add_disasm(um_commands) -> None:
    """Add ``um disasm``."""
    disasm = um_commands.add_parser("disasm", help="disassemble a UM program file")
    disasm.add_argument("program", help="UM program file, - for stdin")
    disasm.add_argument("-o", "--output",
                        help="write the listing to this file (named only once complete), not stdout")
    disasm.set_defaults(handler=cmd_um_disasm)


UM_COMMANDS = (add_run, add_asm, add_disasm, add_jit_dump)
"""The functions that add the ``vm32 um`` subcommands, in the order `vm32 um --help` lists them."""


PAGED_ONLY = ("frames", "policy", "swap_file", "swap_size", "force", "tlb", "output_dir")
DEBUG_ONLY = ("trace_instructions", "break_at")
FLAG_OF = {"break_at": "--break"}  # the flags whose attribute is not their name


# ---- um run ----------------------------------------------------------------------------------------


def cmd_um_run(args) -> int:
    """`vm32 um run`: run one program to completion, or several at once on a paged machine."""
    backend = _check_run(args)
    if len(args.program) > 1:
        return _run_several(args)
    return _run_one(args, backend)


def _check_run(args) -> str:
    """Every flag of `um run` checked before anything runs; the backend to use."""
    several = len(args.program) > 1
    backend = args.backend or ("paged" if several else "flat")
    if args.heap_policy not in HEAP_POLICIES:
        raise InvalidArgument(f"--heap-policy {args.heap_policy!r}: choose one of {', '.join(HEAP_POLICIES)}")
    if args.heap_policy != DEFAULT_HEAP_POLICY and backend not in ("flat", "paged", "jit"):
        raise InvalidArgument(f"--heap-policy {args.heap_policy}: the {backend} backend runs the "
                              f"{DEFAULT_HEAP_POLICY} allocator only; other policies run on --backend flat, "
                              "paged or jit")
    if args.check_heap and (several or backend not in ("flat", "jit")):
        raise InvalidArgument(f"--check-heap runs one program on --backend flat or jit, not "
                              f"{'several' if several else backend}")
    if args.record_allocs is not None:
        _check_record_target(args.record_allocs, several, backend)
    if several and backend != "paged":
        raise InvalidArgument(f"several programs run only on --backend paged, not {backend}")
    if backend != "paged":
        _only(args, PAGED_ONLY, "for --backend paged")
    elif not several and args.output_dir is not None:
        raise InvalidArgument("--output-dir is for several programs; one program writes to stdout")
    if several or backend not in UM_DEBUG_BACKENDS:
        _only(args, DEBUG_ONLY, "for one program on the flat, classic or jit backend")
    if STDIO in args.program and several:
        raise InvalidArgument("- (a program from stdin) is for one program only")
    if args.input and len(args.input) > len(args.program):
        raise InvalidArgument(f"--input given {len(args.input)} times for {len(args.program)} program"
                              f"{'s' if several else ''}")
    check_frames(args.frames)
    check_tlb(args.tlb)
    check_policy(args.policy)
    check_swap_file(args.swap_file, args.force)
    args.swap_bytes = swap_size(args.swap_size)
    if args.memory is not None:
        from vm32.memory import check_size

        size = size_flag("--memory", args.memory)
        try:
            check_size(size)
        except InvalidArgument as e:
            raise InvalidArgument(f"--memory {args.memory}: {e}") from None
    if args.trace_instructions is not None and args.trace_instructions < 0:
        raise InvalidArgument(f"--trace-instructions {args.trace_instructions}: must be 0 or more")
    args.break_pc = None if args.break_at is None else _address("--break", args.break_at)
    return backend


def _check_record_target(path: str, several: bool, backend: str) -> None:
    """--record-allocs FILE: one program, a backend that records, a FILE that does not exist yet."""
    if several:
        raise InvalidArgument("--record-allocs records one program")
    if backend not in UM_RECORD_BACKENDS:
        raise InvalidArgument(f"--record-allocs runs on --backend {', '.join(UM_RECORD_BACKENDS)}, not {backend}")
    target = Path(path)
    if target.exists():
        raise InvalidArgument(f"{path} exists: vm32 does not overwrite files; choose another --record-allocs FILE")
    if not target.parent.is_dir():
        raise InvalidArgument(f"--record-allocs {path}: no directory {target.parent}")


def _only(args, names, where: str) -> None:
    """InvalidArgument naming the flags among `names` that were given: they are only `where`."""
    given = [FLAG_OF.get(n, f"--{n.replace('_', '-')}") for n in names if getattr(args, n) is not None]
    if given:
        raise InvalidArgument(f"{', '.join(given)}: only {where}")


def _address(flag: str, text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise InvalidArgument(f"{flag} {text}: not a number (e.g. 0x1c or 28)") from None
    if not 0 <= value < 1 << 32:
        raise InvalidArgument(f"{flag} {text}: not a 32-bit offset")
    return value


def _paged_options(args) -> dict:
    """The UniversalMachine keyword arguments for --backend paged."""
    return dict(frames=args.frames, policy=args.policy, swap=args.swap_bytes, swap_path=args.swap_file,
                swap_overwrite=bool(args.force), tlb_entries=args.tlb)


def _program(path: str) -> tuple[str, object]:
    """A program's name and what UniversalMachine loads: the path, or stdin's bytes for ``-``."""
    if path != STDIO:
        return Path(path).name, path
    from vm32.um.loader import MAX_PROGRAM_BYTES

    if sys.stdin is None:
        raise BadProgram("-: standard input is closed; there is no program to read")
    data = sys.stdin.buffer.read(MAX_PROGRAM_BYTES + 1)
    if len(data) > MAX_PROGRAM_BYTES:
        raise BadProgram(f"-: larger than the {MAX_PROGRAM_BYTES >> 20} MiB limit of a UM program")
    from vm32.um.loader import parse_program

    return "stdin", parse_program(data, "stdin")


def _run_one(args, backend: str) -> int:
    from vm32.ui.terminal import StatusLine, TerminalOutput
    from vm32.um.machine import UniversalMachine

    name, program = _program(args.program[0])
    with ExitStack() as stack:
        if args.input:
            stdin = stack.enter_context(open_input(args.input[0]))
        elif args.program[0] == STDIO or sys.stdin is None:  # a closed stdin (`<&-`): end of input
            stdin = b""
        else:
            stdin = sys.stdin.buffer
        status = StatusLine(sys.stderr)
        stdout = sys.stdout.buffer
        if status.shares_terminal_with(sys.stdout):
            stdout = TerminalOutput(stdout, status)
        extra = _paged_options(args) if backend == "paged" else {}
        memory = args.memory if args.memory is not None else (FLAT_MEMORY if backend != "paged" else PAGED_MAX_HEAP)
        um = stack.enter_context(UniversalMachine(program, backend=backend, memory_size=memory, stdin=stdin,
                                                  stdout=stdout, name=name, heap_policy=args.heap_policy,
                                                  record_allocs=args.record_allocs is not None,
                                                  check_heap=args.check_heap, **extra))
        try:
            _execute(um, args, status, name)
        except UMFault:
            if args.debug:
                from vm32.ui.debug import print_machine_state

                print_machine_state(um, sys.stderr)
            raise
        finally:
            status.clear()
            _report_one(args, um, name)
        if args.record_allocs is not None:  # the program halted: its whole sequence is there
            from vm32.heap import alloctrace

            alloctrace.save(args.record_allocs, um.recorded_events(), name)
    return 0


def _execute(um, args, status, name: str) -> None:
    """Run `um` to its end, or as the debugging flags say."""
    if args.trace_instructions or args.break_pc is not None:
        from vm32.ui.debug import debug_run

        debug_run(um, sys.stderr, trace=args.trace_instructions or 0, break_pc=args.break_pc)
        return
    um.run(on_slice=_live_line(status, name) if status.enabled else None)


def _report_one(args, um, name: str) -> None:
    """--stats, --json and --check-heap of one program, on stderr."""
    if args.stats and not args.json:
        _print_stats(um.stats(), f"vm32 um run {name}")
    if args.check_heap:
        _print_leaks(um, name)
    if args.json:
        flush_stdout()
        print_json(sys.stderr, dict(um.stats(), program=name))


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
    from vm32.ui.terminal import StatusLine
    from vm32.um.multi import run_programs

    names = _unique_names(args.program)
    status = StatusLine(sys.stderr)
    with ExitStack() as stack:
        inputs = [stack.enter_context(open_input(path)) for path in args.input or []]
        inputs += [None] * (len(names) - len(inputs))
        outputs = _outputs(args, names, status, stack)
        stack.callback(status.clear)
        tick = _live_several(status) if status.enabled else None
        runs, machine_stats = run_programs(
            args.program, names=names, inputs=inputs, outputs=outputs,
            frames=args.frames if args.frames is not None else UM_FRAMES,
            policy=args.policy or DEFAULT_POLICY, swap=args.swap_bytes, swap_path=args.swap_file,
            swap_overwrite=bool(args.force), tlb_entries=args.tlb or DEFAULT_TLB_ENTRIES,
            memory_size=args.memory if args.memory is not None else MULTI_MEMORY, on_tick=tick,
            heap_policy=args.heap_policy)
    if args.stats and not args.json:
        _print_runs_table(runs, machine_stats)
    failed = [r for r in runs if r.error is not None]
    for r in failed:
        flush_stdout()
        print(f"vm32: error: {r.error}", file=sys.stderr)
    if args.json:
        print_json(sys.stderr, dict(machine=machine_stats, processes=[
            dict(name=r.name, halted=r.halted, error=None if r.error is None else str(r.error), stats=r.stats)
            for r in runs]))
    return EXIT_ERROR if failed else 0


def _outputs(args, names: list[str], status, stack: ExitStack) -> list:
    """Each program's output stream: DIR/NAME.out (named once complete: the stack's normal
    exit) with --output-dir, else stdout with each line tagged by the program's name."""
    import threading

    from vm32.ui.terminal import LinePrefixWriter

    if args.output_dir is not None:
        from vm32.files import atomic_output

        out_dir = Path(args.output_dir)
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InvalidArgument(f"--output-dir {out_dir}: cannot create it: {e.strerror}") from None
        return [stack.enter_context(atomic_output(out_dir / f"{name}.out")) for name in names]
    lock = threading.Lock()
    shared = status if status.shares_terminal_with(sys.stdout) else None
    writers = [LinePrefixWriter(sys.stdout.buffer, f"{name}| ", lock, shared) for name in names]
    for w in writers:
        stack.callback(_close_quietly, w)
    return writers


def _close_quietly(stream) -> None:
    try:
        stream.close()
    except OSError:
        pass


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


def _print_leaks(um, name: str) -> None:
    """--check-heap: the segments the program never unmapped, by the pc that mapped them (stderr)."""
    from vm32.ui.heap import leak_report

    flush_stdout()
    print("\n".join(leak_report(um.heap_leaks(), name, um.code_words())), file=sys.stderr)


def _print_stats(stats: dict, title: str) -> None:
    """Print run statistics as a table on stderr."""
    from vm32.ui.tables import console_for, run_stats_view

    console_for(sys.stderr).print(run_stats_view(stats, title))


# ---- um asm, um disasm -----------------------------------------------------------------------------


def cmd_um_asm(args) -> int:
    """`vm32 um asm`: assemble a source file (or stdin) into a UM program file (or stdout)."""
    from vm32.um.asm import assemble, assemble_file, to_bytes

    if args.source == STDIO:
        if sys.stdin is None:
            raise AssemblyError("-: standard input is closed; there is no source to read")
        words = assemble(sys.stdin.read(), "stdin")
    else:
        words = assemble_file(args.source)
    if len(words) == 0:
        raise AssemblyError(f"{args.source}: no instructions or data; a UM program needs at least one word")
    write_file(args.output, to_bytes(words))
    where = "stdout" if args.output == STDIO else args.output
    print(f"vm32: wrote {where}: {len(words)} words", file=sys.stderr)
    return 0


def cmd_um_disasm(args) -> int:
    """`vm32 um disasm`: print a program file (or stdin's) as assembly."""
    from vm32.um.disasm import disassemble
    from vm32.um.loader import load_program

    words = _program(STDIO)[1] if args.program == STDIO else load_program(args.program)
    listing = disassemble(words)  # one line per word, each ending in \n
    write_file(args.output or STDIO, listing.encode())
    return 0
