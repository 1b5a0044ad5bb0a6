"""Exit statuses of ``ampcore compare | report | calibrate`` and the errors that carry them.

One table for the three commands:

    0  ok: nothing regressed (or nothing to judge for report and calibrate)
    1  a regression, or benchmarks of the baseline missing from the candidate
    2  usage error: an invalid option or output path
    3  unusable input: nothing readable, no baseline, the newest run unreadable, a bad config
    4  environment or comparison-key mismatch: the runs measured other hardware or other work
    5  unreliable: a run's timing was unstable (round CV or probe spread above its limit), so
       its time verdicts are neither a pass nor a regression; nothing else failed
    70 internal error: a bug in ampcore (a traceback is printed); never 1
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

__all__ = ["EXIT_INTERNAL", "EXIT_MISMATCH", "EXIT_OK", "EXIT_REGRESSION", "EXIT_UNRELIABLE", "EXIT_UNUSABLE",
           "EXIT_USAGE", "MismatchError", "Problem", "UnusableInputError", "UsageError"]


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
