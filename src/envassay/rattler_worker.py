"""Worker process for rattler work: `python -m envassay.rattler_worker`.

Reads one JSON request on stdin (``op``: ``create`` solves and links a spec,
``solve`` solves it for several platforms for a lock, ``install`` links the
records of a lock without solving), prints progress lines on stderr and one JSON
result on stdout, then leaves with ``os._exit`` so py-rattler's exit-time crash
(see rattler_ops) cannot turn a finished create into a failure.

It lives beside rattler_ops rather than in ``envassay.create.backends``: running a module
of that package would import the whole package first (~65 ms of every create).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
import time
from pathlib import Path

from envassay.rattler_protocol import (
    CreateRequest,
    Failure,
    InstallRequest,
    LinkReply,
    Package,
    Reply,
    Request,
    SolveReply,
    SolveRequest,
    dumps_reply,
    loads_request,
)


def _progress(message: str) -> None:
    # An update within a phase (envassay.progress.UPDATE, not imported: this module's
    # start is on every create's path) keeps its mark at the line's start.
    mark = "\x1e" if message.startswith("\x1e") else ""
    print(f"{mark}[rattler] {message[len(mark) :]}", file=sys.stderr, flush=True)


async def _create(request: CreateRequest) -> LinkReply:
    # Deferred: rattler_ops imports rattler (start-up cost); the worker sets up first.
    from envassay import rattler_ops

    cache_dir = Path(request.cache_dir)
    prefix = Path(request.prefix)
    started = time.perf_counter()
    from envassay.credentials import shown

    listed = ", ".join(shown(c) for c in request.channels)
    _progress(f"solving {len(request.specs)} spec(s) against {listed}")
    records = await rattler_ops.solve(
        request.channels, request.specs, cache_dir, request.platform, priority=request.priority
    )
    solved = time.perf_counter()
    _progress(
        f"solved: {len(records)} package(s) in {solved - started:.2f}s; linking into {prefix}"
    )
    await rattler_ops.install(records, prefix, cache_dir, request.specs, _progress)
    linked = time.perf_counter()
    _progress(f"linked in {linked - solved:.2f}s")
    return LinkReply(
        records=[rattler_ops.record_summary(r) for r in records],
        solve_seconds=solved - started,
        link_seconds=linked - solved,
    )


async def _solve(request: SolveRequest) -> SolveReply:
    """Solve the same specs for several platforms, each with its own virtual packages."""
    # Deferred: rattler_ops imports rattler (start-up cost); the worker sets up first.
    from envassay import rattler_ops

    cache_dir = Path(request.cache_dir)
    solutions: dict[str, list[Package]] = {}
    seconds: dict[str, float] = {}
    used: dict[str, list[list[str]]] = {}
    for target in request.targets:
        platform = target.platform
        virtual = target.virtual
        if virtual is None:  # this machine, except __cuda, which the spec decides
            virtual = [v for v in rattler_ops.host_virtual_packages() if v[0] != "__cuda"]
            if target.cuda:
                virtual.append(["__cuda", target.cuda, "0"])
        started = time.perf_counter()
        _progress(f"solving {len(request.specs)} spec(s) for {platform}")
        try:
            records = await rattler_ops.solve(
                request.channels,
                request.specs,
                cache_dir,
                platform,
                virtual,
                priority=request.priority,
            )
        except rattler_ops.RattlerFailure as failure:  # which of the platforms failed
            message = f"for {platform}: {failure.message}"
            raise rattler_ops.RattlerFailure(failure.kind, message) from None
        seconds[platform] = time.perf_counter() - started
        solutions[platform] = [rattler_ops.record_full(r) for r in records]
        used[platform] = virtual
        _progress(f"{platform}: {len(records)} package(s) in {seconds[platform]:.2f}s")
    return SolveReply(solutions=solutions, seconds=seconds, virtual=used)


async def _install(request: InstallRequest) -> LinkReply:
    """Link locked records (no solve) into the prefix, every local archive's hash checked."""
    # Deferred: rattler_ops imports rattler (start-up cost); the worker sets up first.
    from envassay import rattler_ops

    cache_dir = Path(request.cache_dir)
    prefix = Path(request.prefix)
    started = time.perf_counter()
    _progress(f"checking {len(request.records)} locked package(s)")
    records = await rattler_ops.records_from_lock(request.records)
    checked = time.perf_counter()
    _progress(f"linking {len(records)} locked package(s) into {prefix}")
    await rattler_ops.install(records, prefix, cache_dir, request.specs, _progress)
    linked = time.perf_counter()
    _progress(f"linked in {linked - checked:.2f}s")
    return LinkReply(
        records=[rattler_ops.record_summary(r) for r in records],
        solve_seconds=0.0,
        check_seconds=checked - started,
        link_seconds=linked - checked,
    )


async def _run(request: Request) -> Reply:
    if isinstance(request, CreateRequest):
        return await _create(request)
    if isinstance(request, SolveRequest):
        return await _solve(request)
    return await _install(request)


def _credentials(request: Request) -> Request:
    """The request with its channels stripped of their credentials, which go to rattler
    through its authentication store (see :mod:`envassay.credentials`); ``${VAR}``
    placeholders in a channel are read from the environment first."""
    from envassay import credentials, redact
    from envassay.rattler_ops import RattlerFailure

    try:
        channels = [redact.expand(url) for url in request.channels]
        bare, entries = credentials.for_rattler(channels)
    except redact.MissingVariable as missing:
        raise RattlerFailure(
            "config", f"a channel names ${{{missing.name}}}, which is not set: set it"
        ) from None
    except credentials.CredentialConflict as conflict:
        raise RattlerFailure("config", str(conflict)) from None
    credentials.install_auth_file(entries, os.environ)
    return dataclasses.replace(request, channels=list(bare))


# envassay.command.GUARD_VARIABLE (a test holds them equal), not imported from there:
# this module's start is on every create's path, and command.py's imports are not needed.
GUARD_VARIABLE = "ENVASSAY_GUARD_PARENT"


def _die_with_parent() -> None:
    """Linux: be killed when the parent dies, so a killed `create` leaves no linker behind
    (the worker starts no process of its own, so killing it alone is enough)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    named = os.environ.pop(GUARD_VARIABLE, "")
    parent = int(named) if named.isdigit() else os.getppid()
    ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def main() -> None:
    # Deferred: rattler_ops imports rattler (start-up cost); the worker sets up first.
    from envassay.rattler_ops import RattlerFailure

    _die_with_parent()
    code = 0
    reply: Reply
    try:
        request = _credentials(loads_request(sys.stdin.read()))
        reply = asyncio.run(_run(request))
    except RattlerFailure as failure:
        reply = Failure(failure.kind, failure.message)
    except Exception as exc:  # reported to the parent, which decides how to show it
        reply = Failure("other", f"{type(exc).__name__}: {exc}")
        code = 1
    sys.stdout.write(dumps_reply(reply))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
