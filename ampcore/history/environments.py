"""Whether two saved runs were measured in the same environment: the hardware and step settings
that make timings incomparable (refused without --allow-env-mismatch), and the software an
upgrade changes (torch, CUDA, driver, libraries: compared, and named as ``upgrades``), with
the libraries and timing method shown beside them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ampcore.core.registry import PRECISIONS
from ampcore.history.storage import Benchmark, Run

# What makes timings incomparable: a different GPU, driver, CUDA or torch build changes the
# kernels; different TF32 flags change the maths itself; captured (CUDA-graph) and eager steps
# time different things (the GPU's work alone, or with the host's launch overhead); the
# version of a library that implements a run's precision mode (``fingerprint``) changes its kernels.
RUN_KEYS = ("device_type", "gpu", "driver", "cuda", "torch", "cuda_graphs")


TF32_KEYS = ("matmul_tf32", "cudnn_conv_tf32")


# Of the fingerprint, the software an upgrade changes (the driver, CUDA, torch and the kernel
# libraries): an upgrade comparison measures what it changed, so these are compared and named
# (``upgrades``), never refused. What stays refused without --allow-env-mismatch is the
# hardware (device type, GPU model, CPU brand, model and cores; the GPUs a benchmark trained
# on are its world size, a measured-work field) and the step settings (CUDA graphs, TF32).
SOFTWARE_KEYS = ("driver", "cuda", "torch")


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


def is_software(key: str) -> bool:
    """Whether a fingerprint key is software an upgrade changes (``SOFTWARE_KEYS`` and the
    kernel libraries, every other key of ``fingerprint`` being hardware or a step setting)."""
    return key in SOFTWARE_KEYS or any(key in p.libraries for p in PRECISIONS.values())


def hardware(run: Run) -> dict[str, object] | None:
    """The fingerprint without its software: what must match for runs to be compared."""
    values = fingerprint(run)
    return None if values is None else {k: v for k, v in values.items() if not is_software(k)}


def benchmark_tf32(bench: Benchmark) -> dict[str, object]:
    """Effective TF32 flags a benchmark ran with (its precision sets them), if recorded."""
    env = bench.record.environment if bench.record else {}
    tf32 = env.get("tf32") if isinstance(env.get("tf32"), dict) else {}
    return {k: tf32[k] for k in TF32_KEYS if k in tf32}


def differences(baseline: Run, candidate: Run, shared_keys: Iterable[str] = ()) -> list[str]:
    """Human-readable differences that make ``baseline`` and ``candidate`` incomparable: of
    the hardware and step settings (a software change is an upgrade, see ``upgrades``)."""
    base, cand = hardware(baseline), hardware(candidate)
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


def same_environment(a: Run, b: Run, software: bool = True) -> bool:
    """Same hardware, step settings and (unless ``software`` is False) software."""
    base, cand = (fingerprint(a), fingerprint(b)) if software else (hardware(a), hardware(b))
    if base is None or cand is None:
        return base is cand
    return not any(_differ(key, base, cand) for key in dict.fromkeys([*base, *cand]))


def environment_differences(baseline: Sequence[Run], candidate: Run) -> list[str]:
    """Every difference of any baseline run from the candidate, once."""
    found: list[str] = []
    for run in baseline:
        shared = [k for k in candidate.benchmarks if k in run.benchmarks]
        for difference in differences(run, candidate, shared):
            if difference not in found:
                found.append(difference)
    return found


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
    the candidate: what an upgrade comparison upgraded. Never a refusal (``upgrades`` names
    them with the rest of the software). A library one side did not record is not a change."""
    after = libraries(candidate)
    found = []
    for name, new in after.items():
        old = list(dict.fromkeys(libraries(r)[name] for r in baseline if name in libraries(r)))
        if old and old != [new]:
            shown = ", ".join(_version(v) for v in old)
            found.append(f"{name} {shown} -> {_version(new)}")
    return found


# The software besides the libraries, as ``ampcore.measure.environment.capture`` records it.
SOFTWARE = ("cuda", "cudnn", "driver", "python")


def software(run: Run) -> dict[str, object]:
    """Every recorded software version: torch first, then CUDA, cuDNN, the driver, Python
    and the other libraries (a key the run did not record is absent)."""
    env = run.environment or {}
    found = libraries(run)
    values = {name: found[name] for name in ("torch",) if name in found}
    values.update({name: env[name] for name in SOFTWARE if name in env})
    values.update({name: v for name, v in found.items() if name not in values})
    return values


def upgrades(baseline: Sequence[Run], candidate: Run) -> list[str]:
    """"torch 2.11.0 -> 2.12.0" for every software version (torch, CUDA, cuDNN, driver,
    Python, other libraries) that differs between the baseline runs and the candidate: what
    an upgrade comparison upgraded. Compared, never refused. Software one side did not record
    is not a change."""
    after = software(candidate)
    before = [software(r) for r in baseline]
    found = []
    for name, new in after.items():
        old = list(dict.fromkeys(b[name] for b in before if name in b))
        if old and old != [new]:
            found.append(f"{name} {', '.join(_version(v) for v in old)} -> {_version(new)}")
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
