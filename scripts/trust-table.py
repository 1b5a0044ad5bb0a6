"""``python3 scripts/trust-table.py STORE_ROOT``: the path scripts/gpu/gpu-trust.sh names for
scripts/tables/trust_table.py (= ``python -m scripts.tables.trust_table STORE_ROOT``)."""

import sys

from tables.trust_table import main  # scripts/ is sys.path[0] when run as a file

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
