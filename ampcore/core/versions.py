"""The oldest library versions ampcore supports, checked where a run starts.

The floors are pyproject's lower bounds and the pins of ``tox -e oldest`` (.ci/oldest.txt);
tests/test_versions.py keeps the three in step. A library below its floor stops ``ampcore
run``, the training path (``ampcore.train.run``) and the suite with a message naming the library,
its version and the floor, instead of an error from deep inside a model. Installed versions
are read from package metadata, so nothing is imported to check them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import metadata

from packaging.version import InvalidVersion, Version

from ampcore.core.errors import AmpcoreError

# Distribution name -> oldest supported version.
TRAINING = {"torch": "2.5.1", "torchvision": "0.20.1", "transformers": "4.46.3",
            "tokenizers": "0.20.3", "datasets": "3.1.0"}
# What the suite runs on besides (pytest-benchmark is optional: absent, its tests skip).
SUITE = {"pytest": "8.3.0", "pytest-benchmark": "5.1.0"}
FLOORS = {**TRAINING, **SUITE}


class UnsupportedVersionError(AmpcoreError):
    """An installed library is older than the oldest version ampcore supports."""


def installed_version(name: str) -> str | None:
    """The installed distribution's version; None when it is not installed."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def is_older(version: str, floor: str) -> bool:
    """Compared by release number only: a vendor build of a supported release (NGC's torch
    "2.5.1a0+...nv24.10", a local "+cu124") is that release, not an older one. A version that
    is not a PEP 440 version cannot be judged and passes."""
    try:
        return Version(version).release < Version(floor).release
    except InvalidVersion:
        return False


def too_old(floors: Mapping[str, str] = TRAINING,
            version_of: Callable[[str], str | None] | None = None) -> list[str]:
    """One message per installed library below its floor (an absent one is not judged here:
    importing it says so). ``version_of`` defaults to installed_version."""
    version_of = version_of or installed_version
    found = []
    for name, floor in floors.items():
        version = version_of(name)
        if version is not None and is_older(version, floor):
            found.append(f"{name} {version} is older than {floor}, the oldest version ampcore "
                         "supports")
    return found


def problem(floors: Mapping[str, str] = TRAINING,
            version_of: Callable[[str], str | None] | None = None) -> str | None:
    """Every library below its floor and the command that fixes it; None when all are in range."""
    found = too_old(floors, version_of)
    if not found:
        return None
    upgrade = " ".join(f"'{name}>={floor}'" for name, floor in floors.items()
                       if any(line.startswith(f"{name} ") for line in found))
    return "; ".join(found) + f". To fix: pip install -U {upgrade}"


def check(floors: Mapping[str, str] = TRAINING) -> None:
    """Raise UnsupportedVersionError when a library is below its floor."""
    message = problem(floors)
    if message is not None:
        raise UnsupportedVersionError(message)
