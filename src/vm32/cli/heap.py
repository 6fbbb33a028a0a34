"""`vm32 heap`: the allocator lab.

    vm32 heap sim [-p BEST] [-A +10,-0,+5] [-c] ...   the free-space chapter's simulator
"""

from __future__ import annotations

import argparse


def add_commands(commands) -> None:
    """Add ``heap`` and its subcommands to the `vm32` subparsers `commands`."""
    heap = commands.add_parser("heap", help="the allocator lab: the textbook simulator, trace replays")
    sub = heap.add_subparsers(dest="heap_command", metavar="HEAP_COMMAND")
    sub.required = True
    add_sim(sub)


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
    sim.set_defaults(handler=cmd_heap_sim)


def cmd_heap_sim(args) -> int:
    """`vm32 heap sim`: print the questions, or with -c the answers, and a FINALSTATS line."""
    from vm32.heap.sim import SimOptions, run

    options = SimOptions(seed=args.seed, size=args.size, base=args.base, header=args.header, align=args.align,
                         policy=args.policy, order=args.order, coalesce=args.coalesce, ops=args.ops,
                         range=args.range, percent=args.percent, alloc_list=args.alloc_list,
                         compute=args.compute, explain=args.explain)
    print("\n".join(run(options)))
    return 0
