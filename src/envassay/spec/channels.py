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

import contextlib
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
    multi = multichannels(rc)
    if channel == DEFAULTS and DEFAULTS not in multi:
        default_channels(rc)  # raises: says why `defaults` has no meaning here
    if channel in multi:
        members, how = multi[channel]
        return [(simple_url(m, rc), how) for m in members]
    url = as_url(channel)
    if url is not None:
        return [(rebase_url(url, rc), None)]
    return [name_url(channel, rc)]


def rebase_url(url: str, rc: CondaRc) -> str:
    """A URL under a custom channel's or the alias's location, rebuilt from that location
    and the name after it, as conda's ``_read_channel_configuration`` does (its own
    scheme kept; slashes around the name dropped)."""
    scheme, _, rest = url.partition("://")
    test = rest.rstrip("/")
    custom = custom_channels(rc)
    for name in sorted(custom, key=len, reverse=True):
        location = _location(custom[name][0])
        that = _join(location, name)
        if _starts(test, that):
            return f"{scheme}://{_join(location, name, test.replace(that, '', 1))}"
    alias = _location(configured_alias(rc) or "")  # rattler's default: no import for it
    if alias and _starts(test, alias):
        return f"{scheme}://{_join(alias, test.replace(alias, '', 1))}"
    return url


def _location(base: str) -> str:
    return base.partition("://")[2].rstrip("/") if "://" in base else base.rstrip("/")


def _starts(test: str, prefix: str) -> bool:
    parts, head = test.split("/"), prefix.split("/")
    return parts[: len(head)] == head


def _join(*parts: str) -> str:
    """conda's ``join_url``: the parts without their slashes, a leading one kept."""
    lead = "/" if parts and parts[0].startswith("/") else ""
    return lead + "/".join(p.strip("/") for p in parts if p.strip("/"))


def multichannels(rc: CondaRc) -> dict[str, tuple[tuple[str, ...], str]]:
    """name -> (members, source): ``custom_multichannels`` and ``defaults`` (conda < 26:
    the reserved name keeps ``default_channels``; 26: a custom ``defaults`` replaces it).
    ``defaults`` is left out where nothing says what it is (see :func:`default_channels`)."""
    result = {
        name: (tuple(str(m) for m in entry.value), entry.source)
        for name, entry in rc.custom_multichannels.items()
        if isinstance(entry.value, list)
    }
    keep_custom = rc.conda is None or rc.conda.multichannel_defaults
    if DEFAULTS not in result or not keep_custom:
        with contextlib.suppress(ConfigError):
            result[DEFAULTS] = default_channels(rc)
    return result


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
    """A ``default_channels`` / multichannel member's URL (conda's ``make_simple_channel``)."""
    name, base = split_channel(channel, channel_alias(rc))
    return f"{base}/{name}" if name else base


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
    """name -> (base URL, source), as conda's ``context.custom_channels``: every
    multichannel member by its name (``defaults``' too), then ``custom_channels``
    (conda's built-in ones where none is set)."""
    result: dict[str, tuple[str, str]] = {}
    multi = multichannels(rc)
    names = any(as_url(m) is None for members, _ in multi.values() for m in members)
    alias = channel_alias(rc) if names else configured_alias(rc) or ""
    for members, source in multi.values():
        for member in members:
            name, base = split_channel(member, alias)
            result[name] = (base, source)
    if rc.conda is not None and not rc.custom_channels_set:
        for name, base in rc.conda.custom_channels.items():
            result[name] = (str(base), f"built-in custom_channels of {rc.conda.describe()}")
    for name, entry in rc.custom_channels.items():
        result[name] = (str(entry.value).rstrip("/"), entry.source)
    return result


def split_channel(member: str, alias: str) -> tuple[str, str]:
    """A multichannel member as conda's ``make_simple_channel`` names it: (name, base)."""
    url = as_url(member)
    if url is None:
        return member.strip("/"), alias
    scheme, _, rest = url.partition("://")
    location = _location(alias)
    if location and rest.startswith(location):  # a plain string prefix, as in conda
        return rest[len(location) :].strip("/"), f"{scheme}://{location}"
    host, _, path = rest.partition("/")
    return path.strip("/"), f"{scheme}://{host}"


def configured_alias(rc: CondaRc) -> str | None:
    """``channel_alias`` from the rc, else the found conda's built-in; None without both."""
    if rc.channel_alias is not None:
        return str(rc.channel_alias.value).rstrip("/")
    if rc.conda is not None and rc.conda.channel_alias:
        return rc.conda.channel_alias.rstrip("/")
    return None


def channel_alias(rc: CondaRc) -> str:
    """``channel_alias``: the rc's, else the conda's built-in, else rattler's (the same)."""
    if (configured := configured_alias(rc)) is not None:
        return configured
    import rattler  # deferred: start-up cost, only when a name needs the alias

    # rattler's default alias (conda's, too): the parent of a name's URL.
    return str(rattler.Channel("x").base_url).rstrip("/").rsplit("/", 1)[0]
