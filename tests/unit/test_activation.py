"""conda's activation rules for an env's variables (conda/activate.py
`_get_environment_env_vars`), on prefixes written here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from envassay.activation import ActivationError, activation_variables, record_variables
from envassay.targets import NativeTarget, TargetError


def _prefix(tmp_path: Path, state: object = None, **packages: object) -> Path:
    (tmp_path / "conda-meta").mkdir()
    if state is not None:
        (tmp_path / "conda-meta" / "state").write_text(json.dumps(state))
    shipped = tmp_path / "etc" / "conda" / "env_vars.d"
    shipped.mkdir(parents=True)
    for name, value in packages.items():
        (shipped / f"{name}.json").write_text(json.dumps(value))
    return tmp_path


def test_packages_in_name_order_then_the_state_wins(tmp_path: Path) -> None:
    prefix = _prefix(
        tmp_path,
        {"env_vars": {"A": "state", "GONE": "***unset***", "PATH": "/evil"}},
        b={"A": "b", "B": "b"},
        a={"A": "a", "B": "a", "C": "a"},
    )
    assert activation_variables(prefix) == {"A": "state", "B": "b", "C": "a"}


def test_record_merges_like_set_environment_env_vars(tmp_path: Path) -> None:
    prefix = _prefix(tmp_path, {"env_vars": {"KEEP": "1"}, "other": {"x": "y"}})
    record_variables(prefix, {"NEW": "ü"})
    state = json.loads((prefix / "conda-meta" / "state").read_text())
    assert state == {"env_vars": {"KEEP": "1", "NEW": "ü"}, "other": {"x": "y"}}
    record_variables(tmp_path, {})  # nothing to write


@pytest.mark.parametrize(
    "state", [["a"], {"env_vars": {"A": 1}}, {"env_vars": {"": "x"}}, {"env_vars": "A=1"}]
)
def test_a_state_activation_cannot_read_fails_the_target(tmp_path: Path, state: object) -> None:
    prefix = _prefix(tmp_path, state)
    with pytest.raises(ActivationError):
        activation_variables(prefix)
    with pytest.raises(TargetError, match="conda-meta/state"):
        NativeTarget(prefix).env()


def test_the_native_target_exports_them_but_keeps_its_own_path(tmp_path: Path) -> None:
    prefix = _prefix(tmp_path, {"env_vars": {"NEEDSVAR": "on", "PATH": "/evil"}})
    env = NativeTarget(prefix).env()
    assert env["NEEDSVAR"] == "on"
    assert env["PATH"].startswith(str(prefix / "bin"))
