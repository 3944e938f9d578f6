"""Lock commands: `lock` (solve specs into lock files) and `drift` (what moved since)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from envassay.errors import UserError
from envassay.run.options import add_platforms, add_specs

if TYPE_CHECKING:
    from envassay.run.options import Subparsers


def add_lock(sub: Subparsers) -> None:
    lock = sub.add_parser("lock", help="solve each spec per platform into envs/NAME.conda-lock.yml")
    add_specs(lock)
    add_platforms(
        lock, "lock for this platform (repeatable; default: configured, else this machine's)"
    )
    lock.add_argument(
        "--check",
        action="store_true",
        help="only say whether each lock is fresh (no solve): exit 1 naming stale ones",
    )
    lock.add_argument("--force", action="store_true", help="re-solve even fresh locks")
    lock.set_defaults(handler=cmd_lock)


def add_drift(sub: Subparsers) -> None:
    drift = sub.add_parser("drift", help="solve each locked spec today and show what moved")
    add_specs(drift)
    drift.add_argument("--fail", action="store_true", help="exit 1 when anything moved")
    drift.add_argument("--markdown", type=Path, metavar="PATH", help="also write Markdown here")
    drift.set_defaults(handler=cmd_drift)


def cmd_lock(args: argparse.Namespace) -> int:
    # Deferred: start-up cost; only the chosen subcommand's modules load.
    from envassay.run.locks import check_locks, write_locks

    if args.check:
        if args.platforms or args.force:
            raise UserError("--check takes no --platform or --force: it only reads")
        return check_locks(args.specs)
    return write_locks(args.specs, platforms=args.platforms, force=args.force)


def cmd_drift(args: argparse.Namespace) -> int:
    # Deferred: start-up cost; only the chosen subcommand's modules load.
    from envassay.run.locks import report_drift

    return report_drift(args.specs, fail=args.fail, markdown=args.markdown)
