"""ampcore: a performance regression suite for PyTorch automatic mixed precision training.

The subpackages are layers; each imports only from the layers before it in ``LAYERS``
(``tests/test_layers.py`` enforces it, and the README's Layout is generated from it):
the leaves (``core``), data and instruments (``data``, ``measure``), what is trained
(``workloads``, ``train``), judging and launching runs (``judge``, ``launch``), saved
histories (``history``), and the faces (``options``, ``suite``, ``cli``, and ``api``, the
public workload API: docs/WORKLOADS.md).
"""

__version__ = "0.1.0"

# Bottom to top; the last entry holds the faces at the package's top (cli, __main__, api).
LAYERS = ("core", "data", "measure", "workloads", "train", "judge", "launch", "history",
          "options", "suite", "cli")
