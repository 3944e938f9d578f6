"""Each input is read once per run: a warm `envassay check` of one locked spec opens the
spec, its lock and pyproject.toml once each (counted by an audit hook on "open" events in
the real CLI's process)."""

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
    spec = project.spec("readonce", ["python=3.11", "six"])
    lock = spec.with_name("readonce.conda-lock.yml")
    pyproject = project.root / "pyproject.toml"
    cli = [sys.executable, "-m", "envassay"]
    assert run([*cli, "lock", spec], env=envassay_env, cwd=project.root).returncode == 0
    assert run([*cli, "check"], env=envassay_env, cwd=project.root).returncode == 0  # cold

    counts = project.root / "counts.json"
    watched = os.pathsep.join(map(str, [spec, lock, pyproject]))
    result = run(
        [sys.executable, "-c", COUNTING_CLI, counts, watched, "check"],
        env=envassay_env,
        cwd=project.root,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    opened = {Path(p).name: n for p, n in json.loads(counts.read_text()).items()}
    assert opened == {spec.name: 1, lock.name: 1, pyproject.name: 1}
