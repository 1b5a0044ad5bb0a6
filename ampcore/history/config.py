"""Gate thresholds: defaults, ``[tool.ampcore]`` in pyproject.toml, per-benchmark overrides.

    [tool.ampcore.compare]          # defaults for every benchmark (all optional)
    alpha = 0.02                    # significance level of the gate's tests
    time = 0.05                     # median round time may grow by 5 %
    [[tool.ampcore.thresholds]]     # later entries win; match is an fnmatch pattern tried
    match = "*resnet18*"            # against the benchmark's fullname and name
    time = 0.15
"""

from __future__ import annotations

import fnmatch
import sys
from dataclasses import dataclass, fields, replace
from pathlib import Path

from ampcore.history.storage import UnusableInputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


@dataclass(frozen=True)
class Thresholds:
    """How much worse a metric may get before the gate calls it a regression."""

    # Significance level of the gate's tests (Mann-Whitney U on round times, bootstrap on
    # speedups), after Benjamini-Hochberg adjustment over all of them. 0.02 is what the
    # calibration on real H200 runs supports (docs/HISTORY.md): 0.8 % false alarms, 97.4 %
    # detection of a 10 % slowdown; 0.01 gave 0.1 % and 88.6 %.
    alpha: float = 0.02
    time: float = 0.05  # relative growth of the median round time
    speedup: float = 0.05  # relative drop of the AMP speedup over fp32
    accuracy: float = 0.03  # absolute drop of the final test accuracy
    memory: float = 0.10  # relative growth of the peak device memory
    skipped_steps: float = 1  # extra optimizer steps skipped by the GradScaler

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


METRIC_NAMES = tuple(f.name for f in fields(Thresholds))


@dataclass(frozen=True)
class Override:
    match: str
    values: dict[str, float]

    def applies_to(self, key: str, name: str) -> bool:
        return fnmatch.fnmatchcase(key, self.match) or fnmatch.fnmatchcase(name, self.match)


@dataclass(frozen=True)
class GateConfig:
    defaults: Thresholds = Thresholds()
    overrides: tuple[Override, ...] = ()
    source: Path | None = None

    def for_benchmark(self, key: str, name: str) -> Thresholds:
        values: dict[str, float] = {}
        for override in self.overrides:
            if override.applies_to(key, name):
                values.update(override.values)
        return replace(self.defaults, **values)


def _values(table: dict, where: str, allowed: tuple[str, ...]) -> dict[str, float]:
    values = {}
    for key, value in table.items():
        if key not in allowed:
            raise UnusableInputError(f"{where}: unknown key {key!r}; valid: {', '.join(allowed)}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise UnusableInputError(f"{where}: {key} must be a non-negative number, got {value!r}")
        if key == "alpha" and not 0 < value < 1:
            raise UnusableInputError(f"{where}: alpha must be between 0 and 1, got {value!r}")
        values[key] = float(value)
    return values


def parse_config(tool_ampcore: dict, source: Path | None = None) -> GateConfig:
    """Build the gate configuration from a ``[tool.ampcore]`` table."""
    where = str(source) if source else "[tool.ampcore]"
    compare = tool_ampcore.get("compare", {})
    if not isinstance(compare, dict):
        raise UnusableInputError(f"{where}: [tool.ampcore.compare] must be a table")
    defaults = Thresholds(**_values(compare, f"{where} [tool.ampcore.compare]", METRIC_NAMES))
    overrides = []
    entries = tool_ampcore.get("thresholds", [])
    if not isinstance(entries, list):
        raise UnusableInputError(f"{where}: tool.ampcore.thresholds must be an array of tables")
    for index, entry in enumerate(entries):
        label = f"{where} [[tool.ampcore.thresholds]] #{index + 1}"
        if not isinstance(entry, dict) or not isinstance(entry.get("match"), str):
            raise UnusableInputError(f"{label}: needs match = \"<pattern>\"")
        rest = {k: v for k, v in entry.items() if k != "match"}
        overrides.append(Override(entry["match"], _values(rest, label, METRIC_NAMES)))
    return GateConfig(defaults, tuple(overrides), source)


def find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml in ``start`` or above it."""
    for directory in [start.resolve(), *start.resolve().parents]:
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def load_config(path: Path | None = None, start: Path | None = None) -> GateConfig:
    """Read ``[tool.ampcore]`` from ``path``, else from the nearest pyproject.toml above
    ``start`` (default: the working directory); defaults when there is none."""
    if path is None:
        path = find_pyproject(start or Path.cwd())
        if path is None:
            return GateConfig()
    try:
        document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UnusableInputError(f"cannot read {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UnusableInputError(f"{path} is not valid TOML: {exc}") from None
    tool = document.get("tool", {}).get("ampcore", {})
    if not isinstance(tool, dict):
        raise UnusableInputError(f"{path}: [tool.ampcore] must be a table")
    return parse_config(tool, Path(path))
