"""What envassay and its rattler worker say to each other, declared once for both sides.

One request goes to the worker on stdin (:func:`dumps_request` / :func:`loads_request`),
one reply comes back on stdout (:func:`dumps_reply` / :func:`loads_reply`), as JSON.
``create`` solves and links a spec, ``install`` links a lock's records without solving,
``solve`` solves a spec for several platforms (a lock). Plain data, no imports beyond the
standard library: the worker reads this before it imports rattler.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, TypeAlias


@dataclass(frozen=True)
class Package:
    """A solved or locked conda package: what a lock entry holds, and what ``install``
    links from (its archive's hash checked first)."""

    name: str
    version: str
    build: str
    channel: str
    url: str
    subdir: str
    depends: list[str]
    md5: str | None
    sha256: str | None
    filename: str

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Package:
        return cls(**raw)


@dataclass(frozen=True)
class Linked:
    """A package a ``create`` or ``install`` linked, as reports and logs name it."""

    name: str
    version: str
    build: str
    channel: str
    url: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class CreateRequest:
    """Solve ``specs`` against ``channels`` (for ``platform``, default this machine) and
    link the solution into the absolute ``prefix``."""

    channels: list[str]
    specs: list[str]
    prefix: str
    cache_dir: str
    platform: str | None = None
    priority: str = "strict"
    op: Literal["create"] = "create"


@dataclass(frozen=True)
class InstallRequest:
    """Link a lock's ``records`` into ``prefix`` without solving; ``channels`` carry the
    credentials their downloads need."""

    records: list[Package]
    specs: list[str]
    channels: list[str]
    prefix: str
    cache_dir: str
    op: Literal["install"] = "install"


@dataclass(frozen=True)
class SolveTarget:
    """One platform of a ``solve``: its virtual packages (``[name, version, build]``;
    None: this machine's, with ``cuda`` as the spec decides)."""

    platform: str
    virtual: list[list[str]] | None
    cuda: str | None = None


@dataclass(frozen=True)
class SolveRequest:
    """Solve ``specs`` for each of ``targets`` (a lock)."""

    channels: list[str]
    specs: list[str]
    cache_dir: str
    targets: list[SolveTarget]
    priority: str = "strict"
    op: Literal["solve"] = "solve"


Request: TypeAlias = CreateRequest | InstallRequest | SolveRequest


@dataclass(frozen=True)
class LinkReply:
    """A ``create`` or ``install`` done: what was linked and how long each part took."""

    records: list[Linked]
    solve_seconds: float
    link_seconds: float
    check_seconds: float = 0.0


@dataclass(frozen=True)
class SolveReply:
    """A ``solve`` done, per platform: the packages, the seconds, the virtual packages used."""

    solutions: dict[str, list[Package]]
    seconds: dict[str, float]
    virtual: dict[str, list[list[str]]] = field(default_factory=dict)


@dataclass(frozen=True)
class Failure:
    """What the worker could not do; ``kind`` decides the exit code (rattler_client)."""

    kind: str
    message: str


Reply: TypeAlias = LinkReply | SolveReply | Failure


def dumps_request(request: Request) -> str:
    return json.dumps(asdict(request))


def loads_request(text: str) -> Request:
    """The request in ``text``; ValueError (KeyError, TypeError included) when malformed."""
    raw = _object(text)
    op = raw.get("op", "create")
    if op == "create":
        return CreateRequest(**raw)
    if op == "install":
        records = [Package.from_json(r) for r in raw.pop("records")]
        return InstallRequest(records=records, **raw)
    if op == "solve":
        targets = [SolveTarget(**t) for t in raw.pop("targets")]
        return SolveRequest(targets=targets, **raw)
    raise ValueError(f"unknown op {op!r}")


def dumps_reply(reply: Reply) -> str:
    kind = {LinkReply: "link", SolveReply: "solve", Failure: "failure"}[type(reply)]
    return json.dumps({"ok": not isinstance(reply, Failure), "reply": kind, **asdict(reply)})


def loads_reply(text: str) -> Reply:
    """The reply in ``text``; ValueError (json's, KeyError, TypeError) when malformed."""
    raw = _object(text)
    kind = raw.pop("reply")
    raw.pop("ok")
    if kind == "link":
        return LinkReply(
            records=[Linked(**r) for r in raw.pop("records")],
            **raw,
        )
    if kind == "solve":
        solutions = {p: [Package.from_json(r) for r in rs] for p, rs in raw["solutions"].items()}
        return SolveReply(solutions=solutions, seconds=raw["seconds"], virtual=raw["virtual"])
    if kind == "failure":
        return Failure(**raw)
    raise ValueError(f"unknown reply {kind!r}")


def _object(text: str) -> dict[str, Any]:
    raw = json.loads(text)
    if not isinstance(raw, dict):
        raise ValueError(f"not a JSON object: {text[:80]!r}")
    return raw
