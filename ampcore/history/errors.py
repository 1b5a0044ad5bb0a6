"""Exit statuses of ``ampcore compare | report | calibrate`` and the errors that carry them.

``EXIT_STATUSES`` is the one table for the three commands: every command's ``--help`` shows
it (``EXIT_HELP``), and docs/HISTORY.md "Exit statuses" explains each status at length.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ampcore.core.errors import AmpcoreError, UsageError

EXIT_OK = 0
EXIT_REGRESSION = 1
EXIT_USAGE = 2
EXIT_UNUSABLE = 3
EXIT_MISMATCH = 4
EXIT_UNRELIABLE = 5
EXIT_INTERNAL = 70  # EX_SOFTWARE of sysexits.h

EXIT_STATUSES = (
    (EXIT_OK, "ok"),
    (EXIT_REGRESSION, "regression or benchmarks missing from the candidate"),
    (EXIT_USAGE, "usage error"),
    (EXIT_UNUSABLE, "unusable input or no baseline"),
    (EXIT_MISMATCH, "environment or comparison-key mismatch"),
    # an unstable run (round CV or probe spread above its limit), nothing else failed
    (EXIT_UNRELIABLE, "time verdicts unreliable (an unstable run)"),
    (EXIT_INTERNAL, "internal error"),  # a bug: a traceback is printed; never 1
)
EXIT_HELP = "Exit status: " + ", ".join(f"{code} {what}" for code, what in EXIT_STATUSES) + "."

__all__ = ["EXIT_HELP", "EXIT_INTERNAL", "EXIT_MISMATCH", "EXIT_OK", "EXIT_REGRESSION",
           "EXIT_STATUSES", "EXIT_UNRELIABLE", "EXIT_UNUSABLE", "EXIT_USAGE", "MismatchError",
           "Problem", "UnusableInputError", "UsageError"]


class UnusableInputError(AmpcoreError):
    """Nothing usable to analyse: no files, no readable run, no baseline, a bad config."""

    exit_code = EXIT_UNUSABLE


class MismatchError(AmpcoreError):
    """The runs cannot be compared: other hardware or software, or other measured work."""

    exit_code = EXIT_MISMATCH


@dataclass(frozen=True)
class Problem:
    """A file, or part of one, that could not be used; named in every output."""

    path: Path
    message: str
    # "error": (part of) the file was skipped; "warning": read anyway; "note": not a saved
    # run at all (other JSON in the storage), ignored
    severity: str = "error"

    def __str__(self) -> str:
        return f"{self.severity}: {self.path}: {self.message}"
