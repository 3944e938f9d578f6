"""The conda/mamba/micromamba command lines, exactly: argv, environment, cwd, input files.

One case per flavour (conda, mamba 1.x, mamba 2.x, micromamba) and input kind
(spec, lock). Nothing is run here; tests/integration/test_cli_backends.py runs
the same through stand-in executables.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from envassay.create.backends.base import CreateRequest
from envassay.create.backends.commands import COMMON_ENV, Invocation
from envassay.create.backends.conda import (
    CondaBackend,
    dependency_order,
    environment_file,
    explicit_file,
    pip_lines,
)
from envassay.create.backends.tools import Tool, parse_version
from envassay.lock.format import LockedEnv, LockedPackage
from envassay.spec.environment import EnvSpec, load_spec

CONDA = Tool("conda", Path("/opt/conda/bin/conda"), "24.7.1")
CONDA26 = Tool("conda", Path("/opt/conda/bin/conda"), "26.7.1")
MAMBA1 = Tool("mamba", Path("/opt/forge/bin/mamba"), "1.5.8")
MAMBA2 = Tool("mamba", Path("/opt/forge/bin/mamba"), "2.0.5")
MICROMAMBA = Tool("micromamba", Path("/usr/local/bin/micromamba"), "2.0.5")
PIP_ENV = {"PIP_NO_INPUT": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
CONDA_ENV = {**PIP_ENV, "CONDA_ALWAYS_YES": "true"}


def backend(tool: Tool) -> CondaBackend:
    found = CondaBackend(tool.flavour, tool.path)
    found._tool = tool  # the version is what a real `--version` said
    return found


@pytest.fixture
def spec(tmp_path: Path) -> EnvSpec:
    project = tmp_path / "project"
    (project / "envs" / "wheels").mkdir(parents=True)
    (project / "envs" / "reqs.txt").write_text("six\n")
    (project / "envs" / "pkg").mkdir()
    path = project / "envs" / "train.yml"
    path.write_text(
        """\
name: train
channels: [conda-forge, bioconda]
dependencies:
  - python=3.11
  - "numpy>=1.24,<2"
  - conda-forge::pyyaml
  - pip:
    - --no-index
    - --find-links ./wheels
    - -r reqs.txt
    - -e ./pkg
    - "requests>=2.31"
variables:
  OMP_NUM_THREADS: "1"
"""
    )
    return load_spec(path)


def request(spec: EnvSpec, tmp: Path, locked: LockedEnv | None = None) -> CreateRequest:
    return CreateRequest(
        spec,
        tmp / "store/envs/train-x",
        spec.channels,
        tmp / "cache",
        None,
        locked,
        file_channels=spec.channels,
    )


@pytest.mark.parametrize(
    ("tool", "argv", "env"),
    [
        (
            CONDA,
            ["/opt/conda/bin/conda", "env", "create", "-p", "{prefix}", "-f", "{file}"],
            CONDA_ENV,
        ),
        (
            CONDA26,  # its `env create` fetches `nodefaults`: `conda create` reads the file
            ["/opt/conda/bin/conda", "create", "-y", "-p", "{prefix}", "--file", "{file}",
             "--override-channels", "-c", "conda-forge", "-c", "bioconda"],
            CONDA_ENV,
        ),
        (
            MAMBA1,
            ["/opt/forge/bin/mamba", "env", "create", "-p", "{prefix}", "-f", "{file}"],
            CONDA_ENV,
        ),
        (
            MAMBA2,
            ["/opt/forge/bin/mamba", "create", "-y", "-p", "{prefix}", "-f", "{file}"],
            PIP_ENV,
        ),
        (
            MICROMAMBA,
            ["/usr/local/bin/micromamba", "create", "-y", "-p", "{prefix}", "-f", "{file}"],
            PIP_ENV,
        ),
    ],
    ids=["conda", "conda26", "mamba1", "mamba2", "micromamba"],
)  # fmt: skip
def test_spec_command_line(
    spec: EnvSpec, tmp_path: Path, tool: Tool, argv: list[str], env: dict[str, str]
) -> None:
    req = request(spec, tmp_path)
    invocation, inputs = backend(tool).plan(req, tmp_path)
    env_file = tmp_path / "environment.yml"
    assert list(inputs) == [env_file]
    expected = [a.format(prefix=req.prefix, file=env_file) for a in argv]
    assert invocation == Invocation(tuple(expected), spec.path.parent, env)
    assert env_file.read_text() == inputs[env_file]
    data = yaml.safe_load(inputs[env_file])
    if "env" in argv:  # conda env create takes no channel options: the file has them
        assert data["channels"] == ["conda-forge", "bioconda", "nodefaults"]
    else:  # conda 26: the effective channels, -c too; libmamba: the spec's, its own rules
        assert data["channels"] == ["conda-forge", "bioconda"]
    assert data["dependencies"][:4] == [
        "python=3.11",
        "numpy>=1.24,<2",
        "conda-forge::pyyaml",
        "pip",
    ]
    assert data["variables"] == {"OMP_NUM_THREADS": "1"}


def test_environment_variables_on_top_of_the_callers() -> None:
    invocation = Invocation(("conda",), Path("/"), {"CONDA_ALWAYS_YES": "true"})
    env = invocation.environ({"PATH": "/bin", "CONDA_ALWAYS_YES": "false"})
    assert env == {"PATH": "/bin", "CONDA_ALWAYS_YES": "true"}
    assert set(COMMON_ENV) == {"PIP_NO_INPUT", "PIP_DISABLE_PIP_VERSION_CHECK"}


def test_pip_section_paths_made_absolute(spec: EnvSpec) -> None:
    base = spec.path.parent
    assert pip_lines(spec) == [
        "--no-index",
        f"--find-links {base / 'wheels'}",
        f"-r {base / 'reqs.txt'}",
        f"-e {base / 'pkg'}",
        "requests>=2.31",
    ]


def test_declared_pip_is_not_added_twice(tmp_path: Path) -> None:
    path = tmp_path / "e.yml"
    path.write_text("channels: [c]\ndependencies: [python, pip, {pip: [six, '--find-links=w']}]\n")
    text = environment_file(load_spec(path), ["c"])
    assert yaml.safe_load(text)["channels"] == ["c"]
    deps = yaml.safe_load(text)["dependencies"]
    assert deps == ["python", "pip", {"pip": ["six", f"--find-links={tmp_path / 'w'}"]}]
    assert text.startswith(f"# Generated by envassay from {path}")


def package(name: str, deps: list[str], md5: str | None = "0" * 32) -> LockedPackage:
    return LockedPackage(
        name=name,
        version="1.0",
        manager="conda",
        platform="linux-64",
        url=f"file:///ch/linux-64/{name}-1.0-0.conda",
        md5=md5,
        sha256="f" * 64,
        dependencies={d: "*" for d in deps},
    )


def locked_env(tmp: Path, pip: list[LockedPackage] | None = None) -> LockedEnv:
    conda = [
        package("zlib", []),
        package("numpy", ["python", "libblas"]),
        package("python", ["zlib"]),
        package("libblas", [], md5=None),
    ]
    return LockedEnv(tmp / "envs/train.conda-lock.yml", "linux-64", conda, pip or [])


def test_lock_command_line_libmamba(spec: EnvSpec, tmp_path: Path) -> None:
    locked = locked_env(tmp_path)
    for tool in (MICROMAMBA, MAMBA2):
        req = request(spec, tmp_path, locked)
        invocation, inputs = backend(tool).plan(req, tmp_path)
        assert inputs == {}  # micromamba reads the conda-lock file itself
        assert invocation.argv == (
            str(tool.path), "create", "-y", "-p", str(req.prefix), "-f", str(locked.lock_path),
        )  # fmt: skip
        assert invocation.cwd == locked.lock_path.parent
        assert invocation.env == PIP_ENV


def test_lock_command_line_conda_gets_an_explicit_file(spec: EnvSpec, tmp_path: Path) -> None:
    locked = locked_env(tmp_path)
    for tool in (CONDA, MAMBA1):
        req = request(spec, tmp_path, locked)
        invocation, inputs = backend(tool).plan(req, tmp_path)
        explicit = tmp_path / "train-linux-64.explicit.txt"
        assert invocation.argv == (
            str(tool.path), "create", "-y", "-p", str(req.prefix), "--file", str(explicit),
        )  # fmt: skip
        assert invocation.cwd == locked.lock_path.parent
        assert invocation.env == CONDA_ENV
        assert inputs == {explicit: explicit.read_text()}


def test_explicit_file_lists_dependencies_first_with_md5(tmp_path: Path) -> None:
    text = explicit_file(locked_env(tmp_path))
    lines = text.splitlines()
    assert lines[2:] == [
        "# platform: linux-64",
        "@EXPLICIT",
        "file:///ch/linux-64/libblas-1.0-0.conda",
        "file:///ch/linux-64/zlib-1.0-0.conda#" + "0" * 32,
        "file:///ch/linux-64/python-1.0-0.conda#" + "0" * 32,
        "file:///ch/linux-64/numpy-1.0-0.conda#" + "0" * 32,
    ]


def test_dependency_order_survives_cycles() -> None:
    a, b = package("a", ["b"]), package("b", ["a"])
    assert [p.name for p in dependency_order([a, b])] == ["b", "a"]


@pytest.mark.parametrize(
    ("output", "version"),
    [
        ("conda 24.7.1\n", "24.7.1"),
        ("mamba 1.5.8\nconda 24.3.0\n", "1.5.8"),
        ("2.0.5\n", "2.0.5"),
        ("\n1.5.8\n", "1.5.8"),
        ("micromamba: command not found\n", None),
    ],
)
def test_parse_version(output: str, version: str | None) -> None:
    assert parse_version(output) == version


def test_style_follows_the_version() -> None:
    assert [t.style for t in (CONDA, MAMBA1, MAMBA2, MICROMAMBA)] == [
        "conda",
        "conda",
        "libmamba",
        "libmamba",
    ]


@pytest.mark.parametrize("tool", [CONDA, CONDA26], ids=["conda", "conda26"])
def test_url_channel_pins_mapped_back_for_conda_env_create(tmp_path: Path, tool: Tool) -> None:
    """conda < 26 reads `URL::pkg` in an env file as the channel's name under its alias:
    an rc file ($CONDARC) maps that name back to the URL. conda 26 needs none."""
    path = tmp_path / "env.yml"
    path.write_text(
        "channels: [https://mirror.invalid/private/chan]\n"
        "dependencies: ['https://mirror.invalid/private/chan::six', python]\n"
    )
    spec = load_spec(path)
    req = CreateRequest(spec, tmp_path / "p", spec.channels, tmp_path / "cache", None, None)
    invocation, inputs = backend(tool).plan(req, tmp_path)
    condarc = tmp_path / "condarc"
    if tool is CONDA26:
        assert condarc not in inputs and "CONDARC" not in invocation.env
        return
    assert invocation.env["CONDARC"] == str(condarc)
    assert yaml.safe_load(inputs[condarc]) == {
        "custom_channels": {"chan": "https://mirror.invalid/private"}
    }
