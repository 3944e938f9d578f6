"""A spec's effective channels, as ``conda env create`` computes them (conda's
``env/installers/conda.py`` and ``models/channel.py``).

The file's channels come first (``nodefaults`` removed); then, unless the file lists
``nodefaults`` (or ``[tool.envassay] channels = "file"``), the rc ``channels``. Each is
then made a URL: ``defaults`` -> ``default_channels`` (``custom_multichannels.defaults``
where set, else conda's built-in list); another ``custom_multichannels`` name -> its
list; a URL as it is (no trailing ``/``); a path -> ``file://``; a name -> the
``custom_channels`` entry for its longest leading part, else under ``channel_alias``.
Each URL keeps its first place only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from envassay.errors import ConfigError
from envassay.spec.condarc import CondaRc, Sourced

DEFAULTS = "defaults"
NODEFAULTS = "nodefaults"


@dataclass(frozen=True)
class Effective:
    """One effective channel: its URL, what the spec (or rc) said, and where that came from."""

    url: str
    written: str
    source: str

    def to_dict(self) -> dict[str, str]:
        return {"url": self.url, "written": self.written, "source": self.source}


def effective_channels(
    file_channels: Sequence[Sourced], nodefaults: bool, rc: CondaRc, mode: str = "conda"
) -> tuple[Effective, ...]:
    """The URLs conda would solve against, in priority order, each with its source."""
    wanted = [c for c in file_channels if c.value != NODEFAULTS]
    if not nodefaults and mode == "conda":
        wanted += list(rc_channels(rc))
    result: dict[str, Effective] = {}
    for channel in wanted:
        for url, how in expand(str(channel.value), rc):
            source = channel.source if how is None else f"{channel.source}; {how}"
            result.setdefault(url, Effective(url, str(channel.value), source))
    return tuple(result.values())


def rc_channels(rc: CondaRc) -> tuple[Sourced, ...]:
    """The rc ``channels``; unset, conda < 25.9 lists ``defaults``, later condas none."""
    if rc.channels is not None:
        return rc.channels
    if rc.conda is not None and rc.conda.implicit_defaults:
        return (Sourced(DEFAULTS, f"built-in rc channels of {rc.conda.describe()}"),)
    return ()


def expand(channel: str, rc: CondaRc) -> list[tuple[str, str | None]]:
    """``channel`` as URL(s), each with how a name became it (None: written as a URL)."""
    multi = {k: v for k, v in rc.custom_multichannels.items() if isinstance(v.value, list)}
    if rc.conda is not None and not rc.conda.multichannel_defaults:
        multi.pop(DEFAULTS, None)  # conda < 26: the reserved name keeps default_channels
    if channel == DEFAULTS and DEFAULTS not in multi:
        members, how = default_channels(rc)
        return [(simple_url(m, rc), how) for m in members]
    if channel in multi:
        entry = multi[channel]
        return [(simple_url(str(m), rc), entry.source) for m in entry.value]
    url = as_url(channel)
    if url is not None:
        return [(url, None)]
    return [name_url(channel, rc)]


def default_channels(rc: CondaRc) -> tuple[tuple[str, ...], str]:
    """What ``defaults`` stands for, and where that list came from."""
    if rc.default_channels is not None:
        sources = sorted({s.source for s in rc.default_channels})
        return tuple(str(s.value) for s in rc.default_channels), ", ".join(sources)
    if rc.conda is not None and rc.conda.default_channels:
        return rc.conda.default_channels, f"built-in default_channels of {rc.conda.describe()}"
    raise ConfigError(
        "`defaults` stands for conda's default channels, and no default_channels is set "
        "and no conda installation was found to read conda's built-in list from",
        hint="set default_channels in a condarc (or $CONDA_DEFAULT_CHANNELS), set "
        "$CONDA_EXE to your conda, or list the channels themselves",
    )


def as_url(channel: str) -> str | None:
    """A channel written as a URL or a path, as a URL; None for a name."""
    if "://" in channel:
        return channel.rstrip("/")
    if channel.startswith(("/", "./", "../", "~")):
        return Path(channel).expanduser().resolve().as_uri()
    return None


def simple_url(channel: str, rc: CondaRc) -> str:
    """A ``default_channels`` / multichannel member: a URL, else a name under the alias."""
    return as_url(channel) or f"{channel_alias(rc)}/{channel.strip('/')}"


def name_url(name: str, rc: CondaRc) -> tuple[str, str | None]:
    """A channel name's URL: its longest leading part in ``custom_channels``, else the alias."""
    custom = custom_channels(rc)
    parts = name.strip("/").split("/")
    for end in range(len(parts), 0, -1):
        key = "/".join(parts[:end])
        if key in custom:
            base, source = custom[key]
            return f"{base.rstrip('/')}/{name.strip('/')}", source
    alias_source = rc.channel_alias.source if rc.channel_alias else "default channel_alias"
    return f"{channel_alias(rc)}/{name.strip('/')}", alias_source


def custom_channels(rc: CondaRc) -> Mapping[str, tuple[str, str]]:
    """name -> (base URL, source): conda's built-in ones, the defaults' members, the rc's."""
    result: dict[str, tuple[str, str]] = {}
    if rc.conda is not None:
        for name, base in rc.conda.custom_channels.items():
            result[name] = (str(base), f"built-in custom_channels of {rc.conda.describe()}")
    try:
        members, source = default_channels(rc)
    except ConfigError:
        members, source = (), ""
    for member in members:
        url = as_url(member)
        if url is not None and url.count("/") > 2:
            scheme, _, rest = url.partition("://")
            host, _, path = rest.partition("/")
            result[path] = (f"{scheme}://{host}", source)
    for name, entry in rc.custom_channels.items():
        result[name] = (str(entry.value), entry.source)
    return result


def channel_alias(rc: CondaRc) -> str:
    """``channel_alias``: the rc's, else the conda's built-in, else rattler's (the same)."""
    if rc.channel_alias is not None:
        return str(rc.channel_alias.value).rstrip("/")
    if rc.conda is not None and rc.conda.channel_alias:
        return rc.conda.channel_alias.rstrip("/")
    import rattler  # deferred: start-up cost, only when a name needs the alias

    # rattler's default alias (conda's, too): the parent of a name's URL.
    return str(rattler.Channel("x").base_url).rstrip("/").rsplit("/", 1)[0]
