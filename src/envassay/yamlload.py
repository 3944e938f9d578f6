"""Safe, bounded YAML reading that keeps line numbers.

PyYAML's safe loader still expands aliases without limit (a billion-laughs
document) and silently lets a later duplicate key win. Specs are small and
hand-written, so we compose the node graph and build plain values ourselves:
duplicate keys and unknown tags are errors, and the number of values built is
capped, which bounds both time and memory.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml

from envassay.errors import SpecError

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_VALUES = 100_000
MAX_DEPTH = 64

_STANDARD_TAGS = {
    "tag:yaml.org,2002:map",
    "tag:yaml.org,2002:seq",
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}

# NUL and the other C0 controls (tab, newline and carriage return aside) and DEL: a
# spec line with one cannot be a package, a channel, a path or an environment variable.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BOOL = "tag:yaml.org,2002:bool"


class _Loader(_Base):  # type: ignore[valid-type,misc]
    """YAML 1.2's booleans, as conda's loader (ruamel) reads them: only true and false.
    PyYAML's YAML 1.1 also reads yes/no/on/off/y/n as booleans, so `- on` or `name: yes`
    would not be the text conda reads."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _BOOL]
    for first, resolvers in _Base.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def read_yaml(path: Path) -> tuple[Any, dict[int, int]]:
    """Read ``path`` as one YAML document.

    Returns the plain value and a map from ``id()`` of each list/dict/str built
    to its 1-based line, so callers can point at the offending line.
    """
    value, lines, _raw = read_yaml_bytes(path)
    return value, lines


def read_yaml_bytes(path: Path) -> tuple[Any, dict[int, int], bytes]:
    """As :func:`read_yaml`, and the file's bytes as read (one open: a caller hashing the
    file hashes what was parsed)."""
    raw, text = _read_text(path)
    try:
        _scan(text, path)  # bounds depth and size before anything recursive runs
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        raise SpecError(_describe_yaml_error(exc, text), where=_where(path, exc)) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"not valid YAML: {exc}", where=path) from None
    if node is None:
        return None, {}, raw
    builder = _Builder(path)
    return builder.build(node, 0), builder.lines, raw


def _read_text(path: Path) -> tuple[bytes, str]:
    """The file's bytes and text; only a regular file, and at most MAX_FILE_BYTES of it.

    A device (``/dev/zero``), a FIFO or a file that grows while it is read would
    otherwise make reading unbounded or blocking.
    """
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise SpecError("is a directory, expected a YAML file", where=path)
        if not stat.S_ISREG(info.st_mode):
            raise SpecError("is not a regular file (a device, FIFO or socket)", where=path)
        if info.st_size > MAX_FILE_BYTES:
            raise SpecError(
                f"file is {info.st_size} bytes; files larger than {MAX_FILE_BYTES} bytes "
                "are refused",
                where=path,
            )
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):  # swapped since stat()
                raise SpecError("is not a regular file", where=path)
            data = handle.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise SpecError(f"file is larger than {MAX_FILE_BYTES} bytes; refused", where=path)
        text = _decode(data)
    except FileNotFoundError:
        raise SpecError("file not found", where=path) from None
    except UnicodeDecodeError as exc:
        raise SpecError(
            f"neither UTF-8 nor UTF-16 text ({exc.reason} at byte {exc.start})", where=path
        ) from None
    except OSError as exc:
        raise SpecError(f"cannot read: {exc.strerror or exc}", where=path) from None
    return data, text.removeprefix("\ufeff")  # a UTF-8 byte order mark, as editors write it


def _decode(data: bytes) -> str:
    """conda's load_file: UTF-8, else UTF-16 (what PowerShell's `conda env export >
    environment.yml` writes: a byte order mark, then UTF-16)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        if not data.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise
        return data.decode("utf-16")


def _scan(text: str, path: Path) -> None:
    """Walk the event stream (iteratively) and refuse what would make composing unbounded.

    libyaml's composer recurses once per nesting level, so a document of 100,000
    ``[`` overflows the C stack (a segfault, not an error); and a document of a
    million tiny values costs seconds and hundreds of MB before any limit of the
    builder applies. Events come one at a time, so this pass is bounded by the limits.
    """
    depth = 0
    for events, event in enumerate(yaml.parse(text, Loader=_Loader), start=1):
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise _mark_error(path, event, f"nested deeper than {MAX_DEPTH} levels")
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            depth -= 1
        elif isinstance(event, yaml.DocumentStartEvent) and events > 2:
            raise _mark_error(path, event, "more than one YAML document (---) in one file")
        if events > MAX_VALUES:
            raise _mark_error(path, event, f"more than {MAX_VALUES} values")


def _mark_error(path: Path, event: yaml.Event, message: str) -> SpecError:
    mark = event.start_mark
    if mark is None:
        return SpecError(message, where=path)
    return SpecError(message, where=f"{path}:{mark.line + 1}:{mark.column + 1}")


def _where(path: Path, exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    if mark is None:
        return str(path)
    return f"{path}:{mark.line + 1}:{mark.column + 1}"


def _describe_yaml_error(exc: yaml.MarkedYAMLError, text: str = "") -> str:
    problem = exc.problem or "invalid YAML"
    if "maximum nesting depth" in problem:
        # Newer libyaml stops deep nesting itself, while scanning ahead of our own limit.
        return f"nested deeper than {MAX_DEPTH} levels"
    mark = exc.problem_mark
    at_tab = False
    if mark is not None and text:
        lines = text.splitlines()
        if mark.line < len(lines):
            at_tab = lines[mark.line][mark.column : mark.column + 1] == "\t"
    if at_tab or "\\t" in problem or "\t" in problem or "tab" in problem:
        problem += "; YAML indentation must use spaces, not tabs"
    return f"not valid YAML: {problem}"


class _Builder:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self.lines: dict[int, int] = {}
        self._scalar_loader = _Loader("")

    def build(self, node: yaml.Node, depth: int) -> Any:
        self.count += 1
        if self.count > MAX_VALUES:
            raise self._error(node, f"more than {MAX_VALUES} values (alias expansion bomb?)")
        if depth > MAX_DEPTH:
            raise self._error(node, f"nested deeper than {MAX_DEPTH} levels")
        if node.tag not in _STANDARD_TAGS:
            raise self._error(node, f"YAML tag {node.tag!r} is not allowed in a spec")
        if isinstance(node, yaml.MappingNode):
            value: Any = self._mapping(node, depth)
        elif isinstance(node, yaml.SequenceNode):
            value = [self.build(item, depth + 1) for item in node.value]
        else:
            value = self._scalar(node)
        if isinstance(value, (dict, list, str)):
            self.lines[id(value)] = node.start_mark.line + 1
        return value

    def _mapping(self, node: yaml.MappingNode, depth: int) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        merged: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                # `<<: *base` (conda's loader reads merge keys): the keys written here win.
                sources = (
                    value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                )
                for source in sources:
                    value = self.build(source, depth + 1)
                    if not isinstance(value, dict):
                        raise self._error(source, "a merge key (<<) must name a mapping")
                    for key, item in value.items():
                        merged.setdefault(key, item)
                continue
            key = self.build(key_node, depth + 1)
            if isinstance(key, (dict, list)):
                raise self._error(key_node, "a mapping key must be a plain value")
            if key in result:
                raise self._error(key_node, f"duplicate key {key!r}")
            result[key] = self.build(value_node, depth + 1)
        for key, item in merged.items():
            result.setdefault(key, item)
        return result

    def _scalar(self, node: yaml.Node) -> Any:
        try:
            value = self._scalar_loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            raise self._error(node, f"bad value: {' '.join(str(exc).split())}") from None
        except (ValueError, OverflowError) as exc:  # e.g. a timestamp like 2024-13-45
            raise self._error(node, f"bad value {node.value!r}: {exc}") from None
        if isinstance(value, str) and (bad := _CONTROL.search(value)):
            raise self._error(
                node, f"control character {bad.group()!r} in {value[:40]!r}; not allowed in a spec"
            )
        return value

    def _error(self, node: yaml.Node, message: str) -> SpecError:
        mark = node.start_mark
        return SpecError(message, where=f"{self.path}:{mark.line + 1}:{mark.column + 1}")
