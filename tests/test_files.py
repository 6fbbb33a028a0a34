"""vm32.files: temporary files without a name, and output files named only once complete."""

import os
import signal
import subprocess
import sys

import pytest

from vm32 import files
from vm32.errors import InvalidArgument
from vm32.files import atomic_output, temporary_file


def test_a_temporary_file_has_no_name(tmp_path):
    fd = temporary_file(tmp_path)
    try:
        os.write(fd, b"data")
        assert os.listdir(tmp_path) == [] and os.pread(fd, 4, 0) == b"data"
    finally:
        os.close(fd)


def test_an_output_is_named_when_complete(tmp_path):
    path = tmp_path / "out.bin"
    with atomic_output(path) as f:
        f.write(b"part")
        assert not path.exists() and os.listdir(tmp_path) == []
        f.write(b" two")
    assert path.read_bytes() == b"part two" and os.listdir(tmp_path) == ["out.bin"]
    assert path.stat().st_mode & 0o777 == 0o666 & ~_umask()


def test_an_output_replaces_the_old_file_only_when_complete(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(path) as f:
            f.write(b"new, half")
            raise KeyboardInterrupt
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["out.bin"]
    with atomic_output(path) as f:
        f.write(b"new")
    assert path.read_bytes() == b"new" and os.listdir(tmp_path) == ["out.bin"]


def test_an_output_that_cannot_be_written_names_its_path(tmp_path):
    with pytest.raises(InvalidArgument, match="missing/out.bin"):
        with atomic_output(tmp_path / "missing" / "out.bin"):
            pass
    with pytest.raises(InvalidArgument, match="is a directory"):
        with atomic_output(tmp_path):
            pass


@pytest.mark.parametrize("unnamed", [True, False], ids=["O_TMPFILE", "named-temporary"])
def test_a_no_replace_output_never_replaces_a_file(tmp_path, monkeypatch, unnamed):
    if not unnamed:  # a host without O_TMPFILE: a hidden named temporary, linked in at the end
        monkeypatch.setattr(files, "_open_unnamed", lambda directory, access: -1)
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    with pytest.raises(InvalidArgument, match="out.bin exists: vm32 does not overwrite files"):
        with atomic_output(path, replace=False):
            raise AssertionError("the block must not run")
    path.unlink()
    with pytest.raises(InvalidArgument, match="out.bin appeared while it was being written"):
        with atomic_output(path, replace=False) as f:
            f.write(b"new")
            path.write_bytes(b"another writer's")
    assert path.read_bytes() == b"another writer's" and os.listdir(tmp_path) == ["out.bin"]
    path.unlink()
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(path, replace=False) as f:
            f.write(b"half")
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []
    with atomic_output(path, replace=False) as f:
        f.write(b"new")
    assert path.read_bytes() == b"new" and os.listdir(tmp_path) == ["out.bin"]
    assert path.stat().st_mode & 0o777 == 0o666 & ~_umask()


@pytest.mark.parametrize("replace", [True, False])
def test_a_killed_writer_leaves_nothing(tmp_path, replace):
    path = tmp_path / "out.bin"
    code = (f"import sys, time\nfrom vm32.files import atomic_output\n"
            f"with atomic_output({str(path)!r}, replace={replace}) as f:\n"
            f"    f.write(b'half'); f.flush(); print('writing', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"writing\n"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert os.listdir(tmp_path) == []


def _umask() -> int:
    mask = os.umask(0o22)
    os.umask(mask)
    return mask
