"""`envassay create` for real: solved and linked by py-rattler from the local channel."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from envassay.command import run
from envassay.store import MARKER, EnvStore
from envassay_testing.wheels import make_wheel
from tests.conftest import Project
from tests.integration.envassay_cli import envassay

pytestmark = pytest.mark.channel


def test_create_then_reuse_then_recreate_on_change(
    project: Project, envassay_env: dict[str, str], tmp_path: Path
) -> None:
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "extra-tool", "1.0", files={"extra_tool.py": "VALUE = 42\n"})
    spec = project.spec(
        "basic",
        ["python=3.11", "numpy>=1.24,<2", "pyyaml", "beautifulsoup4"],
        pip=["--no-index", f"--find-links {wheels}", "extra-tool==1.0"],
    )
    first = envassay("create", spec, env=envassay_env, cwd=project.root)
    assert first.ok, first.describe()
    assert "created basic" in first.stdout
    assert "added `pip`" in first.stderr  # said, as conda would do it silently
    prefix = Path(first.stdout.strip().rsplit(": ", 1)[1])
    probe = run(
        [
            prefix / "bin" / "python",
            "-c",
            "import sys, numpy, yaml, bs4, extra_tool; "
            "print(sys.prefix); print(numpy.arange(4).sum())",
        ],
    )
    assert probe.ok, probe.describe()
    assert probe.stdout.split() == [str(prefix), "6"]

    again = envassay("create", spec, env=envassay_env, cwd=project.root)
    assert again.ok and "reused basic from the store (no solve, no link)" in again.stdout
    assert "solving" not in again.stderr

    spec.write_text(spec.read_text().replace("pyyaml", "six"))
    changed = envassay("create", spec, env=envassay_env, cwd=project.root)
    assert changed.ok and "created basic" in changed.stdout
    assert Path(changed.stdout.strip().rsplit(": ", 1)[1]) != prefix


def test_create_at_explicit_prefix(project: Project, envassay_env: dict[str, str]) -> None:
    spec = project.spec("plain", ["python=3.11", "six"])
    target = project.root / "myenv"
    result = envassay("create", spec, "--prefix", target, env=envassay_env, cwd=project.root)
    assert result.ok, result.describe()
    assert run([target / "bin" / "python", "-c", "import six"]).ok


@pytest.mark.parametrize(
    ("deps", "fragment"),
    [
        (["python=3.11", "numpy>=5"], "cannot solve"),
        (["python=3.11", "doesnotexist"], "doesnotexist"),
    ],
)
def test_unsolvable_spec_is_exit_2_and_leaves_nothing(
    project: Project, envassay_env: dict[str, str], store_home: Path, deps: list[str], fragment: str
) -> None:
    spec = project.spec("unsolvable", deps)
    before = {e.key for e in EnvStore(store_home).entries()}
    result = envassay("create", spec, env=envassay_env, cwd=project.root)
    assert result.returncode == 2, result.describe()
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("envassay: error:")
    assert {e.key for e in EnvStore(store_home).entries()} == before


def test_unreachable_channel_names_it_and_says_how(
    project: Project, envassay_env: dict[str, str], tmp_path: Path
) -> None:
    spec = tmp_path / "far.yml"
    spec.write_text("channels: [http://127.0.0.1:9/nochannel]\ndependencies: [python]\n")
    result = envassay("create", spec, env=envassay_env, cwd=project.root)
    assert result.returncode == 2, result.describe()
    line = result.stderr.strip().splitlines()[-1]
    assert "127.0.0.1:9/nochannel" in line and "mirror" in line


def test_file_mirror_in_rattler_config_is_read(
    project: Project, envassay_env: dict[str, str], tmp_path: Path
) -> None:
    """A channel mirrored to a file:// folder in ~/.rattler/config.toml: rattler's own
    mirror layer refuses the scheme; envassay reads the mirror, records keep the channel."""
    home = tmp_path / "home"
    (home / ".rattler").mkdir(parents=True)
    channel = "http://127.0.0.1:9/mirrored"
    (home / ".rattler" / "config.toml").write_text(
        f'[mirrors]\n"{channel}/" = ["{project.channel.url}/"]\n'
    )
    spec = project.root / "envs" / "mirrored.yml"
    spec.write_text(f"name: mirrored\nchannels: [{channel}, nodefaults]\ndependencies: [six]\n")
    env = {**envassay_env, "HOME": str(home)}
    prefix = tmp_path / "prefix"
    result = envassay("create", spec, "--prefix", prefix, env=env, cwd=project.root)
    assert result.returncode == 0, result.describe()
    record = json.loads(next((prefix / "conda-meta").glob("six-*.json")).read_text())
    assert record["channel"].rstrip("/") == channel
    assert envassay("lock", spec, env=env, cwd=project.root).returncode == 0
    lock = (project.root / "envs" / "mirrored.conda-lock.yml").read_text()
    assert f"{channel}/noarch/six-" in lock and project.channel.url not in lock


def test_bad_pip_section_is_exit_2(
    project: Project, envassay_env: dict[str, str], tmp_path: Path
) -> None:
    spec = project.spec(
        "badpip", ["python=3.11"], pip=["--no-index", f"--find-links {tmp_path}", "notthere==1"]
    )
    result = envassay("create", spec, env=envassay_env, cwd=project.root)
    assert result.returncode == 2, result.describe()
    assert "pip could not resolve" in result.stderr


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("tensorflow=2.15", "Invalid requirement"),  # not PEP 508: pip refuses it
        ("-r file:requirements.txt", "requirements file"),  # not there: pip cannot open it
        ("--install-option=--prefix=/", "install-option"),  # no option of requirements files
    ],
)
def test_a_pip_line_conda_hands_to_pip_gets_pips_verdict_at_its_line(
    project: Project, envassay_env: dict[str, str], line: str, fragment: str
) -> None:
    """conda reads the spec and pip refuses the line at create; envassay reads it too
    (`spec` succeeds, warning) and `create` ends with pip's verdict, naming the line."""
    spec = project.spec("pipdecides", ["python=3.11"], pip=["--no-index", line])
    read = envassay("spec", spec, env=envassay_env, cwd=project.root)
    assert read.ok and "pip will" in read.stderr, read.describe()
    result = envassay("create", spec, env=envassay_env, cwd=project.root)
    assert result.returncode == 2, result.describe()
    last = result.stderr.strip().splitlines()[-1]
    number = spec.read_text().splitlines().index(f'    - "{line}"') + 1
    assert last.startswith(f"envassay: error: {spec}:{number}: pip refused {line!r}"), last
    assert fragment in last, last


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.3, 0.8, 1.5, 2.5])
def test_kill_9_mid_create_is_never_used_and_recreated(
    project: Project, tmp_path: Path, delay: float
) -> None:
    spec = project.spec("killed", ["python=3.11", "numpy", "pyyaml", "beautifulsoup4", "requests"])
    env = {"ENVASSAY_HOME": str(tmp_path / "store"), "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "envassay", "create", str(spec)],
        cwd=project.root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    time.sleep(delay)
    try:
        import os

        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    store = EnvStore(tmp_path / "store")
    for entry in store.entries():
        if not entry.complete:
            assert not (entry.prefix / MARKER).exists()
    again = envassay("create", spec, env=env, cwd=project.root)
    assert again.ok, again.describe()
    prefix = Path(again.stdout.strip().rsplit(": ", 1)[1])
    assert run([prefix / "bin" / "python", "-c", "import numpy, yaml, bs4, requests"]).ok
    assert [e.complete for e in store.entries()] == [True]
    meta = json.loads((prefix / MARKER).read_text())
    assert meta["name"] == "killed"


def test_the_users_site_packages_do_not_leak_into_the_probe(
    project: Project, envassay_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A module in ~/.local's site-packages would make an import pass on one machine that
    fails on every other: the env is judged on its own contents, in the probe and in its
    import child (a conda env, unlike a venv, has the user site on sys.path)."""
    from envassay.probe import PackageRequest, ProbeRequest, run_probe
    from envassay.targets import NativeTarget

    spec = project.spec("usersite", ["python=3.11", "six"])
    made = envassay("create", spec, env=envassay_env, cwd=project.root)
    assert made.ok, made.describe()
    prefix = Path(made.stdout.strip().rsplit(": ", 1)[1])
    home = tmp_path / "home"
    user_site = home / ".local" / "lib" / "python3.11" / "site-packages"
    user_site.mkdir(parents=True)
    (user_site / "onlyinhome.py").write_text("")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("PYTHONUSERBASE", raising=False)
    monkeypatch.delenv("PYTHONNOUSERSITE", raising=False)
    leaks = run([prefix / "bin" / "python", "-c", "import onlyinhome"])
    assert leaks.ok, "the env's python sees the user site: this test would prove nothing"

    request = ProbeRequest(packages=(PackageRequest("six"),), modules={"six": ("onlyinhome",)})
    report = run_probe(NativeTarget(prefix), request)
    (result,) = [r for r in report.imports if r.module == "onlyinhome"]
    assert result.status == "error" and "No module named" in (result.error or ""), result
    assert all(r.status == "ok" for r in report.imports if r.module == "six"), report.imports


# `envassay ARGS` that also says, last on stderr, how many rattler workers it started.
COUNTING_WORKERS = """
import atexit, runpy, sys
started = []
def hook(event, args):
    if event == "subprocess.Popen" and "envassay.rattler_worker" in map(str, args[1] or ()):
        started.append(args)
sys.addaudithook(hook)
atexit.register(lambda: sys.stderr.write(f"workers started: {len(started)}\\n"))
sys.argv = ["envassay", *sys.argv[1:]]
runpy.run_module("envassay", run_name="__main__", alter_sys=True)
"""


def test_the_worker_started_ahead_serves_the_create_and_a_reuse_ends_it(
    project: Project, envassay_env: dict[str, str]
) -> None:
    """`envassay create` starts the rattler worker before reading the spec (its start-up
    overlaps ours): the create uses that worker (one started in all), and a reuse,
    which needs none, ends it before envassay exits."""
    from tests.reliability.harness import processes_with_tag

    spec = project.spec("ahead", ["python=3.11", "six"])
    tag = os.urandom(6).hex()
    env = envassay_env | {"ENVASSAY_TEST_TAG": tag}
    argv = [sys.executable, "-c", COUNTING_WORKERS, "create", spec]
    made = run(argv, env=env, cwd=project.root, timeout=600)
    assert made.ok and "created ahead" in made.stdout, made.describe()
    assert made.stderr.splitlines()[-1] == "workers started: 1", made.stderr[-2000:]
    again = run(argv, env=env, cwd=project.root, timeout=600)
    assert again.ok and "reused ahead" in again.stdout, again.describe()
    assert again.stderr.splitlines()[-1] == "workers started: 1", again.stderr[-2000:]
    assert processes_with_tag(tag) == []
