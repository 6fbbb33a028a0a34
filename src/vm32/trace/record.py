"""Recording a trace: valgrind's lackey tool on a command, its output compressed to a file.

    record(["sort", "data.txt"], "sort.lackey.zst") -> RecordResult

valgrind writes lackey's lines (and its own ``==pid==`` messages, which the
reader skips) to a pipe; this process compresses what comes out of it as it
comes, into a file without a name that is linked in as the output at the end
(vm32.files.atomic_output, replace=False).  The command's own stdin, stdout and
stderr are left alone.  An existing output file is never overwritten, and an
interrupted, killed or failed recording leaves no file.
"""

from __future__ import annotations

import gzip
import lzma
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from vm32.errors import InvalidArgument, VM32Error
from vm32.files import atomic_output

PIPE_CHUNK = 1 << 20
COMPRESSIONS = {".zst": "zstd", ".gz": "gzip", ".xz": "xz"}


@dataclass
class RecordResult:
    """What a recording produced: the file, its sizes and the command's exit status."""

    path: Path
    text_bytes: int
    file_bytes: int
    exit_status: int


def valgrind_path() -> str:
    """The valgrind executable; InvalidArgument with what to do if there is none."""
    path = shutil.which("valgrind")
    if path is None:
        raise InvalidArgument("valgrind is not installed, and vm32 trace record runs it to record the "
                              "trace: install it (e.g. apt-get install valgrind) and try again")
    return path


def compression_of(path: Path) -> str:
    """The compression the output name asks for: by its suffix, zstd for any other name."""
    return COMPRESSIONS.get(path.suffix, "zstd")


def _compressor(kind: str, raw):
    if kind == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6)
    if kind == "xz":
        return lzma.LZMAFile(raw, mode="wb", preset=1)
    try:
        import zstandard
    except ImportError:
        raise InvalidArgument("writing a .zst trace needs the zstandard package (pip install zstandard), "
                              "or name the output .gz or .xz") from None
    return zstandard.ZstdCompressor(level=9).stream_writer(raw, closefd=False)


def record(command: list[str], output: str | os.PathLike) -> RecordResult:
    """Run `command` under valgrind lackey and store its memory trace, compressed, at `output`.

    Raises InvalidArgument if valgrind is missing, the command is empty or the
    output exists or cannot be written; VM32Error if valgrind fails to start the
    command (the command's own exit status is returned, not raised).
    """
    if not command:
        raise InvalidArgument("no command to record: give it after --, e.g. vm32 trace record -- ls /")
    out = Path(output)
    if out.exists():
        raise InvalidArgument(f"{out} exists: vm32 does not overwrite files; choose another --output or remove it")
    if not out.parent.is_dir():
        raise InvalidArgument(f"cannot write {out}: directory {out.parent} does not exist")
    valgrind = valgrind_path()
    kind = compression_of(out)
    read_end, write_end = os.pipe()
    proc = None
    try:
        with atomic_output(out, replace=False) as raw:
            sink = _compressor(kind, raw)
            args = [valgrind, "--tool=lackey", "--trace-mem=yes", f"--log-fd={write_end}", *command]
            try:
                proc = subprocess.Popen(args, pass_fds=(write_end,))
            except OSError as e:
                raise VM32Error(f"cannot start valgrind: {e.strerror}") from None
            os.close(write_end)
            write_end = -1
            text_bytes = _drain(read_end, sink)
            read_end = -1
            status = proc.wait()
            sink.close()
            if text_bytes == 0:
                raise VM32Error(f"valgrind could not run {command[0]!r} (exit status {status}): nothing was "
                                "recorded")
        return RecordResult(out, text_bytes, out.stat().st_size, status)
    finally:
        if proc is not None and proc.poll() is None:  # interrupted: stop valgrind and its command
            proc.terminate()
            proc.wait()
        for end in (read_end, write_end):
            if end >= 0:
                os.close(end)


def _drain(fd: int, sink) -> int:
    """Copy everything from pipe `fd` to `sink` until the writers close it; closes fd;
    returns the bytes copied."""
    total = 0
    with os.fdopen(fd, "rb", buffering=0) as pipe:
        while chunk := pipe.read(PIPE_CHUNK):
            sink.write(chunk)
            total += len(chunk)
    return total
