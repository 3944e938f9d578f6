"""Each input is read once per run: a warm `envassay check` of one locked spec opens the
spec, its lock and pyproject.toml once each, natively and with native and docker targets
(counted by an audit hook on "open" events in the real CLI's process)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from envassay.command import run
from tests.conftest import Project

pytestmark = [pytest.mark.channel, pytest.mark.slow]

# Counts every open(2) of the watched paths (io.open, os.open, Path.read_*) in the CLI's
# process, threads included, and writes the counts as JSON when the process ends.
COUNTING_CLI = """
import atexit, json, os, runpy, sys
out, watched = sys.argv[1:3]
counts = dict.fromkeys(map(os.path.realpath, watched.split(os.pathsep)), 0)
def hook(event, args):
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.path.realpath(os.fsdecode(args[0]))
        if path in counts:
            counts[path] += 1
sys.addaudithook(hook)
atexit.register(lambda: open(out, "w").write(json.dumps(counts)))
sys.argv = ["envassay", *sys.argv[3:]]
runpy.run_module("envassay", run_name="__main__", alter_sys=True)
"""


def test_warm_check_opens_spec_lock_and_config_once(
    project: Project, envassay_env: dict[str, str]
) -> None:
    assert warm_opens(project, envassay_env) == {
        "readonce.yml": 1,
        "readonce.conda-lock.yml": 1,
        "pyproject.toml": 1,
    }


@pytest.mark.docker
def test_native_and_docker_share_each_read(
    project: Project, envassay_env: dict[str, str], base_image: str
) -> None:
    """Both targets of one spec: still one open each (the image is reused when warm)."""
    project.settings(
        f'targets = ["native", "docker"]\n[tool.envassay.envs.readonce]\n'
        f'builder-image = "{base_image}"'
    )
    assert warm_opens(project, envassay_env) == {
        "readonce.yml": 1,
        "readonce.conda-lock.yml": 1,
        "pyproject.toml": 1,
    }


def warm_opens(project: Project, envassay_env: dict[str, str]) -> dict[str, int]:
    """Lock a small spec, check it once (cold), then count the opens of a warm check."""
    spec = project.spec("readonce", ["python=3.11", "six"])
    lock = spec.with_name("readonce.conda-lock.yml")
    pyproject = project.root / "pyproject.toml"
    cli = [sys.executable, "-m", "envassay"]
    assert run([*cli, "lock", spec], env=envassay_env, cwd=project.root).returncode == 0
    cold = run([*cli, "check"], env=envassay_env, cwd=project.root, timeout=900)
    assert cold.returncode == 0, cold.stdout + cold.stderr

    counts = project.root / "counts.json"
    watched = os.pathsep.join(map(str, [spec, lock, pyproject]))
    result = run(
        [sys.executable, "-c", COUNTING_CLI, counts, watched, "check"],
        env=envassay_env,
        cwd=project.root,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return {Path(p).name: n for p, n in json.loads(counts.read_text()).items()}
