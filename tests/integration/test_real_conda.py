"""The conda backend with a real conda, against the local test channel, offline.

The condas are conda's own releases (tests/realconda.py says where they are found):
the default suite runs each of ``$ENVASSAY_TEST_CONDA`` (CI: the oldest and the newest
of ../shared/tools/conda), the version matrix at the end each of
``$ENVASSAY_TEST_CONDA_MATRIX`` (CI: all five). No stand-in is used here.

Differences between conda versions that these tests pin down:
- ``conda env create`` with ``nodefaults`` in the file's channels: "no default
  channels" up to 25.11.1; 26.x fetches a channel named ``nodefaults``
  (test_conda_reads_nodefaults_as_this_version_does). envassay gives conda >= 26
  ``conda create --file ENV.yml --override-channels -c ...`` instead.
- A package that no channel has: ``ResolvePackageNotFound`` (24.x) or
  ``PackagesNotFoundInChannelsError`` (25.x, 26.x); both are "cannot solve", exit 2.
- ``URL::pkg`` in an environment file: conda < 26 keeps only the channel's name and
  looks it up under ``channel_alias``; envassay maps the name back with a
  ``custom_channels`` rc file ($CONDARC); 26.x uses the URL as it is.
- A record's ``channel`` in conda-meta carries the subdir (``.../channel/noarch``), in
  every version; rattler and the lock write the channel alone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from envassay.command import run
from envassay.store import MARKER
from envassay_testing import LocalChannel, index_channel, make_generic_package, new_channel
from envassay_testing.wheels import make_wheel
from tests.conftest import Project
from tests.integration.envassay_cli import envassay, junit_outcomes, process_alive
from tests.realconda import MATRIX_VARIABLE, RealConda, params, real_conda_from

pytestmark = [pytest.mark.channel, pytest.mark.slow]

CLOSED_PORT_CHANNEL = "http://127.0.0.1:9/private"  # the discard port: nothing listens


@pytest.fixture(scope="session")
def pkgs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One package cache for the session's conda runs: later creates link, as a user's do."""
    return tmp_path_factory.mktemp("conda-pkgs")


class CondaProject(Project):
    """A throwaway project whose envs are made by one real conda."""

    def __init__(self, root: Path, channel: LocalChannel, conda: RealConda, pkgs: Path) -> None:
        super().__init__(root, channel)
        self.conda = conda
        self.env = conda.environ(os.environ, pkgs)
        self.env["ENVASSAY_HOME"] = str(root / "store")
        # Nothing leaves the machine: a name conda looks up under the alias finds a closed port.
        self.env["CONDA_CHANNEL_ALIAS"] = "http://127.0.0.1:9"
        self.env.pop("GITHUB_STEP_SUMMARY", None)

    def envassay(self, *args: str | Path) -> tuple[int, str]:
        result = envassay(*args, env=self.env, cwd=self.root)
        return result.returncode, result.stdout + result.stderr

    def check(self, spec: Path) -> tuple[int, dict[str, tuple[str, str]], str]:
        xml = self.root / "junit.xml"
        xml.unlink(missing_ok=True)
        code, out = self.envassay("check", spec, "--backend", "conda", "--junitxml", xml)
        return code, (junit_outcomes(xml) if xml.exists() else {}), out


@pytest.fixture
def project(
    tmp_path: Path, test_channel: LocalChannel, conda: RealConda, pkgs_dir: Path
) -> CondaProject:
    return CondaProject(tmp_path / "project", test_channel, conda, pkgs_dir)


# A spec as users write them: nodefaults, a channel::pkg pin, a pip: section with a
# local wheel, variables. CHANNEL is the local test channel's URL.
SPEC = """\
name: real-conda
channels:
  - CHANNEL
  - nodefaults
dependencies:
  - python=3.11
  - pyyaml>=6
  - CHANNEL::six
  - requests
  - pip:
    - --no-index
    - --find-links ./wheels
    - localwheel==1.0
variables:
  ENVASSAY_TEST_VARIABLE: "set"
"""
EXPECTED_PASSING = (
    "create[native]",
    "import[python]",
    "import[pyyaml]",
    "import[six]",
    "import[requests]",
    "import[localwheel]",
    "pin[python=3.11]",
    "pin[pyyaml>=6]",
    "pin[localwheel==1.0]",
    "health[pip]",
    "health[conda]",
)


def write_spec(project: CondaProject) -> Path:
    make_wheel(
        project.root / "envs" / "wheels", "localwheel", "1.0", files={"localwheel.py": "X = 1\n"}
    )
    return project.spec_text("real-conda", SPEC)


def assert_all_pass(items: dict[str, tuple[str, str]], out: str, *extra: str) -> None:
    channel_pin = next((n for n in items if n.startswith("pin[") and "::six" in n), None)
    assert channel_pin is not None, sorted(items)
    for name in (*EXPECTED_PASSING, channel_pin, *extra):
        assert items.get(name, ("missing", ""))[0] == "passed", (name, items.get(name), out)
    for name, (outcome, message) in items.items():
        unlocked = name.startswith("lock[") and "lock[fresh]" not in extra
        assert outcome == ("skipped" if unlocked else "passed"), (name, outcome, message, out)


def the_prefix(project: CondaProject) -> Path:
    envs = [p for p in (project.root / "store" / "envs").iterdir() if (p / MARKER).is_file()]
    assert len(envs) == 1, envs
    return envs[0]


def test_spec_creates_and_checks(project: CondaProject) -> None:
    spec = write_spec(project)
    code, items, out = project.check(spec)
    assert code == 0, out
    assert_all_pass(items, out)
    command = "conda create -y" if project.conda.major >= 26 else "conda env create"
    assert f"running conda {project.conda.version}" in out and command in out, out
    prefix = the_prefix(project)
    # conda itself agrees about what it made: the spec's packages, from the local channel.
    listed = run(
        [project.conda.path, "list", "--explicit", "-p", prefix], env=project.env, timeout=300
    )
    assert listed.ok, listed.describe()
    for name in ("python-3.11", "pyyaml-6", "six-1.16.0", "requests-2"):
        assert f"{project.channel.url}/" in listed.stdout and f"/{name}" in listed.stdout, name
    # conda env create wrote the spec's variables into the env, as conda does.
    state = (prefix / "conda-meta" / "state").read_text()
    assert "ENVASSAY_TEST_VARIABLE" in state, state
    code, out = project.envassay("create", spec, "--backend", "conda")
    assert code == 0 and "reused" in out, out


def test_lock_creates_and_checks(project: CondaProject) -> None:
    spec = write_spec(project)
    code, out = project.envassay("lock", spec)
    assert code == 0, out
    code, items, out = project.check(spec)
    assert code == 0, out
    assert_all_pass(items, out, "lock[fresh]", "lock[match]")
    assert "explicit.txt" in out, out  # conda made it from the @EXPLICIT file, no solve


def test_missing_package_is_exit_2_with_condas_words(project: CondaProject) -> None:
    spec = project.spec_text(
        "missing", "channels: [CHANNEL, nodefaults]\ndependencies: [python=3.11, no-such-pkg]\n"
    )
    code, out = project.envassay("create", spec, "--backend", "conda")
    last = out.strip().splitlines()[-1]
    assert code == 2, out
    assert last.startswith(f"envassay: error: {spec}: cannot solve (conda "), last
    words = "ResolvePackageNotFound" if project.conda.major < 25 else "PackagesNotFound"
    assert words in last and "no-such-pkg" in last, last


def test_unsolvable_spec_is_exit_2_with_condas_words(project: CondaProject, tmp_path: Path) -> None:
    """Two packages that exist but cannot be installed together: a real conflict."""
    conflict = new_channel(tmp_path / "conflict")
    make_generic_package(conflict, "lowdep", "1.0")
    make_generic_package(conflict, "lowdep", "2.0")
    make_generic_package(conflict, "wantsold", "1.0", depends=["lowdep <2"])
    make_generic_package(conflict, "wantsnew", "1.0", depends=["lowdep >=2"])
    index_channel(conflict)
    spec = project.spec_text(
        "conflict",
        f"channels: [{conflict.as_uri()}, nodefaults]\ndependencies: [wantsold, wantsnew]\n",
    )
    code, out = project.envassay("create", spec, "--backend", "conda")
    last = out.strip().splitlines()[-1]
    assert code == 2, out
    assert last.startswith(f"envassay: error: {spec}: cannot solve (conda "), last
    assert "UnsatisfiableError" in last or "conflict" in last.lower(), last
    assert not list((project.root / "store" / "envs").glob(f"*/{MARKER}"))


def test_unreachable_channel_is_exit_2_naming_it(project: CondaProject) -> None:
    spec = project.spec_text(
        "unreachable",
        f"channels: [CHANNEL, {CLOSED_PORT_CHANNEL}, nodefaults]\ndependencies: [python=3.11]\n",
    )
    code, out = project.envassay("create", spec, "--backend", "conda")
    last = out.strip().splitlines()[-1]
    assert code == 2, out
    assert f"cannot read the channel {CLOSED_PORT_CHANNEL}:" in last, last
    assert project.channel.url not in last.split(":", 3)[-1].split("CondaHTTPError")[0], last


def test_kill_9_mid_create_leaves_nothing_used(project: CondaProject) -> None:
    spec = write_spec(project)
    creator = subprocess.Popen(
        [sys.executable, "-m", "envassay", "create", spec, "--backend", "conda"],
        env=project.env,
        cwd=project.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert creator.stdout is not None
        for line in creator.stdout:  # conda is running once envassay says it started it
            if "running conda" in line:
                break
        conda_pids = _wait_for_children(creator.pid)
        creator.send_signal(signal.SIGKILL)
        creator.wait()
        deadline = time.monotonic() + 15
        while any(process_alive(p) for p in conda_pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(process_alive(p) for p in conda_pids), "conda outlived the killed envassay"
    finally:
        creator.kill()
        creator.wait()
        if creator.stdout is not None:
            creator.stdout.close()
    assert not list((project.root / "store" / "envs").glob(f"*/{MARKER}")), "a half-made env"
    code, items, out = project.check(spec)
    assert code == 0, out
    assert "reused" not in out, out  # the half-made prefix was made again, not used
    assert_all_pass(items, out)


def _wait_for_children(pid: int) -> list[int]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        children = Path(f"/proc/{pid}/task/{pid}/children")
        found = [int(c) for c in children.read_text().split()] if children.exists() else []
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError("envassay never started conda")


# ------------------------------------------------------------------ the version matrix


@pytest.fixture(params=params(MATRIX_VARIABLE))
def matrix_conda(request: pytest.FixtureRequest) -> RealConda:
    return real_conda_from(request.param, MATRIX_VARIABLE)


def test_matrix_spec_and_lock(
    tmp_path: Path, test_channel: LocalChannel, matrix_conda: RealConda, pkgs_dir: Path
) -> None:
    """Every conda version: the nodefaults spec, unchanged, creates and checks; then the
    same from its lock."""
    project = CondaProject(tmp_path / "project", test_channel, matrix_conda, pkgs_dir)
    spec = write_spec(project)
    code, items, out = project.check(spec)
    assert code == 0, out
    assert_all_pass(items, out)
    code, out = project.envassay("lock", spec)
    assert code == 0, out
    code, items, out = project.check(spec)
    assert code == 0, out
    assert_all_pass(items, out, "lock[fresh]", "lock[match]")


def test_conda_reads_nodefaults_as_this_version_does(
    tmp_path: Path, test_channel: LocalChannel, matrix_conda: RealConda, pkgs_dir: Path
) -> None:
    """conda's own behaviour, which envassay's choice of command rests on: `conda env
    create` with `nodefaults` works up to 25.11.1 and fetches a channel named `nodefaults`
    from 26 on. The channel alias points at a closed port, so nothing leaves the machine."""
    env = matrix_conda.environ(os.environ, pkgs_dir)
    env["CONDA_CHANNEL_ALIAS"] = "http://127.0.0.1:9"
    env_file = tmp_path / "environment.yml"
    env_file.write_text(
        yaml.safe_dump(
            {"channels": [test_channel.url, "nodefaults"], "dependencies": ["python=3.11"]}
        )
    )
    result = run(
        [matrix_conda.path, "env", "create", "-q", "-p", tmp_path / "env", "-f", env_file],
        env=env,
        timeout=600,
    )
    if matrix_conda.major >= 26:
        assert not result.ok, result.describe()
        assert "127.0.0.1:9/nodefaults/" in result.stdout + result.stderr, result.describe()
    else:
        assert result.ok, result.describe()


# Specs conda's reader reads that envassay once misread (issue 29), as conda reads them:
# (file text, whether conda 26 creates the env). CHANNELS is the local test channel (and,
# for condas before 26, `nodefaults`: they append their default channels otherwise).
READ_AS_CONDA_READS = {
    "no-dependencies": ("name: x\nchannels: CHANNELS\n", True),
    "empty-dependencies": ("channels: CHANNELS\ndependencies: []\n", True),
    "path-name-and-windows-prefix": (
        "name: /scratch/envs/x\nchannels: CHANNELS\ndependencies: [python=3.11, six]\n"
        "prefix: C:\\Users\\me\\miniconda3\\envs\\x\n",
        True,
    ),
    "bracket-extra-and-near-miss-key": (
        "names: x\nchannels: CHANNELS\ndependencies: ['python=3.11', 'six[extra]>=1']\n",
        True,
    ),
    "empty-pip-section": ("channels: CHANNELS\ndependencies:\n  - python=3.11\n  - pip:\n", True),
    "unknown-installer": (
        "channels: CHANNELS\ndependencies:\n  - python=3.11\n  - npm: [left-pad]\n",
        True,
    ),
    "pip-refuses-a-line": (
        "channels: CHANNELS\ndependencies:\n  - python=3.11\n  - pip:\n"
        "    - --no-index\n    - six=1.16\n",
        False,
    ),
    "missing-requirements-file": (
        "channels: CHANNELS\ndependencies:\n  - python=3.11\n  - pip:\n"
        "    - --no-index\n    - -r file:requirements.txt\n",
        False,
    ),
}
# Where conda 26 creates the env and older condas stop ("Unable to install package for
# npm"); envassay follows conda 26.
CONDA_26_ONLY = {"unknown-installer"}


@pytest.mark.parametrize("case", sorted(READ_AS_CONDA_READS))
def test_conda_and_envassay_agree_on_whether_the_env_is_created(
    project: CondaProject, case: str, tmp_path: Path
) -> None:
    """The real `conda env create -f` and `envassay create` (its default backend) on the
    same file: both create the env, or both fail (envassay in one line, exit 2)."""
    text, created = READ_AS_CONDA_READS[case]
    old = project.conda.major < 26
    channels = "[CHANNEL, nodefaults]" if old else "[CHANNEL]"
    spec = project.spec_text(case, text.replace("CHANNELS", channels))
    theirs = run(
        [project.conda.path, "env", "create", "-q", "-p", tmp_path / "env", "-f", spec],
        env=project.env,
        timeout=600,
    )
    if case in CONDA_26_ONLY and old:
        assert not theirs.ok, theirs.describe()
        assert "Unable to install package for npm" in theirs.stderr, theirs.describe()
    else:
        assert theirs.ok == created, theirs.describe()
    code, out = project.envassay("create", spec)
    assert (code == 0) == created, out
    if not created:
        assert code == 2 and out.strip().splitlines()[-1].startswith("envassay: error:"), out
