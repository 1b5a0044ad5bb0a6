"""Data sets: real loaders (IMDB via ``datasets``, MNIST via torchvision) and the embedded
smoke data. Nothing is fetched at import time; downloads happen only when allowed."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ampcore.core.errors import DataError

DATA_DIR_ENV = "AMPCORE_DATA_DIR"
CACHE_DIR_ENV = "AMPCORE_CACHE_DIR"

LAYOUT_HELP = (
    "expected layout: <data-dir>/imdb/train.parquet (+ test.parquet; columns 'text', 'label') "
    "and <data-dir>/mnist/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]"
)


def cache_dir() -> Path:
    """Where ampcore writes derived files (decompressed MNIST); never inside the data dir."""
    value = os.environ.get(CACHE_DIR_ENV)
    return Path(value).expanduser() if value else Path.home() / ".cache" / "ampcore"

# The data sets' files in a data directory: read by the loaders, and checked up front by the
# suite (``ampcore.suite.guards``) before anything trains.
MNIST_RAW_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                   "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
NO_DATA_DIR = f"no data directory was given (--data-dir or ${DATA_DIR_ENV})"


def imdb_missing(data_dir: Path | None) -> str | None:
    """What is missing of IMDB in ``data_dir`` (its train split), or None."""
    if data_dir is None:
        return NO_DATA_DIR
    path = data_dir / "imdb" / "train.parquet"
    return None if path.is_file() else f"{path.parent} has no train.parquet"


def mnist_missing(data_dir: Path | None) -> str | None:
    """What is missing of MNIST in ``data_dir`` (the four IDX files, plain or gzipped), or None."""
    if data_dir is None:
        return NO_DATA_DIR
    raw = data_dir / "mnist" / "MNIST" / "raw"
    if any(all((raw / f"{name}{suffix}").is_file() for name in MNIST_RAW_FILES)
           for suffix in ("", ".gz")):
        return None
    return f"{raw} lacks the four IDX files"


# Each data set a workload may name (``Workload.data``, one of ``ampcore.core.entries.DATA_SETS``):
# its name for people, and the check the suite runs once before anything trains.
DATA_CHECKS: dict[str, tuple[str, Callable[[Path | None], str | None]]] = {
    "imdb": ("IMDB", imdb_missing),
    "mnist": ("MNIST", mnist_missing),
}


def data_not_found(data: str, why: str) -> DataError:
    """A loader's refusal when ``DATA_CHECKS[data]`` found its data set missing (``why``)."""
    return DataError(
        f"{DATA_CHECKS[data][0]} data not found: {why}. Point --data-dir (or ${DATA_DIR_ENV}) "
        f"at a directory with the data sets, or pass --download to fetch them; {LAYOUT_HELP}")
