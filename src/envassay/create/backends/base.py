"""The backend interface: create a prefix from a spec."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from envassay.lock.format import LockedEnv
from envassay.progress import Progress
from envassay.spec.environment import EnvSpec


@dataclass(frozen=True)
class CreateRequest:
    """Everything a backend needs to create one environment."""

    spec: EnvSpec
    prefix: Path
    channels: Sequence[str]
    cache_dir: Path
    platform: str | None = None
    locked: LockedEnv | None = None
    # The condarc's channel_priority (strict, flexible, disabled); rattler solves
    # flexible strictly (README: channels).
    priority: str = "flexible"
    # The channels as the spec (else [tool.envassay] default-channels) writes them,
    # `nodefaults` included: mamba 2 and micromamba resolve these by their own rules.
    file_channels: Sequence[str] = ()


@dataclass(frozen=True)
class CreateResult:
    """What a create did, for logs and reports."""

    records: list[dict[str, Any]] = field(default_factory=list)
    solve_seconds: float = 0.0
    link_seconds: float = 0.0
    pip_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


class Backend(Protocol):
    """A way to create conda environments (rattler embedded, or a conda-family CLI)."""

    name: str

    def create(self, request: CreateRequest, progress: Progress) -> CreateResult:
        """Create ``request.prefix`` (absolute, not existing yet) from ``request.spec``."""
        ...
