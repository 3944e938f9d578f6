"""The one place that knows what a secret looks like: every string envassay shows or
writes passes through :func:`mask`, every key it hashes through :func:`neutral`, and
lock files hold :func:`placeholders` instead of credentials.

Credentials live in URLs, as conda and pip take them, and :class:`CredentialURL` is the
one parse of them all (channels, mirrors, every pip option and requirement URL):

- userinfo ``scheme://USER:PASSWORD@host/`` (masked ``USER:****@``, as pip prints it),
  with any character RFC 3986 allows there, raw or percent-encoded; a raw ``@`` too (the
  last ``@`` before the host ends the userinfo, as urllib and WHATWG parsers read it);
- a token alone as userinfo, ``http(s)://TOKEN@host/`` (masked ``****@``, as pip prints
  it; what Artifactory and Gemfury hand out); for other schemes (``git+ssh://git@``) a
  user without a password is a login name and is shown;
- anaconda-style token paths ``/t/TOKEN/`` (masked ``/t/<TOKEN>/``, as conda prints it);
- a query parameter named like a credential (``?token=``, ``access_key=``, ``X-Amz-
  Signature=``): masked ``****`` wherever it shows, and refused in a spec
  (:func:`refusal`), since no tool has a way to hand it over but the URL itself.

A ``${VAR}`` placeholder (conda-lock's convention) names a secret without holding it, so
it is shown as is. Secrets met in a spec are also :func:`remember`-ed, so a tool that
repeats one outside a URL (decoded, or in another shape) is masked too; a secret too
word-like to be told from ordinary text (``linux``) is masked only where it stands as
a URL part or after ``password``/``token``, so ``linux-64`` stays readable.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote, unquote

PASSWORD_MASK = "****"
TOKEN_MASK = "<TOKEN>"
# RFC 3986's URL characters, plus the braces of a ${VAR}: a URL in text ends at anything
# else (whitespace, quotes `"`, `<>`, a backslash); `'`, `(`, `)` and `,` are URL
# characters (sub-delims) and may be part of a password.
_URL_CHARS = r"A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%{}"
_URL = re.compile(rf"[A-Za-z][A-Za-z0-9+.-]*://[{_URL_CHARS}]*")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_TOKEN = re.compile(r"/t/(?P<token>[^/?#]+)(?=[/?#]|$)")
# A query parameter whose name says it carries a credential. `;` may start one (old
# servers split on it) but does not end a value (today's do not): `token=;x` holds `;x`.
_QUERY_SECRET = re.compile(  # a name that is, or ends in a segment that is, a credential word
    r"(?P<key>[?&;](?:[^=&;#]*[_.-])?"
    r"(?:token|key|apikey|secret|password|passwd|pwd|auth|signature|sig|credential|session)=)"
    r"(?P<value>[^&#]*)",
    re.IGNORECASE,
)
PLACEHOLDER = re.compile(r"^\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)\}$")
_PLACEHOLDER_ANYWHERE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SECRET_USERS = ("http", "https")  # schemes whose user without a password is a token
_MIN_REMEMBERED = 4  # shorter strings are never masked by value
# A word-like secret (`linux`, `12345678`) would mask ordinary text wherever it shows; it
# is masked by position only (in URLs, after `password`/`token`).
_STRONG_LENGTH = 16
_MIXED_LENGTH = 8

_known: set[str] = set()  # strong secrets: masked anywhere
_weak: set[str] = set()  # word-like secrets: masked in credential contexts only
_known_lock = threading.Lock()
# The variables whose values a ${VAR} placeholder put into a URL (channel, index).
_expanded: set[str] = set()


def _is_placeholder(value: str | None) -> bool:
    return value is not None and (bool(PLACEHOLDER.match(value)) or value in _MASKS)


_MASKS = (PASSWORD_MASK, TOKEN_MASK)
Swap = Callable[[str, str], str]


@dataclass(frozen=True)
class CredentialURL:
    """One URL, parsed once: its credentials apart from the rest.

    ``user``/``password``/``token`` are as written (percent-encoded where they were);
    ``authority`` is ``host[:port]``; ``path`` is everything after it (path, query,
    fragment) with the ``/t/TOKEN`` segment cut out at ``token_at``.
    """

    scheme: str  # "https://", "git+https://"
    user: str | None
    password: str | None
    authority: str
    path: str
    token: str | None = None
    token_at: int = 0

    @classmethod
    def parse(cls, url: str) -> CredentialURL:
        m = _SCHEME.match(url)
        if m is None:
            return cls("", None, None, "", url)
        scheme, rest = m.group(0), url[m.end() :]
        end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
        authority, path = rest[:end], rest[end:]
        user = password = None
        if "@" in authority:
            userinfo, _, authority = authority.rpartition("@")
            user, colon, pw = userinfo.partition(":")
            password = pw if colon else None
        token, token_at = None, 0
        if not scheme.lower().startswith("file:"):  # a local directory named t/ is no token
            t = _TOKEN.search(path)
            if t:
                token, token_at = t["token"], t.start()
                path = path[: t.start()] + path[t.end() :]
        return cls(scheme, user, password, authority, path, token, token_at)

    @property
    def user_is_secret(self) -> bool:
        """A user without a password on http(s): a token (``https://TOKEN@host``)."""
        base = self.scheme[:-3].rsplit("+", 1)[-1].lower()
        return self.password is None and bool(self.user) and base in _SECRET_USERS

    @property
    def host(self) -> str:
        """The host, without port (brackets of an IPv6 literal kept)."""
        if self.authority.startswith("["):
            return self.authority.split("]", 1)[0] + "]"
        return self.authority.split(":", 1)[0]

    def secrets(self, *, placeholders: bool = False) -> list[str]:
        """The credentials it holds as written (password, token-as-user, path token, a
        credential query value); ``${VAR}`` placeholders only when asked for."""
        found = [self.password] if self.password else []
        if self.user_is_secret:
            found.append(self.user or "")
        if self.token:
            found.append(self.token)
        found += [q["value"] for q in _QUERY_SECRET.finditer(self.path) if q["value"]]
        return [s for s in found if placeholders or not _is_placeholder(s)]

    def query_secrets(self) -> list[str]:
        """The names of credential-like query parameters (``token`` in ``?token=``)."""
        return [q["key"][1:-1] for q in _QUERY_SECRET.finditer(self.path) if q["value"]]

    def render(self, swap: Swap = lambda _kind, s: s, *, clean: bool = False) -> str:
        """The URL with each credential ``s`` of a kind (``password``, ``user``,
        ``token``, ``query``) written as ``swap(kind, s)``, or without any (``clean``: what
        rattler, locks and every persisted record hold)."""
        if not self.scheme:
            return self.path
        if clean:
            return self.scheme + self.authority + self.path
        userinfo = ""
        if self.password is not None:
            userinfo = f"{self.user}:{swap('password', self.password)}@"
        elif self.user is not None:
            userinfo = f"{swap('user', self.user) if self.user_is_secret else self.user}@"
        path = self.path
        if self.token is not None:
            path = f"{path[: self.token_at]}/t/{swap('token', self.token)}{path[self.token_at :]}"

        def query(q: re.Match[str]) -> str:
            return q["key"] + (swap("query", q["value"]) if q["value"] else "")

        return self.scheme + userinfo + self.authority + _QUERY_SECRET.sub(query, path)

    @property
    def clean(self) -> str:
        """The URL without credentials."""
        return self.render(clean=True)

    def masked(self, *, keep_placeholders: bool = True) -> str:
        """As shown: ``user:****@``, ``****@`` for a token user, ``/t/<TOKEN>/``."""

        def swap(kind: str, value: str) -> str:
            if keep_placeholders and _is_placeholder(value):
                return value
            return TOKEN_MASK if kind == "token" else PASSWORD_MASK

        return self.render(swap)


def parse_url(url: str) -> CredentialURL:
    """``url`` parsed once into its credentials and the rest (see :class:`CredentialURL`)."""
    return CredentialURL.parse(url)


def strong(secret: str) -> bool:
    """Whether ``secret`` can be masked by value without masking ordinary text: long, or
    of some length and mixing letters with other characters (not a word, not a number)."""
    if len(secret) >= _STRONG_LENGTH:
        return True
    letters = sum(c.isalpha() for c in secret)
    return len(secret) >= _MIXED_LENGTH and 0 < letters < len(secret)


def _forms(secret: str) -> set[str]:
    """A secret as tools may print it: as written, decoded, and percent-encoded again."""
    plain = unquote(secret)
    return {secret, plain, quote(plain, safe=""), quote(plain, safe="!$&'()*+,;=:~")}


def remember(secret: str) -> None:
    """Mask ``secret`` (in each of its forms) wherever it appears from now on (in this
    process); a word-like one only in credential contexts (see :func:`strong`)."""
    if PLACEHOLDER.match(secret) or secret in _MASKS:
        return
    forms = {f for f in _forms(secret) if len(f) >= _MIN_REMEMBERED}
    with _known_lock:
        for form in forms:
            (_known if strong(form) else _weak).add(form)


def remember_in(text: str) -> None:
    """:func:`remember` the literal credentials of every URL in ``text``."""
    for url in _URL.findall(text):
        for secret in parse_url(url).secrets():
            remember(secret)


def refusal(url: str, *, channel: bool = False) -> str | None:
    """Why a spec's ``url`` is refused (a one-line reason), or None: credentials in a
    query, which no tool takes any other way, so they would reach every record; for a
    channel, an ``@`` after its host (a password's ``/``, ``?``, ``#`` or ``@`` left
    unencoded, which would put the rest of it in the path)."""
    parsed = parse_url(url)
    names = parsed.query_secrets()
    if names:
        return (
            f"{mask(url)} carries a credential in its query ({names[0]}=...), which "
            "envassay does not support: give it as userinfo (TOKEN@host or "
            "USER:PASSWORD@host), as a /t/TOKEN/ path, or in rattler's or pip's own store"
        )
    remote = parsed.scheme and not parsed.scheme.lower().startswith("file:")
    if channel and remote and "@" in parsed.path:
        return (
            f"{mask(url)} has an '@' after its host: percent-encode '/', '?', '#' and '@' "
            "in a password or token (%2F, %3F, %23, %40)"
        )
    return None


def refusal_in(text: str) -> str | None:
    """:func:`refusal` for the first refused URL in ``text`` (a pip line), or None."""
    return next(filter(None, map(refusal, _URL.findall(text))), None)


_CONTEXT = re.compile(
    r"(?P<key>(?:password|passwd|pwd|token|secret)\S{0,2}\s*[=:]\s*['\"]?)(?P<value>[^\s'\",;]+)",
    re.IGNORECASE,
)


def is_credential(name: str, value: str) -> bool:
    """Whether the variable ``name=value`` holds a credential envassay used: a ``${VAR}``
    it expanded, or a value it remembered as a secret."""
    with _known_lock:
        return name in _expanded or value in _known or value in _weak


def mask(text: str) -> str:
    """``text`` with every credential replaced: the one filter for output and files."""
    if "://" in text:
        text = _URL.sub(lambda m: parse_url(m.group(0)).masked(), text)
    with _known_lock:
        known = sorted(_known, key=len, reverse=True)
        weak = set(_weak)
    for secret in known:
        if secret in text:
            text = text.replace(secret, PASSWORD_MASK)
    if weak:
        text = _CONTEXT.sub(
            lambda m: m["key"] + (PASSWORD_MASK if m["value"] in weak else m["value"]), text
        )
    return text


def neutral(text: str) -> str:
    """``text`` keyed by meaning: any credential in its URLs, placeholder or not, masked,
    so that rotating a password or token changes no hash while a host or channel does."""
    return _URL.sub(lambda m: parse_url(m.group(0)).masked(keep_placeholders=False), text)


def clean(url: str) -> str:
    """``url`` without any credential: what a record, cache or lock may hold."""
    return parse_url(url).clean


def strip_credentials(text: str) -> str:
    """``text`` with every URL in it :func:`clean`: for records a tool wrote."""
    if "://" not in text:
        return text
    return _URL.sub(lambda m: parse_url(m.group(0)).clean, text)


def encoded(url: str) -> str:
    """``url`` with its credentials percent-encoded but for RFC 3986's unreserved
    characters: what every tool decodes alike (conda cuts a password at a raw ':')."""
    return parse_url(url).render(lambda _kind, v: v if _is_placeholder(v) else encode_credential(v))


def encode_credential(value: str) -> str:
    """A credential as written in a URL, percent-encoded but for unreserved characters."""
    return quote(unquote(value), safe="-._~")


def secrets_in(url: str) -> list[str]:
    """The literal credentials (passwords, tokens) in ``url``; placeholders are not."""
    return parse_url(url).secrets()


def has_credentials(url: str) -> bool:
    """Whether ``url`` carries a password or token (literal or placeholder)."""
    return bool(parse_url(url).secrets(placeholders=True))


def placeholders(
    text: str, environ: Mapping[str, str] | None = None, taken: dict[str, str] | None = None
) -> str:
    """``text`` with each literal credential in its URLs replaced by a placeholder (see
    :func:`placeholder_url`); ``taken`` collects name -> value across several calls."""
    return _placeholders(text, environ, {} if taken is None else taken)


def hide(text: str) -> tuple[str, dict[str, str]]:
    """``text`` for a file a tool reads (pip expands ``${VAR}`` in requirements files):
    its credentials as placeholders, and the variables to give the tool's environment.

    Each value is percent-encoded but for RFC 3986's unreserved characters: the same
    credential to every tool (they decode it), and no ``;`` or ``#`` left raw for pip,
    which expands ``${VAR}`` before it reads a line and would take them for a marker or
    a comment."""
    values: dict[str, str] = {}
    hidden = _placeholders(text, None, values)
    for name in placeholder_names(hidden):  # the user's own ${VAR}s, encoded alike
        if name not in values and name in os.environ:
            values[name] = os.environ[name]
    return hidden, {name: encode_credential(v) for name, v in values.items()}


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
    parsed = parse_url(url)
    host = _variable_part(parsed.host)

    def var_for(value: str, default: str) -> str:
        named = sorted(k for k, v in env.items() if v == value and PLACEHOLDER.match(f"${{{k}}}"))
        name, n = (named[0] if named else default), 1
        while taken.get(name, value) != value:
            n += 1
            name = f"{default}_{n}"
        taken[name] = value
        return "${" + name + "}"

    def swap(kind: str, value: str) -> str:
        if _is_placeholder(value):
            return value
        if kind == "password":
            return var_for(value, f"ENVASSAY_{host}_{_variable_part(parsed.user or '')}_PASSWORD")
        return var_for(value, f"ENVASSAY_{host}_TOKEN")

    return parsed.render(swap)


def _variable_part(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").upper()


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
