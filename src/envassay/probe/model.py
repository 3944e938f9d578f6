"""The probe's request and its report, as typed objects on the host side.

Schema version 1 of the document ``script.py`` prints::

    {"probe_version": 1,
     "interpreter": {"version", "implementation", "executable", "prefix", "base_prefix",
                     "conda_meta": whether <prefix>/conda-meta exists,
                     "platform", "markers": {PEP 508 marker environment}},
     "site_packages": [path, ...],
     "conda_records": [{"name", "version", "build", "channel", "depends": [...], "subdir",
                        "url", "requested_spec", "python_modules": [...],
                        "python_dists": [metadata directory, ...]}],
     "distributions": [{"name", "version", "requires": [...], "top_level": [...],
                        "installer", "location", "metadata": its metadata directory,
                        "shadows": [later metadata directory of the same name, ...]}],

``conda_meta``, ``python_dists``, ``metadata`` and ``shadows`` may be absent (an older
probe): they read as true, empty and empty.
     "packages": {name: {"manager", "status", "modules": [...], "via": [...]}},
     "imports": [{"module", "package", "status", "error", "signal", "seconds"}],
     "warnings": [text, ...],
     "elapsed": seconds}

A section the probe could not gather is ``{"error": "<traceback>"}`` instead;
it appears here in ``ProbeReport.errors``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Literal, TypeVar, cast, get_args, get_origin, get_type_hints

from packaging.utils import canonicalize_name

from envassay.cleantext import visible_all
from envassay.errors import EnvassayError

PROBE_VERSION = 2
_T = TypeVar("_T")

Manager = Literal["conda", "pip"]
PackageStatus = Literal["python", "not-python", "missing", "skipped"]
ImportStatus = Literal["ok", "error", "crashed", "timeout"]
SECTIONS = ("interpreter", "site_packages", "conda_records", "distributions", "packages", "imports")
_EMPTY: dict[str, object] = {
    "interpreter": None,
    "site_packages": [],
    "conda_records": [],
    "distributions": [],
    "packages": {},
    "imports": [],
}


class ProbeError(EnvassayError):
    """The probe could not run in a target, or what it printed is not a report."""


@dataclass(frozen=True)
class PackageRequest:
    """One package to resolve to import names: a conda package or a pip distribution."""

    name: str
    manager: Manager = "conda"


@dataclass(frozen=True)
class ProbeRequest:
    """What the probe is asked to look at; ``modules`` adds, ``rename`` replaces."""

    packages: tuple[PackageRequest, ...] = ()
    modules: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    rename: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    skip: frozenset[str] = frozenset()
    timeout: float = 60.0

    def to_json(self) -> str:
        """The request as the probe script reads it from its argv."""
        return json.dumps(
            {
                "packages": [{"name": p.name, "manager": p.manager} for p in self.packages],
                "modules": {k: list(v) for k, v in self.modules.items()},
                "rename": {k: list(v) for k, v in self.rename.items()},
                "skip": sorted(self.skip),
                "timeout": self.timeout,
            }
        )


@dataclass(frozen=True)
class Interpreter:
    """The target interpreter and its PEP 508 marker environment."""

    version: str
    implementation: str
    executable: str
    prefix: str
    base_prefix: str
    platform: str
    markers: Mapping[str, str]
    # conda's virtual packages of the target (``__glibc`` -> ``2.36``), as conda detects them.
    virtual_packages: Mapping[str, str]
    # Whether <prefix>/conda-meta exists: without it, pins are answered by the interpreter
    # and pip's distributions (an image envassay did not build, a venv).
    conda_meta: bool = True

    def describe(self, records: int | None = None) -> str:
        """``Python 3.11.2 at /opt/venv/bin/python (prefix /opt/venv, no conda-meta)``;
        with ``records``, how many conda records its conda-meta holds."""
        meta = "conda-meta" if self.conda_meta else "no conda-meta"
        if self.conda_meta and records is not None:
            meta += f", {records} records" if records else " without records"
        return f"Python {self.version} at {self.executable} (prefix {self.prefix}, {meta})"


@dataclass(frozen=True)
class CondaRecord:
    """One ``conda-meta/*.json`` record; ``python_modules`` are derived from its files."""

    name: str
    version: str
    build: str
    channel: str | None
    depends: tuple[str, ...]
    subdir: str | None
    url: str | None
    requested_spec: str | None
    python_modules: tuple[str, ...]
    # What the record forbids of other packages if they are installed (conda's run_constrained).
    constrains: tuple[str, ...] = ()
    build_number: int | None = None
    # The metadata directories (dist-info, egg-info) among its files, as real paths.
    python_dists: tuple[str, ...] = ()

    @property
    def channel_url(self) -> str:
        """The channel without the subdir that conda appends to a record's ``channel``
        (`.../conda-forge/noarch`; rattler and conda-lock write `.../conda-forge`)."""
        channel = (self.channel or "").rstrip("/")
        if self.subdir and channel.endswith(f"/{self.subdir}"):
            return channel[: -len(self.subdir) - 1]
        return channel


@dataclass(frozen=True)
class Distribution:
    """One installed Python distribution (dist-info or egg-info)."""

    name: str
    version: str
    requires: tuple[str, ...]
    top_level: tuple[str, ...]
    installer: str | None
    location: str
    # Its metadata directory, and those of the same name later on sys.path (not imported).
    metadata: str = ""
    shadows: tuple[str, ...] = ()


@dataclass(frozen=True)
class PackageResolution:
    """What a requested package turned out to be, and the modules that stand for it."""

    name: str
    manager: Manager
    status: PackageStatus
    modules: tuple[str, ...]
    via: tuple[str, ...]


@dataclass(frozen=True)
class ImportResult:
    """How importing one module went; ``seconds`` excludes what earlier modules loaded."""

    module: str
    package: str
    status: ImportStatus
    error: str | None
    signal: int | None
    seconds: float

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class ProbeReport:
    """Everything one probe run found in one target."""

    probe_version: int
    interpreter: Interpreter | None
    site_packages: tuple[str, ...]
    conda_records: tuple[CondaRecord, ...]
    distributions: tuple[Distribution, ...]
    packages: Mapping[str, PackageResolution]
    imports: tuple[ImportResult, ...]
    warnings: tuple[str, ...]
    elapsed: float
    # Sections the probe could not gather: name -> the traceback it sent instead.
    errors: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, text: str) -> ProbeReport:
        """Parse the probe's stdout; ProbeError (with the start of ``text``) if malformed."""
        # Everything in it was written by code in the target: made harmless to show here.
        return parse_output(text, lambda raw: _parse_report(visible_all(raw)), "probe output")

    def to_dict(self) -> dict[str, Any]:
        """The report in the probe's own JSON schema (``from_json`` reads it back)."""
        doc: dict[str, Any] = _plain(self)
        for package in doc["packages"].values():
            del package["name"]  # the key of the table already says it
        doc.update({name: {"error": text} for name, text in doc.pop("errors").items()})
        return doc

    def conda_record(self, name: str) -> CondaRecord | None:
        """The installed conda record called ``name``, if any."""
        return next((r for r in self.conda_records if r.name == name.lower()), None)

    def distribution(self, name: str) -> Distribution | None:
        """The installed distribution whose normalized name matches ``name``, if any."""
        key = canonicalize_name(name)
        return next((d for d in self.distributions if canonicalize_name(d.name) == key), None)

    def imports_of(self, package: str) -> tuple[ImportResult, ...]:
        """The import results attributed to one requested package."""
        return tuple(i for i in self.imports if i.package == package)


def parse_output(text: str, parse: Callable[[dict[str, Any]], _T], what: str) -> _T:
    """``parse`` of the JSON document a probe printed; a ProbeError naming ``what`` and
    quoting the start of ``text`` if it is malformed."""
    try:
        return parse(_load(text))
    except ProbeError as exc:
        raise ProbeError(f"malformed {what}: {exc}; it began: {text[:500]!r}") from None


def _load(text: str) -> dict[str, Any]:
    """The JSON document; when something printed before it, the last line is the document."""
    try:
        doc = json.loads(text)
    except ValueError:
        lines = text.strip().splitlines()
        try:
            doc = json.loads(lines[-1]) if lines else None
        except ValueError:
            doc = None
    if not isinstance(doc, dict):
        raise ProbeError("not a JSON object")
    return doc


class _Fields:
    """A JSON object being read, with its path for error messages."""

    def __init__(self, data: object, where: str) -> None:
        if not isinstance(data, dict):
            raise ProbeError(f"{where}: expected an object, got {type(data).__name__}")
        self.data: dict[str, Any] = data
        self.where = where

    def value(self, key: str, kinds: type | tuple[type, ...], optional: bool = False) -> Any:
        value = self.data.get(key)
        if value is None and optional:
            return None
        if key not in self.data or not isinstance(value, kinds) or isinstance(value, bool):
            raise ProbeError(f"{self.where}.{key}: expected {_kind_name(kinds)}, got {value!r}")
        return value

    def text(self, key: str) -> str:
        return cast(str, self.value(key, str))

    def maybe_text(self, key: str) -> str | None:
        return cast("str | None", self.value(key, str, optional=True))

    def number(self, key: str) -> float:
        return float(self.value(key, (int, float)))

    def flag(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise ProbeError(f"{self.where}.{key}: expected bool, got {value!r}")
        return value

    def optional_texts(self, key: str) -> tuple[str, ...]:
        """A list of strings that an older probe does not send (then empty)."""
        return self.texts(key) if key in self.data else ()

    def maybe_int(self, key: str) -> int | None:
        return cast("int | None", self.value(key, int, optional=True))

    def texts(self, key: str) -> tuple[str, ...]:
        items = self.value(key, list)
        if not all(isinstance(i, str) for i in items):
            raise ProbeError(f"{self.where}.{key}: expected a list of strings, got {items!r}")
        return tuple(items)

    def choice(self, key: str, allowed: tuple[str, ...]) -> str:
        value = self.text(key)
        if value not in allowed:
            raise ProbeError(f"{self.where}.{key}: expected one of {allowed}, got {value!r}")
        return value

    def objects(self, key: str) -> list[_Fields]:
        items = self.value(key, list)
        return [_Fields(item, f"{self.where}.{key}[{i}]") for i, item in enumerate(items)]

    def read(self, cls: type[_T], **given: Any) -> _T:
        """The dataclass ``cls`` from this object: each field not ``given`` is read by its
        declared type (``str``, ``str | None``, a ``Literal``, ...), in declaration order."""
        values = [given[k] if k in given else read(self, k) for k, read in _readers(cls)]
        return cls(*values)


_Reader = Callable[[_Fields, str], Any]
# A field's declared type -> how to read it; a Literal's reader is choice().
_READERS: dict[object, _Reader] = {
    str: _Fields.text,
    str | None: _Fields.maybe_text,
    float: _Fields.number,
    int | None: _Fields.maybe_int,
    tuple[str, ...]: _Fields.texts,
}
_READERS_OF: dict[type, list[tuple[str, _Reader]]] = {}


def _readers(cls: type) -> list[tuple[str, _Reader]]:
    """Each field of the dataclass ``cls``, in order, with the reader of its type."""
    if (known := _READERS_OF.get(cls)) is None:
        hints = get_type_hints(cls)
        known = _READERS_OF[cls] = [(f.name, _reader(hints[f.name])) for f in fields(cls)]
    return known


def _reader(hint: object) -> _Reader:
    if get_origin(hint) is Literal:
        return functools.partial(_Fields.choice, allowed=get_args(hint))
    return _READERS.get(hint, _no_reader)


def _no_reader(f: _Fields, key: str) -> Any:
    raise TypeError(f"{f.where}.{key}: no reader for its type; pass it to read()")


def _kind_name(kinds: type | tuple[type, ...]) -> str:
    names = [k.__name__ for k in (kinds if isinstance(kinds, tuple) else (kinds,))]
    return " or ".join(names)


def section_error(value: object) -> str | None:
    """The traceback of a section the probe could not gather (``{"error": text}``), else None."""
    if isinstance(value, dict) and list(value) == ["error"] and isinstance(value["error"], str):
        return value["error"]
    return None


def _parse_report(doc: dict[str, Any]) -> ProbeReport:
    top = _Fields(doc, "report")
    version = top.value("probe_version", int)
    if version != PROBE_VERSION:
        raise ProbeError(f"probe_version {version}, this envassay reads {PROBE_VERSION}")
    if "error" in doc:
        raise ProbeError(f"the probe failed inside the target: {doc['error']}")
    errors = {s: e for s in SECTIONS if (e := section_error(doc.get(s))) is not None}
    # A failed section reads as empty, so the sections that did work stay usable.
    ok = _Fields(doc | {name: _EMPTY[name] for name in errors}, "report")
    return ProbeReport(
        probe_version=version,
        interpreter=None if "interpreter" in errors else _interpreter(doc.get("interpreter")),
        site_packages=ok.texts("site_packages"),
        conda_records=tuple(
            f.read(CondaRecord, python_dists=f.optional_texts("python_dists"))
            for f in ok.objects("conda_records")
        ),
        distributions=tuple(
            f.read(
                Distribution,
                metadata=f.maybe_text("metadata") or "",
                shadows=f.optional_texts("shadows"),
            )
            for f in ok.objects("distributions")
        ),
        packages=_packages(ok.data.get("packages")),
        imports=tuple(f.read(ImportResult) for f in ok.objects("imports")),
        warnings=top.texts("warnings"),
        elapsed=top.number("elapsed"),
        errors=errors,
    )


def _interpreter(data: object) -> Interpreter:
    f = _Fields(data, "report.interpreter")
    markers = _Fields(f.data.get("markers"), "report.interpreter.markers")
    virtual = _Fields(f.data.get("virtual_packages"), "report.interpreter.virtual_packages")
    return f.read(
        Interpreter,
        markers={k: markers.text(k) for k in markers.data},
        virtual_packages={k: virtual.text(k) for k in virtual.data},
        conda_meta=f.flag("conda_meta", True),
    )


def _packages(data: object) -> dict[str, PackageResolution]:
    table = _Fields(data, "report.packages")
    return {
        name: _Fields(v, f"report.packages.{name}").read(PackageResolution, name=name)
        for name, v in table.data.items()
    }


def _plain(value: object) -> Any:
    """Dataclasses, tuples and mappings as JSON-ready dicts and lists."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value
