"""Argument definitions that more than one subcommand shares, and the options of a run,
each declared once for `envassay check`, the pytest plugin, the nox sessions and the argv
`envassay check` hands pytest (:class:`Option`)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from envassay.spec.config import BACKENDS, CREATORS, GPU_MODES, TARGETS

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]

MACHINE_READABLE = "machine-readable output"


def add_specs(parser: argparse.ArgumentParser) -> None:
    """The spec files a command works on; none given means the configured ones."""
    parser.add_argument("specs", nargs="*", type=Path, help="default: [tool.envassay] specs")


def add_json(parser: argparse.ArgumentParser, help_text: str | None = MACHINE_READABLE) -> None:
    parser.add_argument("--json", action="store_true", help=help_text)


def add_backend(parser: argparse.ArgumentParser) -> None:
    BACKEND.add_to(parser)


def add_targets(parser: argparse.ArgumentParser, help_text: str) -> None:
    """Repeatable ``--target`` into ``args.targets``."""
    TARGET.add_to(parser, help_text=help_text)


def add_platforms(parser: argparse.ArgumentParser, help_text: str) -> None:
    """Repeatable ``--platform`` into ``args.platforms``."""
    parser.add_argument(
        "--platform", dest="platforms", action="append", default=[], metavar="P", help=help_text
    )


def add_image_options(parser: argparse.ArgumentParser) -> None:
    """How a spec's container image is built."""
    for option in (BUILDER_IMAGE, RUNTIME_IMAGE, CREATOR):
        option.add_to(parser)


def parse_jobs(text: str) -> int:
    """``-j``'s value: a whole number >= 1, or ``auto``: as many as this process may use
    CPUs (its affinity, which a CI runner's container limits, else the machine's count)."""
    if text.strip().lower() == "auto":
        usable = getattr(os, "sched_getaffinity", None)
        return max(1, len(usable(0)) if usable else (os.cpu_count() or 1))
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1 or auto, got {text!r}")
    return value


Kind = Literal["value", "append", "flag"]


@dataclass(frozen=True)
class Option:
    """One option of a run, declared once (as nox's ``_option_set.Option``): it makes
    `envassay check`'s argument, the pytest plugin's ``--envassay-NAME``, the short form
    the noxfile's env sessions accept, and the argv `envassay check` hands the plugin."""

    name: str  # the plugin's flag is --envassay-NAME
    help: str
    flags: tuple[str, ...] = ()  # `envassay check`'s; default: --NAME
    dest: str | None = None  # `envassay check`'s and RunOptions' field; default: NAME
    kind: Kind = "value"
    choices: tuple[str, ...] | None = None
    default: Any = None
    type: Callable[[str], Any] | None = None
    metavar: str | None = None
    short_form: bool = False  # nox's env sessions spell the flags out as the plugin's

    @property
    def cli_flags(self) -> tuple[str, ...]:
        return self.flags or (f"--{self.name}",)

    @property
    def field(self) -> str:
        return self.dest or self.name.replace("-", "_")

    @property
    def plugin_flag(self) -> str:
        return f"--envassay-{self.name}"

    @property
    def plugin_dest(self) -> str:
        return f"envassay_{self.name.replace('-', '_')}"

    def _kwargs(self, plugin: bool) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"help": self.help}
        if self.kind == "flag":
            kwargs["action"] = "store_true"
            return kwargs
        if self.kind == "append":
            kwargs["action"] = "append"
            if not plugin:
                kwargs["default"] = []
        elif self.default is not None:
            kwargs["default"] = self.default
        for key in ("choices", "type", "metavar"):
            if (value := getattr(self, key)) is not None:
                kwargs[key] = list(value) if key == "choices" else value
        return kwargs

    def add_to(self, parser: argparse.ArgumentParser, help_text: str | None = None) -> None:
        """As `envassay check` (and `build`, `create`, `matrix`) take it."""
        kwargs = self._kwargs(plugin=False)
        if help_text is not None:
            kwargs["help"] = help_text
        if self.dest is not None:
            kwargs["dest"] = self.dest
        parser.add_argument(*self.cli_flags, **kwargs)

    def add_to_plugin(self, group: Any) -> None:
        """As the pytest plugin takes it (``group`` is a pytest OptionGroup)."""
        group.addoption(self.plugin_flag, **self._kwargs(plugin=True))

    def forward(self, value: Any) -> list[str]:
        """The plugin's argv for ``value`` (nothing for the default)."""
        if self.kind == "flag":
            return [self.plugin_flag] if value else []
        if self.kind == "append":
            return [arg for item in value or () for arg in (self.plugin_flag, str(item))]
        if value is None or value == "" or value == self.default:
            return []
        return [self.plugin_flag, str(value)]


TARGET = Option(
    "target",
    "where to check (repeatable; default: [tool.envassay] targets, i.e. native)",
    dest="targets",
    kind="append",
    choices=TARGETS,
)
BACKEND = Option(
    "backend",
    "what creates envs (default: $ENVASSAY_BACKEND, else [tool.envassay] backend, else "
    "rattler); auto: the first of micromamba, mamba, conda installed, else rattler",
    choices=BACKENDS,
    short_form=True,
)
IMAGE = Option("image", "check this existing image (suite + image checks), no build", metavar="REF")
BUILDER_IMAGE = Option(
    "builder-image", "builder stage (default: per env, else miniconda3)", metavar="REF"
)
RUNTIME_IMAGE = Option(
    "runtime-image", "runtime stage image (default: per env, else Debian)", metavar="REF"
)
CREATOR = Option(
    "creator",
    "what creates the env in the builder (default: implied by the builder image)",
    choices=CREATORS,
)
GPU = Option(
    "gpu",
    "GPU items: auto (each env's gpu policy), require (optional becomes required: "
    "no GPU fails; for GPU CI jobs), skip (skip them without touching the driver)",
    choices=GPU_MODES,
    default="auto",
    short_form=True,
)
RECREATE = Option(
    "recreate",
    "make each native env again even when the store has it (e.g. one changed by hand)",
    kind="flag",
    short_form=True,
)
JOBS = Option(
    "jobs",
    "create and probe up to N env targets at once; auto: one per usable CPU (default 1)",
    flags=("-j", "--jobs"),
    type=parse_jobs,
    default=1,
    metavar="N",
    short_form=True,
)
REPORT_MD = Option(
    "report-md",
    "write the Markdown summary here (also appended to $GITHUB_STEP_SUMMARY when set)",
    type=Path,
    metavar="PATH",
    short_form=True,
)
REPORT_JSON = Option(
    "report-json", "write the JSON report here", type=Path, metavar="PATH", short_form=True
)
# Every option `envassay check` hands the plugin; RunOptions holds those that shape an
# env's assay, the session the rest.
RUN_OPTIONS = (
    TARGET,
    BACKEND,
    IMAGE,
    BUILDER_IMAGE,
    RUNTIME_IMAGE,
    CREATOR,
    GPU,
    RECREATE,
    JOBS,
    REPORT_MD,
    REPORT_JSON,
)
