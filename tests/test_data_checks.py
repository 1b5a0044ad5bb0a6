"""One missing-data check per data set: the suite's up-front check (``DATA_CHECKS``) is the
test the loaders make themselves, and their refusal carries its one message."""

import pytest

from ampcore.data import DATA_CHECKS, data_not_found, imdb, mnist
from ampcore.core.errors import DataError

pytestmark = pytest.mark.usefixtures("isolated_env")

LOADERS = {"imdb": (imdb, "imdb_missing", imdb.load_imdb),
           "mnist": (mnist, "mnist_missing", mnist.load_mnist)}


@pytest.mark.parametrize("data", sorted(LOADERS))
@pytest.mark.parametrize("given", ["no data dir", "empty data dir"])
def test_a_loader_refuses_with_the_checks_own_message(tmp_path, data, given):
    data_dir = None if given == "no data dir" else tmp_path
    _, check = DATA_CHECKS[data]
    with pytest.raises(DataError) as info:
        LOADERS[data][2](data_dir, allow_download=False)
    assert str(info.value) == str(data_not_found(data, check(data_dir)))
    assert "--data-dir" in str(info.value) and "--download" in str(info.value)


@pytest.fixture
def present(tmp_path, write_imdb, write_mnist, hf_datasets_cache):
    """A data directory holding both data sets, which the real checks find complete."""
    write_imdb(tmp_path, 10, "train")
    write_mnist(tmp_path, 9, 4)
    assert all(check(tmp_path) is None for _, check in DATA_CHECKS.values())
    return tmp_path


@pytest.mark.parametrize("data", sorted(LOADERS))
def test_the_loaders_presence_test_is_the_check(monkeypatch, present, data):
    """With the files there but the check saying otherwise, the loader goes by the check: no
    second test of its own that could disagree with the suite's."""
    module, name, load = LOADERS[data]
    monkeypatch.setattr(module, name, lambda data_dir: "a stand-in reason")
    with pytest.raises(DataError, match="data not found: a stand-in reason"):
        load(present, allow_download=False)


@pytest.mark.parametrize("data", sorted(LOADERS))
def test_with_the_check_satisfied_the_loader_loads(present, data):
    """The negative control: the same directory, the real check, no refusal."""
    loaded = LOADERS[data][2](present, allow_download=False)
    assert loaded is not None
