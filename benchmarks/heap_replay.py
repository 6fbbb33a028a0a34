"""Replay allocation traces through vm32.heap inside one compiled loop; print ns/op and footprint.

Traces:
  sandmark   the UM's map/unmap sequence of sandmark.umz: ev[i] >= 0 maps a segment of
             ev[i] words (handle i), ev[i] < 0 unmaps handle -ev[i]-1. Read from
             benchmarks/out/sandmark_allocs.npy if present, else recorded with
             vm32.um.recording.record_allocations (slow: runs sandmark) only with --record.
  tiny       a synthetic stand-in: 1..19-word segments, mostly short-lived (LIFO-ish).
  mix        sizes log-uniform over 1..65535 words; alloc or free of a random live block 50/50.

footprint/peak = (highest heap extent - base) / (max over time of the requested bytes of
live blocks); headers and alignment count in the footprint, not in peak live.
Event traces are replayed with slots (compact_events: handles renamed to reused slots, so
the address table is as small as the live set); --handles replays the recorded handles.
Columns: ns/op wall (best of --repeat), cpu ns/op of that run (time.process_time: the machine
is shared), floor = the same loop with a bump pointer instead of the heap (harness cost).

    .venv/bin/python benchmarks/heap_replay.py [--ops 10000000] [--tiny-ops N] [--record]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from vm32.heap import Heap, heap_free, heap_malloc
from vm32.jit import kernel as alloc_kernel
from vm32.jit import leaf_kernel as kernel
from vm32.memory import PhysicalMemory

OUT = Path(__file__).parent / "out"
SANDMARK_EVENTS = OUT / "sandmark_allocs.npy"
SANDMARK = Path(os.environ.get("VM32_UM_CORPUS", Path(__file__).parents[2] / "shared" / "um")) / "sandmark.umz"
BASE = 4096


@kernel
def replay_events(mem, heap, ev, addrs):
    """Replay map/unmap events (see module doc); returns the number of failed operations."""
    failed = 0
    for i in range(ev.shape[0]):
        e = ev[i]
        if e >= 0:
            a = heap_malloc(mem, heap, e * 4)
            addrs[i] = a
            if a == 0:
                failed += 1
        else:
            if heap_free(mem, heap, addrs[-e - 1]) != 0:
                failed += 1
    return failed


@alloc_kernel
def compact_events(ev, out):
    """Rewrite handle-based events as slot-based ones (out[i]); returns the number of slots.

    A handle is an event index (up to 1.8e8 for sandmark), so replaying with handles
    needs an address table as long as the trace, and every unmap reads it ~1 MB behind
    the current position. Here handles are renamed to slots, reused as soon as freed
    (as the UM reuses segment ids), so the address table is as long as the peak number
    of live blocks and stays in cache:
        out[i] = slot << 32 | nwords   map nwords words into slot (nwords < 2**32)
        out[i] = -slot - 1             unmap the block in slot
    """
    slot_of = np.empty(ev.shape[0], np.int64)
    free_slots = np.empty(ev.shape[0] + 1, np.int64)
    nfree = 0
    nslots = 0
    for i in range(ev.shape[0]):
        e = ev[i]
        if e >= 0:
            if nfree > 0:
                nfree -= 1
                s = free_slots[nfree]
            else:
                s = nslots
                nslots += 1
            slot_of[i] = s
            out[i] = (s << 32) | e
        else:
            s = slot_of[-e - 1]
            out[i] = -s - 1
            free_slots[nfree] = s
            nfree += 1
    return nslots


@kernel
def replay_slots(mem, heap, ev, addrs):
    """Replay slot-based events (see compact_events); returns the number of failed operations."""
    failed = 0
    for i in range(ev.shape[0]):
        e = ev[i]
        if e >= 0:
            a = heap_malloc(mem, heap, (e & 0xFFFFFFFF) * 4)
            addrs[e >> 32] = a
            failed += a == 0
        else:
            failed += heap_free(mem, heap, addrs[-e - 1]) != 0
    return failed


@kernel
def replay_slots_null(mem, heap, ev, addrs):
    """The harness alone: replay_slots with a bump pointer for malloc and a load for free."""
    top = np.int64(8)
    acc = 0
    for i in range(ev.shape[0]):
        e = ev[i]
        if e >= 0:
            addrs[e >> 32] = top
            top += ((e & 0xFFFFFFFF) * 4 + 11) & ~7
        else:
            acc += addrs[-e - 1]
    return acc & 1


@kernel
def replay_mix(mem, heap, words, coin, pick, live):
    """Alloc (words[i] words) or free live[j] (j = pick[i] * n >> 32) as coin[i] says; returns failures."""
    n = 0
    failed = 0
    for i in range(words.shape[0]):
        if coin[i] or n == 0:
            a = heap_malloc(mem, heap, words[i] * 4)
            if a == 0:
                failed += 1
            else:
                live[n] = a
                n += 1
        else:
            j = (pick[i] * n) >> 32  # uniform in [0, n) without a division
            if heap_free(mem, heap, live[j]) != 0:
                failed += 1
            n -= 1
            live[j] = live[n]
    return failed


def tiny_trace(ops: int, seed: int = 1) -> np.ndarray:
    """A sandmark-like event list: tiny segments, most freed soon after, a few long-lived."""
    rng = np.random.default_rng(seed)
    sizes = np.minimum(rng.geometric(0.25, ops), 19)
    ev = np.empty(ops, dtype=np.int64)
    live: list[int] = []
    for i in range(ops):
        if live and rng.random() < 0.5:
            k = len(live) - 1 - min(int(rng.geometric(0.3)) - 1, len(live) - 1)  # mostly recent
            ev[i] = -live[k] - 1
            live[k] = live[-1]
            live.pop()
        else:
            ev[i] = sizes[i]
            live.append(i)
    return ev


def timed(fn, *args) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds of this process, result) of one call of `fn`."""
    t, c = time.perf_counter(), time.process_time()
    r = fn(*args)
    return time.perf_counter() - t, time.process_time() - c, r


def run_events(ev: np.ndarray, mem: PhysicalMemory, repeat: int = 1, handles: bool = False) -> dict:
    """Replay events on a fresh heap over `mem`; the best of `repeat` runs of the compiled loop.

    By default the events are first renamed to slots (compact_events, not timed);
    `handles=True` replays them as recorded, with a trace-long address table.
    Also measures the harness alone (a bump pointer instead of the heap) as `floor_ns`.
    """
    if handles:
        loop, events, addrs = replay_events, ev, np.zeros(ev.shape[0], dtype=np.int64)
    else:
        events = np.empty_like(ev)
        nslots = compact_events(ev, events)
        loop, addrs = replay_slots, np.zeros(max(nslots, 1), dtype=np.int64)
    loop(mem.words, Heap(mem, BASE, mem.size).state, events[:2].copy(), addrs)  # compile
    best = None
    for _ in range(repeat):
        heap = Heap(mem, BASE, mem.size)
        wall, cpu, failed = timed(loop, mem.words, heap.state, events, addrs)
        r = summary(heap, wall, cpu, events.shape[0], failed)
        best = r if best is None or r["ns_per_op"] < best["ns_per_op"] else best
    if not handles:
        floor = min(timed(replay_slots_null, mem.words, heap.state, events, addrs)[0] for _ in range(repeat))
        best["floor_ns"] = 1e9 * floor / events.shape[0]
    return best


def run_mix(ops: int, mem: PhysicalMemory, seed: int = 1, repeat: int = 1) -> dict:
    """The synthetic log-uniform mix of `ops` operations (best of `repeat` runs)."""
    rng = np.random.default_rng(seed)
    words = np.exp(rng.uniform(0, np.log(65536), ops)).astype(np.int64).clip(1, 65535)
    coin = rng.random(ops) < 0.5
    pick = rng.integers(0, 1 << 32, ops, dtype=np.int64)
    live = np.zeros(ops, dtype=np.int64)
    replay_mix(mem.words, Heap(mem, BASE, mem.size).state, words[:2], coin[:2], pick[:2], live)
    best = None
    for _ in range(repeat):
        heap = Heap(mem, BASE, mem.size)
        wall, cpu, failed = timed(replay_mix, mem.words, heap.state, words, coin, pick, live)
        r = summary(heap, wall, cpu, ops, failed)
        best = r if best is None or r["ns_per_op"] < best["ns_per_op"] else best
    return best


def summary(heap: Heap, seconds: float, cpu: float, ops: int, failed: int) -> dict:
    """One run's figures: wall and CPU ns/op, footprint against peak live bytes, check()."""
    s = heap.stats()
    problems = heap.check(5) if s["footprint"] < (1 << 28) else []  # full walk only when cheap
    return {
        "ops": ops,
        "ns_per_op": 1e9 * seconds / ops,
        "cpu_ns_per_op": 1e9 * cpu / ops,
        "footprint": s["footprint"],
        "peak_live": s["peak_live_bytes"],
        "ratio": s["footprint"] / max(1, s["peak_live_bytes"]),
        "failed": failed,
        "check": "ok" if not problems else problems[0],
    }


def sandmark_events(record: bool, max_events: int) -> np.ndarray | None:
    """The cached sandmark events, or freshly recorded ones if `record`, else None."""
    if SANDMARK_EVENTS.exists():
        return np.load(SANDMARK_EVENTS)
    if not record:
        return None
    from vm32.um.recording import record_allocations

    ev = np.asarray(record_allocations(str(SANDMARK), max_events), dtype=np.int64)
    OUT.mkdir(exist_ok=True)
    np.save(SANDMARK_EVENTS, ev)
    return ev


def main(argv: list[str] | None = None) -> int:
    """Run the replays and print one table row per trace."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ops", type=int, default=10_000_000, help="operations of the synthetic mix")
    ap.add_argument("--tiny-ops", type=int, default=2_000_000, help="events of the synthetic tiny trace")
    ap.add_argument("--max-events", type=int, default=200_000_000, help="sandmark events to record")
    ap.add_argument("--record", action="store_true", help="record the sandmark trace if not cached (slow)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per trace (tiny: at least 10); the fastest is reported")
    ap.add_argument("--only", choices=["sandmark", "tiny", "mix"], action="append", help="run only these")
    ap.add_argument("--handles", action="store_true",
                    help="replay traces with their recorded handles (a trace-long address table, as in session 1)")
    args = ap.parse_args(argv)
    print(f"# heap_replay: ops={args.ops} tiny_ops={args.tiny_ops} repeat={args.repeat} record={args.record} "
          f"events={SANDMARK_EVENTS}")
    only = set(args.only or ["sandmark", "tiny", "mix"])
    rows = []
    with PhysicalMemory() as mem:
        if "sandmark" in only:
            ev = sandmark_events(args.record, args.max_events)
            if ev is None:
                print(f"# sandmark: skipped ({SANDMARK_EVENTS} missing; --record to make it)")
            else:
                rows.append(("sandmark", run_events(ev, mem, args.repeat, args.handles), 10.0, 1.6))
        if "tiny" in only:
            tiny_repeat = max(args.repeat, 10)  # a run is ~15 ms: more tries against scheduler noise
            rows.append(("tiny", run_events(tiny_trace(args.tiny_ops), mem, tiny_repeat, args.handles), 10.0, 1.6))
        if "mix" in only:
            rows.append(("mix", run_mix(args.ops, mem, repeat=args.repeat), 60.0, 1.2))
    print(f"{'trace':<9} {'ops':>11} {'ns/op':>7} {'cpu ns':>7} {'floor':>6} {'target':>6} {'footprint':>12} "
          f"{'peak live':>12} {'ratio':>6} {'target':>6} {'failed':>6}  check")
    missed = []
    for name, r, ns_target, ratio_target in rows:
        floor = f"{r['floor_ns']:>6.1f}" if "floor_ns" in r else f"{'-':>6}"
        print(f"{name:<9} {r['ops']:>11} {r['ns_per_op']:>7.1f} {r['cpu_ns_per_op']:>7.1f} {floor} {ns_target:>6.0f} "
              f"{r['footprint']:>12} {r['peak_live']:>12} {r['ratio']:>6.3f} {ratio_target:>6.2f} {r['failed']:>6}  "
              f"{r['check']}")
        if r["ns_per_op"] > ns_target:
            cpu_ok = r["cpu_ns_per_op"] <= ns_target
            missed.append(f"{name} wall ns/op" + (" (cpu ns/op within: a busy machine?)" if cpu_ok else ""))
        if r["ratio"] > ratio_target:
            missed.append(f"{name} footprint")
        if r["failed"] or r["check"] != "ok":
            missed.append(f"{name} correctness")
    print(f"# load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cpus")
    print(f"# summary: {'all targets met' if not missed else 'missed: ' + ', '.join(missed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
