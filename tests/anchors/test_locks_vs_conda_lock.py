"""envassay's locks against conda-lock's own reader and installer, both ways (issue 15).

conda-lock (from PyPI, the `test` extra) is the anchor:

- Every lock `envassay lock` writes (conda only, with a `pip:` section, two platforms) is
  read by conda-lock's reader (``conda_lock.lockfile.parse_conda_lock_file``) with the
  same packages (name, version, manager, platform, url, hashes, dependencies,
  categories) and metadata (platforms, channels, sources, content hashes) as envassay's.
- ``conda-lock install --conda <real conda>`` of an envassay lock gives the env that
  ``envassay create`` gives from it: the same ``conda list --explicit --md5`` (the real
  conda run on both prefixes) and the same pip distributions (each env's own
  ``importlib.metadata``).
- The other way: a lock ``conda-lock lock --conda <real conda>`` writes against the local
  channel is read by envassay as conda-lock reads it, is fresh for ``envassay lock
  --check`` (and stale once the spec asks for something else), creates an env with no
  solve, and that env passes ``lock[match]``. The public conda-lock files in locks/
  (sources in README.md) point at channels this machine cannot reach: they are read
  only, each package compared with conda-lock's reading.

Disagreements found, and how each ended:
- envassay's rattler create from a lock wrote no md5 into conda-meta (rattler reads none
  from an archive), so ``conda list --explicit --md5`` listed bare URLs where conda's
  env had ``URL#md5``: fixed in rattler_ops.records_from_lock.
- A conda-lock-written lock was "stale: the spec changed" for envassay, which compared
  conda-lock's content hash (its own algorithm, over its virtual-package spec, which the
  lock does not record) with envassay's: fixed in lock.lock_status, which judges a lock
  envassay did not write by whether it is a solution of the spec (lock.unsolved_reasons).
- An ``@EXPLICIT`` file (``conda-lock --kind explicit``) is not a unified lock and both
  readers refuse it, but envassay said only "not valid YAML": lockfile.read_lock now
  names it as an explicit lock.
Kept, and why (not disagreements in what a lock means):
- conda-lock writes a dependency without a constraint as ``''``, envassay as ``'*'``;
  both readers keep the text as written, and both mean "any version".
- conda-lock reads a ``URL::name`` dependency as ``LAST-SEGMENT::name`` (a channel name
  conda cannot find offline); the spec given to conda-lock's ``lock`` names the channel
  only in ``channels:``. envassay's own locks keep the URL (conda-only spec).
- conda-lock's ``lock`` is run on a spec without a ``pip:`` section: it resolves pip
  requirements with its own (Poetry) solver against PyPI's JSON API, not from a local
  wheel folder, so a pip part could not be locked offline. envassay's pip entries are
  covered by the install comparison.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from envassay.command import CommandResult, run
from envassay.errors import EnvassayError
from envassay.lock.format import LockFile, lock_path_for, read_lock
from envassay_testing import (
    LocalChannel,
    index_channel,
    make_generic_package,
    new_channel,
)
from envassay_testing.channel import host_glibc
from envassay_testing.wheels import make_wheel
from tests.conftest import Project, envassay_environ
from tests.integration.envassay_cli import envassay, junit_outcomes
from tests.realconda import RealConda

# conda-lock's own imports warn (importlib.resources.path; its vendored conda's frozendict):
# not this suite's to fix, and the suite turns warnings into errors. Its vendored conda
# also sets $CONDA_ROOT to this interpreter's prefix when it is unset: every later test's
# real conda would then miss its own .condarc, so the environment is put back.
_ENVIRON = dict(os.environ)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    warnings.simplefilter("ignore", PendingDeprecationWarning)
    from conda_lock.lockfile import parse_conda_lock_file
for _key in set(os.environ) - set(_ENVIRON):
    del os.environ[_key]
os.environ.update(_ENVIRON)

HERE = Path(__file__).resolve().parent
PUBLIC = sorted((HERE / "locks").iterdir())
CONDA_LOCK = Path(sys.executable).with_name("conda-lock")

Key = tuple[str, str, str, str]  # manager, platform, name, url


# ---------------------------------------------------------------------- both readers


def ours(path: Path) -> dict[str, Any]:
    """envassay's reading of a lock, in the shape compared with conda-lock's."""
    lock = read_lock(path)
    packages: dict[Key, dict[str, Any]] = {}
    for p in lock.packages:
        entry = packages.setdefault(
            (p.manager, p.platform, p.name, p.url),
            {"version": p.version, "md5": p.md5, "sha256": p.sha256, "categories": set()},
        )
        entry["dependencies"] = dict(p.dependencies)
        entry["categories"].add(p.category)
    return {"metadata": _metadata(lock), "packages": packages}


def _metadata(lock: LockFile) -> dict[str, Any]:
    meta = lock.metadata
    return {
        "platforms": list(meta.platforms),
        "channels": list(meta.channels),
        "sources": list(meta.sources),
        "content_hash": dict(meta.content_hash),
    }


def theirs(path: Path) -> dict[str, Any]:
    """conda-lock's reading of the same lock (its v1 file made its v2 model, as it reads)."""
    lock = parse_conda_lock_file(path)
    packages: dict[Key, dict[str, Any]] = {}
    for p in lock.package:
        packages[(p.manager, p.platform, p.name, p.url)] = {
            "version": p.version,
            "md5": p.hash.md5,
            "sha256": p.hash.sha256,
            "categories": set(p.categories),
            "dependencies": dict(p.dependencies),
        }
    meta = lock.metadata
    return {
        "metadata": {
            "platforms": list(meta.platforms),
            "channels": [c.url for c in meta.channels],
            "sources": list(meta.sources),
            "content_hash": dict(meta.content_hash),
        },
        "packages": packages,
    }


def assert_same_reading(path: Path) -> dict[str, Any]:
    __tracebackhide__ = True
    mine, conda_lock = ours(path), theirs(path)
    assert mine["metadata"] == conda_lock["metadata"]
    only_ours = sorted(set(mine["packages"]) - set(conda_lock["packages"]))
    only_theirs = sorted(set(conda_lock["packages"]) - set(mine["packages"]))
    assert not only_ours and not only_theirs, (only_ours, only_theirs)
    differ = {
        key: (value, conda_lock["packages"][key])
        for key, value in mine["packages"].items()
        if value != conda_lock["packages"][key]
    }
    assert not differ
    return mine


# ---------------------------------------------------------------------- projects


class LockProject(Project):
    """A throwaway project with its own env store."""

    def __init__(self, root: Path, channel: LocalChannel) -> None:
        super().__init__(root, channel)
        self.env = envassay_environ(root / "store")
        self.env.pop("ENVASSAY_BACKEND", None)

    def envassay(self, *args: str | Path) -> CommandResult:
        return envassay(*args, env=self.env, cwd=self.root)

    def lock(self, spec: Path) -> Path:
        result = self.envassay("lock", spec)
        assert result.ok, result.describe()
        return lock_path_for(spec)


@pytest.fixture
def project(tmp_path: Path, test_channel: LocalChannel) -> LockProject:
    return LockProject(tmp_path / "project", test_channel)


@pytest.fixture
def wheels(tmp_path: Path) -> Path:
    folder = tmp_path / "wheels"
    make_wheel(folder, "localwheel", "1.0", files={"localwheel.py": "X = 1\n"}, requires=["dep>=1"])
    make_wheel(folder, "dep", "1.5", files={"dep.py": ""})
    return folder


CONDA_ONLY = """\
name: conda-only
channels:
  - CHANNEL
  - nodefaults
dependencies:
  - python=3.11
  - pyyaml>=6
  - requests
  - CHANNEL::six
"""

# conda-lock reads a `URL::name` spec as `LAST-PATH-SEGMENT::name`, a channel name that
# conda then cannot find (conda-lock's reading, not envassay's): its spec names none.
BY_CONDA_LOCK = CONDA_ONLY.replace("CHANNEL::six", "six")

WITH_PIP = """\
name: with-pip
channels:
  - CHANNEL
dependencies:
  - python=3.11
  - requests
  - pip:
    - --no-index
    - --find-links WHEELS
    - localwheel==1.0
"""


def two_platform_channel(root: Path) -> Path:
    """A channel with a linux-64 and an osx-arm64 build of one tool, and a noarch dependency."""
    channel = new_channel(root)
    make_generic_package(channel, "tinydata", "1.0", files={"share/tinydata/README": "data\n"})
    for subdir, virtual in (("linux-64", "__glibc >=2.17"), ("osx-arm64", "__osx >=11.0")):
        make_generic_package(
            channel, "tinytool", "1.0", subdir=subdir, depends=["tinydata", virtual]
        )
    index_channel(channel)
    return channel


# ---------------------------------------------------------------------- envassay's locks


@pytest.mark.channel
def test_envassay_locks_read_as_conda_lock_reads_them(
    project: LockProject, wheels: Path, tmp_path: Path
) -> None:
    channel = two_platform_channel(tmp_path / "multi")
    specs = {
        "conda-only": project.spec_text("conda-only", CONDA_ONLY),
        "with-pip": project.spec_text("with-pip", WITH_PIP.replace("WHEELS", str(wheels))),
        "two-platforms": project.spec_text(
            "two-platforms",
            f"channels: [{channel.as_uri()}]\ndependencies: [tinytool]\n"
            "platforms: [linux-64, osx-arm64]\n",
        ),
    }
    readings = {name: assert_same_reading(project.lock(spec)) for name, spec in specs.items()}

    # What was compared is what the specs ask for: not two empty readings.
    with_pip = readings["with-pip"]["packages"]
    assert {k[2] for k in with_pip if k[0] == "pip"} == {"localwheel", "dep"}
    assert all(v["md5"] and v["sha256"] for k, v in with_pip.items() if k[0] == "conda")
    assert all(v["sha256"] for k, v in with_pip.items() if k[0] == "pip")
    multi = readings["two-platforms"]
    assert multi["metadata"]["platforms"] == ["linux-64", "osx-arm64"]
    assert {(k[1], k[2]) for k in multi["packages"]} == {
        (p, n) for p in ("linux-64", "osx-arm64") for n in ("tinytool", "tinydata")
    }
    assert {k[2] for k in readings["conda-only"]["packages"]} >= {"python", "six", "requests"}


# ---------------------------------------------------------------------- with a real conda


def conda_lock_env(conda: RealConda, base: Mapping[str, str], pkgs: Path) -> dict[str, str]:
    """What conda-lock runs in: the real conda, offline, its own package cache.

    conda-lock's vendored conda sets $CONDA_ROOT to conda-lock's own interpreter when it is
    unset, and the real conda then reads its root .condarc (solver: classic) from there:
    it is set to the real conda's root here."""
    env = conda.environ(base, pkgs)
    env["CONDA_ROOT"] = str(conda.path.parent.parent)
    env["CONDA_CHANNEL_ALIAS"] = "http://127.0.0.1:9"  # the discard port: nothing leaves
    env["CONDA_NUMBER_CHANNEL_NOTICES"] = "0"
    return env


def explicit_md5(conda: RealConda, prefix: Path, env: Mapping[str, str]) -> set[str]:
    """``URL#md5`` of every record in ``prefix``, as the real conda lists them."""
    result = run([conda.path, "list", "--explicit", "--md5", "-p", prefix], env=env, timeout=300)
    assert result.ok, result.describe()
    return {line for line in result.stdout.splitlines() if line.startswith(("file:", "http"))}


DISTRIBUTIONS = (
    "import importlib.metadata as m, json; "
    "print(json.dumps(sorted((d.metadata['Name'], d.version) for d in m.distributions())))"
)


def distributions(prefix: Path) -> list[list[str]]:
    result = run([prefix / "bin" / "python", "-s", "-c", DISTRIBUTIONS], timeout=120)
    assert result.ok, result.describe()
    return list(json.loads(result.stdout))


def conda_lock_install(
    conda: RealConda, env: Mapping[str, str], prefix: Path, lock: Path, cwd: Path
) -> CommandResult:
    command = [CONDA_LOCK, "install", "--conda", conda.path, "-p", prefix, lock]
    return run(command, env=env, cwd=cwd, timeout=600)


@pytest.mark.channel
@pytest.mark.slow
def test_conda_lock_install_gives_the_env_envassay_creates(
    project: LockProject, conda: RealConda, wheels: Path, tmp_path: Path
) -> None:
    spec = project.spec_text("with-pip", WITH_PIP.replace("WHEELS", str(wheels)))
    lock = project.lock(spec)
    env = conda_lock_env(conda, project.env, tmp_path / "pkgs")
    theirs_prefix, ours_prefix = tmp_path / "by-conda-lock", tmp_path / "by-envassay"
    installed = conda_lock_install(conda, env, theirs_prefix, lock, project.root)
    assert installed.ok, installed.describe()
    created = project.envassay("create", spec, "--prefix", ours_prefix)
    assert created.ok, created.describe()
    assert "no solve" in created.stdout + created.stderr

    listed = explicit_md5(conda, theirs_prefix, env)
    assert explicit_md5(conda, ours_prefix, env) == listed
    locked = read_lock(lock).packages_for("linux-64", "conda")
    assert listed == {f"{p.url}#{p.md5}" for p in locked}
    dists = distributions(theirs_prefix)
    assert distributions(ours_prefix) == dists
    assert ["localwheel", "1.0"] in dists and ["dep", "1.5"] in dists


VIRTUAL_PACKAGES = """\
subdirs:
  linux-64:
    packages: {{__unix: "0", __linux: "5.10", __glibc: "{glibc}"}}
  osx-arm64:
    packages: {{__unix: "0", __osx: "11.0"}}
"""


def conda_lock_lock(
    project: LockProject,
    conda: RealConda,
    spec: Path,
    tmp_path: Path,
    platforms: tuple[str, ...] = ("linux-64",),
) -> tuple[Path, dict[str, str]]:
    """``conda-lock lock`` of ``spec`` with the real conda, against the local channel only.

    Its virtual packages are this machine's glibc (the channel's python is built against
    it; conda-lock's default is 2.28), its PyPI-to-conda name mapping a local file (its
    default is downloaded)."""
    virtual = tmp_path / "virtual-packages.yml"
    virtual.write_text(VIRTUAL_PACKAGES.format(glibc=host_glibc()))
    lookup = tmp_path / "pypi-to-conda.yml"
    lookup.write_text("{}\n")
    env = conda_lock_env(conda, project.env, tmp_path / "pkgs")
    lock = lock_path_for(spec)
    result = run(
        [
            *(CONDA_LOCK, "lock", "--conda", conda.path, "-f", spec),
            *(arg for platform in platforms for arg in ("-p", platform)),
            *("--virtual-package-spec", virtual, "--pypi_to_conda_lookup_file", lookup),
            *("--lockfile", lock),
        ],
        env=env,
        cwd=project.root,
        timeout=600,
    )
    assert result.ok, result.describe()
    assert "generated by conda-lock" in lock.read_text()
    return lock, env


@pytest.mark.channel
@pytest.mark.slow
def test_a_lock_conda_lock_writes_is_read_checked_and_created_by_envassay(
    project: LockProject, conda: RealConda, tmp_path: Path
) -> None:
    spec = project.spec_text("by-conda-lock", BY_CONDA_LOCK)
    lock, env = conda_lock_lock(project, conda, spec, tmp_path)
    reading = assert_same_reading(lock)
    assert {k[2] for k in reading["packages"]} >= {"python", "pyyaml", "requests", "six"}

    fresh = project.envassay("lock", "--check", spec)
    assert fresh.returncode == 0, fresh.describe()
    assert "1 lock(s) fresh" in fresh.stdout

    prefix = tmp_path / "from-conda-lock-lock"
    created = project.envassay("create", spec, "--prefix", prefix)
    assert created.ok, created.describe()
    assert "creating from by-conda-lock.conda-lock.yml (linux-64): no solve" in created.stderr
    locked = read_lock(lock).packages_for("linux-64", "conda")
    listed = explicit_md5(conda, prefix, env)
    assert listed == {f"{p.url}#{p.md5}" for p in locked}
    theirs_prefix = tmp_path / "by-conda-lock"
    installed = conda_lock_install(conda, env, theirs_prefix, lock, project.root)
    assert installed.ok, installed.describe()
    assert explicit_md5(conda, theirs_prefix, env) == listed
    assert distributions(theirs_prefix) == distributions(prefix)

    xml = project.root / "junit.xml"
    checked = project.envassay("check", spec, "--junitxml", xml)
    items = junit_outcomes(xml)
    assert checked.returncode == 0, checked.describe()
    assert items["lock[fresh]"][0] == "passed"
    assert items["lock[match]"][0] == "passed", items["lock[match]"]

    # The spec asks for what the lock does not hold, or no longer for what it holds: stale.
    edits = {
        BY_CONDA_LOCK + "  - attrs\n": "the spec asks for attrs, the lock has nothing",
        BY_CONDA_LOCK.replace("  - requests\n", ""): "the lock holds certifi, charset-normalizer",
        BY_CONDA_LOCK.replace(
            "python=3.11", "python=3.12"
        ): "the spec asks for python=3.12, the lock has 3.11",
    }
    for edited, reason in edits.items():
        project.spec_text("by-conda-lock", edited)
        stale = project.envassay("lock", "--check", spec)
        assert stale.returncode == 1, (edited, stale.describe())
        assert f"lock is stale: linux-64: {reason}" in stale.stdout, stale.stdout
    # A comment, or the same dependencies in another order, still says what the lock holds.
    project.spec_text(
        "by-conda-lock",
        "# reordered\n"
        + BY_CONDA_LOCK.replace(
            "  - python=3.11\n  - pyyaml>=6\n", "  - pyyaml>=6\n  - python=3.11\n"
        ),
    )
    assert project.envassay("lock", "--check", spec).returncode == 0


@pytest.mark.channel
@pytest.mark.slow
def test_a_two_platform_lock_conda_lock_writes_is_read_and_checked_by_envassay(
    project: LockProject, conda: RealConda, tmp_path: Path
) -> None:
    channel = two_platform_channel(tmp_path / "multi")
    text = f"channels: [{channel.as_uri()}]\ndependencies: [tinytool]\n"
    spec = project.spec_text("two", text + "platforms: [linux-64, osx-arm64]\n")
    lock, _env = conda_lock_lock(project, conda, spec, tmp_path, ("linux-64", "osx-arm64"))
    reading = assert_same_reading(lock)
    assert {(k[1], k[2], k[3].rsplit("/", 2)[1]) for k in reading["packages"]} == {
        ("linux-64", "tinytool", "linux-64"),
        ("linux-64", "tinydata", "noarch"),
        ("osx-arm64", "tinytool", "osx-arm64"),
        ("osx-arm64", "tinydata", "noarch"),
    }
    fresh = project.envassay("lock", "--check", spec)
    assert fresh.returncode == 0, fresh.describe()
    before = lock.read_bytes()
    again = project.envassay("lock", spec)  # a fresh lock is not re-solved, whoever wrote it
    assert again.ok and "is fresh; not re-solved" in again.stdout, again.describe()
    assert lock.read_bytes() == before

    narrowed = text.replace("[tinytool]", '["tinytool>=2"]') + "platforms: [linux-64]\n"
    project.spec_text("two", narrowed)
    stale = project.envassay("lock", "--check", spec)
    assert stale.returncode == 1, stale.describe()
    for platform in ("linux-64", "osx-arm64"):
        assert f"{platform}: the spec asks for tinytool>=2, the lock has 1.0" in stale.stdout
    project.spec_text("two", text + "platforms: [linux-64, osx-arm64, win-64]\n")
    stale = project.envassay("lock", "--check", spec)
    assert "platform(s) ['win-64'] are configured but not locked" in stale.stdout, stale.stdout


# ---------------------------------------------------------------------- public locks


def test_the_public_locks_are_there() -> None:
    assert len(PUBLIC) == 4


def test_importing_conda_lock_left_the_environment_alone() -> None:
    assert os.environ.get("CONDA_ROOT") == _ENVIRON.get("CONDA_ROOT")


@pytest.mark.parametrize("path", PUBLIC, ids=[p.name for p in PUBLIC])
def test_public_locks_read_as_conda_lock_reads_them(path: Path) -> None:
    try:
        parse_conda_lock_file(path)
    except Exception as exc:  # conda-lock raises YAML's and pydantic's own errors
        assert "\n@EXPLICIT\n" in path.read_text(), f"conda-lock refuses it: {exc}"
        with pytest.raises(EnvassayError, match=r"an @EXPLICIT lock .* not conda-lock's unified"):
            read_lock(path)
        return
    reading = assert_same_reading(path)
    assert reading["packages"]
