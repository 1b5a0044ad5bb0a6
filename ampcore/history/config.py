"""Gate thresholds: defaults, ``[tool.ampcore]`` in pyproject.toml, per-benchmark overrides.

    [tool.ampcore.compare]          # defaults for every benchmark (all optional)
    alpha = 0.02                    # significance level of the gate's tests
    time = 0.05                     # median round time may grow by 5 %
    round_cv = 0.25                 # a run whose round CV exceeds this is unstable (also
    probe_cv = 0.5                  # in .eager/.captured; not per benchmark)
    [[tool.ampcore.thresholds]]     # later entries win; match is an fnmatch pattern tried
    match = "*resnet18*"            # against the benchmark's fullname and name
    time = 0.15
"""

from __future__ import annotations

import fnmatch
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from ampcore.history.noise import CAPTURED, EAGER, GPU_MODES, check_limits
from ampcore.history.errors import UnusableInputError
from ampcore.judge.metrics import DEFAULT_ALPHA, METRICS
from ampcore.judge.record import number
from ampcore.judge.stability import MAX_LIMIT, STABILITY_KEYS, StabilityLimits

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

# A smaller alpha no test can reach with tens of rounds (alpha 1e-300 passes a +200 %
# slowdown); a larger one flags noise half the time.
ALPHA_RANGE = (1e-6, 0.5)


class Thresholds:
    """How much worse each metric of ``METRICS`` may get before the gate calls it a
    regression (``thresholds["time"]``), and the tests' significance level ``alpha``.
    Unnamed metrics take their row's default."""

    __slots__ = ("alpha", "_limits")

    def __init__(self, alpha: float = DEFAULT_ALPHA, **limits: float) -> None:
        unknown = sorted(set(limits) - set(METRICS))
        if unknown:
            raise TypeError(f"no such metric: {', '.join(unknown)}; valid: {', '.join(METRICS)}")
        values = {name: float(metric.default_threshold) for name, metric in METRICS.items()}
        values.update({name: float(value) for name, value in limits.items()})
        object.__setattr__(self, "alpha", float(alpha))
        object.__setattr__(self, "_limits", values)

    def __getitem__(self, metric: str) -> float:
        return self._limits[metric]

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Thresholds are immutable; use replace()")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Thresholds) and self.as_dict() == other.as_dict()

    def __hash__(self) -> int:
        return hash(tuple(self.as_dict().items()))

    def __repr__(self) -> str:
        return "Thresholds(" + ", ".join(f"{k}={v!r}" for k, v in self.as_dict().items()) + ")"

    def replace(self, **values: float) -> Thresholds:
        return Thresholds(**{**self.as_dict(), **values})

    def as_dict(self) -> dict[str, float]:
        return {"alpha": self.alpha, **self._limits}


def threshold_keys() -> tuple[str, ...]:
    """Keys of ``[tool.ampcore.compare]``: alpha and one per metric row."""
    return ("alpha", *METRICS)


@dataclass(frozen=True)
class Override:
    match: str
    values: dict[str, float]

    def applies_to(self, key: str, name: str) -> bool:
        return fnmatch.fnmatchcase(key, self.match) or fnmatch.fnmatchcase(name, self.match)


def eager_defaults() -> dict[str, float]:
    """The rows' defaults for eager steps on a GPU, where they differ (``Metric.eager_threshold``)."""
    return {m.name: m.eager_threshold for m in METRICS.values() if m.eager_threshold is not None}


def captured_defaults() -> dict[str, float]:
    """The rows' defaults for captured steps on a GPU (``Metric.captured_threshold``)."""
    return {m.name: m.captured_threshold for m in METRICS.values()
            if m.captured_threshold is not None}


@dataclass(frozen=True)
class GateConfig:
    defaults: Thresholds = field(default_factory=Thresholds)
    overrides: tuple[Override, ...] = ()
    source: Path | None = None
    # [tool.ampcore.compare.eager] and [tool.ampcore.compare.captured]: limits for eager and
    # for captured steps on a GPU, over ``defaults``.
    eager: dict[str, float] = field(default_factory=eager_defaults)
    captured: dict[str, float] = field(default_factory=captured_defaults)
    # [tool.ampcore.calibration]: the noise behind calibrated limits, per step mode
    calibration: dict = field(default_factory=dict)
    # how ``source`` was found: a file in a parent directory applies without being named
    origin: str | None = None
    # built-in defaults because ``load_config`` found no file from the working directory: a
    # comparison then looks beside and above its storage (``storage_config``); a GateConfig
    # built in code is used as it is
    search_storage: bool = field(default=False, compare=False)
    # round_cv, probe_cv of [tool.ampcore.compare] (key "") and of its mode tables: the
    # largest spread a run's timing may have to be judged (``ampcore.judge.stability``)
    stability: dict[str, dict[str, float]] = field(default_factory=dict)

    def stability_limits(self, step_mode: str | None = None) -> StabilityLimits:
        """The stability limits in force: the general ones, then the step mode's."""
        values = {**self.stability.get("", {}), **self.stability.get(step_mode or "", {})}
        return StabilityLimits(**values)

    def describe(self) -> str:
        """The thresholds in force and where they were found, for every output."""
        if self.source is None:
            return "built-in defaults (no pyproject.toml found)"
        return f"{self.source} ({self.origin})" if self.origin else str(self.source)

    def for_benchmark(self, key: str, name: str, step_mode: str | None = None) -> Thresholds:
        """The limits of one benchmark: the defaults, those of its step mode on a GPU
        (``EAGER``, ``CAPTURED``; None: neither), then every matching override."""
        by_mode = {EAGER: self.eager, CAPTURED: self.captured}
        values: dict[str, float] = dict(by_mode.get(step_mode, {}))
        for override in self.overrides:
            if override.applies_to(key, name):
                values.update(override.values)
        return self.defaults.replace(**values)


def _values(table: dict, where: str, allowed: tuple[str, ...]) -> dict[str, float]:
    values = {}
    for key, value in table.items():
        if key not in allowed:
            raise UnusableInputError(f"{where}: unknown key {key!r}; valid: {', '.join(allowed)}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            shown = repr(value) if not isinstance(value, int) or number(value) is not None else (
                f"an integer of {len(str(value))} digits")
            raise UnusableInputError(f"{where}: {key} must be a non-negative number, got {shown}")
        # TOML has nan and inf (either would disable the metric) and integers of any size
        finite = number(value)
        if finite is None:
            shown = value if isinstance(value, float) else f"an integer of {len(str(value))} digits"
            raise UnusableInputError(f"{where}: {key} must be a finite number, got {shown}")
        low, high = sane_range(key)
        if not low <= finite <= high:
            raise UnusableInputError(
                f"{where}: {key} = {value!r} is outside its range [{low:g}, {high:g}]: beyond "
                "it the gate would be off for it; set a value within the range")
        values[key] = finite
    return values


def sane_range(key: str) -> tuple[float, float]:
    """The values a threshold key may take: alpha within ``ALPHA_RANGE``, a stability limit
    within [0, ``MAX_LIMIT``], a metric's limit within [0, its row's ``max_threshold``]."""
    if key in STABILITY_KEYS:
        return 0.0, MAX_LIMIT
    return ALPHA_RANGE if key == "alpha" else (0.0, float(METRICS[key].max_threshold))


def _limits(table: dict, where: str,
            allowed: tuple[str, ...]) -> tuple[dict[str, float], dict[str, float]]:
    """One table's thresholds and its stability limits (``STABILITY_KEYS``), read and
    validated in one pass."""
    values = _values(table, where, (*allowed, *STABILITY_KEYS))
    return ({k: v for k, v in values.items() if k not in STABILITY_KEYS},
            {k: v for k, v in values.items() if k in STABILITY_KEYS})


def parse_config(tool_ampcore: dict, source: Path | None = None) -> GateConfig:
    """Build the gate configuration from a ``[tool.ampcore]`` table."""
    where = str(source) if source else "[tool.ampcore]"
    compare = tool_ampcore.get("compare", {})
    if not isinstance(compare, dict):
        raise UnusableInputError(f"{where}: [tool.ampcore.compare] must be a table")
    allowed = threshold_keys()
    stability: dict[str, dict[str, float]] = {}
    general, stability[""] = _limits({k: v for k, v in compare.items() if k not in GPU_MODES},
                                     f"{where} [tool.ampcore.compare]", allowed)
    by_mode = {}
    for mode, mode_defaults in ((EAGER, eager_defaults()), (CAPTURED, captured_defaults())):
        table = compare.get(mode, {})
        if not isinstance(table, dict):
            raise UnusableInputError(f"{where}: [tool.ampcore.compare.{mode}] must be a table")
        values, stability[mode] = _limits(table, f"{where} [tool.ampcore.compare.{mode}]",
                                          tuple(METRICS))
        by_mode[mode] = {**mode_defaults, **values}
    calibration = tool_ampcore.get("calibration", {})
    if not isinstance(calibration, dict):
        raise UnusableInputError(f"{where}: [tool.ampcore.calibration] must be a table")
    check_limits(calibration, compare, where)
    defaults = Thresholds(**general)
    overrides = []
    entries = tool_ampcore.get("thresholds", [])
    if not isinstance(entries, list):
        raise UnusableInputError(f"{where}: tool.ampcore.thresholds must be an array of tables")
    for index, entry in enumerate(entries):
        label = f"{where} [[tool.ampcore.thresholds]] #{index + 1}"
        if not isinstance(entry, dict) or not isinstance(entry.get("match"), str):
            raise UnusableInputError(f"{label}: needs match = \"<pattern>\"")
        rest = {k: v for k, v in entry.items() if k != "match"}
        overrides.append(Override(entry["match"], _values(rest, label, allowed)))
    return GateConfig(defaults, tuple(overrides), source, by_mode[EAGER], by_mode[CAPTURED],
                      calibration, stability={k: v for k, v in stability.items() if v})


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
    origin = "named by --config"
    if path is None:
        start = (start or Path.cwd()).resolve()
        path = find_pyproject(start)
        if path is None:
            return GateConfig(search_storage=True)
        origin = ("found in the working directory" if path.parent == start else
                  f"found above the working directory {start}")
    document = _read_toml(Path(path))
    tool = document.get("tool", {})
    if not isinstance(tool, dict):
        raise UnusableInputError(f"{path}: 'tool' must be a table ([tool]), got {tool!r:.40}")
    ampcore = tool.get("ampcore", {})
    if not isinstance(ampcore, dict):
        raise UnusableInputError(f"{path}: [tool.ampcore] must be a table, got {ampcore!r:.40}")
    return replace(parse_config(ampcore, Path(path)), origin=origin)


def storage_config(config: GateConfig, storage: Path | None) -> GateConfig:
    """``config`` when it came from a file or was built in code; else (``load_config`` found
    no file from the working directory), when a pyproject.toml is beside or above ``storage``
    (a storage directory or saved run: the first path given to compare), that file's
    thresholds: a storage kept in its project is judged by the project's thresholds from any
    working directory. A significance level other than the default set on ``config``
    (``--alpha``) still wins over the file's."""
    if config.source is not None or not config.search_storage or storage is None:
        return config
    storage = Path(storage)
    start = (storage if storage.is_dir() else storage.parent).resolve()
    path = find_pyproject(start)
    if path is None:
        return config
    where = "beside" if path.parent == start else "above"
    found = replace(load_config(path), origin=f"found {where} the storage's runs in {start}; "
                    "none in or above the working directory")
    alpha = config.defaults.alpha
    if alpha != Thresholds().alpha:  # --alpha: as ampcore.history.cli._load_config sets it
        found = replace(found, defaults=found.defaults.replace(alpha=alpha),
                        overrides=tuple(replace(o, values={k: v for k, v in o.values.items()
                                                           if k != "alpha"})
                                        for o in found.overrides))
    return found


def _read_toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UnusableInputError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise UnusableInputError(f"{path} is not UTF-8 text: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UnusableInputError(f"{path} is not valid TOML: {exc}") from None
    except RecursionError:
        raise UnusableInputError(f"{path} is nested too deeply to read") from None
