"""The rattler worker's requests and replies survive the wire unchanged, and anything
else is refused as malformed."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from envassay import rattler_protocol as protocol

text = st.text(max_size=12)
maybe = st.none() | text
texts = st.lists(text, max_size=3)
triples = st.lists(st.lists(text, min_size=3, max_size=3), max_size=3)
packages = st.builds(
    protocol.Package,
    name=text,
    version=text,
    build=text,
    channel=text,
    url=text,
    subdir=text,
    depends=texts,
    md5=maybe,
    sha256=maybe,
    filename=text,
)
linked = st.builds(protocol.Linked, name=text, version=text, build=text, channel=text, url=text)
seconds = st.floats(min_value=0, max_value=1e6)
requests = st.one_of(
    st.builds(
        protocol.CreateRequest,
        channels=texts,
        specs=texts,
        prefix=text,
        cache_dir=text,
        platform=maybe,
        priority=st.sampled_from(["strict", "flexible", "disabled"]),
    ),
    st.builds(
        protocol.InstallRequest,
        records=st.lists(packages, max_size=3),
        specs=texts,
        channels=texts,
        prefix=text,
        cache_dir=text,
    ),
    st.builds(
        protocol.SolveRequest,
        channels=texts,
        specs=texts,
        cache_dir=text,
        targets=st.lists(
            st.builds(protocol.SolveTarget, platform=text, virtual=st.none() | triples, cuda=maybe),
            max_size=3,
        ),
    ),
)
replies = st.one_of(
    st.builds(
        protocol.LinkReply,
        records=st.lists(linked, max_size=3),
        solve_seconds=seconds,
        link_seconds=seconds,
        check_seconds=seconds,
    ),
    st.builds(
        protocol.SolveReply,
        solutions=st.dictionaries(text, st.lists(packages, max_size=2), max_size=2),
        seconds=st.dictionaries(text, seconds, max_size=2),
        virtual=st.dictionaries(text, triples, max_size=2),
    ),
    st.builds(protocol.Failure, kind=text, message=text),
)


@given(requests)
def test_a_request_round_trips(request: protocol.Request) -> None:
    assert protocol.loads_request(protocol.dumps_request(request)) == request


@given(replies)
def test_a_reply_round_trips(reply: protocol.Reply) -> None:
    assert protocol.loads_reply(protocol.dumps_reply(reply)) == reply


def test_a_reply_says_whether_it_succeeded() -> None:
    failure = json.loads(protocol.dumps_reply(protocol.Failure("solve", "no python")))
    done = json.loads(protocol.dumps_reply(protocol.LinkReply([], 0.0, 1.0)))
    assert (failure["ok"], done["ok"]) == (False, True)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "[]",
        '{"op": "remove"}',
        '{"op": "create", "specs": []}',
        '{"op": "create", "channels": [], "specs": [], "prefix": "/p", "cache_dir": "/c", "x": 1}',
        '{"op": "solve", "channels": [], "specs": [], "cache_dir": "/c", "targets": [{}]}',
    ],
)
def test_a_malformed_request_is_refused(raw: str) -> None:
    with pytest.raises((ValueError, KeyError, TypeError)):
        protocol.loads_request(raw)


@pytest.mark.parametrize(
    "raw", ["", "[]", "{}", '{"ok": true}', '{"ok": true, "reply": "x"}', "Segmentation fault"]
)
def test_a_malformed_reply_is_refused(raw: str) -> None:
    with pytest.raises((ValueError, KeyError, TypeError)):
        protocol.loads_reply(raw)
