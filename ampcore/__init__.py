"""ampcore: a performance regression suite for PyTorch automatic mixed precision training.

Layers, each importing only from those below it:

1. leaves: ``errors``, ``precision``, ``profiles``, ``timing``, ``environment``, ``flops``,
   ``stats``, ``data``
2. ``workloads``: model, optimizer and device-resident data for each workload
3. ``loop``: the one training code path, in timed rounds
4. ``run``: profile + workload + precision -> ``RunResult``; ``distributed``: the same under
   DistributedDataParallel through torchrun; ``result``, ``gates``, ``table`` over results
5. faces: ``cli``, ``pytest_plugin``; and ``history`` over saved pytest-benchmark runs
"""

__version__ = "0.1.0"
