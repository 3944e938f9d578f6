"""Properties over real runs: credentials drawn from RFC 3986's whole userinfo alphabet
(tests/secretforms.py), in every form envassay accepts (a channel's ``user:password@``, a
token alone as userinfo, ``/t/TOKEN/``; pip's ``--index-url``/``--extra-index-url``,
``-f``, ``name @ URL``), go through spec, lock, create and check with every report
against a server that refuses anything but those credentials (authserver), with the
rattler creator and the real condas; every output, report, lock and store file is
searched for every shape of every secret: zero hits. The search itself is shown to find
a secret when masking is switched off.

Example counts are kept small (each example is a full run); the forms and positions are
covered in depth by tests/unit/test_redact_forms.py.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import tempfile
from contextlib import redirect_stdout
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from envassay import cli, redact
from envassay.command import run
from envassay_testing import LocalChannel
from envassay_testing.authserver import AuthServer, Secrets, serve, userinfo
from envassay_testing.wheels import make_wheel
from tests.integration.envassay_cli import envassay
from tests.realconda import params, real_conda_from
from tests.secretforms import PATH_RAW, Credential, basic_forms, credentials, leaks

pytestmark = [pytest.mark.channel, pytest.mark.slow]

RUNS = settings(
    max_examples=1,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # a full run per example: no shrinking
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.filter_too_much,
    ],
)


@dataclass(frozen=True)
class Draw:
    """One example: the credentials and the form each channel and pip option takes."""

    password: Credential
    token: Credential
    token_user: Credential
    pip_password: Credential
    pip_token: Credential
    first: str  # the 127.0.0.1 channel: "basic" | "userinfo"
    second: str  # the localhost channel: "tokened" | "userinfo" | "basic"
    pip_form: str  # "password" | "token"
    index_flag: str  # "--index-url" | "--extra-index-url"

    @property
    def secrets(self) -> Secrets:
        return Secrets(
            user="alice",
            password=self.password.sent,
            token=self.token.sent,
            bearer="unused-bearer-1",
            pip_user="bob",
            pip_password=self.pip_password.sent,
            token_user=self.token_user.sent,
            pip_token=self.pip_token.sent,
        )

    def shapes(self) -> set[str]:
        """Every shape of every secret this example uses."""
        used = [self.password, self.token, self.token_user, self.pip_password, self.pip_token]
        found = set().union(*(c.forms() for c in used))
        found |= basic_forms("alice", self.password) | basic_forms("bob", self.pip_password)
        return found


def netrc_safe(draw: Draw) -> bool:
    """conda takes a token alone through .netrc, which refuses whitespace, quotes and
    backslashes (a one-line error: tests/unit/test_redact_forms.py)."""
    return not set(' \t"\\') & set(draw.token_user.sent)


def no_colon(c: Credential) -> bool:
    return ":" not in c.written  # a token alone as userinfo: a raw ':' would make it user:pw


draws = st.builds(
    Draw,
    password=credentials(),
    token=credentials(PATH_RAW).filter(lambda c: "@" not in c.written),
    token_user=credentials().filter(no_colon),
    pip_password=credentials(),
    pip_token=credentials().filter(no_colon),
    first=st.sampled_from(["basic", "userinfo"]),
    second=st.sampled_from(["tokened", "userinfo", "basic"]),
    pip_form=st.sampled_from(["password", "token"]),
    index_flag=st.sampled_from(["--index-url", "--extra-index-url"]),
)
# The issue's examples: a punctuated password, `@` raw and encoded, tokens alone.
ISSUE = Draw(
    password=Credential("pa(ss),'w!@rd-9"),
    token=Credential("tk-SECRET-(1),'!"),
    token_user=Credential("AKCp8jQ7-TOKEN-42"),
    pip_password=Credential("p%40ss(w0rd),'!"),
    pip_token=Credential("gemfury-TOK3N-77"),
    first="userinfo",
    second="basic",
    pip_form="token",
    index_flag="--extra-index-url",
)


def channel(server: AuthServer, draw: Draw, kind: str, host: str) -> str:
    port = server.port
    if kind == "basic":
        return f"http://alice:{draw.password.written}@{host}:{port}/basic"
    if kind == "userinfo":
        return f"http://{draw.token_user.written}@{host}:{port}/userinfo"
    return f"http://{host}:{port}/t/{draw.token.written}/tokened"


def write_spec(root: Path, server: AuthServer, draw: Draw) -> Path:
    """A project whose spec uses the draw's forms: two channels (rattler keys credentials
    by host: one on 127.0.0.1, one on localhost) and pip's index, -f and name @ URL."""
    if draw.pip_form == "token":
        pip = f"http://{draw.pip_token.written}@127.0.0.1:{server.port}"
    else:
        pip = f"http://bob:{draw.pip_password.written}@127.0.0.1:{server.port}"
    channels = [channel(server, draw, draw.first, "127.0.0.1")]
    if (second := channel(server, draw, draw.second, "localhost")) not in channels:
        channels.append(second)
    (root / "envs").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[tool.envassay]\n")
    spec = root / "envs" / "private.yml"
    lines = ["name: private", "channels:", *[f"  - {json.dumps(c)}" for c in channels]]
    lines += ["dependencies:", "  - python=3.11", "  - packaging", "  - pip:"]
    lines += [
        f"    - {json.dumps(f'{draw.index_flag} {pip}/simple')}",
        f"    - {json.dumps(f'-f {pip}/simple/linkpkg/')}",
        "    - privpkg==1.0",
        "    - linkpkg==1.0",
        f"    - {json.dumps(f'urlpkg @ {pip}/wheels/urlpkg-1.0-py3-none-any.whl')}",
    ]
    spec.write_text("\n".join(lines) + "\n")
    return spec


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("secret-wheels")
    for name in ("privpkg", "linkpkg", "urlpkg"):
        make_wheel(where, name, "1.0", files={f"{name}.py": "VALUE = 42\n"})
    return where


@dataclass
class Sandbox:
    root: Path
    env: dict[str, str]

    @property
    def out(self) -> Path:
        return self.root / "out"

    def searched(self) -> list[Path]:
        return [self.root / name for name in ("project", "home", "tmp", "out")]


def sandbox(root: Path, base: dict[str, str] | None = None) -> Sandbox:
    """A fresh store, temporary directory and step summary: all of it is searched."""
    env = {
        k: v for k, v in (base or os.environ).items() if not k.startswith(("PYTEST_", "GITHUB_"))
    }
    for name in ("home", "tmp", "out"):
        (root / name).mkdir()
    env["ENVASSAY_HOME"] = str(root / "home")
    env["TMPDIR"] = str(root / "tmp")
    env["GITHUB_STEP_SUMMARY"] = str(root / "out" / "summary.md")
    return Sandbox(root, env)


@dataclass(frozen=True)
class Running:
    """What each example's server serves: the test channel and the private wheels."""

    channel: Path
    wheels: Path


@pytest.fixture
def running(test_channel: LocalChannel, wheels: Path) -> Running:
    return Running(test_channel.path, wheels)


def run_all(box: Sandbox, spec: Path, backend: tuple[str, ...]) -> str:
    """spec, lock, create (from the lock), check with every report: all must pass."""
    out = box.out
    commands: list[tuple[str | Path, ...]] = [
        ("spec", spec),
        ("spec", "--json", spec),
        ("lock", spec),
        ("create", *backend, spec),
        ("check", *backend, spec, "--junitxml", out / "junit.xml",
         "--report-md", out / "report.md", "--report-json", out / "report.json"),
        ("lock", "--check", spec),
    ]  # fmt: skip
    printed = []
    for args in commands:
        result = envassay(*args, env=box.env, cwd=spec.parent.parent)
        assert result.returncode == 0, (args, result.stdout + result.stderr)
        printed.append(result.stdout + result.stderr)
    junit = (out / "junit.xml").read_text()
    for name in ("privpkg", "linkpkg", "urlpkg"):
        assert f'name="import[{name}]"' in junit  # pip really fetched all three
    assert (out / "summary.md").read_text().strip() and (out / "report.md").read_text()
    return "\n".join(printed)


@RUNS
@given(draw=draws)
@example(draw=ISSUE)
def test_rattler_creator_writes_and_prints_no_secret(running: Running, draw: Draw) -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        serve(running.channel, running.wheels, draw.secrets) as server,
    ):
        root = Path(tmp)
        spec = write_spec(root / "project", server, draw)
        box = sandbox(root)
        served = server.served
        printed = run_all(box, spec, ())
        assert server.served > served and server.refused >= 0
        lock = (root / "project" / "envs" / "private.conda-lock.yml").read_text()
        assert "${ENVASSAY_" in lock  # the channels' credentials as placeholders
        assert leaks(box.searched(), printed, draw.shapes(), skip={spec}) == []


@pytest.mark.parametrize("conda_path", params())
@RUNS
@given(draw=draws.map(lambda d: replace(d, first="userinfo")).filter(netrc_safe))
def test_real_conda_writes_and_prints_no_secret(  # always through conda's netrc path
    running: Running,
    conda_path: Path | None,
    tmp_path_factory: pytest.TempPathFactory,
    draw: Draw,
) -> None:
    """conda's package cache for a credentialed run lives in the store and is searched."""
    conda = real_conda_from(conda_path)
    with (
        tempfile.TemporaryDirectory() as tmp,
        serve(running.channel, running.wheels, draw.secrets) as server,
    ):
        root = Path(tmp)
        spec = write_spec(root / "project", server, draw)
        pkgs = root / "user-pkgs"  # the user's own cache: conda must not use it here
        box = sandbox(root, conda.environ(os.environ, pkgs))
        printed = run_all(box, spec, ("--backend", "conda"))
        assert (root / "home" / "cache" / "conda-pkgs" / "urls.txt").is_file()
        assert not pkgs.exists()
        assert leaks([*box.searched()], printed, draw.shapes(), skip={spec}) == []


@settings(RUNS, max_examples=15, phases=[Phase.explicit, Phase.generate, Phase.shrink])
@given(draw=draws, git=credentials().filter(no_colon))
def test_spec_masks_every_form(draw: Draw, git: Credential) -> None:
    """``spec`` and ``spec --json`` (no server needed), git+https and query tokens too."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        server = AuthServer(port=8080, secrets=draw.secrets)
        spec = write_spec(root / "project", server, draw)
        with spec.open("a") as f:
            f.write(
                f"    - {json.dumps(f'git+https://{git.written}@git.example.com/org/repo.git')}\n"
            )
        box = sandbox(root)
        printed = [
            envassay(*args, spec, env=box.env, cwd=root / "project")
            for args in (("spec",), ("spec", "--json"))
        ]
        assert all(r.returncode == 0 for r in printed), printed
        text = "\n".join(r.stdout + r.stderr for r in printed)
        assert "****@127.0.0.1" in text and "****@git.example.com" in text
        shapes = draw.shapes() | git.forms()
        assert leaks([root / "home"], text, shapes) == []
        # A credential in a query is refused: one line, exit 2, masked.
        # Encoded for a query, where a raw `&`, `=` or `;` (allowed in userinfo) would end the
        # value: `?token=&x` holds no token at all.
        token = quote(draw.password.sent, safe="")
        queried = spec.read_text().replace("/basic", f"/basic?token={token}", 1)
        queried = queried.replace("/userinfo", f"/userinfo?token={token}", 1)
        spec.write_text(queried)
        refused = envassay("spec", spec, env=box.env, cwd=root / "project")
        assert refused.returncode == 2, refused.stdout + refused.stderr
        line = refused.stderr.strip()
        assert "\n" not in line and "query" in line and "Traceback" not in line
        assert leaks([], line, draw.password.forms()) == []


@pytest.mark.docker
@RUNS
@given(draw=draws)
def test_the_image_holds_no_secret(running: Running, base_image: str, draw: Draw) -> None:
    """Built with envassay as the builder's creator: the context, every layer of the
    saved image (its /opt/env/conda-meta included), its history and labels hold none."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        serve(running.channel, running.wheels, draw.secrets) as server,
    ):
        root = Path(tmp)
        spec = write_spec(root / "project", server, draw)
        (root / "project" / "pyproject.toml").write_text(
            f'[tool.envassay.envs.private]\nbuilder-image = "{base_image}"\n'
        )
        box = sandbox(root)
        printed = []
        for args in (("lock", spec), ("build", spec, "--json")):
            result = envassay(*args, env=box.env, cwd=root / "project")
            logs = "".join(p.read_text()[-3000:] for p in (root / "home").glob("logs/*.log"))
            assert result.returncode == 0, (args, result.stdout + result.stderr, logs)
            printed.append(result.stdout + result.stderr)
        ref = json.loads(result.stdout)["ref"]
        saved = root / "out" / "image.tar"
        shown = [
            run(["docker", "save", "-o", str(saved), ref], timeout=300),
            run(["docker", "history", "--no-trunc", ref], timeout=60),
            run(["docker", "image", "inspect", ref], timeout=60),
        ]
        assert all(r.ok for r in shown), [r.describe() for r in shown]
        layers = root / "out" / "layers"
        with tarfile.open(saved) as image:
            image.extractall(layers, filter="data")
        for layer in [*layers.rglob("*.tar"), *layers.rglob("blobs/sha256/*")]:
            if tarfile.is_tarfile(layer):  # each layer's files, searched one by one
                with tarfile.open(layer) as files:
                    files.extractall(layer.parent / (layer.name + ".d"), filter="fully_trusted")
        assert list(layers.rglob("conda-meta/*.json")), "the env is in what was searched"
        text = "\n".join([*printed, *(r.stdout for r in shown)])
        found = leaks(box.searched(), text, draw.shapes(), skip={spec})
        run(["docker", "rmi", ref], timeout=120)  # a new tag per draw: not left behind
        assert found == []


def test_the_search_finds_a_secret_when_masking_is_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the mask switched off, the same search finds the secret in `spec`'s output:
    the zero hits above are the mask's doing, not a blind search."""
    server = AuthServer(port=8080, secrets=ISSUE.secrets)
    spec = write_spec(tmp_path / "project", server, ISSUE)
    monkeypatch.setattr(redact, "mask", lambda text: text)
    shown = io.StringIO()
    with redirect_stdout(shown):
        assert cli.main(["spec", str(spec)]) in (0, None)
    found = leaks([], shown.getvalue(), ISSUE.shapes())
    assert found and any(
        userinfo(ISSUE.secrets.token_user) in f or ISSUE.token_user.written in f for f in found
    )
