"""The `matrix` command: the CI matrix, one job per env, target and platform."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from envassay.run.options import add_platforms, add_specs, add_targets

if TYPE_CHECKING:
    from envassay.run.options import Subparsers


def add_matrix(sub: Subparsers) -> None:
    matrix = sub.add_parser("matrix", help="print the CI matrix: one job per env, target, platform")
    add_specs(matrix)
    matrix.add_argument(
        "--format",
        dest="fmt",
        choices=["json", "github", "gitlab"],
        default="json",
        help='json: a list; github: {"include": [...]} on one line; gitlab: parallel:matrix YAML',
    )
    matrix.add_argument(
        "--changed-since",
        metavar="REF",
        help="only envs whose spec, lock or Dockerfile (docker/) changed since REF (git diff)",
    )
    add_targets(
        matrix, "only this target (repeatable; default: both, docker for linux platforms only)"
    )
    add_platforms(
        matrix, "these platforms for every env (repeatable; default: configured, else linux-64)"
    )
    matrix.set_defaults(handler=cmd_matrix)


def cmd_matrix(args: argparse.Namespace) -> int:
    # Deferred: start-up cost; only the chosen subcommand's modules load.
    from envassay.run.matrix import changed_since, plan_matrix, render
    from envassay.spec.config import load_config

    config = load_config()
    changes = changed_since(config.root, args.changed_since) if args.changed_since else None
    entries = plan_matrix(
        config, args.specs, targets=args.targets, platforms=args.platforms, changes=changes
    )
    print(render(entries, args.fmt))
    if args.changed_since and not entries:
        print(f"envassay: nothing changed since {args.changed_since}: no jobs", file=sys.stderr)
    return 0
