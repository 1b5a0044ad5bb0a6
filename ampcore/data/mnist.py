"""MNIST through ``torchvision.datasets.MNIST``, from local IDX files or a permitted download."""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import socket
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from ampcore.data import LAYOUT_HELP, MNIST_RAW_FILES, cache_dir, data_not_found, mnist_missing
from ampcore.core.errors import DataError

RAW_FILES = MNIST_RAW_FILES
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
NUM_CLASSES = 10
# IDX magic: 0x08 (unsigned bytes) then the number of dimensions (3 for images, 1 for labels).
IDX_MAGIC = {"images": 0x0803, "labels": 0x0801}
_MAGIC_NAMES = {0x0803: ", an IDX image file's", 0x0801: ", an IDX label file's"}


@dataclass(frozen=True)
class ImageSplits:
    train_images: torch.Tensor  # N x 1 x H x W float32, normalised
    train_labels: torch.Tensor  # N int64
    test_images: torch.Tensor
    test_labels: torch.Tensor
    num_classes: int
    source: str
    # A held-out evaluation set disjoint from both splits (the smoke digits only; MNIST's
    # held-out set is its test split).
    heldout_images: torch.Tensor | None = None
    heldout_labels: torch.Tensor | None = None


def load_mnist(data_dir: Path | None, allow_download: bool) -> ImageSplits:
    """Full MNIST (60,000 train / 10,000 test) as normalised float tensors."""
    from torchvision.datasets import MNIST

    root, sources = _prepare_root(data_dir, allow_download)
    raw = root / "MNIST" / "raw"
    if allow_download and not all((raw / name).is_file() for name in RAW_FILES):
        _download(root)
    # Checked here rather than left to torchvision, whose header errors have no message.
    check_idx_files(raw, sources)
    try:
        train = MNIST(str(root), train=True, download=False)
        test = MNIST(str(root), train=False, download=False)
    except Exception as exc:  # torchvision raises bare asserts and RuntimeErrors
        raise DataError(f"cannot load MNIST from {root}: {exc}; {LAYOUT_HELP}") from exc
    return ImageSplits(
        _normalise(train.data), train.targets.long(), _normalise(test.data), test.targets.long(),
        num_classes=NUM_CLASSES, source=f"mnist IDX files via torchvision from {root}",
    )


def _download(root: Path) -> None:
    """torchvision's download into ampcore's cache; its failure named for what it is."""
    from torchvision.datasets import MNIST

    try:
        MNIST(str(root), train=True, download=True)
    except Exception as exc:
        reason = str(exc).strip() or type(exc).__name__
        # torchvision before 0.21 prints each mirror's URLError and raises a bare "Error
        # downloading <file>" (no cause) once every mirror failed; later ones name the error.
        offline = ("urlopen error" in reason or reason.startswith("Error downloading")
                   or _is_network_error(exc))
        cause = ("no network connection (or the MNIST mirrors are unreachable)" if offline
                 else "the download did not complete")
        raise DataError(f"MNIST download into {root} failed: {cause}: {reason}. Without "
                        f"network, point --data-dir at local copies; {LAYOUT_HELP}") from exc


def _is_network_error(exc: BaseException | None) -> bool:
    from urllib.error import URLError

    while exc is not None:
        if isinstance(exc, (URLError, ConnectionError, TimeoutError, socket.gaierror)):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _normalise(images: torch.Tensor) -> torch.Tensor:
    return ((images.float() / 255.0 - MNIST_MEAN) / MNIST_STD).unsqueeze(1)


def _prepare_root(data_dir: Path | None, allow_download: bool) -> tuple[Path, dict[Path, Path]]:
    """A root where torchvision finds decompressed files, and which cached file came from
    which of the user's files (empty where the user's files are read in place)."""
    missing = mnist_missing(data_dir)  # the suite's up-front check; None: data_dir holds it
    if missing is None:
        raw = data_dir / "mnist" / "MNIST" / "raw"
        if all((raw / name).is_file() for name in RAW_FILES):
            return data_dir / "mnist", {}
        return _decompressed(raw)  # not plain, so the gzipped set is the complete one
    if allow_download:
        root = cache_dir() / "mnist" / "download"
        root.mkdir(parents=True, exist_ok=True)
        return root, {}
    raise data_not_found("mnist", missing)


def _decompressed(raw: Path) -> tuple[Path, dict[Path, Path]]:
    """The gzipped files of ``raw`` decompressed into ampcore's cache (a read-only data
    directory is never written), under a key of the sources' paths, sizes and times, so a
    cache entry never serves another or a changed data set."""
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


def check_idx_files(raw: Path, sources: dict[Path, Path]) -> None:
    """Each IDX file's magic number, size and (labels) range, and matching image and label
    counts. Errors name the user's file: the .gz, not ampcore's decompressed copy of it."""
    counts = {}
    for name in RAW_FILES:
        path = raw / name
        try:
            counts[name] = _check_idx(path, sources.get(path, path))
        except DataError:
            if path in sources:  # a decompressed copy of a bad file: not worth keeping
                path.unlink(missing_ok=True)
            raise
    for split in ("train", "t10k"):
        images, labels = counts[f"{split}-images-idx3-ubyte"], counts[f"{split}-labels-idx1-ubyte"]
        if images != labels:
            shown = [str(sources.get(raw / n, raw / n)) for n in RAW_FILES if n.startswith(split)]
            raise DataError(f"{shown[0]} holds {images} images but {shown[1]} holds {labels} "
                            "labels; the two files must come from the same MNIST split.")


def _check_idx(path: Path, shown: Path) -> int:
    """The sample count of one IDX file, after checking its header against its size."""
    kind = "images" if "images" in path.name else "labels"
    with path.open("rb") as handle:  # labels whole (60 kB) for the range check; images' header
        data = handle.read() if kind == "labels" else handle.read(16)
    magic = int.from_bytes(data[:4], "big") if len(data) >= 4 else None
    if magic != IDX_MAGIC[kind]:
        found = "no magic number (the file is shorter than 4 bytes)" if magic is None else (
            f"magic number {magic} (0x{magic:08x}{_MAGIC_NAMES.get(magic, '')})")
        raise DataError(f"{shown} is not an MNIST {kind} IDX file: it has {found} where "
                        f"{IDX_MAGIC[kind]} (0x{IDX_MAGIC[kind]:08x}) was expected. Check that "
                        f"it is the right file; {LAYOUT_HELP}")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    size = path.stat().st_size
    if len(data) < header or size != header + math.prod(dims):
        raise DataError(f"{shown} is truncated or damaged: its IDX header says "
                        f"{'x'.join(map(str, dims))} bytes of {kind} after {header} header "
                        f"bytes, but it holds {size} bytes. Replace it with the original file.")
    if kind == "labels":
        bad = [label for label in data[header:] if label >= NUM_CLASSES]
        if bad:
            raise DataError(f"{shown} holds label(s) {sorted(set(bad))[:5]} in {len(bad)} of "
                            f"{dims[0]} rows; MNIST labels are the digits 0-9.")
    return dims[0]
