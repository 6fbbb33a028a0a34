"""`python -m vm32.cli`: the `vm32` command."""

import sys

from vm32.cli import main

sys.exit(main())
