"""Create an environment for a spec, through the store: spec + config -> key -> prefix."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from envassay import redact
from envassay.activation import record_variables
from envassay.create.backends import get_backend, resolve_backend
from envassay.create.backends.base import CreateRequest
from envassay.errors import SpecError, UserError
from envassay.lock.format import LockedEnv
from envassay.lock.status import LockStatus, lock_for_create, locked_env
from envassay.progress import Progress
from envassay.spec.config import Config
from envassay.spec.environment import EnvSpec
from envassay.spec.platforms import current_platform
from envassay.spec.resolve import ChannelPlan, spec_channel_plan
from envassay.store import Ensured, EnvStore, StoreKey


@contextlib.contextmanager
def naming(spec: EnvSpec) -> Iterator[None]:
    """A user error raised while creating ``spec`` (a solve that fails, an unreachable
    channel) names the spec file when it names no other place."""
    try:
        yield
    except UserError as exc:
        if exc.where is None:
            exc.where = str(spec.path)
            exc.args = (exc.render(),)
        raise


def store_key(
    spec: EnvSpec,
    backend: str,
    platform: str | None = None,
    locked: LockedEnv | None = None,
    channels: ChannelPlan | None = None,
) -> StoreKey:
    """The store key: the lock's digest for its platform when a fresh lock is used (a
    fresh lock was solved against today's channels), else the spec's content hash with
    its effective channels and channel priority (a condarc change is a new env)."""
    platform = platform or current_platform()
    if locked is not None:
        return StoreKey(spec.name, locked.digest, backend, platform)
    if channels is None:
        return StoreKey(spec.name, spec.content_hash, backend, platform)
    meaning = [spec.content_hash, channels.priority, *(redact.neutral(u) for u in channels.urls)]
    digest = hashlib.sha256("\n".join(meaning).encode()).hexdigest()
    return StoreKey(spec.name, digest, backend, platform)


def written_channels(spec: EnvSpec, config: Config) -> tuple[str, ...]:
    """The channels as the spec writes them (else the project's default-channels),
    ``nodefaults`` included: what mamba 2 and micromamba resolve by their own rules."""
    channels = spec.channels or config.default_channels
    return (*channels, "nodefaults") if spec.nodefaults else tuple(channels)


def plan(
    spec: EnvSpec, config: Config, platform: str | None = None, lock: LockStatus | None = None
) -> LockedEnv | None:
    """What `create` will do: install a fresh lock's records (returned), or solve (None).

    A stale or missing lock means solving the spec; an unreadable lock, or a fresh one
    without ``platform``, is the user's to fix (LockError, exit 2). ``lock``: the spec's
    lock status when the caller has read it already (it is not read again).
    """

    platform = platform or current_platform()
    return locked_env(lock_for_create(spec, config, platform, lock), platform)


def create_env(
    spec: EnvSpec,
    config: Config,
    *,
    backend_name: str | None = None,
    progress: Progress = lambda _line: None,
    lock: LockStatus | None = None,
    force: bool = False,
) -> Ensured:
    """Return a complete prefix for ``spec`` from the store, creating it if needed (always
    with ``force``). The caller holds the returned env's lease until it is done with it.

    ``lock``: the spec's lock status when the caller has read it already."""
    backend = get_backend(resolve_backend(backend_name, config.backend))
    channel_plan = spec_channel_plan(spec, config)
    channels = channel_plan.urls
    store = EnvStore(config.store_path())
    locked = plan(spec, config, lock=lock)
    key = store_key(spec, backend.name, locked=locked, channels=channel_plan)

    def build(prefix: Path) -> dict[str, Any]:
        request = CreateRequest(
            spec,
            prefix,
            channels,
            store.cache_dir,
            locked=locked,
            priority=channel_plan.priority,
            file_channels=written_channels(spec, config),
        )
        result = backend.create(request, progress)
        record_variables(prefix, spec.variables)  # where the creator did not (rattler)
        return {k: v for k, v in asdict(result).items() if k != "records"} | {
            "packages": len(result.records)
        }

    info = {
        "spec": str(spec.path),
        "project": str(config.root),
        "name": spec.name,
        "spec_hash": spec.content_hash,
        "backend": backend.name,
        "channels": list(channels),
        "channel_priority": channel_plan.priority,
        "source": str(locked.lock_path) if locked else "spec",
    }
    with naming(spec):
        return store.ensure(key, build, info, force=force)


def create_at(
    spec: EnvSpec,
    config: Config,
    prefix: Path,
    *,
    backend_name: str | None = None,
    progress: Progress = lambda _line: None,
    lock: LockStatus | None = None,
) -> None:
    """Create ``spec`` at an explicit prefix outside the store (`envassay create --prefix`);
    ``lock`` as for :func:`create_env`."""
    backend = get_backend(resolve_backend(backend_name, config.backend))
    channel_plan = spec_channel_plan(spec, config)
    channels = channel_plan.urls
    prefix = prefix.expanduser().resolve()
    if prefix.exists() and any(prefix.iterdir()):
        raise SpecError(f"prefix {prefix} exists and is not empty", hint="choose a new path")
    cache = EnvStore(config.store_path()).cache_dir
    locked = plan(spec, config, lock=lock)
    existed = prefix.exists()
    try:
        with naming(spec):
            request = CreateRequest(
                spec,
                prefix,
                channels,
                cache,
                locked=locked,
                priority=channel_plan.priority,
                file_channels=written_channels(spec, config),
            )
            backend.create(request, progress)
            record_variables(prefix, spec.variables)
    except BaseException:
        if not existed:  # never leave half an env behind at a path the user chose
            shutil.rmtree(prefix, ignore_errors=True)
        raise
