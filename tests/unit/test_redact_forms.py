"""Properties of the one credential parse (redact.CredentialURL) and the mask, over
credentials drawn from RFC 3986's whole userinfo alphabet (tests/secretforms.py), in every
form envassay accepts and every position in text: masked by position alone (before any
secret is remembered), handed to rattler decoded, kept out of clean URLs and ${VAR} files,
and never masking ordinary text. The issue's own examples are explicit cases."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from envassay import credentials, redact
from envassay.create.backends import conda_auth
from envassay.errors import ConfigError, UserError
from envassay.spec.config import parse_config
from tests.secretforms import PATH_RAW, RAW, Credential
from tests.secretforms import credentials as creds

SETTINGS = settings(
    max_examples=150,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
HOST = "repo.example.com"

# Each form: (what it is, a line holding credential w for user u).
FORMS: dict[str, Callable[[str, str], str]] = {
    "channel user:password": lambda u, w: f"https://{u}:{w}@{HOST}/private",
    "channel token as user": lambda u, w: f"https://{w}@{HOST}/private",
    "--index-url token": lambda u, w: f"--index-url https://{w}@{HOST}/simple",
    "--extra-index-url= password": lambda u, w: f"--extra-index-url=https://{u}:{w}@{HOST}/s",
    "-f token": lambda u, w: f"-f https://{w}@{HOST}/links",
    "--find-links token": lambda u, w: f"--find-links https://{w}@{HOST}/links/",
    "git+https token": lambda u, w: f"git+https://{w}@{HOST}/org/repo.git@v1.0#egg=repo",
    "git+https password": lambda u, w: f"git+https://{u}:{w}@{HOST}/org/repo",
    "name @ url token": lambda u, w: f"pkg @ https://{w}@{HOST}/pkg-1.0.tar.gz",
    "name @ url password": lambda u, w: f"pkg@http://{u}:{w}@{HOST}:8080/pkg-1.0-py3-none-any.whl",
}
TOKEN_PATH = "channel /t/TOKEN/"
# Each position in text: how a tool, a report or a record may quote it.
CONTEXTS: list[Callable[[str], str]] = [
    lambda t: t,
    lambda t: f"'{t}'",
    lambda t: f'"{t}"',
    lambda t: f"({t})",
    lambda t: f"[{t}],",
    lambda t: f"<{t}>.",
    lambda t: json.dumps({"url": t}),
    lambda t: f"error: {t} returned 401\n{t}/noarch/repodata.json",
    lambda t: f"url={t}&next",
]
users = st.one_of(
    st.sampled_from(["alice", "__token__", "oauth2", "x-access-token"]),
    st.text(RAW, min_size=1, max_size=8),
)


@pytest.fixture(autouse=True)
def fresh_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redact, "_known", set())
    monkeypatch.setattr(redact, "_weak", set())


def line_for(form: str, user: str, secret: Credential) -> str:
    if form == TOKEN_PATH:
        return f"https://{HOST}/t/{secret.written}/private/noarch/repodata.json"
    return FORMS[form](user, secret.written)


def absent(secret: Credential, text: str) -> bool:
    return not any(f in text for f in secret.forms())


@SETTINGS
@given(
    secret=st.one_of(creds(), creds(PATH_RAW)),
    user=users,
    form=st.sampled_from([*FORMS, TOKEN_PATH]),
    context=st.sampled_from(CONTEXTS),
)
@example(  # the issue's: a password of URL-legal punctuation
    secret=Credential("pa(ss),'w!rd9"), user="u", form="channel user:password", context=CONTEXTS[3]
)
@example(  # p@ss masked only to ****@ss...
    secret=Credential("p@ss-w0rd-77"), user="u", form="channel user:password", context=CONTEXTS[0]
)
@example(  # Artifactory's and Gemfury's token-only userinfo
    secret=Credential("AKCp8jQ7TOKEN42"),
    user="u",
    form="channel token as user",
    context=CONTEXTS[6],
)
def test_every_form_in_every_position_is_masked_by_position_alone(
    secret: Credential, user: str, form: str, context: Callable[[str], str]
) -> None:
    line = line_for(form, user, secret)
    if (
        form
        in (
            "channel token as user",
            "--index-url token",
            "-f token",
            "--find-links token",
            "git+https token",
            "name @ url token",
        )
        and ":" in secret.written
    ):
        return  # a raw ':' in the userinfo makes it user:password: another form
    text = context(line)
    masked = redact.mask(text)  # nothing remembered: the position alone masks it
    assert absent(secret, masked), (text, masked)
    assert redact.mask(masked) == masked
    assert redact.neutral(text) == redact.neutral(text.replace(secret.written, "r0tated-X9"))
    hidden, values = redact.hide(text)
    assert absent(secret, hidden)
    expanded = redact.expand(hidden, values)  # the same credentials, all percent-encoded
    assert redact.strip_credentials(expanded) == redact.strip_credentials(text)
    assert unquote(expanded) == unquote(text)
    # Remembered from the spec, it is masked in whatever shape a tool repeats it.
    redact.remember_in(line)
    for shape in secret.forms():
        assert absent(secret, redact.mask(f"tool said: {shape}; bad credentials")), shape


@SETTINGS
@given(secret=creds(), user=users, token=creds(PATH_RAW))
def test_rattler_gets_the_decoded_credentials_and_a_clean_url(
    secret: Credential, user: str, token: Credential
) -> None:
    basic = f"https://{user}:{secret.written}@{HOST}:8443/private"
    clean, host, entry = credentials.split(basic)
    assert (clean, host) == (f"https://{HOST}:8443/private", HOST)
    assert entry == {"BasicHTTP": {"username": user, "password": secret.sent}}
    if ":" not in secret.written:
        clean, host, entry = credentials.split(f"https://{secret.written}@{HOST}/private")
        assert clean == f"https://{HOST}/private"
        assert entry == {"BasicHTTP": {"username": secret.sent, "password": ""}}
    tokened = f"https://{HOST}/t/{token.written}/private"
    assert credentials.split(tokened) == (
        f"https://{HOST}/private",
        HOST,
        {"CondaToken": token.written},
    )
    assert redact.clean(basic) == f"https://{HOST}:8443/private"


def test_the_issues_examples_parse_once() -> None:
    parsed = redact.parse_url("https://u:p@ss@host.example.com:8080/c/t/tk-99/x?a=1")
    assert (parsed.user, parsed.password, parsed.authority) == (
        "u",
        "p@ss",
        "host.example.com:8080",
    )
    assert parsed.token == "tk-99" and parsed.clean == "https://host.example.com:8080/c/x?a=1"
    assert redact.mask(parsed.render()) == "https://u:****@host.example.com:8080/c/t/<TOKEN>/x?a=1"
    only = redact.parse_url("https://AKCp8TOKEN@host/c")
    assert only.user_is_secret and redact.mask("https://AKCp8TOKEN@host/c") == "https://****@host/c"
    # A login name over ssh is no secret; a git ref after the host is no userinfo.
    assert (
        redact.mask("git+ssh://git@github.example/org/repo")
        == "git+ssh://git@github.example/org/repo"
    )
    assert (
        redact.mask("git+https://h.example/org/repo@v1.0") == "git+https://h.example/org/repo@v1.0"
    )


def test_a_word_like_secret_is_masked_as_a_url_part_only() -> None:
    redact.remember_in("https://linux@host.example.com/c https://u:x86_64@host.example.com/d")
    assert not redact.strong("linux") and not redact.strong("12345678")
    ordinary = "platforms: linux-64, linux-aarch64; arch x86_64 (linux)"
    assert redact.mask(ordinary) == ordinary
    assert redact.mask("https://linux@host.example.com/c/linux-64/") == (
        "https://****@host.example.com/c/linux-64/"
    )
    assert redact.mask("password: linux") == "password: ****"
    assert redact.mask("token='linux'") == "token='****'"


@pytest.mark.parametrize(
    "url",
    [
        "https://conda.example.com/private?token=QUERYTOK99",
        "https://conda.example.com/private?foo=1&access_token=QUERYTOK99",
        "https://bucket.example.com/x.whl?X-Amz-Signature=QUERYTOK99",
        "https://conda.example.com/private?token=;QUERYTOK99",  # `;` does not end a value
        "https://conda.example.com/private?a=1;token=QUERYTOK99",  # but may start one
    ],
)
def test_query_credentials_are_refused_in_one_masked_line(url: str) -> None:
    reason = redact.refusal(url, channel=True)
    assert reason is not None and "QUERYTOK99" not in reason and "query" in reason
    assert "\n" not in reason
    assert "QUERYTOK99" not in redact.mask(f"GET {url} 403")


def test_ordinary_query_parameters_are_neither_masked_nor_refused() -> None:
    url = "https://h.example/x.whl?author=bob&sortkey=name&ref=main"
    assert redact.mask(url) == url and redact.refusal(url) is None
    signed = "https://h.example/x.whl?X-Amz-Security-Token=abcSECRET123&X-Amz-Date=1"
    assert redact.mask(signed) == "https://h.example/x.whl?X-Amz-Security-Token=****&X-Amz-Date=1"


def test_an_at_after_a_channels_host_is_refused_but_a_pip_ref_is_not() -> None:
    reason = redact.refusal("https://u:pa/ss@host.example.com/c", channel=True)
    assert reason is not None and "%2F" in reason
    assert redact.refusal("git+https://host.example.com/org/repo@v1.0") is None
    assert redact.refusal("file:///home/me/x@y/channel", channel=True) is None


def test_conda_gets_a_token_alone_through_netrc_or_a_one_line_refusal() -> None:
    channels = ["https://AKCp8jQ7-TOKEN@repo.example.com/c", "https://u:pw-1234x@h.example/d"]
    kept, tokens = conda_auth.split_token_users(channels)
    assert kept == ["https://repo.example.com/c", channels[1]]
    assert tokens == {"repo.example.com": "AKCp8jQ7-TOKEN"}
    with conda_auth.netrc_environ(tokens, {}) as env:
        text = Path(env["NETRC"]).read_text()
        assert text.endswith("machine repo.example.com login AKCp8jQ7-TOKEN\n")
    with pytest.raises(UserError, match="netrc") as refused:
        conda_auth.split_token_users(["https://AKCp8%22QUOTE%20d@repo.example.com/c"])
    assert "QUOTE" not in str(refused.value) and "\n" not in str(refused.value)


def test_default_channels_with_a_query_credential_are_refused_in_one_line(tmp_path: Path) -> None:
    table = {"default-channels": ["https://conda.example.com/c?token=QUERYTOK99"]}
    with pytest.raises(ConfigError, match="query") as refused:
        parse_config(table, root=tmp_path)
    assert "QUERYTOK99" not in str(refused.value) and "\n" not in str(refused.value)
