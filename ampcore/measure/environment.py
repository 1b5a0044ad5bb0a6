"""The software and hardware a measurement was taken on."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import torch

from ampcore.core.versions import installed_version

# Every library on the training path: a version change in any of them can move the numbers.
# Distribution names (huggingface-hub is imported as huggingface_hub); None when absent.
LIBRARIES = ("torch", "transformers", "tokenizers", "datasets", "torchvision", "safetensors",
             "huggingface-hub", "numpy", "torchao")
CPUINFO = Path("/proc/cpuinfo")


def _driver_version() -> str | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            version = pynvml.nvmlSystemGetDriverVersion()
            return version.decode() if isinstance(version, bytes) else version
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # no NVML library, or no driver
        pass
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20, check=True)
        return out.stdout.strip().splitlines()[0] or None
    except (OSError, subprocess.SubprocessError, IndexError):
        return None


def library_versions() -> dict[str, str | None]:
    """Installed versions by import name; torch's own string, which names the CUDA build."""
    versions = {name.replace("-", "_"): installed_version(name) for name in LIBRARIES}
    versions["torch"] = torch.__version__
    return versions


def cpu_model(cpuinfo: Path = CPUINFO) -> str | None:
    """The processor's marketing name ("model name" in /proc/cpuinfo on Linux x86; some ARM
    kernels say "Processor" or "Hardware"); platform.processor() is often just "x86_64" or ""."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:  # not Linux
        return platform.processor() or None
    for key in ("model name", "Processor", "Hardware", "cpu model"):
        for line in text.splitlines():
            name, _, value = line.partition(":")
            if name.strip() == key and value.strip():
                return value.strip()
    return platform.processor() or None


def cpu_cores() -> dict[str, int | None]:
    """Logical CPUs of the machine, and those this process may run on (a container's or
    taskset's share), which bound what a CPU run can use."""
    try:
        affinity: int | None = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS and Windows have no sched_getaffinity
        affinity = None
    return {"cpu_count": os.cpu_count(), "cpu_affinity": affinity}


def capture(device: torch.device | str) -> dict:
    """GPU name and capability (or CPU model and cores), driver, CUDA, cuDNN, library versions
    and effective TF32 flags."""
    device = torch.device(device)
    libraries = library_versions()
    info = {
        "device_type": device.type,
        "python": platform.python_version(),
        "platform": platform.platform(),
        # The four top-level versions are read by older records' readers; all are in libraries.
        **{name: libraries[name] for name in ("torch", "transformers", "torchvision", "datasets")},
        "libraries": libraries,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "tf32": tf32_flags(),
        "gpu": None, "gpu_capability": None, "gpu_count": 0, "driver": None,
    }
    if device.type == "cuda" and torch.cuda.is_available():
        major, minor = torch.cuda.get_device_capability(device)
        info.update(gpu=torch.cuda.get_device_name(device), gpu_capability=f"{major}.{minor}",
                    gpu_count=torch.cuda.device_count(), driver=_driver_version())
    else:
        # "cpu" keeps its old value (history compares it); the model and cores are new keys.
        info.update(cpu=platform.processor() or platform.machine(), cpu_model=cpu_model(),
                    **cpu_cores())
    return info


# torch >= 2.9 has the ``fp32_precision`` API and refuses a mix of it with the legacy
# ``allow_tf32`` flags, so exactly one family is read (and set, by ``train.precision``).

def _has_fp32_precision_api() -> bool:
    return hasattr(torch.backends.cuda.matmul, "fp32_precision") and hasattr(
        torch.backends.cudnn, "conv"
    )


def tf32_flags() -> dict[str, bool]:
    """The effective TF32 settings for CUDA matmuls and cuDNN convolutions."""
    if _has_fp32_precision_api():
        matmul = torch.backends.cuda.matmul.fp32_precision
        if matmul == "none":  # inherits the global setting
            matmul = torch.backends.fp32_precision
        return {
            "matmul_tf32": matmul == "tf32",
            "cudnn_conv_tf32": torch.backends.cudnn.conv.fp32_precision == "tf32",
        }
    return {
        "matmul_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
        "cudnn_conv_tf32": bool(torch.backends.cudnn.allow_tf32),
    }
