"""pytest plugin: each spec file becomes a collector, each check a pytest item.

`pytest envs/ai.yml` collects ``envs/ai.yml::native::import[numpy]``,
``::pin[numpy >=1.24,<2]``, ``::health[pip]``... Specs are collected when
named on the command line or matched by `[tool.envassay] specs`; any other
YAML file is left alone, so the plugin is inert in ordinary test runs.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from envassay.checks import CheckResult
from envassay.config import LOCK_SUFFIX, Config, load_config
from envassay.errors import UserError

SPEC_SUFFIXES = (".yml", ".yaml")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("envassay", "envassay: smoke-test conda environments")
    group.addoption(
        "--envassay-target",
        action="append",
        choices=["native"],
        help="where to create and probe each env (repeatable; default: native)",
    )
    group.addoption("--envassay-backend", help="backend that creates envs (default: config)")


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
        for target in self.config.getoption("envassay_target") or ["native"]:
            yield TargetCollector.from_parent(self, name=target)


class TargetCollector(pytest.Collector):
    """Creates and probes the env on one target; its items are the verdicts."""

    def collect(self) -> Iterator[pytest.Item]:
        from envassay.assay import assay_native

        parent = self.parent
        assert isinstance(parent, SpecFile)
        config = _project_config(parent.path.parent)
        try:
            assay = assay_native(
                parent.spec,
                config,
                backend=self.config.getoption("envassay_backend"),
                progress=_progress_line,
            )
        except UserError as exc:
            raise self.CollectError(exc.render()) from None
        for result in assay.results:
            yield CheckItem.from_parent(self, name=result.name, result=result)


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
