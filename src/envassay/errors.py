"""envassay's error types. A UserError is the user's to fix: one line, exit 2, no traceback."""

from __future__ import annotations

import errno
from pathlib import Path

from envassay.cleantext import visible

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USER_ERROR = 2

# errno values of an OSError that mean a path the user gave or configured (the store, a
# report) cannot be used as it is: a full disk, read-only, a file where a folder must
# be. One line and exit 2, not a traceback.
UNUSABLE = frozenset(
    {
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EROFS,
        errno.EACCES,
        errno.EPERM,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.EEXIST,
        errno.ENAMETOOLONG,
        errno.ELOOP,  # a symlink planted where the store opens a file without following one
    }
)


class EnvassayError(Exception):
    """Base class of every error envassay raises on purpose.

    ``details`` (optional) is longer text shown before the message, e.g. what a
    conda/mamba/micromamba run printed, as it printed it.
    """

    details: str = ""


class UserError(EnvassayError):
    """Bad input: a spec, config, lock or option the user must fix.

    ``where`` is a file (optionally ``file:line:col``) or a config key; ``hint``
    says what to do. ``str()`` is the one line shown to the user.
    """

    def __init__(
        self,
        message: str,
        *,
        where: str | Path | None = None,
        hint: str = "",
        details: str = "",
    ) -> None:
        self.message = message
        self.where = str(where) if where is not None else None
        self.hint = hint
        self.details = details
        super().__init__(self.render())

    def render(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text = f"{text} ({self.hint})"
        # A message can quote a tool's or a package's words: no escape reaches the terminal.
        return visible(" ".join(text.split("\n")))


class SpecError(UserError):
    """An environment.yml that cannot be read or does not make sense."""


class ConfigError(UserError):
    """A bad ``[tool.envassay]`` table."""


class SolveError(UserError):
    """The solver found no environment that satisfies the spec."""


class CreateError(EnvassayError):
    """Creating an environment failed for a reason that is not the user's input."""
