"""What the launcher and the workers agree on: the files of a run directory, and the elastic
error files through which a failed rank's exception reaches the launcher.

The run directory (the workers' ``--out``) holds ``spec.json`` (the ``RunSpec``, written by
the launcher) and ``result.json`` (the merged ``RunResult``, written by rank 0).

Failures travel through torch.distributed.elastic's error files, not through torchrun's printed
summary:

- torchrun gives every worker its own ``TORCHELASTIC_ERROR_FILE``,
  ``logs/<run id>/attempt_0/<local rank>/error.json`` under its ``--log-dir``. The worker's
  body is wrapped in elastic's ``record`` with ``RankErrorHandler``, which writes elastic's
  format plus the rank and the exit code the worker is about to exit with::

      {"message": {"message": "DataError: ...", "errorCode": 1,
                   "extraInfo": {"py_callstack": "Traceback ...", "timestamp": "1700000000",
                                 "rank": 0}}}

- torchrun's own ``main`` runs under ``record`` too: the launcher points torchrun's
  ``TORCHELASTIC_ERROR_FILE`` at ``torchrun-error.json``, into which torchrun copies the first
  failed rank's error file (its exit code as ``errorCode``), or writes its own exception.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import traceback
from pathlib import Path
from typing import Any

from torch.distributed.elastic.multiprocessing.errors import ErrorHandler

from ampcore.distributed.merge import RankFailure
from ampcore.spec import RunSpec

SPEC_FILE = "spec.json"
RESULT_FILE = "result.json"
LOG_DIR = "logs"  # torchrun's --log-dir: the per-rank error files
LAUNCHER_ERROR_FILE = "torchrun-error.json"  # torchrun's own TORCHELASTIC_ERROR_FILE
DEFAULT_COLLECTIVE_TIMEOUT_S = 600.0


def write_spec(spec: RunSpec, out: Path) -> None:
    """Write ``spec`` to ``out`` for the workers (JSON: paths as strings)."""
    data = dataclasses.asdict(spec)
    data["data_dir"] = None if spec.data_dir is None else str(spec.data_dir)
    (out / SPEC_FILE).write_text(json.dumps(data), encoding="utf-8")


def read_spec(out: Path) -> RunSpec:
    """The ``RunSpec`` that ``write_spec`` wrote to ``out``."""
    data = json.loads((out / SPEC_FILE).read_text(encoding="utf-8"))
    if data.get("data_dir") is not None:
        data["data_dir"] = Path(data["data_dir"])
    return RunSpec(**data)


def exit_code_of(exc: BaseException) -> int:
    """The status a worker exits with after ``exc``: an ``AmpcoreError``'s own (2 for a
    ``UsageError``, as the CLI would exit), 130 for an interrupt, else 1."""
    if isinstance(exc, KeyboardInterrupt):
        return 130
    code = getattr(exc, "exit_code", 1)
    return code if isinstance(code, int) and not isinstance(code, bool) and code > 0 else 1


class RankErrorHandler(ErrorHandler):
    """Elastic's error handler, writing its format plus ``rank`` and the exit code.

    The stock handler records neither: torchrun knows the exit code of the first failure only,
    and the rank only from the file's directory. The file is written whole, then renamed into
    place: torchrun parses it as soon as the worker is gone, and a half-written file (a rank
    killed while writing) would make torchrun's own failure handling raise."""

    def record_exception(self, e: BaseException) -> None:
        path = self._get_error_file_path()
        if not path:
            return
        data = {"message": {
            "message": f"{type(e).__name__}: {e}",
            "errorCode": exit_code_of(e),
            "extraInfo": {
                "py_callstack": traceback.format_exc(),
                "timestamp": str(int(time.time())),  # elastic parses it with int()
                "rank": int(os.environ.get("RANK", "-1")),
            },
        }}
        tmp = f"{path}.tmp"
        with open(tmp, "w", encoding="utf-8") as fp:
            json.dump(data, fp)
        os.replace(tmp, path)


def parse_error_file(data: Any, rank: int | None = None) -> RankFailure | None:
    """The failure an elastic error file's JSON describes; None if it is not one.

    ``rank`` is the fallback for a file without ``extraInfo.rank`` (the directory's local rank,
    which is the rank in a one-node run); a file of torchrun's own error has neither."""
    message = data.get("message") if isinstance(data, dict) else None
    if not isinstance(message, dict) or not isinstance(message.get("message"), str):
        return None
    extra = message.get("extraInfo") or {}
    error, _, text = message["message"].partition(": ")
    rank = extra.get("rank", rank)
    try:
        code, stamp = int(message.get("errorCode") or 1), float(extra.get("timestamp", 0))
    except (TypeError, ValueError):
        code, stamp = 1, 0.0
    return RankFailure(rank=None if rank is None else int(rank), exit_code=code, error=error,
                       message=text, time=stamp, traceback=str(extra.get("py_callstack", "")))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # absent, or cut short by a kill: as if no error was recorded


def read_failures(out: Path) -> tuple[list[RankFailure], RankFailure | None]:
    """(every rank's recorded failure in rank order, torchrun's root cause or None) from the
    error files under ``out``."""
    recorded = []
    for path in sorted((out / LOG_DIR).glob("*/attempt_*/*/error.json")):
        hint = int(path.parent.name) if path.parent.name.isdigit() else None
        failure = parse_error_file(_read_json(path), hint)
        if failure is not None:
            recorded.append(failure)
    recorded.sort(key=lambda f: -1 if f.rank is None else f.rank)
    root = parse_error_file(_read_json(out / LAUNCHER_ERROR_FILE))
    return recorded, root
