"""Pure checks: a ProbeReport + the spec + settings -> one CheckResult per pytest item.

All judging happens here on the host, with py-rattler for conda semantics and
`packaging` for PEP 440/508; the probe only gathers facts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from envassay import redact
from envassay.checks.overlap import by_name, overlaps
from envassay.cleantext import visible
from envassay.probe.model import CondaRecord, ImportResult, ProbeReport
from envassay.spec.config import EnvSettings
from envassay.spec.environment import CondaDependency, EnvSpec, PipRequirement, declared_packages

Outcome = Literal["passed", "failed", "skipped"]
# Packages whose "import" is the interpreter itself running the probe.
INTERPRETER_PACKAGES = {"python"}


@dataclass(frozen=True)
class CheckResult:
    """One verdict: ``kind[param]`` is the pytest item name."""

    kind: str
    param: str
    outcome: Outcome
    message: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # A verdict's words reach JUnit XML, reports and the terminal: mask them once here.
        # Untrusted words in them (a package's error, a spec's names) are made visible too.
        object.__setattr__(self, "param", visible(redact.mask(self.param)))
        object.__setattr__(self, "message", visible(redact.mask(self.message)))

    @property
    def name(self) -> str:
        return f"{self.kind}[{self.param}]"


def passed(kind: str, param: str, message: str = "", **details: Any) -> CheckResult:
    return CheckResult(kind, param, "passed", message, details)


def failed(kind: str, param: str, message: str, **details: Any) -> CheckResult:
    return CheckResult(kind, param, "failed", message, details)


def skipped(kind: str, param: str, message: str, **details: Any) -> CheckResult:
    return CheckResult(kind, param, "skipped", message, details)


def run_all(spec: EnvSpec, report: ProbeReport, settings: EnvSettings) -> list[CheckResult]:
    """Every check for one env on one target, in report order."""
    return [
        *check_imports(spec, report, settings),
        *check_conda_pins(spec.conda, report),
        *check_pip_pins(spec.pip, report),
        check_pip_health(report),
        check_conda_health(report),
        check_conda_pip(report),
    ]


# --- import ---------------------------------------------------------------


def check_imports(
    spec: EnvSpec, report: ProbeReport, settings: EnvSettings
) -> Iterable[CheckResult]:
    by_module: dict[str, ImportResult] = {r.module: r for r in report.imports}
    for name, _manager in declared_packages(spec):
        if name in settings.skip:
            yield skipped("import", name, f"skipped by [tool.envassay]: {settings.skip[name]}")
        elif name in INTERPRETER_PACKAGES:
            interpreter = report.interpreter
            ran = interpreter.describe(len(report.conda_records)) if interpreter else "Python ?"
            yield passed("import", name, f"the interpreter ran the probe: {ran}")
        else:
            yield _import_verdict(name, report, by_module)


def _import_verdict(
    name: str, report: ProbeReport, by_module: Mapping[str, ImportResult]
) -> CheckResult:
    resolution = report.packages.get(name)
    if resolution is None or resolution.status == "missing":
        return failed("import", name, f"{name} is declared but not installed in the env")
    if resolution.status == "not-python":
        return skipped(
            "import", name, f"{name} is not a Python package: it installs no importable modules"
        )
    results = [by_module[m] for m in resolution.modules if m in by_module]
    bad = [r for r in results if r.status != "ok"]
    via = f" (via {', '.join(resolution.via)})" if resolution.via else ""
    if not results:
        return failed("import", name, f"no import result for {list(resolution.modules)}")
    if bad:
        return failed("import", name, "; ".join(_describe_import(r) for r in bad) + via)
    seconds = sum(r.seconds for r in results)
    modules = ", ".join(r.module for r in results)
    return passed("import", name, f"imported {modules}{via} in {seconds:.3f}s", seconds=seconds)


def _describe_import(result: ImportResult) -> str:
    if result.status == "crashed":
        cause = f"signal {result.signal}" if result.signal else (result.error or "exit")
        return f"import {result.module} crashed the interpreter ({cause})"
    if result.status == "timeout":
        return f"import {result.module} timed out after {result.seconds:.1f}s"
    return f"import {result.module} failed: {result.error}"


# --- pin ------------------------------------------------------------------


def check_conda_pins(deps: Iterable[CondaDependency], report: ProbeReport) -> Iterable[CheckResult]:
    from rattler import MatchSpec

    if not has_conda_records(report):
        yield from _pins_without_conda_meta(deps, report)
        return
    records = {r.name: r for r in report.conda_records}
    both = by_name(overlaps(report))
    for dep in deps:
        record = records.get(dep.name)
        if record is None:
            yield failed("pin", dep.text, f"expected {dep.normalized}; found nothing installed")
            continue
        found = f"{record.name} {record.version} {record.build} from {record.channel}"
        overlap = both.get(canonicalize_name(dep.name))
        if not MatchSpec(dep.normalized).matches(_package_record(record)):
            yield failed("pin", dep.text, f"expected {dep.normalized}; found {found}")
        elif dep.channel and not _same_channel(dep.channel, record.channel_url):
            yield failed("pin", dep.text, f"expected channel {dep.channel}; found {found}")
        elif overlap is not None and overlap.imported == "pip":
            yield failed("pin", dep.text, f"found {found}, but {overlap.describe()}")
        else:
            yield passed("pin", dep.text, f"found {found}")


def has_conda_records(report: ProbeReport) -> bool:
    """Whether the env is judged as conda's: conda-meta exists and holds a record. Without
    one (a venv, a distribution's python, a conda base installed by pip) the interpreter
    and pip's distributions answer the conda pins."""
    meta = report.interpreter.conda_meta if report.interpreter else True
    return meta and bool(report.conda_records)


def _pins_without_conda_meta(
    deps: Iterable[CondaDependency], report: ProbeReport
) -> Iterable[CheckResult]:
    from rattler import MatchSpec

    interpreter = report.interpreter
    for dep in deps:
        if dep.name in INTERPRETER_PACKAGES and interpreter is not None:
            version, found = interpreter.version, f"the interpreter: {interpreter.describe(0)}"
        elif (dist := report.distribution(dep.name)) is not None:
            where = f" ({dist.metadata})" if dist.metadata else ""
            version, found = dist.version, f"pip's {dist.name} {dist.version}{where}"
        else:
            yield failed(
                "pin", dep.text, f"expected {dep.normalized}; no conda-meta and no {dep.name}"
            )
            continue
        record = _version_record(dep.name, version)
        if record is None or not MatchSpec(dep.normalized).matches(record):
            yield failed("pin", dep.text, f"expected {dep.normalized}; found {found}")
        elif dep.channel:
            yield failed(
                "pin", dep.text, f"expected channel {dep.channel}; found {found}, no conda-meta"
            )
        else:
            yield passed("pin", dep.text, f"found {found}")


def _version_record(name: str, version: str) -> Any:
    """A record for a version that is not a conda record's (the interpreter's, pip's)."""
    from rattler import BuildString, PackageRecord, VersionWithSource

    try:
        parsed = VersionWithSource(version)
    except Exception:  # a version conda cannot read matches no pin
        return None
    return PackageRecord(
        name=name, version=parsed, build=BuildString("pypi_0"), build_number=0, subdir="noarch"
    )


def _virtual_problem(
    record: CondaRecord, spec: Any, dep: str, name: str, virtual: Mapping[str, str]
) -> list[CondaProblem]:
    """A dependency on a virtual package, judged where the probe detected that kind.
    ``__cuda`` (the GPU check's question), ``__archspec`` and kinds this target's probe
    does not report are not judged here."""
    if name not in _JUDGED_VIRTUAL or not virtual:
        return []
    found = virtual.get(name)
    if found is None or not spec.matches(_virtual_record(name, found)):
        return [CondaProblem(record.name, record.version, "depends", dep, found, virtual=name)]
    return []


# How the probe reports a conda-meta file it could not read.
_UNREADABLE_RECORD = re.compile(r"conda-meta/[^/:]+\.json: unreadable: ")
# The virtual packages the probe detects; any other ``__*`` dependency is not judged.
_JUDGED_VIRTUAL = frozenset({"__unix", "__linux", "__glibc", "__osx", "__win"})


def _virtual_record(name: str, version: str) -> Any:
    from rattler import BuildString, PackageRecord, VersionWithSource

    return PackageRecord(
        name=name,
        version=VersionWithSource(version),
        build=BuildString("0"),
        build_number=0,
        subdir="noarch",
    )


def _package_record(record: CondaRecord) -> Any:
    from rattler import BuildString, PackageRecord, VersionWithSource

    return PackageRecord(
        name=record.name,
        version=VersionWithSource(record.version),
        build=BuildString(record.build),
        build_number=record.build_number or 0,
        subdir=record.subdir or "noarch",
    )


def _same_channel(wanted: str, found: str) -> bool:
    """`pytorch::x` matches a record from .../pytorch, whatever the mirror or URL form
    (``found`` is the record's channel without conda's subdir: CondaRecord.channel_url)."""
    if not found:
        return False
    return found.rstrip("/").rsplit("/", 1)[-1] == wanted.rstrip("/").rsplit("/", 1)[-1]


def check_pip_pins(reqs: Iterable[PipRequirement], report: ProbeReport) -> Iterable[CheckResult]:
    dists = {canonicalize_name(d.name): d for d in report.distributions}
    markers = dict(report.interpreter.markers) if report.interpreter else {}
    both = by_name(overlaps(report))
    for req in reqs:
        if req.kind != "requirement" or req.name is None:
            continue
        param = req.text
        parsed = Requirement(req.text)
        if parsed.marker is not None and not parsed.marker.evaluate(markers | {"extra": ""}):
            yield skipped("pin", param, f"marker `{parsed.marker}` is false on this target")
            continue
        dist = dists.get(canonicalize_name(req.name))
        overlap = both.get(canonicalize_name(req.name))
        if dist is None:
            yield failed("pin", param, f"expected {req.text}; found no distribution {req.name}")
        elif overlap is not None:
            found = f"found {dist.name} {dist.version}, but {overlap.describe()}"
            yield failed("pin", param, found)
        elif _contains(parsed, dist.version):
            yield passed("pin", param, f"found {dist.name} {dist.version}")
        else:
            yield failed("pin", param, f"expected {req.text}; found {dist.name} {dist.version}")


def _contains(req: Requirement, version: str) -> bool:
    try:
        return req.specifier.contains(Version(version), prereleases=True)
    except InvalidVersion:
        return False


# --- health ---------------------------------------------------------------


@dataclass(frozen=True)
class PipProblem:
    """One unmet Requires-Dist, as pip's ``check_package_set`` reports it (missing or
    conflicting), or one it cannot read."""

    dist: str
    version: str
    requirement: str  # as written (unreadable) or as packaging prints it
    found: tuple[str, str] | None = None  # (name, version) installed; None: missing
    unreadable: bool = False

    def describe(self) -> str:
        if self.unreadable:
            return f"{self.dist} {self.version} has an unreadable requirement {self.requirement!r}"
        if self.found is None:
            return f"{self.dist} {self.version} requires {self.requirement}, which is not installed"
        name, version = self.found
        return (
            f"{self.dist} {self.version} requires {self.requirement}, but {name} {version}"
            " is installed"
        )


def pip_problems(report: ProbeReport) -> list[PipProblem]:
    """What `pip check` finds: every Requires-Dist of every distribution not satisfied."""
    dists = {canonicalize_name(d.name): d for d in report.distributions}
    markers = dict(report.interpreter.markers) if report.interpreter else {}
    problems: list[PipProblem] = []
    for dist in report.distributions:
        for text in dist.requires:
            if not text.strip():
                # whl2conda writes an empty `Requires-Dist:`. pip's pkg_resources reader
                # (pip's default below Python 3.11) skips it and says healthy; its
                # importlib reader reports a parse error. It requires nothing: healthy.
                continue
            try:
                req = Requirement(text)
            except InvalidRequirement:
                problems.append(PipProblem(dist.name, dist.version, text, unreadable=True))
                continue
            if req.marker is not None and not req.marker.evaluate(markers | {"extra": ""}):
                continue
            have = dists.get(canonicalize_name(req.name))
            if have is None:
                problems.append(PipProblem(dist.name, dist.version, str(req)))
            elif not _contains(req, have.version):
                found = (have.name, have.version)
                problems.append(PipProblem(dist.name, dist.version, str(req), found))
    return problems


def check_pip_health(report: ProbeReport) -> CheckResult:
    """``health[pip]``: :func:`pip_problems`, worded."""
    problems = [p.describe() for p in pip_problems(report)]
    if problems:
        return failed("health", "pip", "; ".join(problems), problems=problems)
    return passed("health", "pip", f"{len(report.distributions)} distributions consistent")


@dataclass(frozen=True)
class CondaProblem:
    """One unmet ``depends`` or ``constrains`` of a conda record, or a record the probe
    could not read (``unreadable``: its warning)."""

    record: str
    version: str
    relation: Literal["depends", "constrains", "unreadable"]
    spec: str  # the MatchSpec as the record writes it; the warning when unreadable
    found: str | None = None  # "version build" installed (a virtual's version); None: none
    virtual: str | None = None  # the virtual package (``__glibc``) the dependency names

    def describe(self) -> str:
        if self.relation == "unreadable":
            return self.spec
        verb = "depends on" if self.relation == "depends" else self.relation
        head = f"{self.record} {self.version} {verb} {self.spec}"
        if self.virtual is not None:
            if self.found is None:
                return f"{head}: this target has no {self.virtual}"
            return f"{head}: this target has {self.virtual} {self.found}"
        return f"{head}: not installed" if self.found is None else f"{head}: found {self.found}"


def conda_problems(report: ProbeReport) -> list[CondaProblem]:
    """Every conda record's ``depends`` not satisfied or ``constrains`` not held, as conda
    itself judges a prefix (``conda doctor``'s consistency check): a dependency on a
    virtual package is matched against the target's own (``__glibc``, ``__linux``, ...)."""
    from rattler import MatchSpec

    records = {r.name: r for r in report.conda_records}
    virtual = dict(report.interpreter.virtual_packages) if report.interpreter else {}
    # conda refuses a prefix with a record it cannot read (CorruptedEnvironmentError).
    problems = [
        CondaProblem("", "", "unreadable", w)
        for w in report.warnings
        if _UNREADABLE_RECORD.match(w)
    ]
    for record in report.conda_records:
        for dep in record.depends:
            spec = MatchSpec(dep)
            name = spec.name.normalized if spec.name else dep.split()[0]
            if name.startswith("__"):
                problems.extend(_virtual_problem(record, spec, dep, name, virtual))
                continue
            have = records.get(name)
            if have is None:
                problems.append(CondaProblem(record.name, record.version, "depends", dep))
            elif not spec.matches(_package_record(have)):
                found = f"{have.version} {have.build}"
                problems.append(CondaProblem(record.name, record.version, "depends", dep, found))
        for constraint in record.constrains:
            spec = MatchSpec(constraint)
            other = records.get(spec.name.normalized) if spec.name else None
            if other is not None and not spec.matches(_package_record(other)):
                found = f"{other.version} {other.build}"
                problems.append(
                    CondaProblem(record.name, record.version, "constrains", constraint, found)
                )
    return problems


def check_conda_health(report: ProbeReport) -> CheckResult:
    """``health[conda]``: :func:`conda_problems`, worded."""
    problems = [p.describe() for p in conda_problems(report)]
    if problems:
        return failed("health", "conda", "; ".join(problems), problems=problems)
    return passed("health", "conda", f"{len(report.conda_records)} conda records consistent")


def check_conda_pip(report: ProbeReport) -> CheckResult:
    """``health[conda-pip]``: no distribution is installed by both conda and pip."""
    found = overlaps(report)
    if found:
        problems = [o.describe() for o in found]
        return failed("health", "conda-pip", "; ".join(problems), problems=problems)
    owned = sum(len(r.python_dists) for r in report.conda_records)
    return passed("health", "conda-pip", f"{owned} conda distributions, none installed by pip too")
