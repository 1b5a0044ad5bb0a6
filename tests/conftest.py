"""Shared fixtures for the CPU unit tests of the ampcore core.

Everything here is self-contained: no network, no ../shared, no files outside tmp paths.
torch is imported inside the fixtures that need it: the history tests never import it, and
importing it takes seconds on a shared 2-core machine. Scaffolding that is not a fixture
(synthetic saved histories) lives in ``tests.support``.
"""

import gzip
import struct

import pytest


# --- pytest-xdist (``pytest tests -n auto``) ---------------------------------------------------

SERIAL_GROUP = "serial"


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """Under ``-n``, schedule by group (``--dist loadgroup``) unless another mode was asked for:
    the tests marked ``serial`` then run one after another in one worker (``-n`` alone means
    ``--dist load``, which would spread them). A worker parses the command line again, without
    xdist's defaults: the controller's mode reaches it in ``workerinput``."""
    if getattr(config.option, "numprocesses", None) and config.option.dist == "load":
        config.option.dist = "loadgroup"
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and workerinput.get("ampcore_dist") == "loadgroup":
        config.option.loadgroup = True  # xdist's worker then suffixes the group to node ids


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """(xdist, in the controller) Tell each worker the scheduling mode (``pytest_configure``)."""
    node.workerinput["ampcore_dist"] = node.config.option.dist


@pytest.hookimpl(tryfirst=True)  # before xdist's own, which reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Put every ``serial`` test in one xdist group: one worker runs them, one at a time."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        if item.get_closest_marker("serial") is not None:
            item.add_marker(pytest.mark.xdist_group(SERIAL_GROUP))


@pytest.fixture(autouse=True)
def _terminal_width_of_a_pipe(monkeypatch):
    """Every test sees a 100-column terminal, what ``shutil.get_terminal_size`` falls back to
    when stdout is a pipe (CI): an xdist worker sets ``COLUMNS=80``, which narrowed the text
    tables and dropped their evidence column under ``-n`` only. A test may set its own."""
    monkeypatch.setenv("COLUMNS", "100")


@pytest.fixture(autouse=True)
def _no_xdist_marker_for_child_sessions(monkeypatch):
    """pytest-benchmark turns itself off in any process that sees PYTEST_XDIST_WORKER, and
    the suite sessions some tests start as subprocesses inherit it under ``-n``."""
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)


# --- isolation --------------------------------------------------------------------------------

@pytest.fixture
def isolated_env(monkeypatch, tmp_path_factory):
    """ampcore's cache in a fresh tmp dir and no data dir from the environment, so a test
    never reads the developer's data nor writes to the home directory."""
    cache = tmp_path_factory.mktemp("ampcore-cache")
    monkeypatch.setenv("AMPCORE_CACHE_DIR", str(cache))
    monkeypatch.delenv("AMPCORE_DATA_DIR", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # never wait on the (unreachable) hub
    return cache


@pytest.fixture(scope="module")
def one_cpu_thread():
    """One intra-op thread for a test module, restored after it.

    The models here are tiny: a second thread gains little, and when the CPU is shared
    (another job, pytest-xdist workers) OpenMP threads waiting on each other make a smoke run
    ten times slower. One thread keeps the suite's run time predictable."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def hf_datasets_cache(monkeypatch, tmp_path_factory):
    """`datasets` turns every parquet file it loads into an Arrow cache; keep that in tmp.
    Its cache path is read from the environment at import time, so patch the module value."""
    import datasets

    cache = tmp_path_factory.mktemp("hf-datasets-cache")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    return cache


# --- data files written by the tests themselves ------------------------------------------------

@pytest.fixture
def write_imdb():
    """``write_imdb(data_dir, n, split="train", columns=None)``: an IMDB-like parquet file at
    ``<data_dir>/imdb/<split>.parquet`` with balanced labels; returns its path."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def write(data_dir, n, split="train", columns=None, labels=None):
        texts = [f"review number {i} was {'great' if i % 2 else 'awful'}" for i in range(n)]
        labels = labels if labels is not None else [i % 2 for i in range(n)]
        names = columns or ("text", "label")
        table = pa.table({names[0]: texts, names[1]: labels})
        path = data_dir / "imdb" / f"{split}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)
        return path

    return write


@pytest.fixture
def write_mnist():
    """``write_mnist(data_dir, n_train, n_test, compress=True, seed=0)``: the four MNIST IDX
    files under ``<data_dir>/mnist/MNIST/raw/`` (gzipped unless ``compress=False``).

    Returns a dict: ``raw`` (the directory), ``files`` (name -> path), ``payloads`` (name ->
    the uncompressed IDX bytes) and the uint8 ``train_images``/``test_images`` and
    ``train_labels``/``test_labels`` written."""
    import torch

    def idx_images(images):
        # IDX: big-endian magic 0x00000803 (unsigned bytes, 3 dims), the dims, then the bytes.
        n, h, w = images.shape
        return struct.pack(">IIII", 2051, n, h, w) + images.numpy().tobytes()

    def idx_labels(labels):
        return struct.pack(">II", 2049, len(labels)) + labels.numpy().tobytes()

    def write(data_dir, n_train=6, n_test=3, compress=True, seed=0):
        g = torch.Generator().manual_seed(seed)
        data = {
            "train_images": torch.randint(0, 256, (n_train, 28, 28), generator=g, dtype=torch.uint8),
            "train_labels": torch.randint(0, 10, (n_train,), generator=g, dtype=torch.uint8),
            "test_images": torch.randint(0, 256, (n_test, 28, 28), generator=g, dtype=torch.uint8),
            "test_labels": torch.randint(0, 10, (n_test,), generator=g, dtype=torch.uint8),
        }
        contents = {
            "train-images-idx3-ubyte": idx_images(data["train_images"]),
            "train-labels-idx1-ubyte": idx_labels(data["train_labels"]),
            "t10k-images-idx3-ubyte": idx_images(data["test_images"]),
            "t10k-labels-idx1-ubyte": idx_labels(data["test_labels"]),
        }
        raw = data_dir / "mnist" / "MNIST" / "raw"
        raw.mkdir(parents=True, exist_ok=True)
        files = {}
        for name, payload in contents.items():
            path = raw / (f"{name}.gz" if compress else name)
            path.write_bytes(gzip.compress(payload) if compress else payload)
            files[name] = path
        return {"raw": raw, "files": files, "payloads": contents, **data}

    return write


# --- a tiny hand-built workload for the training loop ------------------------------------------

@pytest.fixture
def make_tiny_workload():
    """``make_tiny_workload(n_train=50, ...)``: a ``PreparedWorkload`` with a small MLP on
    linearly separable random data; the same arguments always give the same weights and data."""
    import torch

    from ampcore.workloads.base import PreparedWorkload, linear_schedule, make_adamw

    def make(n_train=50, n_test=40, dim=8, hidden=16, dropout=0.0, lr=0.05, seed=0,
             scheduler_steps=None):
        g = torch.Generator().manual_seed(seed)
        direction = torch.randn(dim, generator=g)
        train_x = torch.randn(n_train, dim, generator=g)
        test_x = torch.randn(n_test, dim, generator=g)
        torch.manual_seed(seed)
        layers = [torch.nn.Linear(dim, hidden), torch.nn.ReLU()]
        if dropout:
            layers.append(torch.nn.Dropout(dropout))
        layers.append(torch.nn.Linear(hidden, 2))
        model = torch.nn.Sequential(*layers)
        device = torch.device("cpu")
        optimizer = make_adamw(model, lr, 0.01, device)
        return PreparedWorkload(
            name="tiny", model=model, optimizer=optimizer,
            scheduler=linear_schedule(optimizer, scheduler_steps) if scheduler_steps else None,
            forward=lambda m, inputs: m(inputs["x"]),
            train_inputs={"x": train_x}, train_labels=(train_x @ direction > 0).long(),
            test_inputs={"x": test_x}, test_labels=(test_x @ direction > 0).long(),
            data_source="random separable points", weights_source="random init",
            accuracy_meaningful=True,
        )

    return make


@pytest.fixture
def train_all():
    """``train_all(trainer)``: run every planned round of a ``Trainer``."""

    def run(trainer):
        for r in range(len(trainer.plan.rounds)):
            trainer.run_round(r)
        return trainer

    return run


# --- results ----------------------------------------------------------------------------------

@pytest.fixture
def make_result():
    """``make_result(**overrides)``: a hand-made ``RunResult`` with round numbers: 3 rounds
    (1 s, 2 s, 1 s for 100, 100, 50 samples), so 62.5 samples/s."""
    from ampcore.train.result import RunResult

    def make(**overrides):
        fields = dict(
            workload="bert", precision="amp-fp16", profile="seed", device="cuda:0", config={},
            data_source="d", weights_source="w", accuracy_meaningful=True,
            round_times_s=[1.0, 2.0, 1.0], samples_per_round=[100, 100, 50], total_steps=10,
            warmup_time_s=0.5, eval_time_s=0.25, accuracy_per_epoch=[0.6, 0.9],
            test_loss_per_epoch=[0.7, 0.3], train_losses=[0.7, 0.2], predictions=[0, 1],
            peak_memory_bytes=2**30,
            grad_scaler={"enabled": True, "final_scale": 1024.0, "skipped_steps": 3},
            nonfinite_losses=3, environment={}, tokens_per_sample=256, flops_per_sample=1e11,
        )
        fields.update(overrides)
        return RunResult(**fields)

    return make


# --- tiny BERT model directories ---------------------------------------------------------------

@pytest.fixture(scope="session")
def tiny_bert_dirs(tmp_path_factory):
    """Two local BERT sources with a WordPiece tokenizer: ``config_only`` (config and
    tokenizer, no weights) and ``fp16_weights`` (a tiny model saved in float16)."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from ampcore.data import smoke

    texts = smoke.sentiment_corpus(64, 16, seed=0).train_texts
    tokenizer = smoke.train_wordpiece_tokenizer(texts)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=64, num_labels=2)
    root = tmp_path_factory.mktemp("bert")
    config_only = root / "config_only"
    config.save_pretrained(config_only)
    tokenizer.save_pretrained(config_only)
    fp16_weights = root / "fp16_weights"
    torch.manual_seed(0)
    BertForSequenceClassification(config).half().save_pretrained(fp16_weights)
    tokenizer.save_pretrained(fp16_weights)
    return {"config_only": config_only, "fp16_weights": fp16_weights, "hidden_size": 32}


# --- the smoke runs, shared by every test that needs one ---------------------------------------

@pytest.fixture(scope="session")
def smoke_run():
    """``smoke_run(workload, precision)``: the ``RunResult`` of a full smoke-profile CPU run,
    trained at most once per session (each takes seconds)."""
    from ampcore.train.run import run_experiment
    from ampcore.train.spec import RunSpec

    cache = {}

    def get(workload, precision):
        if (workload, precision) not in cache:
            cache[workload, precision] = run_experiment(
                RunSpec(workload, precision, "smoke", device="cpu"))
        return cache[workload, precision]

    return get
