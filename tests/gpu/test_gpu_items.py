"""gpu[...] items end to end: a real env from a local channel, `envassay check`, JUnit XML back.

The env holds a fake `pytorch` conda package (a stand-in torch module that reports
a CPU-only 2.13.0+cpu build, and its dist-info) and a `cuda-version 12.8` package;
the machine has no driver, or the fake libcuda.so (CUDA 12.4, two devices).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from envassay.command import CommandResult, run
from envassay_testing import LocalChannel
from envassay_testing.channel import (
    index_channel,
    make_generic_package,
    make_noarch_python_package,
    new_channel,
)
from tests.gpu.conftest import Machine
from tests.gpu.standins import TORCH_CPU, stand_in
from tests.integration.envassay_cli import envassay, junit_messages, junit_outcomes

pytestmark = pytest.mark.channel

Items = dict[str, tuple[str, str]]


@pytest.fixture(scope="module")
def gpu_project(tmp_path_factory: pytest.TempPathFactory, test_channel: LocalChannel) -> Path:
    """A project whose env declares pytorch (a CPU-only stand-in) and cuda-version 12.8."""
    root = tmp_path_factory.mktemp("gpu-project")
    channel = new_channel(root / "gpu-channel")
    info = "torch-2.13.0+cpu.dist-info"
    make_noarch_python_package(
        channel,
        "pytorch",
        "2.13.0",
        files={
            "torch/__init__.py": stand_in("torch", TORCH_CPU),
            f"{info}/METADATA": "Metadata-Version: 2.1\nName: torch\nVersion: 2.13.0+cpu\n",
            f"{info}/INSTALLER": "conda\n",
        },
    )
    make_generic_package(channel, "cuda-version", "12.8")
    index_channel(channel)
    (root / "envs").mkdir()
    channels = f"[{channel.as_uri()}, {test_channel.url}]"
    deps = ["python=3.11", "pytorch", "cuda-version=12.8"]
    lines = ["name: gpuenv", f"channels: {channels}", "dependencies:", *[f"  - {d}" for d in deps]]
    (root / "envs" / "gpuenv.yml").write_text("\n".join(lines) + "\n")
    return root


def check(
    project: Path, machine: Machine, store: Path, *args: str, settings: str = ""
) -> tuple[CommandResult, Items]:
    (project / "pyproject.toml").write_text(f"[tool.envassay]\n{settings}\n")
    xml = project / "junit.xml"
    xml.unlink(missing_ok=True)
    env = {**machine.variables(), "ENVASSAY_HOME": str(store)}
    result = envassay("check", "envs/gpuenv.yml", "--junitxml", xml, *args, env=env, cwd=project)
    return result, junit_outcomes(xml) if xml.exists() else {}


def gpu_items(items: Items) -> Items:
    return {name: value for name, value in items.items() if name.startswith("gpu[")}


def test_optional_by_inference_skips_without_a_gpu(
    gpu_project: Path, machine: Machine, store_home: Path
) -> None:
    result, items = check(gpu_project, machine, store_home)
    assert result.returncode == 0, result.describe()
    assert items["import[pytorch]"][0] == "passed"  # the stand-in imports as torch
    gpu = gpu_items(items)
    assert list(gpu) == ["gpu[driver]", "gpu[torch]", "gpu[cuda-version]"]
    assert all(outcome == "skipped" for outcome, _ in gpu.values()), gpu
    why = "(gpu = optional, inferred from pytorch, cuda-version)"
    assert gpu["gpu[driver]"][1].startswith("no GPU visible: no NVIDIA driver: could not load")
    assert gpu["gpu[driver]"][1].endswith(why)
    assert gpu["gpu[torch]"][1].startswith(
        "torch 2.13.0+cpu installed; the env expects CUDA; no GPU visible"
    )
    assert gpu["gpu[cuda-version]"][1].startswith("cuda-version 12.8 needs a CUDA driver")


@pytest.mark.parametrize(
    ("args", "settings"),
    [
        (("--gpu", "require"), ""),
        ((), '[tool.envassay.envs.gpuenv]\ngpu = "required"'),
    ],
    ids=["--gpu-require", "gpu-required"],
)
def test_required_fails_without_a_gpu(
    gpu_project: Path,
    machine: Machine,
    store_home: Path,
    args: tuple[str, ...],
    settings: str,
) -> None:
    result, items = check(gpu_project, machine, store_home, *args, settings=settings)
    assert result.returncode == 1, result.describe()
    gpu = gpu_items(items)
    assert {name: outcome for name, (outcome, _) in gpu.items()} == {
        "gpu[driver]": "failure",
        "gpu[torch]": "failure",
        "gpu[cuda-version]": "failure",
    }
    assert (
        "torch 2.13.0+cpu installed; the env expects CUDA; no GPU visible" in (gpu["gpu[torch]"][1])
    )
    # Everything that is not about the GPU still passes.
    others = {k: v[0] for k, v in items.items() if not k.startswith("gpu[")}
    assert set(others.values()) <= {"passed", "skipped"}, others


def test_a_visible_gpu_judges_the_build_and_the_cuda_version(
    gpu_project: Path, machine: Machine, store_home: Path, fake_libcuda: Path
) -> None:
    machine.driver(fake_libcuda)
    result, items = check(gpu_project, machine, store_home)
    assert result.returncode == 1, result.describe()
    gpu = gpu_items(items)
    assert gpu["gpu[driver]"] == ("passed", "")
    assert gpu["gpu[torch]"][0] == "failure"
    assert "torch 2.13.0+cpu installed; the env expects CUDA" in gpu["gpu[torch]"][1]
    assert gpu["gpu[cuda-version]"][0] == "failure"
    assert (
        "cuda-version 12.8 needs CUDA 12.8, but the driver supports only CUDA 12.4"
        in (gpu["gpu[cuda-version]"][1])
    )
    assert "minor-version compatibility" in gpu["gpu[cuda-version]"][1]


def test_a_visible_gpu_with_a_driver_new_enough(
    gpu_project: Path, machine: Machine, store_home: Path, fake_libcuda: Path
) -> None:
    machine.driver(fake_libcuda, driver_version=12080)
    _, items = check(gpu_project, machine, store_home)
    gpu = gpu_items(items)
    assert gpu["gpu[cuda-version]"][0] == "passed"
    assert gpu["gpu[torch]"][0] == "failure"  # still a CPU-only build
    # Passing items say what they found, in the JUnit XML's properties.
    messages = junit_messages(gpu_project / "junit.xml")
    assert messages["gpu[driver]"] == (
        f"driver supports CUDA 12.8 ({machine.variables()['ENVASSAY_LIBCUDA']}); 2 device(s): "
        "0: Fake H100 80GB (sm_90, 80 GiB); 1: Fake A10 (sm_86, 24 GiB)"
    )
    assert messages["gpu[cuda-version]"] == (
        "cuda-version 12.8 needs CUDA 12.8; the driver supports CUDA 12.8"
    )


def test_gpu_none_makes_no_gpu_items(
    gpu_project: Path, machine: Machine, store_home: Path, fake_libcuda: Path
) -> None:
    machine.driver(fake_libcuda)
    settings = '[tool.envassay.envs.gpuenv]\ngpu = "none"'
    result, items = check(gpu_project, machine, store_home, settings=settings)
    assert result.returncode == 0, result.describe()
    assert items and gpu_items(items) == {}


def test_gpu_skip_skips_without_touching_the_driver(
    gpu_project: Path, machine: Machine, store_home: Path, fake_libcuda: Path
) -> None:
    machine.driver(fake_libcuda, hang=1)  # touching this driver would hang
    result, items = check(gpu_project, machine, store_home, "--gpu", "skip")
    assert result.returncode == 0, result.describe()
    reason = (
        "GPU checks skipped for this run (--gpu skip; gpu = optional, inferred from pytorch,"
        " cuda-version)"
    )
    assert gpu_items(items) == {
        "gpu[driver]": ("skipped", reason),
        "gpu[torch]": ("skipped", reason),
        "gpu[cuda-version]": ("skipped", reason),
    }


def test_the_pytest_option_as_nox_passes_it(
    gpu_project: Path, machine: Machine, store_home: Path
) -> None:
    """`nox -s envs -- --envassay-gpu require` hands the option to pytest as it is."""
    (gpu_project / "pyproject.toml").write_text("[tool.envassay]\n")
    env = {**machine.variables(), "ENVASSAY_HOME": str(store_home)}
    root = str(gpu_project)
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rootdir", root]
    spec = str(gpu_project / "envs" / "gpuenv.yml")
    required = run([*command, spec, "--envassay-gpu", "require", "-q"], env=env, cwd=gpu_project)
    assert required.returncode == 1, required.describe()
    assert "gpu[torch]: torch 2.13.0+cpu installed; the env expects CUDA" in required.stdout
    default = run([*command, spec, "-q"], env=env, cwd=gpu_project)
    assert default.returncode == 0, default.describe()
