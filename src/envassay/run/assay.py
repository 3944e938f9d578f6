"""One env on one target: create (through the store) -> probe -> checks.

Shared by the pytest plugin and `envassay check`, so both judge identically.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from envassay.checks import CheckResult, failed, passed, run_all
from envassay.checks.lock import check_lock_fresh, check_lock_match
from envassay.create.env import create_env
from envassay.errors import EnvassayError, UserError
from envassay.lock.status import LockStatus, lock_status
from envassay.probe import run_probe
from envassay.probe.model import PackageRequest, ProbeReport, ProbeRequest
from envassay.progress import Progress
from envassay.run.gpu import gpu_checks
from envassay.spec.config import Config, EnvSettings
from envassay.spec.environment import EnvSpec, declared_packages
from envassay.spec.platforms import current_platform
from envassay.targets import NativeTarget, Target


@dataclass
class Assay:
    """The verdicts for one env on one target, and the facts they were drawn from."""

    spec: EnvSpec
    target_name: str  # native, docker
    results: list[CheckResult] = field(default_factory=list)
    report: ProbeReport | None = None
    lock_status: LockStatus | None = None  # set: lock[match] is judged for ``platform``
    platform: str | None = None


def probe_request(spec: EnvSpec, settings: EnvSettings) -> ProbeRequest:
    """What to ask the probe for this env: its declared packages and the overrides."""
    packages = tuple(
        PackageRequest(name, "pip" if manager == "pip" else "conda")
        for name, manager in declared_packages(spec)
    )
    return ProbeRequest(
        packages=packages,
        modules=dict(settings.imports),
        rename=dict(settings.rename),
        skip=frozenset(settings.skip),
        timeout=settings.import_timeout,
    )


def assay_native(
    spec: EnvSpec,
    config: Config,
    *,
    backend: str | None = None,
    progress: Progress = print,
    recreate: bool = False,
    read_lock_status: Callable[[], LockStatus] | None = None,
) -> Assay:
    """Create ``spec`` natively (or reuse it; ``recreate``: make it again) and run every
    check against it, holding the env's lease so that no prune removes it meanwhile.
    ``read_lock_status``: the run's one read of the spec's lock status (default: read here)."""
    assay = Assay(spec, "native")
    # An unreadable lock: exit 2.
    assay.lock_status = (
        read_lock_status() if read_lock_status is not None else lock_status(spec.path, config, spec)
    )
    assay.platform = current_platform()
    try:
        ensured = create_env(
            spec,
            config,
            backend_name=backend,
            progress=progress,
            lock=assay.lock_status,
            force=recreate,
        )
    except UserError:
        raise  # the user's to fix: reported once, as a collection error
    except EnvassayError as exc:
        assay.results.append(failed("create", "native", str(exc)))
        assay.results.append(check_lock_fresh(assay.lock_status))
        return assay
    how = "reused from the store" if ensured.reused else f"created in {ensured.seconds:.1f}s"
    if ensured.meta.get("source", "spec") != "spec":
        how += f" from {Path(ensured.meta['source']).name}"
    assay.results.append(passed("create", "native", f"{how}: {ensured.prefix}"))
    assay.results.append(check_lock_fresh(assay.lock_status))
    try:
        return probe_and_check(assay, NativeTarget(ensured.prefix), config.env(spec.name))
    finally:
        ensured.lease.release()


def probe_and_check(assay: Assay, target: Target, settings: EnvSettings) -> Assay:
    """Run the probe in ``target`` and the checks on what it reports."""
    try:
        report = run_probe(target, probe_request(assay.spec, settings))
    except EnvassayError as exc:
        assay.results.append(failed("probe", assay.target_name, str(exc)))
        return assay
    assay.report = report
    assay.results.extend(run_all(assay.spec, report, settings))
    if assay.lock_status is not None and assay.platform is not None:
        assay.results.append(check_lock_match(assay.lock_status, assay.platform, report))
    assay.results.extend(gpu_checks(assay.spec, report, target, settings))
    return assay
