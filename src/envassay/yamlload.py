"""Safe, bounded YAML reading that keeps line numbers.

PyYAML's safe loader still expands aliases without limit (a billion-laughs
document) and silently lets a later duplicate key win. Specs are small and
hand-written, so we compose the node graph and build plain values ourselves:
duplicate keys and unknown tags are errors, and the number of values built is
capped, which bounds both time and memory.
"""

from __future__ import annotations

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

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: Path) -> tuple[Any, dict[int, int]]:
    """Read ``path`` as one YAML document.

    Returns the plain value and a map from ``id()`` of each list/dict/str built
    to its 1-based line, so callers can point at the offending line.
    """
    text = _read_text(path)
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        raise SpecError(_describe_yaml_error(exc), where=_where(path, exc)) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"not valid YAML: {exc}", where=path) from None
    if node is None:
        return None, {}
    builder = _Builder(path)
    return builder.build(node, 0), builder.lines


def _read_text(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise SpecError(
                f"file is {size} bytes; specs larger than {MAX_FILE_BYTES} bytes are refused",
                where=path,
            )
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError("file not found", where=path) from None
    except IsADirectoryError:
        raise SpecError("is a directory, expected an environment.yml file", where=path) from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", where=path) from None
    except OSError as exc:
        raise SpecError(f"cannot read: {exc.strerror}", where=path) from None


def _where(path: Path, exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    if mark is None:
        return str(path)
    return f"{path}:{mark.line + 1}:{mark.column + 1}"


def _describe_yaml_error(exc: yaml.MarkedYAMLError) -> str:
    problem = exc.problem or "invalid YAML"
    if "\t" in problem or "tab" in problem:
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
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise self._error(key_node, "YAML merge keys (<<) are not allowed in a spec")
            key = self.build(key_node, depth + 1)
            if isinstance(key, (dict, list)):
                raise self._error(key_node, "a mapping key must be a plain value")
            if key in result:
                raise self._error(key_node, f"duplicate key {key!r}")
            result[key] = self.build(value_node, depth + 1)
        return result

    def _scalar(self, node: yaml.Node) -> Any:
        try:
            return self._scalar_loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            raise self._error(node, f"bad value: {exc}") from None

    def _error(self, node: yaml.Node, message: str) -> SpecError:
        mark = node.start_mark
        return SpecError(message, where=f"{self.path}:{mark.line + 1}:{mark.column + 1}")
