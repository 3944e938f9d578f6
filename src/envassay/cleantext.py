"""Untrusted text made harmless to show: on a terminal, in CI logs, JUnit and Markdown.

A package's output and error messages, and names taken from a spec, reach the
terminal and GitHub's log, where a control sequence repaints or retitles the
terminal and a line that starts with ``::`` is a workflow command
(``::error::``, ``::add-mask::``, ``::stop-commands::``). Here every control
character (C0 but newline and tab, DEL, C1: ESC, CR, BS, CSI...) and every bidi
override or isolate becomes a visible ``\\xNN`` / ``\\uNNNN`` escape, and a line
that a runner would read as a command is escaped at its start. Applied where such
text enters a verdict, a report or a progress line; envassay's own words pass
unchanged.
"""

from __future__ import annotations

import re
from typing import Any

# C0 but \t and \n, DEL, C1; bidi embeddings, overrides, isolates and marks (Trojan Source);
# the line and paragraph separators some viewers break on.
_HIDDEN = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]"
)
# The GitHub runner trims leading whitespace and reads `::name ...::` as a command;
# its older form `##[name ...]` is looked for anywhere in the line.
_COMMAND_START = re.compile(r"^(\s*):(?=:)", re.MULTILINE)
_OLD_COMMAND = re.compile(r"##\[")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """``text`` with control and bidi characters escaped visibly and no line able to
    start a workflow command; newlines and tabs are kept."""
    if not text:
        return text
    text = _HIDDEN.sub(_escape, text)
    text = _COMMAND_START.sub(lambda m: m.group(1) + "\\:", text)
    return _OLD_COMMAND.sub("#\\#[", text)


def visible_line(text: str) -> str:
    """:func:`visible` on one line: newline and tab escaped too. For names that pytest
    prints as they are (node ids made from spec file names and check names)."""
    return visible(text).replace("\n", "\\n").replace("\t", "\\t")


def visible_all(value: Any) -> Any:
    """Every string in a JSON-like value (dict keys too) through :func:`visible`."""
    if isinstance(value, str):
        return visible(value)
    if isinstance(value, list):
        return [visible_all(v) for v in value]
    if isinstance(value, dict):
        return {visible_all(k): visible_all(v) for k, v in value.items()}
    return value
