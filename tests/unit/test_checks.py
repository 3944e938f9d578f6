"""checks.py as pure functions: a probe report (as the probe prints it) + a spec -> verdicts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from envassay.checks import CheckResult, run_all
from envassay.probe.model import ProbeReport
from envassay.spec.config import EnvSettings
from envassay.spec.environment import load_spec

MARKERS = {
    "os_name": "posix",
    "sys_platform": "linux",
    "platform_machine": "x86_64",
    "platform_python_implementation": "CPython",
    "platform_release": "6.1",
    "platform_system": "Linux",
    "platform_version": "#1",
    "python_version": "3.11",
    "python_full_version": "3.11.7",
    "implementation_name": "cpython",
    "implementation_version": "3.11.7",
}


def record(
    name: str,
    version: str,
    build: str = "0",
    depends: list[str] | None = None,
    channel: str = "file:///ch",
    modules: list[str] | None = None,
    constrains: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "name": name,
        "version": version,
        "build": build,
        "channel": channel,
        "depends": depends or [],
        "subdir": "noarch",
        "url": None,
        "requested_spec": None,
        "python_modules": modules if modules is not None else [name],
        "constrains": constrains or [],
        "build_number": 0,
    }


def dist(
    name: str, version: str, requires: list[str] | None = None, installer: str = "conda"
) -> dict[str, Any]:
    return {
        "name": name,
        "version": version,
        "requires": requires or [],
        "top_level": [name],
        "installer": installer,
        "location": "/env/lib/python3.11/site-packages",
    }


def report(**overrides: Any) -> ProbeReport:
    doc: dict[str, Any] = {
        "probe_version": 2,
        "interpreter": {
            "version": "3.11.7",
            "implementation": "cpython",
            "executable": "/env/bin/python",
            "prefix": "/env",
            "base_prefix": "/env",
            "platform": "linux-x86_64",
            "markers": MARKERS,
            "virtual_packages": {"__unix": "0", "__linux": "6.1.0", "__glibc": "2.36"},
        },
        "site_packages": ["/env/lib/python3.11/site-packages"],
        "conda_records": [
            record("python", "3.11.7", modules=[]),
            record("numpy", "1.26.4", "py311_0", ["python >=3.11,<3.12.0a0"]),
            record("openssl", "3.2.0", modules=[]),
        ],
        "distributions": [
            dist("numpy", "1.26.4"),
            dist("requests", "2.31.0", ["idna>=2"], "pip"),
            dist("idna", "3.7", installer="pip"),
        ],
        "packages": {
            "python": {"manager": "conda", "status": "not-python", "modules": [], "via": []},
            "numpy": {"manager": "conda", "status": "python", "modules": ["numpy"], "via": []},
            "openssl": {"manager": "conda", "status": "not-python", "modules": [], "via": []},
            "requests": {"manager": "pip", "status": "python", "modules": ["requests"], "via": []},
        },
        "imports": [
            {
                "module": "numpy",
                "package": "numpy",
                "status": "ok",
                "error": None,
                "signal": None,
                "seconds": 0.1,
            },
            {
                "module": "requests",
                "package": "requests",
                "status": "ok",
                "error": None,
                "signal": None,
                "seconds": 0.05,
            },
        ],
        "warnings": [],
        "elapsed": 0.5,
    }
    doc.update(overrides)
    return ProbeReport.from_json(json.dumps(doc))


@pytest.fixture
def spec_path(tmp_path: Path) -> Path:
    path = tmp_path / "env.yml"
    path.write_text(
        "channels: [conda-forge]\ndependencies:\n  - python=3.11\n  - numpy>=1.24,<2\n"
        "  - openssl\n  - pip:\n    - requests>=2.30\n    - \"tomli; python_version < '3.11'\"\n"
    )
    return path


def verdicts(results: list[CheckResult]) -> dict[str, tuple[str, str]]:
    return {r.name: (r.outcome, r.message) for r in results}


def test_healthy_report(spec_path: Path) -> None:
    got = verdicts(run_all(load_spec(spec_path), report(), EnvSettings()))
    assert got["import[python]"][0] == "passed"
    assert got["import[numpy]"][0] == "passed"
    assert got["import[openssl]"] == (
        "skipped",
        "openssl is not a Python package: it installs no importable modules",
    )
    assert got["pin[numpy>=1.24,<2]"][0] == "passed"
    assert got["pin[requests>=2.30]"] == ("passed", "found requests 2.31.0")
    assert got["pin[tomli; python_version < '3.11']"][0] == "skipped"  # marker false on 3.11
    assert got["health[pip]"][0] == "passed"
    assert got["health[conda]"][0] == "passed"


def test_skip_setting_needs_and_shows_reason(spec_path: Path) -> None:
    settings = EnvSettings(skip={"numpy": "imported by the GPU job only"})
    got = verdicts(run_all(load_spec(spec_path), report(), settings))
    assert got["import[numpy]"] == (
        "skipped",
        "skipped by [tool.envassay]: imported by the GPU job only",
    )


def test_pin_mismatch_says_expected_and_found(spec_path: Path) -> None:
    records = [
        record("python", "3.11.7", modules=[]),
        record("numpy", "2.0.1", "py311_0"),
        record("openssl", "3.2.0", modules=[]),
    ]
    got = verdicts(run_all(load_spec(spec_path), report(conda_records=records), EnvSettings()))
    assert got["pin[numpy>=1.24,<2]"] == (
        "failed",
        "expected numpy >=1.24,<2; found numpy 2.0.1 py311_0 from file:///ch",
    )


def test_channel_pin(tmp_path: Path) -> None:
    path = tmp_path / "env.yml"
    path.write_text("dependencies: ['pytorch::numpy', 'conda-forge::python']\n")
    records = [
        record("numpy", "1.26.4", channel="https://mirror.invalid/conda-forge"),
        record("python", "3.11.7", channel="https://mirror.invalid/conda-forge/"),
    ]
    got = verdicts(run_all(load_spec(path), report(conda_records=records), EnvSettings()))
    assert got["pin[pytorch::numpy]"][0] == "failed"
    assert "expected channel pytorch" in got["pin[pytorch::numpy]"][1]
    assert got["pin[conda-forge::python]"][0] == "passed"


def test_channel_pin_against_condas_records(tmp_path: Path) -> None:
    """conda writes a record's channel with its subdir (`.../conda-forge/noarch`); rattler
    without. Both are the same channel; a channel named like a subdir still counts."""
    path = tmp_path / "env.yml"
    path.write_text("dependencies: ['conda-forge::six', 'pytorch::attrs', 'noarch::idna']\n")
    records = [
        record("six", "1.16.0", channel="https://mirror.invalid/conda-forge/noarch"),
        record("attrs", "23.2.0", channel="https://mirror.invalid/conda-forge/noarch"),
        record("idna", "3.7", channel="https://mirror.invalid/noarch/noarch"),
    ]
    got = verdicts(run_all(load_spec(path), report(conda_records=records), EnvSettings()))
    assert got["pin[conda-forge::six]"][0] == "passed", got
    assert got["pin[pytorch::attrs]"][0] == "failed", got
    assert got["pin[noarch::idna]"][0] == "passed", got


def test_import_failures_are_described(spec_path: Path) -> None:
    imports = [
        {
            "module": "numpy",
            "package": "numpy",
            "status": "crashed",
            "error": None,
            "signal": 11,
            "seconds": 0.2,
        },
        {
            "module": "requests",
            "package": "requests",
            "status": "timeout",
            "error": None,
            "signal": None,
            "seconds": 3.0,
        },
    ]
    got = verdicts(run_all(load_spec(spec_path), report(imports=imports), EnvSettings()))
    assert got["import[numpy]"] == ("failed", "import numpy crashed the interpreter (signal 11)")
    assert got["import[requests]"] == ("failed", "import requests timed out after 3.0s")


def test_missing_package(spec_path: Path) -> None:
    packages = {"numpy": {"manager": "conda", "status": "missing", "modules": [], "via": []}}
    got = verdicts(run_all(load_spec(spec_path), report(packages=packages), EnvSettings()))
    assert got["import[numpy]"] == ("failed", "numpy is declared but not installed in the env")


def test_health_failures(spec_path: Path) -> None:
    records = [
        record("python", "3.11.7", modules=[]),
        record("numpy", "1.26.4", "py311_0", ["python >=3.12", "libblas >=3"]),
        record("openssl", "3.2.0", modules=[]),
    ]
    dists = [
        dist("requests", "2.31.0", ["idna>=4", "charset-normalizer<4"], "pip"),
        dist("idna", "3.7", installer="pip"),
        dist("numpy", "1.26.4", ["pytest; extra == 'test'"]),
    ]
    got = verdicts(
        run_all(
            load_spec(spec_path), report(conda_records=records, distributions=dists), EnvSettings()
        )
    )
    outcome, message = got["health[conda]"]
    assert outcome == "failed"
    assert "numpy 1.26.4 depends on python >=3.12: found 3.11.7 0" in message
    assert "numpy 1.26.4 depends on libblas >=3: not installed" in message
    outcome, message = got["health[pip]"]
    assert outcome == "failed"
    assert "requests 2.31.0 requires idna>=4, but idna 3.7 is installed" in message
    assert "requires charset-normalizer<4, which is not installed" in message
    assert "pytest" not in message  # an extra's requirement is not required


def test_conda_health_reads_constrains_and_virtual_packages(spec_path: Path) -> None:
    records = [
        record("python", "3.11.7", modules=[], depends=["__glibc >=2.17", "__unix"]),
        # A constraint on an absent package holds; one on a present package must match it.
        record("numpy", "1.26.4", "py311_0", constrains=["scipy >=1.0", "openssl >=3.3"]),
        record("openssl", "3.2.0", modules=[], depends=["__glibc >=9.0", "__osx >=11"]),
        # The GPU check judges __cuda; the solver __archspec.
        record("cudatoolkit", "12.0", modules=[], depends=["__cuda >=12", "__archspec 1 x86_64"]),
    ]
    got = verdicts(run_all(load_spec(spec_path), report(conda_records=records), EnvSettings()))
    outcome, message = got["health[conda]"]
    assert outcome == "failed"
    assert message.split("; ") == [
        "numpy 1.26.4 constrains openssl >=3.3: found 3.2.0 0",
        "openssl 3.2.0 depends on __glibc >=9.0: this target has __glibc 2.36",
        "openssl 3.2.0 depends on __osx >=11: this target has no __osx",
    ]
