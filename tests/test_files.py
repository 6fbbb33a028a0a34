"""vm32.files: temporary files without a name, and output files named only once complete."""

import os

import pytest

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


def _umask() -> int:
    mask = os.umask(0o22)
    os.umask(mask)
    return mask
