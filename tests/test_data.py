"""Data loaders on small files the tests write themselves: IMDB parquet, MNIST IDX, smoke data."""

import gzip
import os

import pytest
import torch

from ampcore.data import cache_dir, imdb, mnist, smoke
from ampcore.core.errors import DataError

pytestmark = pytest.mark.usefixtures("isolated_env", "one_cpu_thread")


# --- data and cache directories --------------------------------------------------------------------

def test_cache_dir_follows_environment(isolated_env):
    assert cache_dir() == isolated_env


# --- IMDB --------------------------------------------------------------------------------------

@pytest.fixture
def imdb_dir(tmp_path, write_imdb, hf_datasets_cache):
    write_imdb(tmp_path, 60, "train")
    write_imdb(tmp_path, 20, "test")
    return tmp_path


def test_load_imdb_reads_local_parquet(imdb_dir):
    dsets, source = imdb.load_imdb(imdb_dir, allow_download=False)
    assert set(dsets) == {"train", "test"}
    assert (len(dsets["train"]), len(dsets["test"])) == (60, 20)
    assert {"text", "label"} <= set(dsets["train"].column_names)
    assert str(imdb_dir / "imdb") in source


def test_load_imdb_without_test_split(tmp_path, write_imdb, hf_datasets_cache):
    write_imdb(tmp_path, 10, "train")
    dsets, _ = imdb.load_imdb(tmp_path, allow_download=False)
    assert set(dsets) == {"train"}


def test_seed_sample_sizes_and_disjoint_splits(imdb_dir):
    dsets, source = imdb.load_imdb(imdb_dir, allow_download=False)
    texts = imdb.seed_sample(dsets, 30, 10, seed=42, source=source)
    assert (len(texts.train_texts), len(texts.train_labels)) == (30, 30)
    assert (len(texts.test_texts), len(texts.test_labels)) == (10, 10)
    assert not set(texts.train_texts) & set(texts.test_texts)
    assert set(texts.train_texts + texts.test_texts) <= set(dsets["train"]["text"])  # train pool only
    assert set(texts.train_labels + texts.test_labels) <= {0, 1}
    # Each label still belongs to its text.
    label_of = dict(zip(dsets["train"]["text"], dsets["train"]["label"]))
    assert all(label_of[t] == y for t, y in zip(texts.train_texts, texts.train_labels))
    assert "seed 42" in texts.source and "30 train / 10 test" in texts.source


def test_seed_sample_is_deterministic_for_a_seed(imdb_dir):
    dsets, source = imdb.load_imdb(imdb_dir, allow_download=False)
    a = imdb.seed_sample(dsets, 30, 10, seed=42, source=source)
    b = imdb.seed_sample(dsets, 30, 10, seed=42, source=source)
    c = imdb.seed_sample(dsets, 30, 10, seed=43, source=source)
    assert a == b
    assert (a.train_texts, a.test_texts) != (c.train_texts, c.test_texts)


def test_seed_sample_needs_enough_reviews(imdb_dir):
    dsets, source = imdb.load_imdb(imdb_dir, allow_download=False)
    with pytest.raises(DataError, match="60 reviews; the profile needs 1000"):
        imdb.seed_sample(dsets, 800, 200, seed=42, source=source)


def test_seed_sample_rejects_labels_other_than_0_and_1(tmp_path, write_imdb, hf_datasets_cache):
    write_imdb(tmp_path, 20, labels=[i % 3 for i in range(20)])
    dsets, source = imdb.load_imdb(tmp_path, allow_download=False)
    with pytest.raises(DataError, match="must be 0 or 1"):
        imdb.seed_sample(dsets, 15, 5, seed=0, source=source)


@pytest.mark.parametrize("columns, missing", [
    (("review", "label"), "text"),
    (("text", "sentiment"), "label"),
], ids=["no-text", "no-label"])
def test_imdb_wrong_columns_name_the_file(tmp_path, write_imdb, hf_datasets_cache, columns, missing):
    path = write_imdb(tmp_path, 10, columns=columns)
    with pytest.raises(DataError) as info:
        imdb.load_imdb(tmp_path, allow_download=False)
    assert str(path) in str(info.value)
    assert repr(missing) in str(info.value)


@pytest.mark.parametrize("split", ["train", "test"])
def test_corrupt_imdb_parquet_names_the_file(tmp_path, write_imdb, hf_datasets_cache, split):
    write_imdb(tmp_path, 10, "train")
    path = tmp_path / "imdb" / f"{split}.parquet"
    path.write_bytes(b"PAR1 this is not a parquet file")
    with pytest.raises(DataError) as info:
        imdb.load_imdb(tmp_path, allow_download=False)
    assert str(path) in str(info.value)


def test_imdb_without_data_dir_mentions_the_option():
    with pytest.raises(DataError) as info:
        imdb.load_imdb(None, allow_download=False)
    assert "--data-dir" in str(info.value) and "--download" in str(info.value)


def test_imdb_data_dir_without_the_files_names_it(tmp_path):
    with pytest.raises(DataError) as info:
        imdb.load_imdb(tmp_path, allow_download=False)
    message = str(info.value)
    assert str(tmp_path / "imdb") in message and "--data-dir" in message
    assert "train.parquet" in message  # the expected layout is spelled out


def _write_parquet(data_dir, columns, split="train"):
    """``<data_dir>/imdb/<split>.parquet`` with exactly these columns (pyarrow infers types)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = data_dir / "imdb" / f"{split}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path)
    return path


@pytest.mark.parametrize("labels, shown", [
    ([float(i % 2) for i in range(10)], "float64 values (values 0.0, 1.0)"),
    ([bool(i % 2) for i in range(10)], "bool values (values False, True)"),
], ids=["float", "bool"])
def test_imdb_float_or_bool_labels_are_refused(tmp_path, hf_datasets_cache, labels, shown):
    # 0.0/1.0 and False/True pass a "0 or 1" test but are not class ids.
    path = _write_parquet(tmp_path, {"text": [f"review {i}" for i in range(10)], "label": labels})
    with pytest.raises(DataError) as info:
        imdb.load_imdb(tmp_path, allow_download=False)
    assert f"column 'label' of {path} holds {shown}" in str(info.value)


@pytest.mark.parametrize("column, values, expected", [
    ("text", [None if i in (2, 5) else f"review {i}" for i in range(10)], "is null in 2 of 10 rows"),
    ("text", list(range(10)), "holds int64 values, not strings (all 10 rows)"),
    ("label", [None if i == 4 else i % 2 for i in range(10)], "is null in 1 of 10 rows"),
], ids=["null-text", "int-text", "null-label"])
def test_imdb_null_or_non_string_values_are_refused(tmp_path, hf_datasets_cache, column, values, expected):
    columns = {"text": [f"review {i}" for i in range(10)], "label": [i % 2 for i in range(10)]}
    columns[column] = values
    path = _write_parquet(tmp_path, columns, split="test")
    _write_parquet(tmp_path, {"text": ["fine"] * 4, "label": [0, 1, 0, 1]})
    with pytest.raises(DataError) as info:
        imdb.load_imdb(tmp_path, allow_download=False)
    assert f"column {column!r} of {path} {expected}" in str(info.value)


def test_seed_sample_checks_the_labels_of_the_whole_file(tmp_path, write_imdb, hf_datasets_cache):
    # One bad row among 60: wrong for every seed, whether or not this sample draws it.
    path = write_imdb(tmp_path, 60, labels=[7 if i == 33 else i % 2 for i in range(60)])
    dsets, source = imdb.load_imdb(tmp_path, allow_download=False)
    with pytest.raises(DataError) as info:
        imdb.seed_sample(dsets, 4, 2, seed=0, source=source)
    assert f"must be 0 or 1; column 'label' of {path} holds [7] in 1 of 60 rows" in str(info.value)


def test_seed_sample_size_error_names_train_and_test_sizes(imdb_dir):
    dsets, source = imdb.load_imdb(imdb_dir, allow_download=False)
    with pytest.raises(DataError) as info:
        imdb.seed_sample(dsets, 50, 20, seed=42, source=source)
    assert "has 60 reviews; the profile needs 70 (50 train + 20 test" in str(info.value)
    assert str(imdb_dir / "imdb" / "train.parquet") in str(info.value)


# --- MNIST -------------------------------------------------------------------------------------

def _normalised(images):
    return ((images.float() / 255.0 - mnist.MNIST_MEAN) / mnist.MNIST_STD).unsqueeze(1)


@pytest.mark.parametrize("compress", [True, False], ids=["gzipped", "plain"])
def test_load_mnist_reads_idx_files(tmp_path, write_mnist, isolated_env, compress):
    written = write_mnist(tmp_path / "data", n_train=6, n_test=3, compress=compress)
    before = sorted(os.listdir(written["raw"]))
    splits = mnist.load_mnist(tmp_path / "data", allow_download=False)
    assert splits.train_images.shape == (6, 1, 28, 28)
    assert splits.test_images.shape == (3, 1, 28, 28)
    assert splits.train_images.dtype == torch.float32
    assert splits.train_labels.dtype == torch.int64
    assert torch.equal(splits.train_labels, written["train_labels"].long())
    assert torch.equal(splits.test_labels, written["test_labels"].long())
    assert torch.allclose(splits.train_images, _normalised(written["train_images"]))
    assert splits.num_classes == 10
    # The data dir is never written; gzipped files are decompressed into ampcore's cache.
    assert sorted(os.listdir(written["raw"])) == before
    cached = sorted((isolated_env / "mnist").glob("*/MNIST/raw"))
    if compress:
        assert len(cached) == 1 and sorted(os.listdir(cached[0])) == sorted(mnist.RAW_FILES)
    else:
        assert not cached


def test_corrupt_mnist_gz_names_the_file(tmp_path, write_mnist):
    written = write_mnist(tmp_path)
    bad = written["files"]["train-labels-idx1-ubyte"]
    bad.write_bytes(b"\x1f\x8b this is not gzip data")
    with pytest.raises(DataError) as info:
        mnist.load_mnist(tmp_path, allow_download=False)
    assert str(bad) in str(info.value)


def test_truncated_gz_names_the_file(tmp_path, write_mnist):
    written = write_mnist(tmp_path)
    bad = written["files"]["t10k-images-idx3-ubyte"]
    bad.write_bytes(gzip.compress(written["payloads"]["t10k-images-idx3-ubyte"])[:-30])
    with pytest.raises(DataError) as info:
        mnist.load_mnist(tmp_path, allow_download=False)
    assert str(bad) in str(info.value)


@pytest.mark.parametrize("damage", ["truncated", "wrong-magic"])
def test_bad_plain_idx_names_the_file(tmp_path, write_mnist, damage):
    written = write_mnist(tmp_path, compress=False)
    name = "train-images-idx3-ubyte"
    bad = written["files"][name]
    payload = written["payloads"][name]
    # wrong-magic: a label file's header (1 dimension) on an image file.
    bad.write_bytes(payload[:-100] if damage == "truncated" else (2049).to_bytes(4, "big") + payload[4:])
    with pytest.raises(DataError) as info:
        mnist.load_mnist(tmp_path, allow_download=False)
    assert str(bad) in str(info.value)


def test_truncated_idx_inside_valid_gzip_names_the_users_file(tmp_path, write_mnist):
    # The user's file is the .gz in the data dir; the decompressed copy in ampcore's cache is
    # an implementation detail they did not provide and should not be told to replace.
    written = write_mnist(tmp_path)
    name = "train-images-idx3-ubyte"
    bad = written["files"][name]
    bad.write_bytes(gzip.compress(written["payloads"][name][:-100]))
    with pytest.raises(DataError) as info:
        mnist.load_mnist(tmp_path, allow_download=False)
    assert str(bad) in str(info.value)


def test_mnist_cache_does_not_serve_another_data_dirs_files(tmp_path, write_mnist):
    # Two data dirs, one cache: the second dir's files have an old modification time, as
    # files unpacked from an archive (or copied with cp -p) do. Its own data must be loaded.
    write_mnist(tmp_path / "a", n_train=6)
    assert len(mnist.load_mnist(tmp_path / "a", allow_download=False).train_labels) == 6
    written = write_mnist(tmp_path / "b", n_train=9, seed=1)
    for path in written["files"].values():
        os.utime(path, (1_000_000_000, 1_000_000_000))  # 2001
    splits = mnist.load_mnist(tmp_path / "b", allow_download=False)
    assert len(splits.train_labels) == 9
    assert torch.equal(splits.train_labels, written["train_labels"].long())


def test_mnist_without_data_dir_mentions_the_option():
    with pytest.raises(DataError) as info:
        mnist.load_mnist(None, allow_download=False)
    assert "--data-dir" in str(info.value) and "--download" in str(info.value)


def test_mnist_incomplete_layout_names_the_directory(tmp_path, write_mnist):
    written = write_mnist(tmp_path)
    written["files"]["t10k-labels-idx1-ubyte"].unlink()
    with pytest.raises(DataError) as info:
        mnist.load_mnist(tmp_path, allow_download=False)
    assert str(written["raw"]) in str(info.value) and "--data-dir" in str(info.value)


@pytest.mark.parametrize("compress", [True, False], ids=["gzipped", "plain"])
def test_mnist_wrong_magic_says_found_and_expected(tmp_path, write_mnist, compress):
    written = write_mnist(tmp_path, compress=compress)
    name = "t10k-labels-idx1-ubyte"
    payload = written["payloads"][name]
    bad = (2051).to_bytes(4, "big") + payload[4:]  # an image file's magic on a label file
    written["files"][name].write_bytes(gzip.compress(bad) if compress else bad)
    with pytest.raises(DataError) as info:
        mnist.load_mnist(tmp_path, allow_download=False)
    message = str(info.value)
    assert f"{written['files'][name]} is not an MNIST labels IDX file" in message
    assert "magic number 2051 (0x00000803" in message and "2049 (0x00000801) was expected" in message


def test_mnist_labels_outside_0_to_9_are_refused(tmp_path, write_mnist):
    written = write_mnist(tmp_path, n_train=6)
    name = "train-labels-idx1-ubyte"
    payload = bytearray(written["payloads"][name])
    payload[8 + 2], payload[8 + 4] = 10, 255
    written["files"][name].write_bytes(gzip.compress(bytes(payload)))
    with pytest.raises(DataError) as info:
        mnist.load_mnist(tmp_path, allow_download=False)
    assert f"{written['files'][name]} holds label(s) [10, 255] in 2 of 6 rows" in str(info.value)


def test_mnist_image_and_label_counts_must_match(tmp_path, write_mnist):
    written = write_mnist(tmp_path, n_train=6, compress=False)
    other = write_mnist(tmp_path / "other", n_train=4, compress=False)
    name = "train-labels-idx1-ubyte"
    written["files"][name].write_bytes(other["payloads"][name])
    with pytest.raises(DataError) as info:
        mnist.load_mnist(tmp_path, allow_download=False)
    assert "holds 6 images but" in str(info.value) and "holds 4 labels" in str(info.value)


def test_mnist_download_without_network_says_so(monkeypatch):
    import socket
    import urllib.request
    from urllib.error import URLError

    def offline(*args, **kwargs):
        raise URLError(socket.gaierror(-3, "Temporary failure in name resolution"))

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DataError) as info:
        mnist.load_mnist(None, allow_download=True)
    message = str(info.value)
    assert "MNIST download" in message and "failed: no network connection" in message
    assert "corrupt" not in message and "--data-dir" in message


# --- smoke data --------------------------------------------------------------------------------

def test_sentiment_corpus_sizes_balance_and_determinism():
    a = smoke.sentiment_corpus(40, 20, seed=3)
    assert (len(a.train_texts), len(a.train_labels), len(a.test_texts), len(a.test_labels)) == (40, 40, 20, 20)
    assert sum(a.train_labels) + sum(a.test_labels) == 30  # exactly balanced overall
    assert a == smoke.sentiment_corpus(40, 20, seed=3)
    assert a.train_texts != smoke.sentiment_corpus(40, 20, seed=4).train_texts


def test_sentiment_corpus_labels_follow_the_opinion_words():
    texts = smoke.sentiment_corpus(200, 0, seed=0)
    for text, label in zip(texts.train_texts, texts.train_labels):
        words = text.split()
        positive = sum(w in smoke.POSITIVE for w in words)
        negative = sum(w in smoke.NEGATIVE for w in words)
        assert (positive > negative) == (label == 1), text


def test_wordpiece_tokenizer_has_bert_special_tokens():
    texts = smoke.sentiment_corpus(50, 0, seed=0).train_texts
    tokenizer = smoke.train_wordpiece_tokenizer(texts)
    encoded = tokenizer(["the film was great"], padding="max_length", max_length=12)
    ids = encoded["input_ids"][0]
    assert ids[0] == tokenizer.cls_token_id
    assert tokenizer.sep_token_id in ids
    assert ids[-1] == tokenizer.pad_token_id and len(ids) == 12
    assert tokenizer.unk_token_id not in ids  # every corpus word is in the vocabulary


def test_digits_shapes_and_determinism():
    a = smoke.digits(100, 50, seed=1)
    assert a.train_images.shape == (100, 1, 8, 8) and a.test_images.shape == (50, 1, 8, 8)
    assert a.train_labels.dtype == torch.int64 and a.num_classes == 10
    assert set(a.train_labels.tolist()) <= set(range(10))
    assert torch.equal(a.train_images, smoke.digits(100, 50, seed=1).train_images)
    assert not torch.equal(a.train_labels, smoke.digits(100, 50, seed=2).train_labels)


def test_digits_refuses_more_than_the_set_has():
    with pytest.raises(ValueError, match="1797"):
        smoke.digits(1500, 500, seed=0)


def test_digits_refusal_is_a_data_error():
    # An AmpcoreError (a clear message, no traceback), still a ValueError for older callers.
    with pytest.raises(DataError, match="asked for 2000 \\(1500 train \\+ 500 test\\)"):
        smoke.digits(1500, 500, seed=0)


@pytest.mark.parametrize("split", ["train", "test"])
def test_zero_row_imdb_parquet_says_so(tmp_path, write_imdb, split):
    import pyarrow as pa

    write_imdb(tmp_path, 10, "train")
    path = _write_parquet(tmp_path, {"text": pa.array([], pa.string()),
                                     "label": pa.array([], pa.int64())}, split)
    with pytest.raises(DataError, match="holds no rows") as info:
        imdb.load_imdb(tmp_path, allow_download=False)
    assert str(path) in str(info.value)
