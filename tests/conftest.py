"""Shared pytest fixtures."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from envassay_testing import LocalChannel, build_test_channel
from tests.realconda import RealConda, params, real_conda_from

if TYPE_CHECKING:
    from envassay.docker import Engine


@pytest.fixture(scope="session")
def test_channel() -> LocalChannel:
    """The standard local conda test channel, built once and cached across sessions."""
    return build_test_channel()


@pytest.fixture(params=params())
def conda(request: pytest.FixtureRequest) -> RealConda:
    """Each real conda of $ENVASSAY_TEST_CONDA in turn (tests/realconda.py): skipped, or
    failed under CI=true, when there is none."""
    return real_conda_from(request.param)


@pytest.fixture(scope="session")
def store_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One env store for the session, so tests that need the same env create it once."""
    return tmp_path_factory.mktemp("store")


def envassay_environ(store: Path) -> dict[str, str]:
    """Environment variables for running `python -m envassay` in a test: this process's
    without pytest's, with the env store at ``store``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["ENVASSAY_HOME"] = str(store)
    # On a CI runner the tests' runs must not append their reports to the job's summary.
    env.pop("GITHUB_STEP_SUMMARY", None)
    return env


@pytest.fixture
def envassay_env(store_home: Path) -> dict[str, str]:
    """Environment variables for running `python -m envassay` against the session store."""
    return envassay_environ(store_home)


@pytest.fixture(scope="session")
def docker_engine() -> Engine:
    """The Docker engine; tests skip without one, except in CI (CI=true), where that is
    a failure."""
    from envassay.docker import engine_reason, shared_engine

    reason = engine_reason()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and the docker tests cannot run: {reason}", pytrace=False)
        pytest.skip(reason)
    return shared_engine()


@pytest.fixture
def engine(docker_engine: Engine) -> Iterator[Engine]:
    """The engine, and a guarantee: no container is left behind by the test.

    The engine may be shared with other runs: a container that is still running, or
    that goes away within seconds, is someone else's work in progress, not a leftover.
    """
    before = {c["Id"] for c in docker_engine.containers()}
    yield docker_engine
    left: list[dict[str, object]] = []
    for _ in range(10):
        left = [
            c
            for c in docker_engine.containers()
            if c["Id"] not in before and c.get("State") != "running"
        ]
        if not left:
            return
        time.sleep(1)
    assert not left, f"containers left behind: {[(c['Id'], c['Names']) for c in left]}"


@pytest.fixture(scope="session")
def base_image(docker_engine: Engine) -> str:
    """The local base image (debootstrap + docker import, cached): builder and runtime."""
    from envassay_testing.baseimage import ensure_base_image

    return ensure_base_image(docker_engine).ref


@pytest.fixture
def project(tmp_path: Path, test_channel: LocalChannel) -> Project:
    """A throwaway project directory with envs/ and a pyproject.toml."""
    return Project(tmp_path, test_channel)


class Project:
    """A throwaway project (envs/ and a pyproject.toml with [tool.envassay]) on the test
    channel, and helpers to write specs and settings into it."""

    def __init__(self, root: Path, channel: LocalChannel) -> None:
        self.root = root
        self.channel = channel
        (root / "envs").mkdir(parents=True, exist_ok=True)
        (root / "pyproject.toml").write_text("[tool.envassay]\n")

    def spec(
        self,
        name: str,
        deps: list[str],
        pip: list[str] | None = None,
        *,
        channels: list[str] | None = None,
        extra: str = "",
    ) -> Path:
        """envs/NAME.yml with ``deps`` (and a pip: section) on ``channels`` (the test
        channel by default), then ``extra``."""
        urls = [self.channel.url] if channels is None else channels
        lines = [f"name: {name}", f"channels: [{', '.join(urls)}]", "dependencies:"]
        lines += [f'  - "{dep}"' for dep in deps]
        if pip is not None:
            lines += ["  - pip:", *[f'    - "{line}"' for line in pip]]
        path = self.root / "envs" / f"{name}.yml"
        path.write_text("\n".join(lines) + "\n" + extra)
        return path

    def spec_text(self, name: str, text: str) -> Path:
        """envs/NAME.yml holding ``text``, with CHANNEL in it the test channel's URL."""
        path = self.root / "envs" / f"{name}.yml"
        path.write_text(text.replace("CHANNEL", self.channel.url))
        return path

    def settings(self, text: str) -> None:
        (self.root / "pyproject.toml").write_text(f"[tool.envassay]\n{text}\n")
