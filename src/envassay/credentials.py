"""Credentials in channel URLs, handed to rattler through its authentication store.

rattler records each package's URL as it fetched it: in its repodata cache, in the
solved records (so in locks), and in the env's ``conda-meta/*.json`` (so in images). A
channel given as ``https://USER:PASSWORD@host/c``, ``https://TOKEN@host/c`` or
``https://host/t/TOKEN/c`` would leave its secret in all of them. So envassay gives
rattler the URL without them (:mod:`envassay.redact`'s one parse) and the credentials
as an authentication-store entry for the host (``BasicHTTP`` or ``CondaToken``, the
shapes of rattler's ``RATTLER_AUTH_FILE``), in a memory-only file (``memfd``) that no
directory holds and that goes with the worker process.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from envassay import redact

AUTH_FILE_VARIABLE = "RATTLER_AUTH_FILE"


_shown: dict[str, str] = {}  # credential-free URL -> the URL as given, masked


def shown(url: str) -> str:
    """How to name a channel given to rattler in a message: as the user wrote it, masked
    (``https://user:****@host/c``), so they see which credentials were used."""
    return _shown.get(url, url)


class CredentialConflict(ValueError):
    """Two channels of one host carry different credentials (rattler keys them by host)."""


def split(url: str) -> tuple[str, str | None, dict[str, Any] | None]:
    """``url`` without its credentials, its host, and rattler's entry for them (or None).

    ``USER:PASSWORD@`` and a token alone as user (``TOKEN@``, sent as HTTP basic with an
    empty password, as pip and conda send it) are ``BasicHTTP``; ``/t/TOKEN/`` is
    ``CondaToken`` (as written: rattler puts it back into the path). A URL carries
    userinfo percent-encoded (``p%40ss``); the store holds what is sent.
    """
    parsed = redact.parse_url(url)
    if not parsed.scheme or parsed.scheme.startswith("file:"):
        return url, None, None
    entry: dict[str, Any] | None = None
    if parsed.password is not None or parsed.user_is_secret:
        user, password = unquote(parsed.user or ""), unquote(parsed.password or "")
        entry = {"BasicHTTP": {"username": user, "password": password}}
    if parsed.token is not None:
        if entry is not None:
            raise CredentialConflict(
                f"channel {redact.mask(url)} has both a password and a token; give one"
            )
        entry = {"CondaToken": parsed.token}  # a path segment: rattler puts it back as is
    return parsed.clean, (parsed.host if entry else None), entry


def attach(url: str, channels: Sequence[str]) -> str:
    """``url`` (a locked package's, without credentials) with those of the channel it
    belongs to, for a tool that takes no authentication store (conda's @EXPLICIT files)."""
    for channel in channels:
        bare, host, _entry = split(channel)
        if host is not None and url.startswith(bare.rstrip("/") + "/"):
            given = redact.encoded(redact.expand(channel))  # conda cuts a password at ':'
            return given.rstrip("/") + url[len(bare.rstrip("/")) :]
    return url


def for_rattler(channels: Sequence[str]) -> tuple[list[str], dict[str, Any]]:
    """The channels without credentials, and the auth-store entries (by host) they held."""
    clean: list[str] = []
    entries: dict[str, Any] = {}
    for url in channels:
        bare, host, entry = split(url)
        clean.append(bare)
        _shown[bare] = redact.mask(url)
        if host is None:
            continue
        if host in entries and entries[host] != entry:
            raise CredentialConflict(
                f"channels on {host} carry different credentials; rattler keeps one per "
                "host: put them in its authentication store (rattler auth login) instead"
            )
        entries[host] = entry
    return clean, entries


def install_auth_file(entries: Mapping[str, Any], environ: MutableMapping[str, str]) -> int | None:
    """Point ``environ``'s ``RATTLER_AUTH_FILE`` at a memory-only file holding ``entries``
    merged over the user's own auth file (when one is set); return its descriptor."""
    if not entries:
        return None
    merged: dict[str, Any] = {}
    own = environ.get(AUTH_FILE_VARIABLE)
    if own and Path(own).is_file():
        # rattler itself reports an unreadable auth file the user pointed at
        with contextlib.suppress(OSError, ValueError):
            merged.update(json.loads(Path(own).read_text(encoding="utf-8")))
    merged.update(entries)
    fd = os.memfd_create("envassay-rattler-auth")
    os.write(fd, json.dumps(merged).encode())
    environ[AUTH_FILE_VARIABLE] = f"/proc/{os.getpid()}/fd/{fd}"
    return fd
