"""A new user's first commands: a clone of this repository, nox from PyPI in a fresh venv
and nothing else. `nox -l` lists the sessions without installing anything; `nox -s demo`
makes the shared venv `.nox/envassay` (envassay does not import in nox's interpreter),
builds the local channel and runs the pipeline; a second session reuses that venv.

The clone is of this repository, with the working tree's tracked and untracked (not
ignored) files copied over it, so what is tested is what would be committed. pip's own
cache and the test channel's cache are the user's (so a warm machine pays no download);
the env store is the test's own.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from envassay.command import CommandResult, run
from envassay_testing import LocalChannel

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.channel, pytest.mark.slow]


def _clone(dest: Path) -> Path:
    """``git clone`` of ROOT at ``dest``, then the working tree's files as they are now."""
    cloned = run(["git", "clone", "--quiet", "--no-hardlinks", ROOT, dest], timeout=300)
    assert cloned.ok, cloned.describe()
    listed = run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=ROOT, timeout=60)
    assert listed.ok, listed.describe()
    for name in filter(None, listed.stdout.split("\0")):
        source, target = ROOT / name, dest / name
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        elif target.is_file():  # deleted in the working tree, not yet committed
            target.unlink()
    return dest


def _user_env(tmp: Path, venv: Path) -> dict[str, str]:
    """A shell with only the fresh venv's nox: no test venv on PATH, no PYTHONPATH."""
    drop = ("PYTEST_", "NOX_", "GITHUB_", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    test_bin = str(Path(sys.executable).parent)
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and p != test_bin]
    env["PATH"] = os.pathsep.join([str(venv / "bin"), *path])
    env["ENVASSAY_HOME"] = str(tmp / "store")
    return env


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="not a git checkout: nothing to clone")
def test_nox_list_and_demo_on_a_fresh_clone_with_only_nox(
    tmp_path: Path, test_channel: LocalChannel
) -> None:
    repo = _clone(tmp_path / "repo")
    venv = tmp_path / "nox-venv"
    made = run([sys.executable, "-m", "venv", venv], timeout=300)
    assert made.ok, made.describe()
    env = _user_env(tmp_path, venv)
    pip = [venv / "bin" / "python", "-m", "pip", "install", "--quiet", "nox"]
    installed = run(pip, env=env, timeout=600)
    assert installed.ok, installed.describe()
    nox = venv / "bin" / "nox"
    imports = run([venv / "bin" / "python", "-c", "import envassay"], env=env, cwd=tmp_path)
    assert not imports.ok, "envassay imports in the fresh nox venv: the test would prove nothing"

    def nox_run(*args: str) -> CommandResult:
        return run([nox, *args], env=env, cwd=repo, timeout=1200)

    listed = nox_run("-l")
    assert listed.ok, listed.describe()
    for session in ("envs(env='cpu')", "demo", "check", "matrix", "tests"):
        assert f" {session} -> " in listed.stdout, listed.stdout
    assert not (repo / ".nox").exists(), "nox -l made something"

    demo = nox_run("-s", "demo")
    assert demo.ok, demo.describe()
    output = demo.stdout + demo.stderr
    assert f"making {repo / '.nox' / 'envassay'}" in output, output
    assert "demo-good  native  linux-64" in output and "19 passed, 3 skipped" in output, output
    assert "3 failed, 13 passed, 2 skipped" in output, output  # broken.yml, as README says
    assert (repo / ".nox" / "envassay" / ".envassay-stamp").is_file()

    # The next session reuses that venv, and prints what `envassay matrix` prints.
    matrix = nox_run("-s", "matrix", "--", "--format", "github")
    assert matrix.ok, matrix.describe()
    assert "making" not in matrix.stdout + matrix.stderr, matrix.stderr
    line = next(x for x in matrix.stdout.splitlines() if x.startswith('{"include":'))
    assert {e["session"] for e in json.loads(line)["include"]} >= {"envs(env='cpu')"}
