"""`envassay matrix --changed-since REF` in a real git repository made by the test."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from envassay.command import CommandResult, run

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

SPEC = "name: {name}\nchannels: [conda-forge]\ndependencies: [python=3.11, {dep}]\n"
LOCK = "version: 1\nmetadata: {{content_hash: {{}}, platforms: [linux-64]}}\npackage: []\n# {n}\n"


def git(root: Path, *args: str) -> CommandResult:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(root),
    }
    result = run(["git", *args], cwd=root, env=env, timeout=60)
    assert result.ok, result.describe()
    return result


def commit(root: Path, message: str) -> str:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    return git(root, "rev-parse", "HEAD").stdout.strip()


def matrix(root: Path, *args: str) -> list[tuple[str, str]]:
    result = run(
        [sys.executable, "-m", "envassay", "matrix", "--format", "json", *args],
        cwd=root,
        timeout=120,
    )
    assert result.ok, result.describe()
    return [(e["env"], e["target"]) for e in json.loads(result.stdout)]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """Three envs (one locked), a Dockerfile and a README, committed as `base`."""
    root = tmp_path / "repo"
    (root / "envs").mkdir(parents=True)
    (root / "docker").mkdir()
    (root / "pyproject.toml").write_text("[tool.envassay]\n")
    for name, dep in (("alpha", "numpy"), ("beta", "pyyaml"), ("gamma", "requests")):
        (root / "envs" / f"{name}.yml").write_text(SPEC.format(name=name, dep=dep))
    (root / "envs" / "gamma.conda-lock.yml").write_text(LOCK.format(n=0))
    (root / "docker" / "Dockerfile").write_text("FROM scratch\n")
    (root / "README.md").write_text("hello\n")
    git(root, "init", "-q", "-b", "main")
    commit(root, "base")
    git(root, "tag", "base")
    return root


ALL = [(env, target) for env in ("alpha", "beta", "gamma") for target in ("native", "docker")]


def test_changed_since_selects_envs_by_spec_lock_and_dockerfile(repo: Path) -> None:
    assert matrix(repo) == ALL
    assert matrix(repo, "--changed-since", "base") == []  # nothing changed yet

    # Only the README changed: no env is affected.
    (repo / "README.md").write_text("changed\n")
    commit(repo, "docs")
    assert matrix(repo, "--changed-since", "base") == []

    # beta's spec changed: all of beta's jobs, nothing else.
    (repo / "envs" / "beta.yml").write_text(SPEC.format(name="beta", dep="pyyaml>=6"))
    after_beta = commit(repo, "beta")
    assert matrix(repo, "--changed-since", "base") == [("beta", "native"), ("beta", "docker")]

    # gamma's lock changed (its spec did not): gamma's jobs too.
    (repo / "envs" / "gamma.conda-lock.yml").write_text(LOCK.format(n=1))
    commit(repo, "relock gamma")
    assert matrix(repo, "--changed-since", "base") == [
        ("beta", "native"),
        ("beta", "docker"),
        ("gamma", "native"),
        ("gamma", "docker"),
    ]
    assert matrix(repo, "--changed-since", after_beta) == [("gamma", "native"), ("gamma", "docker")]

    # The Dockerfile changed: every env's docker job, plus what already changed.
    (repo / "docker" / "Dockerfile").write_text("FROM scratch\nLABEL x=y\n")
    commit(repo, "dockerfile")
    assert matrix(repo, "--changed-since", after_beta) == [
        ("alpha", "docker"),
        ("beta", "docker"),
        ("gamma", "native"),
        ("gamma", "docker"),
    ]
    # Uncommitted work counts too (git diff REF compares with the working tree).
    (repo / "envs" / "alpha.yml").write_text(SPEC.format(name="alpha", dep="numpy<2"))
    assert matrix(repo, "--changed-since", "HEAD") == [("alpha", "native"), ("alpha", "docker")]


def test_changed_since_from_a_subdirectory_project(repo: Path) -> None:
    """A project below the repository root: paths are compared relative to the project."""
    sub = repo / "projects" / "p"
    shutil.copytree(repo / "envs", sub / "envs")
    (sub / "pyproject.toml").write_text("[tool.envassay]\n")
    commit(repo, "nested project")
    (sub / "envs" / "alpha.yml").write_text(SPEC.format(name="alpha", dep="numpy<2"))
    assert matrix(sub, "--changed-since", "HEAD") == [("alpha", "native"), ("alpha", "docker")]
    assert matrix(repo, "--changed-since", "HEAD") == []  # the top project's alpha is unchanged


def test_unknown_ref_is_exit_2_in_one_line(repo: Path) -> None:
    result = run(
        [sys.executable, "-m", "envassay", "matrix", "--changed-since", "no-such-ref"],
        cwd=repo,
        timeout=120,
    )
    assert result.returncode == 2
    assert "git diff --name-only no-such-ref" in result.stderr
    assert "Traceback" not in result.stderr
