"""Fixtures for the GPU tests: a fake libcuda.so compiled here, and a machine with no driver."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from envassay.command import run

FAKE_LIBCUDA_SOURCE = Path(__file__).with_name("fake_libcuda.c")
# What the tests control; whatever the machine running them has set is cleared first.
FAKE_VARIABLES = ("FAKE_CUDA_DRIVER_VERSION", "FAKE_CUDA_DEVICE_COUNT", "FAKE_CUDA_INIT_ERROR")
CLEARED = (*FAKE_VARIABLES, "FAKE_CUDA_HANG", "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES")


def compile_library(source: Path, output: Path) -> Path:
    """``source`` built with gcc into the shared library ``output``; skips without gcc."""
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        pytest.skip("no C compiler (gcc): the fake libcuda.so cannot be built; apt-get install gcc")
    result = run([compiler, "-shared", "-fPIC", "-O1", "-o", output, source], timeout=120)
    assert result.ok, result.describe()
    return output


@pytest.fixture(scope="session")
def fake_libcuda(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fake driver library, built once per session (answers set by FAKE_CUDA_* variables)."""
    directory = tmp_path_factory.mktemp("fake-cuda")
    return compile_library(FAKE_LIBCUDA_SOURCE, directory / "libcuda.so.1")


@pytest.fixture(scope="session")
def not_a_driver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A shared library that loads but is no CUDA driver (no cuInit)."""
    directory = tmp_path_factory.mktemp("not-cuda")
    source = directory / "empty.c"
    source.write_text("int not_a_driver = 1;\n")
    return compile_library(source, directory / "libcuda.so.1")


class Machine:
    """The environment a target inherits: which libcuda it finds and what that one answers."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch

    def driver(self, library: Path | str, **answers: str | int) -> None:
        """Use ``library`` as libcuda; ``answers`` set FAKE_CUDA_<NAME> (e.g. init_error=100)."""
        self.monkeypatch.setenv("ENVASSAY_LIBCUDA", str(library))
        for key, value in answers.items():
            self.monkeypatch.setenv(f"FAKE_CUDA_{key.upper()}", str(value))

    def env(self, **variables: str) -> None:
        for key, value in variables.items():
            self.monkeypatch.setenv(key, value)

    def nvidia_smi(self, directory: Path, script: str) -> None:
        """Use an ``nvidia-smi`` that runs the shell ``script``."""
        directory.mkdir(parents=True, exist_ok=True)
        smi = directory / "nvidia-smi"
        smi.write_text(f"#!/bin/sh\n{script}\n")
        smi.chmod(0o755)
        self.monkeypatch.setenv("ENVASSAY_NVIDIA_SMI", str(smi))

    def variables(self) -> dict[str, str]:
        """This environment, for a child started with an explicit env."""
        return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Machine]:
    """A machine with no NVIDIA driver at all, whatever runs the tests; tests add a fake one.

    ENVASSAY_LIBCUDA points at a library that does not exist and no nvidia-smi runs,
    so that a GPU machine runs these tests exactly as a CPU-only one does.
    """
    for key in CLEARED:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("ENVASSAY_LIBCUDA", str(tmp_path / "no-driver" / "libcuda.so.1"))
    monkeypatch.setenv("ENVASSAY_NVIDIA_SMI", "")
    yield Machine(monkeypatch)
