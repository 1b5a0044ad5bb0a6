"""Errors raised while a run trains: out of memory, named with what to change."""

import pytest
import torch

from ampcore.core.errors import DeviceOutOfMemoryError
from ampcore.train.loop import Trainer
from ampcore.train.run import Experiment
from ampcore.train.spec import RunSpec


def test_out_of_memory_names_workload_precision_batch_and_length(monkeypatch):
    def run_out_of_memory(self, round_index):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(Trainer, "run_round", run_out_of_memory)
    with Experiment(RunSpec("bert", "fp32", "smoke", device="cpu")) as experiment:
        with pytest.raises(DeviceOutOfMemoryError) as raised:
            experiment.train_round(0)
    message = str(raised.value)
    for part in ("bert/fp32", "batch size 32", "max length 32", "Tried to allocate 2.00 GiB"):
        assert part in message
