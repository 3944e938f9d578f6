"""cleantext: no untrusted line can drive a terminal or a GitHub runner."""

from __future__ import annotations

import re
import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from envassay.cleantext import visible, visible_all, visible_line

# What GitHub's runner reads as a command: `::name...::` after leading whitespace (v2), or
# `##[name...]` anywhere in a line (the old form).
RUNNER_COMMAND = re.compile(r"^\s*::[A-Za-z-]+.*::|##\[", re.MULTILINE)
BIDI = {
    "\u061c",
    "\u200e",
    "\u200f",
    *map(chr, range(0x202A, 0x202F)),
    *map(chr, range(0x2066, 0x206A)),
}


@given(st.text())
def test_nothing_hidden_or_commanding_survives(text: str) -> None:
    shown = visible(text)
    for char in shown:
        assert char in "\n\t" or unicodedata.category(char) != "Cc", repr(char)
        assert char not in BIDI and char not in "\u2028\u2029", repr(char)
    assert not RUNNER_COMMAND.search(shown), shown


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cf", "Zl", "Zp"))))
def test_ordinary_text_is_unchanged(text: str) -> None:
    if "::" not in text and "##[" not in text:
        assert visible(text) == text


def test_the_issues_inputs() -> None:
    text = (
        "ImportError: x\n::error title=owned::injected\n::stop-commands::TOKEN\n"
        "  ::add-mask::y\n\x1b]0;title\x07\x1b[2J\rdone \u202eeurt\n##[warning]old"
    )
    assert visible(text) == (
        "ImportError: x\n\\::error title=owned::injected\n\\::stop-commands::TOKEN\n"
        "  \\::add-mask::y\n\\x1b]0;title\\x07\\x1b[2J\\x0ddone \\u202eeurt\n#\\#[warning]old"
    )


def test_visible_all_walks_json() -> None:
    assert visible_all({"k\x1b": ["::x::", 1, None]}) == {"k\\x1b": ["\\::x::", 1, None]}


@given(st.text())
def test_visible_line_is_one_line_with_nothing_hidden(text: str) -> None:
    line = visible_line(text)
    assert "\n" not in line and "\t" not in line
    assert not re.search("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", line)
    assert not line.lstrip().startswith("::")
