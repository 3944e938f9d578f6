"""The Dockerfile's CREATOR=conda path for real: a miniconda-family builder image made here
per conda version (envassay_testing.condaimage: conda's own release, installed from its
wheel into the local Debian base image), the env created in it by that conda from the
spec, then from its lock, and the suite and the image checks passing inside the image.

The oldest and the newest conda of ../shared/tools/conda: 24.7.1 reads ``nodefaults``
in an environment file as "no default channels"; 26.7.1 fetches it as a channel, so
create.sh gives it ``conda create --file ENV.yml --override-channels -c ...`` instead.
Without the conda wheels (``$ENVASSAY_CONDA_WHEELS``, else ../shared/tools/conda) these
tests skip, or fail under CI=true, as the docker tests do without an engine.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from envassay.docker import Engine
from envassay_testing.wheels import make_wheel
from tests.conftest import Project
from tests.integration.envassay_cli import envassay, junit_messages, junit_outcomes

pytestmark = [pytest.mark.docker, pytest.mark.channel, pytest.mark.slow]

VERSIONS = ("24.7.1", "26.7.1")  # the oldest and the newest

# A spec as users write them: nodefaults, a channel::pkg pin, a pip: section with a
# local wheel. CHANNEL is the local test channel's URL.
SPEC = """\
name: dconda
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
"""
PASSING = (
    "create[docker]",
    "import[python]",
    "import[pyyaml]",
    "import[six]",
    "import[requests]",
    "import[localwheel]",
    "pin[python=3.11]",
    "pin[pyyaml>=6]",
    "pin[localwheel==1.0]",
    "health[pip]",
    "image[user]",
    "image[clean]",
    "image[entrypoint]",
    "image[labels]",
)


@pytest.fixture(scope="session")
def conda_wheels() -> Path:
    from envassay_testing.condaimage import WHEELS_VARIABLE, conda_wheels_dir

    folder = conda_wheels_dir()
    if folder is None:
        reason = (
            f"no conda wheel folder: set {WHEELS_VARIABLE} to a folder holding "
            "conda-VERSION-py3-none-any.whl (conda built from its release tag)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and the real-conda docker tests cannot run: {reason}")
        pytest.skip(reason)
    return folder


@pytest.fixture(scope="session", params=VERSIONS, ids=[f"conda-{v}" for v in VERSIONS])
def miniconda_image(
    request: pytest.FixtureRequest, docker_engine: Engine, conda_wheels: Path, base_image: str
) -> tuple[str, str]:
    """(version, ref) of the builder image of that conda: made once, then kept."""
    from envassay_testing.condaimage import ensure_conda_image

    version = str(request.param)
    image = ensure_conda_image(version, docker_engine, wheels=conda_wheels)
    return version, image.ref


class DockerCondaProject:
    """A throwaway project whose images' envs are made by one real conda."""

    def __init__(self, project: Project, env: dict[str, str], builder: str, runtime: str):
        self.root = project.root
        self.env = env
        self.images = ("--builder-image", builder, "--runtime-image", runtime)
        make_wheel(
            self.root / "envs" / "wheels", "localwheel", "1.0", files={"localwheel.py": "X=1\n"}
        )
        self.spec = project.spec_text("dconda", SPEC)

    def run(self, *args: str | Path) -> tuple[int, str]:
        result = envassay(*args, env=self.env, cwd=self.root)
        return result.returncode, result.stdout + result.stderr

    def build(self) -> tuple[int, str, str]:
        result = envassay("build", self.spec, *self.images, "--json", env=self.env, cwd=self.root)
        ref = json.loads(result.stdout)["ref"] if result.ok else ""
        return result.returncode, ref, result.stdout + result.stderr

    def check(self) -> tuple[int, dict[str, tuple[str, str]], str]:
        xml = self.root / f"junit-{uuid.uuid4().hex[:8]}.xml"
        code, out = self.run("check", "--target", "docker", self.spec, *self.images,
                             "--junitxml", xml)  # fmt: skip
        items = junit_outcomes(xml) if xml.exists() else {}
        for name, message in (junit_messages(xml) if xml.exists() else {}).items():
            if name in items:
                items[name] = (items[name][0], message)
        return code, items, out


@pytest.fixture
def conda_project(
    project: Project,
    envassay_env: dict[str, str],
    miniconda_image: tuple[str, str],
    base_image: str,
) -> DockerCondaProject:
    return DockerCondaProject(project, envassay_env, miniconda_image[1], base_image)


def assert_all_pass(
    items: dict[str, tuple[str, str]], out: str, *extra: str, skipped: tuple[str, ...] = ()
) -> None:
    """Every item passed, ``PASSING`` and ``extra`` among them; but image[size] (no
    budget) and ``skipped``, which were skipped."""
    channel_pin = next((n for n in items if n.startswith("pin[") and "::six" in n), None)
    assert channel_pin is not None, (sorted(items), out)
    for name in (*PASSING, channel_pin, *extra):
        assert items.get(name, ("missing", ""))[0] == "passed", (name, items.get(name), out)
    for name in ("image[size]", *skipped):
        assert items.get(name, ("missing", ""))[0] == "skipped", (name, items.get(name), out)
    others = {n: v for n, v in items.items() if v[0] != "passed" and v[0] != "skipped"}
    assert not others, (others, out)
    assert len([v for v in items.values() if v[0] == "skipped"]) == 1 + len(skipped), items


def test_spec_builds_with_conda_and_checks_inside(
    conda_project: DockerCondaProject, miniconda_image: tuple[str, str], engine: Engine
) -> None:
    version, builder = miniconda_image
    code, ref, out = conda_project.build()
    assert code == 0, out
    assert ref.startswith("envassay/dconda:"), out
    if "envassay-create: [" in out:  # built now (an earlier run may have left it behind)
        assert f"conda {version}" in out, out  # create.sh said which conda it runs
        command = "conda create --yes" if version >= "26" else "conda env create"
        assert f"running {command}" in out, out
    info = engine.image(ref)
    assert info is not None and info.user == "1000"
    assert info.labels["io.envassay.creator"] == "conda"
    assert info.labels["io.envassay.builder-image"] == builder

    code, items, out = conda_project.check()
    assert code == 0, out
    assert items["create[docker]"] == ("passed", f"reused (no build): {ref}"), out
    assert_all_pass(items, out, skipped=("lock[fresh]", "lock[match]"))  # no lock yet


def test_lock_builds_with_conda_and_checks_inside(
    conda_project: DockerCondaProject, engine: Engine
) -> None:
    code, out = conda_project.run("lock", conda_project.spec)
    assert code == 0, out
    code, items, out = conda_project.check()
    assert code == 0, out
    created = items["create[docker]"][1]
    assert "from dconda.conda-lock.yml" in created, created
    assert_all_pass(items, out, "lock[fresh]", "lock[match]")
    info = engine.image(created.rsplit(": ", 1)[1])
    assert info is not None and info.labels["io.envassay.lock.hash"]


def test_unreachable_channel_in_the_builder_is_exit_2_naming_it(
    conda_project: DockerCondaProject, engine: Engine
) -> None:
    """As natively: a channel that cannot be read is bad input (exit 2), the one line
    saying what conda said, from the builder stage."""
    channel = "http://127.0.0.1:9/nochannel"
    conda_project.spec.write_text(
        f"name: dconda\nchannels: [{channel}]\ndependencies: [python=3.11, six]\n"
    )
    code, ref, out = conda_project.build()
    assert code == 2 and not ref, out
    line = out.strip().splitlines()[-1]
    assert line.startswith("envassay: error: ") and "(create.sh)" in line, out
    assert "127.0.0.1:9/nochannel" in line and "full build log:" in line, line
