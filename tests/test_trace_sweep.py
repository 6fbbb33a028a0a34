"""vm32.trace.sweep: frame ranges, local processes and a Dask cluster giving the same curves,
LRU's one-pass curve equal to replays, Belady's anomaly visible in FIFO's curve."""

import pytest

from naive_paging import random_refs
from vm32.errors import InvalidArgument
from vm32.trace.readers import trace_from_pages
from vm32.trace.sim import simulate
from vm32.trace.sweep import parse_frames, sweep

BELADY = [1, 2, 3, 4, 1, 2, 5, 1, 2, 3, 4, 5]


def _key(results):
    return [(r.policy, r.frames, r.misses, r.cold_misses, r.writebacks, r.tlb_hit_rate) for r in results]


def test_parse_frames():
    assert parse_frames("3,4, 8") == [3, 4, 8]
    assert parse_frames("1:7:2") == [1, 3, 5, 7]
    counts = parse_frames("8:1024")
    assert counts[0] == 8 and counts[-1] == 1024 and len(counts) == 24 and counts == sorted(set(counts))
    assert parse_frames("2:5") == [2, 3, 4, 5]
    for bad in ("0", "8:4", "a,b", "1:2:3:4", "4:8:0", ""):
        with pytest.raises(InvalidArgument, match="--frames"):
            parse_frames(bad)


def test_local_processes_equal_one_process_and_lru_curve_equals_replays():
    trace = trace_from_pages(random_refs(5, 3000, 50), [r % 5 == 0 for r in random_refs(6, 3000, 50)])
    policies, frames = ["fifo", "lru", "clock"], [2, 7, 20, 49]
    one = sweep(trace, policies, frames, 64, jobs=1)
    two = sweep(trace, policies, frames, 64, jobs=2)
    assert _key(one) == _key(two)
    assert [(r.policy, r.frames) for r in one] == [(p, f) for p in policies for f in frames]
    for r in one:
        assert r.misses == simulate(trace, r.policy, r.frames, 64).misses
        assert (r.writebacks is None) == (r.policy == "lru")


def test_belady_anomaly_in_fifo_curve():
    results = sweep(trace_from_pages(BELADY), ["fifo", "lru"], parse_frames("1:6:1"), 4, jobs=1)
    fifo = {r.frames: r.misses for r in results if r.policy == "fifo"}
    lru = [r.misses for r in results if r.policy == "lru"]
    assert fifo[4] > fifo[3]  # more frames, more misses
    assert lru == sorted(lru, reverse=True)  # a stack algorithm never does that


def test_dask_cluster_equals_local_run():
    distributed = pytest.importorskip("distributed")
    trace = trace_from_pages(random_refs(8, 500, 30))
    policies, frames = ["fifo", "lru", "clock"], [3, 9]
    local = sweep(trace, policies, frames, 16, jobs=1)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp",
                                  dashboard_address=None) as cluster:
        remote = sweep(trace, policies, frames, 16, cluster=cluster.scheduler_address)
    assert _key(remote) == _key(local)


def test_unreachable_cluster_is_a_clear_error():
    pytest.importorskip("distributed")
    with pytest.raises(InvalidArgument, match="cannot reach the Dask scheduler"):
        sweep(trace_from_pages(BELADY), ["fifo"], [3], 4, cluster="tcp://127.0.0.1:9", connect_timeout=1)


def test_ctrl_c_stops_the_workers_and_writes_nothing(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    pages = tmp_path / "long.pages"
    pages.write_text("\n".join(str(p) for p in random_refs(3, 300_000, 3000)) + "\n")
    plots = tmp_path / "plots"
    proc = subprocess.Popen([sys.executable, "-m", "vm32", "trace", "sweep", str(pages), "--format", "pages",
                             "--frames", "1:3000:1", "--policy", "fifo,clock", "--jobs", "2", "--plot", str(plots),
                             "--no-cache"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _children(proc.pid):
        time.sleep(0.1)  # until the workers run
    workers = _children(proc.pid)
    os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C does: the whole foreground group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err.decode().strip().endswith("vm32: error: interrupted")
    time.sleep(0.5)
    assert workers and not [w for w in workers if os.path.exists(f"/proc/{w}")]
    assert list(plots.iterdir()) == []  # the directory was made; no plot, no partial file


def _children(pid):
    """Process ids whose parent is `pid` (from /proc)."""
    import os

    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        kids.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return kids
