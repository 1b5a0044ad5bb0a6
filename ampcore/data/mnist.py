"""MNIST through ``torchvision.datasets.MNIST``, from local IDX files or a permitted download."""

from __future__ import annotations

import gzip
import shutil
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

    root = _prepare_root(data_dir, allow_download)
    try:
        train = MNIST(str(root), train=True, download=allow_download)
        test = MNIST(str(root), train=False, download=allow_download)
    except DataError:
        raise
    except Exception as exc:
        bad = _first_unreadable(root / "MNIST" / "raw")
        where = f"corrupt MNIST file {bad}" if bad else f"cannot load MNIST from {root}"
        raise DataError(f"{where}: {exc}. Replace it with the original IDX file; {LAYOUT_HELP}") from exc
    return ImageSplits(
        _normalise(train.data), train.targets.long(), _normalise(test.data), test.targets.long(),
        num_classes=10, source=f"mnist IDX files via torchvision from {root}",
    )


def _normalise(images: torch.Tensor) -> torch.Tensor:
    return ((images.float() / 255.0 - MNIST_MEAN) / MNIST_STD).unsqueeze(1)


def _prepare_root(data_dir: Path | None, allow_download: bool) -> Path:
    """A root where torchvision finds decompressed files; gzipped ones are decompressed into
    ampcore's cache so a read-only data directory is never written."""
    raw = data_dir / "mnist" / "MNIST" / "raw" if data_dir else None
    if raw is not None and all((raw / name).is_file() for name in RAW_FILES):
        return data_dir / "mnist"
    if raw is not None and all((raw / f"{name}.gz").is_file() for name in RAW_FILES):
        cached_raw = cache_dir() / "mnist" / "MNIST" / "raw"
        cached_raw.mkdir(parents=True, exist_ok=True)
        for name in RAW_FILES:
            target = cached_raw / name
            source = raw / f"{name}.gz"
            if target.is_file() and target.stat().st_mtime >= source.stat().st_mtime:
                continue
            partial = cached_raw / f"{name}.partial"
            try:
                with gzip.open(source, "rb") as compressed, partial.open("wb") as plain:
                    shutil.copyfileobj(compressed, plain)
            except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
                raise DataError(f"corrupt MNIST file {source}: cannot decompress ({exc})") from exc
            shutil.move(str(partial), str(target))  # atomic: no half-written cache entries
        return cached_raw.parent.parent
    if allow_download:
        root = cache_dir() / "mnist"
        root.mkdir(parents=True, exist_ok=True)
        return root
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
