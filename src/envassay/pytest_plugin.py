"""pytest plugin: each spec file becomes a collector, each check a pytest item.

`pytest envs/ai.yml` collects ``envs/ai.yml::native::import[numpy]``,
``::pin[numpy >=1.24,<2]``, ``::health[pip]``... Specs are collected when
named on the command line or matched by `[tool.envassay] specs`; any other
YAML file is left alone, so the plugin is inert in ordinary test runs.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from envassay.checks import CheckResult
from envassay.config import LOCK_SUFFIX, Config, load_config
from envassay.errors import UserError

if TYPE_CHECKING:
    from envassay.assay import Assay
    from envassay.spec import EnvSpec

SPEC_SUFFIXES = (".yml", ".yaml")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("envassay", "envassay: smoke-test conda environments")
    group.addoption(
        "--envassay-target",
        action="append",
        choices=["native", "docker"],
        help="where to create and probe each env (repeatable; default: [tool.envassay] targets)",
    )
    group.addoption("--envassay-backend", help="backend that creates envs (default: config)")
    group.addoption(
        "--envassay-image",
        metavar="REF",
        help="docker target: check this existing image instead of building one",
    )
    group.addoption("--envassay-builder-image", metavar="REF", help="docker target: builder stage")
    group.addoption("--envassay-runtime-image", metavar="REF", help="docker target: runtime stage")
    group.addoption(
        "--envassay-creator",
        choices=["conda", "mamba", "micromamba", "envassay"],
        help="docker target: what creates the env in the builder (default: from the image)",
    )
    group.addoption(
        "--envassay-gpu",
        choices=["auto", "require", "skip"],
        default="auto",
        help="GPU items: auto (each env's gpu policy), require (optional becomes required: "
        "no GPU fails), skip (skip them without touching the driver)",
    )


def pytest_sessionstart(session: pytest.Session) -> None:
    """An explicitly requested docker target needs an engine: say so once, up front."""
    options = session.config.option
    if "docker" in (options.envassay_target or []) or options.envassay_image:
        from envassay.docker import engine_reason

        reason = engine_reason()
        if reason is not None:
            raise pytest.UsageError(reason)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix not in SPEC_SUFFIXES or file_path.name.endswith(LOCK_SUFFIX):
        return None
    if not _is_spec(file_path, parent.config):
        return None
    return SpecFile.from_parent(parent, path=file_path)


def _is_spec(path: Path, config: pytest.Config) -> bool:
    explicit = {Path(arg.split("::")[0]).resolve() for arg in config.args}
    return path.resolve() in explicit or path.resolve() in _configured_specs(path.parent)


@functools.lru_cache(maxsize=32)
def _configured_specs(directory: Path) -> frozenset[Path]:
    try:
        return frozenset(p.resolve() for p in _project_config(directory).spec_paths())
    except UserError:
        return frozenset()


@functools.lru_cache(maxsize=32)
def _project_config(directory: Path) -> Config:
    return load_config(directory)


class SpecFile(pytest.File):
    """An environment.yml: one child per target."""

    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        from envassay.spec import load_spec

        try:
            self.spec = load_spec(self.path)
        except UserError as exc:
            raise self.CollectError(exc.render()) from None
        for target in _targets(self.config, self.path.parent):
            yield TargetCollector.from_parent(self, name=target)


def _targets(config: pytest.Config, directory: Path) -> list[str]:
    """--envassay-target, else docker alone for --envassay-image, else the configured ones."""
    explicit: list[str] | None = config.getoption("envassay_target")
    if explicit:
        return list(dict.fromkeys(explicit))
    if config.getoption("envassay_image"):
        return ["docker"]
    try:
        return list(_project_config(directory).targets)
    except UserError:
        return ["native"]


class TargetCollector(pytest.Collector):
    """Creates and probes the env on one target; its items are the verdicts."""

    def collect(self) -> Iterator[pytest.Item]:
        from envassay.assay import assay_native

        parent = self.parent
        assert isinstance(parent, SpecFile)
        config = _project_config(parent.path.parent)
        gpu_mode = self.config.getoption("envassay_gpu")
        if gpu_mode != config.gpu_mode:
            config = dataclasses.replace(config, gpu_mode=gpu_mode)
        try:
            if self.name == "docker":
                assay = self._assay_docker(parent.spec, config)
            else:
                assay = assay_native(
                    parent.spec,
                    config,
                    backend=self.config.getoption("envassay_backend"),
                    progress=_progress_line,
                )
        except UserError as exc:  # details: e.g. what micromamba printed, before the line
            details = f"{exc.details}\n" if exc.details else ""
            raise self.CollectError(details + exc.render()) from None
        for result in assay.results:
            yield CheckItem.from_parent(self, name=result.name, result=result)

    def _assay_docker(self, spec: EnvSpec, config: Config) -> Assay:
        from envassay.container import DockerOptions, assay_docker_or_skip
        from envassay.progress import ProgressLine

        get = self.config.getoption
        options = DockerOptions(
            image=get("envassay_image"),
            builder_image=get("envassay_builder_image"),
            runtime_image=get("envassay_runtime_image"),
            creator=get("envassay_creator"),
        )
        # Build output: one live line on a terminal, every line otherwise (the log has all).
        progress = ProgressLine(sys.stderr)
        try:
            return assay_docker_or_skip(spec, config, options, progress=progress)
        finally:
            progress.close()


def _progress_line(message: str) -> None:
    sys.stderr.write(f"envassay: {message}\n")


class CheckFailed(Exception):
    """A check's verdict was 'failed'; its message says expected vs found."""


class CheckItem(pytest.Item):
    """One verdict, e.g. import[numpy]."""

    def __init__(self, *, result: CheckResult, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.result = result
        self.user_properties.append(("envassay", result.message))

    def runtest(self) -> None:
        if self.result.outcome == "skipped":
            pytest.skip(self.result.message)
        if self.result.outcome == "failed":
            raise CheckFailed(self.result.message)

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> str:
        if isinstance(excinfo.value, CheckFailed):
            return f"{self.result.name}: {excinfo.value}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"{self.parent.name if self.parent else ''}::{self.name}"
