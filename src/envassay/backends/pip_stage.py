"""Install an env's `pip:` section with the environment's own pip, as conda does."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from envassay import command
from envassay.backends.base import Progress
from envassay.errors import CreateError, SolveError
from envassay.spec import EnvSpec, PipRequirement

PIP_FLAGS = ("--no-input", "--disable-pip-version-check", "--no-warn-script-location")


def install_pip_section(spec: EnvSpec, prefix: Path, progress: Progress) -> float:
    """Run `<prefix>/bin/python -m pip install -r <generated file>`; return the seconds taken."""
    if not spec.pip:
        return 0.0
    python = prefix / "bin" / "python"
    lines = [_absolute(req, spec.path.parent) for req in spec.pip]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="envassay-pip-") as tmp:
        requirements = Path(tmp) / "requirements.txt"
        requirements.write_text("\n".join(lines) + "\n", encoding="utf-8")
        progress(f"pip installing {len(spec.pip)} line(s) from the pip: section")
        result = command.run(
            [python, "-m", "pip", "install", *PIP_FLAGS, "-r", requirements],
            cwd=spec.path.parent,
        )
    if not result.ok:
        message = _pip_error(result.stderr or result.stdout)
        if "No matching distribution" in message or "ResolutionImpossible" in message:
            raise SolveError(f"pip could not resolve the pip: section: {message}", where=spec.path)
        raise CreateError(f"pip install failed in {prefix}: {message}")
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
