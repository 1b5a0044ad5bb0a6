"""A second ampcore process training on the same device is warned (``ampcore.measure.tenancy``);
a run alone on its device is not."""

import subprocess
import sys
import warnings

import pytest

from ampcore.measure.tenancy import SharedDeviceWarning, lock_path, sole_tenant

HOLD = """
import sys, time
from ampcore.measure.tenancy import sole_tenant
with sole_tenant("cuda:7", "holder"):
    print("held", flush=True)
    sys.stdin.readline()
"""


def test_a_second_tenant_is_warned_and_trains_anyway(tmp_path, monkeypatch):
    monkeypatch.setenv("AMPCORE_LOCK_DIR", str(tmp_path))
    holder = subprocess.Popen([sys.executable, "-c", HOLD], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True,
                              env={**__import__("os").environ, "AMPCORE_LOCK_DIR": str(tmp_path)})
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.warns(SharedDeviceWarning, match="another ampcore process is training on "
                                                     "cuda:7"):
            with sole_tenant("cuda:7", "bert-amp-bf16") as alone:
                assert alone is False
        with warnings.catch_warnings():  # another device is free
            warnings.simplefilter("error")
            with sole_tenant("cuda:6", "bert-amp-bf16") as alone:
                assert alone is True
    finally:
        holder.communicate("\n", timeout=30)
    with warnings.catch_warnings():  # negative control: the holder is gone, the device is free
        warnings.simplefilter("error")
        with sole_tenant("cuda:7", "bert-amp-bf16") as alone:
            assert alone is True
    assert lock_path("cuda:7").parent == tmp_path
