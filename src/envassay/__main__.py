"""`python -m envassay`, and the `envassay` command's entry point (:func:`run`)."""

from __future__ import annotations

import sys

INTERRUPTED = "envassay: interrupted; nothing half-made is kept"


def run() -> int:
    """Import the CLI and run it. A Ctrl-C that comes while envassay is still starting
    (importing its modules, reading its arguments) ends it as one that comes later does:
    one line, exit 130, no traceback."""
    try:
        from envassay.cli import main

        return main()
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(run())
