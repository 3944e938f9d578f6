"""`envassay matrix`: the jobs for a repo with several envs, in each output format."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from envassay.command import run
from envassay.errors import ConfigError, UserError
from envassay.run.matrix import Changes, plan_matrix, render
from envassay.spec.config import load_config, parse_config

PYPROJECT = """
[tool.envassay]
runner = "linux-runner"
gpu-runner = "gpu-a100"
runners = { "osx-arm64" = "mac-m2" }

[tool.envassay.envs.train]
gpu = "required"

[tool.envassay.envs.ai]
gpu = "optional"
"""


def write_repo(root: Path) -> None:
    """Four envs: plain, GPU required, GPU optional, and one for two platforms."""
    (root / "envs").mkdir()
    (root / "pyproject.toml").write_text(PYPROJECT)
    specs = {
        "cpu": "name: cpu\nchannels: [conda-forge]\ndependencies: [python=3.11, numpy]\n",
        "train": "name: train\nchannels: [conda-forge]\ndependencies: [python=3.11, pytorch]\n",
        "ai": "name: ai\nchannels: [conda-forge]\ndependencies: [python=3.11, pytorch]\n",
        "tools": (
            "name: tools\nchannels: [conda-forge]\nplatforms: [linux-64, osx-arm64]\n"
            "dependencies: [python=3.11, pyyaml]\n"
        ),
    }
    for name, text in specs.items():
        (root / "envs" / f"{name}.yml").write_text(text)


def entry(
    env: str, target: str, platform: str = "linux-64", runs_on: str = "linux-runner"
) -> dict[str, Any]:
    session = "envs" if target == "native" else "docker"
    return {
        "name": f"{env} / {target} / {platform}",
        "env": env,
        "spec": f"envs/{env}.yml",
        "target": target,
        "platform": platform,
        "session": f"{session}(env='{env}')",
        "runs-on": runs_on,
        "gpu": runs_on == "gpu-a100",
        "artifact": f"envassay-{env}-{target}-{platform}",
    }


# Specs in path order; per env native then docker, per target each platform; docker only
# for linux platforms; the GPU-required env on the GPU runner, the optional one not.
GOLDEN = [
    entry("ai", "native"),
    entry("ai", "docker"),
    entry("cpu", "native"),
    entry("cpu", "docker"),
    entry("tools", "native"),
    entry("tools", "native", "osx-arm64", "mac-m2"),
    entry("tools", "docker"),
    entry("train", "native", runs_on="gpu-a100"),
    entry("train", "docker", runs_on="gpu-a100"),
]


def matrix_cli(root: Path, *args: str) -> str:
    result = run([sys.executable, "-m", "envassay", "matrix", *args], cwd=root, timeout=120)
    assert result.ok, result.describe()
    return result.stdout


def test_json_matrix_for_several_envs(tmp_path: Path) -> None:
    write_repo(tmp_path)
    assert json.loads(matrix_cli(tmp_path)) == GOLDEN


def test_github_format_is_one_line_include(tmp_path: Path) -> None:
    write_repo(tmp_path)
    out = matrix_cli(tmp_path, "--format", "github")
    assert out.count("\n") == 1  # one line, for $GITHUB_OUTPUT
    assert json.loads(out) == {"include": GOLDEN}


def test_gitlab_format_is_parallel_matrix_of_strings(tmp_path: Path) -> None:
    write_repo(tmp_path)
    doc = yaml.safe_load(matrix_cli(tmp_path, "--format", "gitlab"))
    variables = doc["parallel"]["matrix"]
    assert len(variables) == len(GOLDEN)
    assert variables[-1] == {
        "NAME": "train / docker / linux-64",
        "ENV": "train",
        "SPEC": "envs/train.yml",
        "TARGET": "docker",
        "PLATFORM": "linux-64",
        "SESSION": "docker(env='train')",
        "RUNS_ON": "gpu-a100",
        "GPU": "true",
        "ARTIFACT": "envassay-train-docker-linux-64",
    }
    assert all(isinstance(v, str) for row in variables for v in row.values())


def test_target_platform_and_spec_selection(tmp_path: Path) -> None:
    write_repo(tmp_path)
    config = load_config(tmp_path)
    native = plan_matrix(config, targets=["native"])
    assert [e.name for e in native] == [
        "ai / native / linux-64",
        "cpu / native / linux-64",
        "tools / native / linux-64",
        "tools / native / osx-arm64",
        "train / native / linux-64",
    ]
    one = plan_matrix(config, [tmp_path / "envs" / "cpu.yml"], platforms=["win-64"])
    assert [(e.target, e.platform, e.runs_on) for e in one] == [
        ("native", "win-64", "windows-latest")
    ]


def test_changes_select_envs_and_docker_entries(tmp_path: Path) -> None:
    write_repo(tmp_path)
    config = load_config(tmp_path)
    spec_changed = Changes(frozenset({"envs/cpu.yml", "README.md"}))
    assert [e.name for e in plan_matrix(config, changes=spec_changed)] == [
        "cpu / native / linux-64",
        "cpu / docker / linux-64",
    ]
    lock_changed = Changes(frozenset({"envs/ai.conda-lock.yml"}))
    assert {e.env for e in plan_matrix(config, changes=lock_changed)} == {"ai"}
    dockerfile = Changes(frozenset({"docker/Dockerfile"}))
    assert [e.name for e in plan_matrix(config, changes=dockerfile)] == [
        "ai / docker / linux-64",
        "cpu / docker / linux-64",
        "tools / docker / linux-64",
        "train / docker / linux-64",
    ]
    assert plan_matrix(config, changes=Changes(frozenset({"src/x.py"}))) == []
    assert render([], "github") == '{"include":[]}'


def test_required_gpu_without_gpu_runner_is_an_error(tmp_path: Path) -> None:
    write_repo(tmp_path)
    (tmp_path / "pyproject.toml").write_text(PYPROJECT.replace('gpu-runner = "gpu-a100"\n', ""))
    with pytest.raises(UserError, match="gpu-runner"):
        plan_matrix(load_config(tmp_path))
    result = run([sys.executable, "-m", "envassay", "matrix"], cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    assert "env 'train' requires a GPU" in result.stderr and "Traceback" not in result.stderr


def test_platform_without_runner_is_an_error(tmp_path: Path) -> None:
    write_repo(tmp_path)
    with pytest.raises(UserError, match=r"runners = \{ \"linux-ppc64le\" = \"LABEL\" \}"):
        plan_matrix(load_config(tmp_path), platforms=["linux-ppc64le"])


def test_runner_keys_are_validated() -> None:
    config = parse_config(
        {"runner": "a", "gpu-runner": "b", "runners": {"win-64": "c"}}, root=Path("/")
    )
    assert (config.runner, config.gpu_runner, dict(config.runners)) == ("a", "b", {"win-64": "c"})
    defaults = parse_config({}, root=Path("/"))
    assert (defaults.runner, defaults.gpu_runner, dict(defaults.runners)) == (
        "ubuntu-latest",
        None,
        {},
    )
    with pytest.raises(ConfigError, match=r"runners\.win-64"):
        parse_config({"runners": {"win-64": 3}}, root=Path("/"))
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['gpu-runners'\]"):
        parse_config({"gpu-runners": "x"}, root=Path("/"))
