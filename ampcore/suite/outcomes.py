"""Nothing passes silently: the suite's checks on what a session really measured.

- ``--amp-require-cuda`` / ``AMPCORE_REQUIRE_CUDA=1``: a session on a machine without usable
  CUDA is a usage error before collection, not a green run of skipped GPU benchmarks.
- A session in which every test of the ampcore matrix (the tests parametrised by
  ``amp_workload``) skipped measured nothing: it exits non-zero with the skip reasons, so a CI
  job cannot mistake "26 skipped" for a pass.

Torch is imported only when ``--amp-require-cuda`` asks for the check.
"""

from __future__ import annotations

from collections import Counter

import pytest

# pytest's own status for "the tests failed": the session measured nothing it was asked to.
ALL_SKIPPED_EXIT = pytest.ExitCode.TESTS_FAILED


def cuda_problem(device: str | None) -> str | None:
    """Why CUDA is not usable for the suite (None when it is)."""
    if device is not None and not device.startswith("cuda"):
        return (f"--amp-require-cuda with --amp-device {device}: drop one of them "
                "(--amp-device cuda, or no --amp-require-cuda)")
    import torch

    if not torch.cuda.is_available():
        built = torch.version.cuda or "no CUDA (a CPU-only build)"
        return (f"--amp-require-cuda: CUDA is not usable (torch {torch.__version__} built with "
                f"{built}; torch.cuda.is_available() is False): check the GPU, its driver "
                "(nvidia-smi) and that the installed torch is a CUDA build")
    return None


def is_matrix_item(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    return callspec is not None and "amp_workload" in callspec.params


class Outcomes:
    """The outcome of every matrix test that ran, and the skip reasons; registered as a
    plugin of its own so it hears every test report."""

    def __init__(self) -> None:
        self.matrix: set[str] = set()
        self.ran: set[str] = set()  # passed or failed in any phase
        self.skipped: dict[str, str] = {}

    @pytest.hookimpl(trylast=True)  # after deselection (-k, -m)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        self.matrix = {item.nodeid for item in items if is_matrix_item(item)}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.nodeid not in self.matrix:
            return
        if report.skipped:
            longrepr = report.longrepr
            reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
            self.skipped.setdefault(report.nodeid, reason.removeprefix("Skipped: "))
        elif report.when == "call" or report.failed:
            self.ran.add(report.nodeid)

    @property
    def all_skipped(self) -> bool:
        return bool(self.skipped) and not self.ran

    def message(self) -> str:
        reasons = Counter(self.skipped.values())
        lines = [f"ampcore: every benchmark of the matrix skipped ({len(self.skipped)} tests): "
                 "nothing was measured, so the session fails. Reasons:"]
        lines += [f"  {count} x {reason}" for reason, count in reasons.most_common()]
        return "\n".join(lines)
