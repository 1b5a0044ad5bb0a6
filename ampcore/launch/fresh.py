"""One run trained in N fresh processes, one after another, merged into one ``RunResult``
(``--processes N``, ``--amp-processes N``).

Why: a fresh process's host speed is a draw of its own, and an eager round measures
max(host, GPU). No setting inside one process removes that offset; more
processes average it out, as pyperf's worker processes do.

Merge semantics (every process trains the same plan, seed and data, so round i is the same
work in each; ``merge_process_results``, a pure function):

- round i's time is the median over the processes of their round i: a process whose host
  is slow moves no round once there are three or more;
- the step probe's host and eager step times are merged the same way, step by step; the
  counters (exact) are the first process's, and ``merged.consistent`` says whether every
  process counted the same;
- accuracy, losses, predictions and memory are the first process's; ``merged``
  (``ampcore.train.merged.MergedRun``, ``"fresh"``) keeps each process's own figures (round
  times, median step time, held-out accuracy), ``config["processes"]`` their number.

Each process is ``python -m ampcore.launch.fresh --out DIR`` on a run directory of
``ampcore.launch.protocol``: the spec in, the result or the error file out.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ampcore.core.errors import AmpcoreError, UnsupportedPrecisionError, UsageError
from ampcore.launch.processes import check_before_launch, stream_process
from ampcore.launch.protocol import (
    ERROR_FILE, exit_code_of, read_error_file, read_result, read_spec, write_error_file,
    write_result, write_spec,
)
from ampcore.train.merged import MergedRun
from ampcore.train.result import RunResult
from ampcore.train.run import run_experiment
from ampcore.train.spec import RunSpec

MODULE = "ampcore.launch.fresh"


class FreshProcessError(AmpcoreError):
    """A fresh worker process failed; the message names the process and its error."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _medians(series: Sequence[Sequence[float]]) -> list[float]:
    return [statistics.median(values) for values in zip(*series, strict=True)]


def _merged_probe(results: Sequence[RunResult]) -> tuple[dict, bool]:
    """The first process's step probe with host and eager step times merged step by step,
    and whether every process counted the same."""
    probes = [r.step_probe for r in results]
    merged = dict(probes[0])
    for key, median_key in (("host_step_s", "host_step_median_s"),
                            ("eager_step_s", "eager_step_median_s")):
        series = [p.get(key) or [] for p in probes]
        if all(series) and len({len(s) for s in series}) == 1:
            merged[key] = _medians(series)
            merged[median_key] = statistics.median(merged[key])
    kernels = [p.get("kernel_time_per_step") or {} for p in probes]
    if all(kernels):  # times, not counts: the median per kernel
        names = {name for times in kernels for name in times}
        merged["kernel_time_per_step"] = {
            n: statistics.median(times.get(n, 0.0) for times in kernels) for n in sorted(names)}
    counted = [{k: v for k, v in p.items()
                if k.endswith("_per_step") and k != "kernel_time_per_step"} for p in probes]
    return merged, all(c == counted[0] for c in counted)


def merge_process_results(results: Sequence[RunResult]) -> RunResult:
    """One ``RunResult`` from the runs of one spec in fresh processes, in the order they ran."""
    if not results:
        raise UsageError("merging fresh processes needs at least one result")
    first = results[0]
    plans = {(r.name, tuple(r.samples_per_round)) for r in results}
    if len(plans) != 1:
        raise AmpcoreError(f"the fresh processes trained different plans: {sorted(plans)}; "
                           "their rounds cannot be merged")
    probe, consistent = _merged_probe(results)
    return dataclasses.replace(
        first, config=dataclasses.replace(first.run_config, processes=len(results)).to_dict(),
        round_times_s=_medians([r.round_times_s for r in results]), step_probe=probe,
        merged=MergedRun("fresh", tuple(r.as_part() for r in results), consistent))


def run_in_fresh_processes(spec: RunSpec, processes: int, progress: bool = False,
                           timeout_s: float | None = None) -> RunResult:
    """Train ``spec`` in ``processes`` fresh processes, one after another; the merged result.
    What the parent can check (ids, profile, precision on the device) it checks first."""
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise UsageError(f"--processes must be a whole number, at least 1; got {processes!r}")
    check_before_launch(spec)
    return merge_process_results([_run_one(spec, i, processes, progress, timeout_s)
                                  for i in range(processes)])


def _run_one(spec: RunSpec, index: int, processes: int, progress: bool,
             timeout_s: float | None) -> RunResult:
    what = f"fresh process {index + 1} of {processes} for {spec.workload}/{spec.precision}"
    with tempfile.TemporaryDirectory(prefix="ampcore-fresh-") as tmp:
        out = Path(tmp)
        write_spec(spec, out)
        command = [sys.executable, "-m", MODULE, "--out", str(out)]
        returncode, tail = stream_process(command + (["--progress"] if progress else []),
                                          dict(os.environ), timeout_s, what,
                                          timeout_error=FreshProcessError)
        result = read_result(out) if returncode == 0 else None
        if result is not None:
            return result
        raise _failure(what, returncode, out / ERROR_FILE, tail)


def _failure(what: str, returncode: int, error_file: Path, tail: str) -> AmpcoreError:
    failure = read_error_file(error_file)
    if failure is None:  # a crash, a signal: the output's tail says what happened
        last = "\n".join(tail.strip().splitlines()[-15:]) or "(no output)"
        return FreshProcessError(f"{what} exited with code {returncode}; its output ended:\n"
                                 f"{last}", returncode if returncode > 0 else 1)
    if failure.unsupported:  # a layer the mode cannot take: a skip, as in-process
        return UnsupportedPrecisionError(*failure.unsupported)
    return FreshProcessError(f"{what} failed: {failure.error}: {failure.message}",
                             failure.exit_code)


def main(argv: list[str] | None = None) -> int:
    """A worker: train the spec in ``--out`` once and write its result, or its error, there."""
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        result = run_experiment(read_spec(args.out), progress=args.progress)
    except AmpcoreError as exc:
        write_error_file(args.out / ERROR_FILE, exc)
        print(f"error: {exc}", file=sys.stderr)
        return exit_code_of(exc)
    write_result(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
