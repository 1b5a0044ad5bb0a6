"""Which saved benchmarks may be compared, the baseline runs of a candidate, and the fp32
benchmark a speedup is measured against.

Two benchmarks are comparable when they measured the same work (``measured_key``); their runs,
when ``ampcore.history.environments`` finds the same hardware and step settings (a software
upgrade is compared and named there).
"""

from __future__ import annotations

from collections.abc import Sequence

from ampcore.core.registry import REFERENCE_PRECISION
from ampcore.history.environments import fingerprint, same_environment
from ampcore.history.storage import Benchmark, Run
from ampcore.judge.record import BenchmarkRecord


# The workload configuration that decides how much work a round does; learning rate, seed,
# rounds or warm-up steps change the numbers only by noise (or not at all). ``image_size``: a
# torchvision family's input side (None in runs of other workloads, and before it existed).
MEASURED_CONFIG = ("max_length", "batch_size", "epochs", "train_samples", "test_samples",
                   "image_size", "cuda_graphs", "compile")
# A run with injected regressions is compared as a candidate (that is how a team measures what
# its gate detects) but never serves as a baseline.
INJECTIONS = "injections"


# --- runs: the environment --------------------------------------------------------------------


def choose_baseline(earlier: Sequence[Run], candidate: Run,
                    last: int = 1) -> tuple[list[Run], list[str]]:
    """The last ``last`` runs before the candidate, preferring runs measured on the candidate's
    hardware and step settings (so one storage can hold several runners; the last run before
    an upgrade is its baseline) and, among those, runs with a benchmark that measured the
    same work; if none matches, the plain last runs, which the environment and measured-work
    checks will then refuse."""
    same_env = [r for r in earlier if same_environment(r, candidate, software=False)]
    same_work = [r for r in same_env if _measures_alike(r, candidate)]
    chosen = (same_work or same_env or list(earlier))[-last:]
    # ``earlier`` is in saved order (ampcore.history.ordering): the runs after the first chosen
    newer = list(earlier[[id(r) for r in earlier].index(id(chosen[0])) + 1:]) if chosen else []
    other_env = [r for r in newer if r not in same_env] if same_env else []
    other_work = [r for r in newer if r in same_env and r not in same_work] if same_work else []
    notes = [f"skipped {len(runs)} more recent run(s) {why}: "
             + ", ".join(r.path.name for r in runs) for runs, why in ((other_env, "measured on another environment"),
                               (other_work, "that measured other work")) if runs]
    return chosen, notes


def _measures_alike(run: Run, candidate: Run) -> bool:
    """Some benchmark of ``run`` may be the baseline of the candidate's."""
    return any(not key_differences(run.benchmarks[k].record, bench.record)
               for k, bench in candidate.benchmarks.items() if k in run.benchmarks)


# --- runs: the libraries on the training path ----------------------------------------------


# --- benchmarks: what was measured ------------------------------------------------------------

def model_name(record: BenchmarkRecord) -> str | None:
    """The model trained, without the directory it was loaded from: one checkpoint in two
    runners' caches (``.gpu/models/x``, ``.gpu2/models/x``) is one model."""
    model = record.run_config.model
    if model:
        return model.rstrip("/").rsplit("/", 1)[-1]
    return record.weights_source


def measured_key(record: BenchmarkRecord | None) -> dict[str, object] | None:
    """What a benchmark measured, as opposed to how fast: records that differ here timed
    different work. None for a benchmark saved without a record (nothing to check)."""
    if record is None:
        return None
    key: dict[str, object] = {"workload": record.workload, "precision": record.precision,
                              "profile": record.profile, "model": model_name(record),
                              # pretrained or random initial weights: the same architecture
                              # trains alike, but its accuracy means something else
                              "random_init": not record.accuracy_meaningful}
    config = record.run_config
    key.update({name: getattr(config, name) for name in MEASURED_CONFIG})
    key.update(world_size=record.world_size, injections=record.injections)
    return key


def key_differences(baseline: BenchmarkRecord | None,
                    candidate: BenchmarkRecord | None) -> list[str]:
    """Why ``baseline`` cannot be the baseline of ``candidate``: each differing field, and
    injected regressions in the baseline. Empty when they may be compared."""
    base, cand = measured_key(baseline), measured_key(candidate)
    if base is None or cand is None:
        return []
    found = [f"{name} {base[name]!r} vs {cand[name]!r}" for name in base
             if name != INJECTIONS and base[name] != cand[name]]
    if base[INJECTIONS]:
        found.append(f"the baseline has injected regressions {list(base[INJECTIONS])}")
    return found


def series_key(run: Run, bench: Benchmark) -> dict[str, object] | None:
    """What one line of ``ampcore report`` holds alike: the measured work and the run's
    environment (the comparison key compare uses), so a line never joins runs that compare
    would refuse to compare."""
    measured = measured_key(bench.record)
    env = fingerprint(run)
    if measured is None and env is None:
        return None
    return {**(measured or {}), **(env or {})}


def series_label(key: dict[str, object] | None, others: Sequence[dict[str, object] | None]) -> str:
    """``key`` named by the fields in which it differs from any of ``others`` ("" when none)."""
    if key is None:
        return "no record" if any(o is not None for o in others) else ""
    differing = [name for name in key
                 if any(o is not None and o.get(name) != key[name] for o in others)]
    return ", ".join(f"{name}={_short(key[name])}" for name in differing)


def _short(value: object) -> str:
    if value is None:
        return "unrecorded"
    if isinstance(value, tuple):
        return "+".join(map(str, value)) or "none"
    return str(value)


def hashable(key: dict[str, object] | None) -> tuple | None:
    return None if key is None else tuple(key.items())


# --- the reference a speedup is measured against ----------------------------------------------

def function_name(bench: Benchmark) -> str:
    """The test a benchmark belongs to: its key without the ``[parameters]``."""
    return bench.key.split("[", 1)[0]


def reference_benchmark(run: Run, bench: Benchmark) -> Benchmark | None:
    """The ``REFERENCE_PRECISION`` benchmark of the same workload, test function and measured
    work in ``run``; None when there is none or no unique one. An injected AMP run is
    measured against the clean fp32 one; an injected fp32 run is the reference only of runs
    with the same injections (it would flatter a clean AMP run)."""
    record = bench.record
    if record is None or record.precision == REFERENCE_PRECISION:
        return None
    wanted = _other_fields(measured_key(record))
    matches = [b for b in run.benchmarks.values()
               if b.record is not None and b.record.precision == REFERENCE_PRECISION
               and b.record.workload == record.workload
               and function_name(b) == function_name(bench)
               and b.record.injections in ((), record.injections)
               and _other_fields(measured_key(b.record)) == wanted]
    return matches[0] if len(matches) == 1 else None


def _other_fields(key: dict[str, object] | None) -> dict[str, object] | None:
    """The key without what a reference differs in on purpose: its precision, injections."""
    return None if key is None else {k: v for k, v in key.items()
                                     if k not in (INJECTIONS, "precision")}
