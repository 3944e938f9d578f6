"""The host side of the rattler worker (:mod:`envassay.rattler_worker`): start it, send
it one request, read its result, raise what it reported.

Light to import (no rattler, nothing from envassay.create.backends), so that a command can
start the worker first (:func:`prestart`) and let its interpreter start and its import
of rattler overlap the command's own start-up: reading the config and the spec, and
finding out whether the env must be created at all.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import overload

from envassay import command
from envassay.errors import CreateError, SolveError, UserError
from envassay.rattler_protocol import (
    CreateRequest,
    Failure,
    InstallRequest,
    LinkReply,
    Request,
    SolveReply,
    SolveRequest,
    dumps_request,
    loads_reply,
)

_ready: list[command.Started] = []  # at most one started worker, waiting for its request
_ready_lock = threading.Lock()


def prestart() -> None:
    """Start a worker now for this process's next :func:`run_worker`; :func:`release` it
    when it turns out not to be needed."""
    with _ready_lock:
        if not _ready:
            _ready.append(_start())


def release() -> None:
    """End a worker :func:`prestart` started that no request took."""
    with _ready_lock:
        idle = _ready.pop() if _ready else None
    if idle is not None:
        idle.abandon()


def _start() -> command.Started:
    return command.start(
        [sys.executable, "-m", "envassay.rattler_worker"],
        # The worker dies with envassay by itself (PR_SET_PDEATHSIG, see its
        # _die_with_parent) and starts no process (link scripts never run), so the
        # guard interpreter command.py would put around it is one start too many.
        env=command.self_guarded_env(),
        die_with_parent=False,
    )


@overload
def run_worker(request: SolveRequest, progress: Callable[[str], None]) -> SolveReply: ...
@overload
def run_worker(
    request: CreateRequest | InstallRequest, progress: Callable[[str], None]
) -> LinkReply: ...
def run_worker(request: Request, progress: Callable[[str], None]) -> LinkReply | SolveReply:
    """Run one request in a worker (the prestarted one, if any) and return its reply;
    what it reports as failed is raised (SolveError, UserError, CreateError)."""
    with _ready_lock:
        worker = _ready.pop() if _ready else None
    worker = worker or _start()
    reply = _parse(worker.stream(input=dumps_request(request), on_stderr_line=progress))
    if isinstance(request, SolveRequest) != isinstance(reply, SolveReply):
        raise CreateError(f"the rattler worker answered a {request.op} with {reply!r}")
    return reply


def _parse(result: command.CommandResult) -> LinkReply | SolveReply:
    try:
        reply = loads_reply(result.stdout)
    except (ValueError, KeyError, TypeError):
        raise CreateError(f"the rattler worker died: {result.describe()}") from None
    if not isinstance(reply, Failure):
        return reply
    kind, message = reply.kind, reply.message
    if kind == "solve":
        raise SolveError(f"cannot solve: {message}")
    if kind == "channel":
        raise UserError(
            message,
            hint="point at a mirror in ~/.rattler/config.toml [mirrors] or use a file:// channel",
        )
    if kind == "auth":
        raise UserError(
            message,
            hint="check the password or token in the channel's URL, the ${VAR} it names, "
            "or rattler's authentication store",
        )
    if kind == "config":
        raise UserError(message)
    if kind == "integrity":
        raise UserError(
            f"a package failed its hash check; nothing was installed: {message}",
            hint="the archive is not the one the lock or the channel records; fix it or re-lock",
        )
    if kind == "unsafe":  # a package that would write outside the prefix: never linked
        raise CreateError(f"unsafe package: {message}")
    raise CreateError(f"rattler failed: {message}")
