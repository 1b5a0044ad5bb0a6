"""Which saved runs ``ampcore compare`` judges: the candidate and its baseline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ampcore.history.errors import UnusableInputError
from ampcore.history.matching import choose_baseline
from ampcore.history.ordering import run_number, undated_newest
from ampcore.history.paths import DEFAULT_STORAGE
from ampcore.history.storage import Problem, Run, load_history


@dataclass
class Selection:
    baseline: list[Run]
    candidate: Run
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class SelectionError(UnusableInputError):
    """No candidate or no baseline; carries the file problems met, for the diagnostics."""

    def __init__(self, message: str, problems: Sequence[Problem]) -> None:
        super().__init__(message)
        self.problems = list(problems)


def select_runs(paths: Sequence[str], baseline_last: int | None) -> Selection:
    """With two or more paths the last names the candidate and the others the baseline; with
    one or none the newest run of the storage is the candidate (see ``newest``)."""
    if len(paths) >= 2:
        return _explicit(paths, baseline_last)
    return _newest(paths, baseline_last or 1)


def _explicit(paths: Sequence[str], baseline_last: int | None) -> Selection:
    candidates, problems = load_history(paths[-1:])
    if len(candidates) != 1:
        raise SelectionError(f"the candidate {paths[-1]!r} must be exactly one readable saved "
                             f"run; it gives {len(candidates)}", problems)
    candidate = candidates[0]
    baseline, more = load_history(paths[:-1])
    problems += more
    baseline = [r for r in baseline if r.path.resolve() != candidate.path.resolve()]
    baseline = baseline[-baseline_last:] if baseline_last else baseline
    if not baseline:
        raise SelectionError("no readable baseline run", problems)
    return Selection(baseline, candidate, problems)


def _newest(paths: Sequence[str], last: int) -> Selection:
    runs, problems = load_history(paths)
    if runs:
        unusable = unusable_newer(runs[-1], runs, problems) + [
            Problem(r.path, "no valid 'datetime': the newest run of its directory cannot be "
                    "checked against the others' dates") for r in undated_newest(runs)]
        if unusable:
            reasons = "; ".join(f"{p.path}: {p.message}" for p in unusable)
            raise SelectionError(
                f"the newest saved run cannot be used ({reasons}); the gate does not fall back "
                "to the previous pair of runs: fix or remove that file, or name the baseline "
                "and candidate files explicitly", problems)
    if len(runs) < 2:
        where = ", ".join(paths) or DEFAULT_STORAGE
        raise SelectionError(f"need at least two readable saved runs in {where}; found "
                             f"{len(runs)}", problems)
    baseline, notes = choose_baseline(runs[:-1], runs[-1], last)
    if not baseline:
        raise SelectionError("no readable baseline run", problems)
    return Selection(baseline, runs[-1], problems, notes)


def unusable_newer(candidate: Run, runs: Sequence[Run],
                   problems: Sequence[Problem]) -> list[Problem]:
    """Files skipped whole (unreadable, interrupted) that were saved after the candidate:
    in its directory with a higher number (pytest-benchmark numbers its files NNNN_...; for
    an unnumbered candidate, a later name)."""
    read = {r.path for r in runs}
    directory = candidate.path.parent.resolve()
    found: dict[Path, list[str]] = {}
    for problem in problems:
        path = problem.path
        if (problem.severity == "error" and path not in read and _later(path, candidate.path)
                and path.parent.resolve() == directory):
            found.setdefault(path, []).append(problem.message)
    return [Problem(p, "; ".join(found[p])) for p in sorted(found)]


def _later(path: Path, candidate: Path) -> bool:
    number, candidate_number = run_number(path), run_number(candidate)
    if candidate_number is None:
        return path.name > candidate.name
    return number is not None and number > candidate_number
