"""Spec lines that pip and conda read one way and envassay used to refuse (issue 15):
a path-like pip line (a public 3D-vision spec installs `submodules/diff-gaussian-rasterization`
from a git submodule) and a name with spaces (micromamba's own tests use one). Both go
through the real `envassay check`: a real solve against the local channel, then a real pip
building the directory with its own in-tree PEP 517 backend (no network, no setuptools)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from envassay.command import run
from tests.conftest import Project
from tests.integration.envassay_cli import envassay, junit_outcomes

# A PEP 517 backend inside the project (`backend-path`): pip needs nothing from an index.
BACKEND = """
import base64, hashlib, zipfile

NAME, VERSION = "diff_gaussian_rasterization", "0.0.1"
FILES = {"diff_gaussian_rasterization/__init__.py": "RASTERIZE = 'ok'\\n"}


def _digest(data):
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    info = f"{NAME}-{VERSION}.dist-info"
    files = {k: v.encode() for k, v in FILES.items()}
    files[f"{info}/METADATA"] = (
        f"Metadata-Version: 2.1\\nName: diff-gaussian-rasterization\\nVersion: {VERSION}\\n"
    ).encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"
    record = "".join(f"{p},sha256={_digest(d)},{len(d)}\\n" for p, d in files.items())
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\\n").encode()
    name = f"{NAME}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(f"{wheel_directory}/{name}", "w") as wheel:
        for path, data in files.items():
            wheel.writestr(path, data)
    return name
"""
PYPROJECT = """
[build-system]
requires = []
build-backend = "backend"
backend-path = ["."]
"""


def make_submodule(root: Path) -> Path:
    package = root / "submodules" / "diff-gaussian-rasterization"
    package.mkdir(parents=True)
    (package / "pyproject.toml").write_text(PYPROJECT)
    (package / "backend.py").write_text(BACKEND)
    return package


@pytest.mark.channel
def test_path_like_pip_line_and_spaced_name(project: Project, envassay_env: dict[str, str]) -> None:
    make_submodule(project.root / "envs")
    spec = project.root / "envs" / "splatting.yml"
    spec.write_text(
        textwrap.dedent(
            f"""\
            name: test env with spaces
            channels: [{project.channel.url}]
            dependencies:
              - python=3.11
              - pip:
                - --no-index
                - submodules/diff-gaussian-rasterization
            """
        )
    )
    shown = envassay("spec", spec, "--json", env=envassay_env, cwd=project.root)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    data = json.loads(shown.stdout)
    assert data["name"] == "test env with spaces"
    assert [(p["text"], p["kind"]) for p in data["pip"]] == [
        ("--no-index", "option"),
        ("submodules/diff-gaussian-rasterization", "path"),
    ]

    xml = project.root / "junit.xml"
    checked = envassay("check", spec, "--junitxml", xml, env=envassay_env, cwd=project.root)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    items = junit_outcomes(xml)
    assert items["create[native]"][0] == "passed"
    assert items["health[pip]"][0] == "passed"

    created = envassay("create", spec, env=envassay_env, cwd=project.root)
    assert created.returncode == 0, created.stdout + created.stderr
    prefix = Path(created.stdout.strip().splitlines()[-1].rsplit(": ", 1)[1])
    assert " " not in prefix.name  # the name labels the env; the store path is a slug
    code = (
        "import json, importlib.metadata as m, diff_gaussian_rasterization as d;"
        "print(d.RASTERIZE, json.loads(m.distribution('diff-gaussian-rasterization')"
        ".read_text('direct_url.json'))['url'])"
    )
    result = run([prefix / "bin" / "python", "-c", code])
    assert result.ok, result.describe()
    value, url = result.stdout.split()
    assert value == "ok"
    # pip recorded it as installed from the local directory, as pip does for a path.
    assert url == (project.root / "envs" / "submodules" / "diff-gaussian-rasterization").as_uri()
