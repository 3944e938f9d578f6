"""Every command line envassay gives conda, mamba and micromamba, in one place.

Two argument styles (see :attr:`envassay.create.backends.tools.Tool.style`):

- conda style (conda, mamba 1.x):
  spec: ``TOOL env create -p PREFIX -f ENV.yml`` (conda < 26, mamba 1.x), or
  ``conda create -y -p PREFIX --file ENV.yml --override-channels -c CH [-c CH...]``
  (conda >= 26, see :func:`spec_via_create`);
  lock: ``TOOL create -y -p PREFIX --file EXPLICIT.txt``
- libmamba style (micromamba, mamba 2.x):
  spec: ``TOOL create -y -p PREFIX -f ENV.yml``;
  lock: ``TOOL create -y -p PREFIX -f NAME.conda-lock.yml``

``ENV.yml`` is generated from the spec (:func:`envassay.create.backends.conda.environment_file`).
conda and mamba 1.x (which runs on conda's own configuration) get the effective channels
envassay resolved by conda's rules (:func:`file_channels`): for ``conda env create``
with ``nodefaults`` (it takes no channel options), for ``conda create`` (conda >= 26)
on the command line too, where ``--override-channels`` keeps the rc channels from
being added twice. mamba 2 and micromamba keep their own rules: their file lists the
spec's channels as written (``nodefaults`` included) and they read their own
configuration (README: channels). A lock is
given to micromamba as the conda-lock file itself (it installs that file's pip
entries too); conda reads no conda-lock file without the conda-lock plugin, so
it gets an ``@EXPLICIT`` file rendered from the lock, and envassay installs the
pip entries afterwards, as ``conda-lock install`` does.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from envassay import redact
from envassay.create.backends.tools import Style, Tool

# Set for every tool run: pip (run by the tool for a pip: section) never prompts.
COMMON_ENV: Mapping[str, str] = {"PIP_NO_INPUT": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
# conda's "proceed ([y]/n)?" answered for every conda version (older `conda env create` has no -y).
STYLE_ENV: Mapping[Style, Mapping[str, str]] = {
    "conda": {"CONDA_ALWAYS_YES": "true"},
    "libmamba": {},
}


@dataclass(frozen=True)
class Invocation:
    """One tool run: argv, the variables set on top of the caller's environment, and cwd."""

    argv: tuple[str, ...]
    cwd: Path
    env: Mapping[str, str] = field(default_factory=dict)

    def environ(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The whole environment the tool runs with."""
        return {**(os.environ if base is None else base), **self.env}


# The first conda whose `conda env create` runs `conda create`'s code path: it merges
# .condarc's channels with the file's and fetches `nodefaults` as a channel named so
# (24.7.1-25.11.1 read it as "no default channels"). From this version on, `conda create`
# reads environment files itself and takes --override-channels.
CONDA_CREATE_READS_ENV_FILES = 26


def spec_via_create(tool: Tool) -> bool:
    """Whether a spec goes to ``conda create --file ENV.yml --override-channels -c ...``
    rather than ``conda env create`` (conda >= 26; mamba 1.x wraps an older conda)."""
    return tool.flavour == "conda" and tool.major >= CONDA_CREATE_READS_ENV_FILES


def file_channels(tool: Tool, channels: Sequence[str], written: Sequence[str] = ()) -> list[str]:
    """The ``channels:`` of the generated environment file.

    ``conda env create`` (conda < 26, mamba 1.x): the effective channels and
    ``nodefaults`` (they already hold the rc channels). conda 26: the effective channels
    alone (it reads ``nodefaults`` as a channel name); ``--override-channels -c`` say the
    same on the command line. mamba 2 and micromamba: ``written``, the spec's own.
    """
    if tool.style == "libmamba":
        return list(written)
    if not spec_via_create(tool):
        return [*channels, "nodefaults"]
    return list(channels)


def create_from_spec(
    tool: Tool, prefix: Path, env_file: Path, channels: Sequence[str], cwd: Path
) -> Invocation:
    """Create ``prefix`` from a generated environment file, solving against ``channels``."""
    argv: list[str | os.PathLike[str]]
    if tool.style == "conda" and not spec_via_create(tool):
        argv = [tool.path, "env", "create", "-p", prefix, "-f", env_file]
    elif tool.style == "libmamba":  # the file's channels, by the tool's own rules
        argv = [tool.path, "create", "-y", "-p", prefix, "-f", env_file]
    else:
        # A `-c` URL's ${VAR} is not expanded by the tool (a file's is, by conda): here.
        options = [
            arg for channel in channels for arg in ("-c", redact.encoded(redact.expand(channel)))
        ]
        file_flag = "--file" if tool.style == "conda" else "-f"
        argv = [tool.path, "create", "-y", "-p", prefix, file_flag, env_file]
        argv += ["--override-channels", *options]
    return _invocation(tool, argv, cwd)


def create_from_lock(tool: Tool, prefix: Path, lock_file: Path, cwd: Path) -> Invocation:
    """Create ``prefix`` from a conda-lock file (libmamba style: no solve)."""
    assert tool.style == "libmamba", "conda style gets an explicit file"
    return _invocation(tool, [tool.path, "create", "-y", "-p", prefix, "-f", lock_file], cwd)


def create_from_explicit(tool: Tool, prefix: Path, explicit_file: Path, cwd: Path) -> Invocation:
    """Create ``prefix`` from an ``@EXPLICIT`` file (conda style: no solve)."""
    argv: list[str | os.PathLike[str]] = [tool.path, "create", "-y", "-p", prefix]
    argv += ["--file", explicit_file]
    return _invocation(tool, argv, cwd)


def _invocation(tool: Tool, argv: Sequence[str | os.PathLike[str]], cwd: Path) -> Invocation:
    return Invocation(
        argv=tuple(str(a) for a in argv),
        cwd=cwd,
        env={**COMMON_ENV, **STYLE_ENV[tool.style]},
    )
