"""spec/condarc.py and spec/channels.py: conda's merge and expansion rules, without conda
(tests/integration/test_conda_channels.py compares them with real conda)."""

from __future__ import annotations

from pathlib import Path

import pytest

from envassay.errors import ConfigError
from envassay.spec.channels import effective_channels
from envassay.spec.condarc import Sourced, load_condarc


def environ(tmp_path: Path, **extra: str) -> dict[str, str]:
    (tmp_path / "home").mkdir(exist_ok=True)
    return {"HOME": str(tmp_path / "home"), "PATH": "", **extra}


def urls(channels: list[str], env: dict[str, str], nodefaults: bool = False, mode: str = "conda"):
    written = [Sourced(c, "spec") for c in channels]
    return [c.url for c in effective_channels(written, nodefaults, load_condarc(env), mode)]


def test_lists_merge_later_sources_first_and_env_vars_last(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".condarc").write_text("channels: [file:///a, file:///b]\n")
    rc = tmp_path / "condarc"
    rc.write_text("channels: [file:///c, file:///a]\n")
    env = environ(tmp_path, CONDARC=str(rc))
    assert urls([], env) == ["file:///c", "file:///a", "file:///b"]
    env["CONDA_CHANNELS"] = "file:///d, file:///b"
    assert urls([], env) == ["file:///d", "file:///b", "file:///c", "file:///a"]


def test_condarc_names_and_folders(tmp_path: Path) -> None:
    wrong = tmp_path / "my.condarc"
    wrong.write_text("channels: [file:///x]\n")
    assert urls([], environ(tmp_path, CONDARC=str(wrong))) == []
    folder = tmp_path / "home" / ".conda" / "condarc.d"
    folder.mkdir(parents=True)
    (folder / "b.yml").write_text("channels: [file:///b]\n")
    (folder / "a.yaml").write_text("channels: [file:///a]\n")
    (folder / "c.txt").write_text("channels: [file:///c]\n")
    assert urls([], environ(tmp_path)) == ["file:///b", "file:///a"]


def test_names_alias_custom_channels_and_multichannels(tmp_path: Path) -> None:
    rc = tmp_path / "rc.yaml"
    rc.write_text(
        "channel_alias: http://alias.local/\n"
        "custom_channels: {team: 'http://team.local/base'}\n"
        "custom_multichannels: {both: [team/x, file:///m]}\n"
        "default_channels: [main, file:///d/]\n"
        "channels: []\n"
    )
    env = environ(tmp_path, CONDARC=str(rc))
    assert urls(["conda-forge", "team/sub", "both", "defaults", "/abs/ch/"], env) == [
        "http://alias.local/conda-forge",
        "http://team.local/base/team/sub",
        "http://alias.local/team/x",  # members go under the alias, as in conda
        "file:///m",
        "http://alias.local/main",
        "file:///d",
        "file:///abs/ch",
    ]


def test_nodefaults_and_file_mode_keep_the_rc_channels_out(tmp_path: Path) -> None:
    env = environ(tmp_path, CONDA_CHANNELS="file:///rc")
    assert urls(["file:///spec"], env) == ["file:///spec", "file:///rc"]
    assert urls(["file:///spec"], env, nodefaults=True) == ["file:///spec"]
    assert urls(["file:///spec"], env, mode="file") == ["file:///spec"]


def test_defaults_without_a_conda_or_default_channels_is_one_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="default_channels"):
        urls(["defaults"], environ(tmp_path))
    env = environ(tmp_path, CONDA_DEFAULT_CHANNELS="file:///d1,file:///d2")
    assert urls(["defaults"], env) == ["file:///d1", "file:///d2"]


def test_channel_priority_and_a_wrong_value(tmp_path: Path) -> None:
    assert load_condarc(environ(tmp_path)).priority == "flexible"
    assert load_condarc(environ(tmp_path, CONDA_CHANNEL_PRIORITY="strict")).priority == "strict"
    with pytest.raises(ConfigError, match="channel_priority"):
        load_condarc(environ(tmp_path, CONDA_CHANNEL_PRIORITY="sometimes"))
