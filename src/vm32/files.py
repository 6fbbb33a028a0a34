"""Files vm32 creates: temporary files that cannot outlive the process, and output files that
appear under their name only once complete.

* `temporary_file(directory)`: an open read-write file without a name (Linux O_TMPFILE, or a
  named file unlinked at once).  The host frees its blocks when the last descriptor and
  mapping go, however the process ends: SIGKILL and the OOM killer included.  Swap files and
  program images use it.
* `atomic_output(path)`: a binary file to write `path` through.  It has no name (or a hidden
  temporary one) until the ``with`` block ends normally, and then takes the name `path`,
  replacing an existing file in one step; on an exception (Ctrl-C included) it is removed.
  A reader never sees a half-written file, and a failed run never destroys the old one.
  `atomic_output(path, replace=False)` never replaces a file: the name is linked in only if
  it is still free at the end (an existing file is refused at once, one that appears meanwhile
  at the end; the link itself decides, so there is no window between a check and a rename).

This module imports nothing compiled: it is part of the base layer.
"""

from __future__ import annotations

import errno
import os
import tempfile
from contextlib import contextmanager
from typing import BinaryIO, Iterator

from vm32.errors import InvalidArgument

_NO_TMPFILE = (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL)  # the filesystem or kernel lacks O_TMPFILE


def temporary_file(directory: str | os.PathLike | None = None, prefix: str = "vm32-") -> int:
    """A descriptor of a new empty read-write file without a name in `directory` (default: the
    temporary directory).  OSError if the directory cannot hold one."""
    directory = os.fspath(directory) if directory is not None else tempfile.gettempdir()
    fd = _open_unnamed(directory, os.O_RDWR)
    if fd >= 0:
        return fd
    fd, path = tempfile.mkstemp(prefix=prefix, dir=directory)
    os.unlink(path)
    return fd


def _open_unnamed(directory: str, access: int) -> int:
    """An O_TMPFILE descriptor in `directory`, or -1 where the host has none."""
    flag = getattr(os, "O_TMPFILE", 0)
    if not flag:
        return -1
    try:
        return os.open(directory, flag | access | os.O_CLOEXEC, 0o600)
    except OSError as e:
        if e.errno in _NO_TMPFILE:
            return -1
        raise


@contextmanager
def atomic_output(path: str | os.PathLike, *, replace: bool = True) -> Iterator[BinaryIO]:
    """Write `path` through the yielded binary file: it gets its name only when the block
    ends without an exception (see the module note).  InvalidArgument naming `path` if its
    directory cannot hold it, or (`replace` False) if a file of that name exists."""
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."
    if os.path.isdir(path):
        raise InvalidArgument(f"cannot write {path}: it is a directory")
    if not replace and os.path.lexists(path):
        raise InvalidArgument(f"{path} exists: vm32 does not overwrite files")
    try:
        fd = _open_unnamed(directory, os.O_WRONLY)
        temp = None
        if fd < 0:
            fd, temp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".vm32-tmp", dir=directory)
    except OSError as e:
        raise InvalidArgument(f"cannot write {path}: {e.strerror}") from None
    f = os.fdopen(fd, "wb")
    try:
        yield f
        f.flush()
        os.fchmod(f.fileno(), 0o666 & ~_umask())
        _give_name(f.fileno(), temp, path, replace)
        temp = None
    except OSError as e:
        raise InvalidArgument(f"cannot write {path}: {e.strerror}") from None
    finally:
        try:
            f.close()
        except OSError:  # the write error is already on its way up
            pass
        if temp is not None:
            os.unlink(temp)


def _give_name(fd: int, temp: str | None, path: str, replace: bool) -> None:
    """Name the finished file `path`: rename `temp`, or link the unnamed file (through a
    temporary name when `path` exists, so the old file is replaced in one step).  Without
    `replace` only a link, which refuses a `path` that exists (InvalidArgument)."""
    if not replace:
        try:
            if temp is not None:
                os.link(temp, path)
                os.unlink(temp)
            else:
                _link(fd, path)
        except FileExistsError:
            raise InvalidArgument(f"{path} appeared while it was being written: vm32 does not overwrite "
                                  "files") from None
        return
    if temp is not None:
        os.replace(temp, path)
        return
    try:
        _link(fd, path)
        return
    except FileExistsError:
        pass
    directory, name = os.path.split(path)
    for attempt in range(100):
        temp = os.path.join(directory, f".{name}.vm32-tmp{os.getpid()}-{attempt}")
        try:
            _link(fd, temp)
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(errno.EEXIST, "no free temporary name", path)
    try:
        os.replace(temp, path)
    except BaseException:
        os.unlink(temp)
        raise


def _link(fd: int, path: str) -> None:
    """Give the unnamed file open as `fd` the name `path` (linkat through /proc/self/fd; a
    plain link() would link the /proc symlink itself)."""
    fds = os.open("/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.link(str(fd), path, src_dir_fd=fds, follow_symlinks=True)
    finally:
        os.close(fds)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
