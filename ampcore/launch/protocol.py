"""What a launcher and its worker processes agree on, for both launchers (DDP through torchrun,
and fresh processes): the files of a run directory, and the error file through which a failed
worker's exception reaches the launcher.

The run directory (the workers' ``--out``) holds ``spec.json`` (the ``RunSpec``, written by
the launcher) and ``result.json`` (the run's ``RunResult``: a fresh process's own, or the DDP
ranks' merged one, written by rank 0).

A failed worker records its exception in an error file of torch.distributed.elastic's format,
with ampcore's additions (the process, the exit code it is about to exit with, and what an
``UnsupportedPrecisionError`` needs to be raised again) in ``extraInfo``::

    {"message": {"message": "DataError: ...", "errorCode": 1,
                 "extraInfo": {"py_callstack": "Traceback ...", "timestamp": "1700000000",
                               "process": 0}}}

- A fresh process writes ``error.json`` into the run directory itself.
- A DDP rank's body runs under elastic's ``record`` with ``RankErrorHandler``, which writes the
  file where torchrun says (``TORCHELASTIC_ERROR_FILE``: ``logs/<run id>/attempt_0/<local
  rank>/error.json`` under its ``--log-dir``). torchrun's own ``main`` runs under ``record``
  too: the launcher points torchrun's ``TORCHELASTIC_ERROR_FILE`` at ``torchrun-error.json``,
  into which torchrun copies the first failed rank's error file (its exit code as
  ``errorCode``), or writes its own exception.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch.distributed.elastic.multiprocessing.errors import ErrorHandler

from ampcore.core import registry
from ampcore.core.errors import UnsupportedPrecisionError, UsageError
from ampcore.train.result import RunResult, read_json, write_json
from ampcore.train.spec import RunSpec

SPEC_FILE = "spec.json"
RESULT_FILE = "result.json"
ERROR_FILE = "error.json"  # a fresh process's in the run directory; each rank's under LOG_DIR
LOG_DIR = "logs"  # torchrun's --log-dir: the per-rank error files
LAUNCHER_ERROR_FILE = "torchrun-error.json"  # torchrun's own TORCHELASTIC_ERROR_FILE
DEFAULT_COLLECTIVE_TIMEOUT_S = 600.0


# --- the run directory ------------------------------------------------------------------------

REGISTERED_IN = "registered_in"  # the spec file's list of files a worker imports first


def write_spec(spec: RunSpec, out: Path) -> None:
    """Write ``spec`` to ``out`` for the workers (JSON: paths as strings), with the files that
    registered its workload or precision outside ampcore (a conftest.py)."""
    data = dataclasses.asdict(spec)
    data["data_dir"] = None if spec.data_dir is None else str(spec.data_dir)
    data[REGISTERED_IN] = registry.registered_in(spec.workload, spec.precision)
    (out / SPEC_FILE).write_text(json.dumps(data), encoding="utf-8")


def read_spec(out: Path) -> RunSpec:
    """The ``RunSpec`` that ``write_spec`` wrote to ``out``, its registering files imported
    (once per process)."""
    data = json.loads((out / SPEC_FILE).read_text(encoding="utf-8"))
    if data.get("data_dir") is not None:
        data["data_dir"] = Path(data["data_dir"])
    for path in data.pop(REGISTERED_IN, None) or ():
        _import_registrations(Path(path))
    return RunSpec(**data)


def _import_registrations(path: Path) -> None:
    """Run ``path`` (a conftest.py that registers a workload) as pytest did in the launcher:
    its folder first on sys.path, so its own imports resolve. Once per file and process."""
    import importlib.util
    import sys

    name = f"_ampcore_registrations_{abs(hash(str(path.resolve())))}"
    if name in sys.modules:
        return
    if not path.is_file():
        raise UsageError(f"{path} registered this run's workload or precision in the launcher, "
                         "but a worker cannot read it; keep it where the launcher found it")
    sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise UsageError(f"{path}, which registered this run's workload or precision, fails to "
                         f"import in a worker process ({type(exc).__name__}: {exc})") from exc


def write_result(result: RunResult, out: Path) -> None:
    write_json([result], out / RESULT_FILE)


def read_result(out: Path) -> RunResult | None:
    """The run's result in ``out``; None when no worker wrote one."""
    path = out / RESULT_FILE
    return read_json(path)[0] if path.exists() else None


# --- failures -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class WorkerFailure:
    """One failure as an error file recorded it.

    ``process`` is a DDP worker's rank (None for an error of torchrun itself, a rendezvous that
    failed, say); a fresh process records None: its launcher knows which process it started."""

    process: int | None
    exit_code: int
    error: str  # the exception's class name
    message: str
    time: float = 0.0  # seconds since the epoch, whole seconds as elastic records them
    traceback: str = ""
    # An UnsupportedPrecisionError's (precision, device, reason): the launcher can raise it
    # again, a skip in the suite rather than a failure.
    unsupported: tuple[str, str, str] | None = None


def exit_code_of(exc: BaseException) -> int:
    """The status a worker exits with after ``exc``: an ``AmpcoreError``'s own (2 for a
    ``UsageError``, as the CLI would exit), 130 for an interrupt, else 1."""
    if isinstance(exc, KeyboardInterrupt):
        return 130
    code = getattr(exc, "exit_code", 1)
    return code if isinstance(code, int) and not isinstance(code, bool) and code > 0 else 1


def write_error_file(path: str | Path, exc: BaseException, process: int | None = None) -> None:
    """Record ``exc`` at ``path``. The file is written whole, then renamed into place: torchrun
    parses it as soon as the worker is gone, and a half-written file (a worker killed while
    writing) would make torchrun's own failure handling raise."""
    extra: dict[str, Any] = {
        "py_callstack": "".join(traceback.format_exception(exc)),
        "timestamp": str(int(time.time())),  # elastic parses it with int()
        "process": process,
    }
    if isinstance(exc, UnsupportedPrecisionError):
        extra["unsupported"] = [exc.precision, exc.device, exc.reason]
    data = {"message": {"message": f"{type(exc).__name__}: {exc}",
                        "errorCode": exit_code_of(exc), "extraInfo": extra}}
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fp:
        json.dump(data, fp)
    os.replace(tmp, path)


class RankErrorHandler(ErrorHandler):
    """Elastic's error handler, writing ``write_error_file``'s format, with the rank as the
    process. The stock handler records neither the rank nor the exit code: torchrun knows the
    exit code of the first failure only, and the rank only from the file's directory."""

    def record_exception(self, e: BaseException) -> None:
        path = self._get_error_file_path()
        if path:
            write_error_file(path, e, int(os.environ.get("RANK", "-1")))


def parse_error_file(data: Any, process: int | None = None) -> WorkerFailure | None:
    """The failure an error file's JSON describes; None if it is not one.

    ``process`` is the fallback for a file that names none (a rank's directory is its local
    rank, which is the rank in a one-node run); a file of torchrun's own error has neither."""
    message = data.get("message") if isinstance(data, dict) else None
    if not isinstance(message, dict) or not isinstance(message.get("message"), str):
        return None
    extra = message.get("extraInfo")
    extra = extra if isinstance(extra, dict) else {}
    error, _, text = message["message"].partition(": ")
    if extra.get("process") is not None:
        process = extra["process"]
    try:
        code, stamp = int(message.get("errorCode") or 1), float(extra.get("timestamp", 0))
    except (TypeError, ValueError):
        code, stamp = 1, 0.0
    unsupported = extra.get("unsupported")
    if not (isinstance(unsupported, list) and len(unsupported) == 3):
        unsupported = None
    return WorkerFailure(
        process=None if process is None else int(process), exit_code=code, error=error,
        message=text, time=stamp, traceback=str(extra.get("py_callstack", "")),
        unsupported=None if unsupported is None else tuple(map(str, unsupported)))


def read_error_file(path: Path, process: int | None = None) -> WorkerFailure | None:
    """The failure recorded at ``path``; None when there is none."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # absent, or cut short by a kill: as if no error was recorded
    return parse_error_file(data, process)


def read_failures(out: Path) -> tuple[list[WorkerFailure], WorkerFailure | None]:
    """A DDP run's failures: (every rank's recorded failure in rank order, torchrun's root
    cause or None) from the error files under ``out``."""
    recorded = []
    for path in sorted((out / LOG_DIR).glob(f"*/attempt_*/*/{ERROR_FILE}")):
        local_rank = int(path.parent.name) if path.parent.name.isdigit() else None
        failure = read_error_file(path, local_rank)
        if failure is not None:
            recorded.append(failure)
    recorded.sort(key=lambda f: -1 if f.process is None else f.process)
    root = read_error_file(out / LAUNCHER_ERROR_FILE)
    return recorded, root
