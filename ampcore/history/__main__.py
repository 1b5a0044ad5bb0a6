"""``python -m ampcore.history compare|report|calibrate``: the history subcommands alone.

Same commands, options and exit statuses as ``ampcore compare`` etc.; this entry point only
skips building the training options of ``ampcore run``, which import torch (about 3 s on a
2-core runner)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ampcore.history import cli, parsers


def main(argv: Sequence[str] | None = None) -> int:
    from ampcore import __version__

    parser = argparse.ArgumentParser(prog="python -m ampcore.history", description=__doc__)
    parser.add_argument("--version", action="version", version=f"ampcore {__version__}")
    cli.register(parser.add_subparsers(dest="command", required=True))
    parsers.plain_help(parser)
    return cli.dispatch(parser, argv)


if __name__ == "__main__":
    sys.exit(main())
