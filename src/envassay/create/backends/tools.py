"""Finding the conda-family executables: where each is looked for, and its version.

micromamba is looked for at ``$MAMBA_EXE`` (set by its shell hook and by
setup-micromamba) when that names a micromamba, then on PATH; mamba at
``$MAMBA_EXE`` when that names a mamba, on PATH, then next to ``$CONDA_EXE``
(Miniforge installs both in one ``bin/``); conda at ``$CONDA_EXE`` (set by
conda's shell hook, where ``conda`` is a shell function rather than a file on
PATH), then on PATH.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from envassay import command
from envassay.errors import UserError

Flavour = Literal["conda", "mamba", "micromamba"]
# How a tool takes its arguments: conda's (conda, mamba 1.x, which wraps conda's CLI)
# or libmamba's own (micromamba, mamba 2.x).
Style = Literal["conda", "libmamba"]
AUTO_ORDER: tuple[Flavour, ...] = ("micromamba", "mamba", "conda")
VERSION_TIMEOUT = 120.0

INSTALL_HINTS: dict[Flavour, str] = {
    "micromamba": "install micromamba (mamba docs: 'Micromamba Installation'; in GitHub Actions "
    "mamba-org/setup-micromamba) or put it on PATH, or use --backend rattler",
    "mamba": "install Miniforge (it ships mamba) or `conda install -n base -c conda-forge mamba`, "
    "or use --backend rattler",
    "conda": "install Miniforge or Miniconda and run `conda init` (which sets CONDA_EXE), "
    "in GitHub Actions conda-incubator/setup-miniconda, or use --backend rattler",
}

_VERSION = re.compile(r"\d+(?:\.\d+)+\S*")


class ToolMissing(UserError):
    """A requested conda/mamba/micromamba executable is not installed."""


@dataclass(frozen=True)
class Tool:
    """One found executable and what it says its version is."""

    flavour: Flavour
    path: Path
    version: str

    @property
    def major(self) -> int:
        head = self.version.split(".", 1)[0]
        return int(head) if head.isdigit() else 0

    @property
    def style(self) -> Style:
        """mamba 2 is libmamba's own CLI, like micromamba; mamba 1 wraps conda's."""
        if self.flavour == "micromamba" or (self.flavour == "mamba" and self.major >= 2):
            return "libmamba"
        return "conda"

    def describe(self) -> str:
        return f"{self.flavour} {self.version} ({self.path})"


@dataclass(frozen=True)
class Search:
    """Where one flavour was looked for: the found path (or None) and each place tried."""

    flavour: Flavour
    found: Path | None
    looked: tuple[str, ...]

    def missing_error(self) -> ToolMissing:
        return ToolMissing(
            f"backend {self.flavour}: no {self.flavour} executable found "
            f"(looked at {'; '.join(self.looked)})",
            hint=INSTALL_HINTS[self.flavour],
        )


def search(flavour: Flavour, environ: Mapping[str, str] | None = None) -> Search:
    """Look for ``flavour`` where its installers put it; start nothing."""
    env = os.environ if environ is None else environ
    looked: list[str] = []
    for place in PLACES[flavour]:
        if place == "PATH":
            path = env.get("PATH", "")
            looked.append(f"PATH={path or '(empty)'}")
            if found := shutil.which(flavour, path=path):
                return Search(flavour, Path(found), tuple(looked))
            continue
        value = env.get(place, "")
        if not value:
            looked.append(f"${place} (unset)")
            continue
        candidate = Path(value)
        if place == "CONDA_EXE" and flavour != "conda":
            candidate = candidate.with_name(flavour + candidate.suffix)
            looked.append(f"{candidate} (next to $CONDA_EXE)")
        elif _stem(candidate) != flavour:
            looked.append(f"${place}={value} (not a {flavour})")
            continue
        else:
            looked.append(f"${place}={value}")
        if _is_executable(candidate):
            return Search(flavour, candidate, tuple(looked))
    return Search(flavour, None, tuple(looked))


# Where each flavour is looked for, in order: an environment variable, or PATH.
PLACES: dict[Flavour, tuple[str, ...]] = {
    "micromamba": ("MAMBA_EXE", "PATH"),
    "mamba": ("MAMBA_EXE", "PATH", "CONDA_EXE"),
    "conda": ("CONDA_EXE", "PATH"),
}


def _stem(path: Path) -> str:
    return path.name.lower().removesuffix(".exe")


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_tool(flavour: Flavour, environ: Mapping[str, str] | None = None) -> Tool:
    """The ``flavour`` executable and its version; ToolMissing (exit 2) when absent."""
    found = search(flavour, environ)
    if found.found is None:
        raise found.missing_error()
    return Tool(flavour, found.found, tool_version(found.found))


def first_available(environ: Mapping[str, str] | None = None) -> Flavour | None:
    """`auto`: the first of micromamba, mamba, conda that is installed, else None."""
    for flavour in AUTO_ORDER:
        if search(flavour, environ).found is not None:
            return flavour
    return None


def version_command(path: Path) -> list[str]:
    return [str(path), "--version"]


_versions: dict[tuple[str, int, int], str] = {}


def tool_version(path: Path) -> str:
    """What ``PATH --version`` says (cached per file and mtime: conda takes a second)."""
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _versions:
        result = command.run(version_command(path), timeout=VERSION_TIMEOUT)
        version = parse_version(result.stdout + "\n" + result.stderr) if result.ok else None
        if version is None:
            raise UserError(
                f"{path} does not say its version: {result.describe()}",
                hint="check that installation, or choose another backend with --backend",
            )
        _versions[key] = version
    return _versions[key]


def parse_version(output: str) -> str | None:
    """``conda 24.7.1`` / ``mamba 1.5.8`` (first line) / ``2.0.5`` -> the version."""
    for line in output.splitlines():
        if line.strip():
            match = _VERSION.search(line)
            return match.group(0) if match else None
    return None
