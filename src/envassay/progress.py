"""Progress for long creates: one live line on a terminal, plain log lines otherwise."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

from envassay.cleantext import visible

# Marks an update within a phase (bytes so far, k of n packages): a terminal's live line
# shows it; a log (CI) leaves it out and gets the phase's one closing line instead. The
# ASCII record separator: never in envassay's own words, and escaped in anyone else's.
UPDATE = "\x1e"


def update(message: str) -> str:
    """``message`` as an update within a phase (see :data:`UPDATE`)."""
    return UPDATE + message


def split_update(message: str) -> tuple[bool, str]:
    """(whether ``message`` is an update within a phase, its text)."""
    if message.startswith(UPDATE):
        return True, message[len(UPDATE) :]
    return False, message


class ProgressLine:
    """Callable progress sink; ``close()`` ends a live line cleanly."""

    def __init__(self, stream: TextIO | None = None, *, live: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self._width = 0

    def __call__(self, message: str) -> None:
        transient, message = split_update(message)
        # A tool's or a package's output (pip, conda, a build) shown live: made harmless.
        message = visible(message.strip())
        if not message or (transient and not self.live):
            return
        if self.live:
            text = message[:110]
            self.stream.write("\r" + text.ljust(self._width))
            self._width = len(text)
        else:
            self.stream.write(message + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.live and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0


Progress = Callable[[str], None]
