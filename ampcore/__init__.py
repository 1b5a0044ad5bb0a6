"""ampcore: a performance regression suite for PyTorch automatic mixed precision training.

The subpackages are layers; each imports only from the layers before it in ``LAYERS``
(``tests/test_layers.py`` enforces it, and the README's Layout is generated from it):
the leaves (``core``), data and instruments (``data``, ``measure``), what is trained
(``workloads``, ``train``), judging and launching runs (``judge``, ``launch``), saved
histories (``history``), and the faces (``options``, ``suite``, ``cli``).
"""

__version__ = "0.1.0"

# Bottom to top; the last entry holds the command-line face (modules at the package's top).
LAYERS = ("core", "data", "measure", "workloads", "train", "judge", "launch", "history",
          "options", "suite", "cli")
