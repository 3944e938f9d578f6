"""GPU expectations and verdicts: the GPU probe's facts + the spec + the policy -> gpu[...] items.

Items: ``gpu[driver]`` (libcuda answers and counts devices), ``gpu[FRAMEWORK]`` for
each of torch, tensorflow, jax and cupy installed in the env (its build, the
CUDA it was built for against the driver, and real work on each device
compared with the CPU), and ``gpu[PACKAGE]`` for each declared conda package
that fixes the CUDA runtime (cuda-version, cudatoolkit, pytorch-cuda).

The policy (``[tool.envassay.envs.NAME] gpu``) decides what a missing GPU
means: ``required`` fails, ``optional`` skips with the reason, ``none`` makes no
GPU items at all. ``auto`` (the default) is ``optional`` when the env declares
a CUDA-capable package, else ``none``. A run may override it with ``--gpu``:
``require`` turns optional into required, ``skip`` skips every GPU item
without touching the driver. Where a GPU is visible everything is judged, under
either policy: a CPU-only framework build or a driver too old then fails.

Version comparisons use ``packaging.version``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from envassay.checks import CheckResult, failed, passed, skipped
from envassay.probe.gpu import (
    FRAMEWORKS,
    DriverFacts,
    FrameworkFacts,
    GpuReport,
)
from envassay.probe.model import ProbeReport
from envassay.spec.environment import EnvSpec
from envassay.spec.gpu import Expectation

KIND = "gpu"
# Conda packages whose version is the CUDA runtime version the env is built for.
CUDA_RUNTIME_PACKAGES = ("cuda-version", "cudatoolkit", "pytorch-cuda")
# Which installed distributions / conda records mean a framework is there.
_FRAMEWORK_DISTS = {
    "torch": ("torch",),
    "tensorflow": ("tensorflow", "tensorflow-gpu", "tensorflow-cpu", "tf-nightly"),
    "jax": ("jax",),
    "cupy": ("cupy",),
}
_FRAMEWORK_RECORDS = {
    "torch": ("pytorch", "pytorch-gpu", "pytorch-cpu"),
    "tensorflow": ("tensorflow", "tensorflow-base", "tensorflow-gpu", "tensorflow-cpu"),
    "jax": ("jax", "jaxlib"),
    "cupy": ("cupy", "cupy-core"),
}
_JAX_CUDA_DIST = re.compile(r"^jax-cuda(\d+)-(?:plugin|pjrt)$")


# --- the policy --------------------------------------------------------------------------


# --- what is installed --------------------------------------------------------------------


def installed_frameworks(report: ProbeReport) -> tuple[str, ...]:
    """The frameworks the probe found installed, in FRAMEWORKS order."""
    dists: set[str] = {canonicalize_name(d.name) for d in report.distributions}
    records = {r.name for r in report.conda_records}
    if any(d.startswith(("cupy-cuda", "cupy-rocm")) for d in dists):
        dists.add("cupy")  # the binary wheels: cupy-cuda12x, ...
    return tuple(
        name
        for name in FRAMEWORKS
        if dists & set(_FRAMEWORK_DISTS[name]) or records & set(_FRAMEWORK_RECORDS[name])
    )


def cuda_runtime_records(spec: EnvSpec, report: ProbeReport) -> list[tuple[str, str]]:
    """(name, version) of each declared and installed conda package that fixes the CUDA runtime."""
    declared = {d.name for d in spec.conda}
    found = []
    for name in CUDA_RUNTIME_PACKAGES:
        record = report.conda_record(name)
        if name in declared and record is not None:
            found.append((name, record.version))
    return found


# --- compatibility ------------------------------------------------------------------------


def cuda_compatibility(what: str, runtime: str, driver: str) -> tuple[bool, str]:
    """Whether a driver supporting CUDA ``driver`` runs ``what``, built for CUDA ``runtime``.

    A driver runs every CUDA runtime up to the version it supports (drivers are
    backward compatible). CUDA 11 and later add minor-version compatibility: a
    12.x runtime also starts on an older 12.y driver, but without PTX JIT and
    without features that need the newer driver. envassay asks for the driver's
    CUDA to be at least the runtime's major.minor, and says so.
    """
    try:
        need, have = Version(runtime), Version(driver)
    except InvalidVersion:
        return False, f"{what}: cannot compare CUDA {runtime!r} with the driver's CUDA {driver!r}"
    needed = Version(f"{need.major}.{need.minor}")
    if have >= needed:
        return True, f"{what} needs CUDA {needed}; the driver supports CUDA {have}"
    short = f"{what} needs CUDA {needed}, but the driver supports only CUDA {have}"
    if have.major == need.major and need.major >= 11:
        return False, (
            f"{short}. CUDA >= 11 minor-version compatibility lets a {need.major}.x runtime start"
            f" on any {need.major}.x driver, but without PTX JIT and without features that need"
            f" a newer driver, so the driver must support CUDA >= {needed}: upgrade the driver,"
            f" or pin the env to CUDA <= {have} (e.g. cuda-version<={have})"
        )
    return False, (
        f"{short}: a CUDA {need.major} runtime needs a driver for CUDA {need.major}.0 or newer"
        " (minor-version compatibility applies within one major version, from CUDA 11 on);"
        " upgrade the driver"
    )


def framework_cuda(facts: FrameworkFacts, report: ProbeReport | None) -> str | None:
    """The CUDA version a framework was built for: its own word, else its packages' names."""
    if facts.cuda:
        return facts.cuda
    if facts.name == "jax" and report is not None:
        for dist in report.distributions:
            match = _JAX_CUDA_DIST.match(canonicalize_name(dist.name))
            if match:
                return match.group(1)
            if canonicalize_name(dist.name) == "jaxlib" and "+cuda" in dist.version:
                major = re.search(r"\+cuda(\d+)", dist.version)
                return major.group(1) if major else None
    return None


# --- verdicts -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    expect: Expectation
    driver: DriverFacts
    gpu: GpuReport

    @property
    def driver_cuda(self) -> str | None:
        return self.driver.cuda_version

    def no_gpu(self, param: str, before: Sequence[str], after: Sequence[str] = ()) -> CheckResult:
        """No GPU is visible: required fails, optional skips, each with the reason."""
        reason = f"no GPU visible: {self.driver.reason()}{self.smi_hint()}"
        text = "; ".join([*before, reason, *after]) + f" ({self.expect.why})"
        if self.expect.level == "required":
            return failed(KIND, param, text)
        return skipped(KIND, param, text)

    def smi_hint(self) -> str:
        if self.gpu.nvidia_smi:
            names = ", ".join(g.name for g in self.gpu.nvidia_smi)
            return f"; yet nvidia-smi lists {len(self.gpu.nvidia_smi)} GPU(s): {names}"
        return ""

    def verdict(
        self, param: str, problems: Sequence[str], good: str, known: Sequence[str] = ()
    ) -> CheckResult:
        """Judged where a GPU is visible; else the policy decides, with what is ``known``."""
        if not self.driver.visible:
            return self.no_gpu(param, [*problems, *known])
        if problems:
            return failed(KIND, param, "; ".join(problems))
        return passed(KIND, param, good)


def judge_gpu(
    gpu: GpuReport,
    expect: Expectation,
    report: ProbeReport | None = None,
    runtimes: Sequence[tuple[str, str]] = (),
) -> list[CheckResult]:
    """gpu[driver], then one item per framework probed and per CUDA runtime package.

    ``report`` (the main probe's) names the CUDA a jax build is for when jax
    itself does not; ``runtimes`` are (package, CUDA version) pairs to check
    against the driver.
    """
    context = _Context(expect, gpu.driver, gpu)
    results = [_driver_item(context)]
    for facts in gpu.frameworks.values():
        results.append(_framework_item(context, facts, framework_cuda(facts, report)))
    for name, version in runtimes:
        results.append(_runtime_item(context, name, version))
    return results


def _driver_item(context: _Context) -> CheckResult:
    gpu, driver = context.gpu, context.driver
    facts = [driver.summary()]
    if gpu.driver_release:
        facts.append(f"driver {gpu.driver_release} (nvidia-smi)")
    elif gpu.smi_error:
        facts.append(gpu.smi_error)
    visible = {k: v for k, v in gpu.environment.items() if k.endswith("VISIBLE_DEVICES")}
    if visible:
        facts.append(", ".join(f"{k}={v!r}" for k, v in visible.items()))
    if not driver.visible:
        return context.no_gpu("driver", [], facts[1:])
    return passed(KIND, "driver", "; ".join(facts))


def _framework_item(context: _Context, facts: FrameworkFacts, cuda: str | None) -> CheckResult:
    label = facts.label()
    problems: list[str] = []
    good: list[str] = []
    if facts.status == "missing":
        problems.append(f"{facts.name} is installed, but its module is not importable")
    elif facts.status != "ok":
        problems.append(f"{label}: {_first_lines(facts.error or facts.status)}")
    elif facts.build == "cpu":
        cpu = "" if "+cpu" in (facts.version or "") else " (a CPU-only build)"
        problems.append(f"{label}{cpu} installed; the env expects CUDA")
    elif facts.build == "rocm":
        problems.append(f"{label} is a ROCm build; the env expects CUDA")
    else:
        problems += _cuda_problems(context, facts, cuda, good)
    built = f", built for CUDA {cuda}" if cuda else ""
    cudnn = f", cuDNN {facts.cudnn}" if facts.cudnn else ""
    done = "; ".join(f"{c.name} ok ({c.detail})" for c in facts.checks)
    message = f"{label}{built}{cudnn}: {done}" + "".join(f"; {g}" for g in good)
    known = []
    if facts.status == "ok" and facts.build in ("cuda", "unknown"):
        known = good or [f"{label}{built}{cudnn}"]
    return context.verdict(facts.name, problems, message, known)


def _cuda_problems(
    context: _Context, facts: FrameworkFacts, cuda: str | None, good: list[str]
) -> list[str]:
    problems: list[str] = []
    label = facts.label()
    if cuda and context.driver_cuda:
        ok, words = cuda_compatibility(label, cuda, context.driver_cuda)
        (good if ok else problems).append(words)
    if not context.driver.visible:
        return problems
    if not facts.available:
        notes = "; ".join(_first_lines(n) for n in facts.notes)
        problems.append(
            f"{label} sees no GPU, but the driver shows {len(context.driver.devices)}"
            + (f": {notes}" if notes else "")
        )
    elif not facts.checks:
        problems.append(f"{label} sees a GPU but did no work on it")
    problems += [f"{c.name} failed: {c.detail}" for c in facts.checks if not c.ok]
    return problems


def _runtime_item(context: _Context, name: str, version: str) -> CheckResult:
    label = f"{name} {version}"
    if context.driver_cuda is None:
        return context.no_gpu(name, [f"{label} needs a CUDA driver"])
    ok, words = cuda_compatibility(label, version, context.driver_cuda)
    return context.verdict(name, [] if ok else [words], words, [words] if ok else [])


def _first_lines(text: str, limit: int = 600) -> str:
    """A traceback's last lines (where the error is), on one line."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-3:])[-limit:]


def skipped_items(spec: EnvSpec, report: ProbeReport, expect: Expectation) -> list[CheckResult]:
    """The gpu[...] items of a run that skips them (--gpu skip): no probe runs."""
    reason = f"GPU checks skipped for this run (--gpu skip; {expect.why})"
    frameworks = installed_frameworks(report)
    params = ["driver", *frameworks, *(n for n, _ in cuda_runtime_records(spec, report))]
    return [skipped(KIND, param, reason) for param in params]


def unprobed(message: str) -> list[CheckResult]:
    """The GPU probe could not run (``message`` says why): gpu[driver] fails with it."""
    return [failed(KIND, "driver", message)]
