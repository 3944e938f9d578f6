"""An image's plan: every input that decides what it contains, and the content hash
that names it (``envassay/NAME:HASH``). No Docker call, no copying."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

from envassay import __version__, redact
from envassay.docker import (
    Engine,
)
from envassay.lock.status import LockStatus, lock_for_create
from envassay.spec.config import Config
from envassay.spec.environment import EnvSpec
from envassay.spec.resolve import resolve_channels
from envassay.targets.image.options import USER_NAME, USER_UID, ImageOptions

_ARCH_SUBDIRS = {
    "x86_64": "linux-64",
    "amd64": "linux-64",
    "aarch64": "linux-aarch64",
    "arm64": "linux-aarch64",
    "ppc64le": "linux-ppc64le",
}


@dataclass(frozen=True)
class ImagePlan:
    """Everything a build needs, and the content hash that names its image."""

    spec: EnvSpec
    options: ImageOptions
    platform: str
    channels: tuple[str, ...]
    lock_path: Path | None
    lock_hash: str
    digest: str
    inputs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"envassay/{repository_name(self.spec.name)}:{self.digest[:16]}"


def repository_name(name: str) -> str:
    """A spec name as a Docker repository path component (lowercase, [a-z0-9._-])."""
    cleaned = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("._-")
    return cleaned or "env"


def usable_lock(
    spec: EnvSpec, config: Config, platform: str, status: LockStatus | None = None
) -> tuple[Path | None, str]:
    """The lock a build installs (a fresh one, with ``platform``) and its digest; else (None, "").

    As for native creates: a stale or missing lock means the spec is solved; a fresh
    lock without ``platform`` is the user's to fix (LockError, exit 2). ``status``: the
    spec's lock status when the caller has read it already (it is not read again).
    """
    status = lock_for_create(spec, config, platform, status)
    if status.fresh and status.lock is not None:
        return status.lock_path, status.lock.digest(platform)
    return None, ""


def engine_platform(engine: Engine) -> str:
    arch = engine.architecture()
    return _ARCH_SUBDIRS.get(arch, f"linux-{arch}")


def plan_image(
    spec: EnvSpec,
    config: Config,
    options: ImageOptions,
    platform: str,
    status: LockStatus | None = None,
) -> ImagePlan:
    """Decide the build (no Docker call, no copying): inputs and the content hash."""
    channels = resolve_channels(spec, config)
    lock, locked = usable_lock(spec, config, platform, status)
    assets = {name: _sha256(_asset(name).encode()) for name in _ASSETS}
    inputs: dict[str, Any] = {
        "assets": assets,
        "spec": spec.content_hash,
        "lock": locked,
        # Keyed by meaning: a rotated password or token is the same image.
        "channels": {redact.neutral(url): _channel_digest(url, platform) for url in channels},
        "args": {
            "BUILDER_IMAGE": options.builder_image,
            "RUNTIME_IMAGE": options.runtime_image,
            "CREATOR": options.creator,
            "ENV_PREFIX": options.prefix,
            "USER_NAME": USER_NAME,
            "USER_UID": USER_UID,
        },
        "platform": platform,
    }
    if options.creator == "envassay":
        inputs["tool"] = {"envassay": __version__, "py-rattler": _version("py-rattler")}
    digest = _sha256(json.dumps(inputs, sort_keys=True).encode())
    return ImagePlan(spec, options, platform, channels, lock, locked, digest, inputs)


_ASSETS = ("Dockerfile", "Dockerfile.buildkit", "dockerignore", "create.sh", "finish.py")


def _asset(name: str) -> str:
    return files("envassay.assets").joinpath(name).read_text(encoding="utf-8")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return ""


def _channel_dir(url: str) -> Path | None:
    return Path(url[len("file://") :]) if url.startswith("file://") else None


def _channel_digest(url: str, platform: str) -> str:
    """For a local channel, the hash of its repodata (what a solve can see); else ''."""
    local = _channel_dir(url)
    if local is None:
        return ""
    digest = hashlib.sha256()
    for subdir in ("noarch", platform):
        repodata = local / subdir / "repodata.json"
        digest.update(repodata.read_bytes() if repodata.is_file() else b"-")
    return digest.hexdigest()
