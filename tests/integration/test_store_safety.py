"""A store that only touches its own: prune removes only what envassay made for this
project and nothing in use; symlinks and foreign entries are refused; long names fit;
an unusable store, report path or full disk is one line, exit 2; --force recreates."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from envassay.command import CommandResult, run
from tests.conftest import Project
from tests.integration.envassay_cli import check, envassay

pytestmark = pytest.mark.channel


def _env(store: Path) -> dict[str, str]:
    return {"ENVASSAY_HOME": str(store), "PATH": "/usr/bin:/bin"}


def _one_line_exit_2(result: CommandResult) -> None:
    """Exit 2 and one error line (progress lines may come before it), no traceback."""
    out = result.stdout + result.stderr
    assert result.returncode == 2, out
    assert "Traceback" not in out, out
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith("envassay: error: "), out


@pytest.fixture
def mount_point(tmp_path: Path) -> Iterator[Path]:
    """An empty directory on which the test may mount a small tmpfs (root only)."""
    point = tmp_path / "mnt"
    point.mkdir()
    yield point
    subprocess.run(["umount", str(point)], capture_output=True, check=False)


def _mount(point: Path, options: str) -> None:
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")


def test_prune_with_the_store_in_the_project_keeps_the_users_folders(project: Project) -> None:
    project.settings('store = "."')
    spec = project.spec("one", ["python=3.11", "six"])
    data = project.root / "envs" / "data"
    data.mkdir()
    (data / "train.csv").write_text("a,b\n1,2\n")
    env = {"PATH": "/usr/bin:/bin"}
    assert envassay("create", spec, env=env, cwd=project.root).ok

    pruned = envassay("envs", "prune", "--all", env=env, cwd=project.root)
    assert pruned.ok, pruned.stderr
    assert (data / "train.csv").read_text() == "a,b\n1,2\n"
    assert "data" in pruned.stdout and "not made by envassay" in pruned.stdout
    assert "1 environment(s) removed" in pruned.stdout


def test_prune_touches_only_this_projects_entries(project: Project, tmp_path: Path) -> None:
    store = tmp_path / "store"
    other = tmp_path / "other"
    (other / "envs").mkdir(parents=True)
    (other / "pyproject.toml").write_text("[tool.envassay]\n")
    theirs = other / "envs" / "theirs.yml"
    theirs.write_text(
        f"name: theirs\nchannels: [{project.channel.url}]\ndependencies: [python=3.11, idna]\n"
    )
    ours = project.spec("ours", ["python=3.11", "six"])
    assert envassay("create", ours, env=_env(store), cwd=project.root).ok
    assert envassay("create", theirs, env=_env(store), cwd=other).ok

    pruned = envassay("envs", "prune", "--all", env=_env(store), cwd=project.root)
    assert pruned.ok and "1 environment(s) removed" in pruned.stdout, pruned.stdout
    names = [p.name for p in (store / "envs").iterdir()]
    assert [n for n in names if n.startswith("theirs")], names
    assert not [n for n in names if n.startswith("ours")], names

    pruned = envassay("envs", "prune", "--all-projects", env=_env(store), cwd=project.root)
    assert pruned.ok and "1 environment(s) removed" in pruned.stdout, pruned.stdout
    assert not list((store / "envs").iterdir())


def test_symlinked_and_foreign_entries_are_refused_never_followed(
    project: Project, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    spec = project.spec("one", ["python=3.11", "six"])
    created = envassay("create", spec, env=_env(store), cwd=project.root)
    assert created.ok
    prefix = Path(created.stdout.rsplit(": ", 1)[1].strip())
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("mine")
    # An attacker swaps the entry for a symlink to a folder of theirs (or the user's).
    run(["rm", "-rf", str(prefix)])
    prefix.symlink_to(victim)

    again = envassay("create", spec, env=_env(store), cwd=project.root)
    assert again.returncode == 2, again.stdout + again.stderr
    assert "symlink" in again.stderr and "Traceback" not in again.stderr
    assert sorted(p.name for p in victim.iterdir()) == ["keep.txt"]  # nothing linked there

    foreign = store / "envs" / "somebody-elses"
    foreign.mkdir()
    (foreign / "file").write_text("x")
    pruned = envassay("envs", "prune", "--all-projects", env=_env(store), cwd=project.root)
    assert pruned.ok, pruned.stderr
    assert (victim / "keep.txt").read_text() == "mine"
    assert (foreign / "file").read_text() == "x"
    assert prefix.is_symlink()
    assert "symlink" in pruned.stdout and "not made by envassay" in pruned.stdout


def test_prune_never_removes_an_env_in_use(project: Project, tmp_path: Path) -> None:
    store = tmp_path / "store"
    project.settings("[tool.envassay.envs.slow]\nimport-timeout = 25")
    project.spec("slow", ["python=3.11", "brokenhang"])
    xml = project.root / "junit.xml"
    checker = subprocess.Popen(  # a check whose probe hangs in an import for 25 s
        [sys.executable, "-m", "envassay", "check", "--junitxml", str(xml)],
        cwd=project.root,
        env={**os.environ, **_env(store)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while not list((store / "envs").glob("*/.envassay-complete.json")):
            assert time.monotonic() < deadline and checker.poll() is None
            time.sleep(0.2)
        time.sleep(1)  # the probe is running now
        pruned = envassay("envs", "prune", "--all", env=_env(store), cwd=project.root)
        assert pruned.ok and "in use" in pruned.stdout, pruned.stdout
        assert list((store / "envs").glob("*/.envassay-complete.json"))
    finally:
        out, _ = checker.communicate(timeout=300)
    assert checker.returncode == 1, out  # brokenhang times out: its own failure, no crash
    text = out.decode()
    assert "timed out" in text and "crashed" not in text, text


def test_a_long_env_name_fits_the_store(project: Project, tmp_path: Path) -> None:
    name = "n" * 240
    spec = project.root / "envs" / "long.yml"
    spec.write_text(
        f"name: {name}\nchannels: [{project.channel.url}]\ndependencies: [python=3.11]\n"
    )
    created = envassay("create", spec, env=_env(tmp_path / "store"), cwd=project.root)
    assert created.ok, created.stdout + created.stderr
    key = next((tmp_path / "store" / "envs").iterdir()).name
    assert len(key) < 128
    listed = json.loads(
        envassay("envs", "list", "--json", env=_env(tmp_path / "store"), cwd=project.root).stdout
    )
    assert listed[0]["name"] == name


def test_an_unusable_store_is_one_line_exit_2(
    project: Project, tmp_path: Path, mount_point: Path
) -> None:
    spec = project.spec("one", ["python=3.11", "six"])
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    _one_line_exit_2(envassay("create", spec, env=_env(a_file), cwd=project.root))
    code, _, output = check(project, _env(a_file), "envs/one.yml")
    assert code == 2 and "Traceback" not in output, output
    assert "a-file" in output

    # A read-only store: its envs are still checked; one it lacks is one line, exit 2.
    _mount(mount_point, "size=200m")
    assert envassay("create", spec, env=_env(mount_point), cwd=project.root).ok
    subprocess.run(["mount", "-o", "remount,ro", str(mount_point)], check=True)
    code, _, output = check(project, _env(mount_point), "envs/one.yml")
    assert code == 0, output
    two = project.spec("two", ["python=3.11", "idna"])
    _one_line_exit_2(envassay("create", two, env=_env(mount_point), cwd=project.root))
    code, _, output = check(project, _env(mount_point), "envs/two.yml")
    assert code == 2 and "Traceback" not in output and "Read-only" in output, output


def test_a_full_disk_is_one_line_exit_2(
    project: Project, tmp_path: Path, mount_point: Path
) -> None:
    _mount(mount_point, "size=2m")  # python alone is tens of MB
    spec = project.spec("one", ["python=3.11", "six"])
    result = envassay("create", spec, env=_env(mount_point), cwd=project.root)
    _one_line_exit_2(result)
    assert "space" in result.stderr.lower(), result.stderr
    assert not list((mount_point / "envs").iterdir())  # nothing half-made is kept


def test_force_and_recreate_make_the_env_again(project: Project, tmp_path: Path) -> None:
    store = tmp_path / "store"
    spec = project.spec("one", ["python=3.11", "six"])
    created = envassay("create", spec, env=_env(store), cwd=project.root)
    prefix = Path(created.stdout.rsplit(": ", 1)[1].strip())
    six = next(prefix.glob("lib/python3.11/site-packages/six.py"))
    six.unlink()  # replaced, not written through: it is a hard link into the package cache
    six.write_text("raise ImportError('tampered')\n")
    code, outcomes, _ = check(project, _env(store), "envs/one.yml")
    assert code == 1 and outcomes["import[six]"][0] == "failure"

    code, outcomes, output = check(project, _env(store), "--recreate", "envs/one.yml")
    assert code == 0 and outcomes["import[six]"][0] == "passed", output
    assert "solving" in output  # made again, not reused

    six.unlink()
    six.write_text("raise ImportError('tampered')\n")
    forced = envassay("create", "--force", spec, env=_env(store), cwd=project.root)
    assert forced.ok and forced.stdout.startswith("created"), forced.stdout
    assert "tampered" not in six.read_text()
