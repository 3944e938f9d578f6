"""Credentials in every form the tools accept, for the property tests (hypothesis), and
the search of everything written or printed for them.

A credential is drawn from RFC 3986's whole userinfo alphabet: unreserved and sub-delims
characters raw (``( ) , ' ! $ & * + ; =`` among them), anything else percent-encoded
(``@ : / ? # % [ ]``, space, quotes). Each is kept as written (in the URL) and decoded
(what is sent, what a tool may print).
"""

from __future__ import annotations

import base64
import string
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

from hypothesis import strategies as st

from envassay import redact

RAW = string.ascii_letters + string.digits + "-._~!$&'()*+,;="  # userinfo, unencoded
ENCODED = ':@/?#[]% "<>\\^`{|}'  # must be percent-encoded in userinfo
PATH_RAW = RAW + ":"  # a /t/TOKEN/ path segment also allows ':' (and '@', refused there)


@dataclass(frozen=True)
class Credential:
    """One secret: as written in a URL, and decoded (as sent)."""

    written: str

    @property
    def sent(self) -> str:
        return unquote(self.written)

    def forms(self) -> set[str]:
        """Every shape a leak could take: written, decoded, re-encoded."""
        return {self.written, self.sent, quote(self.sent, safe="")}


def _piece(raw: str) -> st.SearchStrategy[str]:
    encoded = st.sampled_from(ENCODED + raw).map(lambda c: quote(c, safe=""))
    return st.one_of(st.sampled_from(raw), st.sampled_from(raw), encoded)


def credentials(
    raw: str = RAW, min_size: int = 10, max_size: int = 24
) -> st.SearchStrategy[Credential]:
    """A strong credential (see :func:`redact.strong`) over the whole alphabet."""
    pieces = st.lists(_piece(raw), min_size=min_size, max_size=max_size).map("".join)
    return pieces.map(Credential).filter(
        lambda c: all(redact.strong(f) for f in c.forms()) and c.sent.isprintable()
    )


def basic_forms(user: str, secret: Credential) -> set[str]:
    """Shapes of ``user:secret`` sent as HTTP basic auth (a tool logging its headers)."""
    return {base64.b64encode(f"{user}:{secret.sent}".encode()).decode()}


def leaks(
    roots: list[Path], printed: str, secrets: set[str], skip: set[Path] = frozenset()
) -> list[str]:
    """Every file under ``roots`` (and the printed text) that holds one of ``secrets``."""
    found = [f"printed: {s!r}" for s in secrets if s in printed]
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink() and path not in skip:
                data = path.read_bytes()
                found += [f"{path}: {s!r}" for s in secrets if s.encode() in data]
    return found
