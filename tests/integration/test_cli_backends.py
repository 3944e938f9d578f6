"""The conda, mamba and micromamba backends through the real `envassay` command, with
stand-in executables on PATH (tests/fake_tools.py): fake_micromamba, fake_conda and
fake_mamba record how they were called, then create the env for real against the
local test channel, or fail with a real tool's recorded output."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from envassay.command import run
from envassay.run.noxargs import pytest_args
from envassay.store import MARKER
from envassay_testing.wheels import make_wheel
from tests.conftest import Project
from tests.fake_tools import RECORDED_FAILURES, FakeTool, install_fake_tool
from tests.integration.envassay_cli import envassay, junit_outcomes, process_alive

# Where a real tool could be found besides PATH: cleared, so only the stand-ins are seen.
TOOL_VARIABLES = ("MAMBA_EXE", "CONDA_EXE", "ENVASSAY_BACKEND")


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    path = tmp_path / "bin"
    path.mkdir()
    return path


@pytest.fixture
def env(envassay_env: dict[str, str], bin_dir: Path) -> dict[str, str]:
    """`envassay` sees the stand-ins in ``bin_dir`` first and no real tool's variables."""
    result = {k: v for k, v in envassay_env.items() if k not in TOOL_VARIABLES}
    result["PATH"] = f"{bin_dir}{os.pathsep}{envassay_env.get('PATH', '')}"
    return result


def store_prefix(store_home: Path, line: str) -> Path:
    prefix = Path(line.strip().rsplit(": ", 1)[1])
    assert prefix.parent == store_home / "envs"
    assert (prefix / MARKER).is_file()
    return prefix


def python_in(prefix: Path, code: str) -> str:
    result = run([prefix / "bin" / "python", "-c", code])
    assert result.ok, result.describe()
    return result.stdout.strip()


# ------------------------------------------------------------------ end to end


@pytest.mark.channel
def test_micromamba_check_end_to_end_then_reuse(
    project: Project, env: dict[str, str], bin_dir: Path, store_home: Path
) -> None:
    fake_micromamba = install_fake_tool(bin_dir, "micromamba")
    wheels = project.root / "envs" / "wheels"
    make_wheel(wheels, "extra-tool", "1.0", files={"extra_tool.py": "VALUE = 42\n"})
    spec = project.spec(
        "via-micromamba",
        ["python=3.11", "numpy>=1.24,<2", "pyyaml"],
        pip=["--no-index", "--find-links ./wheels", "extra-tool==1.0"],
    )
    xml = project.root / "junit.xml"
    first = envassay(
        "check", spec, "--backend", "micromamba", "--junitxml", xml, env=env, cwd=project.root
    )
    assert first.returncode == 0, first.stdout + first.stderr
    items = junit_outcomes(xml)
    for name in ("create[native]", "import[numpy]", "import[pyyaml]", "import[extra-tool]"):
        assert items[name][0] == "passed", (name, items[name])

    [call] = fake_micromamba.creates()
    argv = call["argv"]
    prefix = Path(argv[4])
    assert prefix.parent == store_home / "envs" and "-micromamba-" in prefix.name
    env_file = argv[6]
    assert argv == [  # the spec's channels in the file, by micromamba's own rules
        str(fake_micromamba.path),
        *("create", "-y", "-p", str(prefix), "-f", env_file),
    ]
    assert Path(call["cwd"]) == spec.parent
    assert call["env"]["PIP_NO_INPUT"] == "1" and "CONDA_ALWAYS_YES" not in call["env"]
    given = yaml.safe_load(call["inputs"][env_file])
    assert given["channels"] == [project.channel.url]
    assert given["dependencies"] == [
        "python=3.11",
        "numpy>=1.24,<2",
        "pyyaml",
        "pip",
        {"pip": ["--no-index", f"--find-links {wheels}", "extra-tool==1.0"]},
    ]
    assert python_in(prefix, "import extra_tool; print(extra_tool.VALUE)") == "42"

    calls = len(fake_micromamba.calls())
    again = envassay(
        "check", spec, "--backend", "micromamba", "--junitxml", xml, env=env, cwd=project.root
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert junit_outcomes(xml)["create[native]"][0] == "passed"
    assert len(fake_micromamba.calls()) == calls  # warm: not even `micromamba --version`


@pytest.mark.channel
def test_conda_chosen_by_environment_variable(
    project: Project, env: dict[str, str], bin_dir: Path, store_home: Path
) -> None:
    fake_conda = install_fake_tool(bin_dir, "conda")
    spec = project.spec("via-conda", ["python=3.11", "six"])
    result = envassay("create", spec, env={**env, "ENVASSAY_BACKEND": "conda"}, cwd=project.root)
    assert result.ok, result.describe()
    prefix = store_prefix(store_home, result.stdout)
    assert "-conda-" in prefix.name
    [call] = fake_conda.creates()
    env_file = call["argv"][-1]
    assert call["argv"] == [
        str(fake_conda.path),
        "env",
        "create",
        "-p",
        str(prefix),
        "-f",
        env_file,
    ]
    assert call["env"]["CONDA_ALWAYS_YES"] == "true"
    assert Path(call["cwd"]) == spec.parent
    given = yaml.safe_load(call["inputs"][env_file])
    assert given == {
        "channels": [project.channel.url, "nodefaults"],
        "dependencies": ["python=3.11", "six"],
    }
    assert python_in(prefix, "import six, sys; print(sys.prefix)") == str(prefix)
    marker = json.loads((prefix / MARKER).read_text())
    assert marker["backend"] == "conda"
    assert marker["notes"][0].startswith(f"created by conda 24.7.1 ({fake_conda.path})")


@pytest.mark.channel
def test_config_backend_and_auto(
    project: Project, env: dict[str, str], bin_dir: Path, tmp_path: Path
) -> None:
    store_home = tmp_path / "own-store"  # `envs prune` below must not touch other tests' envs
    env = {**env, "ENVASSAY_HOME": str(store_home)}
    fake_mamba = install_fake_tool(bin_dir, "mamba", version="mamba1")
    spec = project.spec("via-config", ["python=3.11", "six"])
    project.settings('backend = "mamba"')
    result = envassay("create", spec, env=env, cwd=project.root)
    assert result.ok, result.describe()
    [call] = fake_mamba.creates()
    assert call["argv"][1:4] == ["env", "create", "-p"]  # mamba 1.x: conda's arguments

    fake_conda = install_fake_tool(bin_dir, "conda")
    fake_micromamba = install_fake_tool(bin_dir, "micromamba")
    project.settings('backend = "auto"')
    result = envassay("create", spec, env=env, cwd=project.root)
    assert result.ok, result.describe()
    auto = store_prefix(store_home, result.stdout)
    assert "-micromamba-" in auto.name
    assert len(fake_micromamba.creates()) == 1
    assert fake_conda.calls() == [] and len(fake_mamba.creates()) == 1

    # --backend beats the configuration; `envs prune` keeps what the configuration uses.
    result = envassay("create", spec, "--backend", "rattler", env=env, cwd=project.root)
    assert result.ok and "-rattler-" in result.stdout
    pruned = envassay("envs", "prune", env=env, cwd=project.root)
    assert pruned.ok and "2 environment(s) removed" in pruned.stdout, pruned.stdout
    assert [p.name for p in (store_home / "envs").iterdir()] == [auto.name]


@pytest.mark.channel
def test_lock_given_to_micromamba_as_is_and_to_conda_as_explicit(
    project: Project, env: dict[str, str], bin_dir: Path, store_home: Path
) -> None:
    fake_micromamba = install_fake_tool(bin_dir, "micromamba")
    fake_conda = install_fake_tool(bin_dir, "conda")
    wheels = project.root / "envs" / "wheels"
    make_wheel(wheels, "locked-tool", "2.0", files={"locked_tool.py": "VALUE = 7\n"})
    spec = project.spec(
        "locked", ["python=3.11", "six"], pip=["--no-index", "--find-links ./wheels", "locked-tool"]
    )
    locked = envassay("lock", spec, env=env, cwd=project.root)
    assert locked.ok, locked.describe()
    lock_path = spec.with_name("locked.conda-lock.yml")

    made = envassay("create", spec, "--backend", "micromamba", env=env, cwd=project.root)
    assert made.ok, made.describe()
    prefix = store_prefix(store_home, made.stdout)
    [call] = fake_micromamba.creates()
    assert call["argv"] == [
        *(str(fake_micromamba.path), "create", "-y", "-p", str(prefix), "-f", str(lock_path))
    ]
    assert Path(call["cwd"]) == lock_path.parent
    assert python_in(prefix, "import locked_tool; print(locked_tool.VALUE)") == "7"

    made = envassay("create", spec, "--backend", "conda", env=env, cwd=project.root)
    assert made.ok, made.describe()
    prefix = store_prefix(store_home, made.stdout)
    [call] = fake_conda.creates()
    explicit = call["argv"][-1]
    assert call["argv"] == [
        *(str(fake_conda.path), "create", "-y", "-p", str(prefix), "--file", explicit)
    ]
    lines = call["inputs"][explicit].splitlines()
    packages = lines[lines.index("@EXPLICIT") + 1 :]
    assert len(packages) >= 3 and all(
        p.startswith(project.channel.url) and "#" in p for p in packages
    )
    names = [p.rsplit("/", 1)[1].rsplit("-", 2)[0] for p in packages]
    assert names.index("python") < names.index("six")  # what it depends on comes first
    # conda installs no pip entries from an explicit file: envassay does, after it.
    assert "pip installing 1 locked distribution(s)" in made.stderr
    assert python_in(prefix, "import locked_tool; print(locked_tool.VALUE)") == "7"


# ------------------------------------------------------------------ failures


@pytest.fixture
def offline_project(tmp_path: Path) -> Path:
    """A project whose spec names a channel that is never reached (the tools fail first)."""
    root = tmp_path / "project"
    (root / "envs").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[tool.envassay]\n")
    (root / "envs" / "broken.yml").write_text(
        "name: broken\nchannels: [conda-forge]\ndependencies:\n  - python=3.12.9\n"
    )
    return root


@pytest.mark.parametrize(
    ("tool", "version", "recorded", "code", "line"),
    [
        ("micromamba", None, "micromamba2-missing", 2, "cannot solve (micromamba 2.0.5): "),
        ("micromamba", "micromamba1", "micromamba1-nothing-provides", 2, "cannot solve"),
        ("conda", None, "conda-libmamba-unsatisfiable", 2, "cannot solve (conda 24.7.1): "),
        ("mamba", "mamba1", "conda-packages-not-found", 2, "PackagesNotFoundError"),
        ("conda", None, "conda-pip-failed", 2, "pip could not resolve the pip: section"),
        ("conda", None, "conda-http-error", 2, "/conda-forge: CondaHTTPError"),
        ("micromamba", None, "micromamba2-permission", 1, "failed (exit 1)"),
    ],
)
def test_failures_shown_as_printed_and_mapped_to_exit_codes(
    offline_project: Path,
    env: dict[str, str],
    bin_dir: Path,
    tmp_path: Path,
    tool: str,
    version: str | None,
    recorded: str,
    code: int,
    line: str,
) -> None:
    output = RECORDED_FAILURES[recorded]
    fake = install_fake_tool(bin_dir, tool, version=version, failure=output)
    store = tmp_path / "store"
    env = {**env, "ENVASSAY_HOME": str(store)}
    result = envassay("create", "envs/broken.yml", "--backend", tool, env=env, cwd=offline_project)
    assert result.returncode == code, result.stdout + result.stderr
    [call] = fake.creates()
    text = result.stderr
    assert f"$ {shlex.join(call['argv'])}" in text  # the command line
    assert f"(in {offline_project / 'envs'};" in text
    for printed in (output.stdout, output.stderr):  # what it printed, as printed
        assert printed.strip() in text
    last = [x for x in text.splitlines() if x.startswith("envassay: ")][-1]
    prefix = "envassay: error: envs/broken.yml: " if code == 2 else "envassay: failed: "
    assert last.startswith(prefix) and line in last, last
    assert not list((store / "envs").iterdir())  # nothing half-made is kept


def test_solver_failure_in_check_is_a_collection_error_with_the_output(
    offline_project: Path, env: dict[str, str], bin_dir: Path
) -> None:
    output = RECORDED_FAILURES["micromamba2-missing"]
    install_fake_tool(bin_dir, "micromamba", failure=output)
    result = envassay(
        "check", "envs/broken.yml", "--backend", "micromamba", env=env, cwd=offline_project
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert output.stderr.strip() in result.stdout
    assert "cannot solve (micromamba 2.0.5)" in result.stdout


def test_missing_backend_is_one_line(
    offline_project: Path, env: dict[str, str], bin_dir: Path
) -> None:
    result = envassay(
        "create",
        "envs/broken.yml",
        "--backend",
        "micromamba",
        env={**env, "PATH": str(bin_dir)},
        cwd=offline_project,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(
        "envassay: error: backend micromamba: no micromamba executable found "
        f"(looked at $MAMBA_EXE (unset); PATH={bin_dir}) (install micromamba"
    )


def test_killed_envassay_takes_the_tool_with_it(
    offline_project: Path, env: dict[str, str], bin_dir: Path
) -> None:
    fake = install_fake_tool(bin_dir, "micromamba", hang=True)
    creator = subprocess.Popen(
        [sys.executable, "-m", "envassay", "create", "envs/broken.yml", "--backend", "micromamba"],
        env=env,
        cwd=offline_project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        pid = _wait_for_create(fake)
        creator.send_signal(signal.SIGKILL)
        creator.wait()
        deadline = time.monotonic() + 10
        while process_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not process_alive(pid), "the tool outlived the killed envassay"
    finally:
        creator.kill()


def _wait_for_create(fake: FakeTool) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if creates := fake.creates():
            return int(creates[0]["pid"])
        time.sleep(0.05)
    raise AssertionError("the stand-in was never asked to create")


def test_nox_env_sessions_translate_backend() -> None:
    assert pytest_args(["--backend", "micromamba", "-x"]) == [
        "--envassay-backend",
        "micromamba",
        "-x",
    ]
    assert pytest_args(["--backend=conda", "--junitxml=e.xml"]) == [
        "--envassay-backend",
        "conda",
        "--junitxml=e.xml",
    ]
    assert pytest_args(["--envassay-backend", "mamba"]) == ["--envassay-backend", "mamba"]
    assert pytest_args(["-k", "x", "--", "--backend"]) == ["-k", "x", "--", "--backend"]
