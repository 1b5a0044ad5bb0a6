"""MNIST through ``torchvision.datasets.MNIST``, from local IDX files or a permitted download."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from ampcore.data import DATA_DIR_ENV, LAYOUT_HELP, cache_dir
from ampcore.errors import DataError

RAW_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


@dataclass(frozen=True)
class ImageSplits:
    train_images: torch.Tensor  # N x 1 x H x W float32, normalised
    train_labels: torch.Tensor  # N int64
    test_images: torch.Tensor
    test_labels: torch.Tensor
    num_classes: int
    source: str


def load_mnist(data_dir: Path | None, allow_download: bool) -> ImageSplits:
    """Full MNIST (60,000 train / 10,000 test) as normalised float tensors."""
    from torchvision.datasets import MNIST

    root, sources = _prepare_root(data_dir, allow_download)
    try:
        train = MNIST(str(root), train=True, download=allow_download)
        test = MNIST(str(root), train=False, download=allow_download)
    except Exception as exc:
        bad = _first_unreadable(root / "MNIST" / "raw")
        if bad is None:
            raise DataError(f"cannot load MNIST from {root}: {exc}; {LAYOUT_HELP}") from exc
        if bad in sources:  # a decompressed copy: blame the user's file, drop the copy
            bad.unlink(missing_ok=True)
            bad = sources[bad]
        raise DataError(f"corrupt MNIST file {bad}: {exc}. Replace it with the original IDX "
                        f"file; {LAYOUT_HELP}") from exc
    return ImageSplits(
        _normalise(train.data), train.targets.long(), _normalise(test.data), test.targets.long(),
        num_classes=10, source=f"mnist IDX files via torchvision from {root}",
    )


def _normalise(images: torch.Tensor) -> torch.Tensor:
    return ((images.float() / 255.0 - MNIST_MEAN) / MNIST_STD).unsqueeze(1)


def _prepare_root(data_dir: Path | None, allow_download: bool) -> tuple[Path, dict[Path, Path]]:
    """A root where torchvision finds decompressed files, and which cached file came from
    which of the user's files. Gzipped files are decompressed into ampcore's cache (a read-only
    data directory is never written), under a key of the sources' paths, sizes and times, so a
    cache entry never serves another or a changed data set."""
    raw = data_dir / "mnist" / "MNIST" / "raw" if data_dir else None
    if raw is not None and all((raw / name).is_file() for name in RAW_FILES):
        return data_dir / "mnist", {}
    if raw is not None and all((raw / f"{name}.gz").is_file() for name in RAW_FILES):
        gzipped = [raw / f"{name}.gz" for name in RAW_FILES]
        key = hashlib.sha256(repr([(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns)
                                   for p in gzipped]).encode()).hexdigest()[:16]
        root = cache_dir() / "mnist" / key
        cached_raw = root / "MNIST" / "raw"
        cached_raw.mkdir(parents=True, exist_ok=True)
        sources = {}
        for name, source in zip(RAW_FILES, gzipped):
            target = cached_raw / name
            sources[target] = source
            if target.is_file():
                continue
            # A unique partial name: concurrent processes (DDP ranks) never share one.
            fd, partial = tempfile.mkstemp(prefix=f"{name}.", suffix=".partial", dir=cached_raw)
            try:
                with gzip.open(source, "rb") as compressed, os.fdopen(fd, "wb") as plain:
                    shutil.copyfileobj(compressed, plain)
                os.replace(partial, target)  # atomic: no half-written cache entries
            except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
                Path(partial).unlink(missing_ok=True)
                raise DataError(f"corrupt MNIST file {source}: cannot decompress ({exc})") from exc
        return root, sources
    if allow_download:
        root = cache_dir() / "mnist" / "download"
        root.mkdir(parents=True, exist_ok=True)
        return root, {}
    where = f"{raw} lacks the four IDX files" if raw else (
        f"no data directory was given (--data-dir or ${DATA_DIR_ENV})")
    raise DataError(
        f"MNIST data not found: {where}. Point --data-dir (or ${DATA_DIR_ENV}) at a directory "
        f"with the data sets, or pass --download to fetch them; {LAYOUT_HELP}"
    )


def _first_unreadable(raw: Path) -> Path | None:
    """The first raw IDX file torchvision cannot parse, to name it in the error."""
    from torchvision.datasets.mnist import read_image_file, read_label_file

    for name in RAW_FILES:
        path = raw / name
        reader = read_image_file if "images" in name else read_label_file
        try:
            reader(str(path))
        except Exception:
            return path
    return None
