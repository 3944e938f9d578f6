"""EnvSpec: an environment.yml read the way conda reads it, validated, with a content hash."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import re
import stat
import sys
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from difflib import get_close_matches
from pathlib import Path
from typing import Any, Literal

from envassay import redact
from envassay.errors import SpecError
from envassay.spec.platforms import KNOWN_PLATFORMS
from envassay.yamlload import read_yaml_bytes

# conda's own keys (conda/env/env.py VALID_KEYS) plus conda-lock's `platforms`.
KNOWN_KEYS = ("name", "channels", "dependencies", "variables", "prefix", "platforms")
# conda's reader takes any string as a name: `conda env export` writes an env's whole path
# there when the env lives outside conda's envs directories (`name: /scratch/envs/x`).
# envassay only labels the env with it (store paths and image tags use a slug), so it
# refuses only control characters, which no label can show.
NAME_REFUSED = re.compile(r"[\x00-\x1f\x7f]")
VARIABLE_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# A `-r file` in the pip: section is read (its bytes are part of the content hash).
MAX_REQUIREMENTS_FILE_BYTES = 1024 * 1024
CHANNEL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9_.-]+)*$")
URL_SCHEMES = ("http://", "https://", "file://", "s3://", "gcs://", "oci://")
VCS_PREFIXES = ("git+", "hg+", "svn+", "bzr+")

# "pip-decides": a line conda hands to pip unchanged that pip will refuse (`tensorflow=2.15`,
# an option pip's requirements files do not take). conda reads the file and fails at create,
# when pip runs; envassay reads it too, warns, and lets pip's verdict come at create.
PipKind = Literal[
    "requirement", "url", "path", "editable", "requirements-file", "option", "pip-decides"
]
# pip options conda passes through in its generated requirements file.
PIP_OPTIONS_WITH_VALUE = (
    "--index-url",
    "-i",
    "--extra-index-url",
    "--find-links",
    "-f",
    "--trusted-host",
    "--constraint",
    "-c",
)
PIP_FLAG_OPTIONS = (
    "--no-index",
    "--pre",
    "--prefer-binary",
    "--only-binary",
    "--no-binary",
    "--require-hashes",
    "--use-feature",
)
# pip's ARCHIVE_EXTENSIONS (utils/filetypes.py).
ARCHIVE_SUFFIXES: tuple[str, ...] = (".whl", ".zip", ".tar.gz", ".tgz", ".tar", ".tar.bz2")
ARCHIVE_SUFFIXES += (".tbz", ".tar.xz", ".txz", ".tlz", ".tar.lz", ".tar.lzma")
# pip's COMMENT_RE: `#` at the start or after whitespace (a URL's `#egg=` stays).
PIP_COMMENT = re.compile(r"(^|\s+)#.*$")
# pip's break_args_options: a requirement line's options start at its first `-` word
# (`--hash=...`, `--config-settings`, but also `dipy --only-binary dipy`).
PIP_REQUIREMENT_OPTIONS = re.compile(r"\s+(?=-)")


@dataclass(frozen=True)
class CondaDependency:
    """One conda MatchSpec from `dependencies:`."""

    text: str
    normalized: str
    name: str
    channel: str | None
    line: int | None = None


@dataclass(frozen=True)
class PipRequirement:
    """One line of the `pip:` sub-list, classified; ``text`` is kept verbatim for pip."""

    text: str
    kind: PipKind
    name: str | None = None
    specifier: str = ""
    marker: str | None = None
    line: int | None = None

    @property
    def normalized(self) -> str:
        """The line as pip would understand it, names canonicalised for hashing."""
        if self.kind == "requirement":
            from packaging.requirements import Requirement

            requirement, *options = PIP_REQUIREMENT_OPTIONS.split(self.text, maxsplit=1)
            return " ".join([str(Requirement(requirement)), *options])
        return self.text


@dataclass(frozen=True)
class EnvSpec:
    """An environment.yml as envassay read it."""

    path: Path
    name: str
    channels: tuple[str, ...]
    nodefaults: bool
    conda: tuple[CondaDependency, ...]
    pip: tuple[PipRequirement, ...]
    variables: Mapping[str, str] = field(default_factory=dict)
    prefix: str | None = None
    platforms: tuple[str, ...] = ()
    ignored_keys: tuple[str, ...] = ()  # top-level keys envassay (and conda) do not read
    # `- npm: [...]`, `- sel(linux): gdb`: sections conda reads and installs nothing from
    # (conda 26 drops them; conda 24 stops: "Unable to install package for npm").
    # (key, line)
    other_installers: tuple[tuple[str, int | None], ...] = ()

    pip_section: bool = False  # a `pip:` key, even an empty one: conda then adds pip
    # What the file said besides its dependencies, and its bytes' hashes, from the same
    # read (lock status and the lock writer need not read the file again); None: an
    # EnvSpec not read from a file.
    header: SpecHeader | None = field(default=None, compare=False, repr=False)
    md5: str | None = field(default=None, compare=False, repr=False)

    @property
    def has_pip_section(self) -> bool:
        return bool(self.pip) or self.pip_section

    @property
    def declares_pip(self) -> bool:
        return any(dep.name == "pip" for dep in self.conda)

    @property
    def solve_specs(self) -> list[str]:
        """The conda specs to solve: pip is added, as conda does, when a pip section needs it."""
        specs = [dep.normalized for dep in self.conda]
        if self.has_pip_section and not self.declares_pip:
            specs.append("pip")
        return specs

    @property
    def pip_requirement_names(self) -> list[str]:
        return [req.name for req in self.pip if req.name]

    def meaning(self) -> dict[str, Any]:
        """What the spec asks for, independent of its formatting, comments and order.

        Dependency order does not change a solve, so requirements are sorted;
        channel order is priority and pip options apply in order, so those are kept.
        """
        return {
            # Keyed by meaning: a rotated password or token is the same spec.
            "channels": [redact.neutral(c) for c in self.channels],
            "nodefaults": self.nodefaults,
            "conda": sorted(dep.normalized for dep in self.conda),
            "pip": sorted(req.normalized for req in self.pip if req.kind != "option"),
            "pip_options": [redact.neutral(r.text) for r in self.pip if r.kind == "option"],
            "pip_files": {
                req.text: _file_digest(self.path.parent, req)
                for req in self.pip
                if req.kind == "requirements-file"
            },
            "variables": dict(sorted(self.variables.items())),
        }

    @functools.cached_property
    def content_hash(self) -> str:
        """sha256 of the spec's meaning (see :meth:`meaning`), computed once."""
        blob = json.dumps(self.meaning(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view, for `envassay spec --json`."""
        return {
            "path": str(self.path),
            "name": self.name,
            "channels": list(self.channels),
            "nodefaults": self.nodefaults,
            "conda": [
                {"text": d.text, "normalized": d.normalized, "name": d.name, "channel": d.channel}
                for d in self.conda
            ],
            "pip_added": self.has_pip_section and not self.declares_pip,
            "pip": [
                {
                    "text": r.text,
                    "kind": r.kind,
                    "name": r.name,
                    "specifier": r.specifier,
                    "marker": r.marker,
                }
                for r in self.pip
            ],
            "variables": dict(self.variables),
            "prefix": self.prefix,
            "platforms": list(self.platforms),
            "ignored_keys": list(self.ignored_keys),
            "other_installers": [key for key, _line in self.other_installers],
            "content_hash": self.content_hash,
        }


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    """One line on stderr, once per process (a spec is read at several stages)."""
    if message not in _warned:
        _warned.add(message)
        print(f"envassay: warning: {message}", file=sys.stderr)


def load_spec(path: str | Path) -> EnvSpec:
    """Read and validate an environment.yml; raise SpecError (one line, with file:line) if bad."""
    path = Path(path)
    data, lines, raw = read_yaml_bytes(path)
    if data is None:
        raise SpecError("empty file; expected a mapping with `dependencies:`", where=path)
    if not isinstance(data, dict):
        raise SpecError(f"expected a mapping at the top level, got {_kind(data)}", where=path)
    spec = _Parser(path, lines).parse(data)
    header = _header(path, data, lines, raw)
    return dataclasses.replace(spec, header=header, md5=hashlib.md5(raw).hexdigest())


@dataclass(frozen=True)
class SpecHeader:
    """What a spec says besides its dependencies, and the sha256 of its bytes."""

    path: Path
    name: str
    channels: tuple[str, ...]
    platforms: tuple[str, ...]
    sha256: str
    requirement_files: bool  # a `-r file` line: the meaning depends on another file
    nodefaults: bool = False


def read_spec_header(path: str | Path) -> SpecHeader:
    """Read a spec's name, channels and platforms without parsing its MatchSpecs.

    Does not import rattler, so a lock's freshness can be checked in a few milliseconds
    when the spec's bytes are the ones the lock was made from.
    """
    path = Path(path)
    data, lines, raw = read_yaml_bytes(path)  # it refuses devices, FIFOs and huge files
    return _header(path, data, lines, raw)


def _header(path: Path, data: Any, lines: dict[int, int], raw: bytes) -> SpecHeader:
    if not isinstance(data, dict):
        raise SpecError("expected a mapping with `dependencies:`", where=path)
    parser = _Parser(path, lines)
    channels, nodefaults = parser.channels(data.get("channels"))
    dependencies = data.get("dependencies")
    if dependencies is not None and not isinstance(dependencies, list):
        raise parser.error(f"`dependencies` must be a list, got {_kind(dependencies)}")
    pip_lines = [
        line
        for item in dependencies or []
        if isinstance(item, dict) and isinstance(item.get("pip"), list)
        for line in item["pip"]
    ]
    return SpecHeader(
        path=path,
        name=parser.name(data.get("name")),
        channels=channels,
        platforms=parser.platforms(data.get("platforms")),
        sha256=hashlib.sha256(raw).hexdigest(),
        requirement_files=any(
            isinstance(line, str) and line.strip().startswith(("-r ", "--requirement"))
            for line in pip_lines
        ),
        nodefaults=nodefaults,
    )


# conda reads `name=VERSION` as `name VERSION*`, also where VERSION starts with `>` or `<`
# (a real spec's `ninja=>1.10.2` is conda's `ninja >1.10.2*`, which matches 1.10.2 on);
# rattler refuses that form, so it is handed to rattler as conda reads it.
_EQUALS_THEN_OPERATOR = re.compile(r"(?P<name>[^\s=<>!~\[]+)=(?P<version>[<>]=?[^\s=<>!~,|*]+)")


# conda's MatchSpec takes the last `[...]` as key=value pairs and drops what is not a pair:
# a pip-style extra in the name position (`nbconvert[execute]!=6.0.0`, `black[jupyter]`,
# matplotlib's own environment.yml) is read as the bare name; rattler refuses it.
_BRACKETS = re.compile(r".*(\[.*\])")
_BRACKET_PAIR = re.compile(r"[a-zA-Z0-9_-]+?=")


def _as_conda_reads(text: str) -> str:
    if (brackets := _BRACKETS.match(text)) and not _BRACKET_PAIR.search(brackets[1]):
        text = text.replace(brackets[1], "").strip()
    if match := _EQUALS_THEN_OPERATOR.fullmatch(text):
        return f"{match['name']} {match['version']}*"
    return text


class _Parser:
    def __init__(self, path: Path, lines: dict[int, int]) -> None:
        self.path = path
        self.lines = lines

    def where(self, value: object = None) -> str:
        line = self.lines.get(id(value)) if value is not None else None
        return f"{self.path}:{line}" if line else str(self.path)

    def error(self, message: str, value: object = None, hint: str = "") -> SpecError:
        return SpecError(message, where=self.where(value), hint=hint)

    def parse(self, data: dict[Any, Any]) -> EnvSpec:
        unknown = [str(k) for k in data if k not in KNOWN_KEYS]
        # conda warns and ignores unknown keys (conda-lock's `category:`, `selectors:`, ...),
        # near misses too (`names:`, `chanels:`): so does envassay, and it names the key
        # a near miss was probably meant to be.
        if unknown:
            named = [
                f"{k!r} (did you mean {m[0]!r}?)"
                if (m := get_close_matches(k, KNOWN_KEYS, 1, 0.8))
                else repr(k)
                for k in unknown
            ]
            _warn_once(f"{self.path}: ignoring unknown key(s) {', '.join(named)}, as conda does")
        if "channels" in data and data["channels"] is None:
            # conda's reader fails on it (TypeError: 'NoneType' object is not iterable).
            raise self.error(
                "`channels:` has no value; conda cannot read it",
                hint="list the channels, or remove the key",
            )
        channels, nodefaults = self.channels(data.get("channels"))
        conda, pip, pip_section, others = self.dependencies(data.get("dependencies"))
        return EnvSpec(
            path=self.path,
            name=self.name(data.get("name")),
            channels=channels,
            nodefaults=nodefaults,
            conda=conda,
            pip=pip,
            variables=self.variables(data.get("variables")),
            prefix=self.prefix(data.get("prefix")),
            platforms=self.platforms(data.get("platforms")),
            ignored_keys=tuple(unknown),
            other_installers=others,
            pip_section=pip_section,
        )

    def name(self, value: Any) -> str:
        if value is None:
            value = self.path.name.split(".")[0]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)  # `name: 2024`: conda's reader takes any scalar
        if not isinstance(value, str) or not value.strip() or NAME_REFUSED.search(value):
            raise self.error(
                f"`name` {value!r} is not a valid environment name",
                value,
                "a name is a one-line label without '/' or '\\' (conda refuses '/' too)",
            )
        return value

    def channels(self, value: Any) -> tuple[tuple[str, ...], bool]:
        if value is None:
            return (), False
        if not isinstance(value, list):
            raise self.error(f"`channels` must be a list, got {_kind(value)}", value)
        result: list[str] = []
        nodefaults = False
        for item in value:
            if not isinstance(item, str) or not item.strip():
                raise self.error(f"a channel must be a non-empty string, got {item!r}", value)
            item = item.strip()
            if item == "nodefaults":
                nodefaults = True
            elif item not in result:
                result.append(self.channel(item, value))
        return tuple(result), nodefaults

    def channel(self, item: str, context: object) -> str:
        redact.remember_in(item)  # its password or token, masked wherever it shows
        if refused := redact.refusal(item, channel=True):
            raise self.error(refused, item if id(item) in self.lines else context)
        if item.startswith(URL_SCHEMES):
            if item.startswith("file://"):
                local = Path(item[len("file://") :])
                if not local.is_dir():
                    raise self.error(
                        f"channel {item} does not exist",
                        context,
                        "check the path or build the channel",
                    )
            return item.rstrip("/")
        if item.startswith(("/", "./", "../", "~")):
            local = (self.path.parent / Path(item).expanduser()).resolve()
            if not local.is_dir():
                raise self.error(f"channel directory {item} does not exist", context)
            return local.as_uri()
        if not CHANNEL_NAME_PATTERN.match(item):
            raise self.error(
                f"channel {item!r} is neither a channel name, a URL nor a directory", context
            )
        return item

    def dependencies(
        self, value: Any
    ) -> tuple[
        tuple[CondaDependency, ...],
        tuple[PipRequirement, ...],
        bool,
        tuple[tuple[str, int | None], ...],
    ]:
        """conda's Dependencies.parse: MatchSpecs, and each mapping's keys as installer
        sections. No or empty `dependencies` is an empty environment, as conda makes it."""
        if value is None or value == []:
            _warn_once(f"{self.path}: no dependencies: an empty environment, as conda makes it")
            return (), (), False, ()
        if not isinstance(value, list):
            # conda iterates a mapping's keys as MatchSpecs (a CI file's `override:` becomes
            # a package); that reading would make every check lie, so it is refused.
            raise self.error(f"`dependencies` must be a list, got {_kind(value)}", value)
        conda: list[CondaDependency] = []
        pip: list[PipRequirement] = []
        pip_section = False
        others: dict[str, int | None] = {}
        for item in value:
            if isinstance(item, dict):
                for key, lines in item.items():
                    if key == "pip":
                        if pip_section:
                            # conda's dict.update keeps only the last `pip:` section: the
                            # first one's packages would silently not be installed.
                            raise self.error(
                                "a second `pip:` section; conda installs only the last one",
                                item,
                                "merge them into one `pip:` list",
                            )
                        pip_section = True
                        pip.extend(self.pip_lines(lines, item))
                    elif key == "conda":
                        # conda's dict.update puts this list in place of the MatchSpecs
                        # read so far: they would silently not be installed.
                        raise self.error(
                            "a `conda:` mapping in `dependencies` replaces, in conda's"
                            " reader, the packages listed before it",
                            item,
                            "list the packages directly under `dependencies:`",
                        )
                    else:
                        others[str(key)] = self.lines.get(id(item))
            elif isinstance(item, str):
                conda.append(self.conda_dependency(item, value))
            else:
                raise self.error(
                    f"dependency {item!r} must be a string MatchSpec or a `pip:` list",
                    value,
                    'quote versions, e.g. "python=3.11"',
                )
        if others:
            _warn_once(
                f"{self.path}:{next(iter(others.values())) or '?'}: nothing is installed from the "
                f"{', '.join(f'`{k}:`' for k in others)} section(s), as conda 26 installs"
                " nothing from them (it installs conda packages and `pip:`; conda 24 stops"
                " there instead)"
            )
        return tuple(conda), tuple(pip), pip_section, tuple(others.items())

    def conda_dependency(self, text: str, context: object) -> CondaDependency:
        from rattler import MatchSpec  # rattler is only needed once a spec is read

        line = self.lines.get(id(text)) or self.lines.get(id(context))
        try:
            spec = MatchSpec(_as_conda_reads(text.strip()))
        except (KeyboardInterrupt, SystemExit):
            raise
        # rattler raises its own InvalidMatchSpecError; a Rust panic arrives as pyo3's
        # PanicException, a BaseException: either way the text is the user's to fix.
        except BaseException as exc:
            raise SpecError(
                f"invalid conda MatchSpec {text!r}: {exc}",
                where=f"{self.path}:{line}" if line else self.path,
                hint="forms: numpy, numpy=1.26, numpy>=1.24,<2, numpy 1.26.*, channel::name=1.0",
            ) from None
        if spec.name is None:
            raise SpecError(f"MatchSpec {text!r} names no package", where=self.where(context))
        channel = spec.channel.name if spec.channel is not None else None
        return CondaDependency(text, str(spec), spec.name.normalized, channel, line)

    def pip_lines(self, lines: Any, item: dict[Any, Any]) -> list[PipRequirement]:
        if lines is None:
            return []  # `pip:` with nothing under it: conda still adds pip
        if not isinstance(lines, list):
            raise self.error(f"`pip:` must be a list, got {_kind(lines)}", item)
        result = []
        for text in lines:
            if not isinstance(text, str):
                raise self.error(f"pip requirement {text!r} must be a string", lines)
            line = self.lines.get(id(text)) or self.lines.get(id(lines))
            redact.remember_in(text)  # an index URL's password, masked wherever it shows
            if refused := redact.refusal_in(text):
                raise SpecError(refused, where=f"{self.path}:{line}" if line else self.path)
            req = parse_pip_line(text.strip(), self.path, line)
            if req is None:
                continue  # a comment or blank line: pip skips it
            if req.kind == "requirements-file" and _file_digest(self.path.parent, req) is None:
                if os.path.lexists(_requirements_target(self.path.parent, req)):
                    # A device, a FIFO or a huge file: pip would read it without end.
                    raise SpecError(
                        f"pip requirements file in {req.text!r} cannot be read "
                        f"(a regular file of at most {MAX_REQUIREMENTS_FILE_BYTES} bytes)",
                        where=f"{self.path}:{line}" if line else self.path,
                    )
                # Not there: conda reads the spec and pip stops at create; so does envassay.
                _warn_once(
                    f"{self.path}:{line}: pip will not find the requirements file in"
                    f" {req.text!r} (a regular file of at most {MAX_REQUIREMENTS_FILE_BYTES}"
                    " bytes): creating this env stops there, as conda's does"
                )
            elif req.kind == "pip-decides":
                _warn_once(
                    f"{self.path}:{line}: pip will refuse {req.text!r} at create"
                    f" ({req.specifier}), as it does under conda"
                )
            result.append(req)
        return result

    def variables(self, value: Any) -> dict[str, str]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.error(f"`variables` must be a mapping, got {_kind(value)}", value)
        result = {}
        for key, val in value.items():
            if not isinstance(key, str) or isinstance(val, (dict, list)):
                raise self.error(f"variable {key!r} must map a name to a plain value", value)
            if not VARIABLE_PATTERN.match(key):
                raise self.error(
                    f"variable name {key!r} is not an environment variable name",
                    value,
                    "use letters, digits and '_', not starting with a digit",
                )
            # `D:` with no value: conda stores null and its activation exports the text
            # None (`export D='None'`); so the env has D=None, and so envassay reads it.
            result[key] = str(val)
        return result

    def platforms(self, value: Any) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
            raise self.error("`platforms` must be a list of strings such as linux-64", value)

        unknown = [p for p in value if p not in KNOWN_PLATFORMS]
        if unknown:
            raise self.error(
                f"unknown platform(s) {unknown} in `platforms`",
                value,
                f"expected some of {', '.join(KNOWN_PLATFORMS)}",
            )
        return tuple(dict.fromkeys(value))

    def prefix(self, value: Any) -> str | None:
        """conda's `prefix:` (what `conda env export` writes: `C:\\...\\envs\\x`,
        `~/anaconda3/envs/x`): read as any string, as conda reads it, kept and never used.
        envassay creates every env in its store (or at `--prefix`); a spec file never
        chooses where anything is written."""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        return self.optional_str(value, "prefix")

    def optional_str(self, value: Any, key: str) -> str | None:
        if value is None or isinstance(value, str):
            return value
        raise self.error(f"`{key}` must be a string, got {_kind(value)}", value)


def parse_pip_line(text: str, path: Path, line: int | None = None) -> PipRequirement | None:
    """Classify one `pip:` entry the way pip reads a line of a requirements file.

    conda writes the `pip:` lines into a requirements file next to the spec and runs pip
    there, so pip's rules apply (pip/_internal/req: a comment after whitespace is dropped;
    a line with a path separator or a leading `.` is a local path; options after a
    requirement, such as `--hash`, belong to that requirement).
    """
    text = PIP_COMMENT.sub("", text).strip()
    if not text:
        return None  # pip skips blank and comment lines
    head, _, rest = text.partition(" ")
    flag, equals, value = head.partition("=")
    if equals and flag in ("-r", "--requirement", "-e", "--editable"):
        text = f"{flag} {value} {rest}".strip()  # the same line to pip, one form for us
        head, _, rest = text.partition(" ")
    if flag in ("-r", "--requirement"):
        return PipRequirement(text, "requirements-file", line=line)
    if flag in ("-e", "--editable"):
        return PipRequirement(text, "editable", name=_egg_name(rest), line=line)
    if flag in PIP_OPTIONS_WITH_VALUE + PIP_FLAG_OPTIONS:
        return PipRequirement(text, "option", line=line)
    if text.startswith("-"):
        why = f"{head!r} is not an option of pip's requirements files"
        return PipRequirement(text, "pip-decides", specifier=why, line=line)
    # The requirement itself ends where its per-requirement options (`--hash=...`) begin.
    requirement = PIP_REQUIREMENT_OPTIONS.split(text, maxsplit=1)[0].strip()
    if requirement.startswith(VCS_PREFIXES) or requirement.startswith(URL_SCHEMES):
        return PipRequirement(text, "url", name=_egg_name(requirement), line=line)
    if _looks_like_path(requirement):
        return PipRequirement(text, "path", line=line)
    # Imported here: packaging's parsers cost ~40 ms of every start, and most specs
    # have no pip: section.
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    try:
        req = Requirement(requirement)
    except InvalidRequirement as exc:
        first = str(exc).splitlines()[0]
        return PipRequirement(text, "pip-decides", specifier=f"not PEP 508: {first}", line=line)
    kind: PipKind = "url" if req.url else "requirement"
    marker = str(req.marker) if req.marker else None
    return PipRequirement(text, kind, canonicalize_name(req.name), str(req.specifier), marker, line)


def _looks_like_path(requirement: str) -> bool:
    """pip's test (req/constructors.py `_looks_like_path`, `_get_url_from_path`): a path
    separator, a leading `.` or `~`, or an archive name, unless it is PEP 508's
    `name @ url`."""
    name, at, _url = requirement.partition("@")
    if at and name.strip() and not _path_shaped(name.strip()):
        return False
    return _path_shaped(requirement)


def _path_shaped(text: str) -> bool:
    # pip installs `pkg.whl` / `pkg.tar.gz` as a file, present or not.
    return "/" in text or text.startswith((".", "~")) or text.lower().endswith(ARCHIVE_SUFFIXES)


def _egg_name(text: str) -> str | None:
    match = re.search(r"[#&]egg=([A-Za-z0-9_.-]+)", text)
    from packaging.utils import canonicalize_name

    return canonicalize_name(match.group(1)) if match else None


def _requirements_target(base: Path, req: PipRequirement) -> Path:
    return base / _file_url_path(req.text.split(None, 1)[-1].strip())


def _file_url_path(target: str) -> str:
    """pip reads `-r file:requirements.txt` (and `file:///abs/path`) as the local path."""
    if target.startswith("file://"):
        return urllib.parse.unquote(urllib.parse.urlsplit(target).path)
    if target.startswith("file:"):
        return urllib.parse.unquote(target[len("file:") :])
    return target


def _file_digest(base: Path, req: PipRequirement) -> str | None:
    """sha256 of a `-r file`; None unless it is a readable regular file of at most 1 MB."""
    target = _requirements_target(base, req)
    try:
        info = target.stat()
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_REQUIREMENTS_FILE_BYTES:
            return None
        with target.open("rb") as handle:
            data = handle.read(MAX_REQUIREMENTS_FILE_BYTES + 1)
    except OSError:
        return None
    if len(data) > MAX_REQUIREMENTS_FILE_BYTES:
        return None
    return hashlib.sha256(data).hexdigest()


def _kind(value: object) -> str:
    names = {dict: "a mapping", list: "a list", str: "a string", type(None): "nothing"}
    return names.get(type(value), type(value).__name__)


def declared_packages(spec: EnvSpec) -> list[tuple[str, str]]:
    """(name, manager) for every declared package, conda first, each once."""
    seen: set[str] = set()
    result: list[tuple[str, str]] = []
    for name, manager in [(d.name, "conda") for d in spec.conda] + [
        (n, "pip") for n in spec.pip_requirement_names
    ]:
        if name not in seen:
            seen.add(name)
            result.append((name, manager))
    return result


def requirement_lines(spec: EnvSpec) -> list[str]:
    """The pip: section as requirements-file lines, paths made absolute."""
    return [_absolute(req, spec.path.parent) for req in spec.pip]


def _absolute(req: PipRequirement, base: Path) -> str:
    """Paths in the pip section are relative to the spec, as conda makes them."""
    if req.kind in ("requirements-file", "editable"):
        flag, _, target = req.text.partition(" ")
        return f"{flag} {_resolve(target.strip(), base)}"
    if req.kind == "path":
        return _resolve(req.text, base)
    return req.text


def _resolve(target: str, base: Path) -> str:
    target = _file_url_path(target)
    if "://" in target or target.startswith(("git+", "hg+", "svn+", "bzr+")):
        return target
    return str((base / Path(target).expanduser()).resolve())
