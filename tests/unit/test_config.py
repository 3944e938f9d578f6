"""[tool.envassay] parsing: defaults, per-env tables, unknown keys named."""

from __future__ import annotations

from pathlib import Path

import pytest

from envassay.errors import ConfigError
from envassay.spec.config import load_config, parse_config


def test_defaults_without_pyproject(tmp_path: Path) -> None:
    config = load_config(tmp_path)
    assert config.specs == ("envs/*.yml", "envs/*.yaml")
    assert config.backend == "rattler"
    assert config.env("anything").gpu == "auto"


def test_full_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        """
[tool.envassay]
specs = ["specs/*.yml"]
store = ".store"
backend = "rattler"
default-channels = ["conda-forge"]

[tool.envassay.envs.train]
gpu = "required"
imports = { pytorch = ["torch.nn"] }
rename = { weird = ["realname"] }
skip = { openssl = "not a Python package" }
import-timeout = 30
size-budget-mb = 900
"""
    )
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "a.yml").write_text("dependencies: [x]\n")
    (tmp_path / "specs" / "a.conda-lock.yml").write_text("version: 1\n")
    config = load_config(tmp_path / "specs")
    assert config.root == tmp_path
    assert config.spec_paths() == [tmp_path / "specs" / "a.yml"]
    assert config.store == tmp_path / ".store"
    train = config.env("train")
    assert train.gpu == "required"
    assert train.imports == {"pytorch": ("torch.nn",)}
    assert train.skip == {"openssl": "not a Python package"}
    assert train.import_timeout == 30.0
    assert train.size_budget_mb == 900.0


@pytest.mark.parametrize(
    ("table", "fragment"),
    [
        ({"specz": []}, "unknown key(s) ['specz']"),
        ({"backend": "pixi"}, "expected one of"),
        ({"envs": {"a": {"gpu": "maybe"}}}, "envs.a.gpu"),
        ({"envs": {"a": {"colour": 1}}}, "unknown key(s) ['colour']"),
        ({"envs": {"a": {"skip": {"x": ""}}}}, "needs a reason"),
        ({"envs": {"a": {"import-timeout": -1}}}, "positive number"),
        ({"specs": "envs/*.yml"}, "list of strings"),
    ],
)
def test_bad_config(tmp_path: Path, table: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(table, root=tmp_path)
    assert fragment in info.value.render()


def test_store_env_var_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVASSAY_HOME", str(tmp_path / "home"))
    assert load_config(tmp_path).store_path() == tmp_path / "home"


def test_channels_mode(tmp_path: Path) -> None:
    """`channels = "file"`: only the spec's channels (pixi's semantics); default conda's."""
    assert parse_config({}, root=tmp_path).channels == "conda"
    assert parse_config({"channels": "file"}, root=tmp_path).channels == "file"
    with pytest.raises(ConfigError, match=r"channels.*expected one of \['conda', 'file'\]"):
        parse_config({"channels": "pixi"}, root=tmp_path)
