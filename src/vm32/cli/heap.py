"""`vm32 heap`: the allocator lab.

    vm32 heap sim [-p BEST] [-A +10,-0,+5] [-c] ...      the free-space chapter's simulator
    vm32 heap replay TRACE [--policy P,...] [--json]     replay an allocation trace through policies
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from vm32.defaults import HEAP_POLICIES
from vm32.errors import InvalidArgument

BUILT_IN = ("sandmark", "mix", "tiny")
SANDMARK_INSTRUCTIONS = 5_556_001_579  # sandmark.umz runs this many (for the recording's progress bar)


def add_commands(commands) -> None:
    """Add ``heap`` and its subcommands to the `vm32` subparsers `commands`."""
    heap = commands.add_parser("heap", help="the allocator lab: the textbook simulator, trace replays")
    sub = heap.add_subparsers(dest="heap_command", metavar="HEAP_COMMAND")
    sub.required = True
    add_sim(sub)
    add_replay(sub)


def add_sim(sub) -> None:
    """``vm32 heap sim``: the OSTEP free-space simulator's options, letters and values."""
    sim = sub.add_parser(
        "sim", help="the free-space chapter's simulator (OSTEP vm-freespace options)",
        description="Allocate and free on a small heap with an explicit free list, as the OSTEP chapter "
                    "'Free-Space Management' does: without -c it asks, with -c it answers (each address, "
                    "how many free blocks were searched, the free list after each step). Addresses are "
                    "payload addresses (block + header).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sim.add_argument("-s", "--seed", type=int, default=0, help="random seed (op lists without -A)")
    sim.add_argument("-S", "--size", "--heapSize", dest="size", type=int, default=100, help="heap size in bytes")
    sim.add_argument("-b", "--base", "--baseAddr", dest="base", type=int, default=1000,
                     help="base address of the heap")
    sim.add_argument("-H", "--header", "--headerSize", dest="header", type=int, default=0,
                     help="header size in bytes")
    sim.add_argument("-a", "--align", "--alignment", dest="align", type=int, default=-1,
                     help="round requests up to a multiple of this (-1: no alignment)")
    sim.add_argument("-p", "--policy", default="BEST", help="list search: BEST, WORST, FIRST or NEXT")
    sim.add_argument("-l", "--order", "--listOrder", dest="order", default="ADDRSORT",
                     help="free-list order: ADDRSORT, SIZESORT+, SIZESORT-, INSERT-FRONT, INSERT-BACK")
    sim.add_argument("-C", "--coalesce", action="store_true", help="coalesce the free list after each free")
    sim.add_argument("-n", "--ops", "--numOps", dest="ops", type=int, default=10, help="random ops to generate")
    sim.add_argument("-r", "--range", type=int, default=10, help="largest random allocation, in bytes")
    sim.add_argument("-P", "--percent", "--percentAlloc", dest="percent", type=int, default=50,
                     help="percent of random ops that allocate")
    sim.add_argument("-A", "--ops-list", "--allocList", dest="alloc_list", default="",
                     help="explicit ops instead of random ones: +SIZE allocates, -N frees ptr[N], e.g. +10,-0,+5")
    sim.add_argument("-c", "--compute", action="store_true", help="print the answers")
    sim.add_argument("--explain", action="store_true", help="with -c: one line on why each block was chosen")
    sim.add_argument("--json", action="store_true",
                     help="print one JSON document instead: the options, each operation (with -c its "
                          "address, blocks searched and free list) and the FINALSTATS figures")
    sim.set_defaults(handler=cmd_heap_sim)


SIM_INTERPRETED_OPS = 10_000
"""`heap sim` runs the policy's kernels interpreted (NUMBA_DISABLE_JIT: vm32's kernels are
plain Python without the JIT, the same source) for up to this many operations: on a
teaching heap that answers in about half the time that loading their compiled code takes
(numba's target set-up, ~0.5 s of a ~1 s start)."""


def cmd_heap_sim(args) -> int:
    """`vm32 heap sim`: print the questions, or with -c the answers, and a FINALSTATS line."""
    ops = len(args.alloc_list.split(",")) if args.alloc_list else args.ops
    if "numba" not in sys.modules and ops <= SIM_INTERPRETED_OPS:
        os.environ["NUMBA_DISABLE_JIT"] = "1"
    from vm32.heap.sim import SimOptions, run

    options = SimOptions(seed=args.seed, size=args.size, base=args.base, header=args.header, align=args.align,
                         policy=args.policy, order=args.order, coalesce=args.coalesce, ops=args.ops,
                         range=args.range, percent=args.percent, alloc_list=args.alloc_list,
                         compute=args.compute, explain=args.explain)
    if args.json:
        print(json.dumps(_sim_document(options), indent=1))
    else:
        print("\n".join(run(options)))
    return 0


def _sim_document(options) -> dict:
    """`heap sim --json`: the options, the operations and the FINALSTATS figures; without -c
    only what the questions show (the operations, not their answers)."""
    from dataclasses import asdict

    from vm32.heap.sim import final_figures, simulate, validate

    o = validate(options)
    steps = simulate(o)
    operations = []
    for s in steps:
        op = dict(op="alloc", ptr=s.ptr, size=s.size) if s.size is not None else dict(op="free", ptr=s.ptr)
        if o.compute:
            op.update(dict(addr=s.addr, searched=s.searched) if s.size is not None else dict(status=s.status))
            op["free_list"] = [dict(addr=a, size=n) for a, n in s.free_list]
        operations.append(op)
    return dict(options=asdict(o), operations=operations, stats=final_figures(o, steps))


def add_replay(sub) -> None:
    """``vm32 heap replay``: a trace through one or more policies, a table of their figures."""
    replay = sub.add_parser(
        "replay", help="replay an allocation trace through heap policies and compare them",
        description="Replay an allocation trace (a file from `vm32 um run P --record-allocs FILE`, or "
                    "sandmark, mix, tiny) through each policy in a compiled loop, and print per policy: "
                    "ns per operation, footprint against peak live bytes, internal and external "
                    "fragmentation, the largest free block and the free-list length at the end.")
    replay.add_argument("trace", metavar="TRACE",
                        help="a .npz allocation trace, or sandmark (recorded on first use into the cache "
                             "directory; needs VM32_UM_CORPUS), mix or tiny (synthetic)")
    replay.add_argument("--policy", default=",".join(HEAP_POLICIES), metavar="P[,P...]",
                        help=f"policies to replay, in order (default all: {','.join(HEAP_POLICIES)})")
    replay.add_argument("--ops", type=int, default=None, metavar="N",
                        help="operations of a synthetic trace (default: mix 10000000, tiny 2000000)")
    replay.add_argument("--seed", type=int, default=1, help="seed of a synthetic trace")
    replay.add_argument("--json", action="store_true", help="print a JSON list of objects instead of the table")
    replay.add_argument("--plot", default=None, metavar="DIR",
                        help="write heap-map PNGs (one per policy) and footprint.png into DIR")
    replay.set_defaults(handler=cmd_heap_replay)


def _policies(text: str) -> list[str]:
    names = [p.strip() for p in text.split(",")]
    for name in names:
        if name not in HEAP_POLICIES:
            raise InvalidArgument(f"--policy {name!r}: choose from {', '.join(HEAP_POLICIES)}")
    if len(set(names)) != len(names):
        raise InvalidArgument(f"--policy {text}: a policy is named twice")
    return names


def _plot_paths(directory: str, policies: list[str]) -> dict[str, Path]:
    """The PNGs --plot writes, checked first: a heap map by policy, and "footprint"."""
    from vm32.ui.plots import plot_targets

    names = {p: f"heapmap-{p}.png" for p in policies}
    names["footprint"] = "footprint.png"
    paths = plot_targets(directory, list(names.values()))
    return {key: paths[name] for key, name in names.items()}


def cache_dir() -> Path:
    """vm32's cache directory for recorded traces ($XDG_CACHE_HOME/vm32/traces)."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vm32" / "traces"


def sandmark_trace(console):
    """sandmark's allocation trace: from the cache, or recorded now (with a progress bar) and cached."""
    from vm32.heap import alloctrace

    path = cache_dir() / "sandmark.npz"
    if path.exists():
        return alloctrace.load(path)[0]
    corpus = os.environ.get("VM32_UM_CORPUS")
    program = Path(corpus) / "sandmark.umz" if corpus else None
    if program is None or not program.is_file():
        raise InvalidArgument("the sandmark trace is recorded from sandmark.umz on first use: set VM32_UM_CORPUS "
                              "to the directory holding it (or record any program with `vm32 um run P "
                              "--record-allocs FILE` and replay FILE)")
    from vm32.ui.heap import LazyProgress
    from vm32.um.kernel import ST_ICOUNT
    from vm32.um.recording import record_allocations

    with LazyProgress(console, "recording sandmark's allocations", delay=0) as bar:
        events = record_allocations(program, on_slice=lambda um: bar.update(int(um.st[ST_ICOUNT]),
                                                                            SANDMARK_INSTRUCTIONS))
    path.parent.mkdir(parents=True, exist_ok=True)
    alloctrace.save(path, events, "sandmark.umz")
    return events


def load_trace(name: str, ops: int | None, seed: int, console):
    """(events, trace name) of TRACE: a built-in name or an allocation-trace file."""
    from vm32.heap import alloctrace, replay

    if ops is not None and not 1 <= ops <= 1 << 31:
        raise InvalidArgument(f"--ops {ops}: choose 1 to {1 << 31}")
    if name == "mix":
        return replay.mix_trace(ops or 10_000_000, seed), "mix"
    if name == "tiny":
        return replay.tiny_trace(ops or 2_000_000, seed), "tiny"
    if ops is not None:
        raise InvalidArgument(f"--ops is for the synthetic traces mix and tiny, not {name}")
    if name == "sandmark":
        return sandmark_trace(console), "sandmark"
    return alloctrace.load(name)[0], Path(name).name


def cmd_heap_replay(args) -> int:
    """`vm32 heap replay`: replay, then the table (or --json), then --plot's PNGs."""
    from vm32.ui.tables import console_for

    policies = _policies(args.policy)
    plots = _plot_paths(args.plot, policies) if args.plot is not None else None
    err = console_for(sys.stderr)
    events, trace = load_trace(args.trace, args.ops, args.seed, err)
    rows, pictures = replay_all(events, trace, policies, err, plots is not None)
    if args.json:
        from vm32.heap.replay import FIELDS

        print(json.dumps([{k: r[k] for k in FIELDS} for r in rows], indent=1))
    else:
        from vm32.ui.heap import replay_table

        console_for(sys.stdout).print(replay_table(rows, f"{trace}: {events.shape[0]:,} operations"))
    if plots is not None:
        from vm32.ui.heap import plot_footprints, plot_heap_map

        for p in pictures:
            plot_heap_map(p, plots[p.policy])
        plot_footprints(pictures, plots["footprint"])
    return 0


def replay_all(events, trace: str, policies: list[str], console, pictures: bool):
    """Each policy's figures (and, if asked, its picture), with one progress bar for them all."""
    from vm32.heap.picture import heap_picture
    from vm32.heap.replay import replay, slot_events
    from vm32.memory import PhysicalMemory
    from vm32.ui.heap import LazyProgress

    slots = slot_events(events)
    rows, shown = [], []
    total = len(policies) * events.shape[0]
    with PhysicalMemory() as memory, LazyProgress(console, f"replaying {trace}") as bar:
        for k, policy in enumerate(policies):
            base = k * events.shape[0]
            rows.append(replay(events, policy, trace, memory, slots=slots,
                               on_progress=lambda done, _n: bar.update(base + done, total)))
            if pictures:
                shown.append(heap_picture(slots, policy, trace, memory, rows[-1]["footprint_bytes"]))
    return rows, shown
