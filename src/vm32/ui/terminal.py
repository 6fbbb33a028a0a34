"""Terminal plumbing shared by the commands: a status line redrawn in place, and output
streams that keep clear of it.

    StatusLine        one line on a terminal (stderr), redrawn a few times a second
    TerminalOutput    a binary stream that clears the status line around each write
    LinePrefixWriter  whole lines of one of several writers, each tagged with a prefix
"""

from __future__ import annotations

import io
import sys
import threading
import time
from typing import BinaryIO


def isatty(stream) -> bool:
    """True if `stream` is a terminal (False for None, a closed or a non-file stream)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


class StatusLine:
    """A single line redrawn in place on a terminal stream (stderr by default), rendered by rich.

    Disabled (every call a no-op) unless the stream is a terminal.  `hold()` /
    `release(at_line_start)` let a writer that shares the terminal clear the line
    before it writes and say whether the line may be drawn again after it.
    """

    def __init__(self, stream=None, *, enabled: bool | None = None, min_interval: float = 0.2):
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            enabled = isatty(self.stream)
        self.enabled = bool(enabled)
        self.min_interval = min_interval
        self._shown = False
        self._blocked = False  # a partial output line is on the terminal: do not draw under it
        self._last = 0.0
        self._text = None
        self._lock = threading.RLock()
        if self.enabled:
            from rich.console import Console

            self._console = Console(file=self.stream, highlight=False)

    def shares_terminal_with(self, stream) -> bool:
        """True if the line is drawn (on a terminal) and `stream` is a terminal too."""
        return self.enabled and isatty(stream)

    def show(self, text, *, force: bool = False) -> None:
        """Draw `text` (str or rich Text), at most every `min_interval` seconds unless `force`."""
        if not self.enabled:
            return
        with self._lock:
            self._text = text
            now = time.monotonic()
            if self._blocked or (not force and now - self._last < self.min_interval):
                return
            self._last = now
            self._draw()

    def _draw(self) -> None:
        from rich.text import Text

        text = self._text if isinstance(self._text, Text) else Text(str(self._text))
        text = text.copy()
        text.truncate(max(self._console.width - 1, 10), overflow="ellipsis")
        try:
            self.stream.write("\r\x1b[2K")
            self._console.print(text, end="", soft_wrap=True)
            self.stream.flush()
            self._shown = True
        except (OSError, ValueError):
            self.enabled = False

    def clear(self) -> None:
        """Erase the line (before other output, and at the end)."""
        if not self.enabled:
            return
        with self._lock:
            if self._shown:
                try:
                    self.stream.write("\r\x1b[2K")
                    self.stream.flush()
                except (OSError, ValueError):
                    self.enabled = False
                self._shown = False

    def hold(self) -> None:
        """A writer is about to write to the same terminal: erase the line first."""
        with self._lock:
            self.clear()
            self._blocked = True

    def release(self, at_line_start: bool) -> None:
        """The writer is done; the line may be drawn again if the cursor is at a line start."""
        with self._lock:
            self._blocked = not at_line_start
            if at_line_start and self.enabled and self._text is not None:
                self._draw()


class TerminalOutput(io.RawIOBase):
    """A binary stream writing through to `stream`, clearing `status` around each write when
    both share a terminal (so program output and the status line never mix)."""

    def __init__(self, stream: BinaryIO, status: StatusLine):
        super().__init__()
        self._stream = stream
        self._status = status

    def writable(self) -> bool:  # noqa: D102 - io API
        return True

    def write(self, data) -> int:  # noqa: D102 - io API
        data = bytes(data)
        if not data:
            return 0
        self._status.hold()
        try:
            self._stream.write(data)
            self._stream.flush()
        finally:
            self._status.release(data.endswith(b"\n"))
        return len(data)

    def flush(self) -> None:  # noqa: D102 - io API
        self._stream.flush()


class LinePrefixWriter(io.RawIOBase):
    """Writes whole lines to a shared binary `stream`, each starting with `prefix`.

    A partial line waits for its end (or for `close`), so lines of several writers
    never interleave; `lock` serialises the writers.
    """

    def __init__(self, stream: BinaryIO, prefix: str, lock: threading.Lock, status: StatusLine | None = None):
        super().__init__()
        self._stream, self._prefix, self._lock = stream, prefix.encode(), lock
        self._status = status
        self._partial = b""

    def writable(self) -> bool:  # noqa: D102 - io API
        return True

    def write(self, data) -> int:  # noqa: D102 - io API
        data = self._partial + bytes(data)
        cut = data.rfind(b"\n") + 1
        self._partial = data[cut:]
        if cut:
            lines = data[:cut].splitlines(keepends=True)
            self._emit(b"".join(self._prefix + line for line in lines))
        return len(data)

    def _emit(self, data: bytes) -> None:
        with self._lock:
            if self._status is not None:
                self._status.hold()
            try:
                self._stream.write(data)
                self._stream.flush()
            finally:
                if self._status is not None:
                    self._status.release(True)

    def close(self) -> None:  # noqa: D102 - io API
        if self._partial:
            self._emit(self._prefix + self._partial + b"\n")
            self._partial = b""
        super().close()
