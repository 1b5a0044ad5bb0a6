"""``ampcore calibrate``'s outputs: the text table, the JSON and the ``pyproject.toml``
overrides it suggests, from a ``Calibration`` (``ampcore.history.calibrate``)."""

from __future__ import annotations

import glob
from collections.abc import Sequence

import numpy as np

from ampcore.history.calibrate import QUANTILE, Calibration
from ampcore.judge.metrics import METRICS


def _pct(values: Sequence[float]) -> str:
    return f"{np.quantile(np.abs(values), QUANTILE) * 100:.2f} %" if values else "-"


def _rates(trials: int, alarms: int, detections: int, unreliable: tuple[int, int],
           detected: str = "detected") -> str:
    """Alarms over the trials the gate judged; the unreliable ones named apart."""
    aa, slow = unreliable
    text = (f"false alarms {alarms}/{trials - aa} judged, {detected} "
            f"{detections}/{trials - slow} judged")
    return text + (f" (unreliable: {aa} A/A, {slow} slowdown)" if aa or slow else "")


def to_text(result: Calibration) -> str:
    t = result.thresholds
    defaults = ", ".join(f"{m.name} {m.format_threshold(t[m.name])}" for m in METRICS.values())
    lines = [f"{result.runs} runs, {result.pairs} A/A pairs ({result.pairing})",
             f"current defaults: {defaults}, alpha {t.alpha:g}",
             f"thresholds: {result.thresholds_source}", ""]
    header = (f"{'benchmark':34} {'pairs':>5} {'round CV':>8} {'|dt| p99':>9} "
              f"{'MWU<alpha':>9} {'sugg. time':>10} {'sugg. speedup':>13}")
    lines.append(header)
    for n in result.benchmarks:
        times = n.changes.get("time", [])
        flagged = sum(p < t.alpha for p in n.p_values)
        cv = f"{np.median(n.round_cv) * 100:.1f} %" if n.round_cv else "-"
        mwu = f"{flagged}/{len(n.p_values)}" if n.p_values else "-"
        time_s = f"{n.suggested['time']:.1%}" if "time" in n.suggested else "-"
        speed_s = f"{n.suggested['speedup']:.1%}" if "speedup" in n.suggested else "-"
        lines.append(f"{n.name[:34]:34} {len(times):>5} {cv:>8} {_pct(times):>9} {mwu:>9} "
                     f"{time_s:>10} {speed_s:>13}")
    lines.append("")
    lines.append("MWU<alpha: A/A pairs in which Mann-Whitney U alone would call a change; the "
                 "threshold is what keeps those quiet.")
    if result.trials:
        lines.append(f"resampling {result.trials} trials on {result.trial_run}: gate "
                     + _rates(result.trials, result.gate_false_alarms, result.gate_detections,
                              result.gate_unreliable,
                              f"detections of a {result.slowdown:.0%} slowdown"))
        for n in result.benchmarks:
            if n.false_alarms is not None:
                lines.append(f"  {n.name}: " + _rates(result.trials, n.false_alarms,
                                                      n.detections, n.unreliable))
    lines.extend(f"note: {note}" for note in result.notes)
    snippet = suggestions_toml(result)
    if snippet:
        lines += ["", "# suggested overrides for pyproject.toml", snippet]
    return "\n".join(lines) + "\n"


def suggestions_toml(result: Calibration) -> str:
    """``[[tool.ampcore.thresholds]]`` for benchmarks whose noise needs more than the defaults."""
    blocks = []
    defaults = result.thresholds.as_dict()
    for n in result.benchmarks:
        looser = {m: v for m, v in n.suggested.items() if v > defaults[m] + 1e-12}
        if looser:
            # a limit above the row's maximum would be refused by compare: said, not set
            body = "\n".join(f"{m} = {v:.3g}" if v <= METRICS[m].max_threshold else
                             f"# {m}: {v:.3g} needed, above its maximum "
                             f"{METRICS[m].max_threshold:g}: too noisy to gate on"
                             for m, v in looser.items())
            # glob.escape: a benchmark id's "[params]" would otherwise be an fnmatch class
            blocks.append(f"[[tool.ampcore.thresholds]]\nmatch = \"{glob.escape(n.key)}\"\n{body}")
    return "\n\n".join(blocks)


def _kinds(unreliable: tuple[int, int] | None) -> dict[str, int] | None:
    return None if unreliable is None else dict(zip(("aa", "slowdown"), unreliable))


def to_json(result: Calibration) -> dict:
    return {
        "runs": result.runs, "pairs": result.pairs, "pairing": result.pairing,
        "thresholds": result.thresholds.as_dict(), "thresholds_source": result.thresholds_source,
        "notes": result.notes,
        "trials": result.trials, "slowdown": result.slowdown, "trial_run": result.trial_run,
        "gate_false_alarms": result.gate_false_alarms, "gate_detections": result.gate_detections,
        "gate_unreliable": _kinds(result.gate_unreliable),
        "left_out": [{"file": r.file, "unstable": r.benchmarks} for r in result.left_out],
        "benchmarks": [{
            "key": n.key, "name": n.name, "changes": n.changes, "p_values": n.p_values,
            "median_round_cv": float(np.median(n.round_cv)) if n.round_cv else None,
            "suggested": n.suggested, "false_alarms": n.false_alarms, "detections": n.detections,
            "unreliable": _kinds(n.unreliable), "left_out": n.left_out,
        } for n in result.benchmarks],
    }
