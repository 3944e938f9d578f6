"""A real HTTP server on 127.0.0.1 that serves a conda channel and a PEP 503 simple
index only to requests carrying the right credentials, for the private-channel tests.

Routes (everything else, and any request without its credentials, is refused):

- ``/basic/<subdir>/<file>``: the channel, HTTP basic auth ``user:password``;
- ``/t/<token>/tokened/<subdir>/<file>``: the channel, an anaconda-style token path;
- ``/bearer/<subdir>/<file>``: the channel, ``Authorization: Bearer <bearer>`` (what
  rattler's authentication store sends for a ``BearerToken`` entry);
- ``/simple/`` and ``/simple/<project>/``, ``/wheels/<file>``: a simple index of the
  wheels in ``wheels_dir``, HTTP basic auth ``pip_user:pip_password``.
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
from urllib.parse import unquote


@dataclass(frozen=True)
class Secrets:
    """The credentials the server accepts."""

    user: str
    password: str
    token: str
    bearer: str
    pip_user: str
    pip_password: str


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
        return f"http://{s.user}:{password or s.password}@127.0.0.1:{self.port}/basic"

    def token_url(self, token: str | None = None) -> str:
        return f"{self.base}/t/{token or self.secrets.token}/tokened"

    def bearer_url(self) -> str:
        """The channel rattler's authentication store authenticates (host ``localhost``)."""
        return f"http://localhost:{self.port}/bearer"

    def index_url(self, password: str | None = None) -> str:
        s = self.secrets
        return f"http://{s.pip_user}:{password or s.pip_password}@127.0.0.1:{self.port}/simple"


_CHANNEL_ROUTE = re.compile(r"^/(?:basic|bearer|t/[^/]+/tokened)/([^/]+)/([^/]+)$")


def _handler(server: AuthServer, channel: Path, wheels: Path) -> type[BaseHTTPRequestHandler]:
    secrets = server.secrets

    def basic(user: str, password: str) -> str:
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # quiet
            return

        def do_GET(self) -> None:
            path = unquote(self.path.split("?", 1)[0])
            found = self._route(path)
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
            return hmac.compare_digest(self.headers.get("Authorization", ""), expected)

        def _route(self, path: str) -> Path | str | None:
            match = _CHANNEL_ROUTE.match(path)
            if match:
                file = channel / match[1] / match[2]
                if path.startswith("/basic/"):
                    ok = self._authorized(basic(secrets.user, secrets.password))
                elif path.startswith("/bearer/"):
                    ok = self._authorized(f"Bearer {secrets.bearer}")
                else:
                    ok = hmac.compare_digest(path.split("/")[2], secrets.token)
                return file if ok else None
            if not self._authorized(basic(secrets.pip_user, secrets.pip_password)):
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
