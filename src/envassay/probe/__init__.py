"""The probe: a standard-library script run inside a target, and the host side that reads it."""

from __future__ import annotations

import secrets
from functools import cache
from importlib.resources import files

from envassay.command import CommandResult
from envassay.probe.model import (
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
# Output kept per stream (head and tail): a package's prints are not read into memory whole,
# and a report larger than this is refused.
OUTPUT_LIMIT = 64 * 1024 * 1024
_STDERR_SHOWN = 2000


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
    # A token for this run only, in the script's text: see report_text.
    token = secrets.token_hex(16)
    script = probe_script().replace('REPORT_TOKEN = ""', f'REPORT_TOKEN = "{token}"', 1)
    result = target.run_python(
        script, [request.to_json()], limit, self_guarded=True, output_limit=OUTPUT_LIMIT
    )
    tail = result.stderr.strip()[-_STDERR_SHOWN:] or "(no stderr)"
    if result.timed_out:
        raise ProbeError(f"probe in {target.describe()} timed out after {limit:g}s; stderr: {tail}")
    if result.returncode != 0:
        how = exit_words(result.returncode)
        raise ProbeError(f"probe in {target.describe()} {how}; stderr: {tail}")
    try:
        return ProbeReport.from_json(report_text(result, token))
    except ProbeError as exc:
        raise ProbeError(f"probe in {target.describe()}: {exc}; stderr: {tail}") from None


def report_text(result: CommandResult, token: str) -> str:
    """The one report line framed with this run's ``token``, read while the probe ran;
    ProbeError for anything else on its channel (a package's forgery, a leftover writer)."""
    if result.outlived:
        raise ProbeError(
            "a process started in the target still held the report channel after the probe "
            "exited; report refused"
        )
    if result.stdout_cut:
        raise ProbeError(f"the output exceeded {OUTPUT_LIMIT} bytes; report refused")
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    framed = [line for line in lines if line.startswith(f"{token} ")]
    if len(framed) > 1:
        raise ProbeError("the report was written more than once; refused")
    foreign = [line for line in lines if not line.startswith(f"{token} ")]
    if foreign:
        raise ProbeError(
            f"the report channel carried {len(foreign)} line(s) the probe did not write "
            f"(first: {foreign[0][:200]!r}); refused"
        )
    if not framed:
        raise ProbeError("the probe wrote no report")
    return framed[0][len(token) + 1 :]


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
