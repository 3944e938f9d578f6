"""The env's GPU policy, read from the spec and `[tool.envassay]` alone: what it expects
of a GPU (the gpu[...] checks judge it; an image is built for it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from packaging.utils import canonicalize_name

from envassay.spec.config import EnvSettings
from envassay.spec.environment import EnvSpec, declared_packages

Level = Literal["none", "optional", "required"]


# Packages that mean "this env can use a GPU" beyond the name patterns in cuda_capable().
_CUDA_CAPABLE = frozenset(
    {
        *("pytorch", "torch", "pytorch-gpu", "tensorflow", "tensorflow-gpu", "tensorflow-base"),
        *("jax", "jaxlib", "cupy", "cupy-core", "cudatoolkit", "cudnn", "nccl", "cutensor"),
    }
)


def cuda_capable(name: str) -> bool:
    """Whether declaring this conda package or distribution means the env can use a GPU."""
    key = canonicalize_name(name)
    if key.endswith("-cpu"):
        return False
    return key in _CUDA_CAPABLE or "cuda" in key or "cudnn" in key or key.startswith("nvidia-")


@dataclass(frozen=True)
class Expectation:
    """What the env expects of a GPU on this run, and why, in words for messages."""

    level: Level
    why: str
    skip_run: bool = False  # --gpu skip: items are made, and skipped without probing


def expectation(spec: EnvSpec, settings: EnvSettings) -> Expectation:
    """The env's GPU policy, inferred when ``auto``, with the run's ``--gpu`` applied."""
    if settings.gpu == "auto":
        capable = [name for name, _ in declared_packages(spec) if cuda_capable(name)]
        # A build string that asks for CUDA (`mpi4py=*=*cuda*`) counts too.
        capable += [d.name for d in spec.conda if "cuda" in d.normalized and d.name not in capable]
        if capable:
            level: Level = "optional"
            why = f"gpu = optional, inferred from {', '.join(capable[:3])}"
        else:
            level, why = "none", "gpu = none, inferred: no CUDA-capable package declared"
    else:
        level, why = settings.gpu, f"gpu = {settings.gpu}"
    if level == "none":
        return Expectation(level, why)
    if settings.gpu_mode == "require":
        return Expectation("required", f"{why}, made required by --gpu require")
    return Expectation(level, why, skip_run=settings.gpu_mode == "skip")
