"""Which files the rattler backend compiles after linking (noarch: python packages' only),
and the pyc cache that compiles each package once per interpreter."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

from envassay.create.backends.bytecode import (
    MANIFEST,
    _place,
    _record_key,
    compile_bytecode,
    noarch_python_paths,
)

SP = "lib/python3.11/site-packages"


def record(prefix: Path, name: str, noarch: object, files: list[str], sha256: str = "") -> None:
    meta = prefix / "conda-meta"
    meta.mkdir(parents=True, exist_ok=True)
    data = {"name": name, "version": "1", "build": "0", "files": files, "sha256": sha256}
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


# The pyc cache, on a made-up prefix whose bin/python is this interpreter behind a script
# that leaves a mark each time it starts: real compiles, and proof of when none ran.


def fake_env(root: Path, packages: dict[str, dict[str, str]]) -> Path:
    """A prefix with one noarch: python package per ``name -> {path: source}``, each
    recorded with a sha256 made from its name and sources."""
    (root / "bin").mkdir(parents=True)
    python = root / "bin" / "python"
    python.write_text(f'#!/bin/sh\necho x >> "{root}/started"\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    record(root, "python", None, [], sha256="1" * 64)
    for name, files in packages.items():
        for rel, text in files.items():
            (root / SP / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / SP / rel).write_text(text)
        digest = hashlib.sha256(json.dumps([name, files]).encode()).hexdigest()
        record(root, name, "python", [f"{SP}/{rel}" for rel in files], sha256=digest)
    return root


def starts(prefix: Path) -> int:
    marks = prefix / "started"
    return len(marks.read_text().splitlines()) if marks.exists() else 0


def pyc(prefix: Path, rel: str) -> Path:
    folder, _, name = rel.rpartition("/")
    return prefix / SP / folder / "__pycache__" / f"{name[:-3]}.{sys.implementation.cache_tag}.pyc"


def entries(cache: Path) -> dict[str, Path]:
    """package name -> its cache entry."""
    (interpreter,) = (cache / "pyc" / "v1").iterdir()
    return {p.name.split("-")[0]: p for p in interpreter.iterdir() if p.is_dir()}


PACKAGES = {
    "alpha": {"alpha/__init__.py": "A = 1\n", "alpha/sub/mod.py": "B = 2\n"},
    "beta": {"beta.py": "C = 3\n", "beta_tests/py2.py": "print 'old'\n"},
}


def test_second_env_links_the_cached_pycs_and_starts_no_interpreter(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = fake_env(tmp_path / "a", PACKAGES)
    lines: list[str] = []
    compile_bytecode(first, lines.append, cache)
    assert lines == ["compiling bytecode"]
    assert starts(first) == 2  # compileall, then its cache tag, recorded:
    (interpreter,) = (cache / "pyc" / "v1").iterdir()
    assert (interpreter / "cache_tag").read_text() == sys.implementation.cache_tag
    beta = json.loads((entries(cache)["beta"] / MANIFEST).read_text())
    assert beta["cache_tag"] == sys.implementation.cache_tag
    assert beta["pycs"] == [str(pyc(first, "beta.py").relative_to(first))]  # py2 file: none

    second = fake_env(tmp_path / "b", PACKAGES)
    lines.clear()
    compile_bytecode(second, lines.append, cache)
    assert lines == ["bytecode: linked 3 cached .pyc file(s) of 2 package(s)"]
    assert starts(second) == 0
    for rel in ("alpha/__init__.py", "alpha/sub/mod.py", "beta.py"):
        assert pyc(second, rel).stat().st_ino == pyc(first, rel).stat().st_ino
        header = pyc(second, rel).read_bytes()[:16]
        assert int.from_bytes(header[4:8], "little") == 0b11  # checked-hash
        assert header[8:] == importlib.util.source_hash((second / SP / rel).read_bytes())
    assert not pyc(second, "beta_tests/py2.py").exists()


@pytest.mark.parametrize("damage", ["no manifest", "bad manifest"])
def test_a_partial_or_damaged_entry_is_ignored_and_rebuilt(tmp_path: Path, damage: str) -> None:
    cache = tmp_path / "cache"
    compile_bytecode(fake_env(tmp_path / "a", PACKAGES), lambda _: None, cache)
    manifest = entries(cache)["alpha"] / MANIFEST
    if damage == "no manifest":
        manifest.unlink()
    else:
        manifest.write_text('{"pycs": ["../../../escape.pyc"]}')
    second = fake_env(tmp_path / "b", PACKAGES)
    lines: list[str] = []
    compile_bytecode(second, lines.append, cache)
    assert lines == ["bytecode: linked 1 cached .pyc file(s) of 1 package(s)", "compiling bytecode"]
    assert not (tmp_path / "escape.pyc").exists()
    rebuilt = json.loads(manifest.read_text())
    assert len(rebuilt["pycs"]) == 2
    assert pyc(second, "alpha/sub/mod.py").stat().st_ino == (
        (manifest.parent / "1.pyc").stat().st_ino
    )
    assert [p.name for p in manifest.parent.parent.iterdir() if p.name.startswith(".")] == []
    assert starts(second) == 1  # the tag was recorded


def test_the_key_changes_with_the_content_and_needs_a_hash(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    compile_bytecode(fake_env(tmp_path / "a", {"alpha": {"alpha.py": "A = 1\n"}}), print, cache)
    second = fake_env(tmp_path / "b", {"alpha": {"alpha.py": "A = 2\n"}})  # same name-1-0
    compile_bytecode(second, print, cache)
    assert starts(second) == 1
    (interpreter,) = (cache / "pyc" / "v1").iterdir()
    assert len([p for p in interpreter.iterdir() if p.name.startswith("alpha-1-0-")]) == 2

    base = {"name": "x", "version": "1", "build": "0"}
    assert _record_key({**base, "md5": "0" * 32}) == f"x-1-0-{'0' * 32}"
    assert _record_key({**base, "md5": "0" * 32, "sha256": "f" * 64}) == f"x-1-0-{'f' * 64}"
    assert _record_key({**base, "url": "file:///x-1-0.tar.bz2"}) is None  # no hash: no cache
    assert _record_key({**base, "sha256": "../../etc"}) is None


def test_no_hash_or_prefix_in_sources_is_compiled_every_time(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    for env in ("a", "b"):
        prefix = fake_env(tmp_path / env, {"alpha": {"alpha.py": "A = 1\n"}})
        meta = prefix / "conda-meta" / "alpha-1-0.json"
        data = json.loads(meta.read_text())
        data["paths_data"] = {
            "paths": [{"_path": f"{SP}/alpha.py", "prefix_placeholder": "/opt/placeholder"}]
        }
        meta.write_text(json.dumps(data))
        compile_bytecode(prefix, lambda _: None, cache)
        assert starts(prefix) == 1 and pyc(prefix, "alpha.py").is_file()
    assert not (cache / "pyc").exists() or entries(cache) == {}


def test_place_never_writes_through_an_existing_link(tmp_path: Path) -> None:
    elsewhere, target, source = tmp_path / "elsewhere", tmp_path / "target", tmp_path / "source"
    elsewhere.write_text("keep me")
    os.link(elsewhere, target)  # e.g. a pyc a package shipped, linked from the package cache
    source.write_text("new")
    _place(str(source), str(target))
    assert target.read_text() == "new" and elsewhere.read_text() == "keep me"
    assert target.stat().st_ino == source.stat().st_ino


def test_prune_removes_what_killed_creators_left_in_the_pyc_cache(tmp_path: Path) -> None:
    """`.tmp-*` (an entry being built) and `.trash-*` (one being deleted) are never used;
    an old one is removed, a recent one (a creator may be at work) and entries are kept."""
    from envassay.create.backends.bytecode import remove_leftovers

    root = tmp_path / "pyc" / "v1" / "python-3.11.7-h0-abc"
    old_tmp, old_trash, fresh_tmp, entry = (
        root / ".tmp-pkg-1",
        root / ".trash-2",
        root / ".tmp-pkg-3",
        root / "pkg-1.0-0-def",
    )
    for folder in (old_tmp, old_trash, fresh_tmp, entry):
        folder.mkdir(parents=True)
        (folder / "0.pyc").write_bytes(b"")
    for folder in (old_tmp, old_trash, entry):
        os.utime(folder, (1, 1))
    assert remove_leftovers(tmp_path) == 2
    assert not old_tmp.exists() and not old_trash.exists()
    assert fresh_tmp.is_dir() and entry.is_dir()
    assert remove_leftovers(tmp_path / "nothing-here") == 0
