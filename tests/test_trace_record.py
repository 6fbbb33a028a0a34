"""vm32.trace.record: a real lackey recording, and the ways it must fail cleanly."""

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from vm32.errors import InvalidArgument, VM32Error
from vm32.trace import record as rec
from vm32.trace.readers import read_trace

needs_valgrind = pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")


@needs_valgrind
@pytest.mark.parametrize("name", ["true.lackey.zst", "true.lackey.gz"])
def test_record_true_reads_back(tmp_path, name):
    result = rec.record(["true"], tmp_path / name)
    assert result.exit_status == 0 and result.path.stat().st_size == result.file_bytes > 0
    trace = read_trace(result.path)
    assert trace.format == "lackey" and trace.refs > 10_000 and trace.writes.any()
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary file left


@needs_valgrind
def test_record_refuses_existing_output_and_bad_command(tmp_path):
    out = tmp_path / "t.zst"
    out.write_bytes(b"precious")
    with pytest.raises(InvalidArgument, match="does not overwrite"):
        rec.record(["true"], out)
    assert out.read_bytes() == b"precious"
    with pytest.raises(VM32Error, match="could not run 'no-such-command-vm32'"):
        rec.record(["no-such-command-vm32"], tmp_path / "u.zst")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.zst"]


@needs_valgrind
def test_an_output_that_appears_while_recording_is_kept(tmp_path):
    out = tmp_path / "t.zst"
    with pytest.raises(InvalidArgument, match="t.zst appeared while it was being written: vm32 does not overwrite"):
        rec.record(["sh", "-c", f"echo the command made it > {out}"], out)
    assert out.read_text() == "the command made it\n" and os.listdir(tmp_path) == ["t.zst"]


@needs_valgrind
def test_a_killed_recording_leaves_no_file(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "vm32", "trace", "record", "-o", tmp_path / "t.zst", "--",
                             "sh", "-c", "echo recording; sleep 30"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            start_new_session=True)
    try:
        assert proc.stdout.readline() == b"recording\n"  # valgrind runs the command: the output is open
        time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # valgrind and its command too
        proc.wait()
    assert os.listdir(tmp_path) == []


def test_missing_valgrind_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(rec.shutil, "which", lambda name: None)
    with pytest.raises(InvalidArgument, match="valgrind is not installed.*apt-get install valgrind"):
        rec.record(["true"], tmp_path / "t.zst")
    with pytest.raises(InvalidArgument, match="no command to record"):
        rec.record([], tmp_path / "t.zst")
