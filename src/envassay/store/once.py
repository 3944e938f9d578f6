"""Build once: look, and only when nothing is there take the lock and look again.

Every artefact the store holds that is costly to make (an env prefix, an image, a
repacked wheel) is made this way: the first look needs no lock (a warm run takes none),
and the second, under the lock, sees what another builder finished while this one
waited, so two runs never build the same thing twice.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def build_once(lock: Path, ready: Callable[[], T | None], build: Callable[[], T]) -> T:
    """``ready()`` if it finds the artefact, else, holding the file lock ``lock``,
    ``ready()`` again, else ``build()`` (still holding it)."""
    if (found := ready()) is not None:
        return found
    # Imported here: a warm run needs no lock, and filelock's import costs 15-40 ms.
    from filelock import FileLock

    lock.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock)):
        if (found := ready()) is not None:
            return found
        return build()
