"""A spec's lock status (stale lock: spec <-> lock), found without solving; and the
locked env `create` installs from a fresh lock.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from packaging.utils import canonicalize_name

from envassay import redact
from envassay.lock.format import (
    META_HASH,
    META_PRIORITY,
    LockedEnv,
    LockedPackage,
    LockError,
    LockFile,
    lock_path_for,
    read_lock,
)
from envassay.spec.config import Config
from envassay.spec.environment import EnvSpec, load_spec, read_spec_header
from envassay.spec.resolve import channel_plan, configured_platforms

if TYPE_CHECKING:
    from rattler import PackageRecord


State = Literal["fresh", "stale", "missing"]


@dataclass(frozen=True)
class LockStatus:
    """Whether a spec's lock exists and still says what the spec says."""

    spec_path: Path
    lock_path: Path
    state: State
    reasons: tuple[str, ...] = ()
    lock: LockFile | None = None

    @property
    def fresh(self) -> bool:
        return self.state == "fresh"

    def describe(self) -> str:
        if self.state == "missing":
            return (
                f"{self.spec_path}: no lock ({self.lock_path.name}); "
                f"run `envassay lock {self.spec_path}`"
            )
        if self.state == "stale":
            return (
                f"{self.spec_path}: lock is stale: {'; '.join(self.reasons)} "
                f"(run `envassay lock {self.spec_path}`)"
            )
        return f"{self.spec_path}: {self.lock_path.name} is fresh"


def lock_status(spec_path: Path, config: Config, spec: EnvSpec | None = None) -> LockStatus:
    """Compare a spec with its lock, without solving.

    When the spec file's sha256 is the one recorded in the lock (and it names no
    `-r` requirements file), its meaning is unchanged and no MatchSpec is parsed:
    rattler is not even imported. Otherwise the spec is read fully and its content
    hash compared. A lock that cannot be read raises LockError (exit 2).
    """
    lock_path = lock_path_for(spec_path)
    if not lock_path.is_file():
        if spec is None:
            read_spec_header(spec_path)  # a spec that cannot be read is exit 2, not "no lock"
        return LockStatus(spec_path, lock_path, "missing", ("no lock file",))
    lock = read_lock(lock_path)
    # The spec as already read, when it was: its file is not opened again.
    header = spec.header if spec is not None and spec.header is not None else None
    header = header or read_spec_header(spec_path)
    reasons: list[str] = []
    hashes = set(lock.metadata.content_hash.values())
    recorded = lock.metadata.inputs.get(source_name(spec_path, lock_path), {}).get("sha256")
    unchanged_bytes = (
        recorded == header.sha256
        and not header.requirement_files
        and META_HASH in lock.metadata.custom
        and len(hashes) == 1
    )
    if not unchanged_bytes:
        if spec is None:
            spec = load_spec(spec_path)
        if META_HASH not in lock.metadata.custom:
            reasons += unsolved_reasons(spec, lock)
        elif hashes != {spec.content_hash}:
            theirs = ", ".join(sorted(h[:12] for h in hashes)) or "none"
            reasons.append(
                f"the spec changed since the lock was written (content hash "
                f"{spec.content_hash[:12]}, the lock's {theirs})"
            )
    plan = channel_plan(spec_path, header.channels, header.nodefaults, config)
    channels = plan.urls
    solved_with = lock.metadata.custom.get(META_PRIORITY)
    if solved_with is not None and solved_with != plan.priority:
        reasons.append(
            f"channel_priority is now {plan.priority}, the lock was solved with {solved_with}"
        )
    if [redact.neutral(c) for c in lock.metadata.channels] != [redact.neutral(c) for c in channels]:
        reasons.append(
            f"channels are now {list(channels)}, the lock was solved against "
            f"{list(lock.metadata.channels)}"
        )
    wanted = configured_platforms(header.platforms, config, header.name)
    missing = [p for p in wanted if p not in lock.platforms]
    if missing:
        reasons.append(f"platform(s) {missing} are configured but not locked")
    return LockStatus(spec_path, lock_path, "stale" if reasons else "fresh", tuple(reasons), lock)


def unsolved_reasons(spec: EnvSpec, lock: LockFile) -> list[str]:
    """Why a lock envassay did not write (conda-lock's own) is not a solution of ``spec``.

    Its content hash is conda-lock's, computed over conda-lock's reading of the spec and
    its virtual-package spec (which the lock does not record): envassay cannot recompute
    it. Instead, on every platform, each conda spec (``pip`` too, for a pip section, as
    conda-lock adds it) must match a locked package and each pip requirement a locked
    distribution, and each locked package must be needed by one of them through the
    locked dependencies: a spec that asks for something else, or no longer for something
    locked, makes the lock stale. Channels and platforms are checked by the caller.
    """
    from rattler import MatchSpec

    reasons = []
    deps = {dep.normalized: dep for dep in spec.conda}
    for platform in lock.platforms:
        conda = {p.name: p for p in lock.packages_for(platform, "conda")}
        roots = []
        for normalized in spec.solve_specs:
            dep = deps.get(normalized)
            text = dep.text if dep else normalized  # as the user wrote it
            match = MatchSpec(normalized)
            if match.name and match.name.normalized.startswith("__"):
                continue  # a virtual package: the solver's machine, never in a lock
            found = conda.get(match.name.normalized if match.name else "")
            if found is None or not match.matches(_locked_record(found)):
                have = f"{found.version} {found.build}" if found else "nothing"
                reasons.append(f"{platform}: the spec asks for {text}, the lock has {have}")
            elif dep and dep.channel and _last(dep.channel) != _last(found.channel):
                reasons.append(
                    f"{platform}: the spec asks for {text}, the lock has it from {found.channel}"
                )
            if found is not None:
                roots.append(found.name)  # asked for, even in another version: not unneeded
        pip = {str(canonicalize_name(p.name)): p for p in lock.packages_for(platform, "pip")}
        pip_roots, unnamed = _pip_roots(spec, pip, platform, reasons)
        unneeded = sorted(set(conda) - _closure(roots, conda))
        if not unnamed:
            unneeded += sorted(set(pip) - _closure(pip_roots, pip))
        if unneeded:
            reasons.append(
                f"{platform}: the lock holds {', '.join(unneeded)}, which the spec no longer needs"
            )
    return reasons


def _pip_roots(
    spec: EnvSpec, pip: Mapping[str, LockedPackage], platform: str, reasons: list[str]
) -> tuple[list[str], bool]:
    """The locked distributions the pip: section names; True when a line names none or
    has a marker (a path, a URL: what it pulls in is only known when pip installs it)."""
    from packaging.specifiers import SpecifierSet

    roots, unnamed = [], False
    for req in spec.pip:
        if req.kind != "requirement" or req.name is None or req.marker:
            # A marker is evaluated for the target at install time: not judged here.
            unnamed = unnamed or req.kind != "option"
            continue
        found = pip.get(canonicalize_name(req.name))
        if found is None or not SpecifierSet(req.specifier).contains(found.version, True):
            have = found.version if found else "nothing"
            reasons.append(f"{platform}: the spec asks for pip {req.text}, the lock has {have}")
        if found is not None:
            roots.append(str(canonicalize_name(req.name)))
    return roots, unnamed


def _closure(roots: Iterable[str], packages: Mapping[str, LockedPackage]) -> set[str]:
    """The names reached from ``roots`` through the locked dependencies."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen or name not in packages:
            continue
        seen.add(name)
        todo += [
            canonicalize_name(d) if packages[name].manager == "pip" else d
            for d in packages[name].dependencies
        ]
    return seen


def _last(channel: str) -> str:
    """A channel's name, whatever its URL form (``pytorch::x`` is .../pytorch)."""
    return channel.rstrip("/").rsplit("/", 1)[-1]


def _locked_record(package: LockedPackage) -> PackageRecord:
    from rattler import BuildString, PackageRecord, VersionWithSource

    return PackageRecord(
        name=package.name,
        version=VersionWithSource(package.version),
        build=BuildString(package.build),
        build_number=0,  # not in a lock; no environment.yml spec pins one
        subdir=package.subdir or "noarch",
    )


def lock_for_create(
    spec: EnvSpec, config: Config, platform: str, status: LockStatus | None = None
) -> LockStatus:
    """The lock status `create` acts on; a fresh lock without ``platform`` is an error.

    ``status``: the spec's lock status when the caller has read it already."""
    if status is None:
        status = lock_status(spec.path, config, spec)
    if status.fresh and status.lock is not None and platform not in status.lock.platforms:
        has = ", ".join(status.lock.platforms)
        raise LockError(
            f"no packages for platform {platform} (the lock has {has})",
            where=status.lock_path,
            hint=f"run `envassay lock {spec.path} --platform {platform}`",
        )
    return status


def locked_env(status: LockStatus, platform: str) -> LockedEnv | None:
    """What `create` installs from a fresh lock for ``platform``; None to solve the spec."""

    if not status.fresh or status.lock is None:
        return None
    lock = status.lock
    return LockedEnv(
        lock_path=status.lock_path,
        platform=platform,
        conda=lock.packages_for(platform, "conda"),
        pip=lock.packages_for(platform, "pip"),
        pip_resolved=lock.pip_resolved(platform),
        digest=lock.digest(platform),
    )


def source_name(spec_path: Path, lock_path: Path) -> str:
    try:
        return spec_path.resolve().relative_to(lock_path.parent.resolve()).as_posix()
    except ValueError:
        return os.path.relpath(spec_path.resolve(), lock_path.parent.resolve())
