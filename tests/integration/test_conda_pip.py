"""pip over conda, for real (issue 24): conda `pyyaml=6.0.1` + pip `pyyaml==6.0.2`, and
`six=1.16.0` + `six==1.17.0`, in one spec. The env made from the spec and the env made from
its lock are the same env, and both fail `check`, naming both versions and the one Python
imports. conda itself is the oracle: `conda list` of the same prefix shows those names as
pip's (channel `pypi`) at pip's versions; `pip check` sees nothing wrong (it knows no conda).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from envassay.command import run
from tests.conftest import Project
from tests.integration.envassay_cli import check, envassay
from tests.realconda import params, real_conda_from

CONDA = ["python=3.11", "pyyaml=6.0.1", "six=1.16.0", "pip"]
PIP = ["pyyaml==6.0.2", "six==1.17.0"]
PINS_THAT_FAIL = ("pin[pyyaml=6.0.1]", "pin[six=1.16.0]", "pin[pyyaml==6.0.2]", "pin[six==1.17.0]")


def assert_pip_over_conda_fails(items: dict[str, tuple[str, str]], output: str) -> None:
    outcome, message = items["health[conda-pip]"]
    assert outcome == "failure", output
    for words in (
        "pip's PyYAML 6.0.2",
        "conda's pyyaml 6.0.1; Python imports 6.0.2 (pip's)",
        "pip's six 1.17.0",
        "conda's six 1.16.0; Python imports 1.17.0 (pip's)",
    ):
        assert words in message, message
    assert all(items[name][0] == "failure" for name in PINS_THAT_FAIL), output
    assert items["health[pip]"][0] == "passed"


def freeze(prefix: Path) -> list[str]:
    result = run([prefix / "bin" / "python", "-m", "pip", "list", "--format", "freeze"])
    assert result.ok, result.describe()
    return sorted(result.stdout.split())


def created_prefix(project: Project, env: dict[str, str], spec: Path) -> Path:
    result = envassay("create", spec, env=env, cwd=project.root)
    assert result.ok, result.describe()
    return Path(result.stdout.strip().rsplit(": ", 1)[1])


@pytest.mark.channel
@pytest.mark.slow
@pytest.mark.parametrize("conda_path", params())
def test_pip_over_conda_fails_for_the_spec_and_its_lock_as_conda_sees_it(
    project: Project, envassay_env: dict[str, str], conda_path: Path | None, tmp_path: Path
) -> None:
    conda = real_conda_from(conda_path)
    spec = project.spec("pipover", CONDA, pip=PIP)
    shown = envassay("spec", spec, env=envassay_env, cwd=project.root)
    assert shown.ok, shown.describe()
    for conda_line, pip_line in zip(CONDA[1:3], PIP, strict=True):
        assert f"warning: `{conda_line}` (conda) and `{pip_line}` (pip) contradict" in shown.stdout

    code, items, output = check(project, envassay_env, spec)
    assert code == 1
    assert_pip_over_conda_fails(items, output)
    from_spec = created_prefix(project, envassay_env, spec)

    locked = envassay("lock", spec, env=envassay_env, cwd=project.root)
    assert locked.ok, locked.describe()
    lock = (project.root / "envs" / "pipover.conda-lock.yml").read_text()
    assert "pip replaces conda''s: pyyaml, six" in lock  # (YAML doubles the quote)
    code, items, output = check(project, envassay_env, spec)
    assert code == 1 and items["lock[match]"][0] == "passed", output
    assert_pip_over_conda_fails(items, output)
    from_lock = created_prefix(project, envassay_env, spec)
    assert from_lock != from_spec  # a second env, made from the lock

    assert freeze(from_spec) == freeze(from_lock)  # the same env
    for prefix in (from_spec, from_lock):
        pip_check = run([prefix / "bin" / "python", "-m", "pip", "check"], timeout=120)
        assert pip_check.ok, pip_check.describe()  # pip alone sees a healthy env
        listed = run([prefix / "bin" / "python", "-m", "pip", "list", "--format", "json"])
        versions = {d["name"].lower(): d["version"] for d in json.loads(listed.stdout)}
        assert (versions["pyyaml"], versions["six"]) == ("6.0.2", "1.17.0")  # what imports
        # On a copy: reading a prefix whose conda files pip replaced, conda deletes those
        # conda-meta records (its PrefixData drops a record pip clobbered).
        copy = tmp_path / f"copy-{prefix.name}"
        shutil.copytree(prefix, copy, symlinks=True)
        listed = run([conda.path, "list", "-p", copy, "--json"], timeout=300)
        assert listed.ok, listed.describe()
        by_name = {p["name"]: p for p in json.loads(listed.stdout)}
        assert (by_name["pyyaml"]["version"], by_name["pyyaml"]["channel"]) == ("6.0.2", "pypi")
        assert (by_name["six"]["version"], by_name["six"]["channel"]) == ("1.17.0", "pypi")
        assert not list((copy / "conda-meta").glob("pyyaml-*.json"))


@pytest.mark.channel
@pytest.mark.slow
def test_a_pip_line_that_conda_satisfies_leaves_conda_alone(
    project: Project, envassay_env: dict[str, str]
) -> None:
    """pip keeps conda's six 1.16.0 for `six>=1.16`; the lock leaves it to conda too."""
    spec = project.spec("pipkeeps", ["python=3.11", "six=1.16.0", "pip"], pip=["six>=1.16"])
    for made_from in ("spec", "lock"):
        code, items, output = check(project, envassay_env, spec)
        assert code == 0, (made_from, output)
        assert items["health[conda-pip]"][0] == "passed"
        prefix = created_prefix(project, envassay_env, spec)
        assert "six==1.16.0" in freeze(prefix)
        if made_from == "spec":
            locked = envassay("lock", spec, env=envassay_env, cwd=project.root)
            assert locked.ok, locked.describe()
            assert (
                "provided by conda: six"
                in locked.stdout + (project.root / "envs" / "pipkeeps.conda-lock.yml").read_text()
            )
