"""Whether two saved runs were measured on comparable hardware and software."""

from __future__ import annotations

from collections.abc import Iterable

from ampcore.history.storage import Run

# What makes timings incomparable: a different GPU, driver, CUDA or torch build changes the
# kernels; different TF32 flags change the maths itself; captured (CUDA-graph) and eager steps
# time different things (the GPU's work alone, or with the host's launch overhead).
RUN_KEYS = ("device_type", "gpu", "driver", "cuda", "torch", "cuda_graphs")
TF32_KEYS = ("matmul_tf32", "cudnn_conv_tf32")


def fingerprint(run: Run) -> dict[str, object] | None:
    """The fields compared between runs; None when the run recorded no ampcore environment."""
    env = run.environment
    if env is None:
        return None
    values: dict[str, object] = {key: env.get(key) for key in RUN_KEYS}
    tf32 = env.get("tf32") if isinstance(env.get("tf32"), dict) else {}
    for key in TF32_KEYS:
        values[f"tf32.{key}"] = tf32.get(key)
    if env.get("device_type") == "cpu":
        # On a CPU the processor is the "GPU model".
        cpu = run.machine_info.get("cpu")
        values["cpu"] = cpu.get("brand_raw") if isinstance(cpu, dict) else env.get("cpu")
    return values


def benchmark_tf32(run: Run, key: str) -> dict[str, object]:
    """Effective TF32 flags a benchmark ran with (its precision sets them), if recorded."""
    env = run.benchmarks[key].extra_info.get("environment")
    tf32 = env.get("tf32") if isinstance(env, dict) and isinstance(env.get("tf32"), dict) else {}
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
             for key in dict.fromkeys([*base, *cand]) if base.get(key) != cand.get(key)]
    for key in shared_keys:
        b, c = benchmark_tf32(baseline, key), benchmark_tf32(candidate, key)
        for flag in TF32_KEYS:
            if flag in b and flag in c and b[flag] != c[flag]:
                found.append(f"{key}: effective tf32.{flag} {b[flag]!r} in {baseline.path.name} "
                             f"vs {c[flag]!r} in {candidate.path.name}")
    return found


def same_environment(a: Run, b: Run) -> bool:
    return fingerprint(a) == fingerprint(b)
