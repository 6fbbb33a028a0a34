"""Miss-ratio curves: one trace, many frame counts and policies, in parallel.

    sweep(trace, policies=["fifo", "lru"], frames=[8, 16, 32]) -> list[SimResult]

Each (policy, frame count) pair is one replay (vm32.trace.sim), a task for a
pool of local processes (the default; ``jobs`` of them) or, with ``cluster``
set to a scheduler address such as ``tcp://host:8786``, for a Dask distributed
cluster (the ``vm32[cluster]`` extra), so that many traces can outgrow one
machine without changing tools.  LRU is the exception: its whole curve comes
from one pass of stack distances (vm32.trace.future), one task whatever the
number of frame counts; its rows carry misses only (no write-backs or TLB
figures: those need a replay).

Local workers are forked with the trace already in memory; a cluster's workers
get it once (``scatter``, broadcast).  Results come back in the order of the
input: policies, then frame counts.  Interrupting a sweep stops its workers.
"""

from __future__ import annotations

import os
import signal
import time
from multiprocessing import get_context

import numpy as np

from vm32.errors import InvalidArgument
from vm32.trace.future import lru_misses, stack_distances
from vm32.trace.readers import Trace
from vm32.trace.sim import SimResult, simulate

MAX_POINTS = 24  # frame counts in a range A:B without a step (geometric)

_TRACE: Trace | None = None  # the trace of a forked local worker


def parse_frames(text: str) -> list[int]:
    """Frame counts from ``--frames``: ``8,16,32``; ``8:1024`` (up to 24 counts spaced
    geometrically, both ends included); ``8:1024:8`` (every 8th count from 8 to 1024)."""
    text = str(text).strip()
    try:
        if ":" in text:
            parts = [int(p) for p in text.split(":")]
            if len(parts) not in (2, 3):
                raise ValueError
            lo, hi = parts[0], parts[1]
            if lo < 1 or hi < lo:
                raise InvalidArgument(f"--frames {text}: a range needs 1 <= first <= last")
            if len(parts) == 3:
                if parts[2] < 1:
                    raise InvalidArgument(f"--frames {text}: the step must be >= 1")
                counts = list(range(lo, hi + 1, parts[2]))
            else:
                counts = np.unique(np.round(np.geomspace(lo, hi, min(MAX_POINTS, hi - lo + 1))).astype(int)).tolist()
        else:
            counts = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise InvalidArgument(f"--frames {text!r}: give counts (8,16,32), a range (8:1024) or a range "
                              "with a step (8:1024:8)") from None
    if not counts:
        raise InvalidArgument("--frames: no frame counts given")
    bad = [c for c in counts if c < 1]
    if bad:
        raise InvalidArgument(f"--frames {bad[0]}: a frame count must be at least 1")
    return sorted(set(counts))


def _lru_curve(trace: Trace, frames: list[int]) -> list[SimResult]:
    """LRU's results for every count in `frames` from one pass of stack distances."""
    t0 = time.perf_counter()
    hist, cold = stack_distances(trace.vpns)
    misses = lru_misses(hist, cold, frames)
    seconds = time.perf_counter() - t0
    refs = trace.refs
    return [SimResult(policy="lru", frames=f, refs=refs, misses=int(m), cold_misses=cold, miss_ratio=float(m) / refs,
                      writebacks=None, tlb_hit_rate=None, refs_per_s=refs / seconds if seconds > 0 else 0.0,
                      seconds=seconds) for f, m in zip(frames, misses)]


def run_task(trace: Trace | None, policy: str, frames: list[int], tlb: int, seed: int) -> list[SimResult]:
    """One task of a sweep: LRU's curve (all of `frames`), or one replay (frames[0])."""
    trace = _TRACE if trace is None else trace
    if policy == "lru":
        return _lru_curve(trace, frames)
    return [simulate(trace, policy, frames[0], tlb, seed)]


def _tasks(policies: list[str], frames: list[int]) -> list[tuple[str, list[int]]]:
    tasks = []
    for p in policies:
        tasks += [(p, frames)] if p == "lru" else [(p, [f]) for f in frames]
    return tasks


def _worker_start(trace: Trace) -> None:
    """A local worker begins: the trace it replays; Ctrl-C is for its parent, which stops it."""
    global _TRACE
    _TRACE = trace
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # blocked while the parent forked it


def sweep(trace: Trace, policies: list[str], frames: list[int], tlb: int, *, seed: int = 1, jobs: int | None = None,
          cluster: str | None = None, progress=None, connect_timeout: float = 10.0) -> list[SimResult]:
    """Results of every policy at every frame count (see the module docstring).

    `progress(done, total)` is called as tasks finish.  `cluster` is a Dask
    scheduler address (reached within `connect_timeout` seconds); without it
    `jobs` local processes run the tasks (default: one per CPU, at most one per task).
    """
    tasks = _tasks(policies, frames)
    order = {(p, f): i for i, (p, f) in enumerate((p, f) for p in policies for f in frames)}
    done: list[SimResult] = []

    def collect(results):
        done.extend(results)
        if progress is not None:
            progress(len(done), len(order))

    if cluster is not None:
        _on_cluster(trace, tasks, tlb, seed, cluster, connect_timeout, collect)
    else:
        _on_processes(trace, tasks, tlb, seed, jobs, collect)
    return sorted(done, key=lambda r: order[(r.policy, r.frames)])


def _on_processes(trace, tasks, tlb, seed, jobs, collect) -> None:
    jobs = jobs or os.cpu_count() or 1
    if jobs < 1:
        raise InvalidArgument(f"--jobs must be at least 1, not {jobs}")
    jobs = min(jobs, len(tasks))
    if jobs == 1:
        for policy, frames in tasks:
            collect(run_task(trace, policy, frames, tlb, seed))
        return
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})  # a Ctrl-C now waits for the try
    try:
        pool = get_context("fork").Pool(jobs, initializer=_worker_start, initargs=(trace,))
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
    try:
        for results in pool.imap_unordered(_run_local, [(p, f, tlb, seed) for p, f in tasks]):
            collect(results)
    except BaseException:
        pool.terminate()  # Ctrl-C or a failure: stop the work in progress now
        raise
    finally:
        pool.close()
        pool.join()


def _run_local(task):
    """run_task in a forked worker, on the trace it was started with."""
    return run_task(None, *task)


def _on_cluster(trace, tasks, tlb, seed, address, connect_timeout, collect) -> None:
    try:
        from distributed import Client, as_completed as dask_completed
    except ImportError:
        raise InvalidArgument("--cluster needs the distributed package: pip install 'vm32[cluster]'") from None
    try:
        client = Client(address, timeout=f"{connect_timeout}s")
    except (OSError, TimeoutError) as e:
        raise InvalidArgument(f"cannot reach the Dask scheduler at {address}: {e}") from None
    try:
        shared = client.scatter(trace, broadcast=True)
        futures = [client.submit(run_task, shared, policy, frames, tlb, seed, pure=False) for policy, frames in tasks]
        try:
            for fut in dask_completed(futures):
                collect(fut.result())
        except BaseException:
            client.cancel(futures)
            raise
    finally:
        client.close()
