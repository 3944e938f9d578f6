"""An env's own variables, as conda keeps and applies them.

A spec's ``variables:`` are written by ``conda env create`` into the prefix's
``conda-meta/state`` (``{"env_vars": {...}}``); a package may ship more as JSON files
in ``etc/conda/env_vars.d/``. ``conda activate`` and ``conda run`` export both: the
packages' files in name order, then the state's, which win; a value ``***unset***`` is
not exported, and ``PATH`` is reserved (conda 26 drops it with a warning). envassay
writes the state for creators that do not (rattler), and the native target applies
what activation would, so a package that needs its variable at import is judged as
``conda run`` would judge it (conda/core/prefix_data.py, conda/activate.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

STATE_FILE = Path("conda-meta", "state")
PACKAGE_VARIABLES_DIR = Path("etc", "conda", "env_vars.d")
UNSET = "***unset***"
RESERVED = ("PATH",)
_MAX_BYTES = 1 << 20  # a package's file is untrusted: no more is read


class ActivationError(Exception):
    """A variables file conda's activation could not read either."""


def record_variables(prefix: Path, variables: Mapping[str, str]) -> None:
    """Add ``variables`` to the prefix's state as ``conda env create`` does (its
    ``PrefixData.set_environment_env_vars``); nothing is written when they are there."""
    if not variables:
        return
    path = prefix / STATE_FILE
    state = _read_json(path) if path.exists() else {}
    current = _variables(path, state.get("env_vars") or {})
    merged = {**current, **variables}
    if merged == current and "env_vars" in state:
        return
    state["env_vars"] = merged
    path.write_text(json.dumps(state, ensure_ascii=False))


def activation_variables(prefix: Path) -> dict[str, str]:
    """What ``conda activate`` would export for ``prefix`` from its variables files."""
    found: dict[str, str] = {}
    directory = prefix / PACKAGE_VARIABLES_DIR
    if directory.is_dir():
        for path in sorted(directory.iterdir()):
            found.update(_variables(path, _read_json(path)))
    state_path = prefix / STATE_FILE
    if state_path.exists():
        found.update(_variables(state_path, _read_json(state_path).get("env_vars") or {}))
    return {k: v for k, v in found.items() if k not in RESERVED and v != UNSET}


def _read_json(path: Path) -> dict[str, object]:
    try:
        with path.open("rb") as stream:
            data = stream.read(_MAX_BYTES + 1)
        if len(data) > _MAX_BYTES:
            raise ActivationError(f"{path}: over {_MAX_BYTES} bytes")
        value = json.loads(data)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ActivationError(f"{path}: cannot be read as JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise ActivationError(f"{path}: not a JSON object")
    return value


def _variables(path: Path, value: object) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and k and "=" not in k and "\0" not in k + v
        for k, v in value.items()
    ):
        raise ActivationError(f"{path}: variables must map names to strings")
    return dict(value)
