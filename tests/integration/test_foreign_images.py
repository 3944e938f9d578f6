"""Images envassay did not build, judged on what they hold (issue 24).

`envassay check --image REF` is the "verify a base image before release" use. Each image
here is real and built locally: Debian's own python3 with Debian's pip and setuptools (the
system interpreter, and a venv over it), a miniconda-family image
(envassay_testing.condaimage: conda installed into a venv, an empty conda-meta), and an
image envassay built from a spec. Against `python=3.11, pip, setuptools` none may fail an
import, pin or health item; against `python=3.12` the python pin must fail, naming the
interpreter and prefix it judged.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from envassay.docker import Engine, shared_engine
from tests.conftest import Project
from tests.integration.envassay_cli import check, envassay

JUDGED = ("import[", "pin[", "health[")
# Debian's archive, as the base image's apt sees it (the build uses the host network).
DEBIAN_SYSTEM = """\
FROM {base}
RUN apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \\
        --no-install-recommends python3-pip python3-setuptools \\
    && python3 -m venv --system-site-packages /opt/venv \\
    && rm -rf /opt/conda /var/lib/apt/lists/*
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
"""
VENV_ON_PATH = "FROM {base}\nENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/bin:/bin\n"


def build(engine: Engine, dockerfile: str, tmp_path: Path, name: str) -> str:
    context = tmp_path / f"{name}-{uuid.uuid4().hex[:8]}"
    context.mkdir()
    (context / "Dockerfile").write_text(dockerfile)
    tag = f"envassay-test/{name}:{context.name}"
    engine.build(context, tag)
    return tag


@pytest.fixture(scope="module")
def debian_images(
    docker_engine: Engine, base_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """Debian's system python3 (pip and setuptools from Debian's archive), and a venv on it."""
    tmp = tmp_path_factory.mktemp("debian")
    system = build(docker_engine, DEBIAN_SYSTEM.format(base=base_image), tmp, "debian-system")
    venv = build(docker_engine, VENV_ON_PATH.format(base=system), tmp, "debian-venv")
    yield {"system": system, "venv": venv}
    for tag in (venv, system):
        docker_engine.remove_image(tag)


def judged_items(
    project: Project, env: dict[str, str], image: str, python: str
) -> tuple[dict[str, tuple[str, str]], str]:
    spec = project.spec(f"img{python.replace('.', '')}", [f"python={python}", "pip", "setuptools"])
    _code, items, output = check(project, env, "--target", "docker", "--image", image, spec)
    judged = {name: item for name, item in items.items() if name.startswith(JUDGED)}
    assert {"pin[pip]", "pin[setuptools]", "import[setuptools]", "health[pip]"} <= set(judged)
    return judged, output


def assert_distributions_are_pips(project: Project, env: dict[str, str], image: str) -> None:
    """The distributions the probe found (which answer the pins) are those `pip list` lists
    in the same image, at the same versions."""
    probed = envassay("probe", f"docker://{image}", "--json", env=env, cwd=project.root)
    assert probed.ok, probed.describe()
    found = {
        canonicalize_name(d["name"]): d["version"]
        for d in json.loads(probed.stdout)["distributions"]
    }
    listed = shared_engine().run(image, ["python3", "-m", "pip", "list", "--format", "json"])
    assert listed.ok, listed.describe()
    pips = {canonicalize_name(d["name"]): d["version"] for d in json.loads(listed.stdout)}
    assert found == pips


def assert_judged_on_what_it_holds(
    project: Project,
    env: dict[str, str],
    image: str,
    prefix: str,
    meta: str = "no conda-meta",
    pip_check: str = "",
) -> None:
    """No failed import, pin or health item for python=3.11; a failed python pin for 3.12.
    ``pip_check``: what `pip check` itself says is broken in the image, which health[pip]
    must then say too (and nothing else)."""
    judged, output = judged_items(project, env, image, "3.11")
    failures = {name: item for name, item in judged.items() if item[0] != "passed"}
    if pip_check:
        outcome, message = failures.pop("health[pip]")
        for line in pip_check.splitlines():  # "conda 26.7.1 requires menuinst, which is ..."
            assert line.split(",")[0].split(" requires ")[1] in message, (line, message)
    assert not failures, output
    # Every run names the interpreter and the prefix it judged, below the table.
    assert f"(prefix {prefix}, {meta}" in output, output
    assert_distributions_are_pips(project, env, image)
    judged, output = judged_items(project, env, image, "3.12")
    outcome, message = judged["pin[python=3.12]"]
    assert outcome == "failure" and "3.11" in message, message


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize(("kind", "prefix"), [("system", "/usr"), ("venv", "/opt/venv")])
def test_debian_python_is_judged_on_what_it_holds(
    project: Project,
    envassay_env: dict[str, str],
    debian_images: dict[str, str],
    kind: str,
    prefix: str,
) -> None:
    assert_judged_on_what_it_holds(project, envassay_env, debian_images[kind], prefix)


@pytest.mark.docker
@pytest.mark.slow
def test_miniconda_family_image_is_judged_on_what_it_holds(
    project: Project, envassay_env: dict[str, str], docker_engine: Engine, base_image: str
) -> None:
    from envassay_testing.condaimage import WHEELS_VARIABLE, conda_wheels_dir, ensure_conda_image

    wheels = conda_wheels_dir()
    if wheels is None:
        reason = f"no conda wheel folder: set {WHEELS_VARIABLE} (see tests/realconda.py)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and the miniconda-family image cannot be built: {reason}")
        pytest.skip(reason)
    image = ensure_conda_image("26.7.1", docker_engine, wheels=wheels).ref
    # The stand-in lacks the conda dependencies that exist only on conda channels (menuinst):
    # pip check says so, and so must health[pip]; nothing else may fail.
    pip_check = docker_engine.run(image, ["python", "-m", "pip", "check"]).stdout.strip()
    assert "menuinst" in pip_check
    assert_judged_on_what_it_holds(
        project, envassay_env, image, "/opt/conda", "conda-meta without records", pip_check
    )


@pytest.mark.docker
@pytest.mark.channel
@pytest.mark.slow
def test_image_envassay_built_is_judged_on_what_it_holds(
    project: Project, envassay_env: dict[str, str], docker_engine: Engine, base_image: str
) -> None:
    project.settings(f'[tool.envassay.envs.built]\nbuilder-image = "{base_image}"')
    spec = project.spec("built", ["python=3.11", "pip", "setuptools"])
    built = envassay("build", spec, "--json", env=envassay_env, cwd=project.root)
    assert built.ok, built.describe()
    image = json.loads(built.stdout)["ref"]
    prefix = docker_engine.image(image).labels["io.envassay.prefix"]  # type: ignore[union-attr]
    assert_judged_on_what_it_holds(project, envassay_env, image, prefix, "conda-meta, ")
