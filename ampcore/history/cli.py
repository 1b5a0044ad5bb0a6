"""Subcommands over saved histories (compare, report, calibrate)."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction) -> None:
    """Add the history subcommands to ``ampcore``'s parser."""
