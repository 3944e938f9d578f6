"""The `envassay` command: a thin shell over the library.

This module assembles the parser and turns errors into exit codes; each command
group's arguments and handler live in a module of :mod:`envassay.commands`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from envassay import __version__, redact
from envassay.commands import check, env, image, lock, matrix
from envassay.errors import (
    EXIT_CHECK_FAILED,
    EXIT_USER_ERROR,
    UNUSABLE,
    EnvassayError,
    UserError,
)

Handler = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; everything it prints passes through :func:`redact.mask`."""
    with redact.masked_output():
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    """Errors become one line and an exit code here, and only here."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    # Everything after a bare `--` belongs to pytest (`envassay check envs/x.yml -- -x -q`).
    passthrough = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser.parse_args(argv[: len(argv) - len(passthrough) - (1 if "--" in argv else 0)])
    args.pytest_args = passthrough
    handler: Handler = args.handler
    try:
        return handler(args)
    except UserError as exc:
        if exc.details:  # e.g. what conda/mamba/micromamba printed, as it printed it
            print(exc.details, file=sys.stderr)
        print(f"envassay: error: {exc.render()}", file=sys.stderr)
        return EXIT_USER_ERROR
    except EnvassayError as exc:
        print(f"envassay: failed: {exc}", file=sys.stderr)
        return EXIT_CHECK_FAILED
    except OSError as exc:
        if exc.errno not in UNUSABLE:  # the unexpected keeps its traceback
            raise
        # A path given or configured that cannot be written (a full disk, read-only).
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"envassay: error: {where}{exc.strerror}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("envassay: interrupted; nothing half-made is kept", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="envassay",
        description="Create conda environments from environment.yml and "
        "smoke-test them: imports, pins, dependency health.",
    )
    parser.add_argument("--version", action="version", version=f"envassay {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # In the order `envassay --help` lists them.
    for add in (
        env.add_spec,
        env.add_create,
        check.add_check,
        image.add_build,
        lock.add_lock,
        lock.add_drift,
        matrix.add_matrix,
        check.add_probe,
        env.add_envs,
        env.add_backends,
    ):
        add(sub)
    return parser
