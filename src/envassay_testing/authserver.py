"""A real HTTP server on 127.0.0.1 that serves a conda channel and a PEP 503 simple
index only to requests carrying the right credentials, for the private-channel tests.

Routes (everything else, and any request without its credentials, is refused):

- ``/basic/<subdir>/<file>``: the channel, HTTP basic auth ``user:password``;
- ``/t/<token>/tokened/<subdir>/<file>``: the channel, an anaconda-style token path;
- ``/userinfo/<subdir>/<file>``: the channel, a token alone as userinfo
  (``https://TOKEN@host/``): HTTP basic auth ``token_user:`` (empty password), what
  rattler, conda's requests and pip send for it;
- ``/bearer/<subdir>/<file>``: the channel, ``Authorization: Bearer <bearer>`` (what
  rattler's authentication store sends for a ``BearerToken`` entry);
- ``/simple/`` and ``/simple/<project>/``, ``/wheels/<file>``: a simple index of the
  wheels in ``wheels_dir``, HTTP basic auth ``pip_user:pip_password`` or, when set,
  ``pip_token:`` (a token alone).

Secrets are held decoded (what is sent); a URL carries them percent-encoded where
RFC 3986 wants it (:func:`userinfo`).
"""

from __future__ import annotations

import base64
import hmac
import html
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote


@dataclass(frozen=True)
class Secrets:
    """The credentials the server accepts."""

    user: str
    password: str
    token: str
    bearer: str
    pip_user: str
    pip_password: str
    token_user: str = "tokenuser-ABC-4567"
    pip_token: str = ""


_USERINFO_SAFE = "!$&'()*+,;=~"  # RFC 3986 sub-delims and unreserved: raw in userinfo


def userinfo(value: str) -> str:
    """``value`` as a URL's userinfo part: percent-encoded where RFC 3986 requires."""
    return quote(value, safe=_USERINFO_SAFE)


@dataclass
class AuthServer:
    """A running server; ``refused`` counts the requests it turned away."""

    port: int
    secrets: Secrets
    refused: int = 0
    served: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def basic_url(self, password: str | None = None) -> str:
        """The basic-auth channel's URL with its credentials."""
        s = self.secrets
        written = password or userinfo(s.password)
        return f"http://{userinfo(s.user)}:{written}@127.0.0.1:{self.port}/basic"

    def token_url(self, token: str | None = None) -> str:
        return f"{self.base}/t/{token or quote(self.secrets.token, safe='')}/tokened"

    def userinfo_url(self, host: str = "127.0.0.1", token: str | None = None) -> str:
        """The token-as-userinfo channel (``http://TOKEN@host:port/userinfo``)."""
        written = token or userinfo(self.secrets.token_user)
        return f"http://{written}@{host}:{self.port}/userinfo"

    def bearer_url(self) -> str:
        """The channel rattler's authentication store authenticates (host ``localhost``)."""
        return f"http://localhost:{self.port}/bearer"

    def index_url(self, password: str | None = None) -> str:
        s = self.secrets
        written = password or userinfo(s.pip_password)
        return f"http://{userinfo(s.pip_user)}:{written}@127.0.0.1:{self.port}/simple"


_CHANNEL_ROUTE = re.compile(r"^/(?:basic|bearer|userinfo|t/([^/]+)/tokened)/([^/]+)/([^/]+)$")


def _handler(server: AuthServer, channel: Path, wheels: Path) -> type[BaseHTTPRequestHandler]:
    secrets = server.secrets

    def basic(user: str, password: str) -> str:
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # quiet
            return

        def do_GET(self) -> None:
            found = self._route(self.path.split("?", 1)[0])
            if found is None:
                server.refused += 1
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="private"')
                self.end_headers()
                return
            if isinstance(found, Path) and not found.is_file():
                self.send_error(404)
                return
            body = found.read_bytes() if isinstance(found, Path) else found.encode()
            server.served += 1
            self.send_response(200)
            kind = "text/html" if isinstance(found, str) else "application/octet-stream"
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _authorized(self, expected: str) -> bool:
            given = self.headers.get("Authorization", "").encode("latin-1", "replace")
            return hmac.compare_digest(given, expected.encode("latin-1", "replace"))

        def _route(self, raw: str) -> Path | str | None:
            match = _CHANNEL_ROUTE.match(raw)  # before decoding: a token may hold a %2F
            path = unquote(raw)
            if match:
                file = channel / unquote(match[2]) / unquote(match[3])
                if path.startswith("/basic/"):
                    ok = self._authorized(basic(secrets.user, secrets.password))
                elif path.startswith("/bearer/"):
                    ok = self._authorized(f"Bearer {secrets.bearer}")
                elif path.startswith("/userinfo/"):
                    ok = self._authorized(basic(secrets.token_user, ""))
                else:
                    ok = hmac.compare_digest(unquote(match[1]).encode(), secrets.token.encode())
                return file if ok else None
            pip_ok = self._authorized(basic(secrets.pip_user, secrets.pip_password))
            if not pip_ok and not (
                secrets.pip_token and self._authorized(basic(secrets.pip_token, ""))
            ):
                return None
            if path.startswith("/wheels/"):
                return wheels / path.removeprefix("/wheels/")
            if path.startswith("/simple/"):
                return self._simple(path.removeprefix("/simple/").strip("/"))
            return None

        def _simple(self, project: str) -> str:
            names = sorted(p.name for p in wheels.glob("*.whl"))
            if not project:
                projects = sorted({_project(n) for n in names})
                links = [f'<a href="/simple/{p}/">{p}</a>' for p in projects]
            else:
                links = [
                    f'<a href="/wheels/{html.escape(n)}">{html.escape(n)}</a>'
                    for n in names
                    if _project(n) == project
                ]
            return "<!DOCTYPE html><html><body>\n" + "\n".join(links) + "\n</body></html>\n"

    return Handler


def _project(wheel_name: str) -> str:
    """A wheel file's PEP 503 project name."""
    return re.sub(r"[-_.]+", "-", wheel_name.split("-")[0]).lower()


@contextmanager
def serve(channel: Path, wheels: Path, secrets: Secrets) -> Iterator[AuthServer]:
    """Serve ``channel`` and ``wheels`` on 127.0.0.1 (a free port) until the block ends."""
    state = AuthServer(port=0, secrets=secrets)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state, channel, wheels))
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
