"""What the registries hold: a precision mode (``Precision``) and a workload (``Workload``),
torch-free, each checked when made.

Both are public (``ampcore.api``; docs/WORKLOADS.md). Their runtime side (a precision's
``implementation``, a workload's ``build``) is a function or a ``module:function`` path,
imported only when a run needs it, so registering one costs no torch import.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ampcore.core.errors import RegistrationError, UsageError
from ampcore.core.profiles import WorkloadConfig


@dataclass(frozen=True)
class Precision:
    """A precision mode, without torch. ``ampcore.train.precision.activate`` binds it to a
    device as an instance of ``implementation`` (an ``ActivePrecision`` subclass, or its
    ``module:Class`` path, imported when a run activates the mode)."""

    id: str
    description: str
    method_name: str  # the seed table's "Training Method" label
    autocast: str | None = None  # torch dtype name under autocast; None: no autocast
    grad_scaler: bool = False
    tf32: bool = False
    implementation: str | type = "ampcore.train.precision:ActivePrecision"
    # Libraries beyond torch that implement the mode's kernels: a change of their version is
    # part of compare's environment check for runs of this mode (elsewhere only shown).
    libraries: tuple[str, ...] = ()
    # The mixed precision this mode adds to (float8 matmuls under bf16 autocast): its loss
    # parity is judged against that one as well as against fp32.
    builds_on: str | None = None
    # In the default matrix (what runs when no precision is named); the others run when named
    # or with "all", so that the default GPU suite stays within its time budget.
    default: bool = True
    # Settings the implementation reads (fp8's scaling recipe), as (key, value) pairs.
    options: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        _check_id("precision mode", self.id)
        _check_fields(f"precision mode {self.id!r}", self, {
            "description": (isinstance(self.description, str), "a string"),
            "method_name": (isinstance(self.method_name, str), "a string"),
            "autocast": (self.autocast is None or self.autocast in AUTOCAST_DTYPES,
                         "None or " + " or ".join(map(repr, AUTOCAST_DTYPES))),
            "grad_scaler": (isinstance(self.grad_scaler, bool), "True or False"),
            "tf32": (isinstance(self.tf32, bool), "True or False"),
            "implementation": (callable(self.implementation) or _is_path(self.implementation),
                               "a class or 'module:Class'"),
            "libraries": (isinstance(self.libraries, tuple)
                          and all(isinstance(x, str) for x in self.libraries),
                          "a tuple of library names"),
            "builds_on": (self.builds_on is None or isinstance(self.builds_on, str),
                          "None or a precision id"),
            "default": (isinstance(self.default, bool), "True or False"),
            "options": (isinstance(self.options, tuple) and all(
                isinstance(o, tuple) and len(o) == 2 and all(isinstance(x, str) for x in o)
                for o in self.options), "a tuple of (key, value) string pairs"),
        })

    @property
    def mixed(self) -> bool:
        """A mixed-precision mode: gated for speedup and parity against the reference."""
        return self.autocast is not None

    def option(self, key: str) -> str:
        """The value of one of ``options``; a KeyError names a setting the mode lacks."""
        return dict(self.options)[key]

    def implementation_class(self) -> Callable[..., object]:
        """``implementation``, imported now when it is a path; one that cannot be is a
        UsageError naming the mode."""
        return _callable(self.implementation, f"precision {self.id!r}: its implementation")


QUALITIES = ("accuracy", "loss")
RUN_OPTIONS = ("max_length", "model")
LIST_SEPARATORS = ", \t\n"  # lists of ids are split on these: no id holds one
# The dtypes torch.autocast takes (a Precision's ``autocast``).
AUTOCAST_DTYPES = ("float16", "bfloat16")
# The data sets ampcore ships a loader for (``ampcore.data``): a workload naming one has it
# checked once, at the suite's start, in a profile that trains on real data.
DATA_SETS = ("imdb", "mnist")


@dataclass(frozen=True)
class Workload:
    """A workload, its experiment in each profile, and the traits the suite needs to know
    (public: ``ampcore.api.Workload``; docs/WORKLOADS.md). Checked when made: a field of the
    wrong type is a RegistrationError naming the workload and the field."""

    id: str
    description: str
    # Returns a PreparedWorkload: the function, or its ``module:function`` path (imported on
    # first use, so registering stays torch-free).
    build: str | Callable[..., object]
    # Its experiment in each profile it runs in, by profile name: registering a workload is
    # this one entry, no profile is edited.
    configs: Mapping[str, WorkloadConfig]
    # WorkloadConfig fields a run may override: ``max_length`` from the option of that name,
    # ``model`` from the workload's own model option (RunSpec.model).
    run_options: tuple[str, ...] = ()
    # Parses a model override (function or ``module:function``), raising UsageError for one
    # the workload cannot build; None: any text (a source checked when the run loads it).
    model_parser: str | Callable[[str], object] | None = None
    asserts_speedup: bool = False  # the suite asserts that AMP beats fp32 on it
    ddp: bool = False  # the suite has DistributedDataParallel benchmarks of it
    # What its parity rule judges: "accuracy" (fp32 - AMP test accuracy) or "loss" (AMP - fp32
    # held-out loss, for a language model, whose token accuracy says little).
    quality: str = "accuracy"
    default: bool = True  # in the default matrix, as Precision.default
    # The data set of ``DATA_SETS`` its build reads where the profile trains on real data;
    # None: its own (the build's loader reports what is missing).
    data: str | None = None
    # Fresh sessions of one seed give the same held-out predictions on a GPU. False: training
    # from scratch through kernels that are not deterministic (cuDNN's convolution backward),
    # whose accuracy moves between sessions; one seed then cannot judge its parity.
    repeatable: bool = True

    def __post_init__(self) -> None:
        _check_id("workload", self.id)
        _check_fields(f"workload {self.id!r}", self, {
            "description": (isinstance(self.description, str), "a string"),
            "build": (callable(self.build) or _is_path(self.build),
                      "a function or 'module:function'"),
            "configs": (isinstance(self.configs, Mapping) and bool(self.configs) and all(
                isinstance(k, str) and isinstance(v, WorkloadConfig)
                for k, v in self.configs.items()),
                "a non-empty mapping of profile name to WorkloadConfig"),
            "run_options": (isinstance(self.run_options, tuple)
                            and all(option in RUN_OPTIONS for option in self.run_options),
                            f"a tuple of {', '.join(RUN_OPTIONS)}"),
            "model_parser": (self.model_parser is None or callable(self.model_parser)
                             or _is_path(self.model_parser),
                             "None, a function or 'module:function'"),
            "asserts_speedup": (isinstance(self.asserts_speedup, bool), "True or False"),
            "ddp": (isinstance(self.ddp, bool), "True or False"),
            "quality": (self.quality in QUALITIES, " or ".join(map(repr, QUALITIES))),
            "default": (isinstance(self.default, bool), "True or False"),
            "data": (self.data is None or self.data in DATA_SETS,
                     "None or " + " or ".join(map(repr, DATA_SETS))),
            "repeatable": (isinstance(self.repeatable, bool), "True or False"),
        })

    def accepts(self, option: str) -> bool:
        return option in self.run_options

    def build_function(self) -> Callable[..., object]:
        """``build``, imported now when it is a path; one that cannot be is a UsageError."""
        return _callable(self.build, f"workload {self.id!r}: its build")

    def parse_model(self, value: str) -> None:
        """Check a model override with ``model_parser`` (UsageError for a bad one)."""
        if self.model_parser is not None:
            _callable(self.model_parser, f"workload {self.id!r}: its model_parser")(value)

    def config(self, profile: str) -> WorkloadConfig:
        """Its experiment in ``profile``; a UsageError names the workload and the profile."""
        try:
            return self.configs[profile]
        except KeyError:
            raise UsageError(
                f"workload {self.id!r} has no configuration for the {profile!r} profile (it has: "
                f"{', '.join(self.configs) or 'none'}): run it in one of those (--profile, "
                f"--amp-profile), or give its registry entry configs[{profile!r}]") from None


def _check_id(kind: str, id_: object) -> None:
    if not isinstance(id_, str) or not id_ or any(c in id_ for c in LIST_SEPARATORS):
        # Ids are split on commas and spaces wherever a list of them is given.
        raise RegistrationError(f"{kind} id {id_!r}: expected a non-empty string without "
                                "commas or spaces")


def _check_fields(what: str, entry: object, checks: dict[str, tuple[bool, str]]) -> None:
    """A RegistrationError naming ``what`` and the first field whose check failed."""
    for name, (ok, expected) in checks.items():
        if not ok:
            raise RegistrationError(f"{what}: {name} is {getattr(entry, name)!r}; expected "
                                    f"{expected}")


def _is_path(value: object) -> bool:
    """A ``module:attribute`` path: an absolute module (no leading dot) and an attribute."""
    module, _, attribute = value.partition(":") if isinstance(value, str) else ("", "", "")
    return bool(module) and not module.startswith(".") and bool(attribute)


def load(path: str) -> object:
    """The object a ``module:attribute`` path names (imported on first use)."""
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


def _callable(target: str | Callable[..., object], what: str) -> Callable[..., object]:
    """``target`` itself, or the function its path names; a path that does not import (a
    missing or malformed module, or one whose import raises) is a UsageError saying which
    (``what``: "workload 'toy': its build")."""
    if callable(target):
        return target
    try:
        found = load(target)
    except Exception as exc:  # a bad path (":f", ".relative:f"), or the module's own error
        raise UsageError(f"{what} {target!r} cannot be imported ({type(exc).__name__}: {exc}); "
                         "make its module importable (installed, or on sys.path) and its "
                         "import work") from exc
    if not callable(found):
        raise UsageError(f"{what} {target!r} is a {type(found).__name__}, not a function")
    return found
