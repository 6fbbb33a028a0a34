"""Miss counts of vm32's replays equal libCacheSim's (the `libcachesim` package, with its
default parameters) on the same page sequence and cache size: the recorded trace of a
real program (tests/data) and a random one."""

from pathlib import Path

import numpy as np
import pytest

from naive_paging import random_refs
from vm32.trace.readers import read_trace, trace_from_pages
from vm32.trace.sim import simulate

libcachesim = pytest.importorskip("libcachesim")

DATA = Path(__file__).parent / "data"
TWINS = {  # vm32 policy -> libCacheSim class (defaults)
    "fifo": "FIFO",
    "lru": "LRU",
    "clock-clear": "Clock",
    "sieve": "Sieve",
    "arc": "ARC",
}


def _lcs_misses(path: Path, twin: str, frames: int) -> int:
    reader = libcachesim.TraceReader(str(path), libcachesim.TraceType.PLAIN_TXT_TRACE)
    miss_ratio, _ = getattr(libcachesim, twin)(frames).process_trace(reader)
    return round(miss_ratio * reader.get_num_of_req())


def _page_file(tmp_path: Path, vpns: np.ndarray) -> Path:
    path = tmp_path / "pages.txt"
    vpns.astype(np.int64).tofile(path, sep="\n")
    path.write_text(path.read_text() + "\n")
    return path


@pytest.fixture(scope="module")
def real_trace(tmp_path_factory):
    """The recorded trace, and its page numbers as the text file libcachesim reads."""
    trace = read_trace(DATA / "sort.lackey.zst", cache=False)
    return trace, _page_file(tmp_path_factory.mktemp("lcs"), trace.vpns)


@pytest.mark.parametrize("policy", list(TWINS))
def test_recorded_trace_matches_libcachesim(real_trace, policy):
    trace, path = real_trace
    for frames in (12, 96):
        assert simulate(trace, policy, frames).misses == _lcs_misses(path, TWINS[policy], frames), frames


@pytest.mark.parametrize("policy", list(TWINS))
def test_random_trace_matches_libcachesim(tmp_path, policy):
    trace = trace_from_pages(random_refs(7, 5_000, 300))
    path = _page_file(tmp_path, trace.vpns)
    for frames in (1, 2, 3, 17, 100, 299):
        assert simulate(trace, policy, frames).misses == _lcs_misses(path, TWINS[policy], frames), frames
