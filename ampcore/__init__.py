"""ampcore: a performance regression suite for PyTorch automatic mixed precision training.

Layers, each importing only from those below it:

1. leaves (torch-free): ``errors``, ``registry`` (every precision and workload id),
   ``options`` (every option), ``record`` (what a benchmark saves), ``metrics`` (what the
   gate judges); and ``precision``, ``profiles``, ``timing``, ``environment``, ``flops``,
   ``stats``, ``data``, ``counters``
2. ``workloads``: model, optimizer and device-resident data for each workload; ``inject``:
   regressions applied to a prepared workload on purpose
3. ``steps`` (eager or captured) and ``loop``: the one training code path, in timed rounds
4. ``spec`` + ``run``: profile + workload + precision -> ``RunResult``; ``distributed``: the
   same under DistributedDataParallel through torchrun; ``result``, ``gates``, ``table``
5. faces: ``cli``, ``suite`` (the pytest plugin); and ``history`` over saved runs
"""

__version__ = "0.1.0"
