"""pip over conda (health[conda-pip] and the pins), and pins without conda records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from envassay.checks import run_all
from envassay.checks.overlap import metadata_name_version, overlaps
from envassay.spec.config import EnvSettings
from envassay.spec.environment import load_spec
from tests.unit.test_checks import dist, record, report, verdicts

SITE = "/env/lib/python3.11/site-packages"
CONDA_YAML = f"{SITE}/PyYAML-6.0.1.dist-info"
PIP_YAML = f"{SITE}/PyYAML-6.0.2.dist-info"


def yaml_record() -> dict[str, Any]:
    return record("pyyaml", "6.0.1", "py311_0", modules=["yaml"]) | {"python_dists": [CONDA_YAML]}


def yaml_dist(version: str, metadata: str, shadows: list[str], installer: str) -> dict[str, Any]:
    return dist("PyYAML", version, installer=installer) | {
        "metadata": metadata,
        "shadows": shadows,
    }


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "env.yml"
    path.write_text(
        "dependencies:\n  - python=3.11\n  - pyyaml=6.0.1\n  - pip:\n    - pyyaml==6.0.2\n"
    )
    return path


@pytest.mark.parametrize(
    ("installed", "imported", "words"),
    [
        # pip uninstalled conda's files and put its own in their place (what create does).
        ([yaml_dist("6.0.2", PIP_YAML, [], "pip")], "6.0.2", "replaced the files of"),
        # pip's on an earlier path (a user site, a .pth): both there, pip's imported.
        (
            [yaml_dist("6.0.2", "/u/PyYAML-6.0.2.dist-info", [CONDA_YAML], "pip")],
            "6.0.2",
            "shadows",
        ),
        # conda's first, pip's later on the path: conda's imported, still broken.
        (
            [yaml_dist("6.0.1", CONDA_YAML, ["/u/PyYAML-6.0.2.dist-info"], "conda")],
            "6.0.1",
            "shadows",
        ),
    ],
)
def test_a_distribution_of_conda_and_pip_fails_naming_both(
    spec: Path, installed: list[dict[str, Any]], imported: str, words: str
) -> None:
    probe = report(
        conda_records=[record("python", "3.11.7", modules=[]), yaml_record()],
        distributions=installed,
    )
    got = verdicts(run_all(load_spec(spec), probe, EnvSettings()))
    outcome, message = got["health[conda-pip]"]
    assert outcome == "failed"
    assert "pyyaml 6.0.1" in message and "PyYAML 6.0.2" in message and words in message
    assert f"Python imports {imported}" in message
    assert got["pin[pyyaml==6.0.2]"][0] == "failed"
    # conda's pin fails when pip's is what imports; health names the other case.
    assert got["pin[pyyaml=6.0.1]"][0] == ("failed" if imported == "6.0.2" else "passed")


def test_conda_alone_passes(spec: Path) -> None:
    probe = report(
        conda_records=[record("python", "3.11.7", modules=[]), yaml_record()],
        distributions=[yaml_dist("6.0.1", CONDA_YAML, [], "conda")],
    )
    assert overlaps(probe) == []
    got = verdicts(run_all(load_spec(spec), probe, EnvSettings()))
    assert got["health[conda-pip]"][0] == "passed"
    assert got["pin[pyyaml=6.0.1]"][0] == "passed"
    assert got["pin[pyyaml==6.0.2]"][0] == "failed"  # 6.0.1 is installed


@pytest.mark.parametrize(
    ("directory", "expected"),
    [
        ("PyYAML-6.0.1.dist-info", ("PyYAML", "6.0.1")),
        ("/x/typing_extensions-4.12.2.dist-info/", ("typing_extensions", "4.12.2")),
        ("six-1.16.0-py3.11.egg-info", ("six", "1.16.0")),
        ("oldfile.egg-info", ("oldfile", "")),
    ],
)
def test_metadata_name_version(directory: str, expected: tuple[str, str]) -> None:
    assert metadata_name_version(directory) == expected


def foreign(python: str, installed: list[dict[str, Any]], conda_meta: bool = False) -> Any:
    interpreter = report().interpreter
    assert interpreter is not None
    doc = {
        "version": python,
        "implementation": "cpython",
        "executable": "/usr/bin/python3",
        "prefix": "/usr",
        "base_prefix": "/usr",
        "platform": "linux-x86_64",
        "markers": dict(interpreter.markers),
        "virtual_packages": {},
        "conda_meta": conda_meta,
    }
    return report(interpreter=doc, conda_records=[], distributions=installed, packages={})


@pytest.mark.parametrize("conda_meta", [False, True])  # none, or one without records
def test_without_conda_records_the_interpreter_and_pip_answer_pins(
    tmp_path: Path, conda_meta: bool
) -> None:
    path = tmp_path / "img.yml"
    path.write_text(
        "dependencies:\n  - python=3.11\n  - pip>=23\n  - setuptools\n  - numpy\n"
        "  - conda-forge::six\n"
    )
    probe = foreign(
        "3.11.2",
        [dist("pip", "23.0.1", installer="debian"), dist("setuptools", "66.1.1"), dist("six", "1")],
        conda_meta,
    )
    got = verdicts(run_all(load_spec(path), probe, EnvSettings()))
    assert got["pin[python=3.11]"][0] == "passed"
    assert "/usr/bin/python3 (prefix /usr" in got["pin[python=3.11]"][1]
    assert got["pin[pip>=23]"] == ("passed", "found pip's pip 23.0.1")
    assert got["pin[setuptools]"][0] == "passed"
    assert got["pin[numpy]"][0] == "failed"
    assert got["pin[conda-forge::six]"][0] == "failed"  # no record says where it came from
    assert got["health[conda]"][0] == got["health[conda-pip]"][0] == "passed"
    path.write_text("dependencies:\n  - python=3.12\n")
    got = verdicts(run_all(load_spec(path), probe, EnvSettings()))
    assert got["pin[python=3.12]"][0] == "failed"
    assert "Python 3.11.2" in got["pin[python=3.12]"][1]


def test_envassay_probe_lists_pip_distributions_as_conda_list_does() -> None:
    """A metadata directory no record owns is pip's, whatever its name (conda list: pypi)."""
    from envassay.probe.render import pip_only, render_report

    probe = report(
        conda_records=[record("python", "3.11.7", modules=[]), yaml_record()],
        distributions=[
            yaml_dist("6.0.2", PIP_YAML, [], "pip"),
            dist("six", "1.17.0") | {"metadata": f"{SITE}/six-1.17.0.dist-info"},
        ],
    )
    assert [d.name for d in pip_only(probe)] == ["PyYAML", "six"]
    assert "PyYAML                       6.0.2" in render_report(probe)
