"""benchmarks/gpu_device_check.py, run as a person runs it: no GPU, a fake one, a hung driver."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from envassay.command import CommandResult, run
from tests.gpu.conftest import Machine
from tests.gpu.standins import TORCH_CPU, TORCH_CU128, make_env

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_device_check.py"


def device_check(machine: Machine, *args: str | Path) -> CommandResult:
    return run([sys.executable, SCRIPT, *args], env=machine.variables(), timeout=300)


def test_no_gpu_is_exit_0_with_a_clear_report(machine: Machine, tmp_path: Path) -> None:
    env = make_env(tmp_path / "env", {"torch": TORCH_CPU})
    result = device_check(machine, "--python", env.python)
    assert result.returncode == 0, result.describe()
    lines = result.stdout.splitlines()
    assert lines[0] == f"envassay GPU device check: {env.python}"
    assert lines[1].split()[:2] == ["SKIP", "gpu[driver]"]
    assert "no GPU visible: no NVIDIA driver: could not load" in result.stdout
    assert any(line.split()[:2] == ["SKIP", "gpu[torch]"] for line in lines)
    assert "torch 2.13.0+cpu installed; the env expects CUDA" in result.stdout
    for name in ("tensorflow", "jax", "cupy"):
        assert f"gpu[{name}]" in result.stdout and "not installed" in result.stdout
    assert lines[-1].startswith("no GPU: no NVIDIA driver: could not load")


def test_require_makes_no_gpu_a_failure(machine: Machine) -> None:
    result = device_check(machine, "--require", "--frameworks", "cupy")
    assert result.returncode == 1, result.describe()
    assert result.stdout.splitlines()[1].split()[:2] == ["FAIL", "gpu[driver]"]
    assert result.stdout.splitlines()[-1] == "FAILED: gpu[driver]"


def test_a_visible_gpu_and_a_framework_built_for_a_newer_cuda(
    machine: Machine, fake_libcuda: Path, tmp_path: Path
) -> None:
    env = make_env(tmp_path / "env", {"torch": TORCH_CU128})
    machine.driver(fake_libcuda)
    result = device_check(machine, "--prefix", env.prefix, "--frameworks", "torch")
    assert result.returncode == 1, result.describe()
    text = " ".join(result.stdout.split())  # unwrapped
    assert "PASS gpu[driver] driver supports CUDA 12.4" in text
    assert "0: Fake H100 80GB (sm_90, 80 GiB); 1: Fake A10 (sm_86, 24 GiB)" in text
    assert "FAIL gpu[torch] torch 2.7.0+cu128 needs CUDA 12.8, but the driver supports only" in (
        text
    )
    assert result.stdout.splitlines()[-1] == "FAILED: gpu[torch]"


def test_a_hung_driver_still_ends_with_a_report(machine: Machine, fake_libcuda: Path) -> None:
    machine.driver(fake_libcuda, hang=1)
    started = time.monotonic()
    result = device_check(machine, "--driver-timeout", "2", "--frameworks", "jax")
    assert time.monotonic() - started < 60
    assert result.returncode == 0, result.describe()
    assert result.stdout.splitlines()[-1] == (
        "no GPU: the driver hung: cuInit/device queries did not finish within 2s (killed)"
    )


def test_without_envassay_importable_the_facts_are_still_reported(
    machine: Machine, fake_libcuda: Path
) -> None:
    """-S: no site-packages, so neither envassay's dependencies nor envassay itself."""
    machine.driver(fake_libcuda)
    result = run(
        [sys.executable, "-S", SCRIPT, "--frameworks", "cupy", "--json"],
        env=machine.variables(),
        timeout=300,
    )
    assert result.returncode == 0, result.describe()
    assert "CUDA compatibility not judged: envassay cannot be imported here" in result.stdout
    assert "PASS  gpu[driver]" in result.stdout and "Fake A10 (sm 8.6)" in result.stdout
    assert '"gpu_probe_version": 1' in result.stdout  # --json printed the document


def test_an_interpreter_that_cannot_run_is_exit_2(machine: Machine, tmp_path: Path) -> None:
    result = device_check(machine, "--python", tmp_path / "no-python")
    assert result.returncode == 2
    assert result.stderr.startswith("gpu device check: the GPU probe could not run:")
