"""The GPU verdicts as pure functions: GPU probe documents + spec + policy -> gpu[...] items."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from envassay.checks import CheckResult
from envassay.checks.gpu import (
    cuda_compatibility,
    cuda_runtime_records,
    framework_cuda,
    installed_frameworks,
    judge_gpu,
)
from envassay.command import CommandResult
from envassay.probe.gpu import GpuReport
from envassay.probe.model import ProbeReport
from envassay.run.gpu import gpu_checks
from envassay.spec.config import EnvSettings, GpuMode, GpuPolicy, parse_config
from envassay.spec.environment import EnvSpec, load_spec
from envassay.spec.gpu import Expectation, cuda_capable, expectation
from tests.unit.test_checks import dist, record, report

REQUIRED = Expectation("required", "gpu = required")
OPTIONAL = Expectation("optional", "gpu = optional")
H100 = {"index": 0, "name": "NVIDIA H100 80GB HBM3", "memory": 80 * 2**30, "capability": "9.0"}


def spec(tmp_path: Path, *deps: str, pip: tuple[str, ...] = ()) -> EnvSpec:
    lines = ["name: ai", "channels: [conda-forge]", "dependencies:"]
    lines += [f'  - "{d}"' for d in deps]
    if pip:
        lines += ["  - pip", "  - pip:", *[f'    - "{p}"' for p in pip]]
    path = tmp_path / "ai.yml"
    path.write_text("\n".join(lines) + "\n")
    return load_spec(path)


def driver(status: str = "ok", version: int | None = 12040, **kw: Any) -> dict[str, Any]:
    doc = {
        "status": status,
        "library": "libcuda.so.1" if status != "no-library" else None,
        "tried": [] if status != "no-library" else ["libcuda.so.1: cannot open shared object"],
        "version": version,
        "init_error": None,
        "devices": [H100] if status == "ok" else [],
        "error": None,
        "seconds": 0.1,
    }
    doc.update(kw)
    return doc


def torch(**kw: Any) -> dict[str, Any]:
    """A CUDA 12.4 torch that computed right on one H100."""
    doc = {
        "name": "torch",
        "status": "ok",
        "version": "2.5.1+cu124",
        "build": "cuda",
        "cuda": "12.4",
        "cudnn": "90100",
        "available": True,
        "devices": [H100],
        "checks": [
            {"name": "matmul float32 on cuda:0", "ok": True, "detail": "max error 1e-07"},
            {"name": "conv2d on cuda:0", "ok": True, "detail": "max error 2e-04"},
        ],
        "notes": [],
        "error": None,
        "seconds": 3.0,
    }
    doc.update(kw)
    return doc


CPU_TORCH = {"version": "2.13.0+cpu", "build": "cpu", "cuda": None, "cudnn": None}
NO_DEVICE = {"available": False, "devices": [], "checks": []}


def gpu(
    drv: dict[str, Any] | None = None,
    frameworks: dict[str, dict[str, Any]] | None = None,
    smi: Any = None,
    environment: dict[str, str] | None = None,
) -> GpuReport:
    doc = {
        "gpu_probe_version": 1,
        "driver": drv if drv is not None else driver(),
        "nvidia_smi": smi,
        "environment": environment or {},
        "frameworks": frameworks if frameworks is not None else {},
        "elapsed": 1.0,
    }
    return GpuReport.from_json(json.dumps(doc))


def by_param(results: list[CheckResult]) -> dict[str, tuple[str, str]]:
    assert all(r.kind == "gpu" for r in results)
    return {r.param: (r.outcome, r.message) for r in results}


# --- the policy ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "pytorch",
        "torch",
        "tensorflow",
        "jaxlib",
        "cupy",
        "cupy-cuda12x",
        "cudatoolkit",
        "cuda-version",
        "cuda-nvcc",
        "pytorch-cuda",
        "cudnn",
        "nvidia-cublas-cu12",
        "jax-cuda12-plugin",
    ],
)
def test_cuda_capable_packages(name: str) -> None:
    assert cuda_capable(name)


@pytest.mark.parametrize("name", ["numpy", "pytorch-cpu", "tensorflow-cpu", "scikit-learn", "pip"])
def test_not_cuda_capable(name: str) -> None:
    assert not cuda_capable(name)


@pytest.mark.parametrize(
    ("deps", "pip", "policy", "mode", "level", "skip_run"),
    [
        (["numpy"], (), "auto", "auto", "none", False),
        (["pytorch"], (), "auto", "auto", "optional", False),
        (["numpy"], ("torch==2.5",), "auto", "auto", "optional", False),
        (["numpy"], ("jax[cuda12]",), "auto", "auto", "optional", False),
        (["pytorch"], (), "none", "auto", "none", False),
        (["numpy"], (), "required", "auto", "required", False),
        (["pytorch"], (), "auto", "require", "required", False),
        (["pytorch"], (), "optional", "require", "required", False),
        (["numpy"], (), "auto", "require", "none", False),  # a CPU env stays without GPU items
        (["pytorch"], (), "none", "require", "none", False),
        (["pytorch"], (), "required", "skip", "required", True),
        (["numpy"], (), "auto", "skip", "none", False),
        (["mpi4py=*=*cuda*"], (), "auto", "auto", "optional", False),  # a CUDA build string
    ],
)
def test_expectation(
    tmp_path: Path,
    deps: list[str],
    pip: tuple[str, ...],
    policy: GpuPolicy,
    mode: GpuMode,
    level: str,
    skip_run: bool,
) -> None:
    settings = EnvSettings(gpu=policy, gpu_mode=mode)
    expect = expectation(spec(tmp_path, "python=3.11", *deps, pip=pip), settings)
    assert (expect.level, expect.skip_run) == (level, skip_run)


def test_expectation_says_why(tmp_path: Path) -> None:
    env = spec(tmp_path, "python=3.11", "pytorch", "numpy", "cuda-version=12.4")
    assert expectation(env, EnvSettings()).why == (
        "gpu = optional, inferred from pytorch, cuda-version"
    )
    assert expectation(env, EnvSettings(gpu_mode="require")).why == (
        "gpu = optional, inferred from pytorch, cuda-version, made required by --gpu require"
    )
    assert expectation(spec(tmp_path, "numpy"), EnvSettings()).why == (
        "gpu = none, inferred: no CUDA-capable package declared"
    )


def test_images_get_gpus_by_the_same_policy(tmp_path: Path) -> None:
    from envassay.targets.image import expects_gpu

    assert expects_gpu(spec(tmp_path, "numpy", pip=("torch",)), EnvSettings())
    assert not expects_gpu(spec(tmp_path, "numpy"), EnvSettings())
    assert not expects_gpu(spec(tmp_path, "pytorch"), EnvSettings(gpu="none"))


def test_the_run_mode_reaches_every_env_through_config(tmp_path: Path) -> None:
    config = parse_config({"envs": {"ai": {"gpu": "optional"}}}, root=tmp_path)
    assert config.env("ai").gpu_mode == "auto"
    from dataclasses import replace

    forced = replace(config, gpu_mode="require")
    assert (forced.env("ai").gpu, forced.env("ai").gpu_mode) == ("optional", "require")
    assert forced.env("other").gpu_mode == "require"


# --- what is installed --------------------------------------------------------------------


def test_installed_frameworks_from_distributions_and_conda_records() -> None:
    probe = report(
        conda_records=[record("pytorch", "2.5.1", modules=["torch"]), record("jaxlib", "0.4.30")],
        distributions=[dist("cupy-cuda12x", "13.3.0"), dist("numpy", "1.26.4")],
    )
    assert installed_frameworks(probe) == ("torch", "jax", "cupy")
    assert installed_frameworks(report(distributions=[dist("tensorflow-cpu", "2.16")])) == (
        "tensorflow",
    )
    assert installed_frameworks(report()) == ()


def test_cuda_runtime_records_are_the_declared_and_installed_ones(tmp_path: Path) -> None:
    probe = report(
        conda_records=[
            record("cuda-version", "12.4", modules=[]),
            record("cudatoolkit", "11.8.0", modules=[]),
            record("pytorch-cuda", "12.1", modules=[]),
        ]
    )
    env = spec(tmp_path, "pytorch-cuda=12.1", "cuda-version", "numpy")
    assert cuda_runtime_records(env, probe) == [("cuda-version", "12.4"), ("pytorch-cuda", "12.1")]


def test_jax_cuda_version_from_its_plugin_distribution() -> None:
    facts = gpu(frameworks={"jax": torch(name="jax", version="0.4.30", cuda=None)}).frameworks
    probe = report(distributions=[dist("jax", "0.4.30"), dist("jax-cuda12-plugin", "0.4.30")])
    assert framework_cuda(facts["jax"], probe) == "12"
    old = report(distributions=[dist("jaxlib", "0.4.23+cuda12.cudnn89")])
    assert framework_cuda(facts["jax"], old) == "12"
    assert framework_cuda(facts["jax"], report()) is None
    assert framework_cuda(facts["jax"], None) is None


# --- compatibility -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("runtime", "driver_cuda", "ok"),
    [
        ("12.4", "12.4", True),
        ("12.4.1", "12.4", True),  # patch releases do not matter
        ("12.1", "12.4", True),
        ("11.8", "12.4", True),  # drivers run older runtimes
        ("10.2", "12.4", True),
        ("12", "12.0", True),  # a major-only version (a jax plugin's name)
        ("12.6", "12.4", False),
        ("12.0", "11.8", False),
        ("13.0", "12.9", False),
    ],
)
def test_cuda_compatibility(runtime: str, driver_cuda: str, ok: bool) -> None:
    assert cuda_compatibility("x", runtime, driver_cuda)[0] is ok


def test_same_major_too_old_states_minor_version_compatibility() -> None:
    ok, message = cuda_compatibility("torch 2.7.0+cu128", "12.8", "12.4")
    assert not ok
    assert message.startswith(
        "torch 2.7.0+cu128 needs CUDA 12.8, but the driver supports only CUDA 12.4. "
        "CUDA >= 11 minor-version compatibility lets a 12.x runtime start on any 12.x driver"
    )
    assert "without PTX JIT" in message and "cuda-version<=12.4" in message


def test_older_major_says_a_new_driver_is_needed() -> None:
    ok, message = cuda_compatibility("cudatoolkit 12.1", "12.1", "11.8")
    assert not ok
    assert message == (
        "cudatoolkit 12.1 needs CUDA 12.1, but the driver supports only CUDA 11.8: a CUDA 12"
        " runtime needs a driver for CUDA 12.0 or newer (minor-version compatibility applies"
        " within one major version, from CUDA 11 on); upgrade the driver"
    )


def test_unreadable_versions_fail_with_both() -> None:
    ok, message = cuda_compatibility("x", "twelve", "12.4")
    assert not ok and "'twelve'" in message and "'12.4'" in message


# --- verdicts with a GPU visible ---------------------------------------------------------


def test_a_gpu_that_computes_passes_everything() -> None:
    items = by_param(judge_gpu(gpu(frameworks={"torch": torch()}), REQUIRED))
    outcome, message = items["driver"]
    assert outcome == "passed"
    assert message == (
        "driver supports CUDA 12.4 (libcuda.so.1); 1 device(s): "
        "0: NVIDIA H100 80GB HBM3 (sm_90, 80 GiB)"
    )
    outcome, message = items["torch"]
    assert outcome == "passed"
    assert message.startswith("torch 2.5.1+cu124, built for CUDA 12.4, cuDNN 90100: ")
    assert "matmul float32 on cuda:0 ok (max error 1e-07)" in message
    assert "torch 2.5.1+cu124 needs CUDA 12.4; the driver supports CUDA 12.4" in message


def test_driver_release_and_visible_devices_are_in_the_driver_item() -> None:
    smi = {"gpus": [{"name": "NVIDIA H100", "driver_version": "550.54.15", "memory": "81559 MiB"}]}
    report_ = gpu(smi=smi, environment={"CUDA_VISIBLE_DEVICES": "0"})
    outcome, message = by_param(judge_gpu(report_, OPTIONAL))["driver"]
    assert outcome == "passed"
    assert message.endswith("; driver 550.54.15 (nvidia-smi); CUDA_VISIBLE_DEVICES='0'")


def test_wrong_results_on_the_device_fail() -> None:
    bad = {"name": "matmul bfloat16 on cuda:0", "ok": False, "detail": "max error 3.1e+00"}
    facts = torch(checks=[*torch()["checks"], bad])
    outcome, message = by_param(judge_gpu(gpu(frameworks={"torch": facts}), OPTIONAL))["torch"]
    assert (outcome, message) == ("failed", "matmul bfloat16 on cuda:0 failed: max error 3.1e+00")


def test_cpu_only_build_with_a_gpu_visible_fails_even_when_optional() -> None:
    facts = torch(**CPU_TORCH, **NO_DEVICE)
    outcome, message = by_param(judge_gpu(gpu(frameworks={"torch": facts}), OPTIONAL))["torch"]
    assert (outcome, message) == ("failed", "torch 2.13.0+cpu installed; the env expects CUDA")


def test_cpu_only_tensorflow_is_named_a_cpu_only_build() -> None:
    facts = torch(name="tensorflow", version="2.16.1", build="cpu", cuda=None, **NO_DEVICE)
    items = by_param(judge_gpu(gpu(frameworks={"tensorflow": facts}), OPTIONAL))
    assert items["tensorflow"] == (
        "failed",
        "tensorflow 2.16.1 (a CPU-only build) installed; the env expects CUDA",
    )


def test_a_driver_too_old_for_the_framework_fails_with_both_versions() -> None:
    facts = torch(
        version="2.7.0+cu128",
        cuda="12.8",
        notes=["CUDA initialization: The NVIDIA driver on your system is too old"],
        **NO_DEVICE,
    )
    outcome, message = by_param(judge_gpu(gpu(frameworks={"torch": facts}), OPTIONAL))["torch"]
    assert outcome == "failed"
    assert message.startswith(
        "torch 2.7.0+cu128 needs CUDA 12.8, but the driver supports only CUDA 12.4."
    )
    assert message.endswith(
        "; torch 2.7.0+cu128 sees no GPU, but the driver shows 1: "
        "CUDA initialization: The NVIDIA driver on your system is too old"
    )


def test_a_framework_that_sees_a_gpu_but_did_nothing_fails() -> None:
    facts = torch(checks=[])
    outcome, message = by_param(judge_gpu(gpu(frameworks={"torch": facts}), OPTIONAL))["torch"]
    assert (outcome, message) == ("failed", "torch 2.5.1+cu124 sees a GPU but did no work on it")


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        (
            {"name": "cupy", "status": "timeout", "error": "did not finish within 300s (killed)"},
            "cupy: did not finish within 300s (killed)",
        ),
        (
            {"name": "cupy", "status": "crashed", "error": "killed by signal SIGSEGV; stderr: "},
            "cupy: killed by signal SIGSEGV; stderr:",
        ),
        (
            torch(
                name="cupy", version=None, status="error", error="Traceback\n  x\nImportError: y"
            ),
            "cupy: Traceback | x | ImportError: y",
        ),
        (
            torch(name="cupy", status="missing"),
            "cupy is installed, but its module is not importable",
        ),
        (
            torch(name="cupy", version="13.3.0", build="rocm", **NO_DEVICE),
            "cupy 13.3.0 is a ROCm build; the env expects CUDA",
        ),
    ],
)
def test_framework_failures_with_a_gpu_visible(facts: dict[str, Any], expected: str) -> None:
    items = by_param(judge_gpu(gpu(frameworks={"cupy": facts}), OPTIONAL))
    assert items["cupy"] == ("failed", expected)


def test_cuda_runtime_packages_against_the_driver() -> None:
    runtimes = [("cuda-version", "12.4"), ("pytorch-cuda", "12.8"), ("cudatoolkit", "11.8.0")]
    items = by_param(judge_gpu(gpu(), OPTIONAL, runtimes=runtimes))
    assert items["cuda-version"] == (
        "passed",
        "cuda-version 12.4 needs CUDA 12.4; the driver supports CUDA 12.4",
    )
    outcome, message = items["pytorch-cuda"]
    assert outcome == "failed"
    assert message.startswith(
        "pytorch-cuda 12.8 needs CUDA 12.8, but the driver supports only CUDA 12.4. CUDA >= 11"
    )
    assert items["cudatoolkit"][0] == "passed"


# --- verdicts without a GPU ----------------------------------------------------------------

NO_LIBRARY = driver("no-library", version=None)
NO_DEVICE_DRIVER = driver("init-failed", init_error="CUDA_ERROR_NO_DEVICE (100)")


@pytest.mark.parametrize(
    ("expect", "outcome"),
    [(REQUIRED, "failed"), (OPTIONAL, "skipped")],
    ids=["required", "optional"],
)
def test_no_gpu_fails_when_required_and_skips_when_optional(
    expect: Expectation, outcome: str
) -> None:
    facts = torch(**CPU_TORCH, **NO_DEVICE)
    runtimes = [("cuda-version", "12.4")]
    items = by_param(judge_gpu(gpu(NO_DEVICE_DRIVER, {"torch": facts}), expect, runtimes=runtimes))
    reason = (
        "no GPU visible: cuInit failed: CUDA_ERROR_NO_DEVICE (100) (the driver supports CUDA 12.4)"
    )
    assert items["driver"] == (outcome, f"{reason} ({expect.why})")
    assert items["torch"] == (
        outcome,
        f"torch 2.13.0+cpu installed; the env expects CUDA; {reason} ({expect.why})",
    )
    assert items["cuda-version"] == (
        outcome,
        f"cuda-version 12.4 needs CUDA 12.4; the driver supports CUDA 12.4; {reason}"
        f" ({expect.why})",
    )


def test_no_driver_at_all() -> None:
    facts = torch(version="2.5.1+cu124", **NO_DEVICE)
    items = by_param(
        judge_gpu(gpu(NO_LIBRARY, {"torch": facts}), REQUIRED, runtimes=[("cuda-version", "12.4")])
    )
    reason = (
        "no GPU visible: no NVIDIA driver: could not load libcuda.so.1: cannot open shared object"
    )
    assert items["driver"] == ("failed", f"{reason} (gpu = required)")
    # No driver version to compare with: the build's facts and the reason only.
    assert items["torch"] == (
        "failed",
        f"torch 2.5.1+cu124, built for CUDA 12.4, cuDNN 90100; {reason} (gpu = required)",
    )
    assert items["cuda-version"] == (
        "failed",
        f"cuda-version 12.4 needs a CUDA driver; {reason} (gpu = required)",
    )


def test_nvidia_smi_seeing_gpus_that_libcuda_does_not_is_said() -> None:
    smi = {"gpus": [{"name": "NVIDIA A100", "driver_version": "535.1", "memory": "40 GiB"}]}
    items = by_param(judge_gpu(gpu(NO_DEVICE_DRIVER, smi=smi), OPTIONAL))
    assert (
        "; yet nvidia-smi lists 1 GPU(s): NVIDIA A100; driver 535.1 (nvidia-smi)"
        in (items["driver"][1])
    )


def test_a_hung_driver_is_no_gpu_with_the_reason() -> None:
    hung = driver("timeout", version=None, error="did not finish within 30s (killed)")
    items = by_param(judge_gpu(gpu(hung), REQUIRED))
    assert items["driver"] == (
        "failed",
        "no GPU visible: the driver hung: cuInit/device queries did not finish within 30s"
        " (killed) (gpu = required)",
    )


# --- the report model --------------------------------------------------------------------


def test_a_failed_section_is_kept_as_an_error() -> None:
    report_ = gpu({"error": "Traceback: boom"}, {"jax": {"error": "Traceback: jax boom"}})
    assert report_.errors == {"driver": "Traceback: boom"}
    assert report_.driver.status == "error" and not report_.driver.visible
    assert report_.frameworks["jax"].status == "error"
    items = by_param(judge_gpu(report_, REQUIRED))
    assert items["driver"][0] == "failed" and "Traceback: boom" in items["driver"][1]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"gpu_probe_version": 2}, "gpu_probe_version 2"),
        ({"driver": {**driver(), "status": "weird"}}, "gpu.driver.status"),
        ({"frameworks": {"torch": torch(available="yes")}}, "gpu.frameworks.torch.available"),
        ({"error": "Traceback: it broke"}, "the GPU probe failed inside the target"),
    ],
)
def test_malformed_documents_are_probe_errors(change: dict[str, Any], error: str) -> None:
    from envassay.probe.model import ProbeError

    doc = {
        "gpu_probe_version": 1,
        "driver": driver(),
        "nvidia_smi": None,
        "environment": {},
        "frameworks": {},
        "elapsed": 1.0,
        **change,
    }
    with pytest.raises(ProbeError, match="malformed GPU probe output") as info:
        GpuReport.from_json(json.dumps(doc))
    assert error in str(info.value)


# --- one env on one target ---------------------------------------------------------------


class ScriptedTarget:
    """A target whose interpreter answers with a canned result (and counts the runs)."""

    name = "scripted"

    def __init__(self, result: CommandResult | None) -> None:
        self.result = result
        self.runs = 0
        self.args: list[list[str]] = []

    def describe(self) -> str:
        return "a scripted target"

    def run_python(
        self, script: str, args: Sequence[str], timeout: float, **options: object
    ) -> CommandResult:
        self.runs += 1
        self.args.append(list(args))
        assert self.result is not None, "this target must not be run"
        return self.result


def torch_env(tmp_path: Path) -> tuple[EnvSpec, ProbeReport]:
    env = spec(tmp_path, "python=3.11", "pytorch", "cuda-version=12.4")
    probe = report(
        conda_records=[
            record("pytorch", "2.5.1", modules=["torch"]),
            record("cuda-version", "12.4", modules=[]),
        ],
        distributions=[dist("torch", "2.5.1")],
    )
    return env, probe


def test_gpu_checks_ask_for_the_installed_frameworks_only(tmp_path: Path) -> None:
    env, probe = torch_env(tmp_path)
    doc = {
        "gpu_probe_version": 1,
        "driver": driver(),
        "nvidia_smi": None,
        "environment": {},
        "frameworks": {"torch": torch()},
        "elapsed": 1.0,
    }
    target = ScriptedTarget(CommandResult(("python",), 0, json.dumps(doc) + "\n", ""))
    results = gpu_checks(env, probe, target, EnvSettings())
    assert json.loads(target.args[0][0])["frameworks"] == ["torch"]
    assert [(r.name, r.outcome) for r in results] == [
        ("gpu[driver]", "passed"),
        ("gpu[torch]", "passed"),
        ("gpu[cuda-version]", "passed"),
    ]


def test_gpu_skip_never_runs_the_probe(tmp_path: Path) -> None:
    env, probe = torch_env(tmp_path)
    target = ScriptedTarget(None)
    results = gpu_checks(env, probe, target, EnvSettings(gpu_mode="skip"))
    assert target.runs == 0
    assert [r.name for r in results] == ["gpu[driver]", "gpu[torch]", "gpu[cuda-version]"]
    assert {r.outcome for r in results} == {"skipped"}


def test_no_gpu_items_for_an_env_that_expects_none(tmp_path: Path) -> None:
    target = ScriptedTarget(None)
    assert gpu_checks(spec(tmp_path, "numpy"), report(), target, EnvSettings()) == []
    assert target.runs == 0


@pytest.mark.parametrize(
    ("result", "message"),
    [
        (CommandResult(("python",), 0, "not json\n", ""), "malformed GPU probe output"),
        (CommandResult(("python",), 1, "", "Segmentation fault"), "exited 1; stderr: Segm"),
        (CommandResult(("python",), -9, "", "", timed_out=True), "timed out after"),
    ],
)
def test_a_gpu_probe_that_cannot_run_fails_gpu_driver(
    tmp_path: Path, result: CommandResult, message: str
) -> None:
    env, probe = torch_env(tmp_path)
    results = gpu_checks(env, probe, ScriptedTarget(result), EnvSettings(gpu="optional"))
    assert [(r.name, r.outcome) for r in results] == [("gpu[driver]", "failed")]
    assert message in results[0].message and "a scripted target" in results[0].message
