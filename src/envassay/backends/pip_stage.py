"""Install an env's `pip:` section with the environment's own pip, as conda does."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from envassay import command, redact
from envassay.backends.base import Progress
from envassay.errors import CreateError, SolveError, UserError
from envassay.lockfile import LockedPackage
from envassay.spec import EnvSpec, PipRequirement

PIP_FLAGS = ("--no-input", "--disable-pip-version-check", "--no-warn-script-location")


def install_pip_section(spec: EnvSpec, prefix: Path, progress: Progress) -> float:
    """Run `<prefix>/bin/python -m pip install -r <generated file>`; return the seconds taken."""
    if not spec.pip:
        return 0.0
    python = prefix / "bin" / "python"
    lines = requirement_lines(spec)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="envassay-pip-") as tmp:
        requirements = Path(tmp) / "requirements.txt"
        env = write_requirements(requirements, lines)
        progress(f"pip installing {len(spec.pip)} line(s) from the pip: section")
        result = command.run(
            [python, "-m", "pip", "install", *PIP_FLAGS, "-r", requirements],
            cwd=spec.path.parent,
            env=env,
        )
    if not result.ok:
        message = _pip_error(result.stderr or result.stdout)
        if "No matching distribution" in message or "ResolutionImpossible" in message:
            raise SolveError(f"pip could not resolve the pip: section: {message}", where=spec.path)
        raise CreateError(f"pip install failed in {prefix}: {message}")
    return time.perf_counter() - started


def write_requirements(path: Path, lines: Sequence[str]) -> dict[str, str] | None:
    """Write a requirements file whose index credentials are ``${VAR}`` placeholders (pip
    expands them), so no temporary file holds a secret; return pip's environment for it:
    None (inherit) when nothing was hidden."""
    text, hidden = redact.hide("\n".join(lines) + "\n")
    path.write_text(text, encoding="utf-8")
    return {**os.environ, **hidden} if hidden else None


def requirement_lines(spec: EnvSpec) -> list[str]:
    """The pip: section as requirements-file lines, paths made absolute."""
    return [_absolute(req, spec.path.parent) for req in spec.pip]


def install_locked_pip(
    spec: EnvSpec, entries: Sequence[LockedPackage], prefix: Path, progress: Progress
) -> float:
    """Install a lock's pip entries: pinned, `--no-deps`, each hash checked when all have one.

    The spec's pip options (index URLs, `--find-links`, `--no-index`) still say where
    distributions come from; a direct reference (a URL or a path) is installed from
    its locked URL.
    """
    if not entries:
        return 0.0
    python = prefix / "bin" / "python"
    hashed = all(e.sha256 for e in entries)
    lines = [req.text for req in spec.pip if req.kind == "option"]
    for entry in entries:
        line = f"{entry.name} @ {entry.url}" if entry.source else f"{entry.name}=={entry.version}"
        lines.append(f"{line} --hash=sha256:{entry.sha256}" if hashed else line)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="envassay-pip-") as tmp:
        requirements = Path(tmp) / "requirements.txt"
        env = write_requirements(requirements, lines)
        progress(f"pip installing {len(entries)} locked distribution(s), --no-deps")
        result = command.run(
            [python, "-m", "pip", "install", *PIP_FLAGS, "--no-deps", "-r", requirements],
            cwd=spec.path.parent,
            env=env,
        )
    if not result.ok:
        message = _pip_error(result.stderr or result.stdout)
        if "DO NOT MATCH THE HASHES" in (result.stderr or "").upper():
            raise UserError(
                f"a locked pip distribution failed its hash check: {message}",
                where=spec.path,
                hint="the file changed after the lock was written; re-lock",
            )
        raise CreateError(f"pip install of the locked pip entries failed in {prefix}: {message}")
    return time.perf_counter() - started


def _absolute(req: PipRequirement, base: Path) -> str:
    """Paths in the pip section are relative to the spec, as conda makes them."""
    if req.kind in ("requirements-file", "editable"):
        flag, _, target = req.text.partition(" ")
        return f"{flag} {_resolve(target.strip(), base)}"
    if req.kind == "path":
        return _resolve(req.text, base)
    return req.text


def _resolve(target: str, base: Path) -> str:
    if "://" in target or target.startswith(("git+", "hg+", "svn+", "bzr+")):
        return target
    return str((base / Path(target).expanduser()).resolve())


def _pip_error(output: str) -> str:
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    return " | ".join((errors or lines)[-3:])
