"""`python -m vm32.cli`: the `vm32` command."""

import signal
import sys

signal.signal(signal.SIGINT, signal.SIG_DFL)  # until main() handles it: Ctrl-C during start-up, no traceback

from vm32.cli import main  # noqa: E402

status = main()
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(s, signal.SIG_IGN)  # the command is over: let the interpreter exit with its status
sys.exit(status)
