"""The one place envassay calls py-rattler's solver and installer.

These functions run inside a worker process (see ``backends/rattler_worker.py``):
processes that exit right after a rattler ``await`` crash in a few per cent of
runs (PyO3 finalisation, see shared/notes/py-rattler.md), so the worker controls
its own exit and the main process never awaits rattler itself.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rattler
from rattler import Gateway, MatchSpec, Subdir, VirtualPackage, VirtualPackageOverrides


@dataclass(frozen=True)
class RattlerFailure(Exception):
    """A rattler error, classified: 'solve' and 'channel' are the user's to fix."""

    kind: str
    message: str


@functools.cache
def user_config() -> Any:
    """The user's rattler/pixi configuration (mirrors, auth, proxies), as nox's backend loads it."""
    try:
        return rattler.Config.load_from_default_locations("rattler")
    except Exception as exc:
        paths = ", ".join(str(p) for p, _ in rattler.Config.config_search_paths("rattler"))
        raise RattlerFailure("config", f"cannot load rattler config ({paths}): {exc}") from None


@functools.cache
def client() -> Any:
    return rattler.Client.from_config(user_config())


def gateway(cache_dir: Path) -> Gateway:
    return Gateway(cache_dir=cache_dir / "repodata", client=client())


def virtual_packages() -> list[VirtualPackage]:
    """This machine's virtual packages; CONDA_OVERRIDE_CUDA / _GLIBC apply as in conda."""
    return VirtualPackage.detect(VirtualPackageOverrides.from_env())


async def solve(
    channels: Sequence[str], specs: Sequence[str], cache_dir: Path, platform: str | None = None
) -> list[Any]:
    """Solve ``specs`` against ``channels`` for ``platform`` (default: this machine)."""
    target = Subdir(platform) if platform else Subdir.current()
    try:
        return await rattler.solve(
            sources=list(channels),
            specs=[MatchSpec(s) for s in specs],
            gateway=gateway(cache_dir),
            platforms=[target, Subdir("noarch")],
            virtual_packages=virtual_packages(),
        )
    except Exception as exc:
        raise classify(exc, channels) from None


async def install(records: list[Any], prefix: Path, cache_dir: Path, specs: Sequence[str]) -> None:
    """Link ``records`` into the absolute ``prefix``; link scripts never run."""
    try:
        await rattler.install(
            records,
            target_prefix=str(prefix.resolve()),
            cache_dir=cache_dir / "pkgs",
            show_progress=False,
            execute_link_scripts=False,
            client=client(),
            # py-rattler hands this to its FFI as is, which wants the inner object.
            requested_specs=[MatchSpec(s)._match_spec for s in specs],
        )
    except Exception as exc:
        raise classify(exc, []) from None


def classify(exc: Exception, channels: Sequence[str]) -> RattlerFailure:
    """Turn a rattler exception into a failure whose kind decides the exit code."""
    name = type(exc).__name__
    text = " ".join(str(exc).split())
    if name == "SolverError":
        return RattlerFailure("solve", text)
    if name in {"FetchRepoDataError", "GatewayError", "InvalidChannelError"}:
        listed = ", ".join(channels)
        return RattlerFailure("channel", f"cannot read channel(s) {listed}: {text}")
    return RattlerFailure("other", f"{name}: {text}")


def record_summary(record: Any) -> dict[str, str]:
    """The identifying fields of a solved record, for reports and logs."""
    return {
        "name": record.name.normalized,
        "version": str(record.version),
        "build": str(record.build),
        "channel": str(record.channel or ""),
        "url": str(record.url),
    }
