"""What an image is, as data: the engine's facts of it (:class:`ImageInfo`, what `docker
image inspect` says), the labels envassay writes and reads, and the facts the image checks
judge (:class:`ImageFacts`). Pure: no engine call, so :mod:`envassay.checks.image` reads it
while :mod:`envassay.docker` and :mod:`envassay.targets.image` gather it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Label keys envassay writes and reads.
LABEL_SPEC_NAME = "io.envassay.spec.name"
LABEL_SPEC_HASH = "io.envassay.spec.hash"
LABEL_LOCK_HASH = "io.envassay.lock.hash"
LABEL_PREFIX = "io.envassay.prefix"
OCI_LABELS = (
    "org.opencontainers.image.source",
    "org.opencontainers.image.revision",
    "org.opencontainers.image.created",
)


@dataclass(frozen=True)
class ImageInfo:
    """What `docker image inspect` says about an image."""

    id: str
    tags: tuple[str, ...]
    size: int
    user: str
    labels: Mapping[str, str]
    env: Mapping[str, str]
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    created: str
    architecture: str

    @classmethod
    def from_inspect(cls, data: Mapping[str, Any]) -> ImageInfo:
        config = data.get("Config") or {}
        env = {}
        for item in config.get("Env") or []:
            key, _, value = str(item).partition("=")
            env[key] = value
        return cls(
            id=str(data.get("Id", "")),
            tags=tuple(data.get("RepoTags") or ()),
            size=int(data.get("Size") or 0),
            user=str(config.get("User") or ""),
            labels=dict(config.get("Labels") or {}),
            env=env,
            entrypoint=tuple(config.get("Entrypoint") or ()),
            cmd=tuple(config.get("Cmd") or ()),
            created=str(data.get("Created", "")),
            architecture=str(data.get("Architecture", "")),
        )


@dataclass(frozen=True)
class PlainRun:
    """``docker run IMAGE python -c ...`` as a user would type it: who ran, which python."""

    ok: bool
    error: str = ""
    uid: int | None = None
    user: str = ""
    home: str = ""
    prefix: str = ""
    executable: str = ""


@dataclass(frozen=True)
class ImageFacts:
    """What the image checks judge: its config, a plain run, and a filesystem scan."""

    ref: str
    info: ImageInfo
    prefix: str
    plain: PlainRun
    scan: Mapping[str, Any] | None
    scan_error: str = ""
