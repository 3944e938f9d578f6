"""Argument definitions that more than one subcommand shares, and the pytest plugin too."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]

BACKEND_NAMES = ("auto", "rattler", "conda", "mamba", "micromamba")
BACKEND_HELP = (
    "what creates envs (default: $ENVASSAY_BACKEND, else [tool.envassay] backend, else "
    "rattler); auto: the first of micromamba, mamba, conda installed, else rattler"
)
MACHINE_READABLE = "machine-readable output"


def add_specs(parser: argparse.ArgumentParser) -> None:
    """The spec files a command works on; none given means the configured ones."""
    parser.add_argument("specs", nargs="*", type=Path, help="default: [tool.envassay] specs")


def add_json(parser: argparse.ArgumentParser, help_text: str | None = MACHINE_READABLE) -> None:
    parser.add_argument("--json", action="store_true", help=help_text)


def add_backend(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=BACKEND_NAMES, help=BACKEND_HELP)


def add_targets(parser: argparse.ArgumentParser, help_text: str) -> None:
    """Repeatable ``--target`` into ``args.targets``."""
    parser.add_argument(
        "--target",
        dest="targets",
        action="append",
        default=[],
        choices=["native", "docker"],
        help=help_text,
    )


def add_platforms(parser: argparse.ArgumentParser, help_text: str) -> None:
    """Repeatable ``--platform`` into ``args.platforms``."""
    parser.add_argument(
        "--platform", dest="platforms", action="append", default=[], metavar="P", help=help_text
    )


def add_image_options(parser: argparse.ArgumentParser) -> None:
    """How a spec's container image is built."""
    parser.add_argument(
        "--builder-image", metavar="REF", help="builder stage (default: per env, else miniconda3)"
    )
    parser.add_argument(
        "--runtime-image", metavar="REF", help="runtime stage image (default: per env, else Debian)"
    )
    parser.add_argument(
        "--creator",
        choices=["conda", "mamba", "micromamba", "envassay"],
        help="what creates the env in the builder (default: implied by the builder image)",
    )


# Help for the options `envassay check` and the pytest plugin (--envassay-*) share; here,
# because the CLI's modules import nothing heavy at start-up.
HELP = {
    "jobs": "create and probe up to N env targets at once; auto: one per usable CPU (default 1)",
    "report_md": "write the Markdown summary here (also appended to $GITHUB_STEP_SUMMARY when set)",
    "report_json": "write the JSON report here",
    "recreate": "make each native env again even when the store has it (e.g. one changed by hand)",
    "gpu": "GPU items: auto (each env's gpu policy), require (optional becomes required: "
    "no GPU fails; for GPU CI jobs), skip (skip them without touching the driver)",
}
GPU_MODES = ("auto", "require", "skip")
