"""lock[fresh] and lock[match]: the lock against the spec, and the env against the lock."""

from __future__ import annotations

from packaging.utils import canonicalize_name

from envassay.checks import CheckResult, failed, passed, skipped
from envassay.lock.diff import Entry, diff_entries, entries_of, render_table, summarize
from envassay.lock.status import LockStatus
from envassay.probe.model import ProbeReport


def check_lock_fresh(status: LockStatus) -> CheckResult:
    """lock[fresh]: the lock says what the spec says (no solve)."""

    if status.state == "missing":
        return skipped(
            "lock",
            "fresh",
            f"no lock file {status.lock_path.name}; `envassay lock {status.spec_path}` writes one",
        )
    if status.state == "stale":
        return failed(
            "lock",
            "fresh",
            f"{status.lock_path.name} is stale: {'; '.join(status.reasons)}; "
            f"run `envassay lock {status.spec_path}`",
            reasons=list(status.reasons),
        )
    return passed("lock", "fresh", f"{status.lock_path.name} matches the spec")


def installed_entries(report: ProbeReport) -> list[Entry]:
    """The probe's conda records, and the distributions conda did not install.

    conda-build (and rattler-build) write ``INSTALLER`` = ``conda``; a distribution
    with another installer but the name and version of a conda record is an older
    conda package, not a pip install. One with the name but another version is pip
    having replaced the conda package: it is reported.
    """

    conda = [
        Entry("conda", r.name, r.version, r.build, r.channel_url) for r in report.conda_records
    ]
    conda_versions = {canonicalize_name(r.name): r.version for r in report.conda_records}
    pip = [
        Entry("pip", canonicalize_name(d.name), d.version)
        for d in report.distributions
        if (d.installer or "").strip().lower() != "conda"
        and conda_versions.get(canonicalize_name(d.name)) != d.version
    ]
    return conda + pip


def check_lock_match(status: LockStatus, platform: str, report: ProbeReport) -> CheckResult:
    """lock[match]: what is installed is exactly what the lock says for ``platform``."""

    if status.state == "missing":
        return skipped("lock", "match", "no lock file to compare the env with")
    if status.state == "stale" or status.lock is None:
        return skipped("lock", "match", "the lock is stale, so the env was solved from the spec")
    lock = status.lock
    from_lock = entries_of(lock.packages_for(platform))
    installed = installed_entries(report)
    pip_note = ""
    if not lock.pip_resolved(platform):
        from_lock = [e for e in from_lock if e.manager != "pip"]
        installed = [e for e in installed if e.manager != "pip"]
        pip_note = " (pip entries not compared: the lock's pip part is unresolved here)"
    changes = diff_entries(from_lock, installed)
    name = status.lock_path.name
    if not changes:
        return passed(
            "lock", "match", f"{len(from_lock)} package(s) exactly as {name} ({platform}){pip_note}"
        )
    table = render_table(changes, "locked", "installed")
    return failed(
        "lock",
        "match",
        f"the env differs from {name} ({platform}): {summarize(changes)}{pip_note}\n{table}",
        changes=[(c.manager, c.name, *c.cells()) for c in changes],
    )
