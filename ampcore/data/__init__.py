"""Data sets: real loaders (IMDB via ``datasets``, MNIST via torchvision) and the embedded
smoke data. Nothing is fetched at import time; downloads happen only when allowed."""

from __future__ import annotations

import os
from pathlib import Path

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
