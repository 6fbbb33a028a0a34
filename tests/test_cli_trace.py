"""`vm32 trace sim|sweep|record` from the command line: the contract of its output (table,
FINALSTATS, --json/--csv fields, --explain lines) and one-line errors for bad input."""

import json
import shutil

import pytest

from vm32.cli import main

BELADY = "1,2,3,4,1,2,5,1,2,3,4,5"
FIELDS = ["policy", "frames", "refs", "misses", "cold_misses", "miss_ratio", "writebacks", "tlb_hit_rate",
          "refs_per_s"]


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_sim_explain_and_finalstats(capsys):
    status, out, err = run(capsys, "trace", "sim", "-a", BELADY, "--frames", "3", "--policy", "fifo", "--explain")
    assert status == 0 and err == ""
    lines = out.splitlines()
    step7 = next(ln for ln in lines if ln.lstrip().startswith("7 "))
    assert "TLB miss walk MISS (cold) evict 4 [the oldest page, loaded at step 4] -> [5 1 2]" in step7
    assert "FINALSTATS policy fifo frames 3 hits 3 misses 9 hitrate 25.00" in lines
    assert all(len(ln) <= 80 for ln in lines if not ln.startswith(" ") and not ln[:2].strip().isdigit())


def test_sim_table_json_csv(capsys):
    status, out, _ = run(capsys, "trace", "sim", "-a", "1,2w,3,1,2,3", "--frames", "2,3", "--policy", "fifo,lru")
    assert status == 0
    assert "FINALSTATS policy lru frames 3 hits 3 misses 3 hitrate 50.00" in out
    assert all(len(ln) <= 80 for ln in out.splitlines())
    status, out, _ = run(capsys, "trace", "sim", "-a", "1,2w,3,1,2,3", "--frames", "2,3", "--policy", "fifo,lru",
                         "--json")
    rows = json.loads(out)
    assert [list(r) for r in rows] == [FIELDS] * 4
    assert [(r["policy"], r["frames"], r["misses"]) for r in rows] == [
        ("fifo", 2, 6), ("fifo", 3, 3), ("lru", 2, 6), ("lru", 3, 3)]
    assert rows[0]["writebacks"] == 1
    status, out, _ = run(capsys, "trace", "sim", "-a", "1,2,1", "--frames", "1", "--csv", "--tlb", "0")
    header, row = out.splitlines()
    assert header.split(",") == FIELDS
    assert row.startswith("clock,1,3,3,2,1.0,0,,")  # no TLB: its hit rate is empty


def test_sweep_prints_and_plots(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    status, out, _ = run(capsys, "trace", "sweep", "-a", BELADY, "--frames", "1:6:1", "--policy", "fifo,lru",
                         "--plot", str(tmp_path / "plots"), "--jobs", "1")
    assert status == 0
    assert (tmp_path / "plots" / "miss_ratio.png").stat().st_size > 1000
    assert "plot: " in out
    status, _, err = run(capsys, "trace", "sweep", "-a", BELADY, "--frames", "3", "--plot", str(tmp_path / "plots"))
    assert status == 1 and "miss_ratio.png exists" in err
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["miss_ratio.png"]


@pytest.mark.parametrize("argv, message", [
    (["sim", "{empty}"], "the trace is empty"),
    (["sim", "{bad}", "--format", "pages"], "bad.trace, line 2: malformed line in a pages trace: 'x'"),
    (["sim", "-a", "1,2", "--frames", "0"], "--frames 0: a frame count must be at least 1"),
    (["sim", "-a", "1,2", "--policy", "belady"], "--policy belady: unknown replacement policy 'belady'"),
    (["sim", "{good}", "--format", "csv"], "unknown trace format 'csv'"),
    (["sim", "-a", "1,2", "--tlb", "3"], "--tlb 3: must be 0 (no TLB) or a power of two"),
    (["sweep", "-a", "1,2", "--tlb", "6"], "--tlb 6: must be 0 (no TLB) or a power of two"),
    (["sim", "-a", "1,x"], "-a: 'x' is not a page number"),
    (["sim"], "no trace"),
    (["sim", "{missing}"], "cannot open trace file"),
    (["sim", "{wide}", "--format", "pages"], "page number too large"),
    (["sweep", "-a", "1,2", "--jobs", "0"], "--jobs must be at least 1"),
])
def test_bad_input_is_one_error_line(capsys, tmp_path, argv, message):
    files = {"empty": "", "bad": "1\nx\n", "good": "1\n", "wide": "4503599627370496\n"}
    for name, text in files.items():
        (tmp_path / f"{name}.trace").write_text(text)
    argv = [a.format(**{n: str(tmp_path / f"{n}.trace") for n in files}, missing=str(tmp_path / "nope"))
            for a in argv]
    status, out, err = run(capsys, "trace", *argv)
    assert status == 1
    assert err.count("\n") == 1 and err.startswith("vm32: error: ") and message in err


def test_record_without_valgrind(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    status, _, err = run(capsys, "trace", "record", "-o", str(tmp_path / "t.zst"), "--", "true")
    assert status == 1 and err.startswith("vm32: error: valgrind is not installed")
    assert list(tmp_path.iterdir()) == []


def test_user_policy_from_the_command_line(capsys):
    status, out, _ = run(capsys, "trace", "sim", "-a", "1,2,3,1,4,2", "--frames", "2", "--policy",
                         "user_policy:MRU", "--explain")
    assert status == 0
    assert "evict 2 [the most recently used page] -> [1 3]" in out
    assert "FINALSTATS policy mru frames 2 hits 1 misses 5 hitrate 16.67" in out


def test_sim_table_fits_80_columns_with_large_figures():
    from vm32.trace.sim import SimResult
    from vm32.ui.trace import table

    big = SimResult("clock-clear", 1 << 20, 123_456_789_012, 98_765_432_109, 1_048_576, 0.8, 12_345_678_901,
                    0.97351, 1.5e9, tlb=1024)
    small = SimResult("fifo", 3, 12, 9, 5, 0.75, None, None, 0.0)
    lines = table([big, small]).splitlines()
    assert all(len(line) <= 80 for line in lines), lines
    assert lines[2].split() == ["clock-clear", "1.0M", "123G", "98.8G", "1.0M", "80.0%", "12.3G", "97.4%", "1500.0"]
    assert lines[3].split() == ["fifo", "3", "12", "9", "5", "75.0%", "-", "-", "0.0"]  # one decimal, as everywhere


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_record_json_is_the_last_line_of_stderr(capsys, tmp_path):
    out = tmp_path / "true.lackey.zst"
    status, stdout, err = run(capsys, "trace", "record", "--json", "-o", str(out), "--", "true")
    doc = json.loads(err.splitlines()[-1])
    assert status == 0 and stdout == ""
    assert doc == dict(path=str(out), text_bytes=doc["text_bytes"], file_bytes=out.stat().st_size, exit_status=0)
    assert doc["text_bytes"] > doc["file_bytes"] > 0
