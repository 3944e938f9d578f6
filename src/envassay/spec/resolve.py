"""What a spec means under the project's `[tool.envassay]`: its channels, its platforms,
whether it wants CUDA.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from envassay import redact
from envassay.errors import SpecError, UserError
from envassay.spec.channels import Effective, effective_channels
from envassay.spec.condarc import CondaRc, Sourced, load_condarc
from envassay.spec.config import Config, EnvSettings
from envassay.spec.environment import EnvSpec
from envassay.spec.platforms import CUDA_NAMES, DEFAULT_CUDA, current_platform, validate_platforms

# conda's default channel_priority is flexible, which rattler does not have: rattler's
# strict takes, for each match spec, the highest channel with a matching package, so
# two specs on one name may be held to different channels where conda's flexible
# solves (README: channels).
FLEXIBLE_HINT = (
    "channel_priority is flexible (conda's default), which envassay solves with "
    "rattler's strict priority: for each spec, only the highest channel with a matching "
    "package; conda may solve this from a lower channel: set channel_priority: disabled "
    "in your condarc, or reorder the channels"
)


@dataclass(frozen=True)
class ChannelPlan:
    """A spec's effective channels (conda's meaning, see spec/channels.py) and the
    channel priority the condarc asks for."""

    channels: tuple[Effective, ...]
    priority: str
    rc: CondaRc

    @property
    def urls(self) -> tuple[str, ...]:
        return tuple(c.url for c in self.channels)

    @property
    def solver_priority(self) -> str:
        """rattler solves `strict` and `disabled`; conda's `flexible` is solved strictly."""
        return "disabled" if self.priority == "disabled" else "strict"


def channel_plan(
    path: Path,
    channels: Sequence[str],
    nodefaults: bool,
    config: Config,
    environ: Mapping[str, str] | None = None,
) -> ChannelPlan:
    """The effective channels of a spec's ``channels:`` (else the project's
    ``default-channels``) under the condarc; none at all is an error."""
    if channels:
        written = [Sourced(c, f"spec {path.name}") for c in channels]
    else:
        source = "[tool.envassay] default-channels"
        written = [Sourced(c, source) for c in config.default_channels]
    rc = load_condarc(environ)
    effective = effective_channels(written, nodefaults, rc, config.channels)
    if not effective:
        raise SpecError(
            "no channels: the spec lists none, and neither do [tool.envassay] "
            "default-channels nor the condarc",
            where=path,
            hint="add e.g. `channels: [conda-forge]` or a file:// channel",
        )
    return ChannelPlan(effective, rc.priority, rc)


def spec_channel_plan(spec: EnvSpec, config: Config) -> ChannelPlan:
    """:func:`channel_plan` for a parsed spec, its ``${VAR}`` checked."""
    plan = channel_plan(spec.path, spec.channels, spec.nodefaults, config)
    require_variables(spec, plan.urls)
    return plan


def resolve_channels(spec: EnvSpec, config: Config) -> tuple[str, ...]:
    """The spec's effective channel URLs, in priority order (see :func:`channel_plan`)."""
    return spec_channel_plan(spec, config).urls


def require_variables(spec: EnvSpec, channels: tuple[str, ...]) -> None:
    """Every ``${VAR}`` a channel or pip index option names must be set, before any tool
    runs (each says so in its own words, or not at all); their values are remembered, so
    they are masked in what the tools print."""
    options = [r.text for r in spec.pip if r.kind == "option"]
    for text in (*channels, *options):
        redact.remember_in(text)  # [tool.envassay] default-channels are no spec's
        try:
            redact.expand(text)
        except redact.MissingVariable as missing:
            raise UserError(
                f"{redact.mask(text)} names ${{{missing.name}}}, which is not set",
                where=spec.path,
                hint=f"export {missing.name}; in CI, from a secret",
            ) from None


def configured_platforms(
    spec_platforms: Sequence[str], config: Config, name: str
) -> tuple[str, ...]:
    """The spec's own `platforms:`, else the env's, else the project's (may be empty)."""
    return tuple(spec_platforms or config.env(name).platforms or config.platforms)


def lock_platforms(spec: EnvSpec, config: Config, requested: Sequence[str] = ()) -> tuple[str, ...]:
    """The platforms `envassay lock` solves: `--platform`, else configured, else this one."""

    chosen = requested or configured_platforms(spec.platforms, config, spec.name)
    return validate_platforms(chosen or (current_platform(),))


def wants_cuda(spec: EnvSpec, settings: EnvSettings) -> bool:
    """A CUDA spec: the env expects a GPU, or a dependency names CUDA."""
    if settings.gpu in ("optional", "required"):
        return True
    if settings.gpu == "none":
        return False
    return any(d.name in CUDA_NAMES or "cuda" in d.normalized.lower() for d in spec.conda)


def cuda_version(spec: EnvSpec, settings: EnvSettings) -> str | None:
    """The ``__cuda`` a lock solves with: CONDA_OVERRIDE_CUDA wins, else CUDA specs only."""
    override = os.environ.get("CONDA_OVERRIDE_CUDA")
    if override is not None:
        return override or None  # set but empty: conda's way to say "no CUDA"
    return DEFAULT_CUDA if wants_cuda(spec, settings) else None
