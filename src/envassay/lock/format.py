"""Lock files in conda-lock's unified format, version 1 (``envs/NAME.conda-lock.yml``).

The shape follows conda-lock's own models (``conda_lock/lockfile/v1/models.py``:
``Lockfile``, ``LockMeta``, ``LockedDependency``, ``HashModel``), which are
strict: no key outside them is allowed, so everything envassay needs beyond
them lives in ``metadata.custom_metadata`` (a string -> string mapping).
micromamba's reader (``env_lockfile``) additionally wants non-empty
``platforms``, ``sources`` and ``content_hash``, and an md5 or sha256 per
package; every lock written here has all of them.

``metadata.content_hash`` holds, for every platform, envassay's hash of the
spec's meaning (:attr:`envassay.spec.EnvSpec.content_hash`), not conda-lock's
own algorithm: conda-lock only uses it to decide whether to re-lock, and
``conda-lock install`` / ``micromamba create -f`` never read it.

Nothing here imports rattler: reading and checking a lock stays fast.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import yaml

from envassay import redact
from envassay.errors import SpecError, UserError
from envassay.spec.config import LOCK_SUFFIX
from envassay.yamlload import read_yaml

LOCK_VERSION = 1
Manager = Literal["conda", "pip"]
MANAGERS: tuple[Manager, ...] = ("conda", "pip")
ARCHIVE_SUFFIXES = (".tar.bz2", ".conda")

# custom_metadata keys envassay writes (values are strings, as conda-lock requires).
META_HASH = "envassay.content-hash"
META_PRIORITY = "envassay.channel-priority"  # the condarc's channel_priority it was solved with
META_HASH_TEXT = "sha256 of the spec's meaning as envassay reads it; not conda-lock's algorithm"
META_PIP_PREFIX = "envassay.pip."  # + platform: how that platform's pip: section was locked
PIP_UNRESOLVED = "unresolved"

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*")


class LockError(UserError):
    """A lock file that cannot be read or used: one line, exit 2."""


@dataclass(frozen=True)
class LockedPackage:
    """One ``package:`` entry: a conda package or a pip distribution for one platform."""

    name: str
    version: str
    manager: Manager
    platform: str
    url: str
    md5: str | None = None
    sha256: str | None = None
    dependencies: Mapping[str, str] = field(default_factory=dict)
    category: str = "main"
    optional: bool = False
    source: str | None = None  # a direct reference (pip `name @ URL`): conda-lock's `source`

    @property
    def filename(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1].split("#", 1)[0]

    @property
    def build(self) -> str:
        """A conda package's build string, taken from its file name (``name-version-build.ext``)."""
        if self.manager != "conda":
            return ""
        stem = self.filename
        for suffix in ARCHIVE_SUFFIXES:
            stem = stem.removesuffix(suffix)
        prefix = f"{self.name}-{self.version}-"
        return stem[len(prefix) :] if stem.startswith(prefix) else stem.rsplit("-", 1)[-1]

    @property
    def subdir(self) -> str:
        """The channel subdirectory of a conda package (``noarch``, ``linux-64``...)."""
        parts = self.url.rstrip("/").rsplit("/", 2)
        return parts[-2] if len(parts) == 3 else ""

    @property
    def channel(self) -> str:
        """The channel URL of a conda package: its URL without ``/subdir/file``."""
        if self.manager != "conda":
            return ""
        return self.url.rstrip("/").rsplit("/", 2)[0]

    @property
    def depends(self) -> list[str]:
        """The ``dependencies`` mapping as conda ``depends`` strings."""
        return [
            name if spec in ("", "*") else f"{name} {spec}"
            for name, spec in self.dependencies.items()
        ]

    def describe(self) -> str:
        """``version build`` for conda, ``version`` for pip: what a diff table shows."""
        return f"{self.version} {self.build}".strip()

    def identity(self) -> dict[str, Any]:
        """What makes this entry what it is, for digests."""
        return {
            "name": self.name,
            "version": self.version,
            "manager": self.manager,
            "url": self.url,
            "md5": self.md5,
            "sha256": self.sha256,
        }


@dataclass(frozen=True)
class LockMetadata:
    """``metadata:``: per-platform content hashes, channels, platforms, sources."""

    content_hash: Mapping[str, str]
    channels: tuple[str, ...]
    platforms: tuple[str, ...]
    sources: tuple[str, ...]
    inputs: Mapping[str, Mapping[str, str | None]] = field(default_factory=dict)
    custom: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)  # time/git metadata, kept as read


@dataclass(frozen=True)
class LockFile:
    """A whole lock: metadata and every package of every platform."""

    metadata: LockMetadata
    packages: tuple[LockedPackage, ...]

    @property
    def platforms(self) -> tuple[str, ...]:
        return self.metadata.platforms

    def packages_for(self, platform: str, manager: Manager | None = None) -> list[LockedPackage]:
        """The packages to install on ``platform`` (optional categories left out)."""
        return [
            p
            for p in self.packages
            if p.platform == platform
            and not p.optional
            and (manager is None or p.manager == manager)
        ]

    def pip_note(self, platform: str) -> str | None:
        """How the pip: section was locked for ``platform``; None when there was none."""
        return self.metadata.custom.get(META_PIP_PREFIX + platform)

    def pip_resolved(self, platform: str) -> bool:
        note = self.pip_note(platform)
        return note is None or not note.startswith(PIP_UNRESOLVED)

    def content_hash(self, platform: str) -> str | None:
        return self.metadata.content_hash.get(platform)

    def digest(self, platform: str) -> str:
        """sha256 of what ``platform`` installs: the env store's key for an env made from it."""
        entries = sorted(
            (p.identity() for p in self.packages_for(platform)),
            key=lambda e: (e["manager"], e["name"]),
        )
        blob = {"platform": platform, "packages": entries, "pip": self.pip_note(platform)}
        text = json.dumps(blob, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    # ------------------------------------------------------------------ writing

    def to_dict(self) -> dict[str, Any]:
        """The document conda-lock's ``Lockfile.dict_for_output`` would write."""
        meta = self.metadata
        metadata: dict[str, Any] = {
            "content_hash": dict(meta.content_hash),
            # conda-lock's convention: a credential is written as the ${VAR} that holds it.
            "channels": [_channel_dict(c) for c in meta.channels],
            "platforms": list(meta.platforms),
            "sources": list(meta.sources),
        }
        metadata.update(meta.extra)
        if meta.inputs:
            metadata["inputs_metadata"] = {k: dict(v) for k, v in meta.inputs.items()}
        if meta.custom:
            metadata["custom_metadata"] = dict(meta.custom)
        return {
            "version": LOCK_VERSION,
            "metadata": metadata,
            "package": [_package_dict(p) for p in sorted_packages(self.packages)],
        }

    def to_yaml(self, header: Sequence[str] = ()) -> str:
        comments = "".join(f"# {line}".rstrip() + "\n" for line in header)
        body = yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=False, width=1000)
        return comments + body

    def write(self, path: Path, header: Sequence[str] = ()) -> None:
        """Write atomically: a reader never sees half a lock."""
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(self.to_yaml(header), encoding="utf-8")
        tmp.replace(path)


def sorted_packages(packages: Iterable[LockedPackage]) -> list[LockedPackage]:
    """conda-lock's order: by (manager, name, platform)."""
    return sorted(packages, key=lambda p: (p.manager, p.name, p.platform))


def _package_dict(p: LockedPackage) -> dict[str, Any]:
    hashes = {k: v for k, v in (("md5", p.md5), ("sha256", p.sha256)) if v}
    return {
        "name": p.name,
        "version": p.version,
        "manager": p.manager,
        "platform": p.platform,
        "dependencies": dict(p.dependencies),
        "url": p.url,
        "hash": hashes,
        "category": p.category,
        "optional": p.optional,
        **({"source": {"type": "url", "url": p.source}} if p.source else {}),
    }


def lock_path_for(spec_path: Path) -> Path:
    """``envs/NAME.yml`` -> ``envs/NAME.conda-lock.yml``."""
    stem = spec_path.name
    for suffix in (".yml", ".yaml"):
        stem = stem.removesuffix(suffix)
    return spec_path.with_name(stem + LOCK_SUFFIX)


def split_depends(depends: Iterable[str]) -> dict[str, str]:
    """conda ``depends`` strings -> conda-lock's ``dependencies`` mapping (name -> constraint)."""
    result: dict[str, str] = {}
    for dep in depends:
        text = dep.strip()
        match = _NAME.match(text)
        if not match:
            continue
        name, rest = match.group(0), text[match.end() :].strip() or "*"
        if name in result and result[name] != "*" and rest != "*":
            result[name] = f"{result[name]},{rest}"  # two constraints on one name: both hold
        elif name not in result or result[name] == "*":
            result[name] = rest
    return result


# ---------------------------------------------------------------------- reading


def read_lock(path: Path) -> LockFile:
    """Read and validate a lock file; LockError (one line, exit 2) when it is unusable."""
    try:
        data, _lines = read_yaml(path)
    except SpecError as exc:
        hint = "regenerate it with `envassay lock`"
        if exc.message.startswith("not valid YAML") and _is_explicit(path):
            raise LockError(
                "an @EXPLICIT lock (one platform's URLs, as `conda-lock --kind explicit` and "
                "`conda list --explicit` write), not conda-lock's unified format",
                where=path,
                hint=f"{hint}, or `conda-lock --kind lock`",
            ) from None
        raise LockError(exc.message, where=exc.where, hint=hint) from None
    return parse_lock(data, path)


def _is_explicit(path: Path) -> bool:
    """Whether an unreadable lock is an explicit one: a line ``@EXPLICIT`` near its top."""
    try:
        with path.open("rb") as handle:
            head = handle.read(64 * 1024)
    except OSError:
        return False
    return b"\n@EXPLICIT" in b"\n" + head


def parse_lock(data: Any, where: Path | str) -> LockFile:
    """Validate a loaded document against conda-lock's unified format version 1."""
    reader = _Reader(where)
    top = reader.mapping(data, "the document")
    version = top.get("version")
    if version is None:
        raise reader.error("no `version:`; not a conda-lock unified lock file")
    if isinstance(version, bool) or version != LOCK_VERSION:  # `true` == 1 in Python
        raise reader.error(
            f"lock format version {version!r} is not supported; envassay reads conda-lock's "
            f"unified format version {LOCK_VERSION}",
            hint="regenerate it with `envassay lock` (or `conda-lock --kind lock`)",
        )
    meta = reader.mapping(top.get("metadata"), "metadata")
    packages = reader.sequence(top.get("package"), "package")
    metadata = reader.metadata(meta)
    parsed = tuple(reader.package(item, f"package[{i}]") for i, item in enumerate(packages))
    unknown = sorted({p.platform for p in parsed} - set(metadata.platforms))
    if unknown:
        raise reader.error(f"packages for platform(s) {unknown} not listed in metadata.platforms")
    return LockFile(metadata, parsed)


class _Reader:
    def __init__(self, where: Path | str) -> None:
        self.where = str(where)

    def error(self, message: str, hint: str = "regenerate it with `envassay lock`") -> LockError:
        return LockError(message, where=self.where, hint=hint)

    def mapping(self, value: Any, key: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(f"{key}: expected a mapping, got {_kind(value)}")
        return value

    def sequence(self, value: Any, key: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.error(f"{key}: expected a list, got {_kind(value)}")
        return value

    def text(self, value: Any, key: str, *, optional: bool = False) -> str:
        if optional and (value is None or value == ""):
            return ""
        if not isinstance(value, str) or not value:
            raise self.error(f"{key}: expected a non-empty string, got {_kind(value)}")
        return value

    def texts(self, value: Any, key: str) -> tuple[str, ...]:
        return tuple(self.text(v, f"{key}[{i}]") for i, v in enumerate(self.sequence(value, key)))

    def strmap(self, value: Any, key: str) -> dict[str, str]:
        table = self.mapping(value, key)
        return {
            self.text(k, f"{key} key"): self.text(v, f"{key}.{k}", optional=True)
            for k, v in table.items()
        }

    def metadata(self, meta: dict[str, Any]) -> LockMetadata:
        channels = []
        for i, item in enumerate(self.sequence(meta.get("channels"), "metadata.channels")):
            if isinstance(item, str):  # conda-lock accepts plain strings too
                channels.append(item)
            else:
                key = f"metadata.channels[{i}]"
                channels.append(self.text(self.mapping(item, key).get("url"), f"{key}.url"))
        platforms = self.texts(meta.get("platforms"), "metadata.platforms")
        if not platforms:
            raise self.error("metadata.platforms is empty")
        inputs: dict[str, dict[str, str | None]] = {}
        table = self.mapping(meta.get("inputs_metadata") or {}, "metadata.inputs_metadata")
        for source, value in table.items():
            entry = self.mapping(value, f"metadata.inputs_metadata.{source}")
            inputs[str(source)] = {k: entry.get(k) for k in ("md5", "sha256")}
        known = {"content_hash", "channels", "platforms", "sources"}
        known |= {"inputs_metadata", "custom_metadata"}
        return LockMetadata(
            content_hash=self.strmap(meta.get("content_hash"), "metadata.content_hash"),
            channels=tuple(channels),
            platforms=platforms,
            sources=self.texts(meta.get("sources", []), "metadata.sources"),
            inputs=inputs,
            custom=self.strmap(meta.get("custom_metadata") or {}, "metadata.custom_metadata"),
            extra={k: v for k, v in meta.items() if k not in known},
        )

    def package(self, value: Any, key: str) -> LockedPackage:
        item = self.mapping(value, key)
        name = self.text(item.get("name"), f"{key}.name")
        where = f"{key} ({name})"
        manager = item.get("manager")
        if manager not in MANAGERS:
            raise self.error(f"{where}.manager: expected conda or pip, got {manager!r}")
        hashes = self.mapping(item.get("hash"), f"{where}.hash")
        md5 = self.text(hashes.get("md5"), f"{where}.hash.md5", optional=True) or None
        sha256 = self.text(hashes.get("sha256"), f"{where}.hash.sha256", optional=True) or None
        if manager == "conda" and not (md5 or sha256):
            raise self.error(f"{where}.hash: a conda package needs an md5 or a sha256")
        for algo, digest, size in (("md5", md5, 32), ("sha256", sha256, 64)):
            if digest is not None and not re.fullmatch(rf"[0-9a-fA-F]{{{size}}}", digest):
                raise self.error(f"{where}.hash.{algo}: {digest!r} is not a hex {algo} digest")
        optional = item.get("optional", False)
        if not isinstance(optional, bool):
            raise self.error(f"{where}.optional: expected true or false, got {optional!r}")
        deps = item.get("dependencies") or {}
        source = item.get("source")
        if source is not None:
            url = self.mapping(source, f"{where}.source").get("url")
            source = self.text(url, f"{where}.source.url")
        return LockedPackage(
            name=name,
            version=self.text(item.get("version"), f"{where}.version"),
            manager=cast(Manager, manager),
            platform=self.text(item.get("platform"), f"{where}.platform"),
            url=self.text(item.get("url"), f"{where}.url"),
            md5=md5.lower() if md5 else None,
            sha256=sha256.lower() if sha256 else None,
            dependencies=self.strmap(deps, f"{where}.dependencies"),
            category=self.text(item.get("category", "main"), f"{where}.category"),
            optional=optional,
            source=source,
        )


def _kind(value: object) -> str:
    names = {dict: "a mapping", list: "a list", str: "a string", type(None): "nothing"}
    return names.get(type(value), f"{type(value).__name__} {value!r}")


def _channel_dict(url: str) -> dict[str, Any]:
    written = redact.placeholders(url)
    return {"url": written, "used_env_vars": redact.placeholder_names(written)}


@dataclass(frozen=True)
class LockedEnv:
    """One platform of a fresh lock: create exactly these packages, no solve."""

    lock_path: Path
    platform: str
    conda: Sequence[LockedPackage]
    pip: Sequence[LockedPackage]
    pip_resolved: bool = True
    digest: str = ""  # the lock's digest for this platform: the env store's key
