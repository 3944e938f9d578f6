"""Lock a spec's `pip:` section for one platform with `pip install --dry-run --report`.

pip resolves without installing anything (pip >= 22.2). For this machine's
platform and Python it resolves exactly as the env's own pip would (source
distributions allowed); for another platform or Python version it resolves
wheels only, for that platform's wheel tags and that Python version. Markers
are always evaluated for this host (pip has no way to evaluate them for another
machine), which the lock says in its metadata.

The conda part is seen as create's pip sees it, installed: a distribution the conda
part provides (same normalised name) whose conda version satisfies every requirement
on it is left out (pip keeps conda's); one whose conda version does not is locked, as
pip would install it over conda's (``health[conda-pip]`` then fails, for the env made
from the spec and the one made from the lock alike). When pip cannot resolve the
section here, the platform is locked without its pip part and the reason is written
into the lock.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from envassay import command, redact
from envassay.lock.format import PIP_UNRESOLVED, LockedPackage
from envassay.spec.environment import PIP_REQUIREMENT_OPTIONS, EnvSpec, requirement_lines

PIP_TIMEOUT = 600.0
_FLAGS = ("--no-input", "--disable-pip-version-check", "--quiet", "--ignore-installed")
# Wheel platform tags per conda platform; `{arch}` and the OS version come from its
# virtual packages (__glibc, __osx).
_WINDOWS_TAGS = {"win-64": "win_amd64", "win-32": "win32", "win-arm64": "win_arm64"}
_LINUX_ARCH = {"64": "x86_64", "aarch64": "aarch64", "ppc64le": "ppc64le", "s390x": "s390x"}
_OSX_ARCH = {"64": "x86_64", "arm64": "arm64"}


@dataclass(frozen=True)
class PipLock:
    """The pip part of one platform: the pinned distributions, or why there are none."""

    packages: tuple[LockedPackage, ...]
    note: str
    native: bool = False  # resolved here exactly as the env's own pip would

    @property
    def resolved(self) -> bool:
        return not self.note.startswith(PIP_UNRESOLVED)


def unresolved(reason: str) -> PipLock:
    return PipLock((), f"{PIP_UNRESOLVED}: {reason}")


def lock_pip(
    spec: EnvSpec,
    platform: str,
    *,
    python_version: str | None,
    virtual: Sequence[Sequence[str]],
    conda: Mapping[str, str],
    current_platform: str,
) -> PipLock:
    """Resolve ``spec``'s pip: section for ``platform``; never raises for pip's failures."""
    if python_version is None:
        return unresolved(f"the conda part has no python for {platform}")
    major_minor = ".".join(python_version.split(".")[:2])
    host = f"{sys.version_info.major}.{sys.version_info.minor}"
    native = platform == current_platform and major_minor == host
    with tempfile.TemporaryDirectory(prefix="envassay-piplock-") as tmp:
        requirements = Path(tmp) / "requirements.txt"
        env = redact.write_requirements(requirements, requirement_lines(spec))
        report = Path(tmp) / "report.json"
        args: list[str | Path] = [sys.executable, "-m", "pip", "install", "--dry-run"]
        args += ["--report", report, *_FLAGS]
        how = f"pip {_pip_version()} on this machine"
        if not native:
            tags = wheel_tags(platform, virtual)
            if not tags:
                return unresolved(f"no wheel platform tags known for {platform}")
            # pip refuses platform options outside --target; a dry run writes nothing there.
            args += ["--target", Path(tmp) / "target", "--only-binary=:all:"]
            args += ["--implementation", "cp", "--python-version", major_minor]
            for tag in tags:
                args += ["--platform", tag]
            how += f", wheels only for {', '.join(tags[:2])}{'...' if len(tags) > 2 else ''}"
        args += ["-r", requirements]
        result = command.run(args, cwd=spec.path.parent, timeout=PIP_TIMEOUT, env=env)
        if not result.ok or not report.is_file():
            return PipLock((), f"{PIP_UNRESOLVED}: {_pip_error(result)}", native)
        try:
            document = json.loads(report.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            return unresolved(f"pip's report is unreadable: {exc}")
    wanted = _requirements(_requirement_texts(spec), document)
    packages, left_out = _packages(document, platform, conda, wanted)
    note = f"resolved with {how} for python {major_minor}; markers evaluated for this host"
    if left_out:
        note += f"; provided by conda: {', '.join(sorted(left_out))}"
    over = sorted(p.name for p in packages if p.name in {canonicalize_name(n) for n in conda})
    if over:
        note += f"; pip replaces conda's: {', '.join(over)}"
    return PipLock(tuple(packages), note, native)


def wheel_tags(platform: str, virtual: Sequence[Sequence[str]]) -> list[str]:
    """pip `--platform` tags for a conda platform, newest first."""
    versions = {name: version for name, version, _build in virtual}
    os_name, _, arch = platform.partition("-")
    if platform in _WINDOWS_TAGS:
        return [_WINDOWS_TAGS[platform]]
    if os_name == "linux" and arch in _LINUX_ARCH:
        machine = _LINUX_ARCH[arch]
        major, minor = _version_pair(versions.get("__glibc", "2.17"))
        tags = [f"manylinux_{major}_{m}_{machine}" for m in range(minor, 16, -1)]
        return [*tags, f"manylinux2014_{machine}"]  # pip adds manylinux2010/1 for this one
    if os_name == "osx" and arch in _OSX_ARCH:
        major, minor = _version_pair(versions.get("__osx", "11.0"))
        return [f"macosx_{major}_{minor}_{_OSX_ARCH[arch]}"]  # pip adds older macOS versions
    return []


def _version_pair(text: str) -> tuple[int, int]:
    parts = [*(int(p) for p in text.split(".")[:2] if p.isdigit()), 0, 0]
    return parts[0], parts[1]


def _environment(document: dict[str, Any]) -> dict[str, str]:
    environment: dict[str, str] = {k: str(v) for k, v in default_environment().items()}
    environment.update(document.get("environment") or {})
    return environment


def _requirement_texts(spec: EnvSpec) -> list[str]:
    """The section's requirement lines without their per-line options (``--hash=...``)."""
    return [
        PIP_REQUIREMENT_OPTIONS.split(req.text, maxsplit=1)[0]
        for req in spec.pip
        if req.kind == "requirement"
    ]


def _requirements(lines: Iterable[str], document: dict[str, Any]) -> list[Requirement]:
    """Every requirement pip resolved against: the section's lines and the resolved
    distributions' Requires-Dist, those whose markers hold here."""
    texts = list(lines)
    for item in document.get("install") or []:
        texts.extend((item.get("metadata") or {}).get("requires_dist") or [])
    environment = _environment(document)
    found: list[Requirement] = []
    for text in texts:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue  # an option line, a path: no version to hold conda's to
        if req.marker is None or req.marker.evaluate(environment | {"extra": ""}):
            found.append(req)
    return found


def _conda_satisfies(name: str, version: str | None, wanted: Sequence[Requirement]) -> bool:
    """Whether pip, finding conda's ``version`` of ``name`` installed, would keep it."""
    if version is None:
        return False
    try:
        parsed = Version(version)
    except InvalidVersion:
        return False
    specifiers = [r.specifier for r in wanted if canonicalize_name(r.name) == name]
    return all(s.contains(parsed, prereleases=True) for s in specifiers)


def _packages(
    document: dict[str, Any],
    platform: str,
    conda_versions: Mapping[str, str],
    wanted: Sequence[Requirement] = (),
) -> tuple[list[LockedPackage], list[str]]:
    environment = _environment(document)
    conda = {canonicalize_name(n): v for n, v in conda_versions.items()}
    packages: list[LockedPackage] = []
    left_out: list[str] = []
    for item in document.get("install") or []:
        metadata = item.get("metadata") or {}
        name = canonicalize_name(str(metadata.get("name", "")))
        if name in conda and _conda_satisfies(name, conda[name], wanted):
            left_out.append(name)
            continue
        download = item.get("download_info") or {}
        archive = download.get("archive_info") or {}
        hashes = dict(archive.get("hashes") or {})
        if "sha256" not in hashes and str(archive.get("hash", "")).startswith("sha256="):
            hashes["sha256"] = archive["hash"].split("=", 1)[1]
        url = str(download.get("url", ""))
        packages.append(
            LockedPackage(
                name=name,
                version=str(metadata.get("version", "")),
                manager="pip",
                platform=platform,
                url=url,
                md5=None,
                sha256=hashes.get("sha256"),
                dependencies=_dependencies(metadata.get("requires_dist") or [], environment),
                source=url if item.get("is_direct") else None,
            )
        )
    return packages, left_out


def _dependencies(requires: list[str], environment: dict[str, str]) -> dict[str, str]:
    result: dict[str, str] = {}
    for text in requires:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        if req.marker is not None and not req.marker.evaluate(environment | {"extra": ""}):
            continue
        result[canonicalize_name(req.name)] = str(req.specifier) or "*"
    return result


def _pip_version() -> str:
    try:
        from importlib.metadata import version

        return version("pip")
    except Exception:  # pragma: no cover - pip is always there when this runs
        return "?"


def _pip_error(result: command.CommandResult) -> str:
    output = (result.stderr or result.stdout).strip()
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    text = " | ".join((errors or lines)[-2:]) or f"pip exited {result.returncode}"
    if "no such option: --report" in output:
        text = "this pip is older than 22.2 and has no --report; upgrade pip"
    return f"pip could not resolve it here: {text}"
