import sys

from ampcore.cli import main

sys.exit(main())
