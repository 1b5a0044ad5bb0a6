"""IMDB review sentiment (0 = negative, 1 = positive) through Hugging Face ``datasets``."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from ampcore.data import LAYOUT_HELP, data_not_found, imdb_missing
from ampcore.core.errors import DataError
from ampcore.core.quiet import quiet_loading_bars

REQUIRED_COLUMNS = ("text", "label")
TEXT_TYPES = ("string", "large_string")
# Integer labels only: 0.0/1.0 or True/False pass a "0 or 1" test yet are not class ids.
LABEL_TYPES = tuple(f"{sign}int{bits}" for sign in ("", "u") for bits in (8, 16, 32, 64))
LOCAL_SOURCE = "imdb parquet from "


@dataclass(frozen=True)
class TextSplits:
    train_texts: list[str]
    train_labels: list[int]
    test_texts: list[str]
    test_labels: list[int]
    source: str
    # The held-out evaluation set, disjoint from the train and test reviews above.
    heldout_texts: list[str] = field(default_factory=list)
    heldout_labels: list[int] = field(default_factory=list)
    heldout_source: str = ""


def load_imdb(data_dir: Path | None, allow_download: bool):
    """The IMDB ``train`` split (and ``test`` where present) as a ``datasets.DatasetDict``.

    Local parquet files under ``<data_dir>/imdb/`` win; otherwise the hub (or its cache) is
    used only when ``allow_download`` is set.
    """
    import datasets

    missing = imdb_missing(data_dir)  # the suite's up-front check; None: data_dir holds it
    if missing is None:
        local = data_dir / "imdb"
        files = {split: str(local / f"{split}.parquet") for split in ("train", "test")
                 if (local / f"{split}.parquet").is_file()}
        dsets = {}
        for split, path in files.items():
            _check_rows(path)  # datasets' own message for an empty file hides the cause
            try:
                with quiet_loading_bars():
                    dsets[split] = datasets.load_dataset("parquet", data_files={split: path},
                                                         split=split)
            except Exception as exc:  # pyarrow and datasets raise many types for a bad file
                cause = f" (cause: {exc.__cause__})" if exc.__cause__ else ""
                raise DataError(f"cannot read IMDB parquet file {path}: {exc}{cause}") from exc
            _check_columns(dsets[split], path)
        return datasets.DatasetDict(dsets), f"{LOCAL_SOURCE}{local}"
    if not allow_download:
        raise data_not_found("imdb", missing)
    try:
        with quiet_loading_bars():
            dsets = datasets.load_dataset("imdb")
    except Exception as exc:
        raise DataError(
            f"could not load 'imdb' from the Hugging Face hub or its cache ({exc}); "
            f"use --data-dir with local files instead; {LAYOUT_HELP}"
        ) from exc
    for split in ("train", "test"):
        _check_columns(dsets[split], f"the {split} split of hub:imdb")
    return datasets.DatasetDict({"train": dsets["train"], "test": dsets["test"]}), "imdb from the hub"


def _check_rows(path: str) -> None:
    """A DataError for a parquet file without rows (or not parquet at all), naming it."""
    import pyarrow.parquet as pq

    try:
        rows = pq.ParquetFile(path).metadata.num_rows
    except Exception as exc:  # not parquet, truncated: pyarrow's own words say which
        raise DataError(f"cannot read IMDB parquet file {path}: {type(exc).__name__}: {exc}; "
                        "replace it with a complete export (columns 'text' and 'label')") from exc
    if rows == 0:
        raise DataError(f"IMDB parquet file {path} holds no rows: export the reviews into it "
                        "(columns 'text' and 'label'), or remove the imdb/ folder to read the "
                        "Hugging Face hub's copy (--download)")


def _check_columns(dataset, where: str) -> None:
    """The columns, their types and no nulls: a float or bool label or a missing text would
    otherwise train (or crash) far from the file that caused it."""
    missing = [c for c in REQUIRED_COLUMNS if c not in dataset.column_names]
    if missing:
        raise DataError(
            f"{where} lacks column(s) {missing}; it has {dataset.column_names}. "
            "IMDB files need columns 'text' (string) and 'label' (0 = negative, 1 = positive)."
        )
    rows = len(dataset)
    text_type = _dtype(dataset, "text")
    if text_type not in TEXT_TYPES:
        raise DataError(f"column 'text' of {where} holds {text_type} values, not strings "
                        f"(all {rows} rows); every review must be a string.")
    label_type = _dtype(dataset, "label")
    if label_type not in LABEL_TYPES:
        raise DataError(
            f"column 'label' of {where} holds {label_type} values ({_values(dataset, 'label')}); "
            "IMDB labels must be the integers 0 (negative) and 1 (positive): convert the column "
            "to int.")
    for column in REQUIRED_COLUMNS:
        nulls = dataset.data.column(column).null_count
        if nulls:
            raise DataError(f"column {column!r} of {where} is null in {nulls} of {rows} rows; "
                            "drop or fill those rows.")


def _dtype(dataset, column: str) -> str:
    """The column's type name; a ClassLabel (the hub's label feature) holds int64 ids."""
    feature = dataset.features[column]
    return "int64" if type(feature).__name__ == "ClassLabel" else str(getattr(feature, "dtype", feature))


def _values(dataset, column: str, limit: int = 5) -> str:
    """A few of the column's distinct values, for the message."""
    import pyarrow.compute as pc

    distinct = pc.unique(dataset.data.column(column)).to_pylist()
    shown = ", ".join(repr(v) for v in distinct[:limit])
    return f"values {shown}" + (f" and {len(distinct) - limit} more" if len(distinct) > limit else "")


def _split_file(source: str, split: str) -> str:
    """The file a split came from, as the user knows it."""
    if source.startswith(LOCAL_SOURCE):
        return str(Path(source[len(LOCAL_SOURCE):]) / f"{split}.parquet")
    return f"the {split} split of {source}"


def seed_sample(dsets, train_samples: int, test_samples: int, seed: int, source: str) -> TextSplits:
    """The seed experiment's sample: ``train+test`` reviews drawn with ``seed`` from the train
    split, then split into train and test, as the published experiment did."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if train_samples < 1 or test_samples < 1:
        raise DataError(f"the IMDB sample needs at least 1 train and 1 test review; the profile "
                        f"asks for {train_samples} train / {test_samples} test")
    total = train_samples + test_samples
    pool = dsets["train"]
    if len(pool) < total:
        raise DataError(f"IMDB train split has {len(pool)} reviews; the profile needs {total} "
                        f"({train_samples} train + {test_samples} test, both drawn from "
                        f"{_split_file(source, 'train')}). Use a larger train split.")
    # The whole pool, not only the sample: a file with wrong labels is wrong for every seed.
    labels = pool.data.column("label")
    bad = pc.invert(pc.is_in(labels, value_set=pa.array([0, 1])))
    if pc.any(bad).as_py():
        values = sorted(set(pc.filter(labels, bad).to_pylist()))
        raise DataError(f"IMDB labels must be 0 or 1; column 'label' of "
                        f"{_split_file(source, 'train')} holds {values[:5]} in "
                        f"{pc.sum(bad).as_py()} of {len(pool)} rows.")
    sample = pool.shuffle(seed=seed).select(range(total))
    split = sample.train_test_split(test_size=test_samples, seed=seed)
    train, test = split["train"], split["test"]
    return TextSplits(list(train["text"]), list(train["label"]), list(test["text"]),
                      list(test["label"]), source=f"{source}: seeded sample of {total} "
                      f"(seed {seed}) -> {train_samples} train / {test_samples} test")


def add_heldout(dsets, texts: TextSplits, count: int | None, seed: int, source: str) -> TextSplits:
    """``texts`` with ``count`` held-out reviews (None: every one available; 0: none) drawn
    with ``seed`` from the test split, or from the train reviews outside the sample where the
    data has no test split. Reviews whose text is in the sample (IMDB repeats some 120 train
    reviews in its test split) or already drawn are passed over, so the set is disjoint by
    text; too few left is a ``DataError`` naming the sizes."""
    if count == 0:
        return texts
    sample = set(texts.train_texts) | set(texts.test_texts)
    total = len(texts.train_texts) + len(texts.test_texts)
    if "test" in dsets:
        pool, where = dsets["test"].shuffle(seed=seed), _split_file(source, "test")
    else:
        shuffled = dsets["train"].shuffle(seed=seed)  # the order seed_sample drew from
        pool = shuffled.select(range(total, len(shuffled)))
        where = f"the train reviews of {_split_file(source, 'train')} outside the sample"
    chosen, seen, overlap = [], set(), 0
    for i, text in enumerate(pool["text"]):
        if text in sample:
            overlap += 1
        elif text not in seen:
            seen.add(text)
            chosen.append(i)
            if len(chosen) == count:
                break
    if count is not None and len(chosen) < count:
        raise DataError(f"--eval-samples {count}: {where} holds {len(pool)} reviews, {overlap} "
                        f"of them also in the {total}-review training sample and "
                        f"{len(pool) - overlap - len(chosen)} repeated, so at most {len(chosen)} "
                        f"held-out reviews are available; pass --eval-samples {len(chosen)} or "
                        "less (0: no held-out set)")
    heldout = pool.select(chosen)
    labels = list(heldout["label"])
    if not set(labels) <= {0, 1}:
        raise DataError(f"IMDB labels must be 0 or 1; column 'label' of {where} holds "
                        f"{sorted(set(labels) - {0, 1})[:5]}")
    check_disjoint(texts.train_texts + texts.test_texts, list(heldout["text"]), where)
    return replace(texts, heldout_texts=list(heldout["text"]), heldout_labels=labels,
                   heldout_source=f"{len(chosen)} reviews of {where} (seed {seed}), disjoint "
                   f"from the {total}-review sample")


def check_disjoint(sample_texts: list[str], heldout_texts: list[str], where: str) -> None:
    """A held-out review that was trained on (or tested on every epoch) makes the held-out
    accuracy a training accuracy: refuse it, naming the sizes."""
    shared = set(sample_texts) & set(heldout_texts)
    if shared:
        raise DataError(f"{len(shared)} of the {len(heldout_texts)} held-out reviews from "
                        f"{where} are also in the {len(sample_texts)}-review training sample; "
                        "the held-out set must be disjoint from it")
