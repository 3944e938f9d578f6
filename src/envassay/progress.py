"""Progress for long creates: one live line on a terminal, plain log lines otherwise."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

from envassay.cleantext import visible


class ProgressLine:
    """Callable progress sink; ``close()`` ends a live line cleanly."""

    def __init__(self, stream: TextIO | None = None, *, live: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self._width = 0

    def __call__(self, message: str) -> None:
        # A tool's or a package's output (pip, conda, a build) shown live: made harmless.
        message = visible(message.strip())
        if not message:
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
