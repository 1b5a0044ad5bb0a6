"""The suite's test functions as a public module: the whole AMP matrix in any repository is
one line in a test file, ``from ampcore.suite.matrix import *`` (docs/YOUR-MODEL.md).

pytest collects imported test functions under the file that imports them, so the benchmarks
are saved as ``<that file>::test_train[<workload>-<precision>]`` and ``ampcore compare``
matches them by those names. Two parts, importable on their own:

- ``amp``: ``test_train``, ``test_amp_beats_fp32``, ``test_accuracy_parity``,
  ``test_loss_parity``, ``test_precision_pays_where_measured``, ``test_amp_health``
- ``ddp``: ``test_ddp_train``, ``test_ddp_amp_beats_fp32`` (skipped without ``--amp-nproc``)

Import it from one test file only: each file that imports it collects the matrix again.
The workloads and precisions are the registries' (``--amp-workloads``, ``--amp-precisions``).
"""

from ampcore.suite.matrix import amp, ddp
from ampcore.suite.matrix.amp import *  # noqa: F401,F403  (the tests, for ``import *``)
from ampcore.suite.matrix.ddp import *  # noqa: F401,F403

__all__ = [*amp.__all__, *ddp.__all__]
