"""The one place that knows what a secret looks like: every string envassay shows or
writes passes through :func:`mask`, every key it hashes through :func:`neutral`, and
lock files hold :func:`placeholders` instead of credentials.

Credentials live in URLs, as conda and pip take them: ``scheme://USER:PASSWORD@host/``
(masked ``USER:****@``, as pip prints it) and anaconda-style token paths
``/t/TOKEN/`` (masked ``/t/<TOKEN>/``, as conda prints it). A ``${VAR}`` placeholder
(conda-lock's convention) names a secret without holding it, so it is shown as is.
Secrets met in a spec are also :func:`remember`-ed, so a tool that repeats one outside
a URL (decoded, or in another shape) is masked too.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import unquote

PASSWORD_MASK = "****"
TOKEN_MASK = "<TOKEN>"
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>()\[\],]*")
_USERINFO = re.compile(r"^(?P<scheme>[^:]+://)(?P<user>[^:@/]*):(?P<password>[^@/]*)@")
_TOKEN = re.compile(r"/t/(?P<token>[^/]+)(?=/|$)")
PLACEHOLDER = re.compile(r"^\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)\}$")
_PLACEHOLDER_ANYWHERE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_MIN_REMEMBERED = 4  # shorter strings would mask ordinary text

_known: set[str] = set()
_known_lock = threading.Lock()
# The variables whose values a ${VAR} placeholder put into a URL (channel, index).
_expanded: set[str] = set()


def remember(secret: str) -> None:
    """Mask ``secret`` wherever it appears from now on (in this process)."""
    if len(secret) >= _MIN_REMEMBERED and not PLACEHOLDER.match(secret):
        with _known_lock:
            _known.add(secret)


def remember_in(text: str) -> None:
    """:func:`remember` the literal credentials of every URL in ``text``."""
    for url in _URL.findall(text):
        for secret in secrets_in(url):
            remember(secret)
            remember(unquote(secret))  # as a tool may print it decoded


def is_credential(name: str, value: str) -> bool:
    """Whether the variable ``name=value`` holds a credential envassay used: a ``${VAR}``
    it expanded, or a value it remembered as a secret."""
    with _known_lock:
        return name in _expanded or value in _known


def mask(text: str) -> str:
    """``text`` with every credential replaced: the one filter for output and files."""
    if "://" in text:
        text = _URL.sub(lambda m: _mask_url(m.group(0), keep_placeholders=True), text)
    with _known_lock:
        known = sorted(_known, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, PASSWORD_MASK)
    return text


def neutral(text: str) -> str:
    """``text`` keyed by meaning: any credential in its URLs, placeholder or not, masked,
    so that rotating a password or token changes no hash while a host or channel does."""
    return _URL.sub(lambda m: _mask_url(m.group(0), keep_placeholders=False), text)


def _mask_url(url: str, *, keep_placeholders: bool) -> str:
    def keep(value: str) -> bool:
        return keep_placeholders and bool(PLACEHOLDER.match(value))

    def userinfo(m: re.Match[str]) -> str:
        password = m["password"] if keep(m["password"]) else PASSWORD_MASK
        return f"{m['scheme']}{m['user']}:{password}@"

    def token(m: re.Match[str]) -> str:
        return m.group(0) if keep(m["token"]) or m["token"] == TOKEN_MASK else f"/t/{TOKEN_MASK}"

    url = _USERINFO.sub(userinfo, url, count=1)
    return url if url.startswith("file:") else _TOKEN.sub(token, url)


def secrets_in(url: str) -> list[str]:
    """The literal credentials (passwords, tokens) in ``url``; placeholders are not."""
    found = []
    m = _USERINFO.match(url)
    if m and m["password"] and not PLACEHOLDER.match(m["password"]):
        found.append(m["password"])
    if not url.startswith("file:"):  # a local directory named t/ is no token
        found += [t["token"] for t in _TOKEN.finditer(url) if not PLACEHOLDER.match(t["token"])]
    return found


def has_credentials(url: str) -> bool:
    """Whether ``url`` carries a password or token (literal or placeholder)."""
    return neutral(url) != url


def placeholders(
    text: str, environ: Mapping[str, str] | None = None, taken: dict[str, str] | None = None
) -> str:
    """``text`` with each literal credential in its URLs replaced by a placeholder (see
    :func:`placeholder_url`); ``taken`` collects name -> value across several calls."""
    return _placeholders(text, environ, {} if taken is None else taken)


def hide(text: str) -> tuple[str, dict[str, str]]:
    """``text`` for a file a tool reads (pip expands ``${VAR}`` in requirements files):
    its credentials as placeholders, and the variables to give the tool's environment."""
    values: dict[str, str] = {}
    return _placeholders(text, None, values), values


def _placeholders(text: str, environ: Mapping[str, str] | None, taken: dict[str, str]) -> str:
    return _URL.sub(lambda m: _placeholder_url(m.group(0), environ, taken), text)


def placeholder_url(url: str, environ: Mapping[str, str] | None = None) -> str:
    """``url`` with each literal credential replaced by a ``${VAR}`` placeholder, as
    conda-lock writes locks: the variable that holds that value, when one does, else
    ``ENVASSAY_<HOST>_<USER>_PASSWORD`` / ``ENVASSAY_<HOST>_TOKEN``."""
    return _placeholder_url(url, environ, {})


def _placeholder_url(url: str, environ: Mapping[str, str] | None, taken: dict[str, str]) -> str:
    """:func:`placeholder_url`, recording each name's value in ``taken``; a default name
    already taken by another value gets a suffix (``_2``), so no two secrets share one."""
    env = os.environ if environ is None else environ
    host = re.sub(r"[^A-Za-z0-9]+", "_", _host(url)).strip("_").upper()

    def var_for(value: str, default: str) -> str:
        named = sorted(k for k, v in env.items() if v == value and PLACEHOLDER.match(f"${{{k}}}"))
        name, n = (named[0] if named else default), 1
        while taken.get(name, value) != value:
            n += 1
            name = f"{default}_{n}"
        taken[name] = value
        return "${" + name + "}"

    def userinfo(m: re.Match[str]) -> str:
        password = m["password"]
        if password and not PLACEHOLDER.match(password) and password != PASSWORD_MASK:
            user = re.sub(r"[^A-Za-z0-9]+", "_", m["user"]).upper()
            password = var_for(password, f"ENVASSAY_{host}_{user}_PASSWORD")
        return f"{m['scheme']}{m['user']}:{password}@"

    def token(m: re.Match[str]) -> str:
        value = m["token"]
        if PLACEHOLDER.match(value) or value == TOKEN_MASK:
            return m.group(0)
        return "/t/" + var_for(value, f"ENVASSAY_{host}_TOKEN")

    url = _USERINFO.sub(userinfo, url, count=1)
    return url if url.startswith("file:") else _TOKEN.sub(token, url)


def placeholder_names(text: str) -> list[str]:
    """The ``${VAR}`` names in ``text``, in order."""
    return _PLACEHOLDER_ANYWHERE.findall(text)


class MissingVariable(LookupError):
    """A ``${VAR}`` placeholder whose variable is not set."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def expand(text: str, environ: Mapping[str, str] | None = None) -> str:
    """``text`` with each ``${VAR}`` replaced by its value (remembered, to be masked);
    raise :class:`MissingVariable` for one that is not set."""
    env = os.environ if environ is None else environ

    def value(m: re.Match[str]) -> str:
        if m[1] not in env:
            raise MissingVariable(m[1])
        remember(env[m[1]])
        with _known_lock:
            _expanded.add(m[1])
        return env[m[1]]

    return _PLACEHOLDER_ANYWHERE.sub(value, text)


def _host(url: str) -> str:
    rest = url.split("://", 1)[-1]
    authority = rest.split("/", 1)[0]
    return authority.rsplit("@", 1)[-1].split(":", 1)[0]


class MaskingStream:
    """A text stream that masks what is written to it (stdout and stderr of a command),
    so that a message no seam caught still leaves masked."""

    def __init__(self, inner: TextIO) -> None:
        self._inner = inner

    def write(self, text: str) -> int:
        self._inner.write(mask(text))
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@contextmanager
def masked_output() -> Iterator[None]:
    """Mask everything this process writes to ``sys.stdout``/``sys.stderr`` in the block."""
    saved = sys.stdout, sys.stderr
    if isinstance(saved[0], MaskingStream):  # already masked (run() and main() both ask)
        yield
        return
    sys.stdout = MaskingStream(saved[0])
    sys.stderr = MaskingStream(saved[1])
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


def write_requirements(path: Path, lines: Sequence[str]) -> dict[str, str] | None:
    """Write a pip requirements file whose index credentials are ``${VAR}`` placeholders
    (pip expands them), so no temporary file holds a secret; return pip's environment for
    it: None (inherit) when nothing was hidden."""
    text, hidden = hide("\n".join(lines) + "\n")
    path.write_text(text, encoding="utf-8")
    return {**os.environ, **hidden} if hidden else None
