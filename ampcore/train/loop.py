"""The one training code path, run as timed rounds of whole optimizer steps.

The whole trajectory (epochs x shuffled batches) is planned up front from the seed
(``ampcore.train.plan``), then cut into rounds that end on epoch boundaries, so evaluation can
happen between rounds, outside any timed region, without changing what is trained. Nothing in
a step reads a value back to the host: losses go into a device buffer that is checked at round
boundaries.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ampcore.core.errors import NonFiniteLossError
from ampcore.train.plan import StepPlan
from ampcore.train.precision import ActivePrecision
from ampcore.measure.probe import PROBE_STEPS, StepProbe, probe_steps
from ampcore.train.graphs import CaptureFailed
from ampcore.train.steps import StepStrategy, step_strategy
from ampcore.workloads.base import PreparedWorkload


def class_loss(logits: torch.Tensor, labels: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy in float32 with the classes on the last dim of ``logits``: (samples,
    classes), or (sequences, tokens, vocab) for an LM with (sequences, tokens) labels.

    Flattened to (labels, classes) first, so the softmax runs over contiguous rows; an LM's
    (sequences, vocab, tokens) view would take the strided softmax and a copy of the logits."""
    return F.cross_entropy(logits.flatten(0, -2).float(), labels.flatten(), reduction=reduction)


@dataclass(frozen=True)
class Evaluation:
    accuracy: float
    loss: float
    predictions: list[int]
    correct: list[bool] = field(default_factory=list)  # per sample, for paired statistics

    def heldout_fields(self, seconds: float, source: str) -> dict:
        """This evaluation as a ``RunResult``'s held-out fields (correctness 1 bit a sample)."""
        from ampcore.measure.stats import pack_correct

        return {"heldout_samples": len(self.correct), "heldout_accuracy": self.accuracy,
                "heldout_correct": pack_correct(self.correct), "heldout_source": source,
                "heldout_time_s": seconds}


class Trainer:
    """Runs the planned steps of one workload under one active precision mode.

    How a step runs (eager, or captured in CUDA graphs) is its ``strategy``'s business
    (``ampcore.train.steps``); the trainer keeps the plan, the losses and the evaluation."""

    def __init__(self, workload: PreparedWorkload, amp: ActivePrecision, plan: StepPlan,
                 max_grad_norm: float | None = None, compile_model: bool = False,
                 eval_batch_size: int = 256,
                 wrap_model: Callable[[torch.nn.Module], torch.nn.Module] | None = None,
                 cuda_graphs: bool = False, probe_steps: int = PROBE_STEPS,
                 capture_fallback: bool = True) -> None:
        self.workload = workload
        self.amp = amp
        self.plan = plan
        self.max_grad_norm = max_grad_norm
        self.eval_batch_size = eval_batch_size
        self.device = amp.device
        self.strategy: StepStrategy = step_strategy(cuda_graphs)(
            workload.optimizer, self.device, allow_fallback=capture_fallback)
        self.warmup_steps = 0  # steps the warm-up ran on the plan's first batches
        self.probe_steps = probe_steps  # extra eager steps the warm-up measures (ampcore.measure.probe)
        # Counters trace every op: not under DDP (collectives) or torch.compile (a traced graph).
        self.count_ops = wrap_model is None and not compile_model
        self.probe: StepProbe | None = None
        # ``wrap_model`` (DistributedDataParallel, say) wraps before compiling, as torch.compile
        # expects; snapshots and restores keep using the unwrapped ``workload.model``. DDP is
        # built on the strategy's stream, as capturing its backward requires.
        with self.strategy.on_stream():
            model = wrap_model(workload.model) if wrap_model is not None else workload.model
        # Static shapes: one graph per batch size (warm-up visits each) beats a dynamic graph.
        self.model = torch.compile(model, dynamic=False) if compile_model else model
        # One slot per step: the loss stays on the device until a round boundary reads it.
        self.losses = torch.full((plan.total_steps,), float("nan"), device=self.device)
        self.steps_done = 0
        self.checked_steps = 0

    def _train_step(self, batch: torch.Tensor) -> torch.Tensor:
        """One optimizer step on the samples ``batch`` indexes; returns the detached loss.
        Free of host syncs, so it can be captured in a CUDA graph as it is."""
        workload, amp = self.workload, self.amp
        inputs = {name: t[batch] for name, t in workload.train_inputs.items()}
        labels = workload.train_labels[batch]
        workload.optimizer.zero_grad(set_to_none=True)
        with amp.forward_context():
            logits = workload.forward(self.model, inputs)
        loss = class_loss(logits, labels)
        amp.backward(loss)
        amp.optimizer_step(workload.optimizer, self.max_grad_norm)
        return loss.detach()

    def _finish_step(self, index: int, loss: torch.Tensor) -> None:
        if self.workload.scheduler is not None:
            self.workload.scheduler.step()  # captured: fills the LR tensor the graph reads
        self.losses[index] = loss

    def run_round(self, round_index: int) -> None:
        """Train the steps of one round. Asynchronous: the caller synchronises to time it."""
        self.model.train()
        for index in self.plan.rounds[round_index]:
            self._finish_step(index, self.strategy.step(self._train_step, self.plan.batches[index]))
            self.steps_done = index + 1

    def warm_up(self, steps: int) -> None:
        """Run ``steps`` steps (at least the strategy's minimum) plus one of every other batch
        shape in the plan (cuDNN autotuning, allocator, compilation, capture), then restore
        model, optimizer, scheduler, scaler and RNG state so the timed run trains exactly the
        planned trajectory."""
        saved = self._snapshot()
        batches = self._warmup_batches(max(steps, self.strategy.min_warmup_steps))
        self.model.train()
        try:
            self.strategy.warm_up(self._train_step, batches,
                                  lambda loss: self._finish_step(0, loss),
                                  probe=lambda: self._probe(batches))
        except CaptureFailed as failed:  # found after the eager warm-up steps, before capture
            self.amp.abandon_step()
            self.strategy.fall_back(failed.problem)  # eager from here, or the run stops
            self.workload.details["capture_fallback"] = {"reason": failed.problem.reason,
                                                         "site": failed.problem.site}
        self.evaluate()  # the eval path compiles and autotunes too
        self._restore(saved)
        self.losses.fill_(float("nan"))

    def _probe(self, batches: list[torch.Tensor]) -> None:
        """Measure ``probe_steps`` more eager steps of the plan's first batch shape."""
        if self.probe_steps < 1:
            return
        shape = [b for b in batches if len(b) == len(batches[0])]
        chosen = [shape[i % len(shape)] for i in range(self.probe_steps)]
        self.probe = probe_steps(lambda b: self._finish_step(0, self._train_step(b)), chosen,
                                 self.device, count=self.count_ops)

    def _warmup_batches(self, steps: int) -> list[torch.Tensor]:
        """The plan's first ``steps`` batches, then the first batch of each shape not yet seen."""
        batches = list(self.plan.batches[:steps])
        self.warmup_steps = len(batches)
        sizes = {len(b) for b in batches}
        for batch in self.plan.batches:
            if len(batch) not in sizes:
                sizes.add(len(batch))
                batches.append(batch)
        return batches

    def check_losses(self) -> dict:
        """Read the losses of the steps run since the last check (synchronises).

        Without a GradScaler a non-finite loss stops the run and names the step; with one, a
        non-finite loss is an overflow the scaler skips, counted in the health record.
        """
        window = self.losses[self.checked_steps:self.steps_done].cpu()
        bad = (~torch.isfinite(window)).nonzero().flatten().tolist()
        if bad and not self.amp.scaler.is_enabled():
            step = self.checked_steps + bad[0]
            raise NonFiniteLossError(self.workload.name, self.amp.precision.id, step,
                                     float(window[bad[0]]))
        self.checked_steps = self.steps_done
        return {"nonfinite_losses": len(bad)}

    def skipped_steps(self) -> int:
        """Optimizer steps the GradScaler skipped for inf/NaN gradients (read after training).

        Optimizers count the steps they really took in their state (the fused ones subtract
        the skipped ones on the device), so this needs no host sync inside the loop.
        """
        state = self.workload.optimizer.state
        params = [p for g in self.workload.optimizer.param_groups for p in g["params"]]
        taken = state[params[0]].get("step") if params and params[0] in state else None
        taken = 0 if taken is None else int(taken)
        return self.steps_done - taken

    @torch.no_grad()
    def evaluate(self, inputs: dict[str, torch.Tensor] | None = None,
                 labels: torch.Tensor | None = None) -> Evaluation:
        """Batched evaluation under the run's precision: the test split, or the given one."""
        workload = self.workload
        if inputs is None or labels is None:
            inputs, labels = workload.test_inputs, workload.test_labels
        self.model.eval()
        n = len(labels)
        total_loss = torch.zeros((), device=self.device)
        predictions = []
        for start in range(0, n, self.eval_batch_size):
            batch = {k: t[start:start + self.eval_batch_size] for k, t in inputs.items()}
            with self.amp.forward_context():
                logits = workload.forward(self.model, batch)
            batch_labels = labels[start:start + self.eval_batch_size]
            total_loss += class_loss(logits, batch_labels, reduction="sum")
            predictions.append(logits.argmax(dim=-1))
        predicted = torch.cat(predictions)
        correct = predicted == labels
        # Per label (a token of an LM), and one prediction per label, flattened.
        return Evaluation(correct.float().mean().item(), total_loss.item() / labels.numel(),
                          predicted.flatten().cpu().tolist(), correct.flatten().cpu().tolist())

    def evaluate_heldout(self) -> Evaluation | None:
        """The held-out set, once after training; None when the workload has none."""
        if self.workload.heldout_labels is None:
            return None
        return self.evaluate(self.workload.heldout_inputs, self.workload.heldout_labels)

    def _snapshot(self) -> dict:
        workload = self.workload
        cuda = self.device.type == "cuda"
        return {
            "model": copy.deepcopy(workload.model.state_dict()),
            "optimizer": copy.deepcopy(workload.optimizer.state_dict()),
            "scheduler": workload.scheduler.state_dict() if workload.scheduler else None,
            "scaler": self.amp.scaler.state_dict(),
            "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(self.device) if cuda else None,
        }

    def _restore(self, saved: dict) -> None:
        """Put back a ``_snapshot``. Values are copied into the existing tensors, never
        swapped, because captured steps read fixed addresses (the optimizer's state is the
        strategy's to restore)."""
        workload = self.workload
        workload.model.load_state_dict(saved["model"])  # copies into the existing tensors
        self.strategy.restore_optimizer(saved["optimizer"])
        if workload.scheduler is not None:
            workload.scheduler.load_state_dict(saved["scheduler"])
        if saved["scaler"]:
            self.amp.scaler.load_state_dict(saved["scaler"])  # fills the scale tensor in place
        self.amp.restart_scale_health()  # the timed training's growths and backoffs alone
        torch.set_rng_state(saved["rng"])
        if saved["cuda_rng"] is not None:
            torch.cuda.set_rng_state(saved["cuda_rng"], self.device)
