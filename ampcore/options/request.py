"""The run request: one face's resolved options (``Settings``) turned into the ``RunSpec``s it
trains, the same way for ``ampcore run`` and the suite.

Here, and only here, a ``RunSpec`` is made from the options: the profile and the device are
chosen, each asked workload's experiment is looked up (one missing for the profile is a usage
error naming both), and every precision mode is checked on the device once, not once per run.
What cannot run comes back with its reason, for each face to report its own way: ``ampcore
run`` stops on a mode named on purpose and notes one that came with ``all``; the suite skips
the cases. Imports torch; the faces import this module only when something is to train.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from ampcore.core import registry
from ampcore.core.errors import AmpcoreError, UnsupportedPrecisionError
from ampcore.core.profiles import WorkloadConfig, default_profile_name, get_profile
from ampcore.options.settings import Settings
from ampcore.options.table import get_option
from ampcore.train.graphs import capture_required, resolve_cuda_graphs
from ampcore.train.inject import check_applicable
from ampcore.train.precision import check_supported
from ampcore.train.spec import RunSpec, resolve_device


@dataclass(frozen=True)
class Request:
    """What ``settings`` ask to train, resolved against this machine (``build_request``)."""

    settings: Settings
    profile: str
    profile_reason: str | None  # why this profile, when the options named none
    device: str
    cuda_graphs: bool  # whether steps are captured in CUDA graphs
    # What stops every run (the device is absent, capture was asked for off CUDA); None: none.
    blocked: AmpcoreError | None
    # Each registered mode the device cannot run, with why (empty when ``blocked``).
    refused: Mapping[str, UnsupportedPrecisionError]

    def cannot_run(self, precision: str) -> AmpcoreError | None:
        """Why no run of ``precision`` can train here; None: it can."""
        return self.blocked or self.refused.get(precision)

    def spec(self, workload: str, precision: str, seed_index: int = 0) -> RunSpec:
        """The run of ``workload`` in ``precision``; seed index i > 0 trains with the profile's
        seed + i (weight init and batch order change, the data do not: --seeds)."""
        s = self.settings
        spec = RunSpec(workload=workload, precision=precision, profile=self.profile,
                       device=self.device, data_dir=s.data_dir, model=s.models.get(workload),
                       max_length=s.max_length, allow_download=s.download,
                       allow_random_init=s.allow_random_init, max_grad_norm=s.max_grad_norm,
                       compile=s.compile, cuda_graphs=self.cuda_graphs,
                       capture_fallback=not capture_required(s.cuda_graphs),
                       injections=s.inject, eval_samples=s.eval_samples)
        if seed_index:
            spec = dataclasses.replace(spec, train_seed=spec.workload_config().seed + seed_index)
        return spec

    def config(self, workload: str) -> WorkloadConfig:
        """``workload``'s experiment in this request: its profile's, with the options'
        overrides; a UsageError when it has none for the profile."""
        return self.spec(workload, registry.REFERENCE_PRECISION).workload_config()

    @property
    def runs(self) -> list[RunSpec]:
        """The asked runs that can train here, in training order: by workload, then training
        seed, then precision (each seed's modes together, so the reference trains first)."""
        if self.blocked:
            return []
        s = self.settings
        return [self.spec(workload, precision, index) for workload in s.workloads
                for index in range(s.seeds) for precision in s.precisions
                if precision not in self.refused]

    def unused_options(self) -> str | None:
        """What to tell a user whose options this request does not use, or None: a data
        directory the profile does not read (the smoke profile builds its data in), a
        sequence length no asked workload takes."""
        s, notes = self.settings, []
        if s.data_dir is not None and not get_profile(self.profile).real_data:
            option = get_option("data_dir")
            notes.append(f"{option.flag(s.command)} / ${option.env} {s.data_dir} is not used: "
                         f"the {self.profile} profile trains on built-in data (the seed profile "
                         "reads the data sets)")
        if s.max_length is not None and not any(
                registry.workload_entry(w).accepts("max_length") for w in s.workloads):
            option = get_option("max_length")
            notes.append(f"{option.flag(s.command)} / ${option.env} {s.max_length} is not used: "
                         f"{', '.join(s.workloads)} take{'s' if len(s.workloads) == 1 else ''} "
                         "no sequence length")
        return "; ".join(notes) or None


def build_request(settings: Settings) -> Request:
    """``settings`` resolved against this machine: the profile (the device's default when none
    is named), the device, the step mode and every precision mode checked once. A workload asked
    for that has no experiment in the profile is a UsageError, raised before anything trains."""
    profile, reason = ((settings.profile, None) if settings.profile is not None
                       else default_profile_name())
    device = settings.device or ("cuda" if torch.cuda.is_available() else "cpu")
    blocked, cuda_graphs, refused = None, False, {}
    try:
        resolved = resolve_device(device)
        cuda_graphs = resolve_cuda_graphs(settings.cuda_graphs, resolved)
    except AmpcoreError as exc:
        blocked = exc
    else:
        refused = _refused(resolved)
    request = Request(settings, profile, reason, device, cuda_graphs, blocked, refused)
    for workload in settings.workloads:
        request.config(workload)
    for precision in settings.precisions:
        check_applicable(settings.inject, registry.get_precision(precision))
    return request


def _refused(device: torch.device) -> dict[str, UnsupportedPrecisionError]:
    """Every registered mode ``device`` cannot run, each checked once: the suite's prerequisites
    (the reference, the mode a claim is measured over) may lie outside the asked modes."""
    refused = {}
    for precision in registry.PRECISIONS.values():
        try:
            check_supported(precision, device)
        except UnsupportedPrecisionError as exc:
            refused[precision.id] = exc
    return refused
