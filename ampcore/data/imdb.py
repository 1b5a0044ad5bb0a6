"""IMDB review sentiment (0 = negative, 1 = positive) through Hugging Face ``datasets``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ampcore.data import DATA_DIR_ENV, LAYOUT_HELP
from ampcore.errors import DataError

REQUIRED_COLUMNS = ("text", "label")


@dataclass(frozen=True)
class TextSplits:
    train_texts: list[str]
    train_labels: list[int]
    test_texts: list[str]
    test_labels: list[int]
    source: str


def load_imdb(data_dir: Path | None, allow_download: bool):
    """The IMDB ``train`` split (and ``test`` where present) as a ``datasets.DatasetDict``.

    Local parquet files under ``<data_dir>/imdb/`` win; otherwise the hub (or its cache) is
    used only when ``allow_download`` is set.
    """
    import datasets

    local = data_dir / "imdb" if data_dir else None
    if local is not None and (local / "train.parquet").is_file():
        files = {split: str(local / f"{split}.parquet") for split in ("train", "test")
                 if (local / f"{split}.parquet").is_file()}
        dsets = {}
        for split, path in files.items():
            try:
                dsets[split] = datasets.load_dataset("parquet", data_files={split: path}, split=split)
            except Exception as exc:  # pyarrow and datasets raise many types for a bad file
                raise DataError(f"cannot read IMDB parquet file {path}: {exc}") from exc
            _check_columns(dsets[split], path)
        return datasets.DatasetDict(dsets), f"imdb parquet from {local}"
    if not allow_download:
        where = f"{local} has no train.parquet" if local else (
            f"no data directory was given (--data-dir or ${DATA_DIR_ENV})")
        raise DataError(
            f"IMDB data not found: {where}. Point --data-dir (or ${DATA_DIR_ENV}) at a "
            f"directory with the data sets, or pass --download to fetch them; {LAYOUT_HELP}"
        )
    try:
        dsets = datasets.load_dataset("imdb")
    except Exception as exc:
        raise DataError(
            f"could not load 'imdb' from the Hugging Face hub or its cache ({exc}); "
            f"use --data-dir with local files instead; {LAYOUT_HELP}"
        ) from exc
    _check_columns(dsets["train"], "hub:imdb")
    return datasets.DatasetDict({"train": dsets["train"], "test": dsets["test"]}), "imdb from the hub"


def _check_columns(dataset, where: str) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in dataset.column_names]
    if missing:
        raise DataError(
            f"{where} lacks column(s) {missing}; it has {dataset.column_names}. "
            "IMDB files need columns 'text' (string) and 'label' (0 = negative, 1 = positive)."
        )


def seed_sample(dsets, train_samples: int, test_samples: int, seed: int, source: str) -> TextSplits:
    """The seed experiment's sample: ``train+test`` reviews drawn with ``seed`` from the train
    split, then split into train and test, as the published experiment did."""
    total = train_samples + test_samples
    pool = dsets["train"]
    if len(pool) < total:
        raise DataError(f"IMDB train split has {len(pool)} reviews; the profile needs {total}")
    sample = pool.shuffle(seed=seed).select(range(total))
    split = sample.train_test_split(test_size=test_samples, seed=seed)
    train, test = split["train"], split["test"]
    labels = set(train["label"]) | set(test["label"])
    if not labels <= {0, 1}:
        raise DataError(f"IMDB labels must be 0 or 1; found {sorted(labels)} in {source}")
    return TextSplits(list(train["text"]), list(train["label"]), list(test["text"]),
                      list(test["label"]), source=f"{source}: seeded sample of {total} "
                      f"(seed {seed}) -> {train_samples} train / {test_samples} test")
