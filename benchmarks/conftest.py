"""The AMP benchmark suite. Options, matrix, fixtures and summary come from the ampcore
pytest plugin (``ampcore.pytest_plugin``, loaded through its entry point); see
``pytest benchmarks --help`` under "AMP training benchmarks"."""

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # Keep raw round timings in saved histories (pytest-benchmark's --benchmark-save-data), so
    # `ampcore compare` can run statistics on them. Runs before pytest-benchmark reads it.
    if hasattr(config.option, "benchmark_save_data"):
        config.option.benchmark_save_data = True
