"""``python -m virtbench``: the command line."""

import sys

from virtbench.cli import main

sys.exit(main())
