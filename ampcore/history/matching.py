"""Which saved runs and benchmarks may be compared, and the fp32 benchmark a speedup is
measured against.

Two runs are comparable when they were measured on the same hardware and software
(``fingerprint``); two benchmarks when they measured the same work (``measured_key``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ampcore.history.storage import Benchmark, Run
from ampcore.judge.record import BenchmarkRecord
from ampcore.core.registry import PRECISIONS, REFERENCE_PRECISION

# What makes timings incomparable: a different GPU, driver, CUDA or torch build changes the
# kernels; different TF32 flags change the maths itself; captured (CUDA-graph) and eager steps
# time different things (the GPU's work alone, or with the host's launch overhead); the
# version of a library that implements a run's precision mode (``fingerprint``) changes its kernels.
RUN_KEYS = ("device_type", "gpu", "driver", "cuda", "torch", "cuda_graphs")
TF32_KEYS = ("matmul_tf32", "cudnn_conv_tf32")

# The workload configuration that decides how much work a round does; learning rate, seed,
# rounds or warm-up steps change the numbers only by noise (or not at all). ``image_size``: a
# torchvision family's input side (None in runs of other workloads, and before it existed).
MEASURED_CONFIG = ("max_length", "batch_size", "epochs", "train_samples", "test_samples",
                   "image_size", "cuda_graphs", "compile")
# A run with injected regressions is compared as a candidate (that is how a team measures what
# its gate detects) but never serves as a baseline.
INJECTIONS = "injections"


# --- runs: the environment --------------------------------------------------------------------

def fingerprint(run: Run) -> dict[str, object] | None:
    """The fields compared between runs; None when the run recorded no ampcore environment."""
    env = run.environment
    if env is None:
        return None
    values: dict[str, object] = {key: env.get(key) for key in RUN_KEYS}
    tf32 = env.get("tf32") if isinstance(env.get("tf32"), dict) else {}
    for key in TF32_KEYS:
        values[f"tf32.{key}"] = tf32.get(key)
    # A library that implements a mode's kernels (torchao: fp8's float8 casts and GEMMs)
    # changes what that mode's runs time; other library changes are only shown.
    libraries = env.get("libraries") if isinstance(env.get("libraries"), dict) else {}
    for name in _kernel_libraries(run):
        values[name] = libraries.get(name)
    if env.get("device_type") == "cpu":
        # On a CPU the processor is the "GPU model".
        cpu = run.machine_info.get("cpu")
        values["cpu"] = cpu.get("brand_raw") if isinstance(cpu, dict) else env.get("cpu")
        # a 2-core and a 64-core machine of one brand are not one machine
        values["cpu_model"] = env.get("cpu_model")
        values["cpu_cores"] = env.get("cpu_affinity") or env.get("cpu_count")
    return values


def _kernel_libraries(run: Run) -> list[str]:
    """The libraries the run's precision modes train with (``Precision.libraries``)."""
    names: dict[str, None] = {}
    for bench in getattr(run, "benchmarks", {}).values():
        entry = PRECISIONS.get(getattr(bench, "precision", None))
        names.update(dict.fromkeys(entry.libraries if entry else ()))
    return list(names)


# Recorded only by newer versions: compared where both runs recorded them.
OPTIONAL_KEYS = ("cpu_model", "cpu_cores")


def _differ(key: str, base: dict, cand: dict) -> bool:
    if key in OPTIONAL_KEYS and (base.get(key) is None or cand.get(key) is None):
        return False
    return base.get(key) != cand.get(key)


def benchmark_tf32(bench: Benchmark) -> dict[str, object]:
    """Effective TF32 flags a benchmark ran with (its precision sets them), if recorded."""
    env = bench.record.environment if bench.record else {}
    tf32 = env.get("tf32") if isinstance(env.get("tf32"), dict) else {}
    return {k: tf32[k] for k in TF32_KEYS if k in tf32}


def differences(baseline: Run, candidate: Run, shared_keys: Iterable[str] = ()) -> list[str]:
    """Human-readable differences that make ``baseline`` and ``candidate`` incomparable."""
    base, cand = fingerprint(baseline), fingerprint(candidate)
    if base is None and cand is None:
        return []
    if base is None or cand is None:
        missing = baseline if base is None else candidate
        return [f"{missing.path.name} recorded no ampcore environment (machine_info['ampcore'])"]
    found = [f"{key}: {base.get(key)!r} in {baseline.path.name} vs {cand.get(key)!r} in "
             f"{candidate.path.name}"
             for key in dict.fromkeys([*base, *cand]) if _differ(key, base, cand)]
    for key in shared_keys:
        b = benchmark_tf32(baseline.benchmarks[key])
        c = benchmark_tf32(candidate.benchmarks[key])
        for flag in TF32_KEYS:
            if flag in b and flag in c and b[flag] != c[flag]:
                found.append(f"{key}: effective tf32.{flag} {b[flag]!r} in {baseline.path.name} "
                             f"vs {c[flag]!r} in {candidate.path.name}")
    return found


def same_environment(a: Run, b: Run) -> bool:
    base, cand = fingerprint(a), fingerprint(b)
    if base is None or cand is None:
        return base is cand
    return not any(_differ(key, base, cand) for key in dict.fromkeys([*base, *cand]))


def choose_baseline(earlier: Sequence[Run], candidate: Run,
                    last: int = 1) -> tuple[list[Run], list[str]]:
    """The last ``last`` runs before the candidate, preferring runs measured on the candidate's
    environment (so one storage can hold several runners) and, among those, runs with a
    benchmark that measured the same work; if none matches, the plain last runs, which the
    environment and measured-work checks will then refuse."""
    same_env = [r for r in earlier if same_environment(r, candidate)]
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


def environment_differences(baseline: Sequence[Run], candidate: Run) -> list[str]:
    """Every difference of any baseline run from the candidate, once."""
    found: list[str] = []
    for run in baseline:
        shared = [k for k in candidate.benchmarks if k in run.benchmarks]
        for difference in differences(run, candidate, shared):
            if difference not in found:
                found.append(difference)
    return found


# --- runs: the libraries on the training path ----------------------------------------------

# Recorded before the environment had "libraries" (all of ampcore.measure.environment.LIBRARIES).
TOP_LEVEL_LIBRARIES = ("torch", "transformers", "torchvision", "datasets")


def libraries(run: Run) -> dict[str, object]:
    """Library versions by import name as the run recorded them (None: not installed)."""
    env = run.environment or {}
    if isinstance(env.get("libraries"), dict):
        return env["libraries"]
    return {name: env[name] for name in TOP_LEVEL_LIBRARIES if name in env}


def library_changes(baseline: Sequence[Run], candidate: Run) -> list[str]:
    """"name old -> new" for every library whose version differs between the baseline runs and
    the candidate: what an upgrade comparison upgraded. Information, never a refusal (torch's
    build is also a RUN_KEY). A library one side did not record is not a change."""
    after = libraries(candidate)
    found = []
    for name, new in after.items():
        old = list(dict.fromkeys(libraries(r)[name] for r in baseline if name in libraries(r)))
        if old and old != [new]:
            shown = ", ".join(_version(v) for v in old)
            found.append(f"{name} {shown} -> {_version(new)}")
    return found


def processes(bench) -> int:
    """Fresh processes a benchmark's run was trained in (``--amp-processes``; 1 before it)."""
    return bench.record.run_config.processes if bench.record is not None else 1


def method_changes(baseline: Sequence[Run], candidate: Run) -> list[str]:
    """"bert-amp-bf16: fresh processes 1 -> 3" where the candidate was timed in another number
    of fresh processes than its baseline: the medians estimate the same time, with less of
    a process's host draw in them. Information, never a refusal."""
    found = []
    for key, bench in candidate.benchmarks.items():
        old = sorted({processes(r.benchmarks[key]) for r in baseline if key in r.benchmarks})
        if old and old != [processes(bench)]:
            found.append(f"{bench.name}: fresh processes {', '.join(map(str, old))} -> "
                         f"{processes(bench)}")
    return found


def _version(value: object) -> str:
    return "not installed" if value is None else str(value)


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
