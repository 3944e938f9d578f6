"""`[tool.envassay]` in pyproject.toml: spec globs, the store, the backend, per-env settings."""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, cast

from envassay import redact
from envassay.errors import ConfigError
from envassay.spec.platforms import KNOWN_PLATFORMS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on 3.10
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

GpuPolicy = Literal["none", "optional", "required", "auto"]
# The names `--backend` and `backend =` take (create/backends maps each but auto to a
# factory); auto: the first installed of micromamba, mamba, conda, else rattler.
BACKENDS = ("auto", "rattler", "conda", "mamba", "micromamba")
# What creates the env in a docker target's builder stage (`--creator`).
CREATORS = ("conda", "mamba", "micromamba", "envassay")
TARGETS = ("native", "docker")
CHANNEL_MODES = ("conda", "file")  # see spec/channels.py
GPU_POLICIES = ("auto", "none", "optional", "required")
# A run's override of the GPU policy (`--gpu`): require makes optional required, skip skips.
GpuMode = Literal["auto", "require", "skip"]
GPU_MODES = ("auto", "require", "skip")
DEFAULT_SPEC_GLOBS = ("envs/*.yml", "envs/*.yaml")
LOCK_SUFFIX = ".conda-lock.yml"
MAX_PYPROJECT_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class EnvSettings:
    """Per-env settings: `[tool.envassay.envs.NAME]`."""

    gpu: GpuPolicy = "auto"
    imports: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    rename: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    skip: Mapping[str, str] = field(default_factory=dict)
    import_timeout: float = 120.0
    platforms: tuple[str, ...] = ()
    builder_image: str | None = None
    runtime_image: str | None = None
    size_budget_mb: float | None = None
    gpu_mode: GpuMode = "auto"  # not from the file: the run's --gpu, set by Config.env()


@dataclass(frozen=True)
class Config:
    """The whole `[tool.envassay]` table, resolved against the project root."""

    root: Path
    specs: tuple[str, ...] = DEFAULT_SPEC_GLOBS
    store: Path | None = None
    backend: str = "rattler"
    default_channels: tuple[str, ...] = ()
    # "conda": the rc channels are added as `conda env create` adds them; "file": only the
    # spec's own channels (pixi's semantics), as if it listed `nodefaults`.
    channels: str = "conda"
    platforms: tuple[str, ...] = ()
    envs: Mapping[str, EnvSettings] = field(default_factory=dict)
    source: Path | None = None
    targets: tuple[str, ...] = ("native",)
    gpu_mode: GpuMode = "auto"  # the run's --gpu, not from the file
    # CI matrix (`envassay matrix`): runner labels for linux-64, per platform, for GPU envs.
    runner: str = "ubuntu-latest"
    runners: Mapping[str, str] = field(default_factory=dict)
    gpu_runner: str | None = None

    def env(self, name: str) -> EnvSettings:
        settings = self.envs.get(name, EnvSettings())
        if self.gpu_mode != settings.gpu_mode:
            settings = replace(settings, gpu_mode=self.gpu_mode)
        return settings

    def spec_paths(self) -> list[Path]:
        """Every spec the globs find, sorted; lock files are never specs."""
        found: set[Path] = set()
        for pattern in self.specs:
            found.update(p for p in self.root.glob(pattern) if not p.name.endswith(LOCK_SUFFIX))
        return sorted(found)

    def store_path(self) -> Path:
        """$ENVASSAY_HOME wins, then `store`, then the user cache dir."""
        if home := os.environ.get("ENVASSAY_HOME"):
            return Path(home).expanduser().resolve()
        if self.store is not None:
            return self.store
        from platformdirs import user_cache_path

        return user_cache_path("envassay")


def find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml at or above ``start``."""
    for directory in (start, *start.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def load_config(start: Path | None = None) -> Config:
    """Load `[tool.envassay]` from the nearest pyproject.toml (defaults when there is none)."""
    start = (start or Path.cwd()).resolve()
    pyproject = find_pyproject(start)
    if pyproject is None:
        return Config(root=start)
    try:
        if pyproject.stat().st_size > MAX_PYPROJECT_BYTES:
            raise ConfigError(f"larger than {MAX_PYPROJECT_BYTES} bytes; refused", where=pyproject)
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        where, message = str(pyproject), str(exc)
        if found := re.search(r"\s*\(at line (\d+), column (\d+)\)$", message):
            where += f":{found.group(1)}:{found.group(2)}"
            message = message[: found.start()]
        raise ConfigError(f"not valid TOML: {message}", where=where) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", where=pyproject) from None
    tool = data.get("tool", {})
    if not isinstance(tool, dict):
        raise ConfigError(f"[tool] must be a table, got {type(tool).__name__}", where=pyproject)
    table = tool.get("envassay", {})
    return parse_config(table, root=pyproject.parent, source=pyproject)


def parse_config(table: Any, *, root: Path, source: Path | None = None) -> Config:
    """Validate a `[tool.envassay]` table; unknown keys are errors that name them."""
    reader = _Reader(source or root / "pyproject.toml")
    table = reader.table(table, "tool.envassay", _TOP_KEYS)
    store = table.get("store")
    envs = reader.table(table.get("envs", {}), "tool.envassay.envs", None)
    return Config(
        root=root,
        specs=reader.globs(table.get("specs", list(DEFAULT_SPEC_GLOBS)), "specs"),
        store=(root / reader.string(store, "store")).resolve() if store is not None else None,
        backend=reader.choice(table.get("backend", "rattler"), "backend", BACKENDS),
        default_channels=reader.channels(table.get("default-channels", []), "default-channels"),
        channels=reader.choice(table.get("channels", "conda"), "channels", CHANNEL_MODES),
        platforms=reader.platforms(table.get("platforms", []), "platforms"),
        envs={name: reader.env(value, f"envs.{name}") for name, value in envs.items()},
        source=source,
        targets=tuple(
            reader.choice(t, "targets", TARGETS)
            for t in reader.strings(table.get("targets", ["native"]), "targets")
        ),
        runner=reader.string(table.get("runner", "ubuntu-latest"), "runner"),
        runners={
            platform: reader.string(label, f"runners.{platform}")
            for platform, label in reader.table(table.get("runners", {}), "runners", None).items()
        },
        gpu_runner=reader._optional(table.get("gpu-runner"), "gpu-runner"),
    )


_TOP_KEYS = (
    *("specs", "store", "backend", "default-channels", "platforms", "envs", "targets"),
    "channels",
    *("runner", "runners", "gpu-runner"),
)
_ENV_KEYS = (
    "gpu",
    "imports",
    "rename",
    "skip",
    "import-timeout",
    "platforms",
    "builder-image",
    "runtime-image",
    "size-budget-mb",
)


class _Reader:
    def __init__(self, source: Path) -> None:
        self.source = source

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(message, where=f"{self.source} [tool.envassay] {key}")

    def table(self, value: Any, key: str, allowed: tuple[str, ...] | None) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(key, f"expected a table, got {type(value).__name__}")
        if allowed is not None:
            unknown = sorted(set(value) - set(allowed))
            if unknown:
                raise self.error(key, f"unknown key(s) {unknown}; expected some of {list(allowed)}")
        return value

    def string(self, value: Any, key: str) -> str:
        if not isinstance(value, str):
            raise self.error(key, f"expected a string, got {value!r}")
        return value

    def strings(self, value: Any, key: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(key, f"expected a list of strings, got {value!r}")
        return tuple(value)

    def channels(self, value: Any, key: str) -> tuple[str, ...]:
        """Channel URLs: a credential in a query is refused, as in a spec's `channels:`."""
        urls = self.strings(value, key)
        for url in urls:
            if refused := redact.refusal(url, channel=True):
                raise self.error(key, refused)
        return urls

    def choice(self, value: Any, key: str, allowed: tuple[str, ...]) -> str:
        if value not in allowed:
            raise self.error(key, f"expected one of {list(allowed)}, but got {value!r}")
        return cast(str, value)

    def number(self, value: Any, key: str) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or value <= 0
        ):
            raise self.error(key, f"expected a positive number, got {value!r}")
        return float(value)

    def globs(self, value: Any, key: str) -> tuple[str, ...]:
        """Spec globs: relative to the project, never reaching out of it."""
        patterns = self.strings(value, key)
        for pattern in patterns:
            parts = pattern.replace("\\", "/").split("/")
            if not pattern or pattern.startswith(("/", "~")) or ".." in parts:
                raise self.error(
                    key, f"{pattern!r} must be a glob relative to the project, without '..'"
                )
        return patterns

    def platforms(self, value: Any, key: str) -> tuple[str, ...]:
        platforms = self.strings(value, key)
        unknown = [p for p in platforms if p not in KNOWN_PLATFORMS]
        if unknown:
            raise self.error(
                key, f"unknown platform(s) {unknown}; expected some of {list(KNOWN_PLATFORMS)}"
            )
        return platforms

    def modules(self, value: Any, key: str) -> dict[str, tuple[str, ...]]:
        table = self.table(value, key, None)
        return {pkg: self.strings(mods, f"{key}.{pkg}") for pkg, mods in table.items()}

    def env(self, value: Any, key: str) -> EnvSettings:
        table = self.table(value, key, _ENV_KEYS)
        skip = self.table(table.get("skip", {}), f"{key}.skip", None)
        for pkg, reason in skip.items():
            if not isinstance(reason, str) or not reason.strip():
                raise self.error(f"{key}.skip.{pkg}", "a skipped package needs a reason (a string)")
        optional = {k: table.get(k) for k in ("builder-image", "runtime-image")}
        budget = table.get("size-budget-mb")
        return EnvSettings(
            gpu=cast(GpuPolicy, self.choice(table.get("gpu", "auto"), f"{key}.gpu", GPU_POLICIES)),
            imports=self.modules(table.get("imports", {}), f"{key}.imports"),
            rename=self.modules(table.get("rename", {}), f"{key}.rename"),
            skip=dict(skip),
            import_timeout=self.number(table.get("import-timeout", 120), f"{key}.import-timeout"),
            platforms=self.platforms(table.get("platforms", []), f"{key}.platforms"),
            builder_image=self._optional(optional["builder-image"], f"{key}.builder-image"),
            runtime_image=self._optional(optional["runtime-image"], f"{key}.runtime-image"),
            size_budget_mb=(
                self.number(budget, f"{key}.size-budget-mb") if budget is not None else None
            ),
        )

    def _optional(self, value: Any, key: str) -> str | None:
        return None if value is None else self.string(value, key)
