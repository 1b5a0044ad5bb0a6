"""Third-party notices that do not concern the user's run, silenced narrowly while it trains.

torchao, when installed, is imported by transformers whatever the precision, and each import
logs torch's register_constant() deprecation notices about torchao's Enums through torch's
pytree logger (a log record, not a Python warning). Only that notice about torchao's own
classes is dropped; every other record of that logger passes.

datasets (generating a split) and transformers (loading weights) draw progress bars on stderr
whatever it is: redirected logs filled with them. ``quiet_loading_bars`` turns them off where
ampcore calls those libraries, unless stderr is a terminal (``bars_wanted``, the one rule for
every progress bar ampcore draws or lets through).

torch.compile's inductor advises enabling TF32 whenever it compiles float32 matmuls on a GPU
that has TF32 cores; ampcore's fp32 mode turns TF32 off on purpose (the tf32 mode is its own
run), so the advice is about the experiment's design, not the user's run.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from collections.abc import Iterator

__all__ = ["INDUCTOR_TF32_ADVICE", "REGISTER_CONSTANT_NOTICE", "TORCHAO_PYTREE_LOGGER",
           "bars_wanted", "quiet_loading_bars", "quiet_torchao_notices", "quiet_training"]

INDUCTOR_TF32_ADVICE = "TensorFloat32 tensor cores for float32 matrix multiplication available"

TORCHAO_PYTREE_LOGGER = "torch.utils._pytree"
REGISTER_CONSTANT_NOTICE = "is an Enum subclass and is now natively supported by torch.compile"


class _TorchaoEnumNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        owner = getattr(args[0], "__module__", "") if args else ""
        torchao = owner == "torchao" or owner.startswith("torchao.")
        return not (torchao and REGISTER_CONSTANT_NOTICE in str(record.msg))


@contextlib.contextmanager
def quiet_torchao_notices() -> Iterator[None]:
    """While inside: torch's register_constant() deprecation notices about torchao's Enums are
    not logged; every other record of that logger is."""
    logger, notice = logging.getLogger(TORCHAO_PYTREE_LOGGER), _TorchaoEnumNotice()
    logger.addFilter(notice)
    try:
        yield
    finally:
        logger.removeFilter(notice)


@contextlib.contextmanager
def quiet_training() -> Iterator[None]:
    """While a run trains (``Experiment`` enters it, once per run): torchao's notices
    (``quiet_torchao_notices``) and inductor's TF32 advice dropped; every other warning and log
    record passes (filters restored on exit)."""
    with quiet_torchao_notices(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=INDUCTOR_TF32_ADVICE, category=UserWarning,
                                module=r"torch\._inductor")
        yield


def bars_wanted(no_progress: bool = False) -> bool:
    """Whether progress bars may be drawn: stderr is a terminal and nobody said no, so
    redirected logs and pipes get none."""
    isatty = getattr(sys.stderr, "isatty", None)
    return not no_progress and callable(isatty) and bool(isatty())


# (module, whether its bars are on, turn them off, turn them on): the libraries' own switches
_LOADING_BARS = (
    ("datasets", "is_progress_bar_enabled", "disable_progress_bars", "enable_progress_bars"),
    ("transformers.utils.logging", "is_progress_bar_enabled", "disable_progress_bar",
     "enable_progress_bar"),
)


@contextlib.contextmanager
def quiet_loading_bars() -> Iterator[None]:
    """While inside, unless stderr is a terminal: the loading bars of datasets and transformers
    are off; each library's setting is restored on exit. Only libraries already imported are
    touched (the callers import the one they load with first)."""
    restore = []
    if not bars_wanted():
        for name, enabled, off, on in _LOADING_BARS:
            module = sys.modules.get(name)
            if module is not None and getattr(module, enabled)():
                getattr(module, off)()
                restore.append(getattr(module, on))
    try:
        yield
    finally:
        for turn_on in restore:
            turn_on()
