"""Image commands: `build` (build or reuse the container image of a spec)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from envassay.run.options import add_image_options, add_json

if TYPE_CHECKING:
    from envassay.run.options import Subparsers


def add_build(sub: Subparsers) -> None:
    build = sub.add_parser("build", help="build (or reuse) the container image of a spec")
    build.add_argument("spec", type=Path)
    add_image_options(build)
    add_json(build)
    build.set_defaults(handler=cmd_build)


def cmd_build(args: argparse.Namespace) -> int:
    # Deferred: start-up cost; only the chosen subcommand's modules load.
    from envassay.docker import shared_engine
    from envassay.progress import ProgressLine
    from envassay.spec.config import load_config
    from envassay.spec.environment import load_spec
    from envassay.targets.image import engine_platform, ensure_image, plan_image, resolve_options

    spec = load_spec(args.spec)
    config = load_config()
    engine = shared_engine()
    options = resolve_options(
        config.env(spec.name),
        builder_image=args.builder_image,
        runtime_image=args.runtime_image,
        creator=args.creator,
    )
    plan = plan_image(spec, config, options, engine_platform(engine))
    progress = ProgressLine()
    try:
        result = ensure_image(
            plan, config.store_path(), engine=engine, progress=progress, project=config.root
        )
    finally:
        progress.close()
    if args.json:
        print(
            json.dumps(
                {
                    "ref": result.ref,
                    "id": result.info.id,
                    "reused": result.reused,
                    "seconds": round(result.seconds, 3),
                    "size": result.info.size,
                    "log": str(result.log_path) if result.log_path else None,
                }
            )
        )
    elif result.reused:
        print(f"reused {result.ref} (no build)")
    else:
        print(f"built {result.ref} in {result.seconds:.1f}s (log: {result.log_path})")
    return 0
