"""conda, mamba and micromamba for real, against conda-forge.

Each test runs only where its executable is installed (found the way envassay
finds it: $MAMBA_EXE / $CONDA_EXE, then PATH) and needs conda-forge and PyPI to
be reachable: the backends workflow (.github/workflows/backends.yml) installs
micromamba in one job and Miniforge (conda and mamba) in another. There,
ENVASSAY_TEST_REQUIRE_TOOLS names the tools the job installed, so a tool that
went missing fails the job instead of skipping silently. The machines envassay
is developed on have neither the tools nor the channels: the stand-ins in
tests/fake_tools.py cover the same code paths there.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from envassay.create.backends.tools import PLACES, Flavour, search
from tests.conftest import envassay_environ
from tests.integration.envassay_cli import envassay, junit_outcomes

REQUIRED = {t for t in os.environ.get("ENVASSAY_TEST_REQUIRE_TOOLS", "").split(",") if t}


def installed(flavour: Flavour) -> pytest.MarkDecorator:
    places = ", ".join(p if p == "PATH" else f"${p}" for p in PLACES[flavour])
    return pytest.mark.skipif(
        search(flavour).found is None and flavour not in REQUIRED,
        reason=f"no real {flavour} executable ({places}); runs in .github/workflows/backends.yml",
    )


TOOLS = [pytest.param(f, marks=installed(f), id=f) for f in ("micromamba", "mamba", "conda")]
SPEC = """\
name: real-{tool}
channels: [conda-forge]
dependencies:
  - python=3.12
  - pyyaml>=6
  - pip:
    - six
"""


@pytest.fixture
def real_project(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    root = tmp_path / "project"
    (root / "envs").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[tool.envassay]\n")
    env = envassay_environ(tmp_path / "store")
    env.pop("ENVASSAY_BACKEND", None)
    return root, env


@pytest.mark.parametrize("tool", TOOLS)
def test_real_tool_creates_and_checks_a_spec(
    tool: Flavour, real_project: tuple[Path, dict[str, str]]
) -> None:
    root, env = real_project
    spec = root / "envs" / f"real-{tool}.yml"
    spec.write_text(SPEC.format(tool=tool))
    xml = root / "junit.xml"
    result = envassay("check", spec, "--backend", tool, "--junitxml", xml, env=env, cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr
    items = junit_outcomes(xml)
    for name in ("create[native]", "import[pyyaml]", "import[six]", "health[conda]"):
        assert items[name][0] == "passed", (name, items[name])
    again = envassay("create", spec, "--backend", tool, env=env, cwd=root)
    assert again.ok and "reused" in again.stdout, again.describe()


@pytest.mark.parametrize("tool", TOOLS)
def test_real_tool_installs_envassays_lock(
    tool: Flavour, real_project: tuple[Path, dict[str, str]]
) -> None:
    root, env = real_project
    spec = root / "envs" / f"real-{tool}.yml"
    spec.write_text(SPEC.format(tool=tool))
    locked = envassay("lock", spec, env=env, cwd=root)
    assert locked.ok, locked.describe()
    xml = root / "junit.xml"
    result = envassay("check", spec, "--backend", tool, "--junitxml", xml, env=env, cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr
    items = junit_outcomes(xml)
    for name in ("create[native]", "lock[fresh]", "lock[match]", "import[six]"):
        assert items[name][0] == "passed", (name, items[name])


@pytest.mark.parametrize("tool", TOOLS)
def test_real_solver_failure_is_exit_2_with_the_tools_output(
    tool: Flavour, real_project: tuple[Path, dict[str, str]]
) -> None:
    root, env = real_project
    spec = root / "envs" / "impossible.yml"
    spec.write_text(
        "channels: [conda-forge]\ndependencies:\n  - python=3.12\n  - envassay-no-such-package\n"
    )
    result = envassay("create", spec, "--backend", tool, env=env, cwd=root)
    assert result.returncode == 2, result.stdout + result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"envassay: error: {spec}: cannot solve ({tool} "), last
    assert "envassay-no-such-package" in result.stderr
