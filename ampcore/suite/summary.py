"""The notes under the suite's session summary: how steps were timed, what was not measured,
and each run's held-out accuracy (per training seed when there are several)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ampcore.options.settings import Settings
    from ampcore.train.result import RunResult


class SessionView(Protocol):
    """What the notes read of a session (``suite.session.SuiteSession`` provides it)."""

    options: Settings
    interrupted: bool
    results: dict[tuple[str, str], RunResult]
    seed_results: dict[tuple[str, str, int], RunResult]

    @property
    def cuda_graphs(self) -> bool: ...
    @property
    def on_gpu(self) -> bool: ...
    @property
    def timing_enabled(self) -> bool: ...
    @property
    def timing_disabled_reason(self) -> str: ...
    def unused_options(self) -> str | None: ...


def session_notes(session: SessionView) -> list[str]:
    if session.cuda_graphs:
        steps = "each captured in a CUDA graph and replayed (--amp-cuda-graphs off: eager)"
    else:
        steps = "eager"
        if session.on_gpu:
            steps += " (--amp-cuda-graphs on: captured in CUDA graphs)"
    notes = [f"Training steps: {steps}.",
             "Speedups with an interval are ratios of median round times with bootstrap 95% "
             "CIs; the others are ratios of total training times."]
    if session.options.processes > 1:
        notes.append(f"Each run trained in {session.options.processes} fresh processes, each "
                     "round's time the median over them (--amp-processes).")
    if not session.timing_enabled:
        notes.append(f"Speedup intervals not computed: {session.timing_disabled_reason}.")
    unused = session.unused_options()
    if unused:
        from ampcore.history.output import md_escape

        notes.append(f"Note: {md_escape(unused)}.")  # a path is the user's text: no HTML
    if session.interrupted:
        notes.append("Interrupted: these are the runs that finished (partial); a saved "
                     "benchmark file is marked incomplete, and ampcore compare and report "
                     "skip it.")
    return notes + seed_notes(session.results, session.seed_results)


def seed_notes(results: dict[tuple[str, str], RunResult],
               seed_results: dict[tuple[str, str, int], RunResult]) -> list[str]:
    """Held-out accuracy of every run, per training seed when there are several."""
    from ampcore.judge.gates import seed_spread

    notes = []
    for (workload, precision), run in results.items():
        extra = [r for (w, p, _), r in sorted(seed_results.items())
                 if (w, p) == (workload, precision)]
        if run.heldout_samples or extra:
            runs = [run, *extra]
            label = f"over {len(runs)} seeds" if extra else "held-out accuracy"
            notes.append(f"{run.name} {label} ({run.heldout_samples} held-out samples): "
                         f"{seed_spread(runs)}.")
    return notes
