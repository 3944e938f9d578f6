"""The in-target GPU script, run for real against a fake libcuda.so and stand-in frameworks."""

from __future__ import annotations

import ast
import sys
import time
from pathlib import Path

import pytest

from envassay.probe import gpu_script
from envassay.probe.gpu import GpuReport, GpuRequest, run_gpu_probe
from envassay.probe.gpu import gpu_script as gpu_script_text
from envassay.targets import NativeTarget
from tests.gpu.conftest import Machine
from tests.gpu.standins import (
    CUPY,
    HANG,
    JAX,
    JAXLIB,
    SEGFAULT,
    TENSORFLOW_CPU,
    TORCH_CPU,
    TORCH_CU128,
    make_env,
)
from tests.unit.test_probe_script import find_python38

NO_FRAMEWORKS = GpuRequest(frameworks=(), driver_timeout=20)


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> NativeTarget:
    """An env with no framework at all."""
    return make_env(tmp_path_factory.mktemp("bare") / "env", {})


def probe(target: NativeTarget, request: GpuRequest = NO_FRAMEWORKS) -> GpuReport:
    return run_gpu_probe(target, request)


# --- the script itself -------------------------------------------------------------------


def test_script_and_its_child_code_parse_as_python_3_8() -> None:
    for code in (gpu_script_text(), gpu_script.DRIVER_CODE, gpu_script.FRAMEWORK_CODE):
        ast.parse(code, feature_version=(3, 8))


def test_script_imports_only_the_standard_library() -> None:
    names: set[str] = set()
    for code in (gpu_script_text(), gpu_script.DRIVER_CODE):
        for node in ast.walk(ast.parse(code)):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module.split(".")[0])
    assert names - {"__future__"} <= sys.stdlib_module_names


# --- the driver ---------------------------------------------------------------------------


def test_fake_driver_facts_are_read_through_ctypes(
    bare: NativeTarget, machine: Machine, fake_libcuda: Path
) -> None:
    machine.driver(fake_libcuda)
    driver = probe(bare).driver
    assert driver.status == "ok" and driver.library == str(fake_libcuda)
    assert driver.version == 12040 and driver.cuda_version == "12.4"
    assert [(d.index, d.name, d.memory, d.capability) for d in driver.devices] == [
        (0, "Fake H100 80GB", 80 * 2**30, "9.0"),
        (1, "Fake A10", 24 * 2**30, "8.6"),
    ]
    assert driver.visible
    assert driver.summary() == (
        f"driver supports CUDA 12.4 ({fake_libcuda}); 2 device(s): "
        "0: Fake H100 80GB (sm_90, 80 GiB); 1: Fake A10 (sm_86, 24 GiB)"
    )


def test_driver_version_and_device_count_come_from_the_library(
    bare: NativeTarget, machine: Machine, fake_libcuda: Path
) -> None:
    machine.driver(fake_libcuda, driver_version=11080, device_count=1)
    driver = probe(bare).driver
    assert driver.cuda_version == "11.8"
    assert [d.name for d in driver.devices] == ["Fake H100 80GB"]


def test_cuinit_failing_is_reported_with_the_error_name(
    bare: NativeTarget, machine: Machine, fake_libcuda: Path
) -> None:
    machine.driver(fake_libcuda, init_error=100)
    driver = probe(bare).driver
    assert driver.status == "init-failed" and not driver.visible
    assert driver.init_error == "CUDA_ERROR_NO_DEVICE (100)"
    assert driver.devices == ()
    assert driver.cuda_version == "12.4"  # cuDriverGetVersion works without cuInit
    assert driver.reason() == (
        "cuInit failed: CUDA_ERROR_NO_DEVICE (100) (the driver supports CUDA 12.4)"
    )


def test_an_error_the_driver_cannot_name_gets_its_number(
    bare: NativeTarget, machine: Machine, fake_libcuda: Path
) -> None:
    machine.driver(fake_libcuda, init_error=999)  # the fake's cuGetErrorName does not know it
    assert probe(bare).driver.init_error == "CUDA_ERROR_UNKNOWN (999)"


def test_zero_devices_is_no_gpu(bare: NativeTarget, machine: Machine, fake_libcuda: Path) -> None:
    machine.driver(fake_libcuda, device_count=0)
    machine.env(CUDA_VISIBLE_DEVICES="")
    report = probe(bare)
    assert report.driver.status == "ok" and not report.driver.visible
    assert report.driver.reason() == "the driver reports no device (the driver supports CUDA 12.4)"
    assert report.environment["CUDA_VISIBLE_DEVICES"] == ""


def test_a_hung_driver_times_out_and_the_probe_still_answers(
    bare: NativeTarget, machine: Machine, fake_libcuda: Path
) -> None:
    machine.driver(fake_libcuda, hang=1)
    started = time.monotonic()
    report = probe(bare, GpuRequest(frameworks=(), driver_timeout=2))
    assert time.monotonic() - started < 15
    assert report.driver.status == "timeout" and not report.driver.visible
    assert report.driver.reason() == (
        "the driver hung: cuInit/device queries did not finish within 2s (killed)"
    )


def test_no_driver_library_is_no_gpu(bare: NativeTarget, machine: Machine, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "libcuda.so.1"
    machine.driver(missing)
    driver = probe(bare).driver
    assert driver.status == "no-library" and driver.library is None
    assert len(driver.tried) == 1 and str(missing) in driver.tried[0]
    assert driver.reason().startswith(f"no NVIDIA driver: could not load {missing}")


def test_a_library_that_is_no_driver_is_an_error(
    bare: NativeTarget, machine: Machine, not_a_driver: Path
) -> None:
    machine.driver(not_a_driver)
    driver = probe(bare).driver
    assert driver.status == "error"
    assert driver.reason() == f"the driver failed: {not_a_driver} exports no cuInit"


def test_without_envassay_libcuda_the_usual_paths_are_tried(
    bare: NativeTarget, machine: Machine
) -> None:
    machine.monkeypatch.delenv("ENVASSAY_LIBCUDA")
    driver = probe(bare).driver
    if driver.status != "no-library":
        pytest.skip(f"this machine has a CUDA driver: {driver.summary()}")
    tried = " ".join(driver.tried)
    assert "libcuda.so.1" in tried and "/usr/lib/wsl/lib/libcuda.so.1" in tried


def test_nvidia_smi_and_visible_devices_are_reported(
    bare: NativeTarget, machine: Machine, fake_libcuda: Path, tmp_path: Path
) -> None:
    machine.driver(fake_libcuda)
    machine.nvidia_smi(
        tmp_path / "bin",
        'test "$1" = "--query-gpu=name,driver_version,memory.total" || exit 9\n'
        'echo "NVIDIA H100 80GB HBM3, 550.54.15, 81559 MiB"\n'
        'echo "NVIDIA A10, 550.54.15, 23028 MiB"',
    )
    machine.env(CUDA_VISIBLE_DEVICES="0,1", NVIDIA_VISIBLE_DEVICES="all")
    report = probe(bare)
    assert report.nvidia_smi is not None
    assert [(g.name, g.driver_version, g.memory) for g in report.nvidia_smi] == [
        ("NVIDIA H100 80GB HBM3", "550.54.15", "81559 MiB"),
        ("NVIDIA A10", "550.54.15", "23028 MiB"),
    ]
    assert report.driver_release == "550.54.15"
    assert report.environment["CUDA_VISIBLE_DEVICES"] == "0,1"
    assert report.environment["NVIDIA_VISIBLE_DEVICES"] == "all"


def test_a_failing_nvidia_smi_is_reported(
    bare: NativeTarget, machine: Machine, tmp_path: Path
) -> None:
    machine.nvidia_smi(
        tmp_path / "bin",
        'echo "NVIDIA-SMI has failed because it couldn\x27t communicate with the driver."\nexit 9',
    )
    report = probe(bare)
    assert report.nvidia_smi == ()
    assert report.smi_error is not None
    assert report.smi_error.startswith("nvidia-smi exited with status 9: NVIDIA-SMI has failed")


def test_no_nvidia_smi_is_none(bare: NativeTarget, machine: Machine) -> None:
    assert probe(bare).nvidia_smi is None


def test_runs_under_python_3_8(machine: Machine, fake_libcuda: Path, tmp_path: Path) -> None:
    python = find_python38()
    if python is None:
        pytest.skip("no Python 3.8 interpreter here")
    target = make_env(tmp_path / "env38", {"torch": TORCH_CPU}, python=python)
    machine.driver(fake_libcuda)
    report = probe(target, GpuRequest(frameworks=("torch",), driver_timeout=20))
    assert report.driver.visible and len(report.driver.devices) == 2
    assert report.frameworks["torch"].build == "cpu"


# --- frameworks (stand-ins: facts only) ---------------------------------------------------


def test_stand_in_frameworks_report_builds_and_no_device(
    machine: Machine, fake_libcuda: Path, tmp_path: Path
) -> None:
    target = make_env(
        tmp_path / "env",
        {"torch": TORCH_CU128, "tensorflow": TENSORFLOW_CPU, "jax": JAX, "jaxlib": JAXLIB},
    )
    machine.driver(fake_libcuda)
    request = GpuRequest(frameworks=("torch", "tensorflow", "jax", "cupy"), framework_timeout=60)
    frameworks = probe(target, request).frameworks
    torch = frameworks["torch"]
    assert (torch.status, torch.version, torch.build, torch.cuda) == (
        "ok",
        "2.7.0+cu128",
        "cuda",
        "12.8",
    )
    assert torch.cudnn == "90100" and not torch.available and torch.checks == ()
    assert torch.notes == (
        "CUDA initialization: The NVIDIA driver on your system is too old (found version 12040).",
    )
    tensorflow = frameworks["tensorflow"]
    assert (tensorflow.version, tensorflow.build, tensorflow.available) == ("2.16.1", "cpu", False)
    jax = frameworks["jax"]
    assert (jax.build, jax.available) == ("cpu", False)  # no CUDA plugin: a CPU-only jax
    assert jax.notes == ("jax.devices() has no GPU: [CpuDevice(id=0)]",)
    assert frameworks["cupy"].status == "missing"


def test_jax_with_a_cuda_plugin_is_a_cuda_build(machine: Machine, tmp_path: Path) -> None:
    target = make_env(
        tmp_path / "env", {"jax": JAX, "jaxlib": JAXLIB, "jax_cuda12_plugin": "VERSION = 1"}
    )
    jax = probe(target, GpuRequest(frameworks=("jax",))).frameworks["jax"]
    assert (jax.status, jax.build, jax.available) == ("ok", "cuda", False)


def test_cupy_without_a_device_says_why(machine: Machine, tmp_path: Path) -> None:
    target = make_env(tmp_path / "env", {"cupy": CUPY})
    cupy = probe(target, GpuRequest(frameworks=("cupy",))).frameworks["cupy"]
    assert (cupy.status, cupy.build, cupy.cuda, cupy.available) == ("ok", "cuda", "12.4", False)
    assert cupy.notes == (
        "CUDARuntimeError: cudaErrorNoDevice: no CUDA-capable device is detected",
    )


def test_a_framework_that_crashes_or_hangs_costs_only_its_child(
    machine: Machine, tmp_path: Path
) -> None:
    target = make_env(tmp_path / "env", {"torch": TORCH_CPU, "tensorflow": SEGFAULT, "jax": HANG})
    request = GpuRequest(frameworks=("tensorflow", "jax", "torch"), framework_timeout=5)
    started = time.monotonic()
    frameworks = probe(target, request).frameworks
    assert time.monotonic() - started < 30
    assert frameworks["tensorflow"].status == "crashed"
    assert (frameworks["tensorflow"].error or "").startswith("killed by signal SIGSEGV")
    assert frameworks["jax"].status == "timeout"
    assert frameworks["jax"].error == "did not finish within 5s (killed)"
    assert frameworks["torch"].status == "ok" and frameworks["torch"].build == "cpu"


def test_a_framework_that_raises_is_an_error_with_its_traceback(
    machine: Machine, tmp_path: Path
) -> None:
    target = make_env(tmp_path / "env", {"cupy": "raise ImportError('libcudart.so.12 missing')"})
    cupy = probe(target, GpuRequest(frameworks=("cupy",))).frameworks["cupy"]
    assert cupy.status == "error"
    assert "ImportError: libcudart.so.12 missing" in (cupy.error or "")


def test_what_a_framework_prints_does_not_corrupt_the_report(
    machine: Machine, tmp_path: Path
) -> None:
    noisy = 'import os\nprint("{not json")\nos.write(1, b"garbage\\n")\n' + TORCH_CPU
    target = make_env(tmp_path / "env", {"torch": noisy})
    torch = probe(target, GpuRequest(frameworks=("torch",))).frameworks["torch"]
    assert torch.status == "ok" and torch.version == "2.13.0+cpu"


# --- real torch (a CPU-only build; skipped where torch is not installed) ------------------


def test_real_torch_work_is_right_on_the_cpu() -> None:
    """The device code path (matmul in three precisions, conv2d) with device="cpu"."""
    torch = pytest.importorskip("torch")
    torch_work = framework_code()["torch_work"]
    assert callable(torch_work)
    checks = torch_work(torch, "cpu", (9, 0))
    assert [c["name"] for c in checks] == [
        "matmul float32 on cpu",
        "matmul float16 on cpu",
        "matmul bfloat16 on cpu",
        "conv2d on cpu",
    ]
    assert all(c["ok"] for c in checks), checks
    # Older devices get only the precisions they compute in.
    assert [c["name"] for c in torch_work(torch, "cpu", (6, 1))][:2] == [
        "matmul float32 on cpu",
        "matmul float16 on cpu",
    ]
    assert len(torch_work(torch, "cpu", (5, 0))) == 2


def test_real_cpu_only_torch_is_reported_as_such(machine: Machine, fake_libcuda: Path) -> None:
    torch = pytest.importorskip("torch")
    prefix = Path(sys.prefix)
    if not (prefix / "bin" / "python").exists():
        pytest.skip(f"no bin/python in {prefix}")
    machine.driver(fake_libcuda)
    report = probe(NativeTarget(prefix), GpuRequest(frameworks=("torch",), framework_timeout=120))
    facts = report.frameworks["torch"]
    assert facts.status == "ok", facts.error
    assert facts.version == torch.__version__
    if torch.version.cuda is not None:
        pytest.skip(f"torch {torch.__version__} is a CUDA build")
    assert (facts.build, facts.cuda, facts.available, facts.checks) == ("cpu", None, False, ())


def framework_code() -> dict[str, object]:
    namespace: dict[str, object] = {"__name__": "framework_code"}
    exec(gpu_script.FRAMEWORK_CODE, namespace)
    return namespace


# Real jax (and tensorflow): tests/gpu/test_real_frameworks.py, in envs envassay creates.
