"""Platform rules: the conda platforms envassay knows, and the virtual packages a lock
solves each with when it is not this machine (conda-lock's defaults, ``CONDA_OVERRIDE_*``
applying).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from envassay.errors import UserError

KNOWN_PLATFORMS = (
    "linux-64",
    "linux-aarch64",
    "linux-ppc64le",
    "linux-s390x",
    "linux-32",
    "linux-armv7l",
    "osx-64",
    "osx-arm64",
    "win-64",
    "win-arm64",
    "win-32",
)


DEFAULT_CUDA = "12.0"


# conda-lock's defaults for platforms other than this machine's.
DEFAULT_GLIBC = "2.17"


DEFAULT_LINUX = "5.10"


DEFAULT_OSX = {"osx-64": "10.15", "osx-arm64": "11.0"}


ARCHSPEC = {
    "64": "x86_64",
    "aarch64": "aarch64",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "32": "x86",
    "armv7l": "armv7l",
    "arm64": "arm64",
}


CUDA_NAMES = frozenset({"cupy", "nccl", "cudnn", "tensorrt", "pytorch-gpu", "tensorflow-gpu"})


def validate_platforms(platforms: Iterable[str]) -> tuple[str, ...]:
    result = tuple(dict.fromkeys(platforms))
    bad = [p for p in result if p not in KNOWN_PLATFORMS]
    if bad:
        raise UserError(f"unknown platform(s) {bad}; expected some of {list(KNOWN_PLATFORMS)}")
    return result


def virtual_packages_for(platform: str, cuda: str | None) -> list[list[str]]:
    """``[name, version, build]`` virtual packages for solving ``platform`` from elsewhere."""
    env = os.environ
    os_name, _, arch = platform.partition("-")
    result: list[list[str]] = []
    if os_name in ("linux", "osx"):
        result.append(["__unix", "0", "0"])
    if os_name == "linux":
        result.append(["__linux", env.get("CONDA_OVERRIDE_LINUX") or DEFAULT_LINUX, "0"])
        result.append(["__glibc", env.get("CONDA_OVERRIDE_GLIBC") or DEFAULT_GLIBC, "0"])
    elif os_name == "osx":
        result.append(["__osx", env.get("CONDA_OVERRIDE_OSX") or DEFAULT_OSX[platform], "0"])
    elif os_name == "win":
        result.append(["__win", "0", "0"])
    if cuda and os_name in ("linux", "win"):
        result.append(["__cuda", cuda, "0"])
    archspec = env.get("CONDA_OVERRIDE_ARCHSPEC") or ARCHSPEC.get(arch, arch)
    result.append(["__archspec", "1", archspec])
    return result


def current_platform() -> str:
    """This machine's conda platform, e.g. ``linux-64``."""
    from rattler import Subdir

    return str(Subdir.current())
