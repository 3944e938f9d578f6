"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from envassay.testing import LocalChannel, build_test_channel


@pytest.fixture(scope="session")
def test_channel() -> LocalChannel:
    """The standard local conda test channel, built once and cached across sessions."""
    return build_test_channel()


@pytest.fixture(scope="session")
def store_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One env store for the session, so tests that need the same env create it once."""
    return tmp_path_factory.mktemp("store")


@pytest.fixture
def envassay_env(store_home: Path) -> dict[str, str]:
    """Environment variables for running `python -m envassay` against the session store."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["ENVASSAY_HOME"] = str(store_home)
    # On a CI runner the tests' runs must not append their reports to the job's summary.
    env.pop("GITHUB_STEP_SUMMARY", None)
    return env


@pytest.fixture
def project(tmp_path: Path, test_channel: LocalChannel) -> Project:
    """A throwaway project directory with envs/ and a pyproject.toml."""
    (tmp_path / "envs").mkdir()
    (tmp_path / "pyproject.toml").write_text("[tool.envassay]\n")
    return Project(tmp_path, test_channel)


class Project:
    """Helpers to write specs and settings into a throwaway project."""

    def __init__(self, root: Path, channel: LocalChannel) -> None:
        self.root = root
        self.channel = channel

    def spec(self, name: str, deps: list[str], pip: list[str] | None = None) -> Path:
        lines = [f"name: {name}", f"channels: [{self.channel.url}]", "dependencies:"]
        lines += [f'  - "{dep}"' for dep in deps]
        if pip is not None:
            lines += ["  - pip:", *[f'    - "{line}"' for line in pip]]
        path = self.root / "envs" / f"{name}.yml"
        path.write_text("\n".join(lines) + "\n")
        return path

    def settings(self, text: str) -> None:
        (self.root / "pyproject.toml").write_text(f"[tool.envassay]\n{text}\n")
