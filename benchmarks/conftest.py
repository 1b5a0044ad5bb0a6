"""The AMP benchmark suite. Options, matrix, fixtures and summary come from the ampcore
pytest plugin (``ampcore.suite.plugin``, loaded through its entry point); see
``pytest benchmarks --help`` under "AMP training benchmarks"."""

import pytest

from ampcore.suite import benchmark_adapter


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # Keep raw round timings in saved histories (pytest-benchmark's --benchmark-save-data), so
    # `ampcore compare` can run statistics on them. Runs before pytest-benchmark reads it.
    benchmark_adapter.save_raw_rounds(config)
