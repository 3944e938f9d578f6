"""The one mask (redact.py), rattler's credentials (credentials.py), and keys by meaning:
a rotated password or token changes no spec hash, lock freshness or image tag."""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import pytest

from envassay import credentials, redact
from envassay.errors import UserError
from envassay.lock.format import read_lock
from envassay.lock.status import lock_status
from envassay.spec.config import Config
from envassay.spec.environment import load_spec
from envassay.targets.image import ImageOptions, assemble_context, plan_image
from tests.unit.test_lockfile import locked_for

BASIC = "https://alice:s3cretPassw0rd@repo.example.com/private"
TOKEN = "https://conda.example.com/t/tk-SECRET-123456/private2"


@pytest.fixture(autouse=True)
def fresh_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test remembers its own secrets only."""
    monkeypatch.setattr(redact, "_known", set())


def test_mask_hides_passwords_and_tokens_as_pip_and_conda_print_them() -> None:
    text = f"solving against {BASIC}, {TOKEN}/noarch/repodata.json (401)"
    assert redact.mask(text) == (
        "solving against https://alice:****@repo.example.com/private, "
        "https://conda.example.com/t/<TOKEN>/private2/noarch/repodata.json (401)"
    )
    assert redact.mask(redact.mask(text)) == redact.mask(text)  # masked stays masked


def test_mask_keeps_placeholders_file_paths_and_plain_text() -> None:
    named = "https://alice:${PRIVATE_PW}@repo.example.com/private /t/${TOKEN}/c"
    assert redact.mask(named) == named
    local = "file:///home/me/t/channel/noarch and /t/nope/ outside a URL"
    assert redact.mask(local) == local


def test_remembered_secrets_are_masked_anywhere() -> None:
    redact.remember_in(f"--extra-index-url https://bob:pipPw-777@pypi.example.com/simple {TOKEN}")
    assert redact.mask("pip said: bad password pipPw-777; token tk-SECRET-123456") == (
        "pip said: bad password ****; token ****"
    )
    redact.remember("abc")  # too short to mask safely
    assert redact.mask("abc") == "abc"


def test_neutral_ignores_the_secret_but_not_the_host_or_channel() -> None:
    rotated = BASIC.replace("s3cretPassw0rd", "n3wPassw0rd")
    assert redact.neutral(BASIC) == redact.neutral(rotated)
    assert redact.neutral(BASIC) == redact.neutral(BASIC.replace("s3cretPassw0rd", "${PW}"))
    assert redact.neutral(TOKEN) == redact.neutral(TOKEN.replace("tk-SECRET", "tk-OTHER"))
    assert redact.neutral(BASIC) != redact.neutral(BASIC.replace("repo.", "mirror."))
    assert redact.neutral(TOKEN) != redact.neutral(TOKEN.replace("private2", "private3"))


def test_secrets_and_placeholders() -> None:
    assert redact.secrets_in(BASIC) == ["s3cretPassw0rd"]
    assert redact.secrets_in(TOKEN) == ["tk-SECRET-123456"]
    assert redact.secrets_in("https://a:${PW}@h/c") == []
    written = redact.placeholders(f"{BASIC} {TOKEN}", environ={})
    assert written == (
        "https://alice:${ENVASSAY_REPO_EXAMPLE_COM_ALICE_PASSWORD}@repo.example.com/private "
        "https://conda.example.com/t/${ENVASSAY_CONDA_EXAMPLE_COM_TOKEN}/private2"
    )
    # A variable that already holds the secret is the one named.
    named = redact.placeholder_url(BASIC, environ={"PRIVATE_PW": "s3cretPassw0rd"})
    assert named == "https://alice:${PRIVATE_PW}@repo.example.com/private"
    assert redact.has_credentials(named) and not redact.has_credentials("https://h/c")


def test_hide_and_expand_round_trip() -> None:
    text = f"--extra-index-url {BASIC}/simple\nrequests==2.0\n"
    hidden, env = redact.hide(text)
    assert "s3cretPassw0rd" not in hidden and "${" in hidden
    assert redact.expand(hidden, env) == text
    with pytest.raises(redact.MissingVariable) as missing:
        redact.expand("https://a:${NOT_SET_ANYWHERE}@h/c", {})
    assert missing.value.name == "NOT_SET_ANYWHERE"
    redact.expand("https://a:${PW}@h/c", {"PW": "expanded-secret"})
    assert redact.mask("expanded-secret") == "****"  # what was expanded is masked


def test_masked_output_masks_stdout_and_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    with redact.masked_output():
        print(f"channel {BASIC}")
        print(f"error {TOKEN}", file=sys.stderr)
        with redact.masked_output():  # nested: masked once, restored once
            print("inner")
    print(f"after {BASIC}")
    out, err = capsys.readouterr()
    assert "s3cretPassw0rd" in out.split("after", 1)[1]  # restored after the block
    assert out.startswith("channel https://alice:****@repo") and "inner" in out
    assert err == "error https://conda.example.com/t/<TOKEN>/private2\n"
    stream = redact.MaskingStream(io.StringIO())
    assert stream.write(BASIC) == len(BASIC)


def test_rattler_gets_urls_without_credentials_and_a_store_entry_per_host() -> None:
    clean, entries = credentials.for_rattler([BASIC, TOKEN, "file:///c/t/x/chan"])
    assert clean == [
        "https://repo.example.com/private",
        "https://conda.example.com/private2",
        "file:///c/t/x/chan",
    ]
    assert entries == {
        "repo.example.com": {"BasicHTTP": {"username": "alice", "password": "s3cretPassw0rd"}},
        "conda.example.com": {"CondaToken": "tk-SECRET-123456"},
    }
    assert credentials.shown(clean[0]) == "https://alice:****@repo.example.com/private"
    other = TOKEN.replace("tk-SECRET-123456", "tk-OTHER-0000").replace("private2", "p3")
    with pytest.raises(credentials.CredentialConflict, match=r"conda\.example\.com"):
        credentials.for_rattler([TOKEN, other])


def test_auth_file_lives_in_memory_and_keeps_the_users_entries(tmp_path: Path) -> None:
    own = tmp_path / "credentials.json"
    own.write_text(json.dumps({"other.example.com": {"BearerToken": "mine"}}))
    environ = {credentials.AUTH_FILE_VARIABLE: str(own)}
    fd = credentials.install_auth_file({"h": {"CondaToken": "t"}}, environ)
    assert fd is not None
    try:
        path = environ[credentials.AUTH_FILE_VARIABLE]
        assert path.startswith("/proc/") and not Path(os.readlink(path)).exists()
        assert json.loads(Path(path).read_text()) == {
            "other.example.com": {"BearerToken": "mine"},
            "h": {"CondaToken": "t"},
        }
    finally:
        os.close(fd)
    assert credentials.install_auth_file({}, environ) is None


# --------------------------------------------------------------------------- keyed by meaning


def _spec(tmp_path: Path, password: str, host: str = "repo.example.com") -> Path:
    path = tmp_path / "envs" / "private.yml"
    path.parent.mkdir(exist_ok=True)
    channel = f"https://alice:{password}@{host}/private"
    path.write_text(f"name: private\nchannels: [{channel}]\ndependencies:\n  - python=3.11\n")
    return path


def test_rotating_a_password_changes_no_hash_freshness_or_tag(tmp_path: Path) -> None:
    config = Config(root=tmp_path)
    options = ImageOptions("b:1", "r:1", "conda")
    path = _spec(tmp_path, "s3cretPassw0rd")
    spec = load_spec(path)
    lock_path = locked_for(path)
    tag = plan_image(spec, config, options, "linux-64").digest
    written = lock_path.read_text()
    assert "s3cretPassw0rd" not in written and "${ENVASSAY_" in written
    assert read_lock(lock_path).metadata.channels[0].startswith("https://alice:${")

    rotated = load_spec(_spec(tmp_path, "r0tatedPassw0rd"))
    assert rotated.content_hash == spec.content_hash
    assert lock_status(path, config).fresh
    assert plan_image(rotated, config, options, "linux-64").digest == tag

    moved = load_spec(_spec(tmp_path, "s3cretPassw0rd", host="mirror.example.com"))
    assert moved.content_hash != spec.content_hash
    assert not lock_status(path, config).fresh
    assert plan_image(moved, config, options, "linux-64").digest != tag


def test_locked_urls_get_their_channels_credentials_back_for_conda(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = "https://repo.example.com/private/noarch/pkg-1.0-0.conda"
    channels = [TOKEN, "https://alice:${PW_FOR_ATTACH}@repo.example.com/private"]
    monkeypatch.setenv("PW_FOR_ATTACH", "attached-pw")
    assert credentials.attach(url, channels) == (
        "https://alice:attached-pw@repo.example.com/private/noarch/pkg-1.0-0.conda"
    )
    monkeypatch.delenv("PW_FOR_ATTACH")  # only the matching channel is expanded
    assert credentials.attach("https://elsewhere.example.com/c/x.conda", channels) == (
        "https://elsewhere.example.com/c/x.conda"
    )
    tokened = "https://conda.example.com/private2/linux-64/x.conda"
    assert credentials.attach(tokened, [TOKEN]) == (
        "https://conda.example.com/t/tk-SECRET-123456/private2/linux-64/x.conda"
    )


def test_hide_gives_two_secrets_of_one_host_and_user_two_names() -> None:
    text = "https://alice:one-secret@h.example.com/a https://alice:two-secret@h.example.com/b"
    hidden, values = redact.hide(text)
    assert hidden == (
        "https://alice:${ENVASSAY_H_EXAMPLE_COM_ALICE_PASSWORD}@h.example.com/a "
        "https://alice:${ENVASSAY_H_EXAMPLE_COM_ALICE_PASSWORD_2}@h.example.com/b"
    )
    assert redact.expand(hidden, values) == text
    same, one = redact.hide(f"{BASIC} {BASIC}/simple")
    assert len(one) == 1 and redact.expand(same, one) == f"{BASIC} {BASIC}/simple"


def test_an_image_context_holds_placeholders_and_other_creators_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIP_PW", "pip-secret-1")
    path = _spec(tmp_path, "s3cretPassw0rd")
    path.write_text(
        path.read_text()
        + "  - pip:\n    - --extra-index-url https://bob:${PIP_PW}@pypi.example.com/simple\n"
    )
    config = Config(root=tmp_path)
    plan = plan_image(load_spec(path), config, ImageOptions("b:1", "r:1", "conda"), "linux-64")
    with pytest.raises(UserError, match="only with creator envassay"):
        assemble_context(plan, tmp_path / "ctx", tmp_path / "wheels")
    # What the builder would get: every ${VAR} the context names, and nothing else.
    context = tmp_path / "ctx"
    written = (
        "".join(f.read_text() for f in context.rglob("*.yml"))
        + (context / "envassay" / "env" / "channels.txt").read_text()
    )
    assert "s3cretPassw0rd" not in written and "pip-secret-1" not in written
    assert "alice:${ENVASSAY_REPO_EXAMPLE_COM_ALICE_PASSWORD}@" in written
    assert "bob:${PIP_PW}@" in written


def test_percent_encoded_credentials_are_decoded_for_the_store_and_masked_both_ways() -> None:
    url = "https://alice:p%40ss-w0rd@repo.example.com/private"
    _clean, entries = credentials.for_rattler([url])
    assert entries["repo.example.com"]["BasicHTTP"]["password"] == "p@ss-w0rd"
    redact.remember_in(url)
    assert redact.mask("sent p@ss-w0rd and p%40ss-w0rd") == "sent **** and ****"
