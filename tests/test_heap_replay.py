"""Tests of allocation-trace replays (vm32.heap.replay, vm32.heap.picture, `vm32 heap replay`)
and of recording them (`vm32 um run --record-allocs`)."""

import json
from pathlib import Path

import numpy as np
import pytest

from vm32.cli import main
from vm32.heap import POLICIES, alloctrace
from vm32.heap.picture import heap_picture
from vm32.heap.replay import FIELDS, addresses, replay, slot_events, tiny_trace
from vm32.memory import PhysicalMemory

PROGRAMS = Path(__file__).parents[1] / "src" / "vm32" / "um" / "programs"


@pytest.fixture(scope="module")
def memory():
    with PhysicalMemory(64 << 20) as m:
        yield m


@pytest.mark.parametrize("policy", list(POLICIES))
def test_replaying_twice_gives_the_same_addresses(policy, memory):
    events = tiny_trace(3000, seed=7)
    first = addresses(events, policy, memory)
    assert (first[events >= 0] > 0).all()
    assert (addresses(events, policy, memory) == first).all()


def test_figures(memory):
    events = np.array([3, 3, -1, 1000, -2, -4], np.int32)  # 12, 12, 4000 bytes; peak 4012 after the first free
    r = replay(events, "buddy", "t", memory)
    assert set(FIELDS) <= set(r) and r["ops"] == 6 and r["failed"] == 0 and r["check"] == "ok"
    assert r["peak_live_bytes"] == 4012
    assert r["internal_frag"] == pytest.approx((16 + 4096 - 4012) / 4012)  # blocks of 16 and 4096 bytes
    assert r["footprint_ratio"] == pytest.approx(r["footprint_bytes"] / 4012)
    assert r["free_list_len"] >= 1 and 0 <= r["external_frag"] <= 1
    t = replay(events, "tlsf", "t", memory, slots=slot_events(events))
    assert t["internal_frag"] == pytest.approx((16 + 4008 - 4012) / 4012)  # (n + 11) & ~7 bytes a block


def test_picture_paints_every_block(memory):
    events = tiny_trace(2000, seed=3)
    slots = slot_events(events)
    r = replay(events, "first", "tiny", memory, slots=slots)
    p = heap_picture(slots, "first", "tiny", memory, r["footprint_bytes"], width=50, height=40, samples=20)
    assert p.raster.shape == (40, 50) and p.raster.any() and p.raster.max() < len(p.class_edges)
    assert len(p.sample_ops) == 20 and (np.diff(p.footprint) >= 0).all()  # a high-water mark never drops
    assert p.footprint[-1] == r["footprint_bytes"] and (p.live <= p.footprint).all()


def test_command_line_table_json_and_plots(tmp_path, capsys):
    assert main(["heap", "replay", "tiny", "--ops", "3000", "--policy", "tlsf,worst"]) == 0
    out = capsys.readouterr().out
    assert "tiny: 3,000 operations" in out and "worst" in out and max(map(len, out.splitlines())) <= 80
    assert main(["heap", "replay", "mix", "--ops", "2000", "--policy", "buddy,best", "--json",
                 "--plot", str(tmp_path / "p")]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [list(r) for r in rows] == [list(FIELDS)] * 2 and [r["policy"] for r in rows] == ["buddy", "best"]
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["footprint.png", "heapmap-best.png",
                                                                   "heapmap-buddy.png"]
    assert main(["heap", "replay", "tiny", "--ops", "100", "--policy", "buddy", "--plot", str(tmp_path / "p")]) == 1
    assert "heapmap-buddy.png exists: vm32 does not overwrite files" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["tiny", "--policy", "tlsf,fits"], "--policy 'fits'"),
    (["tiny", "--policy", "tlsf,tlsf"], "named twice"),
    (["tiny", "--ops", "0"], "--ops 0"),
    (["nothing.npz"], "nothing.npz: no such file"),
])
def test_command_line_errors(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["heap", "replay", *argv]) == 1
    assert message in capsys.readouterr().err


def test_bad_trace_and_sandmark_without_corpus(tmp_path, capsys, monkeypatch):
    bad = tmp_path / "bad.npz"
    np.savez(bad, version=np.int32(1), program=np.str_("x"), events=np.array([4, -1, -1], np.int32))
    assert main(["heap", "replay", str(bad)]) == 1
    assert capsys.readouterr().err == f"vm32: error: {bad}: event 2 frees handle 0, which was freed already\n"
    assert main(["heap", "replay", str(bad), "--ops", "5"]) == 1
    assert "--ops is for the synthetic traces" in capsys.readouterr().err
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("VM32_UM_CORPUS", raising=False)
    assert main(["heap", "replay", "sandmark"]) == 1
    assert "set VM32_UM_CORPUS" in capsys.readouterr().err


def test_record_allocs_then_replay(tmp_path, capsys):
    program = tmp_path / "demo.um"
    assert main(["um", "asm", str(PROGRAMS / "demo.uma"), "-o", str(program)]) == 0
    trace = tmp_path / "demo.npz"
    assert main(["um", "run", str(program), "--record-allocs", str(trace), "--backend", "classic"]) == 0
    assert "all checks passed" in capsys.readouterr().out
    events, name = alloctrace.load(trace)
    assert name == "demo.um" and (events >= 0).sum() > 200
    assert main(["heap", "replay", str(trace), "--policy", "recycler", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["trace"] == "demo.npz"
    assert main(["um", "run", str(program), "--record-allocs", str(trace)]) == 1
    assert "exists: vm32 does not overwrite files" in capsys.readouterr().err
    assert main(["um", "run", str(program), "--record-allocs", str(tmp_path / "x.npz"), "--backend", "paged"]) == 1
    assert capsys.readouterr().err == "vm32: error: --record-allocs runs on --backend flat, classic, jit, not paged\n"
    assert not (tmp_path / "x.npz").exists()
