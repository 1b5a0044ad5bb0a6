"""``python -m ampcore``: the command line."""

import sys

from ampcore.cli import main

sys.exit(main())
