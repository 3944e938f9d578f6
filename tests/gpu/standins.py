"""Stand-in frameworks: modules NAMED torch, tensorflow, jax and cupy that are NOT those frameworks.

Each one reports the facts a real build reports on a machine without a usable GPU
(its version, the CUDA it was built for, no device) through the same attributes
the GPU probe reads, and computes nothing. They let CI exercise every branch of
the probe and the verdicts up to the device boundary; the real frameworks are
exercised by the tests that need torch (skipped where it is absent) and on a GPU
machine by benchmarks/gpu_device_check.py.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from envassay.command import run
from envassay.targets import NativeTarget

HEADER = '"""envassay test stand-in: NOT the real {name}; facts only, no compute."""\n'

TORCH_CPU = """
__version__ = "2.13.0+cpu"


class version:
    cuda = None
    hip = None


class cuda:
    @staticmethod
    def is_available():
        return False

    @staticmethod
    def device_count():
        return 0


class backends:
    class cudnn:
        @staticmethod
        def is_available():
            return False

        @staticmethod
        def version():
            return None
"""

# A CUDA 12.8 build on a machine whose driver is too old, as torch warns about it.
TORCH_CU128 = """
import warnings

__version__ = "2.7.0+cu128"


class version:
    cuda = "12.8"
    hip = None


class cuda:
    @staticmethod
    def is_available():
        warnings.warn(
            "CUDA initialization: The NVIDIA driver on your system is too old"
            " (found version 12040)."
        )
        return False

    @staticmethod
    def device_count():
        return 0


class backends:
    class cudnn:
        @staticmethod
        def is_available():
            return True

        @staticmethod
        def version():
            return 90100
"""

TENSORFLOW_CPU = """
__version__ = "2.16.1"


class sysconfig:
    @staticmethod
    def get_build_info():
        return {"is_cuda_build": False, "is_rocm_build": False}


class config:
    @staticmethod
    def list_physical_devices(kind):
        return []
"""

TENSORFLOW_CUDA = """
__version__ = "2.16.1"


class sysconfig:
    @staticmethod
    def get_build_info():
        return {"is_cuda_build": True, "cuda_version": "12.3", "cudnn_version": "8"}


class config:
    @staticmethod
    def list_physical_devices(kind):
        return []
"""

JAX = """
__version__ = "0.4.30"


class CpuDevice:
    platform = "cpu"

    def __repr__(self):
        return "CpuDevice(id=0)"


def devices():
    return [CpuDevice()]
"""

JAXLIB = '__version__ = "0.4.30"\n'

CUPY = """
__version__ = "13.3.0"


class CUDARuntimeError(RuntimeError):
    pass


class cuda:
    class runtime:
        is_hip = False

        @staticmethod
        def runtimeGetVersion():
            return 12040

        @staticmethod
        def getDeviceCount():
            raise CUDARuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")
"""

SEGFAULT = "import os, signal\n\nos.kill(os.getpid(), signal.SIGSEGV)\n"
HANG = "import time\n\ntime.sleep(3600)\n"

# Distributions the probe's host side reads to tell which frameworks are installed.
VERSIONS = {"torch": "2.13.0+cpu", "tensorflow": "2.16.1", "jax": "0.4.30", "cupy": "13.3.0"}


def stand_in(name: str, body: str) -> str:
    return HEADER.format(name=name) + body


def make_env(
    prefix: Path, modules: Mapping[str, str], python: str = sys.executable
) -> NativeTarget:
    """A venv at ``prefix`` whose site-packages holds ``modules`` (name -> source).

    Each top-level module also gets a dist-info, as an installed framework has.
    """
    result = run([python, "-m", "venv", "--without-pip", prefix], timeout=120)
    assert result.ok, result.describe()
    site = next(prefix.glob("lib/python3*/site-packages"))
    for name, source in modules.items():
        package = site / name
        package.mkdir()
        (package / "__init__.py").write_text(stand_in(name, source))
        version = VERSIONS.get(name, "1.0")
        info = site / f"{name}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        (info / "top_level.txt").write_text(f"{name}\n")
    return NativeTarget(prefix)
