"""Which files the rattler backend compiles after linking: noarch: python packages' only."""

from __future__ import annotations

import json
from pathlib import Path

from envassay.backends.bytecode import noarch_python_paths

SP = "lib/python3.11/site-packages"


def record(prefix: Path, name: str, noarch: object, files: list[str]) -> None:
    meta = prefix / "conda-meta"
    meta.mkdir(parents=True, exist_ok=True)
    data = {"name": name, "version": "1", "build": "0", "files": files}
    if noarch is not None:
        data["noarch"] = noarch
    (meta / f"{name}-1-0.json").write_text(json.dumps(data))


def test_only_noarch_python_packages_top_level_entries(tmp_path: Path) -> None:
    record(tmp_path, "requests", "python", [f"{SP}/requests/__init__.py", f"{SP}/requests/api.py"])
    record(tmp_path, "six", "python", [f"{SP}/six.py", f"{SP}/six-1.dist-info/RECORD"])
    record(tmp_path, "legacy", {"type": "python"}, [f"{SP}/legacy/sub/mod.py"])
    record(tmp_path, "numpy", None, [f"{SP}/numpy/__init__.py"])
    record(tmp_path, "data", "generic", [f"{SP}/data/x.py", "share/data.txt"])
    record(tmp_path, "scripts", "python", ["bin/tool", f"{SP}/scripts-1.dist-info/METADATA"])
    (tmp_path / "conda-meta" / "broken.json").write_text("{not json")
    assert noarch_python_paths(tmp_path) == [
        tmp_path / SP / "legacy",
        tmp_path / SP / "requests",
        tmp_path / SP / "six.py",
    ]


def test_no_conda_meta_means_nothing_to_compile(tmp_path: Path) -> None:
    assert noarch_python_paths(tmp_path) == []
