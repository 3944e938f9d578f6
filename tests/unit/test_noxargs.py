"""The nox sessions' short forms for parallel runs and reports, and `nox -s matrix`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from envassay.command import run
from envassay.run.noxargs import pytest_args

ROOT = Path(__file__).resolve().parents[2]


def test_jobs_and_report_short_forms() -> None:
    assert pytest_args(["-j", "2", "-x"]) == ["--envassay-jobs", "2", "-x"]
    assert pytest_args(["-j3"]) == ["--envassay-jobs", "3"]
    assert pytest_args(["--jobs=4"]) == ["--envassay-jobs", "4"]
    assert pytest_args(["--report-md", "r.md", "--report-json=r.json"]) == [
        "--envassay-report-md",
        "r.md",
        "--envassay-report-json",
        "r.json",
    ]
    # After a bare --, nothing is translated; other options pass through.
    assert pytest_args(["-k", "numpy", "--", "-j", "2"]) == ["-k", "numpy", "--", "-j", "2"]
    assert pytest_args(["-jx"]) == ["-jx"]


def test_gpu_short_form() -> None:
    """A GPU CI job: `nox -s envs -- --gpu require`."""
    assert pytest_args(["--gpu", "require"]) == ["--envassay-gpu", "require"]
    assert pytest_args(["--gpu=skip", "-x"]) == ["--envassay-gpu", "skip", "-x"]


def test_nox_matrix_session_prints_the_matrix() -> None:
    nox = run(
        [
            sys.executable,
            "-m",
            "nox",
            "-f",
            ROOT / "noxfile.py",
            "-s",
            "matrix",
            "--",
            "--format",
            "github",
        ],
        cwd=ROOT,
        timeout=300,
    )
    assert nox.ok, nox.describe()
    direct = run(
        [sys.executable, "-m", "envassay", "matrix", "--format", "github"], cwd=ROOT, timeout=120
    )
    assert direct.ok, direct.describe()
    line = next(x for x in nox.stdout.splitlines() if x.startswith('{"include":'))
    assert json.loads(line) == json.loads(direct.stdout)
    sessions = {entry["session"] for entry in json.loads(line)["include"]}
    assert "envs(env='cpu')" in sessions and "docker(env='cpu')" in sessions
