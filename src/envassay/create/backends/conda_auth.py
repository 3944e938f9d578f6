"""A token alone as a channel's userinfo (``https://TOKEN@host/c``), handed to conda the
way it can take it: conda drops a user without a password from a channel URL (its
``maybe_add_auth`` needs ``user:password``; 24.7.1 and 26.7.1 both send nothing and get a
401), but its session reads ``.netrc`` for a URL without credentials. So conda gets the
URL without the token, and ``NETRC`` names a memory-only file (``memfd``, no directory
holds it) with ``machine HOST login TOKEN`` over the user's own netrc; the token is sent
as HTTP basic ``TOKEN:``, as pip and rattler send it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from urllib.parse import unquote

from envassay import redact
from envassay.errors import UserError

NETRC_VARIABLE = "NETRC"
_NETRC_UNSAFE = set(' \t\r\n"\\')  # netrc splits on whitespace and reads quotes


def split_token_users(channels: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """``channels`` with each token-alone userinfo taken out, and host -> token (decoded)."""
    kept: list[str] = []
    tokens: dict[str, str] = {}
    for url in channels:
        parsed = redact.parse_url(redact.expand(url))
        if not parsed.user_is_secret:
            kept.append(url)
            continue
        token = unquote(parsed.user or "")
        if _NETRC_UNSAFE & set(token):
            raise UserError(
                f"channel {redact.mask(url)}: conda takes a token alone only through "
                ".netrc, which cannot hold whitespace, quotes or backslashes",
                hint="use the rattler backend, or USER:PASSWORD@ or /t/TOKEN/ for conda",
            )
        if tokens.get(parsed.host, token) != token:
            raise UserError(
                f"channels on {parsed.host} carry different tokens; .netrc keeps one per host"
            )
        tokens[parsed.host] = token
        kept.append(redact.parse_url(url).clean)
    return kept, tokens


@contextlib.contextmanager
def netrc_environ(
    tokens: Mapping[str, str], environ: Mapping[str, str]
) -> Iterator[dict[str, str]]:
    """The variables that point the tool at a memory-only netrc with ``tokens`` after the
    user's own entries (the last entry for a host wins); nothing when there are none."""
    if not tokens:
        yield {}
        return
    own = Path(environ.get(NETRC_VARIABLE) or Path.home() / ".netrc")
    text = ""
    with contextlib.suppress(OSError, ValueError):
        text = own.read_text(encoding="utf-8") + "\n" if own.is_file() else ""
    text += "".join(f"machine {host} login {token}\n" for host, token in tokens.items())
    fd = os.memfd_create("envassay-netrc")
    try:
        os.write(fd, text.encode())
        yield {NETRC_VARIABLE: f"/proc/{os.getpid()}/fd/{fd}"}
    finally:
        os.close(fd)
