"""Install an env's `pip:` section with the environment's own pip, as conda does."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from envassay import command, redact
from envassay.errors import CreateError, SolveError, SpecError, UserError
from envassay.lock.format import LockedPackage
from envassay.progress import Progress, update
from envassay.spec.environment import EnvSpec, requirement_lines

PIP_FLAGS = ("--no-input", "--disable-pip-version-check", "--no-warn-script-location")


def install_pip_section(spec: EnvSpec, prefix: Path, progress: Progress) -> float:
    """Run `<prefix>/bin/python -m pip install -r <generated file>`; return the seconds taken."""
    if not spec.pip:
        return 0.0
    python = prefix / "bin" / "python"
    lines = requirement_lines(spec)
    started = time.perf_counter()
    progress(f"pip installing {len(spec.pip)} line(s) from the pip: section")
    result = _pip_install(python, lines, spec.path.parent, progress)
    if not result.ok:
        message = _pip_error(result.stderr or result.stdout)
        if culprit := _spec_line(spec, lines, result.stderr + result.stdout):
            # A line conda hands to pip unchanged and pip refuses (`tensorflow=2.15`, a
            # `-r` file that is not there): pip's verdict, at the spec line that made it.
            raise SpecError(f"pip refused {culprit[0]!r}: {message}", where=culprit[1])
        if "No matching distribution" in message or "ResolutionImpossible" in message:
            raise SolveError(f"pip could not resolve the pip: section: {message}", where=spec.path)
        raise CreateError(f"pip install failed in {prefix}: {message}")
    return _done(started, progress)


def _done(started: float, progress: Progress) -> float:
    seconds = time.perf_counter() - started
    progress(f"pip installed in {seconds:.2f}s")
    return seconds


def _pip_install(
    python: Path, lines: Sequence[str], cwd: Path, progress: Progress, *flags: str
) -> command.CommandResult:
    """``python -m pip install -r`` a temporary requirements file of ``lines`` (its index
    credentials as ``${VAR}``, their values in pip's environment); each line pip prints
    (Collecting, Downloading, Installing...) is shown as an update on a live line."""

    def show(line: str) -> None:
        if line.strip():
            progress(update(f"pip: {line.strip()}"))

    with tempfile.TemporaryDirectory(prefix="envassay-pip-") as tmp:
        requirements = Path(tmp) / "requirements.txt"
        env = redact.write_requirements(requirements, lines)
        return command.stream(
            [python, "-m", "pip", "install", *PIP_FLAGS, *flags, "-r", requirements],
            cwd=cwd,
            env=env,
            on_stdout_line=show,
            on_stderr_line=show,
        )


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
    progress(f"pip installing {len(entries)} locked distribution(s), --no-deps")
    result = _pip_install(python, lines, spec.path.parent, progress, "--no-deps")
    if not result.ok:
        message = _pip_error(result.stderr or result.stdout)
        if "DO NOT MATCH THE HASHES" in (result.stderr or "").upper():
            raise UserError(
                f"a locked pip distribution failed its hash check: {message}",
                where=spec.path,
                hint="the file changed after the lock was written; re-lock",
            )
        raise CreateError(f"pip install of the locked pip entries failed in {prefix}: {message}")
    return _done(started, progress)


def _spec_line(spec: EnvSpec, lines: Sequence[str], output: str) -> tuple[str, str] | None:
    """The `pip:` line pip's error names (its text, a requirements file's path, an
    option), with where it is in the spec."""
    errors = "\n".join(
        line for line in output.splitlines() if "error" in line.lower() or "Errno" in line
    )
    for req, line in zip(spec.pip, lines, strict=True):
        if req.kind not in ("pip-decides", "requirements-file"):
            continue
        target = line.split(None, 1)[-1] if req.kind == "requirements-file" else req.text
        head = req.text.split(None, 1)[0]
        if target in errors or (req.text.startswith("-") and head.split("=")[0] in errors):
            return req.text, f"{spec.path}:{req.line}" if req.line else str(spec.path)
    return None


def _pip_error(output: str) -> str:
    """pip's ERROR lines (else its last lines), and its last retry warning: the network or
    certificate error that "(from versions: none)" stands for is only there."""
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    warned = [
        line for line in lines if line.startswith(("WARNING: Retrying", "Could not fetch URL"))
    ]
    shown = (errors or lines)[-3:]
    if errors and lines[-1] not in shown:  # "ERROR: Exception:": the traceback's last line
        shown.append(lines[-1])
    if warned and warned[-1] not in shown:
        shown.append(f"pip warned: {warned[-1]}")
    return " | ".join(shown)
