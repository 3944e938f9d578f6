"""Where a probe runs: a Python interpreter reached by a command (native prefix, container)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from envassay import redact
from envassay.activation import ActivationError, activation_variables
from envassay.command import CommandResult, run, self_guarded_env
from envassay.errors import EnvassayError

# The host's own Python setup must not leak into the environment under test.
_HOST_VARIABLES = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "CONDA_PREFIX")


# How the engine says a container's command does not exist (exit 127, before it starts).
_NOT_FOUND = "executable file not found"


def first_found(
    run_with: Callable[[str], CommandResult], pythons: Sequence[str]
) -> tuple[str, CommandResult]:
    """Run with each interpreter in turn until one exists in the image: a ``python`` that
    exists and crashes is that interpreter's verdict, not a reason to try another."""
    for python in pythons[:-1]:
        result = run_with(python)
        if not (result.returncode == 127 and _NOT_FOUND in result.stderr):
            return python, result
    return pythons[-1], run_with(pythons[-1])


class TargetError(EnvassayError):
    """A target cannot be used at all (no interpreter where one should be)."""


class Target(Protocol):
    """Something that can run a Python script in the environment under test."""

    @property
    def name(self) -> str:
        """Short kind of target, e.g. ``native`` or ``docker``."""
        ...

    def describe(self) -> str:
        """Which environment this is, for messages."""
        ...

    def run_python(
        self,
        script: str,
        args: Sequence[str],
        timeout: float,
        *,
        self_guarded: bool = False,
        output_limit: int | None = None,
    ) -> CommandResult:
        """Run ``python - *args`` in the target with ``script`` on stdin.

        ``self_guarded``: the script ends itself and its children when envassay dies (it
        honours :data:`envassay.command.GUARD_VARIABLE`), so it needs no guard process.
        ``output_limit``: bytes kept of each output stream (head and tail; see
        :class:`envassay.command.Capture`), read only while the script runs.
        """
        ...


@dataclass(frozen=True)
class NativeTarget:
    """An environment prefix on this machine, run with its own interpreter."""

    prefix: Path
    name: str = "native"

    @property
    def python(self) -> Path:
        """The prefix's interpreter (conda puts it at the prefix root on Windows)."""
        return self.prefix / "python.exe" if os.name == "nt" else self.prefix / "bin" / "python"

    def describe(self) -> str:
        return f"native prefix {self.prefix}"

    def run_python(
        self,
        script: str,
        args: Sequence[str],
        timeout: float,
        *,
        self_guarded: bool = False,
        output_limit: int | None = None,
    ) -> CommandResult:
        """Run the prefix's python on ``script``, the prefix activated as ``conda run`` would."""
        if not self.python.exists():
            raise TargetError(f"{self.describe()}: no Python interpreter at {self.python}")
        # A self-guarded script spares the guard interpreter's start: ~40-70 ms a probe.
        env = self_guarded_env(self.env()) if self_guarded else self.env()
        return run(
            [self.python, "-", *args],
            input=script,
            env=env,
            timeout=timeout,
            die_with_parent=not self_guarded,
            limit=output_limit,
        )

    def env(self) -> dict[str, str]:
        """The host environment without its Python setup (user site included), with the
        env's own variables (spec and packages, as activation exports them) and the
        prefix's bin first on PATH."""
        env = {k: v for k, v in os.environ.items() if k not in _HOST_VARIABLES}
        # Not the credentials envassay used for channels: a package's import code reads them.
        env = {k: v for k, v in env.items() if not redact.is_credential(k, v)}
        try:
            env.update(activation_variables(self.prefix))
        except ActivationError as exc:  # `conda activate` fails on it too
            raise TargetError(f"{self.describe()}: {exc}") from exc
        bin_dir = self.python.parent
        env["PATH"] = os.pathsep.join(p for p in (str(bin_dir), env.get("PATH", "")) if p)
        env["CONDA_PREFIX"] = str(self.prefix)
        # Not ~/.local's site-packages: a module there would pass an import on this
        # machine that fails on every other (inherited by the probe's import child too).
        env["PYTHONNOUSERSITE"] = "1"
        return env


@dataclass(frozen=True)
class DockerTarget:
    """A container image: `docker run --rm -i --network none IMAGE PYTHON - ARGS`.

    The image's own entrypoint and user apply, as for anyone who runs it; the
    interpreter is the env's (``<prefix>/bin/python``) when the prefix is known, else
    ``python`` on the image's PATH, else each of ``fallback`` (Debian's python3 package
    installs no ``python``). With ``gpus`` the container gets every GPU (``--gpus all``).
    """

    image: str
    python: str = "python"
    gpus: bool = False
    name: str = "docker"
    fallback: tuple[str, ...] = ()
    # The interpreter found on the first run: later runs (restarts, the GPU probe) reuse it.
    _found: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def describe(self) -> str:
        return f"docker image {self.image}"

    def run_python(
        self,
        script: str,
        args: Sequence[str],
        timeout: float,
        *,
        self_guarded: bool = False,
        output_limit: int | None = None,
    ) -> CommandResult:
        # Deferred: the Docker SDK loads only when a docker target is used (start-up cost).
        from envassay.docker import shared_engine

        engine = shared_engine()

        def run_with(python: str) -> CommandResult:
            return engine.run(
                self.image,
                [python, "-", *args],
                stdin=script,
                timeout=timeout,
                gpus=self.gpus,
                limit=output_limit,
            )

        found = self._found.get("python")
        python, result = first_found(run_with, (found,) if found else (self.python, *self.fallback))
        self._found["python"] = python
        return result
