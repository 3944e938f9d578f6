"""Backends create a conda prefix from an EnvSpec. Found by name (``spec.config.BACKENDS``)
in ``FACTORIES``.

Which one: ``--backend`` (or pytest's ``--envassay-backend``), else
``$ENVASSAY_BACKEND``, else ``[tool.envassay] backend``, else ``rattler``.
``auto`` is the first of micromamba, mamba, conda that is installed, else rattler.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from envassay.create.backends.base import Backend, CreateRequest, CreateResult
from envassay.create.backends.conda import CondaBackend
from envassay.create.backends.rattler import RattlerBackend
from envassay.create.backends.tools import first_available, search, tool_version
from envassay.errors import UserError
from envassay.progress import Progress
from envassay.spec.config import BACKENDS

# Each name of spec.config.BACKENDS but ``auto``, which picks one of these.
FACTORIES: dict[str, Callable[[], Backend]] = {
    "rattler": RattlerBackend,
    "conda": lambda: CondaBackend.find("conda"),
    "mamba": lambda: CondaBackend.find("mamba"),
    "micromamba": lambda: CondaBackend.find("micromamba"),
}
ENV_VAR = "ENVASSAY_BACKEND"


def resolve_backend(
    requested: str | None, configured: str, environ: Mapping[str, str] | None = None
) -> str:
    """The backend name in force: ``requested`` (--backend), $ENVASSAY_BACKEND, ``configured``."""
    env = os.environ if environ is None else environ
    if requested:
        return _known(requested, "--backend")
    if value := env.get(ENV_VAR, "").strip():
        return _known(value, f"${ENV_VAR}")
    return _known(configured, "[tool.envassay] backend")


def _known(name: str, where: str) -> str:
    if name not in BACKENDS:
        raise UserError(f"Expected backend one of {list(BACKENDS)}, but got {name!r}", where=where)
    return name


def concrete_name(name: str) -> str:
    """``auto`` -> the backend it picks now (starts nothing); other names unchanged."""
    return (first_available() or "rattler") if name == "auto" else name


@dataclass(frozen=True)
class Available:
    """One backend as this machine has it, for `envassay backends`."""

    name: str
    version: str | None  # None: not installed (or it does not say)
    where: str  # the executable, or what was looked at and why it is missing


def available(environ: Mapping[str, str] | None = None) -> list[Available]:
    """Every backend: rattler (embedded), then each tool found or what was looked at."""
    from importlib.metadata import version

    result = [Available("rattler", version("py-rattler"), "embedded (py-rattler)")]
    for flavour in ("micromamba", "mamba", "conda"):
        found = search(flavour, environ)
        if found.found is None:
            result.append(Available(flavour, None, f"not found: {'; '.join(found.looked)}"))
            continue
        try:
            result.append(Available(flavour, tool_version(found.found), str(found.found)))
        except UserError as exc:
            result.append(Available(flavour, None, exc.message))
    return result


def get_backend(name: str) -> Backend:
    """The backend called ``name`` (``auto`` resolved); unknown or not installed: exit 2."""
    return FACTORIES[concrete_name(_known(name, "--backend"))]()


__all__ = [
    "FACTORIES",
    "Available",
    "Backend",
    "CreateRequest",
    "CreateResult",
    "Progress",
    "available",
    "concrete_name",
    "get_backend",
    "resolve_backend",
]
