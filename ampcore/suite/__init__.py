"""The AMP benchmark suite as a pytest plugin, split the way pytest-benchmark splits its own:

- ``options``: the suite's options, the ``suite`` rows of ``ampcore.options.table`` (torch-free)
- ``session``: ``SuiteSession``, the session of runs: trains each case once and records what it
  measured as ``ampcore.judge.record.BenchmarkRecord``s
- ``plugin``: hooks and fixtures (the ``pytest11`` entry point)
- ``benchmark_adapter``: the only module touching pytest-benchmark's internals
- ``cases``: which (workload, precision) cases each matrix test is generated for
- ``guards``: sessions stopped once, up front (seed data missing, -n on the suite)
- ``matrix``: the suite's tests, public: ``from ampcore.suite.matrix import *`` in a test file
  runs the whole matrix there (docs/YOUR-MODEL.md)

Benchmarks of your own import ``enforce`` from here: ``from ampcore.suite import enforce``.
"""

from ampcore.suite.plugin import enforce
from ampcore.suite.session import SuiteSession

__all__ = ["SuiteSession", "enforce"]
