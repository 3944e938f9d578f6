"""Backends create a conda prefix from an EnvSpec. Found by name in ``BACKENDS``."""

from __future__ import annotations

from envassay.backends.base import Backend, CreateRequest, CreateResult, Progress
from envassay.backends.rattler import RattlerBackend
from envassay.errors import UserError

BACKENDS: dict[str, type[Backend]] = {"rattler": RattlerBackend}


def get_backend(name: str) -> Backend:
    """The backend called ``name``; a name we do not know is the user's error."""
    if name == "auto":
        name = "rattler"
    try:
        return BACKENDS[name]()
    except KeyError:
        raise UserError(f"Expected backend one of {sorted(BACKENDS)}, but got {name!r}") from None


__all__ = ["BACKENDS", "Backend", "CreateRequest", "CreateResult", "Progress", "get_backend"]
