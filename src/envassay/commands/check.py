"""Checking commands: `check` (create each env, run the smoke checks) and `probe`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from envassay.errors import UserError
from envassay.run.options import RUN_OPTIONS, add_json, add_specs

if TYPE_CHECKING:
    from envassay.run.options import Subparsers


def add_check(sub: Subparsers) -> None:
    check = sub.add_parser("check", help="create each spec's env and run the smoke checks")
    add_specs(check)
    for option in RUN_OPTIONS:
        option.add_to(check)
    check.add_argument("--junitxml", type=Path, help="write JUnit XML here")
    check.set_defaults(handler=cmd_check)


def add_probe(sub: Subparsers) -> None:
    probe = sub.add_parser(
        "probe", help="print the facts of an existing environment prefix or docker://IMAGE"
    )
    probe.add_argument("prefix", help="an env prefix, or docker://IMAGE")
    add_json(probe, help_text="the probe's JSON document")
    probe.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="PKG",
        help="also import this conda package's or distribution's modules",
    )
    probe.set_defaults(handler=cmd_probe)


def cmd_check(args: argparse.Namespace) -> int:
    # Deferred: start-up cost; only the chosen subcommand's modules load.
    from envassay.run.runner import run_checks

    extra = list(args.pytest_args)
    return run_checks(
        args.specs,
        backend=args.backend,
        junitxml=args.junitxml,
        pytest_args=extra,
        targets=args.targets,
        image=args.image,
        builder_image=args.builder_image,
        runtime_image=args.runtime_image,
        creator=args.creator,
        gpu=args.gpu,
        jobs=args.jobs,
        report_md=args.report_md,
        report_json=args.report_json,
        recreate=args.recreate,
    )


def cmd_probe(args: argparse.Namespace) -> int:
    # Deferred: start-up cost; only the chosen subcommand's modules load.
    from envassay.probe import run_probe
    from envassay.probe.model import PackageRequest, ProbeRequest
    from envassay.probe.render import render_report
    from envassay.targets import DockerTarget, NativeTarget, Target

    request = ProbeRequest(packages=tuple(PackageRequest(name) for name in args.imports))
    target: Target
    if args.prefix.startswith("docker://"):
        # Deferred: the Docker SDK loads only when a docker target is used (start-up cost).
        from envassay.docker import shared_engine
        from envassay.run.container import existing_image
        from envassay.targets.image import image_pythons

        image = args.prefix[len("docker://") :]
        info = existing_image(shared_engine(), image)
        first, *fallback = image_pythons(info)
        target = DockerTarget(image, python=first, fallback=tuple(fallback))
    else:
        prefix = Path(args.prefix).expanduser().resolve()
        if not (prefix / "bin" / "python").exists():
            raise UserError(f"no bin/python in {prefix}", hint="give the prefix of an environment")
        target = NativeTarget(prefix)
    report = run_probe(target, request)
    print(json.dumps(report.to_dict(), indent=2) if args.json else render_report(report))
    return 0
