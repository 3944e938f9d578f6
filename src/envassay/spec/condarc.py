"""conda's channel settings as conda itself would load them: the condarc search path, the
``CONDA_*`` variables, and the built-in values of the conda installation that is found.

Read from conda's own source (``conda/base/constants.py`` SEARCH_PATH,
``conda/common/configuration.py``): files load in search-path order, then the
environment variables; a later source wins for a single value (``channel_alias``,
``channel_priority``), a map is updated key by key (``custom_channels``,
``custom_multichannels``), and a list (``channels``, ``default_channels``) is the later
sources' items first, then the earlier ones', each once. ``$CONDARC`` is read only when
its name is ``condarc``/``.condarc`` or ends in ``.yml``/``.yaml``; a ``condarc.d/``
folder gives its ``*.yml``/``*.yaml`` files in name order. ``$CONDA_PREFIX`` is, for
``conda create -p P``, the new prefix P (empty), so it adds nothing and is not searched.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from envassay.errors import ConfigError

CONDARC_NAMES = (".condarc", "condarc")
YAML_SUFFIXES = (".yml", ".yaml")
SYSTEM_PATHS = (
    *("/etc/conda/.condarc", "/etc/conda/condarc", "/etc/conda/condarc.d/"),
    *("/var/lib/conda/.condarc", "/var/lib/conda/condarc", "/var/lib/conda/condarc.d/"),
)
ROOT_PATHS = ("$CONDA_ROOT/.condarc", "$CONDA_ROOT/condarc", "$CONDA_ROOT/condarc.d/")
USER_PATHS = (
    *("$XDG_CONFIG_HOME/conda/.condarc", "$XDG_CONFIG_HOME/conda/condarc"),
    "$XDG_CONFIG_HOME/conda/condarc.d/",
    *("~/.config/conda/.condarc", "~/.config/conda/condarc", "~/.config/conda/condarc.d/"),
    *("~/.conda/.condarc", "~/.conda/condarc", "~/.conda/condarc.d/"),
    "~/.condarc",
)
SEARCH_PATH = (*SYSTEM_PATHS, *ROOT_PATHS, *USER_PATHS, "$CONDARC")
# The settings envassay reads, with the names conda also accepts for them.
LISTS = {"channels": ("channels", "channel"), "default_channels": ("default_channels",)}
SINGLES = {"channel_alias": ("channel_alias",), "channel_priority": ("channel_priority",)}
MAPS = ("custom_channels", "custom_multichannels")
PRIORITIES = ("strict", "flexible", "disabled")
# The conda release that stopped adding `defaults` to the rc channels when none are set.
NO_IMPLICIT_DEFAULTS = (25, 9)
# The first conda (of those tested) in which `custom_multichannels.defaults` replaces
# `default_channels`; before, the reserved name kept default_channels.
MULTICHANNEL_DEFAULTS = (26, 0)
ENV_SOURCE = "environment variable"
MAX_RC_BYTES = 1_000_000


@dataclass(frozen=True)
class CondaInstall:
    """The conda installation whose rules apply: its root, version and built-in values."""

    root: Path
    version: tuple[int, int] | None
    version_text: str = ""
    default_channels: tuple[str, ...] = ()
    channel_alias: str | None = None
    custom_channels: Mapping[str, str] = field(default_factory=dict)

    @property
    def implicit_defaults(self) -> bool:
        """Whether this conda lists `defaults` as the rc channels when no source sets any."""
        return self.version is not None and self.version < NO_IMPLICIT_DEFAULTS

    @property
    def multichannel_defaults(self) -> bool:
        """Whether ``custom_multichannels.defaults`` overrides ``default_channels``."""
        return self.version is None or self.version >= MULTICHANNEL_DEFAULTS

    def describe(self) -> str:
        return f"conda {self.version_text or 'of unknown version'} at {self.root}"


@dataclass(frozen=True)
class Sourced:
    """A value and where it came from (a file's path, `$CONDA_X`, or a built-in)."""

    value: Any
    source: str


@dataclass(frozen=True)
class CondaRc:
    """The merged channel settings; ``None``/empty where no source set them."""

    channels: tuple[Sourced, ...] | None = None
    default_channels: tuple[Sourced, ...] | None = None
    channel_alias: Sourced | None = None
    channel_priority: Sourced | None = None
    custom_channels: Mapping[str, Sourced] = field(default_factory=dict)
    custom_multichannels: Mapping[str, Sourced] = field(default_factory=dict)
    # A source sets custom_channels (even to {}): conda's built-in entries then go.
    custom_channels_set: bool = False
    files: tuple[Path, ...] = ()
    conda: CondaInstall | None = None

    @property
    def priority(self) -> str:
        return str(self.channel_priority.value) if self.channel_priority else "flexible"


def find_conda(environ: Mapping[str, str]) -> CondaInstall | None:
    """The conda whose root condarc and built-ins apply: ``$CONDA_EXE``, else conda on PATH."""
    exe = environ.get("CONDA_EXE") or shutil.which("conda", path=environ.get("PATH", ""))
    root_var = environ.get("CONDA_ROOT")
    if not exe and not root_var:
        return None
    root = Path(root_var) if root_var else Path(str(exe)).parent.parent
    return _install(root.absolute())


@cache
def _install(root: Path) -> CondaInstall:
    version, text = None, ""
    for info in sorted(root.glob("lib/python3*/site-packages/conda-*.dist-info")):
        if found := re.match(r"conda-(\d+)\.(\d+)", info.name):
            version = (int(found.group(1)), int(found.group(2)))
            text = info.name.removeprefix("conda-").removesuffix(".dist-info")
    values: dict[str, Any] = {}
    for constants in sorted(root.glob("lib/python3*/site-packages/conda/base/constants.py")):
        values = _constants(constants)
    custom = values.get("DEFAULT_CUSTOM_CHANNELS")
    return CondaInstall(
        root=root,
        version=version,
        version_text=text,
        default_channels=tuple(values.get("DEFAULT_CHANNELS_UNIX", ())),
        channel_alias=values.get("DEFAULT_CHANNEL_ALIAS"),
        custom_channels=dict(custom) if isinstance(custom, dict) else {},
    )


def _constants(path: Path) -> dict[str, Any]:
    """The literal built-in values in conda's ``constants.py`` (read, never imported)."""
    wanted = {"DEFAULT_CHANNELS_UNIX", "DEFAULT_CHANNEL_ALIAS", "DEFAULT_CUSTOM_CHANNELS"}
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return {}
    found: dict[str, Any] = {}
    for node in tree.body:
        target: ast.expr | None = node.target if isinstance(node, ast.AnnAssign) else None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        value = getattr(node, "value", None)
        if isinstance(target, ast.Name) and target.id in wanted and value is not None:
            try:
                found[target.id] = ast.literal_eval(value)
            except ValueError:
                continue
    return found


def search_path(environ: Mapping[str, str], conda: CondaInstall | None) -> Iterator[Path]:
    """The rc files conda reads, in its order (lowest precedence first)."""
    variables = dict(environ)
    if conda is not None:
        variables.setdefault("CONDA_ROOT", str(conda.root))
    home = environ.get("HOME") or str(Path.home())
    seen: set[Path] = set()
    for entry in SEARCH_PATH:
        text = re.sub(r"\$(\w+)", lambda m: variables.get(m.group(1), m.group(0)), entry)
        if text.startswith("~"):
            text = home + text[1:]
        if "$" in text:
            continue  # an unset variable: conda's path does not exist either
        for path in _expand(Path(text)):
            if path not in seen:
                seen.add(path)
                yield path


def _expand(path: Path) -> Iterator[Path]:
    if path.is_file() and (path.name in CONDARC_NAMES or path.suffix in YAML_SUFFIXES):
        yield path
    elif path.is_dir():
        try:
            children = sorted(path.iterdir())
        except OSError:
            return
        yield from (c for c in children if c.is_file() and c.suffix in YAML_SUFFIXES)


def load_condarc(environ: Mapping[str, str] | None = None) -> CondaRc:
    """The channel settings conda would use here (files, then ``CONDA_*`` variables)."""
    env = os.environ if environ is None else environ
    conda = find_conda(env)
    files = list(search_path(env, conda))
    sources: list[tuple[str, Mapping[str, Any]]] = [(str(p), _read_rc(p)) for p in files]
    sources.append((ENV_SOURCE, _from_environ(env)))
    lists = {key: _merge_list(sources, names) for key, names in LISTS.items()}
    singles = {key: _last(sources, names) for key, names in SINGLES.items()}
    maps = {key: _merge_map(sources, key) for key in MAPS}
    if singles["channel_priority"] is not None:
        value = str(singles["channel_priority"].value).lower()
        if value not in PRIORITIES:
            raise ConfigError(
                f"channel_priority is {value!r}; conda knows {', '.join(PRIORITIES)}",
                where=singles["channel_priority"].source,
            )
    return CondaRc(
        channels=lists["channels"],
        default_channels=lists["default_channels"],
        channel_alias=singles["channel_alias"],
        channel_priority=singles["channel_priority"],
        custom_channels=maps["custom_channels"],
        custom_multichannels=maps["custom_multichannels"],
        custom_channels_set=any(isinstance(d.get("custom_channels"), dict) for _, d in sources),
        files=tuple(files),
        conda=conda,
    )


def _read_rc(path: Path) -> Mapping[str, Any]:
    """One rc file's mapping; conda ignores (with a warning) a file it cannot read."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_RC_BYTES + 1)
        if len(raw) > MAX_RC_BYTES:
            return {}
        data = yaml.safe_load(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def _from_environ(environ: Mapping[str, str]) -> dict[str, Any]:
    """``CONDA_X`` -> ``x``, as conda's EnvRawParameter reads them; lists split at commas."""
    data: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith("CONDA_"):
            continue
        key = name[len("CONDA_") :].lower()
        if any(key in names for names in LISTS.values()):
            data[key] = [v.strip() for v in value.split(",") if v.strip()]
        elif any(key in names for names in SINGLES.values()):
            data[key] = value.split("!important")[0].strip()
    return data


def _label(source: str, key: str) -> str:
    return f"$CONDA_{key.upper()}" if source == ENV_SOURCE else source


def _merge_list(
    sources: list[tuple[str, Mapping[str, Any]]], names: tuple[str, ...]
) -> tuple[Sourced, ...] | None:
    """conda's SequenceParameter merge: later sources' items first, each item once."""
    found = [
        (source, name, data[name])
        for source, data in sources
        for name in names
        if name in data and isinstance(data[name], list)
    ]
    if not found:
        return None
    merged: dict[str, Sourced] = {}
    for source, name, items in reversed(found):
        for item in items:
            if isinstance(item, str) and item not in merged:
                merged[item] = Sourced(item, f"{_label(source, name)} ({name})")
    return tuple(merged.values())


def _last(sources: list[tuple[str, Mapping[str, Any]]], names: tuple[str, ...]) -> Sourced | None:
    result = None
    for source, data in sources:
        for name in names:
            value = data.get(name)
            if isinstance(value, str) and value:
                result = Sourced(value, f"{_label(source, name)} ({name})")
    return result


def _merge_map(sources: list[tuple[str, Mapping[str, Any]]], key: str) -> dict[str, Sourced]:
    merged: dict[str, Sourced] = {}
    for source, data in sources:
        value = data.get(key)
        if isinstance(value, dict):
            for name, target in value.items():
                merged[str(name)] = Sourced(target, f"{_label(source, key)} ({key}.{name})")
    return merged
