"""Private channels against a real HTTP server that refuses requests without the right
credentials (envassay_testing.authserver): every command works, and no byte envassay
produced (outputs, reports, locks, the store, the temporary directory) holds a secret."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from envassay.command import run
from envassay_testing import LocalChannel
from envassay_testing.authserver import AuthServer, Secrets, serve
from envassay_testing.wheels import make_wheel
from tests.integration.envassay_cli import envassay
from tests.realconda import params, real_conda_from

pytestmark = [pytest.mark.channel, pytest.mark.slow]

SECRETS = Secrets(
    user="alice",
    password="s3cretPassw0rd-q7",
    token="tk-SECRET-123456",
    bearer="bearer-XYZ-98765",
    pip_user="bob",
    pip_password="pipPw-777-zz",
)
ALL = (SECRETS.password, SECRETS.token, SECRETS.bearer, SECRETS.pip_password)


@pytest.fixture(scope="module")
def server(
    test_channel: LocalChannel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AuthServer]:
    wheels = tmp_path_factory.mktemp("private-wheels")
    make_wheel(wheels, "privpkg", "1.0", files={"privpkg.py": "VALUE = 42\n"})
    with serve(test_channel.path, wheels, SECRETS) as running:
        yield running


def token_url(server: AuthServer, token: str = SECRETS.token) -> str:
    # rattler keys credentials by host: the token channel on another name for 127.0.0.1.
    return f"http://localhost:{server.port}/t/{token}/tokened"


def write_project(root: Path, channels: list[str], pip_index: str | None) -> Path:
    (root / "envs").mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text("[tool.envassay]\n")
    lines = ["name: private", "channels:", *[f"  - {c}" for c in channels]]
    lines += ["dependencies:", "  - python=3.11", "  - packaging"]
    if pip_index:
        lines += ["  - pip:", f"    - --extra-index-url {pip_index}", "    - privpkg==1.0"]
    spec = root / "envs" / "private.yml"
    spec.write_text("\n".join(lines) + "\n")
    return spec


def sandbox(tmp_path: Path) -> dict[str, str]:
    """A fresh store, temporary directory and step summary: all of it is searched."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "GITHUB_"))}
    for name in ("home", "tmp", "out"):
        (tmp_path / name).mkdir()
    env["ENVASSAY_HOME"] = str(tmp_path / "home")
    env["TMPDIR"] = str(tmp_path / "tmp")
    env["GITHUB_STEP_SUMMARY"] = str(tmp_path / "out" / "summary.md")
    return env


def leaks(
    roots: list[Path], printed: str, skip: set[Path], secrets: tuple[str, ...] = ALL
) -> list[str]:
    """Every file (and the printed text) that holds one of the secrets."""
    found = [f"printed: {s}" for s in secrets if s in printed]
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink() and path not in skip:
                data = path.read_bytes()
                found += [f"{path}: {s}" for s in secrets if s.encode() in data]
    return found


def test_every_command_works_and_nothing_written_holds_a_secret(
    server: AuthServer, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    spec = write_project(
        project, [server.basic_url(), token_url(server)], pip_index=server.index_url()
    )
    env = sandbox(tmp_path)
    out = tmp_path / "out"
    served = server.served
    commands: list[tuple[str | Path, ...]] = [
        ("spec", spec),
        ("create", spec),  # no lock yet: solved
        ("lock", spec),
        ("create", spec),  # from the lock: its downloads need the credentials too
        (
            "check",
            spec,
            "--junitxml",
            out / "junit.xml",
            "--report-md",
            out / "report.md",
            "--report-json",
            out / "report.json",
        ),
        ("drift", spec, "--markdown", out / "drift.md"),
        ("matrix",),
        ("spec", "--json", spec),
        ("lock", "--check", spec),
        ("envs", "list"),
    ]
    printed = []
    for args in commands:
        result = envassay(*args, env=env, cwd=project)
        assert result.returncode == 0, (args, result.stdout + result.stderr)
        printed.append(result.stdout + result.stderr)
    created = [line for line in printed[3].splitlines() if line.startswith("created private")]
    assert created, printed[3]
    prefix = created[0].rsplit(": ", 1)[1]
    probed = envassay("probe", "--json", prefix, env=env, cwd=project)
    assert probed.returncode == 0, probed.stderr
    assert f"http://127.0.0.1:{server.port}/basic/" in probed.stdout  # where they came from
    printed.append(probed.stdout + probed.stderr)
    text = "\n".join(printed)
    assert server.served > served  # the channels really were read through the server
    assert f"alice:****@127.0.0.1:{server.port}/basic" in text  # `spec` shows it, masked
    assert "bob:****@127.0.0.1" in text

    lock = (project / "envs" / "private.conda-lock.yml").read_text()
    assert "url: http://alice:${ENVASSAY_127_0_0_1_ALICE_PASSWORD}@127.0.0.1" in lock
    assert "/t/${ENVASSAY_LOCALHOST_TOKEN}/tokened" in lock
    report = json.loads((out / "report.json").read_text())
    assert report and (out / "summary.md").read_text().strip()
    junit = (out / "junit.xml").read_text()
    assert 'name="import[privpkg]"' in junit and 'name="lock[match]"' in junit

    roots = [project, tmp_path / "home", tmp_path / "tmp", out]
    assert leaks(roots, text, skip={spec}) == []


def test_placeholders_read_from_the_environment(server: AuthServer, tmp_path: Path) -> None:
    """A spec may name its credentials as ${VAR} (conda-lock's convention); a missing one
    is a one-line error naming it."""
    project = tmp_path / "project"
    basic = server.basic_url().replace(SECRETS.password, "${PRIVATE_PW}")
    spec = write_project(project, [basic, token_url(server, "${PRIVATE_TOKEN}")], None)
    env = sandbox(tmp_path)
    missing = envassay("create", spec, env=env, cwd=project)
    assert missing.returncode == 2, missing.stdout + missing.stderr
    line = missing.stderr.strip().splitlines()[-1]
    assert line.startswith("envassay: error: ") and "export PRIVATE_PW" in line, line
    assert f"alice:${{PRIVATE_PW}}@127.0.0.1:{server.port}/basic names ${{PRIVATE_PW}}" in line
    env.update(PRIVATE_PW=SECRETS.password, PRIVATE_TOKEN=SECRETS.token)
    for args in (("lock", spec), ("create", spec)):
        result = envassay(*args, env=env, cwd=project)
        assert result.returncode == 0, result.stdout + result.stderr
    lock = (project / "envs" / "private.conda-lock.yml").read_text()
    assert "alice:${PRIVATE_PW}@" in lock and "/t/${PRIVATE_TOKEN}/" in lock
    assert leaks([project, tmp_path / "home", tmp_path / "tmp"], "", skip=set()) == []


def test_rattlers_authentication_store(server: AuthServer, tmp_path: Path) -> None:
    """Credentials kept where rattler and pixi users keep them (RATTLER_AUTH_FILE)."""
    auth = tmp_path / "user-credentials.json"
    auth.write_text(json.dumps({"localhost": {"BearerToken": SECRETS.bearer}}))
    project = tmp_path / "project"
    spec = write_project(project, [server.bearer_url()], None)
    env = sandbox(tmp_path)
    env["RATTLER_AUTH_FILE"] = str(auth)
    for args in (("create", spec), ("lock", spec), ("create", spec)):  # solve, lock, download
        result = envassay(*args, env=env, cwd=project)
        assert result.returncode == 0, result.stdout + result.stderr
    env.pop("RATTLER_AUTH_FILE")
    refused = envassay("lock", "--force", spec, env=env, cwd=project)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "refused the credentials" in refused.stderr


@pytest.mark.parametrize("command", ["lock", "create", "check"])
def test_a_wrong_password_is_one_masked_line(
    server: AuthServer, tmp_path: Path, command: str
) -> None:
    project = tmp_path / "project"
    wrong = "wr0ngPassw0rd-q7"
    spec = write_project(project, [server.basic_url(password=wrong)], None)
    env = sandbox(tmp_path)
    junit = ("--junitxml", tmp_path / "out" / "junit.xml") if command == "check" else ()
    result = envassay(command, spec, *junit, env=env, cwd=project)
    printed = result.stdout + result.stderr
    assert result.returncode == 2, printed
    assert "Traceback" not in printed
    roots = [project, tmp_path / "home", tmp_path / "tmp", tmp_path / "out"]
    assert leaks(roots, printed, skip={spec}, secrets=(wrong,)) == []
    errors = [line for line in printed.splitlines() if "refused the credentials" in line]
    assert errors, printed
    assert f"http://alice:****@127.0.0.1:{server.port}/basic" in errors[0]


@pytest.mark.docker
def test_the_image_holds_no_secret(server: AuthServer, tmp_path: Path, base_image: str) -> None:
    """Built from the private channels with envassay as the builder's creator: the
    context, the image's layers, history, labels and env files hold no secret."""
    project = tmp_path / "project"
    spec = write_project(
        project, [server.basic_url(), token_url(server)], pip_index=server.index_url()
    )
    (project / "pyproject.toml").write_text(
        f'[tool.envassay.envs.private]\nbuilder-image = "{base_image}"\n'
    )
    env = sandbox(tmp_path)
    printed = []
    for args in (("lock", spec), ("check", "--target", "docker", spec)):
        result = envassay(*args, env=env, cwd=project)
        assert result.returncode == 0, result.stdout + result.stderr
        printed.append(result.stdout + result.stderr)
    ref = json.loads(envassay("build", spec, "--json", env=env, cwd=project).stdout)["ref"]
    saved = tmp_path / "image.tar"
    for argv in (
        ["docker", "save", "-o", str(saved), ref],
        ["docker", "history", "--no-trunc", ref],
        ["docker", "image", "inspect", ref],
    ):
        shown = run(argv, timeout=300)
        assert shown.ok, shown.describe()
        printed.append(shown.stdout)
    image = saved.read_bytes()
    assert b"privpkg" in image  # the env really is in what was searched
    assert [s for s in ALL if s.encode() in image] == []
    saved.unlink()
    # The builder stage's images (whose history records ENVASSAY_SECRETS) are gone.
    images = run(["docker", "images", "-a", "-q", "--no-trunc"], timeout=60).stdout.split()
    for image_id in sorted(set(images)):
        history = run(["docker", "history", "--no-trunc", image_id], timeout=60).stdout
        assert not re.search(r"ENVASSAY_SECRETS=[A-Za-z0-9+/=]+", history), image_id
    roots = [project, tmp_path / "home", tmp_path / "tmp"]
    assert leaks(roots, "\n".join(printed), skip={spec}) == []


@pytest.mark.parametrize("conda_path", params())
def test_conda_backend_is_masked_too(
    server: AuthServer,
    tmp_path: Path,
    conda_path: Path | None,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A real conda given the same channels: what envassay writes and repeats holds no
    secret, nor does conda's package cache, which a credentialed run keeps in the store
    (searched with it) instead of the user's cache."""
    conda = real_conda_from(conda_path)
    project = tmp_path / "project"
    basic = server.basic_url().replace(SECRETS.password, "${PRIVATE_PW}")
    spec = write_project(project, [basic, token_url(server)], pip_index=server.index_url())
    env = conda.environ(sandbox(tmp_path), tmp_path_factory.mktemp("conda-pkgs"))
    env["PRIVATE_PW"] = SECRETS.password
    out = tmp_path / "out"
    printed = []
    for args in (
        ("create", "--backend", "conda", spec),
        ("lock", spec),
        ("create", "--backend", "conda", spec),  # from the lock's @EXPLICIT list
        ("check", "--backend", "conda", spec, "--junitxml", out / "junit.xml",
         "--report-json", out / "report.json"),
    ):  # fmt: skip
        result = envassay(*args, env=env, cwd=project)
        assert result.returncode == 0, result.stdout + result.stderr
        printed.append(result.stdout + result.stderr)
    assert "[conda]" in printed[0]  # conda's own words were repeated, masked
    assert (tmp_path / "home" / "cache" / "conda-pkgs" / "urls.txt").is_file()
    assert "locked distribution" in printed[2]
    assert 'name="import[privpkg]"' in (out / "junit.xml").read_text()
    roots = [project, tmp_path / "home", tmp_path / "tmp", out]
    assert leaks(roots, "\n".join(printed), skip={spec}) == []


def test_a_wrong_index_password_is_exit_2_and_masked(server: AuthServer, tmp_path: Path) -> None:
    project = tmp_path / "project"
    wrong = "wr0ngIndexPw-q7"
    spec = write_project(project, [server.basic_url()], pip_index=server.index_url(password=wrong))
    env = sandbox(tmp_path)
    result = envassay("create", spec, env=env, cwd=project)
    printed = result.stdout + result.stderr
    assert result.returncode == 2, printed
    assert "envassay: error:" in printed and "privpkg" in printed
    roots = [project, tmp_path / "home", tmp_path / "tmp"]
    assert leaks(roots, printed, skip={spec}, secrets=(wrong, SECRETS.password)) == []
