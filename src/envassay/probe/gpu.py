"""The GPU probe's request and report, as typed objects on the host side.

Schema version 1 of the document ``gpu_script.py`` prints::

    {"gpu_probe_version": 1,
     "driver": {"status": "ok" | "no-library" | "init-failed" | "error" | "timeout" | "crashed",
                "library", "tried": [...], "version": 12040 | null, "init_error",
                "devices": [{"index", "name", "memory", "capability"}], "error", "seconds"},
     "nvidia_smi": null | {"gpus": [{"name", "driver_version", "memory"}]} | {"error"},
     "environment": {"CUDA_VISIBLE_DEVICES": ..., ...},
     "frameworks": {name: {"name", "status": "ok" | "missing" | "error" | "timeout" | "crashed",
                           "version", "build": "cuda" | "cpu" | "rocm" | "unknown", "cuda",
                           "cudnn", "available", "devices": [...],
                           "checks": [{"name", "ok", "detail"}], "notes": [...], "error",
                           "seconds"}},
     "elapsed": seconds}

A section the script could not gather is ``{"error": "<traceback>"}`` instead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from typing import Any, Literal, cast, get_args

from envassay.probe.model import ProbeError, _Fields, parse_output, section_error
from envassay.targets import Target

GPU_PROBE_VERSION = 1
FRAMEWORKS = ("torch", "tensorflow", "jax", "cupy")

DriverStatus = Literal["ok", "no-library", "init-failed", "error", "timeout", "crashed"]
FrameworkStatus = Literal["ok", "missing", "error", "timeout", "crashed"]
Build = Literal["cuda", "cpu", "rocm", "unknown"]

# Interpreter start-up and the driver's own start, on a slow machine or a cold container.
_MARGIN_SECONDS = 60.0


@dataclass(frozen=True)
class GpuRequest:
    """Which frameworks to exercise, and how long the driver and each framework may take."""

    frameworks: tuple[str, ...] = FRAMEWORKS
    driver_timeout: float = 30.0
    framework_timeout: float = 300.0

    def __post_init__(self) -> None:
        unknown = sorted(set(self.frameworks) - set(FRAMEWORKS))
        if unknown:
            raise ValueError(f"unknown frameworks {unknown}; known: {list(FRAMEWORKS)}")

    def to_json(self) -> str:
        return json.dumps(
            {
                "frameworks": list(self.frameworks),
                "driver_timeout": self.driver_timeout,
                "framework_timeout": self.framework_timeout,
            }
        )

    def limit(self) -> float:
        """An overall limit no healthy run reaches: every child timing out, plus a margin."""
        return self.driver_timeout + self.framework_timeout * len(self.frameworks) + _MARGIN_SECONDS


@dataclass(frozen=True)
class GpuDevice:
    """One device as the driver or a framework sees it; ``memory`` in bytes."""

    index: int
    name: str
    memory: int | None
    capability: str | None

    def describe(self) -> str:
        parts = [f"sm_{self.capability.replace('.', '')}"] if self.capability else []
        if self.memory:
            parts.append(f"{self.memory / 2**30:.0f} GiB")
        return f"{self.index}: {self.name}" + (f" ({', '.join(parts)})" if parts else "")


def cuda_version_text(value: int) -> str:
    """A driver API version number as CUDA's ``major.minor``: 12040 -> ``12.4``."""
    return f"{value // 1000}.{value % 1000 // 10}"


@dataclass(frozen=True)
class DriverFacts:
    """What ``libcuda`` said, from a child that may have hung or crashed."""

    status: DriverStatus
    library: str | None
    tried: tuple[str, ...]
    version: int | None
    init_error: str | None
    devices: tuple[GpuDevice, ...]
    error: str | None
    seconds: float

    @property
    def cuda_version(self) -> str | None:
        """The newest CUDA the driver supports (``12.4``), when the library told."""
        return cuda_version_text(self.version) if self.version else None

    @property
    def visible(self) -> bool:
        """Whether a device answered: the driver initialised and counted at least one."""
        return self.status == "ok" and bool(self.devices)

    def summary(self) -> str:
        """One line: what the driver offers, or why no GPU is visible."""
        if self.visible:
            devices = "; ".join(d.describe() for d in self.devices)
            return (
                f"driver supports CUDA {self.cuda_version} ({self.library}); "
                f"{len(self.devices)} device(s): {devices}"
            )
        return self.reason()

    def reason(self) -> str:
        """Why no GPU is visible (empty when one is)."""
        supports = f" (the driver supports CUDA {self.cuda_version})" if self.version else ""
        if self.status == "no-library":
            tried = (
                self.tried[0]
                if len(self.tried) == 1
                else "libcuda.so.1, libcuda.so and the usual paths"
            )
            return f"no NVIDIA driver: could not load {tried}"
        if self.status == "init-failed":
            return f"cuInit failed: {self.init_error}{supports}"
        if self.status == "timeout":
            return f"the driver hung: cuInit/device queries {self.error}"
        if self.status == "crashed":
            return f"the driver crashed the probe's child: {self.error}"
        if self.status == "error":
            return f"the driver failed: {self.error}{supports}"
        if not self.devices:
            return f"the driver reports no device{supports}"
        return ""


@dataclass(frozen=True)
class SmiGpu:
    """One line of ``nvidia-smi --query-gpu=name,driver_version,memory.total``."""

    name: str
    driver_version: str
    memory: str


@dataclass(frozen=True)
class FrameworkCheck:
    """One piece of real work on a device, compared with the CPU."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class FrameworkFacts:
    """One framework's build, the devices it sees and the work it did on them."""

    name: str
    status: FrameworkStatus
    version: str | None = None
    build: Build = "unknown"
    cuda: str | None = None
    cudnn: str | None = None
    available: bool = False
    devices: tuple[GpuDevice, ...] = ()
    checks: tuple[FrameworkCheck, ...] = ()
    notes: tuple[str, ...] = ()
    error: str | None = None
    seconds: float = 0.0

    def label(self) -> str:
        return f"{self.name} {self.version}" if self.version else self.name


@dataclass(frozen=True)
class GpuReport:
    """Everything the GPU probe found in one target."""

    driver: DriverFacts
    nvidia_smi: tuple[SmiGpu, ...] | None  # None: no nvidia-smi on PATH
    environment: Mapping[str, str]
    frameworks: Mapping[str, FrameworkFacts]
    elapsed: float
    smi_error: str | None = None
    errors: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, text: str) -> GpuReport:
        return parse_output(text, _parse, "GPU probe output")

    @property
    def driver_release(self) -> str | None:
        """The driver's own version (``550.54.15``), which only nvidia-smi tells."""
        return self.nvidia_smi[0].driver_version if self.nvidia_smi else None


_OUTPUT = 64 * 1024 * 1024


@cache
def gpu_script() -> str:
    """The text of the in-target GPU script."""
    return files("envassay.probe").joinpath("gpu_script.py").read_text(encoding="utf-8")


def run_gpu_probe(target: Target, request: GpuRequest = GpuRequest()) -> GpuReport:
    """Run the GPU probe in ``target`` and parse its report; ProbeError if it fails."""
    limit = request.limit()
    # Bounded like the import probe's: a framework's prints are not read into memory whole.
    result = target.run_python(gpu_script(), [request.to_json()], limit, output_limit=_OUTPUT)
    tail = result.stderr.strip()[-2000:] or "(no stderr)"
    where = target.describe()
    if result.timed_out:
        raise ProbeError(f"GPU probe in {where} timed out after {limit:g}s; stderr: {tail}")
    if result.returncode != 0:
        raise ProbeError(f"GPU probe in {where} exited {result.returncode}; stderr: {tail}")
    try:
        return GpuReport.from_json(result.stdout)
    except ProbeError as exc:
        raise ProbeError(f"GPU probe in {where}: {exc}; stderr: {tail}") from None


# --- parsing -----------------------------------------------------------------------------


def _parse(doc: dict[str, Any]) -> GpuReport:
    top = _Fields(doc, "gpu")
    version = top.value("gpu_probe_version", int)
    if version != GPU_PROBE_VERSION:
        raise ProbeError(f"gpu_probe_version {version}, this envassay reads {GPU_PROBE_VERSION}")
    if "error" in doc:
        raise ProbeError(f"the GPU probe failed inside the target: {doc['error']}")
    errors: dict[str, str] = {}
    driver_doc = doc.get("driver")
    if section_error(driver_doc) is not None:
        errors["driver"] = cast(str, section_error(driver_doc))
        driver = DriverFacts("error", None, (), None, None, (), errors["driver"], 0.0)
    else:
        driver = _driver(_Fields(driver_doc, "gpu.driver"))
    smi, smi_error = _smi(doc.get("nvidia_smi"))
    frameworks: dict[str, FrameworkFacts] = {}
    for name, value in _Fields(doc.get("frameworks"), "gpu.frameworks").data.items():
        text = section_error(value)
        if text is not None:
            frameworks[name] = FrameworkFacts(name, "error", error=text)
        else:
            frameworks[name] = _framework(name, _Fields(value, f"gpu.frameworks.{name}"))
    environment = _Fields(doc.get("environment"), "gpu.environment")
    return GpuReport(
        driver=driver,
        nvidia_smi=smi,
        environment={k: environment.text(k) for k in environment.data},
        frameworks=frameworks,
        elapsed=top.number("elapsed"),
        smi_error=smi_error,
        errors=errors,
    )


def _driver(f: _Fields) -> DriverFacts:
    return DriverFacts(
        status=cast(DriverStatus, f.choice("status", get_args(DriverStatus))),
        library=f.maybe_text("library"),
        tried=f.texts("tried"),
        version=f.maybe_int("version"),
        init_error=f.maybe_text("init_error"),
        devices=tuple(_device(d) for d in f.objects("devices")),
        error=f.maybe_text("error"),
        seconds=f.number("seconds"),
    )


def _device(f: _Fields) -> GpuDevice:
    return GpuDevice(
        index=cast(int, f.value("index", int)),
        name=f.text("name"),
        memory=f.maybe_int("memory"),
        capability=f.maybe_text("capability"),
    )


def _smi(value: object) -> tuple[tuple[SmiGpu, ...] | None, str | None]:
    if value is None:
        return None, None
    f = _Fields(value, "gpu.nvidia_smi")
    if "error" in f.data:
        return (), f.text("error")
    gpus = [
        SmiGpu(g.text("name"), g.text("driver_version"), g.text("memory"))
        for g in f.objects("gpus")
    ]
    return tuple(gpus), None


def _framework(name: str, f: _Fields) -> FrameworkFacts:
    status = cast(FrameworkStatus, f.choice("status", get_args(FrameworkStatus)))
    if status in ("timeout", "crashed"):
        return FrameworkFacts(name, status, error=f.maybe_text("error"))
    checks = [
        FrameworkCheck(c.text("name"), _flag(c, "ok"), c.text("detail"))
        for c in f.objects("checks")
    ]
    return FrameworkFacts(
        name=name,
        status=status,
        version=f.maybe_text("version"),
        build=cast(Build, f.choice("build", get_args(Build))),
        cuda=f.maybe_text("cuda"),
        cudnn=f.maybe_text("cudnn"),
        available=_flag(f, "available"),
        devices=tuple(_device(d) for d in f.objects("devices")),
        checks=tuple(checks),
        notes=f.texts("notes"),
        error=f.maybe_text("error"),
        seconds=f.number("seconds"),
    )


def _flag(f: _Fields, key: str) -> bool:
    value = f.data.get(key)
    if not isinstance(value, bool):
        raise ProbeError(f"{f.where}.{key}: expected true or false, got {value!r}")
    return value
