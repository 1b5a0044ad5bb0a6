"""Merge the storages of scripts/gpu/gpu-trust.sh's lanes into one: ``ampcore.history.merge``,
run by the path gpu-trust.sh names.

    python scripts/merge-storages.py DEST SOURCE...   (= python -m ampcore.history.merge)
"""

import sys

from ampcore.history.merge import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
