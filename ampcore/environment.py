"""The software and hardware a measurement was taken on."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata

import torch

from ampcore.precision import tf32_flags


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


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


def capture(device: torch.device | str) -> dict:
    """GPU name and capability, driver, CUDA, cuDNN, library versions and effective TF32 flags."""
    device = torch.device(device)
    info = {
        "device_type": device.type,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "transformers": _version("transformers"),
        "torchvision": _version("torchvision"),
        "datasets": _version("datasets"),
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
        info["cpu"] = platform.processor() or platform.machine()
    return info
