"""Third-party notices that do not concern the user's run, silenced narrowly while it trains.

torchao, when installed, is imported by transformers whatever the precision, and each import
logs torch's register_constant() deprecation notices about torchao's Enums through torch's
pytree logger (a log record, not a Python warning). Only that notice about torchao's own
classes is dropped; every other record of that logger passes.

torch.compile's inductor advises enabling TF32 whenever it compiles float32 matmuls on a GPU
that has TF32 cores; ampcore's fp32 mode turns TF32 off on purpose (the tf32 mode is its own
run), so the advice is about the experiment's design, not the user's run.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator

__all__ = ["INDUCTOR_TF32_ADVICE", "REGISTER_CONSTANT_NOTICE", "TORCHAO_PYTREE_LOGGER",
           "quiet_torchao_notices", "quiet_training"]

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
