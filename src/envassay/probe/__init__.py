"""The probe: a standard-library script run inside a target, and the host side that reads it."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from envassay.probe.report import (
    CondaRecord,
    Distribution,
    ImportResult,
    Interpreter,
    PackageRequest,
    PackageResolution,
    ProbeError,
    ProbeReport,
    ProbeRequest,
)
from envassay.targets import Target

__all__ = [
    "CondaRecord",
    "Distribution",
    "ImportResult",
    "Interpreter",
    "PackageRequest",
    "PackageResolution",
    "ProbeError",
    "ProbeReport",
    "ProbeRequest",
    "default_timeout",
    "probe_script",
    "run_probe",
]

# Interpreter start, reading metadata and the child's start, on a slow machine or a cold container.
_MARGIN_SECONDS = 120.0


@cache
def probe_script() -> str:
    """The text of the in-target script."""
    return files("envassay.probe").joinpath("script.py").read_text(encoding="utf-8")


def default_timeout(request: ProbeRequest) -> float:
    """An overall limit no healthy probe reaches: every module timing out, plus a margin."""
    expected = len(request.packages) + sum(len(m) for m in request.modules.values())
    expected += sum(len(m) for m in request.rename.values())
    return request.timeout * max(expected, 1) + _MARGIN_SECONDS


def run_probe(
    target: Target, request: ProbeRequest, *, timeout: float | None = None
) -> ProbeReport:
    """Run the probe in ``target`` and parse its report; ProbeError if it fails."""
    limit = default_timeout(request) if timeout is None else timeout
    result = target.run_python(probe_script(), [request.to_json()], limit, self_guarded=True)
    tail = result.stderr.strip()[-2000:] or "(no stderr)"
    if result.timed_out:
        raise ProbeError(f"probe in {target.describe()} timed out after {limit:g}s; stderr: {tail}")
    if result.returncode != 0:
        how = exit_words(result.returncode)
        raise ProbeError(f"probe in {target.describe()} {how}; stderr: {tail}")
    try:
        return ProbeReport.from_json(result.stdout)
    except ProbeError as exc:
        raise ProbeError(f"probe in {target.describe()}: {exc}; stderr: {tail}") from None


def exit_words(code: int) -> str:
    """``was killed by signal SIGSEGV`` (a native child), ``exited 139 (killed by signal
    SIGSEGV)`` (a container's main process: 128 + the signal), ``exited 3``."""
    import signal

    def name(number: int) -> str:
        try:
            return signal.Signals(number).name
        except ValueError:
            return str(number)

    if code < 0:
        return f"was killed by signal {name(-code)}"
    if 128 < code < 128 + 65:
        return f"exited {code} (killed by signal {name(code - 128)})"
    return f"exited {code}"
