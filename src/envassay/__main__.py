"""`python -m envassay`, and the `envassay` command's entry point (:func:`run`)."""

from __future__ import annotations

import signal
import sys
from types import FrameType

INTERRUPTED = "envassay: interrupted; nothing half-made is kept"


def _interrupted(signum: int, frame: FrameType | None) -> None:
    """Ctrl-C: raise KeyboardInterrupt once, and ignore the next ones, so that a second
    Ctrl-C (an impatient user, a terminal that sends one per key press) cannot cut short
    the clean-up the first one started (killing the run's commands, removing a half-made
    env) or end envassay by the signal instead of with its message and exit 130."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def run() -> int:
    """Import the CLI and run it. A Ctrl-C that comes while envassay is still starting
    (importing its modules, reading its arguments) ends it as one that comes later does:
    one line, exit 130, no traceback."""
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not if ignored
        signal.signal(signal.SIGINT, _interrupted)
    try:
        # Deferred: a Ctrl-C while the CLI's modules load ends as a later one does.
        from envassay.cli import main

        return main()
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(run())
