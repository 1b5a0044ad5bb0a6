"""Where a llama training step's GPU time goes (docs/PERFORMANCE.md, issue 15's MFU).

Builds the suite's llama run (seed profile, eager steps, no probe), warms it up, then profiles
STEPS eager steps with torch.profiler and sums the CUDA kernels' time per step by kind
(matmul, attention, loss, optimizer, float8 casts, the rest: elementwise and norms), with the
step's model FLOPs over that time. Prints a short table and the top kernels.

Usage: python scripts/investigations/llama-profile.py DATA_DIR [PRECISION] [ARCH] [--compile]
"""

from __future__ import annotations

import re
import sys
from collections import Counter

KINDS = (  # first match wins
    ("attention", re.compile(r"flash|fmha|attention|sdpa|cudnn", re.I)),
    ("matmul", re.compile(r"gemm|xmma|cutlass|sm90|cublas|matmul|scaled_mm", re.I)),
    ("loss", re.compile(r"softmax|nll|cross_entropy", re.I)),
    ("optimizer", re.compile(r"adam|foreach|multi_tensor", re.I)),
    ("float8 casts", re.compile(r"float8|fp8|amax|e4m3", re.I)),
)
STEPS = 3
PEAK_TFLOPS = 780.0  # the measured bf16 matmul ceiling of an H200 (docs/PERFORMANCE.md)


def kind(name: str) -> str:
    return next((k for k, pattern in KINDS if pattern.search(name)), "elementwise, norms, other")


def main(data_dir: str, precision: str, arch: str, compile_model: bool) -> None:
    import torch
    from torch.profiler import ProfilerActivity, profile

    from ampcore.options.request import build_request
    from ampcore.options.table import RUN, resolve
    from ampcore.train.run import Experiment

    # The run `ampcore run` would make of these options.
    settings = resolve(RUN, {"profile": "seed", "device": "cuda", "data_dir": data_dir,
                             "llama_model": arch, "cuda_graphs": "off", "eval_samples": "0",
                             "compile": compile_model}, environ={})
    spec = build_request(settings).spec("llama", precision)
    with Experiment(spec) as exp:
        exp.trainer.probe_steps = 0
        exp.start()
        trainer, batch = exp.trainer, exp.plan.batches[0]
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(STEPS):
                trainer._finish_step(0, trainer._train_step(batch))
            torch.cuda.synchronize()
        flops = exp.workload.flops_per_sample * len(batch)
    per_kind: Counter[str] = Counter()
    per_kernel: Counter[str] = Counter()
    for event in prof.events():
        if event.device_type == torch.autograd.DeviceType.CUDA:
            us = event.time_range.elapsed_us() / STEPS
            per_kind[kind(event.name)] += us
            per_kernel[event.name[:90]] += us
    total = sum(per_kind.values())
    print(f"llama {arch} {precision}{' compiled' if compile_model else ''}, batch {len(batch)}: "
          f"kernels {total / 1e3:.1f} ms/step, model {flops / 1e12:.2f} TFLOP/step -> "
          f"{flops / total / 1e6:.0f} TFLOP/s of kernel time "
          f"({flops / total / 1e6 / PEAK_TFLOPS:.1%} of {PEAK_TFLOPS:.0f})")
    for name, us in per_kind.most_common():
        print(f"  {name:>26}: {us / 1e3:7.2f} ms/step ({us / total:5.1%})")
    print("  top kernels:")
    for name, us in per_kernel.most_common(12):
        print(f"    {us / 1e3:7.2f} ms  {name}")


if __name__ == "__main__":
    argv = [a for a in sys.argv[1:] if a != "--compile"]
    main(argv[0], argv[1] if len(argv) > 1 else "amp-bf16",
         argv[2] if len(argv) > 2 else "llama-125m", "--compile" in sys.argv)
