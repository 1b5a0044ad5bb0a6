"""The environment record: what a measurement was taken on, CPU and libraries included."""

import os
from importlib import metadata

from ampcore.measure import environment

TRAINING_LIBRARIES = {"torch", "transformers", "tokenizers", "datasets", "torchvision",
                      "safetensors", "huggingface_hub", "numpy", "torchao"}


def test_cpu_record_has_the_core_counts_and_the_cpu_model():
    info = environment.capture("cpu")
    assert info["cpu_count"] == os.cpu_count()
    if hasattr(os, "sched_getaffinity"):
        assert info["cpu_affinity"] == len(os.sched_getaffinity(0))
    assert info["cpu_model"] == environment.cpu_model()
    assert info["cpu"]  # the old key keeps its value: saved histories compare it


def test_cpu_model_is_read_from_proc_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\n"
                       "model name\t: Intel(R) Xeon(R) Platinum 8480+\n\nprocessor\t: 1\n")
    assert environment.cpu_model(cpuinfo) == "Intel(R) Xeon(R) Platinum 8480+"
    # Some ARM kernels name the processor "Processor" and have no "model name".
    cpuinfo.write_text("Processor\t: AArch64 Processor rev 1 (aarch64)\nprocessor\t: 0\n")
    assert environment.cpu_model(cpuinfo) == "AArch64 Processor rev 1 (aarch64)"


def test_cpu_model_without_proc_cpuinfo_falls_back_to_platform(tmp_path, monkeypatch):
    monkeypatch.setattr(environment.platform, "processor", lambda: "arm")
    assert environment.cpu_model(tmp_path / "absent") == "arm"


def test_record_names_every_library_on_the_training_path():
    info = environment.capture("cpu")
    libraries = info["libraries"]
    assert set(libraries) == TRAINING_LIBRARIES
    for name, version in libraries.items():
        if name != "torch":  # torch's own string, which names its CUDA build
            try:
                assert version == metadata.version(name.replace("_", "-"))
            except metadata.PackageNotFoundError:
                assert version is None
    for key in ("torch", "transformers", "torchvision", "datasets"):  # still at the top level
        assert info[key] == libraries[key]


def test_an_absent_library_is_recorded_as_none(monkeypatch):
    real = metadata.version

    def version(name):
        if name == "torchao":
            raise metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(metadata, "version", version)  # what versions.installed_version reads
    libraries = environment.capture("cpu")["libraries"]
    assert "torchao" in libraries and libraries["torchao"] is None
    assert libraries["tokenizers"] == real("tokenizers")


def test_record_keeps_the_keys_other_code_reads():
    kept = {"device_type", "python", "platform", "torch", "transformers", "torchvision",
            "datasets", "cuda", "cudnn", "tf32", "gpu", "gpu_capability", "gpu_count", "driver", "cpu"}
    assert kept <= set(environment.capture("cpu"))
