"""How an image is built: the builder and runtime images, the creator, the fixed prefix
and the user it runs as (command line over `[tool.envassay.envs.NAME]` over defaults)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from envassay.errors import UserError
from envassay.spec.config import CREATORS, EnvSettings
from envassay.spec.environment import EnvSpec
from envassay.spec.gpu import expectation

DEFAULT_BUILDER_IMAGE = "continuumio/miniconda3:24.7.1-0"
DEFAULT_RUNTIME_IMAGE = "debian:bookworm-20240722-slim"
ENV_PREFIX = "/opt/env"
USER_NAME = "envassay"
USER_UID = "1000"


@dataclass(frozen=True)
class ImageOptions:
    """How to build: the images, the creator and the fixed prefix."""

    builder_image: str = DEFAULT_BUILDER_IMAGE
    runtime_image: str = DEFAULT_RUNTIME_IMAGE
    creator: str = "conda"
    prefix: str = ENV_PREFIX


def creator_for(builder_image: str) -> str:
    """The creator a builder image implies: its own tool for the miniconda family, else envassay."""
    name = builder_image.rsplit("/", 1)[-1].lower()
    if "micromamba" in name:
        return "micromamba"
    if "miniforge" in name or "mambaforge" in name:
        return "mamba"
    if "miniconda" in name or "anaconda" in name:
        return "conda"
    return "envassay"


def resolve_options(
    settings: EnvSettings,
    *,
    builder_image: str | None = None,
    runtime_image: str | None = None,
    creator: str | None = None,
) -> ImageOptions:
    """Command-line values win over `[tool.envassay.envs.NAME]`, which wins over defaults."""
    builder = builder_image or settings.builder_image or DEFAULT_BUILDER_IMAGE
    chosen = creator or creator_for(builder)
    if chosen not in CREATORS:
        raise UserError(f"Expected creator one of {list(CREATORS)}, but got {chosen!r}")
    # An envassay-created env may lean on the builder's system libraries: run it there.
    default_runtime = builder if chosen == "envassay" else DEFAULT_RUNTIME_IMAGE
    runtime = runtime_image or settings.runtime_image or default_runtime
    return ImageOptions(builder, runtime, chosen)


def expects_gpu(spec: EnvSpec, settings: EnvSettings) -> bool:
    """Whether the env wants a GPU (the same expectation as the gpu[...] checks)."""

    return expectation(spec, settings).level != "none"


def host_has_gpu() -> bool:
    return Path("/dev/nvidiactl").exists() or shutil.which("nvidia-smi") is not None
