"""The gpu[...] items of one env on one target: the GPU probe is run here (gathering, in the
run layer); checks/gpu.py judges its facts."""

from __future__ import annotations

from dataclasses import replace

from envassay.checks import CheckResult
from envassay.checks.gpu import (
    cuda_runtime_records,
    installed_frameworks,
    judge_gpu,
    skipped_items,
    unprobed,
)
from envassay.errors import EnvassayError
from envassay.probe.gpu import GpuRequest, run_gpu_probe
from envassay.probe.model import ProbeReport
from envassay.spec.config import EnvSettings
from envassay.spec.environment import EnvSpec
from envassay.spec.gpu import expectation
from envassay.targets import Target


def gpu_checks(
    spec: EnvSpec,
    report: ProbeReport,
    target: Target,
    settings: EnvSettings,
    request: GpuRequest | None = None,
) -> list[CheckResult]:
    """The gpu[...] items for one env on one target (none when the env expects no GPU)."""
    expect = expectation(spec, settings)
    if expect.level == "none":
        return []
    if expect.skip_run:
        return skipped_items(spec, report, expect)
    request = replace(request or GpuRequest(), frameworks=installed_frameworks(report))
    try:
        gpu = run_gpu_probe(target, request)
    except EnvassayError as exc:
        return unprobed(str(exc))
    return judge_gpu(gpu, expect, report, cuda_runtime_records(spec, report))
