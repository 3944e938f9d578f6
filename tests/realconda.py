"""A real conda for the tests: where it is found, and the environment it runs in.

No stand-in: these are conda's own releases (``../shared/tools/conda/install-conda
PREFIX VERSION`` installs one from a wheel built unchanged from conda's tag).

- ``$ENVASSAY_TEST_CONDA``: the condas of the default suite, ``conda`` executables
  separated by ``:`` (``.ci/run`` sets the oldest and the newest); unset, ``conda`` on
  PATH is used when there is one.
- ``$ENVASSAY_TEST_CONDA_MATRIX``: the condas of the slower version matrix (``.ci/run``
  sets all five).

Under ``CI=true`` a test that finds no conda fails (as the docker tests do); elsewhere
it skips saying what to set.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from envassay.command import run

DEFAULT_VARIABLE = "ENVASSAY_TEST_CONDA"
MATRIX_VARIABLE = "ENVASSAY_TEST_CONDA_MATRIX"
HOW = "install one: ../shared/tools/conda/install-conda PREFIX VERSION; then PREFIX/bin/conda"


@dataclass(frozen=True)
class RealConda:
    """One conda executable and the version it reports."""

    path: Path
    version: str

    @property
    def major(self) -> int:
        return int(self.version.split(".", 1)[0])

    def environ(self, base: Mapping[str, str], pkgs_dir: Path) -> dict[str, str]:
        """``base`` with this conda found first by envassay ($CONDA_EXE) and a package
        cache of its own (warm across the session's tests, outside conda's install)."""
        env = {k: v for k, v in base.items() if not k.startswith(("PYTEST_", "CONDA_", "MAMBA_"))}
        env["CONDA_EXE"] = str(self.path)
        env["CONDA_PKGS_DIRS"] = str(pkgs_dir)
        # No rc channels (conda < 25.9 would add its default channels, which are offline
        # here); conda and envassay both read this (tests/integration/test_conda_channels.py
        # drops it to test the rc channels).
        env["CONDA_CHANNELS"] = ""
        env.pop("ENVASSAY_BACKEND", None)
        return env


def configured(variable: str) -> list[Path]:
    """The condas named by ``variable``; for the default set, else ``conda`` on PATH."""
    value = os.environ.get(variable, "")
    paths = [Path(p) for p in value.split(os.pathsep) if p]
    if not paths and variable == DEFAULT_VARIABLE and (found := shutil.which("conda")):
        paths = [Path(found)]
    return paths


def params(variable: str = DEFAULT_VARIABLE) -> list[object]:
    """pytest params, one per conda; ids from the install folder (``.../24.7.1/bin/conda``)
    so that collecting asks no conda for its version. With none, one param that skips
    (or, under CI=true, fails) in :func:`real_conda_from`."""
    paths = configured(variable)
    if not paths:
        return [pytest.param(None, id=f"no-conda-{variable}")]
    return [pytest.param(path, id=_id(path, i)) for i, path in enumerate(paths)]


def _id(path: Path, index: int) -> str:
    folder = path.resolve().parent.parent.name
    return f"conda-{folder}" if re.fullmatch(r"\d+(\.\d+)+", folder) else f"conda{index}"


def real_conda_from(path: Path | None, variable: str = DEFAULT_VARIABLE) -> RealConda:
    """The conda at ``path``; skips (fails under CI=true) when there is none."""
    if path is None:
        reason = f"no real conda: set ${variable} ({HOW})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and the real-conda tests cannot run: {reason}", pytrace=False)
        pytest.skip(reason)
    if not os.access(path, os.X_OK):
        pytest.fail(f"${variable} names {path}, which is not an executable", pytrace=False)
    return RealConda(path, _version(str(path)))


@cache
def _version(path: str) -> str:
    result = run([path, "--version"], timeout=120)
    match = re.search(r"conda (\d+(?:\.\d+)+)", result.stdout + result.stderr)
    if not result.ok or match is None:
        pytest.fail(f"{path} --version did not say a conda version: {result.describe()}")
    return match.group(1)
