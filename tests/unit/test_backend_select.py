"""Which backend runs: --backend, $ENVASSAY_BACKEND, [tool.envassay] backend, auto; and
where conda, mamba and micromamba are looked for (stand-in executables put on PATH)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from envassay.create.backends import concrete_name, get_backend, resolve_backend
from envassay.create.backends.conda import CondaBackend, classify
from envassay.create.backends.rattler import RattlerBackend
from envassay.create.backends.tools import ToolMissing, find_tool, first_available, search
from envassay.errors import EXIT_USER_ERROR, UserError
from tests.fake_tools import RECORDED_FAILURES, install_fake_tool

NO_TOOLS = {"PATH": "/nonexistent"}


def test_explicit_beats_environment_beats_config() -> None:
    env = {"ENVASSAY_BACKEND": "mamba"}
    assert resolve_backend("conda", "micromamba", env) == "conda"
    assert resolve_backend(None, "micromamba", env) == "mamba"
    assert resolve_backend(None, "micromamba", {}) == "micromamba"
    assert resolve_backend(None, "rattler", {"ENVASSAY_BACKEND": " "}) == "rattler"


@pytest.mark.parametrize(
    ("requested", "env", "where"),
    [
        ("pixi", {}, "--backend"),
        (None, {"ENVASSAY_BACKEND": "pixi"}, "$ENVASSAY_BACKEND"),
    ],
)
def test_unknown_backend_names_the_choices(
    requested: str | None, env: dict[str, str], where: str
) -> None:
    with pytest.raises(UserError) as caught:
        resolve_backend(requested, "rattler", env)
    assert caught.value.render() == (
        f"{where}: Expected backend one of "
        "['auto', 'rattler', 'conda', 'mamba', 'micromamba'], but got 'pixi'"
    )


def test_found_on_path(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    for name in ("conda", "mamba", "micromamba"):
        install_fake_tool(bin_dir, name, version="mamba2" if name == "mamba" else None)
    env = {"PATH": f"/nonexistent:{bin_dir}"}
    for name in ("conda", "mamba", "micromamba"):
        assert search(name, env).found == bin_dir / name
    assert find_tool("micromamba", env).version == "2.0.5"
    assert find_tool("conda", env).version == "24.7.1"
    assert find_tool("mamba", env).style == "libmamba"


def test_environment_variables_before_path(tmp_path: Path) -> None:
    on_path = install_fake_tool(tmp_path / "bin", "micromamba").path
    hooked = install_fake_tool(tmp_path / "hook", "micromamba", version="micromamba1").path
    env = {"PATH": str(on_path.parent), "MAMBA_EXE": str(hooked)}
    found = find_tool("micromamba", env)
    assert (found.path, found.version) == (hooked, "1.5.8")
    # $MAMBA_EXE names a mamba 2 here: not a micromamba, so PATH is next.
    mamba = install_fake_tool(tmp_path / "forge" / "bin", "mamba", version="mamba2").path
    env["MAMBA_EXE"] = str(mamba)
    assert search("micromamba", env).found == on_path
    assert search("mamba", env).found == mamba


def test_conda_exe_and_mamba_beside_it(tmp_path: Path) -> None:
    forge = tmp_path / "miniforge3" / "bin"
    conda = install_fake_tool(forge, "conda").path
    mamba = install_fake_tool(forge, "mamba", version="mamba1").path
    env = {"PATH": "/nonexistent", "CONDA_EXE": str(conda)}
    assert search("conda", env).found == conda
    assert search("mamba", env).found == mamba  # next to $CONDA_EXE: Miniforge's layout
    assert find_tool("mamba", env).style == "conda"  # mamba 1 takes conda's arguments
    assert search("micromamba", env).found is None


def test_a_file_that_is_not_executable_is_not_a_tool(tmp_path: Path) -> None:
    (tmp_path / "micromamba").write_text("#!/bin/sh\n")
    env = {"PATH": str(tmp_path), "MAMBA_EXE": str(tmp_path / "micromamba")}
    assert search("micromamba", env).found is None


@pytest.mark.parametrize(
    ("flavour", "looked"),
    [
        ("micromamba", "$MAMBA_EXE (unset); PATH=/nonexistent"),
        ("mamba", "$MAMBA_EXE (unset); PATH=/nonexistent; $CONDA_EXE (unset)"),
        ("conda", "$CONDA_EXE (unset); PATH=/nonexistent"),
    ],
)
def test_missing_tool_is_one_line_saying_where_and_how(flavour: str, looked: str) -> None:
    with pytest.raises(ToolMissing) as caught:
        find_tool(flavour, NO_TOOLS)  # type: ignore[arg-type]
    line = caught.value.render()
    assert "\n" not in line
    assert line.startswith(f"backend {flavour}: no {flavour} executable found (looked at {looked})")
    assert "--backend rattler" in line
    assert isinstance(caught.value, UserError)  # exit 2
    assert EXIT_USER_ERROR == 2


def test_auto_prefers_micromamba_then_mamba_then_conda(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    env = {"PATH": str(bin_dir)}
    assert first_available(env) is None
    install_fake_tool(bin_dir, "conda")
    assert first_available(env) == "conda"
    install_fake_tool(bin_dir, "mamba", version="mamba2")
    assert first_available(env) == "mamba"
    install_fake_tool(bin_dir, "micromamba")
    assert first_available(env) == "micromamba"


def test_get_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("MAMBA_EXE", "CONDA_EXE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert concrete_name("auto") == "rattler"
    assert isinstance(get_backend("auto"), RattlerBackend)
    with pytest.raises(ToolMissing):
        get_backend("conda")
    fake = install_fake_tool(tmp_path, "micromamba")
    assert concrete_name("auto") == "micromamba"
    backend = get_backend("auto")
    assert isinstance(backend, CondaBackend)
    assert backend.name == "micromamba"
    assert fake.calls() == []  # finding it starts nothing: a warm run asks no version
    assert backend.tool.version == "2.0.5"
    assert [c["argv"][1:] for c in fake.calls()] == [["--version"]]


@pytest.mark.parametrize(
    ("recorded", "kind", "fragment"),
    [
        ("micromamba2-missing", "solve", "python =3.12.9 * does not exist"),
        ("micromamba1-nothing-provides", "solve", "nothing provides requested mamba 0.25.1"),
        ("conda-libmamba-unsatisfiable", "solve", "LibMambaUnsatisfiableError"),
        ("conda-packages-not-found", "solve", "python==3.10.14=h955ad1f_1"),
        ("conda-pip-failed", "pip", "cupcake==12.4.0"),
        ("conda-http-error", "channel", "HTTP 000 CONNECTION FAILED"),
        ("micromamba2-permission", "other", "Permission denied"),
    ],
)
def test_recorded_failures_are_classified(recorded: str, kind: str, fragment: str) -> None:
    output = RECORDED_FAILURES[recorded]
    found, summary = classify(output.stdout + "\n" + output.stderr)
    assert found == kind
    assert fragment in summary
    assert "\n" not in summary


def test_backends_command_reports_each_with_its_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from envassay.cli import main

    for variable in ("MAMBA_EXE", "CONDA_EXE", "ENVASSAY_BACKEND"):
        monkeypatch.delenv(variable, raising=False)
    bin_dir = tmp_path / "bin"
    install_fake_tool(bin_dir, "micromamba", version="micromamba1")
    install_fake_tool(bin_dir, "conda")
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[tool.envassay]\nbackend = "auto"\n')
    assert main(["backends"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["rattler", lines[0].split()[1]]
    assert lines[1].split() == ["micromamba", "1.5.8", str(bin_dir / "micromamba")]
    assert lines[2].split()[:4] == ["mamba", "-", "not", "found:"]
    assert lines[3].split() == ["conda", "24.7.1", str(bin_dir / "conda")]
    assert lines[4] == "in force here: auto (picks micromamba)"
    assert main(["backends", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["in_force"] == "auto"
    assert [b["version"] for b in data["backends"][1:]] == ["1.5.8", None, "24.7.1"]
